//! Login Kit v2: the consent page (`www.tiktok.com/v2/auth/authorize/`), the token endpoint
//! (authorization_code and refresh_token grants, with rotation) and token revocation.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::App;
use super::errors::OAuthError;
use super::state::{ALL_SCOPES, AuthCode, Creator, RefreshGrant, TokenPair, secs_to_ms};
use super::webhooks::Event;

/// Query of the consent page, also posted back by its form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthorizeParams {
    client_key: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    disable_auto_auth: Option<String>,
    /// Emulator extension: which creator auto-approve picks.
    emulator_creator: Option<String>,
    /// Form fields of the consent page.
    creator: Option<String>,
    decision: Option<String>,
}

/// A validated authorize request.
struct Authorize {
    redirect_uri: url::Url,
    /// As sent: the token call must repeat it exactly.
    raw_redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// Why an authorize request cannot go on: shown on the page (bad client or redirect URI) or
/// sent back to the redirect URI.
enum AuthorizeFailure {
    Page(String),
    Redirect(url::Url, Option<String>, &'static str, String),
}

impl AuthorizeFailure {
    fn into_response(self) -> Response {
        match self {
            AuthorizeFailure::Page(message) => (
                StatusCode::BAD_REQUEST,
                Html(page(
                    "Something went wrong",
                    &format!("<p>{}</p>", escape(&message)),
                )),
            )
                .into_response(),
            AuthorizeFailure::Redirect(uri, state, error, description) => redirect_with(
                uri,
                &[("error", error), ("error_description", &description)],
                state.as_deref(),
            ),
        }
    }
}

impl AuthorizeParams {
    fn validate(&self, app: &App) -> Result<Authorize, AuthorizeFailure> {
        let settings = app.settings();
        if self.client_key.as_deref() != Some(settings.client_key.as_str()) {
            return Err(AuthorizeFailure::Page(
                "client_key is missing or unknown.".into(),
            ));
        }
        let raw_uri = self.redirect_uri.as_deref().unwrap_or_default();
        let redirect_uri = parse_redirect_uri(raw_uri).map_err(AuthorizeFailure::Page)?;
        if !settings.registered_redirect_uris.is_empty()
            && !settings
                .registered_redirect_uris
                .iter()
                .any(|u| u == raw_uri)
        {
            return Err(AuthorizeFailure::Page(
                "redirect_uri is not registered for this app.".into(),
            ));
        }
        let fail = |error, description: &str| {
            AuthorizeFailure::Redirect(
                redirect_uri.clone(),
                self.state.clone(),
                error,
                description.to_string(),
            )
        };
        if self.response_type.as_deref() != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "response_type must be code.",
            ));
        }
        let scopes = parse_scopes(self.scope.as_deref().unwrap_or_default()).ok_or_else(|| {
            fail(
                "invalid_scope",
                "scope is missing or holds an unknown scope.",
            )
        })?;
        let code_challenge = self.code_challenge.clone().filter(|c| !c.is_empty());
        if code_challenge.is_some()
            && !matches!(self.code_challenge_method.as_deref(), None | Some("S256"))
        {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256.",
            ));
        }
        Ok(Authorize {
            redirect_uri,
            raw_redirect_uri: raw_uri.to_string(),
            scopes,
            state: self.state.clone(),
            code_challenge,
        })
    }

    fn parse(raw: &[u8]) -> Self {
        serde_urlencoded::from_bytes(raw).unwrap_or_default()
    }
}

fn parse_redirect_uri(raw: &str) -> Result<url::Url, String> {
    let uri =
        url::Url::parse(raw).map_err(|_| "redirect_uri must be an absolute URL.".to_string())?;
    if !matches!(uri.scheme(), "http" | "https") || uri.host_str().is_none() {
        return Err("redirect_uri must be an http(s) URL.".into());
    }
    if raw.contains('?') || raw.contains('#') {
        return Err("redirect_uri must not carry a query string or a fragment.".into());
    }
    Ok(uri)
}

/// Comma-separated known scopes, deduplicated; `None` when empty or unknown.
fn parse_scopes(raw: &str) -> Option<Vec<String>> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ALL_SCOPES.contains(&scope) {
            return None;
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    (!scopes.is_empty()).then_some(scopes)
}

/// `GET /v2/auth/authorize/`: the consent page, or an immediate approval in auto-approve mode.
pub(crate) async fn authorize_page(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = AuthorizeParams::parse(query.unwrap_or_default().as_bytes());
    let request = match params.validate(&app) {
        Ok(r) => r,
        Err(failure) => return failure.into_response(),
    };
    if app.ctx.config.auto_approve {
        let wanted = params.emulator_creator.as_deref().unwrap_or_default();
        let creator = {
            let store = app.store();
            store.creator(wanted).or(store.creators.first()).cloned()
        };
        return match creator {
            Some(creator) => approve(&app, request, &creator),
            None => AuthorizeFailure::Page("No such creator.".into()).into_response(),
        };
    }
    let creators = app.store().creators.clone();
    Html(consent_page(&params, &request, &creators)).into_response()
}

/// `POST /v2/auth/authorize/`: the consent form's Authorize / Deny buttons.
pub(crate) async fn authorize_decision(State(app): State<App>, body: Bytes) -> Response {
    let params = AuthorizeParams::parse(&body);
    let request = match params.validate(&app) {
        Ok(r) => r,
        Err(failure) => return failure.into_response(),
    };
    if params.decision.as_deref() != Some("approve") {
        return redirect_with(
            request.redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The user denied the authorization request.",
                ),
            ],
            request.state.as_deref(),
        );
    }
    let creator = app
        .store()
        .creator(params.creator.as_deref().unwrap_or_default())
        .cloned();
    match creator {
        Some(creator) => approve(&app, request, &creator),
        None => AuthorizeFailure::Page("Choose an account to continue.".into()).into_response(),
    }
}

fn approve(app: &App, request: Authorize, creator: &Creator) -> Response {
    let code = crate::ctx::Ctx::random_token("");
    let expires_at_ms = app.now_ms() + secs_to_ms(app.settings().code_ttl_secs);
    app.store().codes.insert(
        code.clone(),
        AuthCode {
            open_id: creator.open_id.clone(),
            scopes: request.scopes.clone(),
            redirect_uri: request.raw_redirect_uri.clone(),
            code_challenge: request.code_challenge,
            expires_at_ms,
            used: false,
        },
    );
    let scopes = request.scopes.join(",");
    redirect_with(
        request.redirect_uri,
        &[("code", &code), ("scopes", &scopes)],
        request.state.as_deref(),
    )
}

fn redirect_with(mut uri: url::Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = uri.query_pairs_mut();
        for (key, value) in pairs {
            query.append_pair(key, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, uri.to_string())]).into_response()
}

fn consent_page(params: &AuthorizeParams, request: &Authorize, creators: &[Creator]) -> String {
    let hidden: String = [
        ("client_key", &params.client_key),
        ("response_type", &params.response_type),
        ("scope", &params.scope),
        ("redirect_uri", &params.redirect_uri),
        ("state", &params.state),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("disable_auto_auth", &params.disable_auto_auth),
    ]
    .iter()
    .filter_map(|(name, value)| value.as_ref().map(|v| (name, v)))
    .map(|(name, value)| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value)
        )
    })
    .collect();
    let accounts: String = creators
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"<li><label><input type="radio" name="creator" value="{}"{}> {} (@{}){}</label></li>"#,
                escape(&c.open_id),
                if i == 0 { " checked" } else { "" },
                escape(&c.display_name),
                escape(&c.username),
                if c.private_account { " — private account" } else { "" },
            )
        })
        .collect();
    let scopes: String = request
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    page(
        "Authorize app",
        &format!(
            r#"<p>The app <b>{}</b> would like to access your TikTok account.</p>
<form method="post" action="/tiktok/www/v2/auth/authorize/">{hidden}
<h2>Choose an account</h2><ul>{accounts}</ul>
<h2>Permissions</h2><ul>{scopes}</ul>
<button type="submit" name="decision" value="approve">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"#,
            escape(params.client_key.as_deref().unwrap_or_default())
        ),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>TikTok (emulator) — {title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Form of the token and revoke endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenForm {
    client_key: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    token: Option<String>,
}

impl TokenForm {
    fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        serde_urlencoded::from_bytes(body).map_err(|_| {
            OAuthError::new("invalid_request", "The request body must be form-encoded.")
        })
    }

    fn check_client(&self, app: &App) -> Result<(), OAuthError> {
        let settings = app.settings();
        let key_ok = self.client_key.as_deref() == Some(settings.client_key.as_str());
        let secret = self.client_secret.as_deref().unwrap_or_default();
        let secret_ok: bool = secret
            .as_bytes()
            .ct_eq(settings.client_secret.as_bytes())
            .into();
        if key_ok && secret_ok {
            Ok(())
        } else {
            Err(OAuthError::new(
                "invalid_client",
                "Client key or secret is invalid.",
            ))
        }
    }
}

/// `POST /v2/oauth/token/`.
pub(crate) async fn token(State(app): State<App>, body: Bytes) -> Response {
    let http_200 = app.settings().oauth_errors_http_200;
    match token_grant(&app, &body).await {
        Ok(pair) => Json(token_response(&app, &pair)).into_response(),
        Err(error) => OAuthError { http_200, ..error }.into_response(),
    }
}

async fn token_grant(app: &App, body: &[u8]) -> Result<TokenPair, OAuthError> {
    let faults = app.faults().await;
    if faults.roll_server_error() {
        return Err(OAuthError::new(
            "server_error",
            "Something went wrong. Please try again later.",
        ));
    }
    let form = TokenForm::parse(body)?;
    form.check_client(app)?;
    match form.grant_type.as_deref() {
        Some("authorization_code") => redeem_code(app, &form),
        Some("refresh_token") if faults.refuse_refresh => Err(OAuthError::new(
            "invalid_grant",
            "Refresh token is invalid or expired.",
        )),
        Some("refresh_token") => rotate_refresh_token(app, &form),
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "The grant type is not supported.",
        )),
        None => Err(OAuthError::new(
            "invalid_request",
            "grant_type is required.",
        )),
    }
}

fn redeem_code(app: &App, form: &TokenForm) -> Result<TokenPair, OAuthError> {
    let code = form
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", "code is required."))?;
    let settings = app.settings();
    let now = app.now_ms();
    let mut store = app.store();
    let grant = store
        .codes
        .get(code)
        .cloned()
        .ok_or_else(|| OAuthError::new("invalid_grant", "Authorization code is invalid."))?;
    if grant.used {
        return Err(OAuthError::new(
            "invalid_grant",
            "Authorization code has been used.",
        ));
    }
    if now >= grant.expires_at_ms {
        return Err(OAuthError::new(
            "invalid_grant",
            "Authorization code is expired.",
        ));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri does not match the authorization request.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = form.code_verifier.as_deref().unwrap_or_default();
        if !pkce_matches(challenge, verifier) {
            return Err(OAuthError::new(
                "invalid_grant",
                "Code verifier or code challenge is invalid.",
            ));
        }
    }
    if let Some(stored) = store.codes.get_mut(code) {
        stored.used = true;
    }
    Ok(store.mint_tokens(
        &grant.open_id,
        grant.scopes,
        now,
        settings.access_token_ttl_secs,
        settings.refresh_token_ttl_secs,
    ))
}

/// TikTok's hex SHA-256 challenge, or RFC 7636 base64url S256.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    if verifier.is_empty() {
        return false;
    }
    let digest = Sha256::digest(verifier.as_bytes());
    challenge.eq_ignore_ascii_case(&hex::encode(digest))
        || challenge == base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn rotate_refresh_token(app: &App, form: &TokenForm) -> Result<TokenPair, OAuthError> {
    let presented = form
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required."))?;
    let settings = app.settings();
    let now = app.now_ms();
    let mut store = app.store();
    let (outcome, old) = match store.refresh_tokens.get_mut(presented) {
        Some(t) if !t.revoked && now < t.expires_at_ms => {
            t.revoked = true;
            t.rotated = true;
            ("rotated", Some(t.clone()))
        }
        Some(t) if t.rotated => ("reused", None),
        Some(t) if t.revoked => ("revoked", None),
        Some(_) => ("expired", None),
        None => ("unknown", None),
    };
    let open_id = old.as_ref().map(|t| t.open_id.clone()).or_else(|| {
        store
            .refresh_tokens
            .get(presented)
            .map(|t| t.open_id.clone())
    });
    store.refresh_grants.push(RefreshGrant {
        at_ms: now,
        open_id,
        outcome,
    });
    let Some(old) = old else {
        return Err(OAuthError::new(
            "invalid_grant",
            "Refresh token is invalid or expired.",
        ));
    };
    Ok(store.mint_tokens(
        &old.open_id,
        old.scopes,
        now,
        settings.access_token_ttl_secs,
        settings.refresh_token_ttl_secs,
    ))
}

fn token_response(app: &App, pair: &TokenPair) -> serde_json::Value {
    let settings = app.settings();
    json!({
        "access_token": pair.access_token,
        "expires_in": settings.access_token_ttl_secs,
        "open_id": pair.open_id,
        "refresh_expires_in": settings.refresh_token_ttl_secs,
        "refresh_token": pair.refresh_token,
        "scope": pair.scopes.join(","),
        "token_type": "Bearer",
    })
}

/// `POST /v2/oauth/revoke/`: the app disconnects the user; all their tokens stop working.
pub(crate) async fn revoke(State(app): State<App>, body: Bytes) -> Response {
    let http_200 = app.settings().oauth_errors_http_200;
    let result = TokenForm::parse(&body).and_then(|form| {
        form.check_client(&app)?;
        form.token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", "token is required."))
    });
    let token = match result {
        Ok(token) => token,
        Err(error) => return OAuthError { http_200, ..error }.into_response(),
    };
    let open_id = app
        .store()
        .access_tokens
        .get(&token)
        .map(|t| t.open_id.clone());
    if let Some(open_id) = open_id {
        app.remove_authorization(&open_id, 5);
    }
    Json(json!({})).into_response()
}

impl App {
    /// Revokes every token of a creator, fails their in-flight publishes with `auth_removed`
    /// and sends `authorization.removed`.
    pub fn remove_authorization(&self, open_id: &str, reason: u8) {
        let mut events = vec![Event::authorization_removed(open_id, reason)];
        {
            let mut store = self.store();
            store.revoke_creator(open_id);
            for publish in store
                .publishes
                .iter_mut()
                .filter(|p| p.open_id == open_id && p.status.is_processing())
            {
                events.push(super::lifecycle::fail(publish, "auth_removed"));
            }
        }
        self.emit(events);
    }
}
