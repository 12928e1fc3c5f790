//! TikTok admin routes under `/_emulator/tiktok`:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /token` | optional `{"scopes":[…],"creator":"<open_id or username>"}` | `{"access_token","refresh_token","open_id","client_key","client_secret"}` |
//! | `GET /creators` | | `{"creators":[…]}` (fixtures, with `privacy_level_options`) |
//! | `POST /creators` | `{"username":"…","display_name":"…","private_account":false}` | the new creator (for tests that need many accounts) |
//! | `GET /refreshes` | | `{"refreshes":[{"at_ms","open_id","outcome"}]}`: every refresh grant; `reused` means a spent refresh token came back |
//! | `GET /rate-limited` | | `{"rate_limited":[{"at_ms","open_id","endpoint"}]}`: calls refused by a per-token rate limit (injected 429s excluded) |
//! | `GET /publishes` | | `{"publishes":[…]}` |
//! | `GET /publishes/{publish_id}` | | one publish |
//! | `POST /publishes/{publish_id}/fail` | optional `{"fail_reason":"…"}` (default `internal`) | the publish |
//! | `POST /publishes/{publish_id}/complete` | optional `{"privacy_level":"…"}` | the publish (an inbox draft posted by the creator) |
//! | `POST /publishes/{publish_id}/unpublish` | | the publish (`post.publish.no_longer_publicaly_available`) |
//! | `POST /revoke` | `{"creator":"…","reason":1}` | `{"open_id","revoked":true}` |
//! | `GET /settings`, `PUT /settings` | partial [`super::Config`] JSON | the settings |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::App;
use super::lifecycle::{complete, fail};
use super::state::{ALL_SCOPES, Creator, Mode, Publish, Status};
use super::webhooks::Event;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/_emulator/tiktok/token", post(mint_token))
        .route(
            "/_emulator/tiktok/creators",
            get(creators).post(add_creator),
        )
        .route("/_emulator/tiktok/refreshes", get(refreshes))
        .route("/_emulator/tiktok/rate-limited", get(rate_limited))
        .route("/_emulator/tiktok/publishes", get(publishes))
        .route("/_emulator/tiktok/publishes/{publish_id}", get(one_publish))
        .route(
            "/_emulator/tiktok/publishes/{publish_id}/fail",
            post(fail_publish),
        )
        .route(
            "/_emulator/tiktok/publishes/{publish_id}/complete",
            post(complete_publish),
        )
        .route(
            "/_emulator/tiktok/publishes/{publish_id}/unpublish",
            post(unpublish),
        )
        .route("/_emulator/tiktok/revoke", post(revoke))
        .route(
            "/_emulator/tiktok/settings",
            get(get_settings).put(put_settings),
        )
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// An optional JSON body: empty means `T::default()`.
fn parse_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| admin_error(StatusCode::BAD_REQUEST, e.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MintRequest {
    scopes: Option<Vec<String>>,
    creator: Option<String>,
}

async fn mint_token(State(app): State<App>, body: Bytes) -> Response {
    let request: MintRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let scopes = request
        .scopes
        .unwrap_or_else(|| ALL_SCOPES.iter().map(|s| s.to_string()).collect());
    if let Some(unknown) = scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        return admin_error(
            StatusCode::BAD_REQUEST,
            format!("unknown scope {unknown:?}"),
        );
    }
    // Applies a pending `revoke_all_tokens` first, so the new token outlives it.
    app.faults().await;
    let settings = app.settings();
    let now = app.now_ms();
    let mut store = app.store();
    let creator = match request.creator.as_deref() {
        Some(id) => store.creator(id),
        None => store.creators.first(),
    };
    let Some(open_id) = creator.map(|c| c.open_id.clone()) else {
        return admin_error(StatusCode::NOT_FOUND, "no such creator");
    };
    let pair = store.mint_tokens(
        &open_id,
        scopes,
        now,
        settings.access_token_ttl_secs,
        settings.refresh_token_ttl_secs,
    );
    Json(json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "open_id": pair.open_id,
        "client_key": settings.client_key,
        "client_secret": settings.client_secret,
    }))
    .into_response()
}

async fn creators(State(app): State<App>) -> Json<Value> {
    let creators: Vec<Value> = app
        .store()
        .creators
        .iter()
        .map(|c| {
            let mut value = json!(c);
            value["privacy_level_options"] = json!(c.privacy_level_options());
            value
        })
        .collect();
    Json(json!({ "creators": creators }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NewCreator {
    username: String,
    display_name: Option<String>,
    private_account: bool,
}

/// Adds a creator beside the fixtures, so a test can connect as many distinct accounts as it
/// needs (each with its own caps and rate-limit windows, as on TikTok).
async fn add_creator(State(app): State<App>, body: Bytes) -> Response {
    let request: NewCreator = match parse_body(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let username = request.username.trim().to_string();
    if username.is_empty()
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return admin_error(
            StatusCode::BAD_REQUEST,
            "username: letters, digits, '.' and '_' only, not empty",
        );
    }
    let mut store = app.store();
    if store.creator(&username).is_some() {
        return admin_error(
            StatusCode::CONFLICT,
            format!("a creator named {username:?} exists"),
        );
    }
    let display_name = request.display_name.unwrap_or_else(|| username.clone());
    let creator = Creator::new(&username, &display_name, request.private_account);
    let mut value = json!(creator);
    value["privacy_level_options"] = json!(creator.privacy_level_options());
    store.creators.push(creator);
    (StatusCode::CREATED, Json(value)).into_response()
}

async fn refreshes(State(app): State<App>) -> Json<Value> {
    Json(json!({ "refreshes": app.store().refresh_grants }))
}

async fn rate_limited(State(app): State<App>) -> Json<Value> {
    Json(json!({ "rate_limited": app.store().rate_limited }))
}

/// A publish as the admin API shows it.
fn publish_view(p: &Publish) -> Value {
    json!({
        "publish_id": p.publish_id,
        "open_id": p.open_id,
        "mode": p.mode,
        "source": p.source,
        "post_info": p.post_info,
        "source_info": p.source_info,
        "privacy_level": p.privacy_level,
        "status": p.status,
        "fail_reason": p.fail_reason,
        "bytes_received": p.bytes_received,
        "sha256": p.sha256,
        "chunks_received": p.chunks_received,
        "total_chunk_count": p.upload.as_ref().map(|u| u.total_chunk_count),
        "created_ms": p.created_ms,
        "created_time": p.created_ms / 1000,
        "post_ids": p.post_ids,
        "file": p.sha256.as_ref().map(|_| format!("tiktok/{}-0", p.key)),
    })
}

async fn publishes(State(app): State<App>) -> Json<Value> {
    app.tick();
    let all: Vec<Value> = app.store().publishes.iter().map(publish_view).collect();
    Json(json!({ "publishes": all }))
}

async fn one_publish(State(app): State<App>, Path(id): Path<String>) -> Response {
    app.tick();
    change_publish(&app, &id, |_| Ok(None))
}

/// Applies `change` to a publish, sends the event it returns and answers with the publish.
fn change_publish(
    app: &App,
    id: &str,
    change: impl FnOnce(&mut Publish) -> Result<Option<Event>, String>,
) -> Response {
    let (view, event) = {
        let mut store = app.store();
        let Some(publish) = store.publish_mut(id) else {
            return admin_error(StatusCode::NOT_FOUND, format!("no publish {id:?}"));
        };
        match change(publish) {
            Ok(event) => (publish_view(publish), event),
            Err(message) => return admin_error(StatusCode::CONFLICT, message),
        }
    };
    app.emit(event.into_iter().collect());
    Json(view).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FailRequest {
    fail_reason: Option<String>,
}

async fn fail_publish(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: FailRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let reason = request.fail_reason.unwrap_or_else(|| "internal".into());
    change_publish(&app, &id, |publish| {
        if publish.is_failed() {
            return Err("the publish already failed".into());
        }
        Ok(Some(fail(publish, &reason)))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CompleteRequest {
    privacy_level: Option<String>,
}

/// The creator posts an inbox draft from the TikTok app.
async fn complete_publish(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: CompleteRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let now = app.now_ms();
    change_publish(&app, &id, |publish| {
        if publish.mode != Mode::Inbox || publish.status != Status::SendToUserInbox {
            return Err(
                "only an inbox draft in SEND_TO_USER_INBOX can be posted by the creator".into(),
            );
        }
        publish.privacy_level = Some(
            request
                .privacy_level
                .unwrap_or_else(|| "PUBLIC_TO_EVERYONE".into()),
        );
        Ok(Some(complete(publish, now)))
    })
}

async fn unpublish(State(app): State<App>, Path(id): Path<String>) -> Response {
    change_publish(&app, &id, |publish| {
        if publish.post_ids.is_empty() {
            return Err("the publish has no public post".into());
        }
        publish.privacy_level = Some("SELF_ONLY".into());
        Ok(Some(Event::publish(
            "post.publish.no_longer_publicaly_available",
            publish,
        )))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RevokeRequest {
    creator: Option<String>,
    reason: Option<u8>,
}

/// The creator removes the app's authorization from TikTok.
async fn revoke(State(app): State<App>, body: Bytes) -> Response {
    let request: RevokeRequest = match parse_body(&body) {
        Ok(r) => r,
        Err(response) => return response,
    };
    let open_id = {
        let store = app.store();
        let creator = match request.creator.as_deref() {
            Some(id) => store.creator(id),
            None => store.creators.first(),
        };
        creator.map(|c| c.open_id.clone())
    };
    let Some(open_id) = open_id else {
        return admin_error(StatusCode::NOT_FOUND, "no such creator");
    };
    app.remove_authorization(&open_id, request.reason.unwrap_or(1));
    Json(json!({"open_id": open_id, "revoked": true})).into_response()
}

async fn get_settings(State(app): State<App>) -> Json<Value> {
    Json(json!(app.settings()))
}

async fn put_settings(State(app): State<App>, body: Bytes) -> Response {
    let patch: Value = match parse_body(&body) {
        Ok(v) => v,
        Err(response) => return response,
    };
    match app.settings().patched(patch) {
        Ok(settings) => {
            app.replace_settings(settings.clone());
            Json(json!(settings)).into_response()
        }
        Err(message) => admin_error(StatusCode::BAD_REQUEST, message),
    }
}
