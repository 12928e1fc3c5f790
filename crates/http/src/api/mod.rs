//! The REST API under `/api/v1`. Every route authenticates a [`Caller`](crate::auth::Caller)
//! bound to one workspace, answers JSON, and reports errors as `application/problem+json`.

mod accounts;
pub(crate) mod crm;
pub(crate) mod idempotency;
pub(crate) mod jobs;
mod keys;
pub(crate) mod media;
pub mod openapi;
pub(crate) mod paging;
mod posts;
mod uploads;
mod webhook_endpoints;

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/me", get(me))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(keys::router())
        .merge(accounts::router())
        .merge(crate::instagram::api_router())
        .merge(crate::connect_links::api_router())
        .merge(crate::widget::api_router())
        .merge(posts::router())
        .merge(jobs::router())
        .merge(media::router())
        .merge(uploads::router())
        .merge(webhook_endpoints::router())
        .merge(crm::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(openapi::problems_only))
}

/// The answer for any path under `/api` that is no route (also used by the root fallback for
/// `/api`, `/api/v1/` and other versions, so API clients never get an HTML page).
pub(crate) async fn unknown_route() -> Problem {
    Problem::new(
        axum::http::StatusCode::NOT_FOUND,
        "unknown-route",
        "Unknown route",
        "no such API route",
    )
}

async fn method_not_allowed(method: axum::http::Method) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("this API route does not take {method}"),
    )
}

/// `GET /api/v1/me`: which workspace the credential belongs to.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "workspace",
    responses((status = 200, description = "The caller's workspace and credential", body = MeDoc)),
)]
async fn me(
    caller: Caller,
    axum::extract::State(state): axum::extract::State<HttpState>,
) -> Result<Json<Value>, Problem> {
    let ws = tidepost_store::workspaces::by_id(&state.app.db, &caller.workspace_id)
        .await?
        .ok_or_else(|| Problem::not_found("workspace"))?;
    let (kind, scopes) = match &caller.credential {
        crate::auth::Credential::ApiKey { scopes, .. } => ("api_key", scopes.clone()),
        crate::auth::Credential::Session { .. } => ("session", "api".to_string()),
    };
    Ok(Json(json!({
        "workspace": {"id": ws.id, "slug": ws.slug, "name": ws.name},
        "credential": {"kind": kind, "scopes": scopes.split_whitespace().collect::<Vec<_>>(), "role": caller.role},
    })))
}

/// The answer of `GET /api/v1/me` (built with `json!` in [`me`]).
#[derive(utoipa::ToSchema)]
#[schema(as = Me)]
#[allow(dead_code)]
struct MeDoc {
    workspace: MeWorkspaceDoc,
    credential: MeCredentialDoc,
}

#[derive(utoipa::ToSchema)]
#[schema(as = MeWorkspace)]
#[allow(dead_code)]
struct MeWorkspaceDoc {
    id: String,
    slug: String,
    name: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = MeCredential)]
#[allow(dead_code)]
struct MeCredentialDoc {
    /// `api_key`, or `session` for a signed-in browser.
    #[schema(example = "api_key")]
    kind: String,
    /// `api` and/or `worker`.
    scopes: Vec<String>,
}

/// JSON bodies whose parse errors are problem+json with the parser's reason.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejection_problem(rejection)),
        }
    }
}

/// A JSON body axum refused, as problem+json.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "axum's JsonRejection is #[non_exhaustive]: a rejection it adds is a 400 with its own text"
)]
fn rejection_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        // A body over the route's limit is 413 (not a 400 about its JSON).
        other if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            other.body_text(),
        ),
        other => Problem::bad_request(other.body_text()),
    }
}
