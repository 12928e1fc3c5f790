//! Resumable uploads, the service behind tus 1.0.0 (core protocol, creation and termination
//! extensions): a client creates an upload with its length, then appends bytes with as many
//! requests as it needs, each starting at the offset the server has durably; after a dropped
//! connection it asks for that offset and goes on from there.
//!
//! On the local disk, bytes go straight to a file under `<media_dir>/.uploads/<id>` (never whole
//! in memory). The offset in the database moves only after the bytes up to it are synced, every
//! few MiB and at the end of a request, so an interrupted request keeps what it had synced.
//!
//! On S3 storage the bytes live in the bucket, so that an upload begun on one `serve` can be
//! finished on any other without a shared disk: each upload has an S3 multipart upload (made
//! when the upload is), and every [`s3::PART`] bytes (8 MiB, the same size for every part but
//! the last, as R2 requires) become one part, recorded in the database with its ETag once S3
//! has it. The bytes past the last part, fewer than a part, are the tail: one object, written
//! whole when a request ends (or breaks off) and every few seconds while bytes flow, and read
//! back by the request that goes on. The offset moves only once the part or tail holding the
//! bytes is in the bucket. A request holds at most one part in memory. When the last byte
//! arrives, the multipart upload is completed, the object is streamed down to a temporary file
//! while hashed (for ffprobe), copied server-side to its content address and the upload's
//! objects deleted; expiry and termination abort the multipart upload.
//!
//! One request at a time appends, under a lease in the database (see
//! `tidepost_store::uploads`). When the last byte arrives the file is hashed, probed and taken
//! into the library: the same bytes uploaded twice become one media item.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use tidepost_store::uploads::{self as repo, Part, Refused, Upload};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::s3::{self, S3Storage};
use super::{MediaError, storage};
use crate::App;

/// How long one request holds the append lease without progress.
const LEASE_MS: i64 = 60_000;
/// Sync and record the offset at least this often while bytes flow.
const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
const BUFFER: usize = 256 * 1024;

/// The folder of unfinished uploads.
pub fn dir(app: &App) -> PathBuf {
    app.config.media.dir.join(".uploads")
}

/// The file of an upload. Ids are UUIDs the server made, checked again here so that no other
/// string ever becomes a path.
fn file_of(app: &App, id: &str) -> Result<PathBuf, MediaError> {
    if uuid_like(id) {
        Ok(dir(app).join(id))
    } else {
        Err(MediaError::NotFound("upload"))
    }
}

pub(crate) fn uuid_like(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The `Upload-Metadata` pairs tidepost reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
}

/// Parses `Upload-Metadata`: comma-separated `key base64(value)` pairs (a key alone means an
/// empty value). `filename` (or `name`) and `filetype` (or `content_type`) are read.
pub fn parse_metadata(header: &str) -> Result<Metadata, MediaError> {
    let mut out = Metadata::default();
    let invalid = |message: String| MediaError::Invalid {
        field: "Upload-Metadata",
        message,
    };
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ');
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        if parts.next().is_some() || key.is_empty() {
            return Err(invalid(format!("{pair:?} is not a `key base64value` pair")));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| invalid(format!("the value of {key} is not base64")))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| invalid(format!("the value of {key} is not UTF-8 text")))?;
        if text.contains('\0') {
            return Err(invalid(format!(
                "the value of {key} holds a NUL character (U+0000), which no text field may contain"
            )));
        }
        match key {
            "filename" | "name" => out.file_name = Some(text),
            "filetype" | "content_type" | "type" => out.content_type = Some(text),
            _ => {}
        }
    }
    Ok(out)
}

/// Creates an upload of `length` bytes for the workspace.
pub async fn create(
    app: &App,
    workspace_id: &str,
    length: u64,
    metadata: &str,
    created_by: Option<&str>,
) -> Result<Upload, MediaError> {
    let max = app.config.publish.max_upload_bytes;
    if length > max {
        return Err(MediaError::TooLarge { max });
    }
    if length == 0 {
        return Err(MediaError::Invalid {
            field: "Upload-Length",
            message: "the file is empty".into(),
        });
    }
    if metadata.len() > 4096 {
        return Err(MediaError::Invalid {
            field: "Upload-Metadata",
            message: "is longer than 4096 bytes".into(),
        });
    }
    let meta = parse_metadata(metadata)?;
    let now = tidepost_domain::now_ms();
    let upload = Upload {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        length: i64::try_from(length).unwrap_or(i64::MAX),
        received: 0,
        file_name: meta.file_name,
        content_type: meta.content_type,
        metadata: metadata.to_string(),
        state: repo::RECEIVING.into(),
        media_id: None,
        error: None,
        lock_token: None,
        locked_until: None,
        created_by: created_by.map(str::to_string),
        created_at: now,
        updated_at: now,
        expires_at: now + i64::from(app.config.media.upload_expiry_hours) * 3_600_000,
        multipart_id: None,
        tail: None,
    };
    if let Some(s3) = storage(app).as_s3() {
        let mut upload = upload;
        upload.multipart_id = Some(s3.begin_upload(&upload.id).await?);
        if let Err(e) = repo::insert(&app.db, &upload).await {
            let _ = s3
                .discard_upload(&upload.id, upload.multipart_id.as_deref())
                .await;
            return Err(e.into());
        }
        return Ok(upload);
    }
    tokio::fs::create_dir_all(dir(app)).await?;
    tokio::fs::File::create(file_of(app, &upload.id)?).await?;
    if let Err(e) = repo::insert(&app.db, &upload).await {
        let _ = tokio::fs::remove_file(file_of(app, &upload.id)?).await;
        return Err(e.into());
    }
    Ok(upload)
}

pub async fn get(app: &App, workspace_id: &str, id: &str) -> Result<Upload, MediaError> {
    repo::get(&app.db, workspace_id, id)
        .await?
        .ok_or(MediaError::NotFound("upload"))
}

/// Appends `body` at `offset` (which must be the durable offset). Returns the upload as it
/// stands after the request: `received` moved, and, when the last byte arrived, `complete`
/// with its media (or `failed`, when the file is no video or image tidepost can read, which is
/// also returned as the error).
pub async fn append<R: AsyncRead + Unpin>(
    app: &App,
    workspace_id: &str,
    id: &str,
    offset: u64,
    mut body: R,
) -> Result<Upload, MediaError> {
    let token = tidepost_domain::new_id();
    let offset_i = i64::try_from(offset).unwrap_or(i64::MAX);
    let now = tidepost_domain::now_ms();
    let upload = match repo::claim(&app.db, workspace_id, id, offset_i, &token, now, LEASE_MS)
        .await?
    {
        Ok(u) => u,
        Err(Refused::NotFound) => return Err(MediaError::NotFound("upload")),
        Err(Refused::OffsetMismatch { received }) => {
            return Err(MediaError::Conflict {
                message: format!(
                    "Upload-Offset is {offset} but the server has {received} bytes: resume from {received}"
                ),
                offset: Some(received),
            });
        }
        Err(Refused::Busy) => {
            return Err(MediaError::Conflict {
                message: "another request is appending to this upload; wait for it or retry".into(),
                offset: None,
            });
        }
        Err(Refused::Finished { state }) => {
            let current = repo::get(&app.db, workspace_id, id).await?;
            return Err(MediaError::Conflict {
                message: format!("this upload is {state}; nothing more can be appended"),
                offset: current.map(|u| u.received),
            });
        }
    };
    if let Some(s3) = storage(app).as_s3() {
        let result = write_s3(app, s3, &upload, &token, offset, &mut body).await;
        return match result {
            Ok(received) if received == upload.length => finish_s3(app, s3, &upload, &token).await,
            Ok(_) => {
                repo::release(&app.db, workspace_id, id, &token).await?;
                get(app, workspace_id, id).await
            }
            Err(e) => {
                let _ = repo::release(&app.db, workspace_id, id, &token).await;
                Err(e)
            }
        };
    }
    let path = file_of(app, id)?;
    let result = write(app, &upload, &token, &path, offset, &mut body).await;
    match result {
        Ok(received) if received == upload.length => finish(app, &upload, &token, &path).await,
        Ok(_) => {
            repo::release(&app.db, workspace_id, id, &token).await?;
            get(app, workspace_id, id).await
        }
        Err(e) => {
            let _ = repo::release(&app.db, workspace_id, id, &token).await;
            Err(e)
        }
    }
}

/// Writes the body from `offset`, syncing and recording the offset as it goes. Returns the
/// durable offset reached. A body that breaks off leaves everything synced before it durable.
async fn write<R: AsyncRead + Unpin>(
    app: &App,
    upload: &Upload,
    token: &str,
    path: &PathBuf,
    offset: u64,
    body: &mut R,
) -> Result<i64, MediaError> {
    let length = u64::try_from(upload.length).unwrap_or(0);
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "std::io::ErrorKind is #[non_exhaustive]; only a missing file means something here"
    )]
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MediaError::NotFound("upload"),
            _ => MediaError::Io(e),
        })?;
    // Bytes past the durable offset were never acknowledged (a crash between write and
    // record): drop them.
    file.set_len(offset).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut position = offset;
    let mut synced = offset;
    let mut last_checkpoint = Instant::now();
    let mut buf = vec![0u8; BUFFER];
    let outcome: Result<(), MediaError> = async {
        loop {
            let n = match body.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => return Err(MediaError::Io(e)),
            };
            if n == 0 {
                return Ok(());
            }
            if position + n as u64 > length {
                // Keep what fits; the rest was never declared.
                let fits = usize::try_from(length - position).unwrap_or(0);
                file.write_all(&buf[..fits]).await?;
                position = length;
                return Err(MediaError::Invalid {
                    field: "body",
                    message: format!("more bytes than the {length} declared in Upload-Length"),
                });
            }
            file.write_all(&buf[..n]).await?;
            position += n as u64;
            if position - synced >= CHECKPOINT_BYTES
                || last_checkpoint.elapsed() >= CHECKPOINT_EVERY
            {
                file.flush().await?;
                checkpoint(app, upload, token, &mut file, position).await?;
                synced = position;
                last_checkpoint = Instant::now();
            }
        }
    }
    .await;
    // Whatever happened, what was written is made durable and recorded (tus: "the server
    // SHOULD store as much of the received data as possible").
    let _ = file.flush().await;
    let saved = if position > synced {
        match checkpoint(app, upload, token, &mut file, position).await {
            Ok(()) => position,
            Err(_) => synced,
        }
    } else {
        synced
    };
    outcome.map(|()| i64::try_from(saved).unwrap_or(i64::MAX))
}

/// Syncs the file and records `at` as the durable offset, extending the lease.
async fn checkpoint(
    app: &App,
    upload: &Upload,
    token: &str,
    file: &mut tokio::fs::File,
    at: u64,
) -> Result<(), MediaError> {
    file.sync_data().await?;
    let ok = repo::advance(
        &app.db,
        &upload.workspace_id,
        &upload.id,
        token,
        i64::try_from(at).unwrap_or(i64::MAX),
        tidepost_domain::now_ms(),
        LEASE_MS,
    )
    .await?;
    if ok {
        Ok(())
    } else {
        Err(MediaError::Conflict {
            message: "this request took too long and another one took the upload over".into(),
            offset: None,
        })
    }
}

/// The last byte arrived: take the file into the library.
async fn finish(
    app: &App,
    upload: &Upload,
    token: &str,
    path: &PathBuf,
) -> Result<Upload, MediaError> {
    let content_type = upload
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let now = tidepost_domain::now_ms();
    match super::import_file(
        app,
        &upload.workspace_id,
        path,
        &content_type,
        upload.file_name.as_deref(),
    )
    .await
    {
        Ok(media) => {
            repo::complete(
                &app.db,
                &upload.workspace_id,
                &upload.id,
                token,
                &media.id,
                now,
            )
            .await?;
            let _ = tokio::fs::remove_file(path).await;
            get(app, &upload.workspace_id, &upload.id).await
        }
        Err(e @ MediaError::Unavailable(_)) => {
            // Not the file's fault: keep it whole, so the client can finish once ffprobe runs.
            repo::release(&app.db, &upload.workspace_id, &upload.id, token).await?;
            Err(e)
        }
        Err(e) => {
            repo::fail(
                &app.db,
                &upload.workspace_id,
                &upload.id,
                token,
                &e.to_string(),
                now,
            )
            .await?;
            let _ = tokio::fs::remove_file(path).await;
            Err(e)
        }
    }
}

/// Deletes an upload and its bytes (tus termination). A finished upload's media stays. On S3
/// the multipart upload is aborted first: when the bucket does not answer, the upload stays
/// (the error says so) and can be terminated again.
pub async fn terminate(app: &App, workspace_id: &str, id: &str) -> Result<(), MediaError> {
    let upload = get(app, workspace_id, id).await?;
    discard(app, &upload).await?;
    if !repo::delete(&app.db, workspace_id, id).await? {
        return Err(MediaError::NotFound("upload"));
    }
    Ok(())
}

/// Deletes the bytes of an upload (its file, or on S3 its multipart upload and objects).
pub(crate) async fn discard(app: &App, upload: &Upload) -> Result<(), MediaError> {
    match storage(app).as_s3() {
        Some(s3) => Ok(s3
            .discard_upload(&upload.id, upload.multipart_id.as_deref())
            .await?),
        None => {
            remove_file(app, &upload.id).await;
            Ok(())
        }
    }
}

/// An upload whose records and bucket disagree (a tail missing or of the wrong size).
fn inconsistent(upload: &Upload, what: String) -> MediaError {
    MediaError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("upload {}: {what}", upload.id),
    ))
}

/// What one S3 request has sent: the parts recorded, where the bytes not yet in a part start,
/// and the tail object the database names.
struct S3Writer<'a> {
    app: &'a App,
    s3: &'a S3Storage,
    upload: &'a Upload,
    token: &'a str,
    multipart_id: String,
    /// The number the next part gets (parts are numbered from 1, without gaps).
    next_part: usize,
    /// Where `buf` starts in the file: the end of the last part.
    base: u64,
    /// The bytes past the last part (fewer than a part).
    buf: Vec<u8>,
    /// The durable offset (the database's `received`).
    durable: u64,
    tail: Option<String>,
}

impl S3Writer<'_> {
    fn position(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn lost_lease() -> MediaError {
        MediaError::Conflict {
            message: "this request took too long and another one took the upload over".into(),
            offset: None,
        }
    }

    /// Sends `buf` as the next part and records it; `buf` is empty after.
    async fn send_part(&mut self) -> Result<(), MediaError> {
        let bytes = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(s3::PART),
        ));
        let size = bytes.len() as u64;
        let number = self.next_part;
        let sent = self
            .s3
            .put_upload_part(&self.upload.id, &self.multipart_id, number, bytes.clone())
            .await;
        let etag = match sent {
            Ok(etag) => etag,
            Err(e) => {
                // Keep the bytes: they may still become the tail.
                self.buf = bytes.to_vec();
                return Err(e.into());
            }
        };
        let part = Part {
            number: number as i64,
            etag,
            size: size as i64,
        };
        let end = self.base + size;
        let ok = repo::advance_part(
            &self.app.db,
            &self.upload.workspace_id,
            &self.upload.id,
            self.token,
            &part,
            i64::try_from(end).unwrap_or(i64::MAX),
            tidepost_domain::now_ms(),
            LEASE_MS,
        )
        .await?;
        if !ok {
            return Err(Self::lost_lease());
        }
        self.next_part += 1;
        self.base = end;
        self.durable = end;
        if let Some(old) = self.tail.take() {
            self.s3.delete_upload_object(&self.upload.id, &old).await;
        }
        Ok(())
    }

    /// Writes `buf` as the tail object and records it.
    async fn save_tail(&mut self) -> Result<(), MediaError> {
        let name = format!("tail-{}", tidepost_domain::new_id());
        self.s3
            .put_upload_object(
                &self.upload.id,
                &name,
                bytes::Bytes::copy_from_slice(&self.buf),
            )
            .await?;
        let at = self.position();
        let ok = repo::advance_tail(
            &self.app.db,
            &self.upload.workspace_id,
            &self.upload.id,
            self.token,
            &name,
            i64::try_from(at).unwrap_or(i64::MAX),
            tidepost_domain::now_ms(),
            LEASE_MS,
        )
        .await?;
        if !ok {
            self.s3.delete_upload_object(&self.upload.id, &name).await;
            return Err(Self::lost_lease());
        }
        self.durable = at;
        if let Some(old) = self.tail.replace(name) {
            self.s3.delete_upload_object(&self.upload.id, &old).await;
        }
        Ok(())
    }
}

/// Appends the body from `offset` into the upload's multipart upload in the bucket: a part
/// every [`s3::PART`] bytes, the rest as the tail when the request ends, breaks off, or has
/// sent nothing durable for a while. Returns the durable offset reached.
async fn write_s3<R: AsyncRead + Unpin>(
    app: &App,
    s3: &S3Storage,
    upload: &Upload,
    token: &str,
    offset: u64,
    body: &mut R,
) -> Result<i64, MediaError> {
    let length = u64::try_from(upload.length).unwrap_or(0);
    if offset == length {
        return Ok(upload.received);
    }
    let multipart_id = upload
        .multipart_id
        .clone()
        .ok_or_else(|| inconsistent(upload, "it has no multipart upload".into()))?;
    let parts = repo::parts(&app.db, &upload.workspace_id, &upload.id).await?;
    let base: u64 = parts
        .iter()
        .map(|p| u64::try_from(p.size).unwrap_or(0))
        .sum();
    let mut buf = Vec::with_capacity(s3::PART);
    if offset > base {
        let name = upload.tail.as_deref().ok_or_else(|| {
            inconsistent(
                upload,
                format!("{} bytes past the parts but no tail", offset - base),
            )
        })?;
        let tail = s3.read_upload_object(&upload.id, name).await?;
        if tail.len() as u64 != offset - base {
            return Err(inconsistent(
                upload,
                format!("its tail holds {} bytes, not {}", tail.len(), offset - base),
            ));
        }
        buf.extend_from_slice(&tail);
    }
    let mut w = S3Writer {
        app,
        s3,
        upload,
        token,
        multipart_id,
        next_part: parts.len() + 1,
        base,
        buf,
        durable: offset,
        tail: upload.tail.clone(),
    };
    let mut last_checkpoint = Instant::now();
    let mut scratch = vec![0u8; BUFFER];
    let outcome: Result<(), MediaError> = async {
        loop {
            let room = (s3::PART - w.buf.len()).min(BUFFER);
            let n = body.read(&mut scratch[..room]).await?;
            if n == 0 {
                return Ok(());
            }
            let position = w.position();
            let over = position + n as u64 > length;
            let fits = if over {
                usize::try_from(length - position).unwrap_or(0)
            } else {
                n
            };
            w.buf.extend_from_slice(&scratch[..fits]);
            if w.buf.len() == s3::PART {
                w.send_part().await?;
                last_checkpoint = Instant::now();
            } else if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                w.save_tail().await?;
                last_checkpoint = Instant::now();
            }
            if over {
                // Keep what fits; the rest was never declared.
                return Err(MediaError::Invalid {
                    field: "body",
                    message: format!("more bytes than the {length} declared in Upload-Length"),
                });
            }
        }
    }
    .await;
    // Whatever happened, what arrived is sent to the bucket and recorded (tus: "the server
    // SHOULD store as much of the received data as possible"): the last part when every byte
    // is there, else the tail.
    let saved = if w.position() > w.durable {
        let done = if w.position() == length {
            w.send_part().await
        } else {
            w.save_tail().await
        };
        match (done, &outcome) {
            (Ok(()), _) => w.durable,
            // The request's own error says more than the failed save.
            (Err(_), Err(_)) => w.durable,
            (Err(e), Ok(())) => return Err(e),
        }
    } else {
        w.durable
    };
    outcome.map(|()| i64::try_from(saved).unwrap_or(i64::MAX))
}

/// The last byte of an upload on S3 arrived: complete the multipart upload, stream the object
/// down to a temporary file while hashing it, probe it, copy it to its content address and take
/// it into the library.
async fn finish_s3(
    app: &App,
    s3: &S3Storage,
    upload: &Upload,
    token: &str,
) -> Result<Upload, MediaError> {
    let ws = upload.workspace_id.as_str();
    let result = assemble_and_import(app, s3, upload, token).await;
    let now = tidepost_domain::now_ms();
    match result {
        Ok(media) => {
            repo::complete(&app.db, ws, &upload.id, token, &media.id, now).await?;
            discard_quietly(s3, upload).await;
            get(app, ws, &upload.id).await
        }
        Err(e @ MediaError::Unreadable(_)) => {
            repo::fail(&app.db, ws, &upload.id, token, &e.to_string(), now).await?;
            discard_quietly(s3, upload).await;
            Err(e)
        }
        Err(e) => {
            // Not the file's fault (ffprobe, the bucket, the database): keep every byte, so the
            // client can finish with an empty PATCH once it works again.
            repo::release(&app.db, ws, &upload.id, token).await?;
            Err(e)
        }
    }
}

async fn discard_quietly(s3: &S3Storage, upload: &Upload) {
    if let Err(e) = s3.discard_upload(&upload.id, None).await {
        tracing::warn!(upload = %upload.id, error = %e, "could not delete a finished upload's objects");
    }
}

async fn assemble_and_import(
    app: &App,
    s3: &S3Storage,
    upload: &Upload,
    token: &str,
) -> Result<tidepost_store::media::Media, MediaError> {
    let ws = upload.workspace_id.as_str();
    let length = u64::try_from(upload.length).unwrap_or(0);
    if let Some(multipart_id) = &upload.multipart_id {
        let parts = repo::parts(&app.db, ws, &upload.id).await?;
        let etags = parts.into_iter().map(|p| p.etag).collect();
        if let Err(e) = s3.complete_upload(&upload.id, multipart_id, etags).await {
            // Completed by an earlier request whose answer was lost: the object is there.
            if s3.upload_size(&upload.id).await? != Some(length) {
                return Err(e.into());
            }
        }
        if !repo::assembled(&app.db, ws, &upload.id, token).await? {
            return Err(S3Writer::lost_lease());
        }
    }
    let temp = tempfile::Builder::new()
        .prefix(".tidepost-upload-")
        .tempfile()?
        .into_temp_path();
    let stored = s3.download_upload(&upload.id, &temp).await?;
    if stored.size != length {
        return Err(inconsistent(
            upload,
            format!(
                "the assembled object holds {} bytes, not {length}",
                stored.size
            ),
        ));
    }
    let name = upload.file_name.as_deref();
    let probed = super::prober(app)
        .probe(&temp)
        .await
        .map_err(|e| super::named(e, name))?;
    drop(temp);
    s3.adopt_upload(&upload.id, &stored.sha256).await?;
    let content_type = upload
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    super::record_probed(
        app,
        ws,
        stored,
        &content_type,
        name,
        super::Strict::Strict,
        Ok(probed),
    )
    .await
}

pub(crate) async fn remove_file(app: &App, id: &str) {
    if let Ok(path) = file_of(app, id) {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(upload = %id, error = %e, "could not delete an upload's file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata() {
        let m =
            parse_metadata("filename Y2xpcC5tcDQ=,filetype dmlkZW8vbXA0,is_confidential").unwrap();
        assert_eq!(m.file_name.as_deref(), Some("clip.mp4"));
        assert_eq!(m.content_type.as_deref(), Some("video/mp4"));
        assert_eq!(parse_metadata("").unwrap(), Metadata::default());
        assert!(parse_metadata("filename !!!").is_err());
        assert!(parse_metadata("a b c").is_err());
    }

    #[test]
    fn ids() {
        assert!(uuid_like(&tidepost_domain::new_id()));
        assert!(!uuid_like("../../etc/passwd"));
        assert!(!uuid_like("0195a3c0-0000-7000-8000-00000000000/"));
    }
}
