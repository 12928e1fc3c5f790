//! Media for publishing: files taken with a post ([`store`], strict), the checks a post's
//! stored media must pass when it is accepted ([`check`]) and again before it is sent
//! ([`check_before_send`]).
//! The library itself (storage, probing, rules, resumable uploads) lives in [`crate::media`].
//! A post's media set is a list of [`Item`]s: public URLs or stored media.

use serde::{Deserialize, Serialize};
use tidepost_store::media::Media;
use tokio::io::AsyncRead;

pub use crate::media::{kind_of, path_of};

use super::PublishError;
use crate::App;
use crate::media::{MediaError, ProbeError, rules};

/// Streams `reader` into the media library (hashed, probed, stored once per workspace and
/// content), refusing more than `max_upload_bytes` and anything that is no video or image
/// tidepost can read: every entry that takes a file with a post stores it this way, so a file
/// that cannot be published is refused before anything is kept ([`Refused`]).
pub async fn store<R: AsyncRead + Unpin + Send>(
    app: &App,
    workspace_id: &str,
    reader: R,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, PublishError> {
    match crate::media::import(app, workspace_id, reader, content_type, original_name).await {
        Ok(media) => Ok(media),
        Err(MediaError::Unreadable(message)) => Err(PublishError::Invalid {
            field: crate::media::UNREADABLE_RULE,
            message,
        }),
        Err(other) => Err(other.into()),
    }
}

/// The rules of `target` that stored `media` breaks as a post about to use it sees them: its
/// probed metadata against the platform's rules, and its file still there and whole (a file
/// changed or lost since it was probed breaks `media.probe`).
pub async fn check(app: &App, media: &Media, target: rules::Target) -> Vec<rules::Violation> {
    if let Some(reason) = changed_on_disk(app, media).await {
        return vec![crate::media::unreadable(
            media.original_name.as_deref(),
            &reason,
        )];
    }
    crate::media::check(media, target, &rules::CreatorLimits::default())
}

/// Probes stored `media` again right before it is sent, so a file that became unreadable
/// since it was accepted (a scheduled post) fails with the reason instead of reaching the
/// platform.
pub async fn check_before_send(app: &App, media: &Media) -> Result<(), rules::Violation> {
    if let Some(reason) = changed_on_disk(app, media).await {
        return Err(crate::media::unreadable(
            media.original_name.as_deref(),
            &reason,
        ));
    }
    let copy = match crate::media::storage(app).local_copy(&media.sha256).await {
        Ok(copy) => copy,
        // The storage is down or refuses us: not the file's fault; the send reads it again
        // and retries while the storage is out.
        Err(e) if crate::media::s3::is_unavailable(&e) => {
            tracing::warn!(media_id = %media.id, error = %e, "could not read media again before sending");
            return Ok(());
        }
        Err(e) => {
            return Err(crate::media::unreadable(
                media.original_name.as_deref(),
                &format!("the stored file cannot be read ({e})"),
            ));
        }
    };
    match crate::media::prober(app).probe(copy.path()).await {
        Ok(_) => Ok(()),
        Err(ProbeError::Unreadable(reason)) => Err(crate::media::unreadable(
            media.original_name.as_deref(),
            &reason,
        )),
        // Probing cannot run here (ffprobe missing or hanging): the operator's problem, not the
        // file's; the send goes on with what was probed when it was accepted.
        Err(err) => {
            tracing::warn!(media_id = %media.id, error = %err, "could not probe media again before sending");
            Ok(())
        }
    }
}

/// Why the stored file of `media` is not what was probed, if it is not: gone, or of another
/// size. A storage that does not answer is no verdict on the file.
async fn changed_on_disk(app: &App, media: &Media) -> Option<String> {
    match crate::media::storage(app).size(&media.sha256).await {
        Ok(Some(size)) if i64::try_from(size).ok() == Some(media.size_bytes) => None,
        Ok(Some(size)) => Some(format!(
            "the stored file changed since it was uploaded ({size} bytes, not {})",
            media.size_bytes
        )),
        Ok(None) => Some("the stored file is missing from the storage".into()),
        // The storage is down or refuses us: that says nothing of the file (a send retries).
        Err(e) if crate::media::s3::is_unavailable(&e) => None,
        Err(e) => Some(format!("the stored file cannot be read ({e})")),
    }
}

/// Whether a media item is an image or a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PostMediaKind)]
pub enum ItemKind {
    Image,
    Video,
}

/// One media of the post: a public URL, or stored media (`media_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PostMediaItem)]
#[serde(default, deny_unknown_fields)]
pub struct Item {
    pub url: Option<String>,
    pub media_id: Option<String>,
    /// Inferred from the stored media or the URL's extension when absent.
    pub kind: Option<ItemKind>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds, when the client knows it.
    pub duration_sec: Option<f64>,
}

/// A URL's file extension, lowercased, when it has one.
pub(crate) fn extension(url: &str) -> Option<String> {
    let path = url::Url::parse(url).ok()?.path().to_string();
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    // A dot inside a token or an id is no file extension.
    ((1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| ext.to_ascii_lowercase())
}

/// The kind of media a file extension names.
pub(crate) fn kind_of_extension(ext: &str) -> Option<ItemKind> {
    match ext {
        "jpg" | "jpeg" | "png" | "webp" | "gif" | "heic" => Some(ItemKind::Image),
        "mp4" | "mov" | "m4v" | "webm" => Some(ItemKind::Video),
        _ => None,
    }
}
