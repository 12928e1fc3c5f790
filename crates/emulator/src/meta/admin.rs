//! The Meta admin API under `/_emulator/meta`:
//!
//! - `POST /token` → `{"access_token","ig_user_id","page_id","app_id","app_secret"}`: a
//!   long-lived Facebook Login user token with every scope, for a professional fixture account
//!   (optional body `{"ig_user_id": ".."}` picks the Creator account instead of the Business one);
//! - `GET /accounts`: the fixtures;
//! - `GET /media`: every container (with the parameters it was created with) and published
//!   media (with the comments under it);
//! - `GET|PUT /settings`: run-time settings (partial JSON);
//! - `POST /comments`: inject a comment or mention from a fake user (fires the webhook);
//! - `POST /webhooks/verify`: run the handshake against the callback and report;
//! - `POST /tokens/{expire|revoke|password-changed}` with `{"access_token": ".."}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::SettingsPatch;
use super::engagement::{self, Injection};
use super::state::{BUSINESS_IG_ID, Login, Meta, TokenKind, TokenState, TokenTemplate};
use super::webhooks;

pub fn routes() -> Router<Meta> {
    Router::new()
        .route("/_emulator/meta/token", post(mint_token))
        .route("/_emulator/meta/accounts", get(accounts))
        .route("/_emulator/meta/media", get(media))
        .route("/_emulator/meta/settings", get(settings).put(put_settings))
        .route("/_emulator/meta/comments", post(inject_comment))
        .route("/_emulator/meta/webhooks/verify", post(verify_webhook))
        .route("/_emulator/meta/tokens/{action}", post(change_token))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// Parses an optional JSON body (empty = `T::default()` via `{}`).
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, String> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(text).map_err(|e| format!("invalid JSON body: {e}"))
}

const ALL_SCOPES: &[&str] = &[
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_comments",
    "instagram_manage_insights",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "business_management",
];

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct TokenRequest {
    ig_user_id: Option<String>,
}

async fn mint_token(State(meta): State<Meta>, bytes: Bytes) -> Response {
    let request: TokenRequest = match body(&bytes) {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    let ig_user_id = request
        .ig_user_id
        .unwrap_or_else(|| BUSINESS_IG_ID.to_string());
    let now = meta.now_ms();
    let lifetime = meta.settings().long_lived_secs;
    let minted = meta.store(|s| {
        let page_id = s
            .pages
            .iter()
            .find(|p| p.ig_user_id.as_deref() == Some(&ig_user_id))?
            .id
            .clone();
        let template = TokenTemplate {
            login: Login::Facebook,
            kind: TokenKind::User,
            subject: s.fb_user.id.clone(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            declined: Vec::new(),
            lifetime_secs: lifetime,
            long_lived: true,
            parent: None,
        };
        Some((s.issue(template, now).value, page_id))
    });
    let Some((access_token, page_id)) = minted else {
        return bad_request(format!(
            "{ig_user_id} is not an Instagram professional account linked to a Page"
        ));
    };
    Json(json!({
        "access_token": access_token,
        "ig_user_id": ig_user_id,
        "page_id": page_id,
        "app_id": meta.config.app_id,
        "app_secret": meta.config.app_secret,
    }))
    .into_response()
}

async fn accounts(State(meta): State<Meta>) -> Json<Value> {
    meta.store(|s| {
        let pages: Vec<Value> = s
            .pages
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name, "instagram_business_account": p.ig_user_id}))
            .collect();
        let instagram: Vec<Value> = s
            .ig_accounts
            .iter()
            .map(|a| json!({"id": a.id, "app_scoped_id": a.app_scoped_id, "username": a.username, "account_type": a.account_type.as_str()}))
            .collect();
        Json(json!({
            "facebook_user": {"id": s.fb_user.id, "name": s.fb_user.name},
            "pages": pages,
            "instagram_accounts": instagram,
        }))
    })
}

async fn media(State(meta): State<Meta>) -> Json<Value> {
    let now = meta.now_ms();
    meta.store(|s| {
        let containers: Vec<Value> = s.containers.values().map(|c| c.admin_json(now)).collect();
        let media: Vec<Value> = s
            .media
            .values()
            .map(|m| {
                let mut media = m.admin_json(
                    &s.ig_account(&m.owner)
                        .map(|a| a.username.clone())
                        .unwrap_or_default(),
                );
                // The comments under it, oldest first (a first comment shows here).
                let comments: Vec<Value> = s
                    .comments
                    .values()
                    .filter(|c| c.media_id == m.id)
                    .map(|c| json!({"id": c.id, "text": c.text, "username": c.username, "from_id": c.from_id, "parent_id": c.parent_id}))
                    .collect();
                media["comments"] = json!(comments);
                media
            })
            .collect();
        Json(json!({"containers": containers, "media": media}))
    })
}

async fn settings(State(meta): State<Meta>) -> Json<Value> {
    Json(json!(meta.settings()))
}

async fn put_settings(State(meta): State<Meta>, bytes: Bytes) -> Response {
    let patch: SettingsPatch = match body(&bytes) {
        Ok(patch) => patch,
        Err(message) => return bad_request(message),
    };
    Json(json!(meta.update_settings(|s| s.apply(patch)))).into_response()
}

async fn inject_comment(State(meta): State<Meta>, bytes: Bytes) -> Response {
    let injection: Injection = match body(&bytes) {
        Ok(injection) => injection,
        Err(message) => return bad_request(message),
    };
    match engagement::inject(&meta, injection) {
        Ok(outcome) => (StatusCode::CREATED, Json(outcome)).into_response(),
        Err(message) => bad_request(message),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct VerifyRequest {
    url: Option<String>,
    verify_token: Option<String>,
}

async fn verify_webhook(State(meta): State<Meta>, bytes: Bytes) -> Response {
    let request: VerifyRequest = match body(&bytes) {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    match webhooks::handshake(&meta, request.url, request.verify_token).await {
        Ok(report) => Json(report).into_response(),
        Err(message) => bad_request(message),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenChange {
    access_token: String,
}

async fn change_token(
    State(meta): State<Meta>,
    Path(action): Path<String>,
    bytes: Bytes,
) -> Response {
    let change: TokenChange = match body(&bytes) {
        Ok(change) => change,
        Err(message) => return bad_request(message),
    };
    let now = meta.now_ms();
    let changed = meta.store(|s| {
        let token = s.tokens.get_mut(&change.access_token)?;
        match action.as_str() {
            "expire" => token.expires_ms = now - 1000,
            "revoke" => token.state = TokenState::Revoked,
            "password-changed" => token.state = TokenState::PasswordChanged,
            _ => return Some(false),
        }
        Some(true)
    });
    match changed {
        Some(true) => StatusCode::NO_CONTENT.into_response(),
        Some(false) => bad_request("action must be expire, revoke or password-changed"),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown access token"})),
        )
            .into_response(),
    }
}
