//! `/api/v1/api-keys`: list, create (the secret is in the answer, once), revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::access;
use tidepost_store::api_keys::{self, ApiKey};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", delete(revoke).get(show))
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes.split_whitespace().collect::<Vec<_>>(),
        "created_at": tidepost_domain::time::rfc3339(key.created_at),
        "last_used_at": key.last_used_at.map(tidepost_domain::time::rfc3339),
        "revoked_at": key.revoked_at.map(tidepost_domain::time::rfc3339),
    })
}

async fn list(caller: Caller, State(state): State<HttpState>) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let keys = api_keys::list(&state.app.db, &caller.workspace_id).await?;
    Ok(Json(
        json!({ "data": keys.iter().map(key_json).collect::<Vec<_>>() }),
    ))
}

async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let key = api_keys::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("API key"))?;
    Ok(Json(key_json(&key)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let scopes: Vec<&str> = body.scopes.iter().map(String::as_str).collect();
    let created =
        access::create_api_key(&state.app.db, &caller.workspace_id, &body.name, &scopes).await?;
    let mut out = key_json(&created.key);
    out["secret"] = Value::String(created.secret);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn revoke(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    if api_keys::revoke(
        &state.app.db,
        &caller.workspace_id,
        &id,
        tidepost_domain::now_ms(),
    )
    .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("API key"))
    }
}
