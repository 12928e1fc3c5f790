//! `POST /posts`: every shape of the body ([`super::body`]) goes through the one pipeline,
//! `compose::submit`, and is answered with the one `Post` shape.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tidepost_app::compose;

use super::body::{self, Files, Shape};
use super::problems::{compose_problem, single_problem};
use super::render::render;
use crate::auth::{Caller, Credential};
use crate::error::Problem;
use crate::state::HttpState;

/// Who made a post, as it is recorded.
pub(super) fn created_by(caller: &Caller) -> Option<String> {
    match &caller.credential {
        Credential::Session { user_id } => Some(user_id.clone()),
        Credential::ApiKey { id, .. } => Some(format!("api_key:{id}")),
    }
}

#[utoipa::path(
    post, path = "/api/v1/posts", tag = "posts",
    request_body(content = super::docs::CreatePostDoc, description = "JSON, or multipart/form-data with the same fields as text parts and `file` parts"),
    responses(
        (status = 202, description = "Accepted: the targets are queued or scheduled", body = super::docs::PostDoc),
        (status = 201, description = "With `draft: true`: the draft saved, with `issues` (see `/api/v1/drafts`)", body = super::docs::DraftDoc),
        (status = 404, description = "No such account or media in this workspace", body = Problem),
        (status = 409, description = "The time (or now) would break a posting limit: `next_slot_at` and `errors` name it", body = Problem),
        (status = 413, description = "An upload over the size limit", body = Problem),
        (status = 422, description = "Invalid: `errors` lists every problem of every target (target, account_id, platform, field, rule, message)", body = Problem),
        (status = 503, description = "The platform is not answering right now (its rate limit or a 5xx while the post was checked): `Retry-After` says when to try again; nothing was stored", body = Problem),
    ),
)]
pub(crate) async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<Response, Problem> {
    caller.require_scope("api")?;
    let submission = body::read(
        &state,
        &caller.workspace_id,
        request,
        Files::Store,
        created_by(&caller),
    )
    .await?;
    if submission.draft {
        return super::drafts::save(&state, &caller, &submission.new).await;
    }
    let view = compose::submit(&state.app, &caller.workspace_id, submission.new)
        .await
        .map_err(|err| match submission.shape {
            Shape::Composite => compose_problem(err),
            Shape::Single(platform) => single_problem(err, platform),
        })?;
    Ok((StatusCode::ACCEPTED, Json(render(&state, &view).await?)).into_response())
}
