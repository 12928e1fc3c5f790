//! Content Posting init endpoints — direct video post, upload to inbox, photo post — and
//! cancel. Each init validates the body (chunk rules, URL ownership, privacy), applies the
//! posting caps and the unaudited-client rules, then records a publish and either hands out an
//! upload URL (FILE_UPLOAD) or starts pulling the media (PULL_FROM_URL).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::App;
use super::auth::{JsonBody, Session};
use super::errors::{ApiError, ok_without_data, respond};
use super::state::{
    Creator, Endpoint, Mode, Publish, Source, Status, UploadTask, random_id19, secs_to_ms,
};
use super::user::session_creator;

/// Chunk rules of the Media Transfer Guide, accepting both decimal and binary "MB".
pub(crate) const MIN_CHUNK: u64 = 5_000_000;
pub(crate) const MAX_CHUNK: u64 = 64 * 1024 * 1024;
pub(crate) const MAX_LAST_CHUNK: u64 = 128 * 1024 * 1024;
pub(crate) const MAX_VIDEO: u64 = 4 * 1024 * 1024 * 1024;
pub(crate) const MAX_CHUNKS: u64 = 1000;
const MAX_PHOTOS: usize = 35;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VideoInitBody {
    post_info: Option<Value>,
    source_info: Option<SourceInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ContentInitBody {
    media_type: Option<String>,
    post_mode: Option<String>,
    post_info: Option<Value>,
    source_info: Option<SourceInfo>,
    is_aigc: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub(crate) struct SourceInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_chunk_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo_images: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo_cover_index: Option<i64>,
}

/// The fields of `post_info` the emulator checks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostInfo {
    title: Option<String>,
    description: Option<String>,
    privacy_level: Option<String>,
    brand_content_toggle: Option<bool>,
    /// Photo posts made directly: a boolean when given (only its type is checked).
    #[allow(dead_code)]
    auto_add_music: Option<bool>,
}

/// Where the media of a publish comes from.
enum Media {
    Upload {
        video_size: u64,
        chunk_size: u64,
        total_chunk_count: u64,
    },
    Pull {
        urls: Vec<String>,
    },
}

/// `POST /v2/post/publish/video/init/`.
pub(crate) async fn direct_video_init(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<VideoInitBody>, ApiError>,
) -> Response {
    respond(video_init(&app, &headers, body, Mode::Direct).await)
}

/// `POST /v2/post/publish/inbox/video/init/`.
pub(crate) async fn inbox_video_init(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<VideoInitBody>, ApiError>,
) -> Response {
    respond(video_init(&app, &headers, body, Mode::Inbox).await)
}

async fn video_init(
    app: &App,
    headers: &HeaderMap,
    body: Result<JsonBody<VideoInitBody>, ApiError>,
    mode: Mode,
) -> Result<Value, ApiError> {
    let endpoint = if mode == Mode::Direct {
        Endpoint::VideoInit
    } else {
        Endpoint::InboxInit
    };
    let session = app.authorize(headers, endpoint).await?;
    let JsonBody(body) = body?;
    let creator = session_creator(app, &session)?;
    let source_info = body
        .source_info
        .ok_or_else(|| ApiError::invalid_param("source_info is required."))?;
    let (media, source) = match source_info.source.as_deref() {
        Some("FILE_UPLOAD") => (upload_media(&source_info)?, Source::FileUpload),
        Some("PULL_FROM_URL") => {
            let url = source_info.video_url.clone().filter(|u| !u.is_empty());
            let url = url.ok_or_else(|| {
                ApiError::invalid_param("source_info.video_url is required for PULL_FROM_URL.")
            })?;
            app.check_url_ownership(std::slice::from_ref(&url))?;
            (Media::Pull { urls: vec![url] }, Source::PullFromUrl)
        }
        _ => {
            return Err(ApiError::invalid_param(
                "source_info.source must be FILE_UPLOAD or PULL_FROM_URL.",
            ));
        }
    };
    let (post_info, privacy) = match mode {
        Mode::Direct => {
            let post_info = body.post_info.unwrap_or_else(|| json!({}));
            let privacy = check_post_info(&post_info, &creator, 2200, None)?;
            (post_info, Some(privacy))
        }
        Mode::Inbox => (Value::Null, None),
    };
    let privacy = app.check_caps(&creator, mode, privacy)?;
    let source_info = serde_json::to_value(&source_info).unwrap_or(Value::Null);
    Ok(app.create_publish(
        &session,
        mode,
        source,
        post_info,
        source_info,
        privacy,
        media,
    ))
}

/// `POST /v2/post/publish/content/init/` (photos).
pub(crate) async fn content_init(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<ContentInitBody>, ApiError>,
) -> Response {
    respond(photo_init(&app, &headers, body).await)
}

async fn photo_init(
    app: &App,
    headers: &HeaderMap,
    body: Result<JsonBody<ContentInitBody>, ApiError>,
) -> Result<Value, ApiError> {
    let session = app.authorize(headers, Endpoint::ContentInit).await?;
    let JsonBody(body) = body?;
    let creator = session_creator(app, &session)?;
    if body.media_type.as_deref() != Some("PHOTO") {
        return Err(ApiError::invalid_param("media_type must be PHOTO."));
    }
    let mode = match body.post_mode.as_deref() {
        Some("DIRECT_POST") => Mode::Direct,
        Some("MEDIA_UPLOAD") => Mode::Inbox,
        _ => {
            return Err(ApiError::invalid_param(
                "post_mode must be DIRECT_POST or MEDIA_UPLOAD.",
            ));
        }
    };
    session.require_scope(if mode == Mode::Direct {
        "video.publish"
    } else {
        "video.upload"
    })?;
    let source_info = body
        .source_info
        .ok_or_else(|| ApiError::invalid_param("source_info is required."))?;
    let urls = photo_urls(&source_info)?;
    app.check_url_ownership(&urls)?;
    let mut post_info = body.post_info.unwrap_or_else(|| json!({}));
    let privacy = match mode {
        Mode::Direct => Some(check_post_info(&post_info, &creator, 90, Some(4000))?),
        Mode::Inbox => {
            check_post_info_lengths(&post_info, 90, Some(4000))?;
            // A draft carries its title and description only (the Photo reference).
            if let Some(other) = post_info.as_object().and_then(|info| {
                info.keys()
                    .find(|k| !matches!(k.as_str(), "title" | "description"))
                    .cloned()
            }) {
                return Err(ApiError::invalid_param(format!(
                    "post_info.{other} is not taken with post_mode MEDIA_UPLOAD: only title and description."
                )));
            }
            None
        }
    };
    let privacy = app.check_caps(&creator, mode, privacy)?;
    if let (Some(aigc), Some(info)) = (body.is_aigc, post_info.as_object_mut()) {
        info.insert("is_aigc".into(), json!(aigc));
    }
    let source_info = serde_json::to_value(&source_info).unwrap_or(Value::Null);
    let media = Media::Pull { urls };
    Ok(app.create_publish(
        &session,
        mode,
        Source::Photo,
        post_info,
        source_info,
        privacy,
        media,
    ))
}

fn photo_urls(source_info: &SourceInfo) -> Result<Vec<String>, ApiError> {
    if source_info.source.as_deref() != Some("PULL_FROM_URL") {
        return Err(ApiError::invalid_param(
            "source_info.source must be PULL_FROM_URL for photos.",
        ));
    }
    let urls = source_info.photo_images.clone().unwrap_or_default();
    if urls.is_empty() || urls.len() > MAX_PHOTOS || urls.iter().any(String::is_empty) {
        return Err(ApiError::invalid_param(format!(
            "source_info.photo_images must hold 1 to {MAX_PHOTOS} URLs."
        )));
    }
    match source_info.photo_cover_index {
        Some(i) if i >= 0 && (i as usize) < urls.len() => Ok(urls),
        Some(_) => Err(ApiError::invalid_param(
            "source_info.photo_cover_index is out of range.",
        )),
        None => Err(ApiError::invalid_param(
            "source_info.photo_cover_index is required.",
        )),
    }
}

fn upload_media(source_info: &SourceInfo) -> Result<Media, ApiError> {
    let (Some(video_size), Some(chunk_size), Some(total_chunk_count)) = (
        source_info.video_size,
        source_info.chunk_size,
        source_info.total_chunk_count,
    ) else {
        return Err(ApiError::invalid_param(
            "source_info.video_size, chunk_size and total_chunk_count are required for FILE_UPLOAD.",
        ));
    };
    check_chunks(video_size, chunk_size, total_chunk_count).map_err(ApiError::invalid_param)?;
    Ok(Media::Upload {
        video_size,
        chunk_size,
        total_chunk_count,
    })
}

/// The Media Transfer Guide's chunk rules.
pub(crate) fn check_chunks(
    video_size: u64,
    chunk_size: u64,
    total_chunk_count: u64,
) -> Result<(), String> {
    if video_size == 0 || video_size > MAX_VIDEO {
        return Err(format!(
            "video_size must be between 1 and {MAX_VIDEO} bytes."
        ));
    }
    if video_size < MIN_CHUNK {
        return if chunk_size == video_size && total_chunk_count == 1 {
            Ok(())
        } else {
            Err("Videos under 5 MB must be uploaded whole: chunk_size = video_size and total_chunk_count = 1.".into())
        };
    }
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
        return Err(format!(
            "chunk_size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes."
        ));
    }
    if chunk_size > video_size {
        return Err("chunk_size must not exceed video_size.".into());
    }
    let expected = video_size / chunk_size;
    if total_chunk_count != expected {
        return Err(format!(
            "total_chunk_count must be floor(video_size / chunk_size) = {expected}."
        ));
    }
    if total_chunk_count > MAX_CHUNKS {
        return Err(format!("total_chunk_count must not exceed {MAX_CHUNKS}."));
    }
    if video_size > MAX_CHUNK && total_chunk_count == 1 {
        return Err("Videos over 64 MB must be uploaded in several chunks.".into());
    }
    let last = video_size - (total_chunk_count - 1) * chunk_size;
    if last > MAX_LAST_CHUNK {
        return Err(format!(
            "The last chunk would be {last} bytes; at most {MAX_LAST_CHUNK} are allowed."
        ));
    }
    Ok(())
}

/// Checks a direct post's `post_info` and returns its privacy level.
fn check_post_info(
    post_info: &Value,
    creator: &Creator,
    max_title: usize,
    max_description: Option<usize>,
) -> Result<String, ApiError> {
    let info = check_post_info_lengths(post_info, max_title, max_description)?;
    let privacy = info
        .privacy_level
        .filter(|p| creator.privacy_level_options().contains(&p.as_str()));
    let privacy = privacy.ok_or_else(|| {
        ApiError::forbidden(
            "privacy_level_option_mismatch",
            "post_info.privacy_level is missing or not one of the creator's privacy_level_options.",
        )
    })?;
    if info.brand_content_toggle == Some(true) && privacy == "SELF_ONLY" {
        return Err(ApiError::invalid_param(
            "Branded content cannot be posted with privacy level SELF_ONLY.",
        ));
    }
    Ok(privacy)
}

fn check_post_info_lengths(
    post_info: &Value,
    max_title: usize,
    max_description: Option<usize>,
) -> Result<PostInfo, ApiError> {
    if !post_info.is_object() {
        return Err(ApiError::invalid_param("post_info must be an object."));
    }
    let info: PostInfo = serde_json::from_value(post_info.clone())
        .map_err(|e| ApiError::invalid_param(format!("post_info is not valid: {e}")))?;
    let utf16_len = |s: &Option<String>| s.as_deref().map_or(0, |s| s.encode_utf16().count());
    if utf16_len(&info.title) > max_title {
        return Err(ApiError::invalid_param(format!(
            "post_info.title exceeds {max_title} characters."
        )));
    }
    if let Some(max) = max_description
        && utf16_len(&info.description) > max
    {
        return Err(ApiError::invalid_param(format!(
            "post_info.description exceeds {max} characters."
        )));
    }
    Ok(info)
}

/// Why a creator cannot direct-post right now, if they cannot: banned, the unaudited client's
/// distinct-creator cap, or the creator's daily cap.
pub(crate) fn direct_post_block(app: &App, creator: &Creator) -> Option<ApiError> {
    let settings = app.settings();
    let now = app.now_ms();
    let store = app.store();
    if creator.banned_from_posting {
        return Some(banned());
    }
    if settings.unaudited {
        let mut users: Vec<&str> = store
            .recent_publishes(None, Mode::Direct, now)
            .map(|p| p.open_id.as_str())
            .collect();
        users.sort_unstable();
        users.dedup();
        if !users.contains(&creator.open_id.as_str())
            && users.len() >= settings.unaudited_user_cap as usize
        {
            return Some(ApiError::forbidden(
                "reached_active_user_cap",
                "The client's daily quota of active publishing users has been reached.",
            ));
        }
    }
    let posts = store
        .recent_publishes(Some(&creator.open_id), Mode::Direct, now)
        .count();
    (posts >= settings.direct_post_daily_cap as usize).then(|| {
        ApiError::forbidden(
            "spam_risk_too_many_posts",
            "The daily post cap from the API is reached for the current user.",
        )
    })
}

fn banned() -> ApiError {
    ApiError::forbidden(
        "spam_risk_user_banned_from_posting",
        "The user is banned from making new posts.",
    )
}

impl App {
    /// Caps and unaudited-client rules for a new publish; returns the privacy level it gets.
    fn check_caps(
        &self,
        creator: &Creator,
        mode: Mode,
        privacy: Option<String>,
    ) -> Result<Option<String>, ApiError> {
        let settings = self.settings();
        if mode == Mode::Inbox {
            if creator.banned_from_posting {
                return Err(banned());
            }
            let now = self.now_ms();
            let pending = self
                .store()
                .recent_publishes(Some(&creator.open_id), Mode::Inbox, now)
                .filter(|p| p.status != Status::PublishComplete)
                .count();
            if pending >= settings.pending_inbox_cap as usize {
                return Err(ApiError::forbidden(
                    "spam_risk_too_many_pending_share",
                    "The user has too many pending shares in the last 24 hours.",
                ));
            }
            return Ok(privacy);
        }
        if settings.unaudited && !creator.private_account {
            return Err(ApiError::forbidden(
                "unaudited_client_can_only_post_to_private_accounts",
                "Unaudited clients can only post to private accounts.",
            ));
        }
        if let Some(error) = direct_post_block(self, creator) {
            return Err(error);
        }
        Ok(if settings.unaudited {
            Some("SELF_ONLY".into())
        } else {
            privacy
        })
    }

    fn check_url_ownership(&self, urls: &[String]) -> Result<(), ApiError> {
        let settings = self.settings();
        match urls.iter().find(|url| !settings.url_is_verified(url)) {
            Some(url) => Err(ApiError::forbidden(
                "url_ownership_unverified",
                format!("The URL {url} is not under a verified domain or URL prefix of this app."),
            )),
            None => Ok(()),
        }
    }

    /// Records a new publish and starts its transfer; returns the init response `data`.
    #[allow(clippy::too_many_arguments)]
    fn create_publish(
        &self,
        session: &Session,
        mode: Mode,
        source: Source,
        post_info: Value,
        source_info: Value,
        privacy_level: Option<String>,
        media: Media,
    ) -> Value {
        let now = self.now_ms();
        let publish_id = format!("{}{}", publish_id_prefix(mode, source), random_id19());
        let mut publish = Publish {
            publish_id: publish_id.clone(),
            key: crate::ctx::Ctx::random_token(""),
            open_id: session.open_id.clone(),
            mode,
            source,
            post_info,
            source_info,
            privacy_level,
            created_ms: now,
            status: Status::ProcessingDownload,
            fail_reason: None,
            upload: None,
            bytes_received: 0,
            sha256: None,
            chunks_received: 0,
            transfer_done_ms: None,
            completed_ms: None,
            post_ids: Vec::new(),
            cancel: CancellationToken::new(),
        };
        match media {
            Media::Upload {
                video_size,
                chunk_size,
                total_chunk_count,
            } => {
                let upload = UploadTask {
                    upload_id: random_id19().to_string(),
                    upload_token: crate::ctx::Ctx::random_token(""),
                    expires_at_ms: now + secs_to_ms(self.settings().upload_url_ttl_secs),
                    video_size,
                    chunk_size,
                    total_chunk_count,
                    chunks_done: 0,
                    in_flight: false,
                    hasher: Sha256::new(),
                };
                let upload_url = format!(
                    "{}/tiktok/upload/video/?upload_id={}&upload_token={}",
                    self.ctx.base_url, upload.upload_id, upload.upload_token
                );
                publish.status = Status::ProcessingUpload;
                publish.upload = Some(upload);
                self.store().publishes.push(publish);
                json!({"publish_id": publish_id, "upload_url": upload_url})
            }
            Media::Pull { urls } => {
                self.store().publishes.push(publish);
                self.start_pull(&publish_id, urls);
                json!({"publish_id": publish_id})
            }
        }
    }
}

fn publish_id_prefix(mode: Mode, source: Source) -> &'static str {
    match (mode, source) {
        (Mode::Direct, Source::FileUpload) => "v_pub_file~v2-1.",
        (Mode::Direct, Source::PullFromUrl) => "v_pub_url~v2.",
        (Mode::Inbox, Source::FileUpload) => "v_inbox_file~v2.",
        (Mode::Inbox, Source::PullFromUrl) => "v_inbox_url~v2.",
        (Mode::Direct, Source::Photo) => "p_pub_url~v2.",
        (Mode::Inbox, Source::Photo) => "p_inbox_url~v2.",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PublishIdBody {
    pub publish_id: Option<String>,
}

/// The publish named in a request body, checked to belong to the caller.
pub(crate) fn owned_publish(
    app: &App,
    session: &Session,
    body: &PublishIdBody,
) -> Result<Publish, ApiError> {
    let id = body.publish_id.as_deref().filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| ApiError::invalid_param("publish_id is required."))?;
    let publish = app.store().publish(id).cloned();
    let publish = publish.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_publish_id",
            "The publish_id is invalid.",
        )
    })?;
    if publish.open_id != session.open_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "token_not_authorized_for_specified_publish_id",
            "The access token is not authorized for this publish_id.",
        ));
    }
    Ok(publish)
}

/// `POST /v2/post/publish/cancel/`: stops an ongoing PULL_FROM_URL download.
pub(crate) async fn cancel(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<PublishIdBody>, ApiError>,
) -> Response {
    let result = async {
        let session = app.authorize(&headers, Endpoint::Cancel).await?;
        let JsonBody(body) = body?;
        let publish = owned_publish(&app, &session, &body)?;
        let event = {
            let mut store = app.store();
            let publish = store
                .publish_mut(&publish.publish_id)
                .filter(|p| p.status == Status::ProcessingDownload && p.transfer_done_ms.is_none());
            let publish = publish.ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "publish_not_cancellable",
                    "The publish can no longer be cancelled.",
                )
            })?;
            publish.cancel.cancel();
            super::lifecycle::fail(publish, "publish_cancelled")
        };
        app.emit(vec![event]);
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ok_without_data(),
        Err::<_, ApiError>(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_chunks;

    #[test]
    fn documented_examples_pass() {
        assert!(check_chunks(50_000_123, 10_000_000, 5).is_ok());
        assert!(check_chunks(4_194_304, 4_194_304, 1).is_ok());
        assert!(check_chunks(30_567_100, 30_567_100, 1).is_ok());
    }

    #[test]
    fn violations_fail() {
        assert!(check_chunks(50_000_123, 10_000_000, 6).is_err());
        assert!(check_chunks(4_194_304, 1_000_000, 4).is_err());
        assert!(check_chunks(100_000_000, 4_000_000, 25).is_err());
        assert!(check_chunks(100_000_000, 100_000_000, 1).is_err());
        assert!(check_chunks(5 * 1024 * 1024 * 1024, 64 * 1024 * 1024, 80).is_err());
        assert!(check_chunks(200_000_000, 67_108_864, 2).is_ok());
        assert!(check_chunks(260_000_000, 67_000_000, 3).is_ok());
        assert!(check_chunks(140_000_000, 70_000_000, 2).is_err());
    }
}
