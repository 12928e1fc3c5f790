//! The media library: files stored once per workspace by SHA-256, probed for what they are,
//! checked against each provider's rules, reused across posts and cleaned up when unused.
//!
//! - [`storage`]: the [`Storage`] trait and the local disk behind it (content addresses only).
//! - [`probe`]: what a file is, from its bytes (images by their headers, videos with ffprobe).
//! - [`rules`]: the providers' media rules over probed metadata, every violation at once.
//! - [`uploads`]: resumable uploads (tus 1.0.0 core, creation, termination) into the library.
//! - [`frame`]: one frame of a stored video as a JPEG (ffmpeg), bounded and cached.
//! - [`sweep`]: the recurring clean-up of unused media and abandoned uploads.
//! - `testing` (feature `testing`): real videos and images for other crates' tests.
//!
//! [`store`] is the one way bytes become a media item: streamed into the storage while hashed
//! (never whole in memory), probed, and recorded once per workspace and content: storing the
//! same bytes again returns the existing item. It is lenient for the publish paths that
//! predate probing (a file ffprobe cannot read is kept, with the reason, and [`check`] reports
//! it); [`import`] is the library's strict entry, which refuses anything that is neither a video
//! nor an image it can read.

pub mod frame;
pub mod probe;
pub mod rules;
pub mod s3;
#[cfg(feature = "testing")]
pub mod s3_server;
pub mod storage;
pub mod sweep;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tidepost_store::StoreError;
use tidepost_store::media::{self as repo, Media};
use tokio::io::AsyncRead;

pub use probe::{MediaInfo, MediaKind, ProbeError, Prober};
pub use s3::{S3Settings, S3Storage};
pub use storage::{LocalCopy, LocalDisk, Storage};

use crate::App;
use crate::config::{ConfigError, RawSettings};

/// The media settings (`storage`, `s3_*`, `media_dir`, `media_retention_days`,
/// `upload_expiry_hours`, `ffprobe_path`, `probe_timeout_secs`; the size limit is
/// `max_upload_bytes`).
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Where media files and unfinished resumable uploads live on the local disk (default
    /// `<data_dir>/media`); unused with S3 storage, which keeps both in the bucket.
    pub dir: PathBuf,
    /// The storage media lives in (`storage`: the local folder `dir`, or an S3 bucket).
    pub storage: Arc<dyn Storage>,
    /// Media no post has used for this many days is deleted; 0 keeps media forever.
    pub retention_days: u32,
    /// Unfinished resumable uploads are deleted this many hours after they were created.
    pub upload_expiry_hours: u32,
    pub ffprobe: String,
    pub probe_timeout_secs: u64,
}

impl MediaSettings {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let text = |name: &'static str| raw.get(name).map(|(v, o)| (v.trim().to_string(), o));
        let number = |name: &'static str, default: u64, min: u64, max: u64| match text(name) {
            None => Ok(default),
            Some((v, origin)) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    setting: name,
                    origin: origin.to_string(),
                    message: format!("expected a whole number from {min} to {max}, got {v:?}"),
                }),
            },
        };
        let data_dir = text("data_dir")
            .map(|(v, _)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from("data"));
        let dir = match text("media_dir") {
            Some((v, _)) if !v.is_empty() => PathBuf::from(v),
            _ => data_dir.join("media"),
        };
        let ffprobe = text("ffprobe_path")
            .map(|(v, _)| v)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "ffprobe".into());
        let storage: Arc<dyn Storage> = match text("storage") {
            None => Arc::new(LocalDisk::new(&dir)),
            Some((v, origin)) => match v.to_ascii_lowercase().as_str() {
                "" | "local" => Arc::new(LocalDisk::new(&dir)),
                "s3" => {
                    let settings = S3Settings::from_raw(raw)?;
                    let max = raw
                        .get("max_upload_bytes")
                        .and_then(|(v, _)| v.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    if max > s3::MAX_OBJECT_COPY {
                        return Err(ConfigError::Invalid {
                            setting: "max_upload_bytes",
                            origin: raw
                                .get("max_upload_bytes")
                                .map(|(_, o)| o.to_string())
                                .unwrap_or_default(),
                            message: format!(
                                "with S3 storage at most {} bytes (5 GiB, S3's largest copy), got {max}",
                                s3::MAX_OBJECT_COPY
                            ),
                        });
                    }
                    Arc::new(
                        S3Storage::new(settings).map_err(|message| ConfigError::Invalid {
                            setting: "storage",
                            origin: origin.to_string(),
                            message,
                        })?,
                    )
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "storage",
                        origin: origin.to_string(),
                        message: format!("expected local or s3, got {v:?}"),
                    });
                }
            },
        };
        Ok(Self {
            dir,
            storage,
            retention_days: number("media_retention_days", 30, 0, 36_500)? as u32,
            upload_expiry_hours: number("upload_expiry_hours", 24, 1, 24 * 30)? as u32,
            ffprobe,
            probe_timeout_secs: number("probe_timeout_secs", 30, 1, 3600)?,
        })
    }
}

/// Why media could not be stored, found or deleted.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the upload is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    /// The bytes are no video or image tidepost can read: the words of [`unreadable`], which
    /// name the file.
    #[error("{0}")]
    Unreadable(String),
    /// Probing cannot run here (ffprobe missing or hanging): the operator's problem.
    #[error("{0}")]
    Unavailable(String),
    #[error("no such {0} in this workspace")]
    NotFound(&'static str),
    /// A post that has not finished uses the media.
    #[error("media {media_id} is used by {} post(s) that have not finished ({}); delete or finish them first", .post_ids.len(), .post_ids.join(", "))]
    InUse {
        media_id: String,
        post_ids: Vec<String>,
    },
    /// The request does not fit the upload's state (an offset that is not the server's, a
    /// finished upload, another request appending).
    #[error("{message}")]
    Conflict {
        message: String,
        offset: Option<i64>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the media failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<storage::PutError> for MediaError {
    fn from(e: storage::PutError) -> Self {
        match e {
            storage::PutError::TooLarge { max } => MediaError::TooLarge { max },
            storage::PutError::Empty => MediaError::Invalid {
                field: "file",
                message: "the file is empty".into(),
            },
            storage::PutError::Io(e) => MediaError::Io(e),
        }
    }
}

impl From<ProbeError> for MediaError {
    fn from(e: ProbeError) -> Self {
        match e {
            ProbeError::Unreadable(m) => MediaError::Unreadable(m),
            other @ (ProbeError::ToolMissing(_) | ProbeError::Timeout(_)) => {
                MediaError::Unavailable(other.to_string())
            }
        }
    }
}

impl From<MediaError> for crate::pipeline::PublishError {
    fn from(e: MediaError) -> Self {
        use crate::pipeline::PublishError as P;
        match e {
            MediaError::Invalid { field, message } => P::Invalid { field, message },
            MediaError::TooLarge { max } => P::TooLarge { max },
            MediaError::Unreadable(message) => P::Invalid {
                field: "file",
                message,
            },
            MediaError::Unavailable(m) => P::Unavailable(m),
            MediaError::NotFound(what) => P::NotFound(what),
            e @ (MediaError::InUse { .. } | MediaError::Conflict { .. }) => {
                P::Conflict(e.to_string())
            }
            MediaError::Store(e) => P::Store(e),
            MediaError::Io(e) => P::Io(e),
        }
    }
}

/// The storage media lives in.
pub fn storage(app: &App) -> &Arc<dyn Storage> {
    &app.config.media.storage
}

/// Why the media storage cannot be used right now (it does not answer, the bucket is gone, the
/// credentials are refused), from a `HEAD` of an address no content has; `None` when it
/// answers. The text names the storage and what it answered, never a credential.
pub async fn storage_problem(app: &App) -> Option<String> {
    let storage = storage(app);
    match storage.exists(&"0".repeat(64)).await {
        Ok(_) => None,
        Err(err) => Some(format!("{}: {err}", storage.describe())),
    }
}

/// The prober configured for this instance.
pub fn prober(app: &App) -> Prober {
    Prober {
        ffprobe: app.config.media.ffprobe.clone(),
        timeout: Duration::from_secs(app.config.media.probe_timeout_secs),
    }
}

/// `video` or `image` from a content type (or the file name), if it is either: a hint for
/// files probing cannot read, never used over what probing found.
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
    storage(app)
        .local_path(&media.sha256)
        .unwrap_or_else(|| app.config.data_dir.join(&media.storage_path))
}

/// The probed metadata of a stored media, when probing read it.
pub fn info(media: &Media) -> Option<MediaInfo> {
    serde_json::from_str(media.info.as_deref()?).ok()
}

/// The rules of `target` that `media` breaks ([`rules::check`]); media that could not be probed
/// breaks the rule `media.probe`, with the reason.
pub fn check(
    media: &Media,
    target: rules::Target,
    limits: &rules::CreatorLimits,
) -> Vec<rules::Violation> {
    match info(media) {
        Some(info) => rules::check(target, &info, limits),
        None => vec![unreadable(
            media.original_name.as_deref(),
            media
                .probe_error
                .as_deref()
                .unwrap_or("it was stored before probing existed"),
        )],
    }
}

/// The rule a file breaks when it is no video or image tidepost can read (`media.probe`), in
/// the words every entry uses: "NAME could not be read as a video or image: REASON".
pub fn unreadable(name: Option<&str>, reason: &str) -> rules::Violation {
    rules::Violation {
        rule: UNREADABLE_RULE,
        message: format!(
            "{} could not be read as a video or image: {reason}",
            name.unwrap_or("the file")
        ),
    }
}

/// A probe's refusal of the file `name` as the library says it ([`unreadable`]).
fn named(err: ProbeError, name: Option<&str>) -> MediaError {
    match err {
        ProbeError::Unreadable(reason) => {
            MediaError::Unreadable(unreadable(name.map(clean_name).as_deref(), &reason).message)
        }
        other @ (ProbeError::ToolMissing(_) | ProbeError::Timeout(_)) => other.into(),
    }
}

/// The rule of [`unreadable`].
pub const UNREADABLE_RULE: &str = "media.probe";

/// How strictly a new file is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strict {
    /// Keep files probing cannot read (with the reason), kind from the content type.
    Lenient,
    /// Refuse them.
    Strict,
}

/// Streams `reader` into the storage, probes it and records it for the workspace (or returns
/// the workspace's existing item with the same bytes). Lenient: see the module docs.
pub async fn store<R: AsyncRead + Unpin + Send>(
    app: &App,
    workspace_id: &str,
    reader: R,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, MediaError> {
    if kind_of(content_type, original_name).is_none() {
        return Err(MediaError::Invalid {
            field: "file",
            message: format!(
                "{content_type} is neither a video nor an image (TikTok takes MP4, MOV or WebM videos)"
            ),
        });
    }
    let max = app.config.publish.max_upload_bytes;
    let stored = storage(app).put(Box::pin(reader), max).await?;
    record(
        app,
        workspace_id,
        stored,
        content_type,
        original_name,
        Strict::Lenient,
    )
    .await
}

/// The library's upload: like [`store`], but only videos and images probing can read are
/// kept, and the content type is what the bytes are, whatever the client said.
pub async fn import<R: AsyncRead + Unpin + Send>(
    app: &App,
    workspace_id: &str,
    reader: R,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, MediaError> {
    let max = app.config.publish.max_upload_bytes;
    let stored = storage(app).put(Box::pin(reader), max).await?;
    record(
        app,
        workspace_id,
        stored,
        content_type,
        original_name,
        Strict::Strict,
    )
    .await
}

/// Takes a complete file (a finished resumable upload) into the library, strictly.
pub async fn import_file(
    app: &App,
    workspace_id: &str,
    path: &Path,
    content_type: &str,
    original_name: Option<&str>,
) -> Result<Media, MediaError> {
    // Probe before the file moves: when probing cannot run, the caller keeps its file whole.
    let probed = prober(app)
        .probe(path)
        .await
        .map_err(|e| named(e, original_name))?;
    let stored = storage(app).put_file(path).await?;
    record_probed(
        app,
        workspace_id,
        stored,
        content_type,
        original_name,
        Strict::Strict,
        Ok(probed),
    )
    .await
}

async fn record(
    app: &App,
    workspace_id: &str,
    stored: storage::Stored,
    content_type: &str,
    original_name: Option<&str>,
    strict: Strict,
) -> Result<Media, MediaError> {
    let copy = match storage(app).local_copy(&stored.sha256).await {
        Ok(copy) => copy,
        Err(e) => {
            forget_file(app, &stored.sha256).await;
            return Err(e.into());
        }
    };
    let probed = prober(app).probe(copy.path()).await;
    drop(copy);
    record_probed(
        app,
        workspace_id,
        stored,
        content_type,
        original_name,
        strict,
        probed,
    )
    .await
}

async fn record_probed(
    app: &App,
    workspace_id: &str,
    stored: storage::Stored,
    content_type: &str,
    original_name: Option<&str>,
    strict: Strict,
    probed: Result<MediaInfo, ProbeError>,
) -> Result<Media, MediaError> {
    let disk = storage(app);
    let now = tidepost_domain::now_ms();
    let name = original_name.map(clean_name);
    let mut row = Media {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        sha256: stored.sha256.clone(),
        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
        content_type: content_type.to_string(),
        kind: kind_of(content_type, original_name)
            .unwrap_or("video")
            .to_string(),
        storage_path: format!("media/{}", stored.sha256),
        original_name: name,
        created_at: now,
        info: None,
        probe_error: None,
        container: None,
        width: None,
        height: None,
        duration_ms: None,
        last_used_at: Some(now),
    };
    match probed {
        Ok(info) => {
            row.kind = info.kind.as_str().to_string();
            row.content_type = info.mime.clone();
            row.container = Some(info.container.clone());
            row.width = info.width.map(i64::from);
            row.height = info.height.map(i64::from);
            row.duration_ms = info.duration_secs.map(|s| (s * 1000.0).round() as i64);
            row.info = Some(serde_json::to_string(&info).unwrap_or_default());
        }
        Err(e) if strict == Strict::Strict => {
            forget_file(app, &stored.sha256).await;
            return Err(named(e, original_name));
        }
        Err(e) => {
            tracing::warn!(sha256 = %stored.sha256, error = %e, "media stored without probed metadata");
            row.probe_error = Some(e.to_string());
        }
    }
    let media = repo::insert_or_get(&app.db, &row).await?;
    // A concurrent delete of the last other holder may have removed the file between the
    // rename and the insert: say so rather than keep a row without bytes.
    if !disk.exists(&media.sha256).await? {
        let _ = repo::delete(&app.db, workspace_id, &media.id).await;
        return Err(MediaError::Conflict {
            message: "the file was removed while it was stored; upload it again".into(),
            offset: None,
        });
    }
    Ok(media)
}

/// A file name as shown back: its last path component, without control characters, at most
/// 200 characters. Never used to build a path.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Deletes the file of `sha256` once no media row of any workspace holds it.
async fn forget_file(app: &App, sha256: &str) {
    match repo::holders(&app.db, sha256).await {
        Ok(0) => {
            if let Err(e) = storage(app).delete(sha256).await {
                tracing::warn!(%sha256, error = %e, "could not delete a media file");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(%sha256, error = %e, "could not count a media file's holders"),
    }
}

/// Deletes a media item of the workspace, refused while a post that has not finished uses it.
/// The file goes once no workspace holds the same bytes.
pub async fn delete(app: &App, workspace_id: &str, id: &str) -> Result<(), MediaError> {
    let media = repo::get(&app.db, workspace_id, id)
        .await?
        .ok_or(MediaError::NotFound("media"))?;
    let usage = repo::usage(&app.db, workspace_id, id).await?;
    if !usage.pending_post_ids.is_empty() {
        return Err(MediaError::InUse {
            media_id: id.to_string(),
            post_ids: usage.pending_post_ids,
        });
    }
    if !repo::delete(&app.db, workspace_id, id).await? {
        return Err(MediaError::NotFound("media"));
    }
    forget_file(app, &media.sha256).await;
    Ok(())
}

/// Registers the clean-up sweep's job kind.
pub(crate) fn register(registry: tidepost_jobs::Registry, app: &App) -> tidepost_jobs::Registry {
    sweep::register(registry, app)
}

#[cfg(test)]
mod tests;
