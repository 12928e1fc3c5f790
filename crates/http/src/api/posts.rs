//! `/api/v1/posts`: publish to TikTok and follow the result.
//!
//! - `POST /posts`: JSON (`media_url` for PULL_FROM_URL, `photo_urls` for a photo post, or
//!   `media_id` of stored media) or `multipart/form-data` with the same fields as text parts and
//!   a `file` part, streamed to disk (never held in memory; its own body limit,
//!   `max_upload_bytes`).
//! - `GET /posts?limit=&after=`: newest first, cursor pagination (`next_cursor`).
//! - `GET /posts/{id}`: the post and its targets (state, bytes, error, provider ids as strings).
//! - `POST /posts/{id}/cancel`, `POST /posts/{id}/targets/{target}/retry`.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::publish::{
    self, MediaSource, Mode, NewPost, PostOptions, PostView, PublishError,
};
use tidepost_domain::{PostSummary, TargetState};
use tokio_util::io::StreamReader;

use crate::auth::{Caller, Credential};
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/posts",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/posts/{id}", get(show))
        .route("/posts/{id}/cancel", post(cancel))
        .route("/posts/{id}/targets/{target}/retry", post(retry))
}

/// A publish error as problem+json.
pub fn problem(err: PublishError) -> Problem {
    match err {
        PublishError::Invalid { field, message } => {
            Problem::invalid(format!("{field}: {message}")).with("field", field)
        }
        PublishError::NotFound(what) => Problem::not_found(what),
        PublishError::Quota {
            message,
            next_slot_ms,
        } => {
            let wait = (next_slot_ms - tidepost_domain::now_ms()).max(1000) / 1000;
            Problem::too_many_requests(message, u64::try_from(wait).unwrap_or(1))
                .with("next_slot_at", tidepost_domain::time::rfc3339(next_slot_ms))
        }
        PublishError::Conflict(message) => Problem::conflict(message),
        PublishError::NeedsReauth(message) => Problem::new(
            StatusCode::CONFLICT,
            "needs-reauth",
            "The account must be connected again",
            format!("{message}; connect the TikTok account again"),
        ),
        PublishError::Provider(e) => {
            let retryable = e.is_retryable();
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-error",
                "TikTok refused",
                e.message,
            )
            .with("provider_code", e.code)
            .with("retryable", retryable)
        }
        PublishError::Unavailable(message) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            message,
        ),
        PublishError::TooLarge { max } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Upload too large",
            format!("the file is larger than the {max} bytes allowed"),
        ),
        other => Problem::internal(other),
    }
}

/// One post as the API shows it.
pub fn post_json(view: &PostView) -> Value {
    let states: Vec<TargetState> = view
        .targets
        .iter()
        .map(|t| TargetState::parse(&t.state).unwrap_or(TargetState::Failed))
        .collect();
    let options: Value = serde_json::from_str(&view.post.options).unwrap_or(Value::Null);
    json!({
        "id": view.post.id,
        "kind": view.post.kind,
        "caption": view.post.caption,
        "media_id": view.post.media_id,
        "media_url": view.post.media_url,
        "options": options,
        "summary": PostSummary::of(&states).as_str(),
        "created_at": tidepost_domain::time::rfc3339(view.post.created_at),
        "targets": view.targets.iter().map(|t| {
            let post_ids = t.post_ids();
            json!({
                "id": t.id,
                "account_id": t.account_id,
                "platform": t.platform,
                "mode": t.mode,
                "source": t.source,
                "state": t.state,
                "bytes_total": t.bytes_total,
                "bytes_sent": t.bytes_sent,
                "chunks_total": t.chunks_total,
                "chunks_acked": t.chunks_acked,
                "publish_id": t.publish_id,
                "provider_status": t.provider_status,
                "post_ids": post_ids,
                "post_url": post_ids.first().map(|id| format!("https://www.tiktok.com/video/{id}")),
                "error": t.error_code.as_ref().map(|code| json!({
                    "code": code,
                    "message": t.error_message,
                    "retryable": t.error_retryable == 1,
                })),
                "updated_at": tidepost_domain::time::rfc3339(t.updated_at),
                "finished_at": t.finished_at.map(tidepost_domain::time::rfc3339),
            })
        }).collect::<Vec<_>>(),
    })
}

/// The JSON body of `POST /posts` (multipart parts carry the same names).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CreatePost {
    account_id: String,
    mode: Option<Mode>,
    caption: String,
    privacy_level: Option<String>,
    disable_comment: bool,
    disable_duet: bool,
    disable_stitch: bool,
    video_cover_timestamp_ms: Option<u32>,
    brand_content_toggle: bool,
    brand_organic_toggle: bool,
    is_aigc: bool,
    duration_sec: Option<u32>,
    media_url: Option<String>,
    media_id: Option<String>,
    photo_urls: Vec<String>,
    photo_cover_index: u32,
    idempotency_key: Option<String>,
}

impl CreatePost {
    fn set(&mut self, name: &str, value: String) -> Result<(), Problem> {
        let flag = |v: &str| matches!(v, "true" | "1" | "on" | "yes");
        let number = |v: &str, field: &str| {
            v.trim().parse::<u32>().map_err(|_| {
                Problem::invalid(format!("{field}: expected a whole number, got {v:?}"))
                    .with("field", field.to_string())
            })
        };
        match name {
            "account_id" => self.account_id = value,
            "mode" => {
                self.mode = Some(match value.as_str() {
                    "direct" => Mode::Direct,
                    "inbox" => Mode::Inbox,
                    _ => {
                        return Err(Problem::invalid("mode: expected direct or inbox")
                            .with("field", "mode"));
                    }
                })
            }
            "caption" => self.caption = value,
            "privacy_level" => self.privacy_level = Some(value).filter(|v| !v.is_empty()),
            "disable_comment" => self.disable_comment = flag(&value),
            "disable_duet" => self.disable_duet = flag(&value),
            "disable_stitch" => self.disable_stitch = flag(&value),
            "brand_content_toggle" => self.brand_content_toggle = flag(&value),
            "brand_organic_toggle" => self.brand_organic_toggle = flag(&value),
            "is_aigc" => self.is_aigc = flag(&value),
            "video_cover_timestamp_ms" if !value.is_empty() => {
                self.video_cover_timestamp_ms = Some(number(&value, "video_cover_timestamp_ms")?)
            }
            "duration_sec" if !value.is_empty() => {
                self.duration_sec = Some(number(&value, "duration_sec")?)
            }
            "media_url" => self.media_url = Some(value).filter(|v| !v.is_empty()),
            "idempotency_key" => self.idempotency_key = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
        Ok(())
    }

    fn into_new_post(self, media: MediaSource, created_by: Option<String>) -> NewPost {
        NewPost {
            account_id: self.account_id,
            mode: self.mode.unwrap_or(Mode::Direct),
            options: PostOptions {
                caption: self.caption,
                privacy_level: self.privacy_level,
                disable_comment: self.disable_comment,
                disable_duet: self.disable_duet,
                disable_stitch: self.disable_stitch,
                video_cover_timestamp_ms: self.video_cover_timestamp_ms,
                brand_content_toggle: self.brand_content_toggle,
                brand_organic_toggle: self.brand_organic_toggle,
                is_aigc: self.is_aigc,
                duration_sec: self.duration_sec,
                photo_cover_index: self.photo_cover_index,
                photo_urls: self.photo_urls,
            },
            media,
            idempotency_key: self.idempotency_key,
            created_by,
        }
    }
}

async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let created_by = match &caller.credential {
        Credential::Session { user_id } => Some(user_id.clone()),
        Credential::ApiKey { id, .. } => Some(format!("api_key:{id}")),
    };
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (body, media) = if is_multipart {
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        let mut body = CreatePost::default();
        let mut stored = None;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let file_name = field.file_name().map(str::to_string);
                let reader = StreamReader::new(field.map_err(std::io::Error::other));
                let media = publish::media::store(
                    &state.app,
                    &caller.workspace_id,
                    reader,
                    &content_type,
                    file_name.as_deref(),
                )
                .await
                .map_err(problem)?;
                stored = Some(media.id);
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| Problem::bad_request(e.body_text()))?;
                body.set(&name, text)?;
            }
        }
        let media = match (stored, body.media_url.clone()) {
            (Some(id), _) => MediaSource::Stored(id),
            (None, Some(url)) => MediaSource::VideoUrl(url),
            (None, None) => {
                return Err(Problem::invalid(
                    "file: attach the video as a `file` part, or give a media_url",
                )
                .with("field", "file"));
            }
        };
        (body, media)
    } else {
        let crate::api::ApiJson(body) =
            crate::api::ApiJson::<CreatePost>::from_request(request, &state).await?;
        let media = match (&body.media_id, &body.media_url, body.photo_urls.is_empty()) {
            (Some(id), None, true) => MediaSource::Stored(id.clone()),
            (None, Some(url), true) => MediaSource::VideoUrl(url.clone()),
            (None, None, false) => MediaSource::Photos,
            _ => {
                return Err(Problem::invalid(
                    "media: give exactly one of media_url (a video TikTok downloads), photo_urls (a photo post) or media_id (stored media)",
                )
                .with("field", "media"));
            }
        };
        (body, media)
    };
    if body.account_id.is_empty() {
        return Err(
            Problem::invalid("account_id: choose the TikTok account to post to")
                .with("field", "account_id"),
        );
    }
    let view = publish::submit(
        &state.app,
        &caller.workspace_id,
        body.into_new_post(media, created_by),
    )
    .await
    .map_err(problem)?;
    Ok((StatusCode::ACCEPTED, Json(post_json(&view))))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
}

async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = q.limit.unwrap_or(25).clamp(1, 100);
    let posts = tidepost_store::posts::list(
        &state.app.db,
        &caller.workspace_id,
        q.after.as_deref(),
        limit,
    )
    .await?;
    let mut data = Vec::with_capacity(posts.len());
    for post in &posts {
        let targets =
            tidepost_store::posts::targets_of(&state.app.db, &caller.workspace_id, &post.id)
                .await?;
        data.push(post_json(&PostView {
            post: post.clone(),
            targets,
        }));
    }
    let next = (posts.len() as i64 == limit)
        .then(|| posts.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = publish::get(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(problem)?;
    Ok(Json(post_json(&view)))
}

async fn cancel(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = publish::cancel(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(problem)?;
    Ok(Json(post_json(&view)))
}

async fn retry(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = publish::retry(&state.app, &caller.workspace_id, &id, &target)
        .await
        .map_err(problem)?;
    Ok(Json(post_json(&view)))
}
