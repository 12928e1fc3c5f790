//! Publishing to Instagram: single images, reels (cover, share to feed), carousels (2–10
//! images and videos) and stories, on the shared posts/targets pipeline.
//!
//! - [`prepare`] checks the media rules before anything is sent (JPEG images up to 8 MiB with
//!   an aspect ratio from 4:5 to 1.91:1, MP4/MOV videos, reel and story durations when known,
//!   2–10 carousel items, caption limits); [`admit_now`] asks Meta's publishing limit for a post
//!   sent now; `compose` stores the target with its `instagram.publish` job. Media comes as a
//!   public URL, or as a stored upload that Meta fetches from a signed, expiring URL of
//!   tidepost's own ([`super::media_url`]).
//! - `instagram.publish` (this module's job) creates the containers (carousel children first,
//!   in a durable step, then waits until they are `FINISHED`, then the parent), polls the
//!   container with backoff until `FINISHED` (`ERROR` / `EXPIRED` are reported with the reason
//!   and which media of which post failed; a media Meta could not fetch is retried with new
//!   containers), checks `content_publishing_limit`, and runs `media_publish` as a durable step:
//!   when its answer is lost or is an error (a rate limit, a timeout), the container's status
//!   decides — `PUBLISHED` means it went out, so nothing is sent twice and a live post is never
//!   marked failed. The media id and permalink are recorded as strings.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::Platform;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, StepState, handler_fn};
use tidepost_providers::meta::{Container, ContainerState, ContainerStatus, MediaSource};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account};
use tidepost_store::instagram::{self as ig_store, InstagramMedia};
use tidepost_store::media::{self, Media};
use tidepost_store::posts::{self, Post, Target};
use tokio::io::AsyncReadExt;

use super::{host_of, media_url};
use crate::App;
use crate::media::rules;
use crate::pipeline::halt::{self, Halt, retry};
use crate::pipeline::media::{Item, ItemKind, extension, kind_of_extension};
use crate::pipeline::quota::DailyLimit;
use crate::pipeline::{Prepared, PublishError, TargetRef, advance, check_media_url};
use crate::tokens::{self, TokenError};

pub const PUBLISH_JOB: &str = "instagram.publish";
/// Runs of one publish job (each container poll is one).
pub const MAX_ATTEMPTS: u32 = 60;
/// Runs that try to have Meta fetch a media before the failure is final.
const FETCH_ATTEMPTS: i64 = 4;
/// New containers after a media fetch failure before giving up.
const MAX_GENERATIONS: i64 = 3;

const MIB: u64 = 1024 * 1024;

pub(crate) fn register(registry: Registry, app: &App) -> Registry {
    let publish_app = app.clone();
    registry.register_with(
        PUBLISH_JOB,
        RetryPolicy::new(
            MAX_ATTEMPTS,
            Duration::from_secs(2),
            Duration::from_secs(300),
        ),
        handler_fn(move |ctx, payload: TargetRef| {
            let app = publish_app.clone();
            async move { run(&app, &ctx, &payload).await }
        }),
    )
}

/// What is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = InstagramMediaType)]
pub enum MediaType {
    Image,
    Reel,
    Carousel,
    Story,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Reel => "reel",
            MediaType::Carousel => "carousel",
            MediaType::Story => "story",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "image" => Some(MediaType::Image),
            "reel" => Some(MediaType::Reel),
            "carousel" => Some(MediaType::Carousel),
            "story" => Some(MediaType::Story),
            _ => None,
        }
    }
}

/// An Instagram target's options, as a person or a client chooses them (`targets[].instagram`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramOptions {
    /// Inferred from the media when absent: one image → image, one video → reel, several →
    /// carousel.
    pub media_type: Option<MediaType>,
    pub cover_url: Option<String>,
    pub share_to_feed: Option<bool>,
}

/// An Instagram post as accepted (stored as the post's options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstagramPost {
    pub media_type: MediaType,
    #[serde(default)]
    pub caption: String,
    pub items: Vec<Item>,
    /// Reels: a JPEG shown as the cover in the Reels tab.
    #[serde(default)]
    pub cover_url: Option<String>,
    /// Reels: also show the reel in the feed.
    #[serde(default)]
    pub share_to_feed: Option<bool>,
}

/// A post to one Instagram account in the single-account shape (the API's `account_id` with an
/// `instagram` object); `compose` takes it as the one-target composite it is.
#[derive(Debug, Clone)]
pub struct NewInstagramPost {
    pub account_id: String,
    pub post: InstagramPost,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> PublishError {
    PublishError::Invalid {
        field,
        message: message.into(),
    }
}

/// The pixel size in a JPEG's SOF header, if the bytes are a JPEG.
pub fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return None;
    }
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = bytes[i + 1];
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xFF {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += 2 + len;
    }
    None
}

/// An item with what is known of it.
struct Resolved {
    kind: ItemKind,
    stored: Option<Media>,
    /// How the format reads in a message: the stored media's type (`image/jpeg`), or the
    /// URL's extension (`a .png file`).
    format: Option<String>,
    /// The container as `media::rules` names them (`jpeg`, `mp4`, `mov`, …), when anything
    /// says it (a URL without an extension says nothing).
    container: Option<String>,
    size: Option<u64>,
    dims: Option<(u32, u32)>,
    duration: Option<f64>,
}

async fn resolve(
    app: &App,
    workspace_id: &str,
    item: &Item,
    index: usize,
) -> Result<Resolved, PublishError> {
    let field = "items";
    match (&item.url, &item.media_id) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            field,
            format!("item {}: give either a url or a media_id", index + 1),
        )),
        (Some(url), None) => {
            check_media_url(field, url)?;
            let ext = extension(url);
            let kind = item
                .kind
                .or_else(|| ext.as_deref().and_then(kind_of_extension))
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!(
                            "item {}: say whether {url} is an image or a video (\"kind\")",
                            index + 1
                        ),
                    )
                })?;
            Ok(Resolved {
                kind,
                stored: None,
                container: ext.as_deref().map(rules::container_of_extension),
                format: ext.map(|e| format!("a .{e} file")),
                size: None,
                dims: item.width.zip(item.height),
                duration: item.duration_sec,
            })
        }
        (None, Some(id)) => {
            let stored = media::get(&app.db, workspace_id, id)
                .await?
                .ok_or(PublishError::NotFound("media"))?;
            let kind = if stored.kind == "video" {
                ItemKind::Video
            } else {
                ItemKind::Image
            };
            let mut head = vec![0u8; 64 * 1024];
            let mut read = 0;
            if let Ok(mut file) =
                tokio::fs::File::open(crate::pipeline::media::path_of(app, &stored)).await
            {
                while read < head.len() {
                    match file.read(&mut head[read..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
            }
            head.truncate(read);
            let dims = jpeg_size(&head);
            Ok(Resolved {
                kind,
                container: Some(stored_container(kind, dims, &stored.content_type)),
                format: Some(stored.content_type.clone()),
                size: u64::try_from(stored.size_bytes).ok(),
                dims: dims.or(item.width.zip(item.height)),
                duration: item.duration_sec,
                stored: Some(stored),
            })
        }
    }
}

/// The container of stored media: an image whose head is a JPEG is one, whatever type it was
/// uploaded as; otherwise what its type says.
fn stored_container(kind: ItemKind, jpeg_dims: Option<(u32, u32)>, content_type: &str) -> String {
    if kind == ItemKind::Image && jpeg_dims.is_some() {
        "jpeg".into()
    } else {
        rules::container_of_type(content_type)
    }
}

/// The media rules, checked before anything is sent, with what is known without probing the
/// file (its type or extension, size, JPEG size, the duration a client gave). The limits are
/// `media::rules`' (the library's and the composer's checks of probed files use the same);
/// the first broken rule is the error, and each error names it.
fn check_rules(post: &InstagramPost, items: &[Resolved]) -> Result<(), PublishError> {
    let chars = post.caption.chars().count();
    if chars > 2200 {
        return Err(invalid(
            "caption",
            format!("Instagram captions are at most 2200 characters (this one has {chars})"),
        ));
    }
    let hashtags = post.caption.matches('#').count();
    if hashtags > 30 {
        return Err(invalid(
            "caption",
            format!("Instagram allows at most 30 hashtags in a caption (this one has {hashtags})"),
        ));
    }
    let mentions = post.caption.matches('@').count();
    if mentions > 20 {
        return Err(invalid(
            "caption",
            format!("Instagram allows at most 20 @mentions in a caption (this one has {mentions})"),
        ));
    }
    let count = items.len();
    match post.media_type {
        MediaType::Carousel if !(2..=10).contains(&count) => {
            return Err(invalid(
                "items",
                format!("a carousel has 2 to 10 images or videos (this one has {count})"),
            ));
        }
        MediaType::Image | MediaType::Reel | MediaType::Story if count != 1 => {
            return Err(invalid(
                "items",
                format!(
                    "a {} has exactly one media (this one has {count}); use a carousel for several",
                    post.media_type.as_str()
                ),
            ));
        }
        MediaType::Carousel | MediaType::Image | MediaType::Reel | MediaType::Story => {}
    }
    if post.media_type == MediaType::Story && !post.caption.trim().is_empty() {
        return Err(invalid(
            "caption",
            "stories show no caption: leave it empty (put text on the image instead)",
        ));
    }
    if post.media_type != MediaType::Reel
        && (post.cover_url.is_some() || post.share_to_feed.is_some())
    {
        return Err(invalid(
            "cover_url",
            "a cover and share_to_feed are for reels only",
        ));
    }
    if let Some(cover) = &post.cover_url {
        check_media_url("cover_url", cover)?;
        if extension(cover).is_some_and(|e| e != "jpg" && e != "jpeg") {
            return Err(invalid("cover_url", "the reel cover must be a JPEG image"));
        }
    }
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let what = |rule: String| invalid("items", format!("item {n}: {rule}"));
        match (post.media_type, item.kind) {
            (MediaType::Image, ItemKind::Video) => {
                return Err(what(
                    "a video cannot be an image post: publish it as a reel".into(),
                ));
            }
            (MediaType::Reel, ItemKind::Image) => {
                return Err(what("a reel is a video (MP4 or MOV), not an image".into()));
            }
            _ => {}
        }
        match item.kind {
            ItemKind::Image => {
                if item
                    .container
                    .as_deref()
                    .is_some_and(|c| !rules::INSTAGRAM_IMAGE_FORMATS.contains(&c))
                {
                    return Err(what(format!(
                        "Instagram only takes JPEG images, not {}",
                        item.format.as_deref().unwrap_or("this format")
                    )));
                }
                if let Some(size) = item.size
                    && size > rules::INSTAGRAM_IMAGE_MAX_BYTES
                {
                    return Err(what(format!(
                        "images are at most 8 MiB (this one is {:.1} MiB)",
                        size as f64 / MIB as f64
                    )));
                }
                if post.media_type != MediaType::Story
                    && let Some((w, h)) = item.dims
                    && h > 0
                {
                    let ratio = f64::from(w) / f64::from(h);
                    let (lo, hi) = rules::INSTAGRAM_IMAGE_ASPECT;
                    if !(lo - 1e-3..=hi + 1e-3).contains(&ratio) {
                        return Err(what(format!(
                            "the aspect ratio must be between 4:5 ({lo}) and {hi}:1 (this image is {w}x{h}, {ratio:.2})"
                        )));
                    }
                }
            }
            ItemKind::Video => {
                if let (Some(container), Some(format)) = (&item.container, &item.format)
                    && !rules::INSTAGRAM_VIDEO_CONTAINERS.contains(&container.as_str())
                {
                    return Err(what(format!(
                        "Instagram takes MP4 or MOV videos, not {format}"
                    )));
                }
                let (max_bytes, (min_s, max_s), label) = match post.media_type {
                    MediaType::Reel => (
                        rules::INSTAGRAM_REEL_MAX_BYTES,
                        rules::INSTAGRAM_REEL_SECS,
                        format!(
                            "reels last {} seconds to {} minutes",
                            rules::INSTAGRAM_REEL_SECS.0,
                            rules::INSTAGRAM_REEL_SECS.1 / 60.0
                        ),
                    ),
                    MediaType::Story => (
                        rules::INSTAGRAM_STORY_VIDEO_MAX_BYTES,
                        rules::INSTAGRAM_STORY_SECS,
                        format!(
                            "story videos last {} to {} seconds",
                            rules::INSTAGRAM_STORY_SECS.0,
                            rules::INSTAGRAM_STORY_SECS.1
                        ),
                    ),
                    // An image post with a video was refused above.
                    MediaType::Carousel | MediaType::Image => (
                        // The carousel's size limit is the reel's (media::rules says why).
                        rules::INSTAGRAM_REEL_MAX_BYTES,
                        rules::INSTAGRAM_CAROUSEL_VIDEO_SECS,
                        format!(
                            "carousel videos last {} to {} seconds",
                            rules::INSTAGRAM_CAROUSEL_VIDEO_SECS.0,
                            rules::INSTAGRAM_CAROUSEL_VIDEO_SECS.1
                        ),
                    ),
                };
                if let Some(size) = item.size
                    && size > max_bytes
                {
                    return Err(what(format!(
                        "this video is {:.0} MiB, over the {} MiB Instagram accepts here",
                        size as f64 / MIB as f64,
                        max_bytes / MIB
                    )));
                }
                if let Some(d) = item.duration
                    && !(min_s..=max_s).contains(&d)
                {
                    return Err(what(format!("{label} (this one lasts {d:.1} s)")));
                }
            }
        }
    }
    Ok(())
}

/// The account's publishing limit as Meta reports it.
pub async fn publishing_limit(
    app: &App,
    account: &Account,
) -> Result<tidepost_providers::meta::PublishingLimit, TokenError> {
    let client = app.providers.meta()?;
    let host = host_of(account);
    let ig = account.provider_user_id.as_str();
    let limit = tokens::with_token(app, account, |token| async move {
        client.publishing_limit(host, &token, ig).await
    })
    .await?;
    remember_limit(app, account, &limit).await;
    Ok(limit)
}

/// Keeps the latest reading in the account's details, so pages can show the limit used
/// without calling Meta. Best effort: a failure here only makes the page's figure older.
async fn remember_limit(
    app: &App,
    account: &Account,
    limit: &tidepost_providers::meta::PublishingLimit,
) {
    let Ok(Some(current)) = accounts::get(&app.db, &account.workspace_id, &account.id).await else {
        return;
    };
    let mut details: serde_json::Value =
        serde_json::from_str(&current.details).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = details.as_object_mut() {
        map.insert(
            PUBLISHING_LIMIT_DETAIL.into(),
            serde_json::json!({
                "used": limit.quota_usage,
                "total": limit.quota_total,
                "checked_at": tidepost_domain::now_ms(),
            }),
        );
    }
    if let Err(err) = accounts::set_details(
        &app.db,
        &account.workspace_id,
        &account.id,
        &details.to_string(),
    )
    .await
    {
        tracing::warn!(account_id = %account.id, error = %err, "could not keep the publishing limit reading");
    }
}

/// The key under which an Instagram account's details keep the last publishing-limit reading:
/// `{"used", "total", "checked_at"}`.
pub const PUBLISHING_LIMIT_DETAIL: &str = "publishing_limit";

/// The limit as a refusal when no post is left in the window.
pub(crate) fn limit_refusal(
    limit: &tidepost_providers::meta::PublishingLimit,
    now: i64,
) -> Option<(String, i64)> {
    if limit.remaining() != Some(0) {
        return None;
    }
    let window_ms = i64::try_from(limit.window_secs.unwrap_or(86_400)).unwrap_or(86_400) * 1000;
    let frees = now + window_ms;
    Some((
        format!(
            "Instagram's publishing limit is reached: {} of {} posts in the last 24 hours. A slot frees as the oldest of them leaves the rolling window, by {} at the latest.",
            limit.quota_usage,
            limit.quota_total.unwrap_or(limit.quota_usage),
            tidepost_domain::time::rfc3339(frees)
        ),
        frees,
    ))
}

/// Meta's own count of the account's posts (from other apps too) must allow one more sent
/// now.
pub async fn admit_now(app: &App, account: &Account, now: i64) -> Result<(), PublishError> {
    let limit = publishing_limit(app, account).await?;
    match limit_refusal(&limit, now) {
        Some((message, frees)) => Err(PublishError::Quota {
            message,
            next_slot_ms: frees,
        }),
        None => Ok(()),
    }
}

/// The media rules an Instagram target's media must meet: those of its media type (each item
/// of a carousel).
pub fn media_target(prepared: &Prepared) -> Option<rules::Target> {
    Some(match MediaType::parse(&prepared.mode)? {
        MediaType::Image => rules::Target::InstagramImage,
        MediaType::Reel => rules::Target::InstagramReel,
        MediaType::Story => rules::Target::InstagramStory,
        MediaType::Carousel => rules::Target::InstagramCarouselItem,
    })
}

/// Checks an Instagram target without storing anything or calling Meta: each item resolved
/// (stored media read for its real format and JPEG size), then the media rules. The
/// publishing limit is the caller's.
pub async fn prepare(
    app: &App,
    workspace_id: &str,
    account: Account,
    post: &InstagramPost,
) -> Result<Prepared, PublishError> {
    let mut resolved = Vec::with_capacity(post.items.len());
    for (i, item) in post.items.iter().enumerate() {
        resolved.push(resolve(app, workspace_id, item, i).await?);
    }
    check_rules(post, &resolved)?;
    let urls: Vec<&str> = post.items.iter().filter_map(|i| i.url.as_deref()).collect();
    crate::pipeline::guard_media_urls(app, "items", &urls).await?;
    if let Some(cover) = &post.cover_url {
        crate::pipeline::guard_media_urls(app, "cover_url", &[cover]).await?;
    }
    let mut options = post.clone();
    for (item, r) in options.items.iter_mut().zip(&resolved) {
        item.kind = Some(r.kind);
        if item.width.is_none() {
            item.width = r.dims.map(|d| d.0);
            item.height = r.dims.map(|d| d.1);
        }
    }
    let first_stored = resolved.iter().find_map(|r| r.stored.as_ref());
    let bytes_total: i64 = resolved
        .iter()
        .filter_map(|r| r.stored.as_ref().map(|m| m.size_bytes))
        .sum();
    Ok(Prepared {
        account,
        kind: options.media_type.as_str().into(),
        mode: options.media_type.as_str().into(),
        source: if first_stored.is_some() {
            "upload"
        } else {
            "url"
        }
        .into(),
        bytes_total,
        media_id: first_stored.map(|m| m.id.clone()),
        media_url: options.items.iter().find_map(|i| i.url.clone()),
        caption: options.caption.clone(),
        options: serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
    })
}

/// The job that publishes `target` (also used when a failed target is retried).
pub fn publish_job(target: &Target, run_at: i64) -> NewJob {
    NewJob::new(
        PUBLISH_JOB,
        &TargetRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
            due_at: target.scheduled_at,
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{PUBLISH_JOB}:{}:{}",
        target.id, target.init_generation
    ))
    .run_at(run_at)
}

// ---- the job ----

fn error(code: &str, message: impl Into<String>, kind: ErrorKind) -> ProviderError {
    halt::error_on(Platform::Instagram, code, message, kind)
}

fn halt_for(err: TokenError) -> Halt {
    halt::halt_for(Platform::Instagram, err, |message| {
        format!("The Instagram account must be connected again: {message}")
    })
}

/// Polling backoff: 2 s, 4 s, 8 s … up to a minute (Meta suggests about once a minute).
fn backoff(attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 6)).unwrap_or(6);
    Duration::from_secs((1u64 << exp).min(60))
}

pub async fn run(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), JobError> {
    let outcome = publish(app, ctx, r).await;
    halt::settle(app, ctx, r, Platform::Instagram, MAX_ATTEMPTS, outcome).await
}

/// Everything one run needs.
struct Run<'a> {
    app: &'a App,
    ctx: &'a JobContext,
    account: Account,
    post: Post,
    options: InstagramPost,
    client: tidepost_providers::meta::MetaClient,
}

impl Run<'_> {
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, TokenError>
    where
        F: Fn(secrecy::SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        tokens::with_token(self.app, &self.account, f).await
    }

    fn host(&self) -> tidepost_providers::meta::GraphHost {
        host_of(&self.account)
    }

    fn ig(&self) -> &str {
        &self.account.provider_user_id
    }

    /// The URL Meta fetches item `i` from.
    async fn source(&self, item: &Item) -> Result<(ItemKind, String), Halt> {
        let kind = item.kind.unwrap_or(ItemKind::Image);
        if let Some(url) = &item.url {
            return Ok((kind, url.clone()));
        }
        let id = item.media_id.as_deref().unwrap_or_default();
        let stored = media::get(&self.app.db, &self.post.workspace_id, id)
            .await?
            .ok_or_else(|| {
                Halt::Fail(error(
                    "media_missing",
                    format!("A media file of post {} is gone.", self.post.id),
                    ErrorKind::Permanent,
                ))
            })?;
        // Probed again before Meta is sent to fetch it: a file that became unreadable since the
        // post was accepted fails the target with the reason.
        crate::pipeline::media::check_before_send(self.app, &stored)
            .await
            .map_err(|v| Halt::Fail(error(v.rule, v.message, ErrorKind::Permanent)))?;
        Ok((kind, media_url::signed_url(self.app, &stored)))
    }

    /// Waits when Meta last reported this account's (or the app's) call budget nearly spent:
    /// continuing to call would extend the block.
    fn spread_calls(&self) -> Option<Halt> {
        let (percent, wait) = self.app.providers.meta_usage().wait_for(self.ig())?;
        Some(halt::retry(
            format!(
                "Meta reports {percent}% of the call budget used; waiting before the next call"
            ),
            Some(wait),
            None,
        ))
    }

    async fn create(&self, container: &Container) -> Result<String, Halt> {
        if let Some(wait) = self.spread_calls() {
            return Err(wait);
        }
        let (client, host, ig) = (&self.client, self.host(), self.ig());
        self.call(|token| async move { client.create_container(host, &token, ig, container).await })
            .await
            .map_err(halt_for)
    }

    async fn status(&self, id: &str) -> Result<ContainerStatus, Halt> {
        let (client, host) = (&self.client, self.host());
        self.call(|token| async move { client.container_status(host, &token, id).await })
            .await
            .map_err(halt_for)
    }

    /// Names the media and the post in a failure about the media.
    fn describe(&self, halt: Halt, item: Option<usize>) -> Halt {
        let which = match (item, self.options.items.len()) {
            (Some(i), _) => format!("media {} of {}", i + 1, self.options.items.len()),
            (None, 1) => "the media".to_string(),
            (None, _) => "the carousel".to_string(),
        };
        let name = |e: &mut ProviderError| {
            let fetch = matches!(e.subcode, Some(2207003 | 2207052)) || e.code == "9004";
            e.message = if fetch {
                format!(
                    "Meta could not fetch {which} of post {} from its URL (it downloads the file itself; check the URL is public and reachable): {}",
                    self.post.id, e.message
                )
            } else {
                format!("{which} of post {}: {}", self.post.id, e.message)
            };
        };
        match halt {
            Halt::Fail(mut e) => {
                name(&mut e);
                Halt::Fail(e)
            }
            Halt::Retry {
                message,
                after,
                error: Some(mut e),
            } => {
                name(&mut e);
                // Media Meta cannot fetch is tried a few times, then reported.
                let fetch = matches!(e.subcode, Some(2207003 | 2207052)) || e.code == "9004";
                if fetch && self.ctx.attempt() >= FETCH_ATTEMPTS {
                    e.message = format!("{} (tried {} times)", e.message, self.ctx.attempt());
                    return Halt::Fail(e);
                }
                Halt::Retry {
                    message: format!("{message} ({which})"),
                    after,
                    error: Some(e),
                }
            }
            other @ (Halt::Retry { .. } | Halt::Job(_) | Halt::Stop) => other,
        }
    }

    /// A container in `ERROR` or `EXPIRED`: new containers when worth it, else fail.
    async fn container_failed(
        &self,
        target: &Target,
        status: &ContainerStatus,
        item: Option<usize>,
    ) -> Halt {
        let Some(err) = status.failure() else {
            return retry("unexpected container status", None, None);
        };
        let expired = status.status_code == ContainerState::Expired;
        let retryable =
            err.kind == ErrorKind::Retryable && target.init_generation + 1 < MAX_GENERATIONS;
        let halt = if retryable {
            retry(
                err.message.clone(),
                Some(Duration::from_secs(30)),
                Some(err),
            )
        } else {
            let mut err = err;
            if expired {
                err.message = format!(
                    "{} Use Retry to publish it with new containers.",
                    err.message
                );
            }
            Halt::Fail(err)
        };
        let halt = self.describe(halt, item);
        if let Halt::Retry { error: Some(e), .. } = &halt {
            // Show the reason while new containers are made.
            let now = self.ctx.clock().now_ms();
            let _ = posts::set_error(
                &self.app.db,
                &target.workspace_id,
                &target.id,
                Some(&e.code),
                Some(&e.message),
                true,
                now,
            )
            .await;
            let _ = posts::restart_publish(
                &self.app.db,
                &target.workspace_id,
                &target.id,
                target.init_generation,
                now,
            )
            .await;
        }
        halt
    }
}

async fn publish(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), Halt> {
    let target = halt::due(app, r).await?;
    let account = accounts::get(&app.db, &r.workspace_id, &target.account_id)
        .await?
        .ok_or_else(|| {
            Halt::Fail(error(
                "account_disconnected",
                "The Instagram account was disconnected before the post was published.",
                ErrorKind::Permanent,
            ))
        })?;
    let post = posts::get(&app.db, &r.workspace_id, &target.post_id)
        .await?
        .ok_or(Halt::Stop)?;
    let options: InstagramPost = serde_json::from_str(target.options_or(&post)).map_err(|e| {
        Halt::Fail(error(
            "invalid_options",
            format!("The stored post cannot be read: {e}"),
            ErrorKind::Permanent,
        ))
    })?;
    let client = app
        .providers
        .meta()
        .map_err(|e| retry(e.to_string(), Some(Duration::from_secs(60)), None))?
        .clone();
    let mut run = Run {
        app,
        ctx,
        account,
        post,
        options,
        client,
    };
    let generation = target.init_generation;

    // 1. Containers (carousel children first).
    let container_id = match &target.publish_id {
        Some(id) => id.clone(),
        None => {
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Uploading,
                None,
            )
            .await?;
            let id = create_containers(&run, &target).await?;
            let stored = posts::set_publish(
                &app.db,
                &r.workspace_id,
                &r.target_id,
                generation,
                &id,
                None,
                None,
                ctx.clock().now_ms(),
            )
            .await?;
            if !stored {
                // A retry started another generation while this run was stalled: its
                // container is left unused (it expires at Meta unpublished).
                return Ok(());
            }
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Processing,
                None,
            )
            .await?;
            id
        }
    };

    // 2. Wait until the container is FINISHED (or already PUBLISHED).
    let status = run.status(&container_id).await?;
    let now = ctx.clock().now_ms();
    posts::set_provider_status(
        &app.db,
        &r.workspace_id,
        &r.target_id,
        container_state(&status.status_code),
        None,
        now,
    )
    .await?;
    let published_already = match &status.status_code {
        ContainerState::Finished => false,
        ContainerState::Published => true,
        ContainerState::InProgress | ContainerState::Unknown(_) => {
            return Err(retry(
                "Instagram is still processing the media",
                Some(backoff(ctx.attempt())),
                None,
            ));
        }
        ContainerState::Error | ContainerState::Expired => {
            return Err(run.container_failed(&target, &status, None).await);
        }
    };

    // 3. media_publish as a durable step: its answer decides only together with the
    //    container's status. What may wait or be refused (a token refresh, the publishing
    //    limit, itself a Graph call) runs before the intent when none is recorded yet, so the
    //    intent is written right before media_publish.
    let step_name = format!("publish-{generation}");
    let mut limit_checked = false;
    if !published_already && ctx.peek_step(&step_name).await?.is_absent() {
        run.account = tokens::ready(app, &run.account).await.map_err(halt_for)?;
        if let Some(message) = limit_reached(&run, now).await? {
            posts::restart_publish(&app.db, &r.workspace_id, &r.target_id, generation, now).await?;
            return Err(Halt::Fail(error(
                "publishing_limit",
                message,
                ErrorKind::RateLimited,
            )));
        }
        limit_checked = true;
    }
    let step = ctx.step(&step_name).await?;
    let media_id: Option<String> = match step {
        StepState::Done(outcome) => outcome
            .get("media_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        StepState::OutcomeUnknown(intent) | StepState::New(intent) if published_already => {
            intent.record(&json!({"reconciled": true})).await?;
            tracing::info!(target_id = %target.id, "container already PUBLISHED: the earlier media_publish went through");
            None
        }
        StepState::OutcomeUnknown(intent) | StepState::New(intent) => {
            // The container is FINISHED (not published): publishing now cannot post twice.
            let refused = if limit_checked {
                None
            } else {
                limit_reached(&run, now).await?
            };
            if let Some(message) = refused {
                intent
                    .record(&json!({"not_sent": "publishing limit"}))
                    .await?;
                posts::restart_publish(&app.db, &r.workspace_id, &r.target_id, generation, now)
                    .await?;
                return Err(Halt::Fail(error(
                    "publishing_limit",
                    message,
                    ErrorKind::RateLimited,
                )));
            }
            let (client, host, ig) = (&run.client, run.host(), run.ig());
            let id = container_id.as_str();
            match run
                .call(|token| async move { client.publish(host, &token, ig, id).await })
                .await
            {
                Ok(media_id) => {
                    intent.record(&json!({"media_id": media_id})).await?;
                    Some(media_id)
                }
                Err(err) => {
                    // Whatever the error, the container's status says whether it went out.
                    if let Ok(after) = run.status(&container_id).await
                        && after.status_code == ContainerState::Published
                    {
                        intent.record(&json!({"reconciled": true})).await?;
                        tracing::info!(target_id = %target.id, "media_publish answered with an error but the container is PUBLISHED");
                        None
                    } else {
                        return Err(match err {
                            TokenError::Provider(e) if e.subcode == Some(2207042) => {
                                intent
                                    .record(&json!({"not_sent": "publishing limit"}))
                                    .await?;
                                posts::restart_publish(
                                    &app.db,
                                    &r.workspace_id,
                                    &r.target_id,
                                    generation,
                                    now,
                                )
                                .await?;
                                Halt::Fail(e)
                            }
                            TokenError::Provider(e)
                                if matches!(e.kind, ErrorKind::Permanent | ErrorKind::Reauth) =>
                            {
                                intent.record(&json!({"failed": e.message})).await?;
                                Halt::Fail(e)
                            }
                            // Rate limits, timeouts, lost answers: the intent stays open and the
                            // next run checks the container before anything is sent again.
                            other @ (TokenError::Provider(_)
                            | TokenError::NeedsReauth(_)
                            | TokenError::RefreshBusy
                            | TokenError::NotConfigured(_)
                            | TokenError::Vault(_)
                            | TokenError::Store(_)) => halt_for(other),
                        });
                    }
                }
            }
        }
    };

    // 4. The media id and permalink.
    let permalink = match &media_id {
        Some(id) => {
            let (client, host) = (&run.client, run.host());
            let id = id.as_str();
            run.call(|token| async move { client.media(host, &token, id).await })
                .await
                .ok()
                .and_then(|m| m.permalink)
        }
        None => None,
    };
    let ids: Vec<String> = media_id.iter().cloned().collect();
    posts::set_provider_status(
        &app.db,
        &r.workspace_id,
        &r.target_id,
        "PUBLISHED",
        Some(&ids),
        ctx.clock().now_ms(),
    )
    .await?;
    ig_store::upsert(
        &app.db,
        &InstagramMedia {
            target_id: target.id.clone(),
            workspace_id: target.workspace_id.clone(),
            media_id: media_id.clone(),
            permalink,
            media_type: run.options.media_type.as_str().into(),
            created_at: ctx.clock().now_ms(),
        },
    )
    .await?;
    posts::clear_error(&app.db, &r.workspace_id, &r.target_id, ctx.clock().now_ms()).await?;
    advance(
        app,
        &r.workspace_id,
        &r.target_id,
        TargetState::Published,
        None,
    )
    .await?;
    tracing::info!(target_id = %target.id, media_id = ?media_id, "Instagram post published");
    Ok(())
}

/// The refusal message when the account's publishing limit leaves no post now.
async fn limit_reached(run: &Run<'_>, now: i64) -> Result<Option<String>, Halt> {
    let limit = publishing_limit(run.app, &run.account)
        .await
        .map_err(halt_for)?;
    Ok(limit_refusal(&limit, now).map(|(message, _)| message))
}

fn container_state(state: &ContainerState) -> &str {
    match state {
        ContainerState::InProgress => "IN_PROGRESS",
        ContainerState::Finished => "FINISHED",
        ContainerState::Error => "ERROR",
        ContainerState::Expired => "EXPIRED",
        ContainerState::Published => "PUBLISHED",
        ContainerState::Unknown(s) => s.as_str(),
    }
}

/// Creates the container(s) and returns the one to publish.
async fn create_containers(run: &Run<'_>, target: &Target) -> Result<String, Halt> {
    let o = &run.options;
    let caption = (!o.caption.is_empty()).then(|| o.caption.clone());
    let first = o.items.first().ok_or(Halt::Stop)?;
    let single = o.media_type != MediaType::Carousel;
    let container = match o.media_type {
        MediaType::Image => Container::Image {
            image_url: run.source(first).await?.1,
            caption,
        },
        MediaType::Reel => Container::Reel {
            video_url: run.source(first).await?.1,
            caption,
            cover_url: o.cover_url.clone(),
            share_to_feed: o.share_to_feed,
        },
        MediaType::Story => {
            let (kind, url) = run.source(first).await?;
            Container::Story(match kind {
                ItemKind::Image => MediaSource::Image(url),
                ItemKind::Video => MediaSource::Video(url),
            })
        }
        MediaType::Carousel => {
            let children = carousel_children(run, target).await?;
            Container::Carousel { children, caption }
        }
    };
    run.create(&container)
        .await
        .map_err(|h| run.describe(h, if single { Some(0) } else { None }))
}

/// Carousel children: created once per generation (a durable step), then awaited until each
/// is FINISHED.
async fn carousel_children(run: &Run<'_>, target: &Target) -> Result<Vec<String>, Halt> {
    let name = format!("children-{}", target.init_generation);
    let children: Vec<String> = match run.ctx.step(&name).await? {
        StepState::Done(outcome) => {
            serde_json::from_value(outcome["children"].clone()).unwrap_or_default()
        }
        // Creating containers twice is harmless (unpublished ones expire).
        StepState::New(intent) | StepState::OutcomeUnknown(intent) => {
            let mut ids = Vec::with_capacity(run.options.items.len());
            for (i, item) in run.options.items.iter().enumerate() {
                let (kind, url) = run.source(item).await?;
                let source = match kind {
                    ItemKind::Image => MediaSource::Image(url),
                    ItemKind::Video => MediaSource::Video(url),
                };
                let id = run
                    .create(&Container::CarouselItem(source))
                    .await
                    .map_err(|h| run.describe(h, Some(i)))?;
                ids.push(id);
            }
            intent.record(&json!({"children": ids})).await?;
            ids
        }
    };
    for (i, child) in children.iter().enumerate() {
        let status = run.status(child).await?;
        match status.status_code {
            ContainerState::Finished => {}
            ContainerState::Error | ContainerState::Expired => {
                return Err(run.container_failed(target, &status, Some(i)).await);
            }
            ContainerState::InProgress | ContainerState::Published | ContainerState::Unknown(_) => {
                return Err(retry(
                    format!(
                        "Instagram is still processing media {} of the carousel",
                        i + 1
                    ),
                    Some(backoff(run.ctx.attempt())),
                    None,
                ));
            }
        }
    }
    Ok(children)
}

/// Checks one target of a composite post: the media type (inferred from the media when not
/// given: one video is a reel, one image an image, several a carousel), then [`prepare`].
pub async fn prepare_target(
    app: &App,
    workspace_id: &str,
    account: Account,
    input: &crate::pipeline::spec::TargetInput<'_>,
) -> Result<Prepared, PublishError> {
    let o = input.spec.instagram.clone().unwrap_or_default();
    let media_type = o.media_type.unwrap_or(match input.kinds {
        [Some(ItemKind::Video)] => MediaType::Reel,
        [_] => MediaType::Image,
        _ => MediaType::Carousel,
    });
    let post = InstagramPost {
        media_type,
        caption: input.caption.to_string(),
        items: input.media.to_vec(),
        cover_url: o.cover_url.filter(|c| !c.is_empty()),
        share_to_feed: o.share_to_feed,
    };
    prepare(app, workspace_id, account, &post).await
}

/// A single-account Instagram post stored before posts were composites, read back as its
/// caption, media and target (to change it like any other post); `None` when unreadable.
pub fn single_as_spec(
    post: &Post,
    target: &Target,
) -> Option<(String, Vec<Item>, crate::pipeline::spec::TargetSpec)> {
    let ig: InstagramPost = serde_json::from_str(&post.options).ok()?;
    let spec = crate::pipeline::spec::TargetSpec {
        account_id: target.account_id.clone(),
        instagram: Some(InstagramOptions {
            media_type: Some(ig.media_type),
            cover_url: ig.cover_url,
            share_to_feed: ig.share_to_feed,
        }),
        ..Default::default()
    };
    Some((ig.caption, ig.items, spec))
}

/// Instagram's publishing limit when Meta cannot be asked: the lower of the two figures Meta
/// documents (50 in the endpoint's reference, 100 in the guide).
pub const DEFAULT_LIMIT: usize = 50;

/// The daily limit an Instagram target counts against: Meta's `content_publishing_limit`
/// (asked now; the last reading or [`DEFAULT_LIMIT`] when Meta cannot be asked), every post of
/// the account counted.
pub async fn daily_limit(app: &App, prepared: &Prepared) -> DailyLimit {
    let account = &prepared.account;
    let name = &account.display_name;
    let total = match publishing_limit(app, account).await {
        Ok(limit) => limit.quota_total.map(|t| t as usize),
        Err(err) => {
            tracing::info!(account_id = %account.id, error = %err, "publishing limit unknown; using the last reading");
            serde_json::from_str::<serde_json::Value>(&account.details)
                .ok()
                .and_then(|d| d[PUBLISHING_LIMIT_DETAIL]["total"].as_u64())
                .map(|t| t as usize)
        }
    }
    .unwrap_or(DEFAULT_LIMIT);
    DailyLimit {
        modes: None,
        cap: total,
        message: format!(
            "{name} would exceed Instagram's publishing limit of {total} posts in 24 hours"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_sizes() {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0];
        bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x05, 0x46, 0x04, 0x38]);
        bytes.extend_from_slice(&[0; 12]);
        assert_eq!(jpeg_size(&bytes), Some((1080, 1350)));
        assert_eq!(jpeg_size(b"\x89PNG...."), None);
    }

    /// An item given by URL, as `resolve` reads it.
    fn by_url(ext: Option<&str>, kind: ItemKind) -> Resolved {
        Resolved {
            kind,
            stored: None,
            format: ext.map(|e| format!("a .{e} file")),
            container: ext.map(rules::container_of_extension),
            size: None,
            dims: None,
            duration: None,
        }
    }

    /// A stored item, as `resolve` reads it.
    fn stored(content_type: &str, kind: ItemKind, jpeg_dims: Option<(u32, u32)>) -> Resolved {
        Resolved {
            kind,
            stored: None,
            format: Some(content_type.into()),
            container: Some(stored_container(kind, jpeg_dims, content_type)),
            size: None,
            dims: jpeg_dims,
            duration: None,
        }
    }

    fn outcome(media_type: MediaType, items: Vec<Resolved>) -> Result<(), String> {
        let post = InstagramPost {
            media_type,
            caption: String::new(),
            items: Vec::new(),
            cover_url: None,
            share_to_feed: None,
        };
        check_rules(&post, &items).map_err(|e| e.to_string())
    }

    /// The rules read their limits from `media::rules` and decide as they did with their own
    /// copy: the same items pass, and the refusals say the same words.
    #[test]
    fn rules_from_media_rules() {
        use ItemKind::{Image, Video};
        let image = |r| outcome(MediaType::Image, vec![r]);
        // Formats: a URL without an extension is given the benefit of the doubt; a JPEG head
        // makes any stored image a JPEG.
        assert_eq!(image(by_url(None, Image)), Ok(()));
        assert_eq!(image(by_url(Some("jpg"), Image)), Ok(()));
        assert_eq!(image(by_url(Some("jpeg"), Image)), Ok(()));
        assert_eq!(
            image(by_url(Some("png"), Image)).unwrap_err(),
            "items: item 1: Instagram only takes JPEG images, not a .png file"
        );
        assert!(image(by_url(Some("heic"), Image)).is_err());
        assert_eq!(image(stored("image/jpeg", Image, None)), Ok(()));
        assert_eq!(
            image(stored("image/png", Image, Some((1080, 1080)))),
            Ok(())
        );
        assert_eq!(
            image(stored("image/png", Image, None)).unwrap_err(),
            "items: item 1: Instagram only takes JPEG images, not image/png"
        );
        let reel = |r| outcome(MediaType::Reel, vec![r]);
        for ok in ["mp4", "mov", "m4v"] {
            assert_eq!(reel(by_url(Some(ok), Video)), Ok(()), "{ok}");
        }
        assert_eq!(reel(by_url(None, Video)), Ok(()));
        assert_eq!(reel(stored("video/mp4", Video, None)), Ok(()));
        assert_eq!(reel(stored("video/quicktime", Video, None)), Ok(()));
        assert_eq!(
            reel(by_url(Some("webm"), Video)).unwrap_err(),
            "items: item 1: Instagram takes MP4 or MOV videos, not a .webm file"
        );
        assert!(reel(stored("video/x-m4v", Video, None)).is_err());
        assert!(reel(stored("video/webm", Video, None)).is_err());

        // Sizes and the aspect ratio, at their edges.
        let sized = |size: u64| Resolved {
            size: Some(size),
            ..by_url(Some("jpg"), Image)
        };
        assert_eq!(image(sized(8 * MIB)), Ok(()));
        assert_eq!(
            image(sized(9 * MIB)).unwrap_err(),
            "items: item 1: images are at most 8 MiB (this one is 9.0 MiB)"
        );
        let shaped = |w: u32, h: u32| Resolved {
            dims: Some((w, h)),
            ..by_url(Some("jpg"), Image)
        };
        assert_eq!(image(shaped(1080, 1350)), Ok(()));
        assert_eq!(image(shaped(1910, 1000)), Ok(()));
        assert_eq!(
            image(shaped(1000, 2000)).unwrap_err(),
            "items: item 1: the aspect ratio must be between 4:5 (0.8) and 1.91:1 (this image is 1000x2000, 0.50)"
        );
        // Stories are full screen: no aspect ratio rule.
        assert_eq!(outcome(MediaType::Story, vec![shaped(1000, 2000)]), Ok(()));

        // Durations and video sizes per use.
        let lasting = |secs: f64| Resolved {
            duration: Some(secs),
            ..by_url(Some("mp4"), Video)
        };
        assert_eq!(reel(lasting(900.0)), Ok(()));
        assert_eq!(
            reel(lasting(900.5)).unwrap_err(),
            "items: item 1: reels last 3 seconds to 15 minutes (this one lasts 900.5 s)"
        );
        assert_eq!(
            outcome(MediaType::Story, vec![lasting(61.0)]).unwrap_err(),
            "items: item 1: story videos last 3 to 60 seconds (this one lasts 61.0 s)"
        );
        assert_eq!(
            outcome(MediaType::Carousel, vec![lasting(2.0), lasting(10.0)]).unwrap_err(),
            "items: item 1: carousel videos last 3 to 60 seconds (this one lasts 2.0 s)"
        );
        let big = |size: u64| Resolved {
            size: Some(size),
            ..by_url(Some("mp4"), Video)
        };
        assert_eq!(reel(big(300 * MIB)), Ok(()));
        assert_eq!(
            reel(big(301 * MIB)).unwrap_err(),
            "items: item 1: this video is 301 MiB, over the 300 MiB Instagram accepts here"
        );
        assert_eq!(
            outcome(MediaType::Story, vec![big(101 * MIB)]).unwrap_err(),
            "items: item 1: this video is 101 MiB, over the 100 MiB Instagram accepts here"
        );
        assert_eq!(
            outcome(MediaType::Carousel, vec![big(300 * MIB), big(MIB)]),
            Ok(())
        );
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
