//! The Threads admin API under `/_emulator/threads`:
//!
//! - `POST /token` → `{"access_token","user_id","app_id","app_secret","expires_in"}`: a
//!   long-lived token of the fixture user with every scope (body `{"kind":"short"}` for a
//!   short-lived one);
//! - `GET /posts`: every published post (what tests count);
//! - `GET /containers`: every container with the parameters it was created with;
//! - `GET|PUT /settings`: run-time settings (partial JSON);
//! - `POST /tokens/{expire|revoke}` with `{"access_token": ".."}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::SettingsPatch;
use super::oauth::SCOPES;
use super::state::{Threads, TokenKind};

pub fn routes() -> Router<Threads> {
    Router::new()
        .route("/_emulator/threads/token", post(mint_token))
        .route("/_emulator/threads/posts", get(posts))
        .route("/_emulator/threads/containers", get(containers))
        .route(
            "/_emulator/threads/settings",
            get(settings).put(put_settings),
        )
        .route("/_emulator/threads/tokens/{action}", post(change_token))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Mint {
    kind: Option<TokenKind>,
}

impl<'de> Deserialize<'de> for TokenKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "short" => Ok(TokenKind::Short),
            "long" => Ok(TokenKind::Long),
            other => Err(serde::de::Error::custom(format!(
                "kind is \"short\" or \"long\", not {other:?}"
            ))),
        }
    }
}

async fn mint_token(State(threads): State<Threads>, body: Bytes) -> Response {
    let mint: Mint = if body.iter().all(u8::is_ascii_whitespace) {
        Mint::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => return bad_request(format!("invalid JSON body: {e}")),
        }
    };
    let kind = mint.kind.unwrap_or(TokenKind::Long);
    let scopes = SCOPES.iter().map(|s| s.to_string()).collect();
    let (value, token) = threads.issue(kind, scopes);
    Json(json!({
        "access_token": value,
        "user_id": token.user_id,
        "app_id": threads.config.app_id,
        "app_secret": threads.config.app_secret,
        "expires_in": (token.expires_ms - token.issued_ms) / 1000,
    }))
    .into_response()
}

async fn posts(State(threads): State<Threads>) -> Json<serde_json::Value> {
    let posts = threads.store(|s| s.posts.clone());
    Json(json!({ "posts": posts }))
}

async fn containers(State(threads): State<Threads>) -> Json<serde_json::Value> {
    let now = threads.now_ms();
    let list: Vec<serde_json::Value> = threads.store(|s| {
        let mut all: Vec<_> = s.containers.values().cloned().collect();
        all.sort_by_key(|c| c.created_ms);
        all.into_iter()
            .map(|c| {
                let status = c.status(now);
                json!({"container": c, "status": status})
            })
            .collect()
    });
    Json(json!({ "containers": list }))
}

async fn settings(State(threads): State<Threads>) -> Json<super::Settings> {
    Json(threads.settings())
}

async fn put_settings(State(threads): State<Threads>, body: Bytes) -> Response {
    match serde_json::from_slice::<SettingsPatch>(&body) {
        Ok(patch) => Json(threads.update_settings(|s| s.apply(patch))).into_response(),
        Err(e) => bad_request(format!("invalid settings: {e}")),
    }
}

#[derive(Deserialize)]
struct TokenRef {
    access_token: String,
}

async fn change_token(
    State(threads): State<Threads>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(TokenRef { access_token }) = serde_json::from_slice(&body) else {
        return bad_request("body: {\"access_token\": \"..\"}");
    };
    if action != "expire" && action != "revoke" {
        return bad_request("action is expire or revoke");
    }
    let now = threads.now_ms();
    let found = threads.store(|s| match s.tokens.get_mut(&access_token) {
        None => false,
        Some(t) => {
            match action.as_str() {
                "expire" => t.expires_ms = now,
                _ => t.revoked = true,
            }
            true
        }
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        bad_request("unknown token")
    }
}
