//! `/api/v1/posts/{id}/comments`: comments on a post between the members of its workspace
//! (who, when, text). `GET` lists them newest first with the API's one paging rule; `POST`
//! adds one, written by the caller (the signed-in person, or the API key).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tidepost_app::compose::comments::{self, CommentError, CommentText};
use tidepost_domain::time::rfc3339;
use tidepost_store::post_comments::Comment;

use super::create::created_by;
use crate::api::{ApiJson, paging};
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/posts/{id}/comments", get(list).post(create))
}

/// Who wrote a comment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CommentAuthor {
    /// `user` (a member, signed in) or `api_key`.
    #[schema(example = "user")]
    kind: &'static str,
    id: String,
    /// The member's email or the key's name; `(removed)` once gone.
    name: String,
}

/// A comment on a post.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PostComment {
    id: String,
    post_id: String,
    author: CommentAuthor,
    /// The text, as written (trimmed).
    body: String,
    /// RFC 3339, UTC.
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PostCommentList {
    data: Vec<PostComment>,
    /// Pass as `after` for the next (older) page; null on the last.
    next_cursor: Option<String>,
}

/// A new comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPostComment {
    /// 1 to 2000 characters (trimmed).
    #[schema(example = "Can we move this to Friday?")]
    body: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// At most this many comments (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

fn problem(err: CommentError) -> Problem {
    match err {
        CommentError::NotFound(_) => Problem::not_found("post"),
        CommentError::Store(e) => Problem::from(e),
        invalid @ (CommentError::Empty | CommentError::TooLong(_)) => {
            Problem::invalid(format!("body: {invalid}")).with("field", "body")
        }
    }
}

fn shown(c: Comment, author: &comments::Author) -> PostComment {
    PostComment {
        id: c.id,
        post_id: c.post_id,
        author: CommentAuthor {
            kind: author.kind,
            id: author.id.clone(),
            name: author.name.clone(),
        },
        body: c.body,
        created_at: rfc3339(c.created_at),
    }
}

#[utoipa::path(
    get, path = "/api/v1/posts/{id}/comments", tag = "posts", operation_id = "list_post_comments",
    params(("id" = String, Path, description = "The post's id"), ListQuery),
    responses(
        (status = 200, description = "The post's comments, newest first", body = PostCommentList),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 422, description = "`limit` out of range", body = Problem),
    ),
)]
pub(crate) async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<PostCommentList>, Problem> {
    caller.require_scope("api")?;
    let limit = paging::limit(q.limit, 50)?;
    let found = comments::list(
        &state.app,
        &caller.workspace_id,
        &id,
        paging::after(q.after.as_deref()),
        limit + 1,
    )
    .await
    .map_err(problem)?;
    let (page, next_cursor) = paging::page(found, limit, |c| &c.id);
    let authors = comments::authors(
        &state.app,
        &caller.workspace_id,
        &page.iter().map(|c| c.author.as_str()).collect::<Vec<_>>(),
    )
    .await?;
    let data = page
        .into_iter()
        .filter_map(|c| {
            let author = authors.get(&c.author)?.clone();
            Some(shown(c, &author))
        })
        .collect();
    Ok(Json(PostCommentList { data, next_cursor }))
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/comments", tag = "posts", operation_id = "create_post_comment",
    params(("id" = String, Path, description = "The post's id")),
    request_body = NewPostComment,
    responses(
        (status = 201, description = "The comment, written by the caller", body = PostComment),
        (status = 400, description = "The body is not JSON of this shape", body = Problem),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 422, description = "`body` empty or longer than 2000 characters (`field: body`)", body = Problem),
    ),
)]
pub(crate) async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    new: Result<ApiJson<NewPostComment>, Problem>,
) -> Result<(StatusCode, Json<PostComment>), Problem> {
    caller.require_scope("api")?;
    // Another workspace's post (or none) is a 404 whatever the body says.
    if tidepost_store::posts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .is_none()
    {
        return Err(Problem::not_found("post"));
    }
    let ApiJson(new) = new?;
    let text = CommentText::parse(&new.body).map_err(problem)?;
    let author = created_by(&caller).unwrap_or_default();
    let comment = comments::add(&state.app, &caller.workspace_id, &id, &author, text)
        .await
        .map_err(problem)?;
    Ok((
        StatusCode::CREATED,
        Json({
            let author =
                comments::author(&state.app, &caller.workspace_id, &comment.author).await?;
            shown(comment, &author)
        }),
    ))
}
