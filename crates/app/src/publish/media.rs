//! Media files: streamed to a temporary file in the data folder while hashed (never held in
//! memory), then renamed to `media/<sha256>`, so one content is stored once.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tidepost_store::media::{self, Media};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::PublishError;
use crate::App;

const BUFFER: usize = 256 * 1024;

/// `video` or `image` from a content type (or the file name), if it is either.
pub fn kind_of(content_type: &str, name: Option<&str>) -> Option<&'static str> {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("video/") {
        return Some("video");
    }
    if ct.starts_with("image/") {
        return Some("image");
    }
    let ext = name?.rsplit('.').next()?.to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "mov" | "webm" | "m4v" => Some("video"),
        "jpg" | "jpeg" | "webp" | "png" => Some("image"),
        _ => None,
    }
}

/// The absolute path of a stored media file.
pub fn path_of(app: &App, media: &Media) -> PathBuf {
    app.config.data_dir.join(&media.storage_path)
}

/// Streams `reader` into the data folder, hashing as it goes, refusing more than
/// `max_upload_bytes`, and records the media for the workspace. `on_progress` hears the
/// bytes received so far.
pub async fn store<R: AsyncRead + Unpin>(
    app: &App,
    workspace_id: &str,
    mut reader: R,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, PublishError> {
    let kind = kind_of(content_type, original_name).ok_or_else(|| PublishError::Invalid {
        field: "file",
        message: format!(
            "{content_type} is neither a video nor an image (TikTok takes MP4, MOV or WebM videos)"
        ),
    })?;
    let max = app.config.publish.max_upload_bytes;
    let dir = app.config.data_dir.join("media");
    tokio::fs::create_dir_all(&dir).await?;
    let temp = dir.join(format!(".upload-{}", tidepost_domain::new_id()));
    let result = async {
        let mut file = tokio::fs::File::create(&temp).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > max {
                return Err(PublishError::TooLarge { max });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        if size == 0 {
            return Err(PublishError::Invalid {
                field: "file",
                message: "the file is empty".into(),
            });
        }
        Ok((hex::encode(hasher.finalize()), size))
    }
    .await;
    let (sha256, size) = match result {
        Ok(done) => done,
        Err(err) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err);
        }
    };
    let relative = Path::new("media").join(&sha256);
    tokio::fs::rename(&temp, app.config.data_dir.join(&relative)).await?;
    let row = Media {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        sha256,
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        content_type: content_type.to_string(),
        kind: kind.to_string(),
        storage_path: relative.to_string_lossy().into_owned(),
        original_name: original_name.map(str::to_string),
        created_at: tidepost_domain::now_ms(),
    };
    Ok(media::insert_or_get(&app.db, &row).await?)
}
