//! `/api/v1/uploads`: resumable uploads, tus 1.0.0 (core protocol with the creation and
//! termination extensions; <https://tus.io/protocols/resumable-upload>).
//!
//! - `OPTIONS /uploads`: what the server supports (`Tus-Version`, `Tus-Extension`,
//!   `Tus-Max-Size`).
//! - `POST /uploads` with `Upload-Length` (and `Upload-Metadata`: `filename`, `filetype`,
//!   base64 values): `201` with `Location`.
//! - `HEAD /uploads/{id}`: `Upload-Offset` (what the server has durably), `Upload-Length`.
//! - `PATCH /uploads/{id}` with `Content-Type: application/offset+octet-stream` and
//!   `Upload-Offset` equal to the server's: appends, `204` with the new `Upload-Offset`; a wrong
//!   offset is `409` (problem+json with the server's `offset`). When the last byte arrives the
//!   file is probed and becomes a media item, named in `Tidepost-Media-Id`; a file that is no
//!   video or image tidepost reads is `422`.
//! - `DELETE /uploads/{id}`: forgets the upload and its bytes (`204`).
//! - `GET /uploads/{id}` (tidepost's own): the upload as JSON, with its state and media.
//!
//! Every answer carries `Tus-Resumable: 1.0.0`; a request that names another version is `412`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde_json::{Value, json};
use tidepost_app::media::uploads;
use tidepost_store::uploads::Upload;
use tokio_util::io::StreamReader;

use super::media::problem;
use crate::auth::{Caller, Credential};
use crate::error::Problem;
use crate::state::HttpState;

const TUS_VERSION: &str = "1.0.0";
const OFFSET_CONTENT_TYPE: &str = "application/offset+octet-stream";

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/uploads", post(create).options(options))
        .route(
            "/uploads/{id}",
            get(show)
                .head(head)
                .patch(patch)
                .delete(terminate)
                .layer(DefaultBodyLimit::disable()),
        )
}

/// Adds the tus headers every answer carries.
fn tus(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn tus_err(p: Problem) -> Response {
    tus(p.into_response())
}

/// `Tus-Resumable` must name the version this server speaks.
fn check_version(headers: &HeaderMap) -> Result<(), Box<Response>> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        other => {
            let mut r = tus_err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "tus-version",
                "Unsupported tus version",
                match other {
                    Some(v) => format!("this server speaks tus {TUS_VERSION}, not {v}"),
                    None => format!("send `Tus-Resumable: {TUS_VERSION}`"),
                },
            ));
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Err(Box::new(r))
        }
    }
}

fn number_header(headers: &HeaderMap, name: &'static str) -> Result<u64, Box<Response>> {
    let value = headers.get(name).ok_or_else(|| {
        tus_err(Problem::bad_request(format!(
            "the {name} header is missing"
        )))
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Box::new(tus_err(Problem::bad_request(format!(
                "{name} must be a whole number of bytes"
            ))))
        })
}

fn upload_headers(response: &mut Response, u: &Upload) {
    let h = response.headers_mut();
    h.insert("upload-offset", HeaderValue::from(u.received));
    h.insert("upload-length", HeaderValue::from(u.length));
    if !u.metadata.is_empty()
        && let Ok(v) = HeaderValue::from_str(&u.metadata)
    {
        h.insert("upload-metadata", v);
    }
    if let Ok(v) = HeaderValue::from_str(&u.state) {
        h.insert("tidepost-upload-state", v);
    }
    if let Some(media) = &u.media_id
        && let Ok(v) = HeaderValue::from_str(media)
    {
        h.insert("tidepost-media-id", v);
    }
}

/// A resumable upload.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Upload)]
#[allow(dead_code)]
struct UploadDoc {
    id: String,
    /// Where to `HEAD`, `PATCH` and `DELETE` it.
    url: String,
    /// `Upload-Length`.
    length: i64,
    /// `Upload-Offset`: the bytes the server has durably.
    offset: i64,
    /// `receiving`, `complete` (see `media_id`) or `failed` (see `error`).
    state: String,
    file_name: Option<String>,
    content_type: Option<String>,
    media_id: Option<String>,
    error: Option<String>,
    created_at: String,
    /// An unfinished upload is deleted after this.
    expires_at: String,
}

fn upload_json(u: &Upload) -> Value {
    json!({
        "id": u.id,
        "url": format!("/api/v1/uploads/{}", u.id),
        "length": u.length,
        "offset": u.received,
        "state": u.state,
        "file_name": u.file_name,
        "content_type": u.content_type,
        "media_id": u.media_id,
        "error": u.error,
        "created_at": tidepost_domain::time::rfc3339(u.created_at),
        "expires_at": tidepost_domain::time::rfc3339(u.expires_at),
    })
}

async fn options(State(state): State<HttpState>) -> Response {
    let mut r = tus(StatusCode::NO_CONTENT.into_response());
    let h = r.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,termination"),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.app.config.publish.max_upload_bytes),
    );
    r
}

#[utoipa::path(
    post, path = "/api/v1/uploads", tag = "uploads",
    params(
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes"),
        ("Upload-Metadata" = Option<String>, Header, description = "`filename <base64>,filetype <base64>`"),
    ),
    responses(
        (status = 201, description = "Created; `Location` is its URL", body = UploadDoc),
        (status = 412, description = "`Tus-Resumable` is missing or another version", body = Problem),
        (status = 413, description = "Larger than `max_upload_bytes` (`Tus-Max-Size`)", body = Problem),
        (status = 422, description = "An empty file or unreadable `Upload-Metadata`", body = Problem),
    ),
)]
async fn create(caller: Caller, State(state): State<HttpState>, request: Request) -> Response {
    if let Err(p) = caller.require_scope("api") {
        return tus_err(p);
    }
    let headers = request.headers();
    if let Err(r) = check_version(headers) {
        return *r;
    }
    if headers.contains_key("upload-defer-length") {
        return tus_err(Problem::bad_request(
            "this server needs Upload-Length when the upload is created (no creation-defer-length)",
        ));
    }
    let length = match number_header(headers, "upload-length") {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let metadata = match headers.get("upload-metadata").map(|v| v.to_str()) {
        None => String::new(),
        Some(Ok(v)) => v.to_string(),
        Some(Err(_)) => {
            return tus_err(Problem::bad_request("Upload-Metadata is not ASCII text"));
        }
    };
    let created_by = match &caller.credential {
        Credential::Session { user_id } => user_id.clone(),
        Credential::ApiKey { id, .. } => format!("api_key:{id}"),
    };
    match uploads::create(
        &state.app,
        &caller.workspace_id,
        length,
        &metadata,
        Some(&created_by),
    )
    .await
    {
        Ok(u) => {
            let mut r = tus((StatusCode::CREATED, Json(upload_json(&u))).into_response());
            upload_headers(&mut r, &u);
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", u.id)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(e) => {
            let too_large = matches!(e, tidepost_app::media::MediaError::TooLarge { .. });
            let mut r = tus_err(problem(e));
            if too_large {
                r.headers_mut().insert(
                    "tus-max-size",
                    HeaderValue::from(state.app.config.publish.max_upload_bytes),
                );
            }
            r
        }
    }
}

async fn head(caller: Caller, State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    if let Err(p) = caller.require_scope("api") {
        return tus_err(p);
    }
    match uploads::get(&state.app, &caller.workspace_id, &id).await {
        Ok(u) => {
            let mut r = tus(StatusCode::OK.into_response());
            upload_headers(&mut r, &u);
            r
        }
        Err(e) => tus_err(problem(e)),
    }
}

#[utoipa::path(
    get, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "The upload's id")),
    responses(
        (status = 200, description = "The upload, with its state and media", body = UploadDoc),
        (status = 404, description = "No such upload in this workspace", body = Problem),
    ),
)]
async fn show(caller: Caller, State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    if let Err(p) = caller.require_scope("api") {
        return tus_err(p);
    }
    match uploads::get(&state.app, &caller.workspace_id, &id).await {
        Ok(u) => {
            let mut r = tus(Json(upload_json(&u)).into_response());
            upload_headers(&mut r, &u);
            r
        }
        Err(e) => tus_err(problem(e)),
    }
}

#[utoipa::path(
    patch, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(
        ("id" = String, Path, description = "The upload's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start: the server's offset"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended; `Upload-Offset` is the new offset, `Tidepost-Media-Id` the media once complete"),
        (status = 404, description = "No such upload in this workspace", body = Problem),
        (status = 409, description = "`Upload-Offset` is not the server's (`offset`), the upload is finished, or another request is appending", body = Problem),
        (status = 412, description = "`Tus-Resumable` is missing or another version", body = Problem),
        (status = 415, description = "The body is not `application/offset+octet-stream`", body = Problem),
        (status = 422, description = "More bytes than `Upload-Length`, or the complete file is no video or image tidepost can read", body = Problem),
        (status = 503, description = "ffprobe is not available; the bytes are kept, send an empty PATCH at the end to finish", body = Problem),
    ),
)]
async fn patch(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if let Err(p) = caller.require_scope("api") {
        return tus_err(p);
    }
    // Another workspace's upload is not found, whatever the headers say.
    if let Err(e) = uploads::get(&state.app, &caller.workspace_id, &id).await {
        return tus_err(problem(e));
    }
    let headers = request.headers();
    if let Err(r) = check_version(headers) {
        return *r;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) != Some(OFFSET_CONTENT_TYPE) {
        return tus_err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("send the bytes with `Content-Type: {OFFSET_CONTENT_TYPE}`"),
        ));
    }
    let offset = match number_header(headers, "upload-offset") {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let body: Body = request.into_body();
    let reader = StreamReader::new(body.into_data_stream().map_err(crate::bodies::client_io));
    let result = uploads::append(&state.app, &caller.workspace_id, &id, offset, reader).await;
    match result {
        Ok(u) => {
            let mut r = tus(StatusCode::NO_CONTENT.into_response());
            upload_headers(&mut r, &u);
            r
        }
        Err(e) => {
            let mut r = tus_err(problem(e));
            // Tell the client where to resume.
            if let Ok(u) = uploads::get(&state.app, &caller.workspace_id, &id).await {
                r.headers_mut()
                    .insert("upload-offset", HeaderValue::from(u.received));
            }
            r
        }
    }
}

#[utoipa::path(
    delete, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(
        ("id" = String, Path, description = "The upload's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 204, description = "The upload and its bytes are gone (a finished upload's media stays)"),
        (status = 404, description = "No such upload in this workspace", body = Problem),
        (status = 412, description = "`Tus-Resumable` is missing or another version", body = Problem),
    ),
)]
async fn terminate(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = caller.require_scope("api") {
        return tus_err(p);
    }
    if let Err(e) = uploads::get(&state.app, &caller.workspace_id, &id).await {
        return tus_err(problem(e));
    }
    if let Err(r) = check_version(&headers) {
        return *r;
    }
    match uploads::terminate(&state.app, &caller.workspace_id, &id).await {
        Ok(()) => tus(StatusCode::NO_CONTENT.into_response()),
        Err(e) => tus_err(problem(e)),
    }
}
