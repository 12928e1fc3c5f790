//! `PUT {upload_url}`: one chunk of a FILE_UPLOAD publish, per the Media Transfer Guide.
//!
//! Chunks must come in order with `Content-Range: bytes first-last/total` matching the layout
//! declared at init; 206 acknowledges an intermediate chunk and 201 the last one. 400 answers
//! malformed headers, 403 an expired upload URL, 404 an unknown upload, 416 a range that does
//! not continue the upload. A chunk already acknowledged may be re-sent and gets the same answer
//! again without being stored twice. Bodies stream to disk while being hashed; a chunk only
//! counts once all of its bytes arrived.

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::App;
use super::errors::ApiError;
use super::state::{Publish, UploadTask};

const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

pub(crate) async fn put_chunk(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive_chunk(&app, query.as_deref().unwrap_or_default(), &headers, body).await {
        Ok(response) | Err(response) => response,
    }
}

/// `Content-Range` and `Content-Length` of a chunk.
#[derive(Debug, Clone, Copy)]
struct ChunkHeaders {
    first: u64,
    last: u64,
    total: u64,
}

/// What to do with the body of an accepted PUT.
struct Plan {
    upload_id: String,
    index: u64,
    is_last: bool,
    /// Already acknowledged: read and discard the body, answer as before.
    resend: bool,
    path: std::path::PathBuf,
    hasher: Sha256,
    first: u64,
    length: u64,
}

async fn receive_chunk(
    app: &App,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let faults = app.faults().await;
    if faults.roll_server_error() {
        return Err(drain_then(
            body,
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error",
                "Upload gateway error; retry the chunk.",
                None,
            ),
        )
        .await);
    }
    let plan = match plan_chunk(app, query, headers) {
        Ok(plan) => plan,
        Err(refusal) => return Err(drain_then(body, refusal).await),
    };
    let guard = InFlight {
        app: app.clone(),
        upload_id: plan.upload_id.clone(),
        active: !plan.resend,
    };
    let hasher = match stream_body(&plan, body, faults.drop_upload_after_bytes).await {
        Ok(hasher) => hasher,
        Err(BodyFailure::Dropped) => return Err(abort_connection()),
        Err(BodyFailure::Body(message)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_param",
                &message,
                None,
            ));
        }
        Err(BodyFailure::Io(message)) => {
            tracing::warn!(%message, "tiktok upload could not be stored");
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The chunk could not be stored.",
                None,
            ));
        }
    };
    let progress = commit(app, &plan, hasher);
    drop(guard);
    let status = if plan.is_last {
        StatusCode::CREATED
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    let mut response = status.into_response();
    set_progress(&mut response, progress);
    Ok(response)
}

/// Validates the upload URL and headers against the upload's progress and reserves the chunk.
fn plan_chunk(app: &App, query: &str, headers: &HeaderMap) -> Result<Plan, Response> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (upload_id, upload_token) = (param("upload_id"), param("upload_token"));
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "upload_not_found",
            "No valid upload task for this upload_url.",
            None,
        )
    };
    let now = app.now_ms();
    let mut store = app.store();
    let publish = store
        .publish_by_upload_mut(&upload_id)
        .ok_or_else(not_found)?;
    let path = publish.file_path(&app.ctx, 0);
    let failed = publish.is_failed();
    let Some(upload) = publish
        .upload
        .as_mut()
        .filter(|u| u.upload_token == upload_token && !failed)
    else {
        return Err(not_found());
    };
    let progress = Some((upload.bytes_done(), upload.video_size));
    if now >= upload.expires_at_ms {
        return Err(error(
            StatusCode::FORBIDDEN,
            "upload_url_expired",
            "The upload_url has expired.",
            progress,
        ));
    }
    let chunk = parse_headers(headers)
        .map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_param", &m, progress))?;
    let index = chunk_index(upload, chunk).map_err(|m| {
        error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            &m,
            progress,
        )
    })?;
    let resend = index < upload.chunks_done;
    if !resend && upload.in_flight {
        let message = "Another PUT is uploading this chunk.";
        return Err(error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            message,
            progress,
        ));
    }
    upload.in_flight |= !resend;
    Ok(Plan {
        upload_id,
        index,
        is_last: index + 1 == upload.total_chunk_count,
        resend,
        path,
        hasher: upload.hasher.clone(),
        first: chunk.first,
        length: chunk.last - chunk.first + 1,
    })
}

fn parse_headers(headers: &HeaderMap) -> Result<ChunkHeaders, String> {
    let text = |name: header::HeaderName| {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let range = text(header::CONTENT_RANGE).ok_or("Content-Range is required.")?;
    let chunk = parse_content_range(range)
        .ok_or("Content-Range must read bytes <first>-<last>/<total>.")?;
    let length: u64 = text(header::CONTENT_LENGTH)
        .and_then(|v| v.parse().ok())
        .ok_or("Content-Length is required.")?;
    if length != chunk.last - chunk.first + 1 {
        return Err("Content-Length does not match Content-Range.".into());
    }
    let mime = text(header::CONTENT_TYPE).unwrap_or_default();
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !VIDEO_TYPES.contains(&mime.as_str()) {
        return Err(format!(
            "Content-Type must be one of {}.",
            VIDEO_TYPES.join(", ")
        ));
    }
    Ok(chunk)
}

fn parse_content_range(value: &str) -> Option<ChunkHeaders> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let chunk = ChunkHeaders {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    };
    (chunk.first <= chunk.last && chunk.last < chunk.total).then_some(chunk)
}

/// The chunk index a range stands for, if it matches the declared layout.
fn chunk_index(upload: &UploadTask, chunk: ChunkHeaders) -> Result<u64, String> {
    if chunk.total != upload.video_size {
        return Err(format!(
            "The total in Content-Range must be video_size ({}).",
            upload.video_size
        ));
    }
    let index = chunk.first / upload.chunk_size;
    if !chunk.first.is_multiple_of(upload.chunk_size) || index >= upload.total_chunk_count {
        return Err("Content-Range does not start at a chunk boundary.".into());
    }
    let (first, last) = upload.chunk_range(index);
    if (first, last) != (chunk.first, chunk.last) {
        return Err(format!("Chunk {index} must be bytes {first}-{last}."));
    }
    if index > upload.chunks_done {
        return Err(format!(
            "Chunks must be sent in order; the next one starts at byte {}.",
            upload.bytes_done()
        ));
    }
    Ok(index)
}

enum BodyFailure {
    /// The `drop_upload_after_bytes` fault fired.
    Dropped,
    Body(String),
    Io(String),
}

/// Streams the body to the upload file at its offset while hashing it.
async fn stream_body(
    plan: &Plan,
    body: Body,
    drop_after: Option<u64>,
) -> Result<Sha256, BodyFailure> {
    let mut hasher = plan.hasher.clone();
    let mut file = if plan.resend {
        None
    } else {
        Some(open_at(&plan.path, plan.first).await?)
    };
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let mut data: Bytes =
            frame.map_err(|e| BodyFailure::Body(format!("The body could not be read: {e}")))?;
        let left = drop_after.map(|limit| limit.saturating_sub(received));
        let dropping = left.is_some_and(|left| data.len() as u64 > left);
        if let (true, Some(left)) = (dropping, left) {
            data.truncate(usize::try_from(left).unwrap_or(usize::MAX));
        }
        received += data.len() as u64;
        if received > plan.length {
            return Err(BodyFailure::Body(
                "The body is longer than Content-Length.".into(),
            ));
        }
        if let Some(file) = file.as_mut() {
            hasher.update(&data);
            file.write_all(&data)
                .await
                .map_err(|e| BodyFailure::Io(e.to_string()))?;
        }
        if dropping {
            return Err(BodyFailure::Dropped);
        }
    }
    if received != plan.length {
        return Err(BodyFailure::Body(
            "The body length does not match Content-Length.".into(),
        ));
    }
    if let Some(file) = file.as_mut() {
        file.flush()
            .await
            .map_err(|e| BodyFailure::Io(e.to_string()))?;
    }
    Ok(hasher)
}

async fn open_at(
    path: &std::path::Path,
    offset: u64,
) -> Result<BufWriter<tokio::fs::File>, BodyFailure> {
    let io = |e: std::io::Error| BodyFailure::Io(e.to_string());
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .await
        .map_err(io)?;
    file.seek(SeekFrom::Start(offset)).await.map_err(io)?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Records an acknowledged chunk; returns `(bytes done, total)` for the `Content-Range` answer.
fn commit(app: &App, plan: &Plan, hasher: Sha256) -> Option<(u64, u64)> {
    let now = app.now_ms();
    let mut store = app.store();
    let publish = store.publish_by_upload_mut(&plan.upload_id)?;
    if !plan.resend {
        acknowledge(publish, plan.index, hasher, now);
    }
    publish
        .upload
        .as_ref()
        .map(|u| (u.bytes_done(), u.video_size))
}

fn acknowledge(publish: &mut Publish, index: u64, hasher: Sha256, now: i64) {
    let Some(upload) = publish.upload.as_mut() else {
        return;
    };
    upload.chunks_done = index + 1;
    upload.hasher = hasher;
    publish.bytes_received = upload.bytes_done();
    publish.chunks_received = upload.chunks_done;
    if upload.is_complete() {
        publish.sha256 = Some(hex::encode(upload.hasher.clone().finalize()));
        publish.transfer_done_ms = Some(now);
    }
}

/// Clears the upload's in-flight mark however the request ends (including a client hang-up).
struct InFlight {
    app: App,
    upload_id: String,
    active: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        if let Some(upload) = self
            .app
            .store()
            .publish_by_upload_mut(&self.upload_id)
            .and_then(|p| p.upload.as_mut())
        {
            upload.in_flight = false;
        }
    }
}

/// `Content-Range: bytes 0-{UPLOADED_BYTES}/{TOTAL}` as the guide writes it.
fn set_progress(response: &mut Response, progress: Option<(u64, u64)>) {
    if let Some((done, total)) = progress
        && let Ok(value) = HeaderValue::from_str(&format!("bytes 0-{done}/{total}"))
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
}

fn error(
    status: StatusCode,
    code: &'static str,
    message: &str,
    progress: Option<(u64, u64)>,
) -> Response {
    let mut response = ApiError::new(status, code, message).into_response();
    set_progress(&mut response, progress);
    response
}

/// A response whose body fails at once: hyper then closes the connection before anything is
/// flushed, so the client sees a transport error mid-upload.
fn abort_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("emulated connection drop"))
    });
    Response::new(Body::from_stream(failing))
}

/// The most of a refused chunk's body read before answering (a chunk is at most 64 MB, the
/// final one up to 128 MB).
const DRAIN_LIMIT: u64 = 128 * 1024 * 1024;

/// Reads and discards a refused request's body before answering, as an HTTP server that keeps
/// the connection does: a client still sending its chunk then always gets the refusal, instead
/// of a connection closed under it (which it would take for a dropped upload).
async fn drain_then(body: Body, refusal: Response) -> Response {
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(Ok(frame)) = stream.next().await {
        read += frame.len() as u64;
        if read > DRAIN_LIMIT {
            break;
        }
    }
    refusal
}
