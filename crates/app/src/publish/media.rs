//! Media for publishing: the library's [`crate::media::store`] with publishing's error type.
//! The library itself (storage, probing, rules, resumable uploads) lives in [`crate::media`].

use tidepost_store::media::Media;
use tokio::io::AsyncRead;

pub use crate::media::{kind_of, path_of};

use super::PublishError;
use crate::App;

/// Streams `reader` into the media library (hashed, probed, stored once per workspace and
/// content), refusing more than `max_upload_bytes`.
pub async fn store<R: AsyncRead + Unpin + Send>(
    app: &App,
    workspace_id: &str,
    reader: R,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, PublishError> {
    Ok(crate::media::store(app, workspace_id, reader, content_type, original_name).await?)
}
