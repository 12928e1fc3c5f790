//! Login Kit v2: the authorize URL, PKCE, the token endpoint (authorization code and rotating
//! refresh token grants) and revocation.
//!
//! The token endpoint answers flat JSON and was seen answering errors with HTTP 200, so an
//! answer is a failure whenever it carries a non-empty `error`, whatever its status.

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::errors::{self, Grant};
use super::{PLATFORM, TikTokClient};
use crate::error::{Call, ErrorKind, ProviderError};
use crate::http::{Answer, send};

const TOKEN_PATH: &str = "/v2/oauth/token/";
const REVOKE_PATH: &str = "/v2/oauth/revoke/";

/// Tokens from the token endpoint. The refresh token is never empty: an answer without one is
/// an error, so a caller can always store the newest refresh token over the old one.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub open_id: String,
    /// Granted scopes (a user may grant fewer than requested).
    pub scopes: Vec<String>,
    pub access_token: SecretString,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The newest refresh token: TikTok rotates them, the previous one stops working.
    pub refresh_token: SecretString,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: u64,
}

impl TokenSet {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    open_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_expires_in: Option<u64>,
}

/// A PKCE code verifier: 64 characters from the unreserved alphabet (43–128 allowed).
pub fn pkce_verifier() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// TikTok's documented (desktop) `code_challenge`: the **hex** SHA-256 of the verifier, not
/// RFC 7636's base64url. The method sent is still `S256`.
pub fn code_challenge(verifier: &str) -> String {
    hex::encode(Sha256::digest(verifier.as_bytes()))
}

impl TikTokClient {
    /// The consent page URL. `scopes` are joined with commas; `code_challenge` (from
    /// [`code_challenge`]) is optional for web apps.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let base = self.endpoints.auth_base.trim_end_matches('/');
        let mut url = url::Url::parse(&format!("{base}/v2/auth/authorize/")).unwrap_or_else(|_| {
            url::Url::parse("https://www.tiktok.com/v2/auth/authorize/").expect("static URL")
        });
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_key", &self.client_key)
                .append_pair("response_type", "code")
                .append_pair("scope", &scopes.join(","))
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state);
            if let Some(challenge) = code_challenge {
                query
                    .append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        url.into()
    }

    /// Redeems the `code` from the callback (already URL-decoded). `redirect_uri` must equal
    /// the authorize one; `code_verifier` is required when a challenge was sent.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenSet, ProviderError> {
        let mut form = vec![
            ("client_key", self.client_key.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        // Codes are single use, but a lost answer just means connecting again: nothing to
        // reconcile.
        let call = Call::idempotent("tiktok.oauth.exchange_code");
        let answer = self.oauth_post(call, TOKEN_PATH, &form).await?;
        token_set(&answer, call, Grant::Code)
    }

    /// Spends `refresh_token` for a new token set. Refresh tokens rotate: a lost answer may
    /// have spent the old one, so a transport failure after sending is
    /// [`ErrorKind::OutcomeUnknown`] (trying again either works or fails with Reauth).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        let form = [
            ("client_key", self.client_key.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        let call = Call::non_idempotent("tiktok.oauth.refresh");
        let answer = self.oauth_post(call, TOKEN_PATH, &form).await?;
        token_set(&answer, call, Grant::Refresh)
    }

    /// Revokes the user's authorization (all their tokens stop working).
    pub async fn revoke(&self, access_token: &SecretString) -> Result<(), ProviderError> {
        let form = [
            ("client_key", self.client_key.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("token", access_token.expose_secret()),
        ];
        let call = Call::idempotent("tiktok.oauth.revoke");
        let answer = self.oauth_post(call, REVOKE_PATH, &form).await?;
        match serde_json::from_slice::<TokenAnswer>(&answer.body) {
            Ok(TokenAnswer {
                error: Some(error),
                error_description,
                ..
            }) if !error.is_empty() => Err(errors::oauth_error(
                &answer,
                &error,
                error_description.as_deref().unwrap_or_default(),
                Grant::Revoke,
            )),
            _ if answer.is_success() => Ok(()),
            _ => Err(ProviderError::unexpected(
                PLATFORM,
                answer.status,
                "no readable body for a revoke",
            )),
        }
    }

    async fn oauth_post(
        &self,
        call: Call,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Answer, ProviderError> {
        let request = self
            .http
            .post(self.endpoints.api(path))
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .form(form);
        send(PLATFORM, call, request).await
    }
}

fn token_set(answer: &Answer, call: Call, grant: Grant) -> Result<TokenSet, ProviderError> {
    let Ok(parsed) = serde_json::from_slice::<TokenAnswer>(&answer.body) else {
        let mut error =
            ProviderError::unexpected(PLATFORM, answer.status, "no readable token answer");
        if answer.status >= 500 {
            error.kind = ErrorKind::Retryable;
        }
        return Err(error);
    };
    if let Some(error) = parsed.error.as_deref().filter(|e| !e.is_empty()) {
        let description = parsed.error_description.as_deref().unwrap_or_default();
        return Err(errors::oauth_error(answer, error, description, grant));
    }
    let missing = |field: &str| {
        // The grant may have gone through (a refresh token spent) without us learning the new
        // tokens; retrying tells (it works, or fails with Reauth).
        let kind = if grant == Grant::Refresh {
            ErrorKind::OutcomeUnknown
        } else {
            ErrorKind::Retryable
        };
        ProviderError::new(
            PLATFORM,
            kind,
            "unexpected_response",
            format!("TikTok's token answer for {} has no {field}", call.label),
        )
        .with_status(answer.status)
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(TokenSet {
        open_id: non_empty(parsed.open_id).ok_or_else(|| missing("open_id"))?,
        scopes: parsed
            .scope
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        access_token: non_empty(parsed.access_token)
            .ok_or_else(|| missing("access_token"))?
            .into(),
        expires_in: parsed.expires_in.ok_or_else(|| missing("expires_in"))?,
        refresh_token: non_empty(parsed.refresh_token)
            .ok_or_else(|| missing("refresh_token"))?
            .into(),
        refresh_expires_in: parsed
            .refresh_expires_in
            .ok_or_else(|| missing("refresh_expires_in"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_shapes() {
        let verifier = pkce_verifier();
        assert_eq!(verifier.len(), 64);
        assert!(verifier.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(verifier, pkce_verifier());
        // RFC 7636 appendix B verifier, hex-encoded digest.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
    }
}
