//! `/api/v1/api-keys`: list, create (the secret is in the answer, once), revoke.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::access;
use tidepost_store::api_keys::{self, ApiKey};

use super::idempotency::OneTimeSecret;
use super::{ApiJson, paging};
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", delete(revoke).get(show))
}

/// An API key as the API shows it (built by [`key_json`]); the secret never appears again.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
#[allow(dead_code)]
struct KeyDoc {
    id: String,
    name: String,
    /// The key's first characters, to recognise it.
    prefix: String,
    /// `api` and/or `worker`.
    scopes: Vec<String>,
    /// The role the key acts with (capped by its creator's role, if a member made it).
    role: tidepost_domain::Role,
    /// RFC 3339.
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

/// A new API key: [`KeyDoc`] and its secret, shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = NewApiKey)]
#[allow(dead_code)]
struct NewKeyDoc {
    #[schema(inline)]
    #[serde(flatten)]
    key: KeyDoc,
    /// Send it as `Authorization: Bearer <secret>`; it cannot be shown again. Absent from a
    /// replay (the same request again with its `Idempotency-Key`), which has `note` instead.
    secret: Option<String>,
    /// Only on a replay: the secret was shown once, in the first answer, and is not kept.
    note: Option<String>,
}

/// What a replay of a key's creation says instead of the secret.
const SECRET_SHOWN_ONCE: OneTimeSecret = OneTimeSecret::Withhold {
    fields: &["secret"],
    note: "this is a replay: the key's secret was shown once, in the first answer to this request, and is not kept; if it was lost, revoke this key and create a new one",
};

#[derive(utoipa::ToSchema)]
#[schema(as = ApiKeyList)]
#[allow(dead_code)]
struct KeyListDoc {
    data: Vec<KeyDoc>,
    /// Pass as `after` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A page of a list (see `api/paging.rs`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `next_cursor` of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes.split_whitespace().collect::<Vec<_>>(),
        "role": key.role,
        "created_at": tidepost_domain::time::rfc3339(key.created_at),
        "last_used_at": key.last_used_at.map(tidepost_domain::time::rfc3339),
        "revoked_at": key.revoked_at.map(tidepost_domain::time::rfc3339),
    })
}

#[utoipa::path(
    get, path = "/api/v1/api-keys", tag = "api-keys",
    params(ListQuery),
    responses(
        (status = 200, description = "The workspace's API keys, revoked ones included, newest first", body = KeyListDoc),
        (status = 422, description = "`limit` is out of range", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = paging::limit(q.limit, 50)?;
    let rows = api_keys::page(
        &state.app.db,
        &caller.workspace_id,
        paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await?;
    let (keys, next) = paging::page(rows, limit, |k| &k.id);
    Ok(Json(json!({
        "data": keys.iter().map(key_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[utoipa::path(
    get, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The API key's id")),
    responses(
        (status = 200, description = "The API key", body = KeyDoc),
        (status = 404, description = "No such API key in this workspace", body = Problem),
    ),
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    /// What the key is for, to recognise it later.
    #[schema(example = "CRM sync")]
    name: String,
    /// `api` (the default) and/or `worker`.
    #[serde(default)]
    #[schema(example = json!(["api"]))]
    scopes: Vec<String>,
    /// The role the key acts with (default: the caller's own). Never above the caller's: a key
    /// made by a member is capped by that member's role for as long as it lives.
    role: Option<tidepost_domain::Role>,
}

#[utoipa::path(
    post, path = "/api/v1/api-keys", tag = "api-keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The new key with its secret, shown this once (a replay with the same `Idempotency-Key` has the key without its secret, and a `note`)", body = NewKeyDoc),
        (status = 422, description = "The name is empty or a scope is unknown", body = Problem),
    ),
)]
async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Extension<OneTimeSecret>, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let scopes: Vec<&str> = body.scopes.iter().map(String::as_str).collect();
    // A key made by a key is tied to the same member as its parent, if any.
    let creator_id = match &caller.credential {
        crate::auth::Credential::Session { user_id } => Some(user_id.clone()),
        crate::auth::Credential::ApiKey { id, .. } => {
            api_keys::get(&state.app.db, &caller.workspace_id, id)
                .await?
                .and_then(|parent| parent.created_by)
        }
    };
    let creator = creator_id.as_deref().map(|id| (id, caller.role));
    let role = body.role.unwrap_or(caller.role);
    if role > caller.role {
        return Err(access::AccessError::KeyAboveCreator {
            asked: role,
            yours: caller.role,
        }
        .into());
    }
    let grant = access::KeyGrant {
        role,
        created_by: creator,
    };
    let created = access::create_api_key_as(
        &state.app.db,
        &caller.workspace_id,
        &body.name,
        &scopes,
        grant,
    )
    .await?;
    let mut out = key_json(&created.key);
    out["secret"] = Value::String(created.secret);
    Ok((StatusCode::CREATED, Extension(SECRET_SHOWN_ONCE), Json(out)))
}

#[utoipa::path(
    delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "The API key's id")),
    responses(
        (status = 204, description = "Revoked: the key no longer authenticates"),
        (status = 404, description = "No such API key in this workspace", body = Problem),
    ),
)]
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
