//! `/api/v1/webhook-endpoints` and `/api/v1/webhook-deliveries`: the workspace's outbound
//! webhook endpoints (create — the secret is in the answer, once —, list, show, change, delete,
//! rotate the secret), each endpoint's deliveries, one delivery with its attempts, and re-send.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tidepost_app::outbound::deliver::{self, ResendError};
use tidepost_app::outbound::endpoints::{self, Changes, EndpointError, NewEndpoint};
use tidepost_domain::time::rfc3339;
use tidepost_store::webhook_deliveries::{self, Attempt, Delivery};
use tidepost_store::webhook_endpoints::{self, Endpoint};
use utoipa::{IntoParams, ToSchema};

use super::idempotency::OneTimeSecret;
use super::{ApiJson, paging};
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/webhook-endpoints", get(list).post(create))
        .route(
            "/webhook-endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/webhook-endpoints/{id}/rotate-secret", post(rotate_secret))
        .route("/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route("/webhook-deliveries/{id}", get(delivery))
        .route("/webhook-deliveries/{id}/resend", post(resend))
}

/// A webhook endpoint (its secret is shown only when created or rotated).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointOut {
    id: String,
    /// Where deliveries are POSTed.
    url: String,
    description: String,
    /// The event types it receives; empty for every type.
    event_types: Vec<String>,
    enabled: bool,
    /// When and why it was disabled (by a person, or after failing deliveries).
    disabled_at: Option<String>,
    disabled_reason: Option<String>,
    /// Deliveries in a row that failed after every retry.
    failure_streak: i64,
    last_success_at: Option<String>,
    /// After a rotation: until when the previous secret also signs (RFC 3339).
    previous_secret_expires_at: Option<String>,
    /// After two or more rotations within the overlap: until when each secret rotated out
    /// before the previous one still signs (RFC 3339, newest first). Each rotated-out secret
    /// signs for its whole overlap, however often the secret is rotated meanwhile.
    older_secrets_expire_at: Vec<String>,
    created_at: String,
    updated_at: String,
}

impl EndpointOut {
    fn of(e: &Endpoint) -> Self {
        let now = tidepost_domain::now_ms();
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.types().into_iter().map(str::to_string).collect(),
            enabled: e.enabled(),
            disabled_at: e.disabled_at.map(rfc3339),
            disabled_reason: e.disabled_reason.clone(),
            failure_streak: e.failure_streak,
            last_success_at: e.last_success_at.map(rfc3339),
            previous_secret_expires_at: e
                .previous_secret_at(now)
                .and(e.previous_secret_until)
                .map(rfc3339),
            older_secrets_expire_at: e
                .retired_secrets_at(now)
                .into_iter()
                .skip(usize::from(e.previous_secret_at(now).is_some()))
                .map(|r| rfc3339(r.until))
                .collect(),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// What a replay (the same request again with its `Idempotency-Key`) of a creation or a rotation
/// says instead of the signing secret.
const SECRET_SHOWN_ONCE: OneTimeSecret = OneTimeSecret::Withhold {
    fields: &["secret"],
    note: "this is a replay: the signing secret was shown once, in the first answer to this request, and is not kept; if it was lost, rotate the secret",
};

/// An endpoint with its new signing secret, shown this once (a replay has `note` instead).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpointWithSecret)]
pub struct WithSecretOut {
    #[serde(flatten)]
    #[schema(inline)]
    endpoint: EndpointOut,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). It cannot be shown again:
    /// absent from a replay (the same request again with its `Idempotency-Key`), which has
    /// `note` instead.
    secret: Option<String>,
    /// Only on a replay: the secret was shown once, in the first answer, and is not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpointList)]
pub struct EndpointList {
    data: Vec<EndpointOut>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A delivery: one event for one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryOut {
    id: String,
    endpoint_id: String,
    /// The event's id, sent as `webhook-id` on every attempt.
    event_id: String,
    event_type: String,
    /// `pending` (being retried), `succeeded` or `failed`.
    state: String,
    attempt_count: i64,
    /// When the next automatic attempt is due.
    next_attempt_at: Option<String>,
    /// The last answer's HTTP status.
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
}

impl DeliveryOut {
    fn of(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            state: d.state.clone(),
            attempt_count: d.attempts,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: rfc3339(d.created_at),
            finished_at: d.finished_at.map(rfc3339),
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct AttemptOut {
    attempt: i64,
    /// `auto` (the retry schedule) or `manual` (a re-send).
    cause: String,
    url: String,
    /// The receiver's HTTP status; null when there was no answer.
    status_code: Option<i64>,
    latency_ms: i64,
    /// At most 1 KiB of the answer.
    response_excerpt: Option<String>,
    error: Option<String>,
    started_at: String,
}

impl AttemptOut {
    fn of(a: &Attempt) -> Self {
        Self {
            attempt: a.attempt,
            cause: a.cause.clone(),
            url: a.url.clone(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt.clone(),
            error: a.error.clone(),
            started_at: rfc3339(a.started_at),
        }
    }
}

/// A delivery with the body it sends and every attempt.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryDetail)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    #[schema(inline)]
    delivery: DeliveryOut,
    /// The JSON body every attempt sends: `{"type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    body: serde_json::Value,
    attempts: Vec<AttemptOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryList)]
pub struct DeliveryList {
    data: Vec<DeliveryOut>,
    next_cursor: Option<String>,
}

fn endpoint_problem(err: EndpointError) -> Problem {
    match &err {
        EndpointError::Invalid { .. } | EndpointError::Url(_) => {
            let field = err.field().unwrap_or("body");
            Problem::invalid(err.to_string()).with("field", field)
        }
        EndpointError::Busy => Problem::conflict(err.to_string()),
        EndpointError::Vault(_) | EndpointError::Store(_) => Problem::internal(err),
    }
}

/// A page of a list (see `api/paging.rs`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// From 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/v1/webhook-endpoints", tag = "webhooks",
    params(Page),
    responses(
        (status = 200, description = "The workspace's webhook endpoints, newest first", body = EndpointList),
        (status = 422, description = "`limit` is out of range", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(page): Query<Page>,
) -> Result<Json<EndpointList>, Problem> {
    caller.require_scope("api")?;
    let limit = paging::limit(page.limit, 50)?;
    let rows = webhook_endpoints::list(
        &state.app.db,
        &caller.workspace_id,
        paging::after(page.after.as_deref()),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = paging::page(rows, limit, |e| &e.id);
    Ok(Json(EndpointList {
        next_cursor,
        data: rows.iter().map(EndpointOut::of).collect(),
    }))
}

fn yes() -> bool {
    true
}

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// An `https://` (or `http://`) URL on a public address.
    #[schema(example = "https://crm.example.com/hooks/tidepost")]
    url: String,
    #[serde(default)]
    description: String,
    /// Event types to receive (empty or absent: all): `account.connected`,
    /// `account.reconnected`, `account.needs_reauth`, `account.disconnected`, `post.published`, `post.failed`,
    /// `post.outcome_unknown`, `post.updated`, `interaction.created`, `metrics.updated`,
    /// `endpoint.disabled`.
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[utoipa::path(
    post, path = "/api/v1/webhook-endpoints", tag = "webhooks",
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "The endpoint with its secret, shown this once (a replay with the same `Idempotency-Key` has the endpoint without its secret, and a `note`)", body = WithSecretOut),
        (status = 422, description = "A field is invalid (named in `field`): an unknown event type, or a URL the SSRF guard refuses", body = Problem),
    ),
)]
async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Extension<OneTimeSecret>, Json<WithSecretOut>), Problem> {
    caller.require_scope("api")?;
    let created = endpoints::create(
        &state.app,
        &caller.workspace_id,
        NewEndpoint {
            url: body.url,
            description: body.description,
            event_types: body.event_types,
            enabled: body.enabled,
        },
    )
    .await
    .map_err(endpoint_problem)?;
    Ok((
        StatusCode::CREATED,
        Extension(SECRET_SHOWN_ONCE),
        Json(WithSecretOut {
            endpoint: EndpointOut::of(&created.endpoint),
            secret: Some(created.secret),
            note: None,
        }),
    ))
}

async fn get_endpoint(
    state: &HttpState,
    workspace_id: &str,
    id: &str,
) -> Result<Endpoint, Problem> {
    webhook_endpoints::get(&state.app.db, workspace_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))
}

#[utoipa::path(
    get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "No such endpoint in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>, Problem> {
    caller.require_scope("api")?;
    let endpoint = get_endpoint(&state, &caller.workspace_id, &id).await?;
    Ok(Json(EndpointOut::of(&endpoint)))
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    url: Option<String>,
    description: Option<String>,
    /// Replaces the list (empty: every type).
    event_types: Option<Vec<String>>,
    /// `true` enables a disabled endpoint (and forgets its failures); `false` disables it and
    /// fails its pending deliveries.
    enabled: Option<bool>,
}

#[utoipa::path(
    patch, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The endpoint as changed", body = EndpointOut),
        (status = 404, description = "No such endpoint in this workspace", body = Problem),
        (status = 422, description = "A field is invalid (named in `field`)", body = Problem),
    ),
)]
async fn update(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<EndpointOut>, Problem> {
    caller.require_scope("api")?;
    // Another workspace's endpoint is not found, whatever the body.
    get_endpoint(&state, &caller.workspace_id, &id).await?;
    let body: UpdateEndpoint = serde_json::from_slice(&raw)
        .map_err(|e| Problem::bad_request(format!("the body must be a JSON object: {e}")))?;
    let changed = endpoints::update(
        &state.app,
        &caller.workspace_id,
        &id,
        Changes {
            url: body.url,
            description: body.description,
            event_types: body.event_types,
            enabled: body.enabled,
        },
    )
    .await
    .map_err(endpoint_problem)?
    .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok(Json(EndpointOut::of(&changed)))
}

#[utoipa::path(
    delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted, with its deliveries"),
        (status = 404, description = "No such endpoint in this workspace", body = Problem),
    ),
)]
async fn remove(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    if endpoints::delete(&state.app, &caller.workspace_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("webhook endpoint"))
    }
}

#[utoipa::path(
    post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The new secret, shown this once (a replay with the same `Idempotency-Key` has no secret, and a `note`); the previous one keeps signing until `previous_secret_expires_at`", body = WithSecretOut),
        (status = 404, description = "No such endpoint in this workspace", body = Problem),
        (status = 409, description = "Rotated by someone else at the same moment", body = Problem),
    ),
)]
async fn rotate_secret(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<(Extension<OneTimeSecret>, Json<WithSecretOut>), Problem> {
    caller.require_scope("api")?;
    let rotated = endpoints::rotate_secret(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(endpoint_problem)?
        .ok_or_else(|| Problem::not_found("webhook endpoint"))?;
    Ok((
        Extension(SECRET_SHOWN_ONCE),
        Json(WithSecretOut {
            endpoint: EndpointOut::of(&rotated.endpoint),
            secret: Some(rotated.secret),
            note: None,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only `pending`, `succeeded` or `failed` deliveries.
    state: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// From 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryQuery),
    responses(
        (status = 200, description = "The endpoint's deliveries, newest first", body = DeliveryList),
        (status = 404, description = "No such endpoint in this workspace", body = Problem),
        (status = 422, description = "An unknown state or a bad limit", body = Problem),
    ),
)]
async fn deliveries(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<DeliveryList>, Problem> {
    caller.require_scope("api")?;
    let limit = paging::limit(q.limit, 50)?;
    let wanted = match q.state.as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "succeeded" | "failed")) => Some(s),
        Some(other) => {
            return Err(Problem::invalid(format!(
                "unknown state {other:?}: use pending, succeeded or failed"
            ))
            .with("field", "state"));
        }
    };
    get_endpoint(&state, &caller.workspace_id, &id).await?;
    let rows = webhook_deliveries::list_for_endpoint(
        &state.app.db,
        &caller.workspace_id,
        &id,
        wanted,
        paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = paging::page(rows, limit, |d| &d.id);
    Ok(Json(DeliveryList {
        next_cursor,
        data: rows.iter().map(DeliveryOut::of).collect(),
    }))
}

async fn detail(
    state: &HttpState,
    workspace_id: &str,
    id: &str,
) -> Result<DeliveryDetail, Problem> {
    let delivery = webhook_deliveries::get(&state.app.db, workspace_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook delivery"))?;
    let attempts = webhook_deliveries::attempts(&state.app.db, workspace_id, id).await?;
    Ok(DeliveryDetail {
        body: serde_json::from_str(&delivery.body)
            .unwrap_or(serde_json::Value::String(delivery.body.clone())),
        delivery: DeliveryOut::of(&delivery),
        attempts: attempts.iter().map(AttemptOut::of).collect(),
    })
}

#[utoipa::path(
    get, path = "/api/v1/webhook-deliveries/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery, its body and every attempt", body = DeliveryDetail),
        (status = 404, description = "No such delivery in this workspace", body = Problem),
    ),
)]
async fn delivery(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, Problem> {
    caller.require_scope("api")?;
    Ok(Json(detail(&state, &caller.workspace_id, &id).await?))
}

#[utoipa::path(
    post, path = "/api/v1/webhook-deliveries/{id}/resend", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "One more attempt is on its way (see the delivery's attempts)", body = DeliveryDetail),
        (status = 404, description = "No such delivery in this workspace", body = Problem),
        (status = 409, description = "The endpoint is disabled", body = Problem),
    ),
)]
async fn resend(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryDetail>), Problem> {
    caller.require_scope("api")?;
    match deliver::resend(&state.app, &caller.workspace_id, &id).await {
        Ok(Some(_)) => Ok((
            StatusCode::ACCEPTED,
            Json(detail(&state, &caller.workspace_id, &id).await?),
        )),
        Ok(None) => Err(Problem::not_found("webhook delivery")),
        Err(err @ ResendError::EndpointDisabled) => Err(Problem::conflict(err.to_string())),
        Err(ResendError::Store(err)) => Err(err.into()),
        Err(err @ ResendError::Jobs(_)) => Err(Problem::internal(err)),
    }
}
