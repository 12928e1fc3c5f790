//! `/api/v1/posts`: publish to TikTok or Instagram and follow the result. Every way to create
//! a post — JSON or multipart, one account or `targets[]`, `POST /posts/validate` — is read
//! by [`body`] into one composite post and checked by `tidepost_app::compose` ([`create`],
//! [`validate`]); every answer is the one `Post` shape ([`render`]).
//!
//! - `POST /posts`: JSON (`media_url` for PULL_FROM_URL, `photo_urls` for a photo post, or
//!   `media_id` of stored media) or `multipart/form-data` with the same fields as text parts and
//!   a `file` part, streamed to disk (never held in memory; its own body limit,
//!   `max_upload_bytes`).
//! - Instagram targets: an `instagram` object instead (`media_type` image, reel, carousel or
//!   story; `items` — alias `children` — each a `url` or the `media_id` of an upload, or
//!   `media_url` / `media_id` for one media; `cover_url` and `share_to_feed` for reels; its own
//!   `caption` or the top-level one). In multipart, `instagram` is a text part holding that JSON
//!   and every `file` part is stored and appended to its items in order.
//! - One post to several accounts: `targets: [{account_id, caption?, tiktok?{…}, instagram?{…}}]`
//!   with the shared `caption` and `media: [{url | media_id, kind?}]` (or `media_url`,
//!   `media_id`, `photo_urls`, multipart files), handled by `tidepost_app::compose`: every
//!   problem of every target at once (`errors`: target, account_id, platform, field, rule,
//!   message, next_slot_at), all or nothing.
//! - Scheduling (either shape): `scheduled_at` (RFC 3339 with an offset, or a local time with
//!   `time_zone`, an IANA name) and `schedule: "next_free_slot"` to take the next slot the
//!   daily limits leave instead of a refusal (409 with `next_slot_at`).
//! - `GET /posts?limit=&after=&state=&account_id=&when=scheduled|past`: newest first, cursor
//!   pagination (`next_cursor`).
//! - `GET /posts/{id}`: the post and its targets (state, progress, bytes, error, provider ids
//!   as strings, scheduled time).
//! - `PATCH /posts/{id}` (merge-style: `caption`, `media`, `scheduled_at` — null for now —,
//!   `time_zone`, `schedule`, `targets: {"<account_id>": {caption?, tiktok?, instagram?} |
//!   null}`): edits what has not been sent, through the checks of a new post. Targets already
//!   sending or sent keep theirs and are listed in `refused` with the reason, while the others
//!   change (409 `targets-started` when none can); a target that starts while the edit is
//!   saved makes it a 409 with nothing changed. `If-Match` with the post's `ETag` (its
//!   `version`): 412 when it changed since.
//! - `GET /posts/{id}/history`: who changed what and when, newest first, cursor paging.
//! - `DELETE /posts/{id}` and `POST /posts/{id}/cancel`: cancels the targets not started yet
//!   (409 when none is left); `POST /posts/{id}/targets/{target}/retry`: one failed target.
//! - A target whose outcome is unknown (`error.code` `init_outcome_unknown`: TikTok may have
//!   the post) is not retried: `POST /posts/{id}/targets/{target}/mark-published` (`video`, a
//!   link or id, optional) when it is on TikTok, `POST /posts/{id}/targets/{target}/send-again`
//!   with `{"confirm": true}` when it is not — the only way to risk a second post.
//! - The `Idempotency-Key` header (or the `idempotency_key` field) names the post: the same key
//!   returns the same post.

mod body;
pub(crate) mod comments;
mod create;
mod docs;
pub(crate) mod drafts;
mod problems;
mod render;
mod validate;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::compose::{self, ComposeError};
use tidepost_app::pipeline::{self, PostView, PublishError};
use tidepost_app::tiktok;
use tidepost_domain::{Platform, TargetState};

pub(crate) use create::{__path_create, create};
use docs::{PostDoc, PostHistoryDoc, PostListDoc, UpdatePostDoc};
use problems::{changed_schedule, field_problem};
pub use problems::{compose_problem, problem, problem_on};
pub use render::render;
pub(crate) use validate::{__path_validate, validate};

use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/posts",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/posts/validate", post(validate))
        .route("/posts/{id}", get(show).patch(update).delete(remove))
        .route("/posts/{id}/history", get(history))
        .route("/posts/{id}/cancel", post(cancel))
        .route("/posts/{id}/targets/{target}/retry", post(retry))
        .route(
            "/posts/{id}/targets/{target}/mark-published",
            post(mark_published),
        )
        .route("/posts/{id}/targets/{target}/send-again", post(send_again))
        .merge(drafts::router())
        .merge(comments::router())
}

/// What an action on post `id` answers: the post, or the refusal naming its platform.
async fn answer(
    state: &HttpState,
    workspace_id: &str,
    id: &str,
    done: Result<PostView, PublishError>,
) -> Result<Json<Value>, Problem> {
    match done {
        Ok(view) => Ok(Json(render(state, &view).await?)),
        Err(err) => Err(problem_on(err, platform_of(state, workspace_id, id).await)),
    }
}

/// The platform of a post's target, for naming it in errors.
async fn platform_of(state: &HttpState, workspace_id: &str, post_id: &str) -> Option<Platform> {
    tidepost_store::posts::targets_of(&state.app.db, workspace_id, post_id)
        .await
        .ok()
        .and_then(|t| t.first().map(|t| t.platform))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// At most this many posts (1 to 200, default 25).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// Posts with a target in this state.
    state: Option<String>,
    /// Posts with a target on this account.
    account_id: Option<String>,
    /// `scheduled` (waiting for their time) or `past` (the others).
    when: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/posts", tag = "posts",
    params(ListQuery),
    responses(
        (status = 200, description = "Posts, newest first", body = PostListDoc),
        (status = 422, description = "An unknown state or when, or `limit` out of range", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = super::paging::limit(q.limit, 25)?;
    if let Some(s) = q.state.as_deref()
        && TargetState::parse(s).is_none()
    {
        return Err(field_problem(
            "state",
            format!(
                "expected one of queued, scheduled, uploading, processing, published, failed, cancelled; got {s:?}"
            ),
        ));
    }
    let scheduled = match q.when.as_deref() {
        None | Some("") | Some("all") => None,
        Some("scheduled") => Some(true),
        Some("past") => Some(false),
        Some(other) => {
            return Err(field_problem(
                "when",
                format!("expected scheduled or past, got {other:?}"),
            ));
        }
    };
    let filter = tidepost_store::posts::PostFilter {
        target_state: q.state.filter(|s| !s.is_empty()),
        account_id: q.account_id.filter(|s| !s.is_empty()),
        scheduled,
        before: q.after.filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let views = compose::list(&state.app, &caller.workspace_id, &filter, limit + 1)
        .await
        .map_err(compose_problem)?;
    let (views, next) = super::paging::page(views, limit, |v| &v.post.id);
    let mut data = Vec::with_capacity(views.len());
    for view in &views {
        data.push(render(&state, view).await?);
    }
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

/// The body of `PATCH /posts/{id}`, merge-style: a field left out is unchanged;
/// `scheduled_at: null` means now; in `targets`, an account id with `null` removes its target
/// and with an object adds the account or replaces its target's caption and options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpdatePost {
    caption: Option<String>,
    media: Option<Vec<tidepost_app::pipeline::media::Item>>,
    #[serde(deserialize_with = "problems::present")]
    scheduled_at: Option<Option<String>>,
    time_zone: Option<String>,
    schedule: Option<String>,
    targets: Option<std::collections::BTreeMap<String, Option<TargetChange>>>,
}

/// A target's part of `PATCH /posts/{id}`: what it holds from now on (its account is the key).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TargetChange {
    caption: Option<String>,
    tiktok: Option<compose::TikTokOptions>,
    instagram: Option<compose::InstagramOptions>,
    threads: Option<tidepost_app::platforms::threads::options::ThreadsOptions>,
}

/// The post's version as its ETag.
fn with_etag(mut response: Response, version: i64) -> Response {
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// An edit refused: 412 on a stale `If-Match`, 409 with `refused` (each target and why) when
/// no target can take it; issues named by account (`targets.<account_id>.…`) rather than by
/// their place in the post as it would have been.
fn edit_problem(err: ComposeError) -> Problem {
    match err {
        ComposeError::Publish(PublishError::NotFound(what)) => Problem::not_found(what),
        ComposeError::Invalid(issues) => compose_problem(ComposeError::Invalid(
            issues
                .into_iter()
                .map(|i| match (i.target, &i.account_id) {
                    (Some(index), Some(account)) => compose::Issue {
                        field: i.field.replacen(
                            &format!("targets[{index}]"),
                            &format!("targets.{account}"),
                            1,
                        ),
                        ..i
                    },
                    _ => i,
                })
                .collect(),
        )),
        other @ (ComposeError::NotFound(_)
        | ComposeError::Conflict(_)
        | ComposeError::Unavailable(_)
        | ComposeError::Store(_)
        | ComposeError::Publish(_)
        | ComposeError::Stale(_)
        | ComposeError::Started(_)) => compose_problem(other),
    }
}

#[utoipa::path(
    patch, path = "/api/v1/posts/{id}", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("If-Match" = Option<String>, Header, description = "The version the change was made on (the post's ETag)"),
    ),
    request_body = UpdatePostDoc,
    responses(
        (status = 200, description = "The edited post; `refused` lists the targets that kept what they had (already sending or sent), each with its reason", body = PostDoc),
        (status = 400, description = "Not a JSON object of these fields, or a field of the wrong type", body = Problem),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "Every target the change touches has started (`refused`), a target started while the edit was saved (nothing changed), or the new time would break a posting limit (`next_slot_at`)", body = Problem),
        (status = 412, description = "The post changed since the version in `If-Match`", body = Problem),
        (status = 422, description = "Nothing to change, or what the post would be is invalid: `errors` lists every problem, as for a new post", body = Problem),
        (status = 503, description = "The platform is not answering right now: nothing was changed", body = Problem),
    ),
)]
async fn update(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    // Another workspace's post is not found, whatever the body.
    if tidepost_store::posts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .is_none()
    {
        return Err(Problem::not_found("post"));
    }
    let version = drafts::if_match(&headers, "post")?;
    // Not JSON, or not an object: 400. A field of the wrong type or unknown: 422 naming it,
    // as a new post's body.
    let fields: serde_json::Map<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| Problem::bad_request(format!("the body must be a JSON object: {e}")))?;
    let body: UpdatePost =
        serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            if path == "." {
                Problem::invalid(message)
            } else {
                field_problem(&path, message)
            }
        })?;
    let schedule = changed_schedule(
        body.scheduled_at.as_ref().map(Option::as_deref),
        body.time_zone.as_deref(),
        body.schedule.as_deref(),
    )?;
    if body.caption.is_none()
        && schedule.is_none()
        && body.media.is_none()
        && body.targets.as_ref().is_none_or(|t| t.is_empty())
    {
        return Err(Problem::invalid(
            "nothing to change: give a caption, media, targets or a scheduled_at (null for now)",
        ));
    }
    let targets = body
        .targets
        .unwrap_or_default()
        .into_iter()
        .map(|(account_id, change)| {
            let spec = change.map(|c| compose::TargetSpec {
                account_id: account_id.clone(),
                caption: c.caption,
                tiktok: c.tiktok,
                instagram: c.instagram,
                threads: c.threads,
            });
            (account_id, spec)
        })
        .collect();
    let edited = compose::update(
        &state.app,
        &caller.workspace_id,
        &id,
        compose::Update {
            caption: body.caption,
            media: body.media,
            schedule,
            targets,
            version,
            by: create::created_by(&caller),
        },
    )
    .await
    .map_err(edit_problem)?;
    let mut json = render(&state, &edited.view).await?;
    json["refused"] = serde_json::to_value(&edited.refused).unwrap_or_default();
    Ok(with_etag(
        Json(json).into_response(),
        edited.view.post.version,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// At most this many entries (1 to 200, default 25).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/posts/{id}/history", tag = "posts",
    params(("id" = String, Path, description = "The post's id"), HistoryQuery),
    responses(
        (status = 200, description = "Who changed what and when (its creation, edits, moves, cancellations), newest first", body = PostHistoryDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 422, description = "`limit` out of range", body = Problem),
    ),
)]
async fn history(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = super::paging::limit(q.limit, 25)?;
    if tidepost_store::posts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .is_none()
    {
        return Err(Problem::not_found("post"));
    }
    let entries = compose::history::list(
        &state.app,
        &caller.workspace_id,
        &id,
        super::paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await?;
    let (entries, next) = super::paging::page(entries, limit, |e| &e.id);
    let data: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": tidepost_domain::time::rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "changes": e.changes,
            })
        })
        .collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

#[utoipa::path(
    get, path = "/api/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post and each target's state and progress; its `version` is the `ETag`", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    let view = pipeline::get(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(problem)?;
    let version = view.post.version;
    let json = answer(&state, &caller.workspace_id, &id, Ok(view)).await?;
    Ok(with_etag(json.into_response(), version))
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/cancel", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post, its targets not started yet cancelled", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "Every target has started or finished", body = Problem),
    ),
)]
async fn cancel(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let by = create::created_by(&caller);
    let done = pipeline::cancel_by(&state.app, &caller.workspace_id, &id, by.as_deref()).await;
    answer(&state, &caller.workspace_id, &id, done).await
}

#[utoipa::path(
    delete, path = "/api/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post, its targets not started yet cancelled", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "Every target has started or finished", body = Problem),
    ),
)]
async fn remove(
    caller: Caller,
    state: State<HttpState>,
    id: Path<String>,
) -> Result<Json<Value>, Problem> {
    cancel(caller, state, id).await
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/retry", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The failed target's id"),
    ),
    responses(
        (status = 200, description = "The post, the target queued again", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target has not failed", body = Problem),
    ),
)]
async fn retry(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let done = pipeline::retry(&state.app, &caller.workspace_id, &id, &target).await;
    answer(&state, &caller.workspace_id, &id, done).await
}

/// The body of `POST …/mark-published`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = MarkPublished)]
#[serde(default, deny_unknown_fields)]
struct MarkPublishedBody {
    /// The TikTok video's link (`…/video/<id>`) or numeric id, when known.
    video: Option<String>,
}

/// The body of `POST …/send-again`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = SendAgain)]
#[serde(default, deny_unknown_fields)]
struct SendAgainBody {
    /// Must be `true`: the caller checked that the post is not on TikTok.
    confirm: bool,
}

/// A JSON body that may be empty (read as `{}`).
fn optional_body<T: Default + serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw)
        .map_err(|e| Problem::invalid(format!("the body is not valid JSON for this action: {e}")))
}

/// What the two ways of settling a target whose outcome is unknown (`mark-published`,
/// `send-again`) share: the `api` scope, an optional JSON body, the action, and the post as it
/// then is.
async fn settle_unknown<B: Default + serde::de::DeserializeOwned>(
    caller: &Caller,
    state: &HttpState,
    raw: &[u8],
    action: impl AsyncFnOnce(B) -> Result<PostView, PublishError>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let body: B = optional_body(raw)?;
    let view = action(body).await.map_err(problem)?;
    Ok(Json(render(state, &view).await?))
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/mark-published", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The id of the target whose outcome is unknown"),
    ),
    request_body(content = MarkPublishedBody, description = "Optional: the video's link or id"),
    responses(
        (status = 200, description = "The post, the target published", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target's outcome is not unknown", body = Problem),
        (status = 422, description = "The video is not a TikTok video link or id", body = Problem),
    ),
)]
async fn mark_published(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    settle_unknown(&caller, &state, &raw, async |body: MarkPublishedBody| {
        let ws = &caller.workspace_id;
        tiktok::reconcile::mark_published(&state.app, ws, &id, &target, body.video.as_deref()).await
    })
    .await
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/send-again", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The id of the target whose outcome is unknown"),
    ),
    request_body(content = SendAgainBody, description = "`confirm: true` is required"),
    responses(
        (status = 200, description = "The post, the target queued for a new publish", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target's outcome is not unknown", body = Problem),
        (status = 422, description = "Not confirmed", body = Problem),
    ),
)]
async fn send_again(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    settle_unknown(&caller, &state, &raw, async |body: SendAgainBody| {
        let ws = &caller.workspace_id;
        tiktok::reconcile::send_again(&state.app, ws, &id, &target, body.confirm).await
    })
    .await
}
