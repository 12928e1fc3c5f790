//! `/api/v1/drafts`: posts saved without being sent or scheduled.
//!
//! - `POST /drafts` (or `POST /posts` with `"draft": true`) takes any body `POST /posts` takes
//!   (JSON or multipart, `targets[]` or a single-account shape) and saves it as it is: only
//!   its shape is checked, nothing is sent, no limit is counted. `201` with the draft and its
//!   `issues`: what would stop it from being published now.
//! - `GET /drafts` (newest first, cursor paging), `GET /drafts/{id}` (with `issues`).
//! - `PUT /drafts/{id}` replaces what it holds (same bodies); with `If-Match: "<version>"` a
//!   draft changed since that version is refused (412) instead of overwritten.
//! - `POST /drafts/{id}/publish` makes it a post through every check of a new post: at the
//!   draft's own time, or the `scheduled_at` (null: now), `time_zone` and `schedule` given.
//!   `202` with the post; a draft becomes one post, however often it is published.
//! - `DELETE /drafts/{id}`.

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::compose::drafts::{self, Draft};
use tidepost_app::compose::{ComposeError, NewComposite};
use tidepost_domain::time::rfc3339;

use super::body;
use super::create::created_by;
use super::problems::{changed_schedule, compose_problem, issues_json};
use super::render::render;
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/drafts",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/drafts/{id}",
            get(show)
                .put(replace)
                .delete(remove)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/drafts/{id}/publish", post(publish))
}

/// A draft as the API shows it; `issues`: what stops it from being published now (left out of
/// lists, which do not check).
fn draft_json(draft: &Draft, issues: Option<Value>) -> Value {
    let body = &draft.body;
    let mut json = json!({
        "id": draft.id,
        "version": draft.version,
        "caption": body.caption,
        "media": body.media,
        "targets": body.targets,
        "scheduled_at": body.scheduled_at.map(rfc3339),
        "time_zone": body.time_zone,
        "schedule": if body.next_free_slot { "next_free_slot" } else { "exact" },
        "created_by": draft.created_by,
        "created_at": rfc3339(draft.created_at),
        "updated_at": rfc3339(draft.updated_at),
        "post_id": draft.post_id,
        "published_at": draft.published_at.map(rfc3339),
    });
    if let Some(issues) = issues {
        json["issues"] = issues;
    }
    json
}

/// The draft with what stops it, as a response with its version as the ETag.
async fn answer(
    state: &HttpState,
    workspace_id: &str,
    draft: &Draft,
    status: StatusCode,
) -> Result<Response, Problem> {
    let issues = if draft.post_id.is_some() {
        Vec::new()
    } else {
        drafts::issues(&state.app, workspace_id, draft)
            .await
            .map_err(compose_problem)?
    };
    let mut response = (
        status,
        Json(draft_json(draft, Some(Value::from(issues_json(&issues))))),
    )
        .into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", draft.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/drafts/{}", draft.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Saves a post body as a new draft (also `POST /posts` with `"draft": true`).
pub(super) async fn save(
    state: &HttpState,
    caller: &Caller,
    new: &NewComposite,
) -> Result<Response, Problem> {
    let draft = drafts::save(&state.app, &caller.workspace_id, new)
        .await
        .map_err(compose_problem)?;
    answer(state, &caller.workspace_id, &draft, StatusCode::CREATED).await
}

#[utoipa::path(
    post, path = "/api/v1/drafts", tag = "drafts",
    request_body(content = super::docs::CreatePostDoc, description = "Any body `POST /api/v1/posts` takes (`draft` is implied)"),
    responses(
        (status = 201, description = "The draft, with `issues`: what would stop it from being published now", body = super::docs::DraftDoc),
        (status = 422, description = "A field of the wrong shape", body = Problem),
    ),
)]
pub(crate) async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    let submission =
        body::read_draft(&state, &caller.workspace_id, request, created_by(&caller)).await?;
    save(&state, &caller, &submission.new).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// At most this many drafts (1 to 200, default 25).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/drafts", tag = "drafts",
    params(ListQuery),
    responses(
        (status = 200, description = "The drafts not yet published, newest first", body = super::docs::DraftListDoc),
        (status = 422, description = "`limit` out of range", body = Problem),
    ),
)]
pub(crate) async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = crate::api::paging::limit(q.limit, 25)?;
    let found = drafts::list(
        &state.app,
        &caller.workspace_id,
        crate::api::paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await
    .map_err(compose_problem)?;
    let (page, next) = crate::api::paging::page(found, limit, |d| &d.id);
    let data: Vec<Value> = page.iter().map(|d| draft_json(d, None)).collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

#[utoipa::path(
    get, path = "/api/v1/drafts/{id}", tag = "drafts",
    params(("id" = String, Path, description = "The draft's id")),
    responses(
        (status = 200, description = "The draft, with `issues` (none once published: `post_id` names the post)", body = super::docs::DraftDoc),
        (status = 404, description = "No such draft in this workspace", body = Problem),
    ),
)]
pub(crate) async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    let draft = drafts::get(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(compose_problem)?;
    answer(&state, &caller.workspace_id, &draft, StatusCode::OK).await
}

/// The version `If-Match` names (`"3"`, `W/"3"` or `3`); `*` or none: any. `what`: the
/// object whose ETag it is (`draft`, `post`).
pub(super) fn if_match(headers: &HeaderMap, what: &str) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            Problem::bad_request(format!(
                "If-Match: expected a {what}'s version as its ETag gives it (\"3\"), got {text:?}"
            ))
        })
}

#[utoipa::path(
    put, path = "/api/v1/drafts/{id}", tag = "drafts",
    params(
        ("id" = String, Path, description = "The draft's id"),
        ("If-Match" = Option<String>, Header, description = "The version the change was made on (the draft's ETag)"),
    ),
    request_body(content = super::docs::CreatePostDoc, description = "What the draft holds from now on: any body `POST /api/v1/posts` takes"),
    responses(
        (status = 200, description = "The changed draft, with `issues`", body = super::docs::DraftDoc),
        (status = 404, description = "No such draft in this workspace", body = Problem),
        (status = 409, description = "The draft was published (`post_id`): change the post instead", body = Problem),
        (status = 412, description = "The draft changed since the version in `If-Match`", body = Problem),
        (status = 422, description = "A field of the wrong shape", body = Problem),
    ),
)]
pub(crate) async fn replace(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    // Another workspace's draft is not found, whatever the body; nothing is stored for it.
    let current = drafts::get(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(compose_problem)?;
    let version = if_match(request.headers(), "draft")?;
    if current.post_id.is_some() {
        return Err(compose_problem(drafts::settled(&current)));
    }
    if let Some(version) = version
        && version != current.version
    {
        return Err(changed(current.version));
    }
    let submission =
        body::read_draft(&state, &caller.workspace_id, request, created_by(&caller)).await?;
    let draft = drafts::replace(
        &state.app,
        &caller.workspace_id,
        &id,
        &submission.new,
        version,
    )
    .await
    // Changed between the check above and the write: 412 when the change named a version.
    .map_err(|err| {
        if version.is_some() {
            changed_since(err)
        } else {
            compose_problem(err)
        }
    })?;
    answer(&state, &caller.workspace_id, &draft, StatusCode::OK).await
}

fn changed(version: i64) -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "draft-changed",
        "The draft changed",
        format!(
            "the draft changed since the version in If-Match (it is at version {version}): load it again and make the change on that"
        ),
    )
    .with("version", version)
}

/// A change made on a known version and refused: 412 when the draft moved on, else the
/// refusal as it is (published meanwhile: 409).
fn changed_since(err: ComposeError) -> Problem {
    if let ComposeError::Conflict(message) = &err
        && message.starts_with("the draft changed")
    {
        return Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "draft-changed",
            "The draft changed",
            message.clone(),
        );
    }
    compose_problem(err)
}

#[utoipa::path(
    delete, path = "/api/v1/drafts/{id}", tag = "drafts",
    params(("id" = String, Path, description = "The draft's id")),
    responses(
        (status = 204, description = "Deleted (a published draft's post stays)"),
        (status = 404, description = "No such draft in this workspace", body = Problem),
    ),
)]
pub(crate) async fn remove(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    drafts::delete(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(compose_problem)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /drafts/{id}/publish`: the time to publish at instead of the draft's own
/// (`scheduled_at: null` for now).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PublishDraft {
    #[serde(deserialize_with = "super::problems::present")]
    scheduled_at: Option<Option<String>>,
    time_zone: Option<String>,
    schedule: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/drafts/{id}/publish", tag = "drafts",
    params(("id" = String, Path, description = "The draft's id")),
    request_body(content = super::docs::PublishDraftDoc, description = "Optional: another time than the draft's"),
    responses(
        (status = 202, description = "The post it became (the same post when published before)", body = super::docs::PostDoc),
        (status = 404, description = "No such draft in this workspace", body = Problem),
        (status = 409, description = "The time would break a posting limit, or the draft changed while it was checked", body = Problem),
        (status = 422, description = "What stops it: `errors` lists every problem of every target", body = Problem),
        (status = 503, description = "The platform is not answering right now: nothing was stored", body = Problem),
    ),
)]
pub(crate) async fn publish(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let body: PublishDraft = if raw.iter().all(u8::is_ascii_whitespace) {
        PublishDraft::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| Problem::bad_request(format!("the body must be a JSON object: {e}")))?
    };
    let schedule = changed_schedule(
        body.scheduled_at.as_ref().map(Option::as_deref),
        body.time_zone.as_deref(),
        body.schedule.as_deref(),
    )?;
    let view = drafts::publish(
        &state.app,
        &caller.workspace_id,
        &id,
        schedule,
        created_by(&caller),
    )
    .await
    .map_err(compose_problem)?;
    Ok((StatusCode::ACCEPTED, Json(render(&state, &view).await?)))
}
