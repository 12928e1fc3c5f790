//! `/api/v1/accounts` (filtered by `external_ref`) and `/api/v1/connect/{platform}`: connected accounts for host
//! applications, and the authorize URL to send their users to.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tidepost_app::connect::{self, Initiator};
use tidepost_domain::time::rfc3339;
use tidepost_store::accounts::{self, Account};

use super::idempotency::OneTimeSecret;
use super::paging;
use crate::auth::{Caller, Credential};
use crate::error::{Problem, connect_problem};
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/connect/tiktok", post(connect_tiktok))
        .route("/accounts", get(list))
        .route("/accounts/{id}", get(show).delete(disconnect))
}

/// A connected account as the API shows it (built by [`account_json`]); tokens never appear.
#[derive(utoipa::ToSchema)]
#[schema(as = Account)]
#[allow(dead_code)]
struct AccountDoc {
    id: String,
    /// `tiktok` or `instagram`.
    #[schema(example = "tiktok")]
    platform: String,
    /// The account's id at the platform.
    provider_user_id: String,
    display_name: String,
    username: Option<String>,
    avatar_url: Option<String>,
    /// `active`, `needs_reauth`, `disconnected`…
    #[schema(example = "active")]
    status: String,
    /// Why the status is what it is, when it is not `active`.
    status_reason: Option<String>,
    /// True when the creator must connect again before tidepost can publish.
    reconnect_required: bool,
    /// False when the platform's last reading says the account cannot post now (TikTok's
    /// `creator_info` refused it: a banned creator, a spent daily cap; Instagram's publishing
    /// limit used up), or it must be connected again.
    can_post: bool,
    /// Why it cannot post now, when `can_post` is false for a reason other than reconnecting.
    posting_block: Option<String>,
    /// The permissions the creator granted.
    scopes: Vec<String>,
    /// Your id for the creator, from the connect link that connected it (null when none).
    external_ref: Option<String>,
    token: AccountTokenDoc,
    /// RFC 3339.
    created_at: String,
}

/// When the account's tokens expire and were last refreshed (RFC 3339), never the tokens.
#[derive(utoipa::ToSchema)]
#[schema(as = AccountToken)]
#[allow(dead_code)]
struct AccountTokenDoc {
    access_expires_at: Option<String>,
    refresh_expires_at: Option<String>,
    last_refreshed_at: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = AccountList)]
#[allow(dead_code)]
struct AccountListDoc {
    data: Vec<AccountDoc>,
    /// Pass as `after` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A page of the list (see `api/paging.rs`).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only the accounts connected for this creator of yours (the connect link's
    /// `external_ref`).
    external_ref: Option<String>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Where to send the creator to connect an account.
#[derive(utoipa::ToSchema)]
#[schema(as = ConnectStart)]
#[allow(dead_code)]
struct ConnectDoc {
    /// TikTok's consent page; the callback lands on tidepost.
    authorize_url: String,
    /// RFC 3339: the link stops working then.
    expires_at: String,
}

pub fn account_json(a: &Account, external_ref: Option<&str>) -> Value {
    let posting_block = tidepost_app::platforms::posting_block(a, tidepost_domain::now_ms());
    json!({
        "id": a.id,
        "platform": a.platform,
        "provider_user_id": a.provider_user_id,
        "display_name": a.display_name,
        "username": a.username,
        "avatar_url": a.avatar_url,
        "status": a.status,
        "status_reason": a.status_reason,
        "reconnect_required": a.needs_reauth(),
        "can_post": !a.needs_reauth() && posting_block.is_none(),
        "posting_block": posting_block,
        "scopes": a.scopes.split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "external_ref": external_ref,
        "token": {
            "access_expires_at": a.access_expires_at.map(rfc3339),
            "refresh_expires_at": a.refresh_expires_at.map(rfc3339),
            "last_refreshed_at": a.last_refreshed_at.map(rfc3339),
        },
        "created_at": rfc3339(a.created_at),
    })
}

/// `POST /api/v1/connect/tiktok`: the URL to send the creator to. The callback lands on
/// tidepost, which stores the account in the caller's workspace.
#[utoipa::path(
    post, path = "/api/v1/connect/tiktok", tag = "accounts",
    responses(
        (status = 201, description = "The TikTok authorize URL to send the creator to", body = ConnectDoc),
        (status = 503, description = "TikTok is not configured on this instance", body = Problem),
    ),
)]
async fn connect_tiktok(
    caller: Caller,
    State(state): State<HttpState>,
) -> Result<(StatusCode, Extension<OneTimeSecret>, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let user_id = match &caller.credential {
        Credential::Session { user_id } => Some(user_id.as_str()),
        Credential::ApiKey { .. } => None,
    };
    let who = Initiator {
        workspace_id: &caller.workspace_id,
        user_id,
        connect_link: None,
    };
    let url = tidepost_app::tiktok::connect::start(&state.app, who)
        .await
        .map_err(connect_problem)?;
    let expires_at = rfc3339(tidepost_domain::now_ms() + connect::STATE_TTL_MS);
    // The link holds a single-use OAuth state: a retry gets a new link, never this one again.
    Ok((
        StatusCode::CREATED,
        Extension(OneTimeSecret::Regenerate),
        Json(json!({"authorize_url": url, "expires_at": expires_at})),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/accounts", tag = "accounts",
    params(ListQuery),
    responses(
        (status = 200, description = "The workspace's connected accounts, newest first", body = AccountListDoc),
        (status = 422, description = "`limit` is out of range, or `external_ref` is not one (empty, too long, control characters)", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = paging::limit(q.limit, 50)?;
    if let Some(reference) = &q.external_ref {
        tidepost_app::connect_links::check_external_ref("external_ref", reference)
            .map_err(crate::connect_links::link_problem)?;
    }
    let rows = accounts::page_referenced(
        &state.app.db,
        &caller.workspace_id,
        q.external_ref.as_deref(),
        paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await?;
    let (list, next) = paging::page(rows, limit, |a| &a.account.id);
    Ok(Json(json!({
        "data": list
            .iter()
            .map(|r| account_json(&r.account, r.external_ref.as_deref()))
            .collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[utoipa::path(
    get, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = AccountDoc),
        (status = 404, description = "No such account in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let found = accounts::get_referenced(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))?;
    Ok(Json(account_json(
        &found.account,
        found.external_ref.as_deref(),
    )))
}

#[utoipa::path(
    delete, path = "/api/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 204, description = "Disconnected: tokens revoked at the platform (best effort) and deleted"),
        (status = 404, description = "No such account in this workspace", body = Problem),
        (status = 503, description = "The account's platform is not configured on this instance", body = Problem),
    ),
)]
async fn disconnect(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    match connect::disconnect(&state.app, &caller.workspace_id, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found("account")),
        Err(err) => Err(connect_problem(err)),
    }
}
