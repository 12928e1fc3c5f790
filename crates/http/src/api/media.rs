//! `/api/v1/media`: the workspace's media library.
//!
//! - `GET /media?kind=video|image&limit=N&after=ID`: newest first; `next_cursor`, passed back
//!   as `after`, fetches the next page (`cursor=ID` is the deprecated old name of `after`).
//! - `GET /media/{id}`: one item with its probed metadata and, for each place it could be
//!   published, the rules it breaks (`checks`) and the recommendations it misses (`advice`).
//! - `POST /media`: a direct upload (`multipart/form-data` with a `file` field, or the raw bytes
//!   with the file's content type and an optional `X-File-Name`). Large files go through the
//!   resumable `/uploads` instead. The same bytes uploaded twice return the same item.
//! - `GET /media/{id}/frame?at_ms=N`: a video's frame at N ms as a JPEG (rendered by ffmpeg,
//!   N rounded down to 100 ms steps, cached), for choosing a cover frame. Signed-in browsers
//!   use it with their session, like every `GET` here.
//! - `GET /media/{id}/content`: the stored bytes with their probed content type, for the
//!   composer's and the post page's previews (a signed-in browser's session, or a key).
//!   Platforms fetch media from the signed `/media/{id}/{token}` links instead.
//! - `DELETE /media/{id}`: 409 while a post that has not finished uses it.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::media::rules::{self, CreatorLimits, Target};
use tidepost_app::media::{self, MediaError, MediaKind};
use tidepost_store::media::{self as repo, Media};
use tokio_util::io::StreamReader;

use super::paging;
use crate::auth::Caller;
use crate::bodies::{client_io, multipart_problem, text_field};
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/media",
            get(list).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/media/{id}", get(show).delete(remove))
        .route("/media/{id}/frame", get(frame))
        .route("/media/{id}/content", get(content))
}

/// A [`MediaError`] as problem+json.
pub(crate) fn problem(err: MediaError) -> Problem {
    match err {
        MediaError::Invalid { field, message } => {
            Problem::invalid(format!("{field}: {message}")).with("field", field)
        }
        MediaError::TooLarge { max } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Too large",
            format!(
                "the file is larger than the {} ({max} bytes) this server accepts",
                rules::bytes(max)
            ),
        )
        .with("max_bytes", max),
        MediaError::Unreadable(message) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported-media",
            "Unsupported media",
            message,
        ),
        MediaError::Unavailable(message) => Problem::unavailable(message),
        MediaError::NotFound(what) => Problem::not_found(what),
        MediaError::InUse { media_id, post_ids } => Problem::new(
            StatusCode::CONFLICT,
            "media-in-use",
            "Media in use",
            MediaError::InUse {
                media_id,
                post_ids: post_ids.clone(),
            }
            .to_string(),
        )
        .with("post_ids", post_ids),
        MediaError::Conflict { message, offset } => match offset {
            Some(offset) => Problem::new(
                StatusCode::CONFLICT,
                "offset-mismatch",
                "Offset mismatch",
                message,
            )
            .with("offset", offset),
            None => Problem::conflict(message),
        },
        MediaError::Store(e) => e.into(),
        MediaError::Io(e) => Problem::from_io(e),
    }
}

/// Where a media of this kind could go.
fn targets(kind: &str) -> &'static [Target] {
    match MediaKind::parse(kind) {
        Some(MediaKind::Video) => &[
            Target::TikTokVideo,
            Target::InstagramReel,
            Target::InstagramStory,
            Target::InstagramCarouselItem,
        ],
        _ => &[
            Target::TikTokPhoto,
            Target::InstagramImage,
            Target::InstagramStory,
            Target::InstagramCarouselItem,
        ],
    }
}

fn target_name(t: Target) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The JSON of one media item. `detail` adds the rule checks per target.
pub(crate) fn media_json(m: &Media, detail: bool) -> Value {
    let info = media::info(m);
    let mut v = json!({
        "id": m.id,
        "kind": m.kind,
        "content_type": m.content_type,
        "size_bytes": m.size_bytes,
        "sha256": m.sha256,
        "original_name": m.original_name,
        "container": m.container,
        "width": m.width,
        "height": m.height,
        "duration_secs": m.duration_ms.map(|ms| ms as f64 / 1000.0),
        "created_at": tidepost_domain::time::rfc3339(m.created_at),
        "last_used_at": m.last_used_at.map(tidepost_domain::time::rfc3339),
        "probe_error": m.probe_error,
    });
    if detail && let Value::Object(map) = &mut v {
        map.insert("info".into(), json!(info));
        let limits = CreatorLimits::default();
        let mut checks = serde_json::Map::new();
        let mut advice = serde_json::Map::new();
        for &t in targets(&m.kind) {
            let key = target_name(t).as_str().unwrap_or_default().to_string();
            checks.insert(key.clone(), json!(media::check(m, t, &limits)));
            if let Some(i) = &info {
                advice.insert(key, json!(rules::advice(t, i)));
            }
        }
        map.insert("checks".into(), Value::Object(checks));
        map.insert("advice".into(), Value::Object(advice));
    }
    v
}

/// A media item (`GET /media/{id}` adds `info`, `checks`, `advice` and `usage`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Media)]
#[allow(dead_code)]
struct MediaDoc {
    id: String,
    /// `video` or `image`, from the bytes.
    kind: String,
    /// What the bytes are (not what the client said), e.g. `video/mp4`.
    content_type: String,
    size_bytes: i64,
    /// The content address.
    sha256: String,
    original_name: Option<String>,
    /// `mp4`, `mov`, `webm`, `jpeg`, `webp`, `png`, …
    container: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    duration_secs: Option<f64>,
    /// RFC 3339.
    created_at: String,
    last_used_at: Option<String>,
    /// Why the file could not be probed (files stored before probing, or by the lenient path).
    probe_error: Option<String>,
    /// The probed metadata: container, codecs, duration, pixel size, frame rate, bit rate.
    #[schema(value_type = Option<Object>)]
    info: Option<Value>,
    /// Per target (`tik_tok_video`, `instagram_reel`, …) the rules the file breaks:
    /// `[{rule, message}]`, empty when it may be published there.
    #[schema(value_type = Option<Object>)]
    checks: Option<Value>,
    /// Per target, the recommendations it misses (never blocking).
    #[schema(value_type = Option<Object>)]
    advice: Option<Value>,
    /// `{posts, pending_post_ids}`: the posts that use it.
    #[schema(value_type = Option<Object>)]
    usage: Option<Value>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct MediaListDoc {
    data: Vec<MediaDoc>,
    /// Pass as `after` for the next page; null on the last.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `video` or `image`.
    kind: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    after: Option<String>,
    /// The old name of `after`, still accepted (`after` wins when both are given).
    #[deprecated(note = "use `after`")]
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/media", tag = "media",
    params(ListQuery),
    responses(
        (status = 200, description = "The workspace's media, newest first", body = MediaListDoc),
        (status = 422, description = "`kind` or `limit` is invalid", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    if let Some(kind) = &q.kind
        && MediaKind::parse(kind).is_none()
    {
        return Err(
            Problem::invalid(format!("kind: expected video or image, got {kind:?}"))
                .with("field", "kind"),
        );
    }
    let limit = paging::limit(q.limit, 50)?;
    #[allow(deprecated)]
    let old_cursor = q.cursor.as_deref();
    let after = paging::after(q.after.as_deref()).or(paging::after(old_cursor));
    let rows = repo::list(
        &state.app.db,
        &caller.workspace_id,
        q.kind.as_deref(),
        after,
        limit + 1,
    )
    .await?;
    let (page, next) = paging::page(rows, limit, |m| &m.id);
    Ok(Json(json!({
        "data": page.iter().map(|m| media_json(m, false)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[utoipa::path(
    get, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The media with its probed metadata, rule checks per target and usage", body = MediaDoc),
        (status = 404, description = "No such media in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let m = repo::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("media"))?;
    let usage = repo::usage(&state.app.db, &caller.workspace_id, &id).await?;
    let mut v = media_json(&m, true);
    v["usage"] = json!({"posts": usage.posts, "pending_post_ids": usage.pending_post_ids});
    Ok(Json(v))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FrameQuery {
    /// The frame's time in milliseconds from the start, below the video's length; rounded
    /// down to a multiple of 100.
    #[param(value_type = u64, minimum = 0)]
    at_ms: Option<String>,
}

/// `at_ms` as a number of milliseconds, or a 422 naming it.
fn at_ms(query: &FrameQuery) -> Result<u64, Problem> {
    let refuse = |detail: String| Problem::invalid(detail).with("field", "at_ms");
    match query.at_ms.as_deref().map(str::trim) {
        None | Some("") => Err(refuse(
            "at_ms: give the frame's time in milliseconds from the start (at_ms=1500)".into(),
        )),
        Some(text) => text.parse::<u64>().map_err(|_| {
            refuse(format!(
                "at_ms: {text:?} is not a whole number of milliseconds from the start"
            ))
        }),
    }
}

#[utoipa::path(
    get, path = "/api/v1/media/{id}/frame", tag = "media",
    params(("id" = String, Path, description = "The video's media id"), FrameQuery),
    responses(
        (status = 200, description = "The frame as a JPEG at most 480 pixels wide; `X-Frame-At-Ms` says the time rendered", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such media in this workspace", body = Problem),
        (status = 422, description = "`at_ms` is missing, not a whole number or past the video's end (`field: at_ms`), or the media is not a video (`field: media`)", body = Problem),
        (status = 503, description = "ffmpeg is not available on the server or took too long", body = Problem),
    ),
)]
async fn frame(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    query: Result<Query<FrameQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, Problem> {
    caller.require_scope("api")?;
    // Another workspace's media is a 404 whatever the query says.
    let video = media::frame::video(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(problem)?;
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let at = at_ms(&query)?;
    let frame = media::frame::render(&state.app, &video, at)
        .await
        .map_err(problem)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            // A media id's bytes never change: the frame at a time is the same for good.
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (
                header::HeaderName::from_static("x-frame-at-ms"),
                frame.at_ms.to_string(),
            ),
        ],
        frame.jpeg.as_ref().clone(),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/v1/media/{id}/content", tag = "media",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The stored file, with the content type probed from its bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such media in this workspace", body = Problem),
        (status = 410, description = "The media is the workspace's but its file is missing from the storage", body = Problem),
        (status = 503, description = "The stored file cannot be read now", body = Problem),
    ),
)]
async fn content(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, Problem> {
    caller.require_scope("api")?;
    // Scoped by the caller's workspace: another workspace's id is a 404 like a missing one.
    let m = repo::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("media"))?;
    let file = media::storage(&state.app)
        .open(&m.sha256, None)
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                // The item is the workspace's, its bytes are gone from the storage.
                Problem::new(
                    StatusCode::GONE,
                    "media-file-missing",
                    "Media file missing",
                    "the stored file of this media is missing from the storage",
                )
            } else {
                tracing::warn!(media_id = %m.id, error = %e, "a stored media file cannot be read");
                Problem::unavailable("the media file cannot be read now")
            }
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, m.content_type.clone()),
            (header::CONTENT_LENGTH, m.size_bytes.to_string()),
            // A media id's bytes never change.
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_DISPOSITION, "inline".to_string()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}

#[utoipa::path(
    delete, path = "/api/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 204, description = "Deleted (the file goes once no workspace holds the same bytes)"),
        (status = 404, description = "No such media in this workspace", body = Problem),
        (status = 409, description = "A post that has not finished uses it (`post_ids`)", body = Problem),
    ),
)]
async fn remove(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    media::delete(&state.app, &caller.workspace_id, &id)
        .await
        .map_err(problem)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/media", tag = "media",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes with its `video/…` or `image/…` type (or `multipart/form-data` with a `file` field); `X-File-Name` names it"),
    responses(
        (status = 201, description = "The stored media (the existing one when the same bytes were uploaded before)", body = MediaDoc),
        (status = 413, description = "Larger than `max_upload_bytes`", body = Problem),
        (status = 415, description = "Neither multipart nor a video or image content type", body = Problem),
        (status = 422, description = "Not a video or image tidepost can read, or an empty file", body = Problem),
        (status = 503, description = "ffprobe is not available on the server", body = Problem),
    ),
)]
async fn upload(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let stored = if crate::bodies::is_multipart(request.headers()) {
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| multipart_problem(e.body_text(), e.status()))?;
        let mut stored = None;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| multipart_problem(e.body_text(), e.status()))?
        {
            if field.name() != Some("file") {
                continue;
            }
            if stored.is_some() {
                return Err(Problem::invalid(
                    "file: send one file per request (or use /api/v1/uploads)",
                )
                .with("field", "file"));
            }
            let ct = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let name = field.file_name().map(str::to_string);
            if let Some(name) = &name {
                text_field("file", name)?;
            }
            let reader = StreamReader::new(field.map_err(client_io));
            stored = Some(
                media::import(
                    &state.app,
                    &caller.workspace_id,
                    reader,
                    &ct,
                    name.as_deref(),
                )
                .await
                .map_err(problem)?,
            );
        }
        stored.ok_or_else(|| {
            Problem::invalid("file: the form has no `file` field").with("field", "file")
        })?
    } else if content_type.starts_with("video/")
        || content_type.starts_with("image/")
        || content_type.starts_with("application/octet-stream")
    {
        let name = request
            .headers()
            .get("x-file-name")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Body = request.into_body();
        let reader = StreamReader::new(body.into_data_stream().map_err(client_io));
        media::import(
            &state.app,
            &caller.workspace_id,
            reader,
            &content_type,
            name.as_deref(),
        )
        .await
        .map_err(problem)?
    } else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send multipart/form-data with a `file` field, or the file's bytes with its video/… or image/… content type",
        ));
    };
    Ok((StatusCode::CREATED, Json(media_json(&stored, true))))
}
