//! Facebook Login (dialog, code → user token, short → long-lived) and Instagram Login (dialog,
//! code → short-lived token on api.instagram.com, short → long-lived, refresh) token flows.
//!
//! Facebook-Login tokens have no refresh: a long-lived user token lasts ~60 days and the user
//! logs in again to renew it (Page tokens derived from it do not expire). Instagram-Login
//! long-lived tokens can be refreshed once they are 24 hours old, while still valid.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{MetaClient, PLATFORM, read_json};
use crate::error::{Call, ErrorKind, ProviderError};
use crate::ids;

/// A user access token and its lifetime (seconds; Meta omits it for some tokens).
#[derive(Debug, Clone)]
pub struct MetaToken {
    pub access_token: SecretString,
    pub expires_in: Option<u64>,
}

/// The answer of Instagram Login's code exchange: a short-lived (1 h) token for the
/// professional account `user_id`, with the granted permissions.
#[derive(Debug, Clone)]
pub struct InstagramLoginToken {
    pub access_token: SecretString,
    /// The Instagram professional account id (the `<IG_ID>` of publishing paths).
    pub user_id: String,
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl From<TokenAnswer> for MetaToken {
    fn from(answer: TokenAnswer) -> Self {
        Self {
            access_token: answer.access_token.into(),
            expires_in: answer.expires_in,
        }
    }
}

/// Documented as `{"data":[{…}]}`, observed flat; `permissions` as a list or a comma string.
#[derive(Deserialize)]
#[serde(untagged)]
enum IgCodeAnswer {
    Wrapped { data: Vec<IgCodeFlat> },
    Flat(IgCodeFlat),
}

#[derive(Deserialize)]
struct IgCodeFlat {
    access_token: String,
    #[serde(deserialize_with = "ids::id")]
    user_id: String,
    #[serde(default)]
    permissions: Option<Permissions>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Permissions {
    List(Vec<String>),
    Text(String),
}

impl Permissions {
    fn into_vec(self) -> Vec<String> {
        match self {
            Permissions::List(list) => list,
            Permissions::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        }
    }
}

impl MetaClient {
    /// The Facebook Login dialog URL (`scope` comma-separated).
    pub fn authorize_url(&self, redirect_uri: &str, scopes: &[&str], state: &str) -> String {
        let base = format!(
            "{}/{}/dialog/oauth",
            self.endpoints.facebook_www.trim_end_matches('/'),
            self.endpoints.graph_version
        );
        with_query(
            &base,
            &[
                ("client_id", &self.facebook.app_id),
                ("redirect_uri", redirect_uri),
                ("state", state),
                ("scope", &scopes.join(",")),
                ("response_type", "code"),
            ],
        )
    }

    /// Facebook Login: the callback's `code` → a user token (short-lived, or already
    /// long-lived on some apps; always run [`MetaClient::exchange_long_lived`] next).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<MetaToken, ProviderError> {
        let request = self.token_request(&[
            ("client_id", &self.facebook.app_id),
            ("redirect_uri", redirect_uri),
            ("client_secret", self.facebook.app_secret.expose_secret()),
            ("code", code),
        ]);
        self.token(Call::idempotent("meta.oauth.exchange_code"), request)
            .await
    }

    /// Facebook Login: a short-lived user token → a long-lived (~60 days) one.
    pub async fn exchange_long_lived(
        &self,
        short_lived: &SecretString,
    ) -> Result<MetaToken, ProviderError> {
        let request = self.token_request(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", &self.facebook.app_id),
            ("client_secret", self.facebook.app_secret.expose_secret()),
            ("fb_exchange_token", short_lived.expose_secret()),
        ]);
        self.token(Call::idempotent("meta.oauth.exchange_long_lived"), request)
            .await
    }

    /// The Instagram Login dialog URL (Instagram app id; `instagram_business_*` scopes).
    pub fn authorize_url_instagram(
        &self,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
    ) -> String {
        let base = format!(
            "{}/oauth/authorize",
            self.endpoints.instagram_www.trim_end_matches('/')
        );
        with_query(
            &base,
            &[
                ("client_id", &self.instagram.app_id),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", &scopes.join(",")),
                ("state", state),
            ],
        )
    }

    /// Instagram Login: the callback's `code` (a trailing `#_` is stripped) → a short-lived
    /// token and the account id.
    pub async fn exchange_code_instagram(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<InstagramLoginToken, ProviderError> {
        let code = code.strip_suffix("#_").unwrap_or(code);
        let url = format!(
            "{}/oauth/access_token",
            self.endpoints.instagram_api.trim_end_matches('/')
        );
        let request = self.http.post(url).form(&[
            ("client_id", self.instagram.app_id.as_str()),
            ("client_secret", self.instagram.app_secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ]);
        let call = Call::idempotent("meta.oauth.exchange_code_instagram");
        let answer = self.send(call, request).await?;
        let flat = match read_json::<IgCodeAnswer>(&answer, call)? {
            IgCodeAnswer::Flat(flat) => flat,
            IgCodeAnswer::Wrapped { data } => data.into_iter().next().ok_or_else(|| {
                ProviderError::unexpected(PLATFORM, answer.status, "an empty token list")
            })?,
        };
        Ok(InstagramLoginToken {
            access_token: flat.access_token.into(),
            user_id: flat.user_id,
            permissions: flat
                .permissions
                .map(Permissions::into_vec)
                .unwrap_or_default(),
        })
    }

    /// Instagram Login: a short-lived token → a long-lived (60 days) one.
    pub async fn exchange_long_lived_instagram(
        &self,
        short_lived: &SecretString,
    ) -> Result<MetaToken, ProviderError> {
        let url = format!(
            "{}/access_token",
            self.endpoints.instagram_graph.trim_end_matches('/')
        );
        let request = self.http.get(url).query(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", self.instagram.app_secret.expose_secret()),
            ("access_token", short_lived.expose_secret()),
        ]);
        self.token(
            Call::idempotent("meta.oauth.exchange_long_lived_instagram"),
            request,
        )
        .await
    }

    /// Instagram Login: extends a long-lived token by another 60 days. Meta refuses tokens
    /// younger than 24 hours; that refusal is [`ErrorKind::Permanent`] (the token stays
    /// valid — refresh later), not Reauth.
    pub async fn refresh_instagram(
        &self,
        token: &SecretString,
    ) -> Result<MetaToken, ProviderError> {
        let url = format!(
            "{}/refresh_access_token",
            self.endpoints.instagram_graph.trim_end_matches('/')
        );
        let request = self.http.get(url).query(&[
            ("grant_type", "ig_refresh_token"),
            ("access_token", token.expose_secret()),
        ]);
        self.token(Call::idempotent("meta.oauth.refresh_instagram"), request)
            .await
            .map_err(|mut err| {
                if err.kind == ErrorKind::Reauth && err.message.contains("24 hours") {
                    err.kind = ErrorKind::Permanent;
                    err.message = "Instagram only refreshes tokens at least 24 hours old; the current token stays valid, so refresh later.".into();
                }
                err
            })
    }

    /// `GET {graph}/{version}/oauth/access_token?…` (parameters as Meta documents them).
    fn token_request(&self, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/{}/oauth/access_token",
            self.endpoints.graph.trim_end_matches('/'),
            self.endpoints.graph_version
        );
        self.http.request(Method::GET, url).query(params)
    }

    async fn token(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
    ) -> Result<MetaToken, ProviderError> {
        let answer = self.send(call, request).await?;
        read_json::<TokenAnswer>(&answer, call).map(MetaToken::from)
    }
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse_with_params(base, pairs) {
        Ok(url) => url.into(),
        Err(_) => base.to_string(),
    }
}
