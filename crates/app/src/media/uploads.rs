//! Resumable uploads, the service behind tus 1.0.0 (core protocol, creation and termination
//! extensions): a client creates an upload with its length, then appends bytes with as many
//! requests as it needs, each starting at the offset the server has durably; after a dropped
//! connection it asks for that offset and goes on from there.
//!
//! Bytes go straight to a file under `<media_dir>/.uploads/<id>` (never whole in memory). The
//! offset in the database moves only after the bytes up to it are synced, every few MiB and at
//! the end of a request, so an interrupted request keeps what it had synced. One request at a
//! time appends, under a lease in the database (see `tidepost_store::uploads`). When the last
//! byte arrives the file is hashed, probed and taken into the library ([`super::import_file`]):
//! the same bytes uploaded twice become one media item.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use tidepost_store::uploads::{self as repo, Refused, Upload};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::MediaError;
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

fn uuid_like(id: &str) -> bool {
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
    };
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

/// Deletes an upload and its bytes (tus termination). A finished upload's media stays.
pub async fn terminate(app: &App, workspace_id: &str, id: &str) -> Result<(), MediaError> {
    if !repo::delete(&app.db, workspace_id, id).await? {
        return Err(MediaError::NotFound("upload"));
    }
    remove_file(app, id).await;
    Ok(())
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
