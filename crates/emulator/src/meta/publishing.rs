//! Content publishing: containers (`POST /{ig-user-id}/media`), their status machine
//! (`IN_PROGRESS → FINISHED | ERROR`, `FINISHED → PUBLISHED`, unpublished → `EXPIRED` after
//! 24 h of emulated time), `media_publish`, `content_publishing_limit`, published media, and
//! resumable uploads through rupload.
//!
//! `image_url`, `video_url` and `cover_url` are really fetched with the emulator's HTTP client,
//! streamed and hashed (SHA-256) chunk by chunk: images while the create call waits (a failure
//! is Meta's 9004/2207052), videos in the background (a failure turns the container `ERROR`).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::call::{Call, access_token, apply_latency};
use super::errors::{self, GraphError, GraphResult, Host};
use super::fields::{self, FieldSpec, paginate};
use super::state::{Login, Meta, Store, Token, require_scope};
use super::time::iso;

const DAY_MS: i64 = 86_400_000;
const MAX_IMAGE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_VIDEO_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MediaType {
    Image,
    Video,
    Reels,
    Stories,
    Carousel,
}

/// What became of one fetched (or uploaded) file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Fetch {
    Pending,
    Done {
        bytes: u64,
        sha256: String,
        content_type: Option<String>,
        /// A video's length from its MP4 `mvhd` box, when that box is near the start.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// `image`, `video` or `cover`.
    pub role: &'static str,
    /// The URL Meta fetched, or `rupload` for resumable uploads.
    pub url: String,
    #[serde(flatten)]
    pub fetch: Fetch,
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub owner: String,
    pub login: Login,
    pub media_type: MediaType,
    pub is_carousel_item: bool,
    pub caption: Option<String>,
    pub children: Vec<String>,
    pub sources: Vec<Source>,
    pub share_to_feed: Option<bool>,
    /// Other parameters as sent (location_id, user_tags, collaborators, thumb_offset, …).
    pub extras: BTreeMap<String, String>,
    pub created_ms: i64,
    /// When processing ends (emulated clock); `i64::MAX` until the bytes arrived.
    pub ready_ms: i64,
    /// Set when processing is to fail (the `fail_processing` fault).
    pub failure: Option<String>,
    pub resumable: bool,
    pub media_id: Option<String>,
}

impl Container {
    /// `(status_code, status)` at `now_ms`.
    pub fn status(&self, now_ms: i64) -> (&'static str, String) {
        if self.media_id.is_some() {
            return ("PUBLISHED", "Published".into());
        }
        if let Some(error) = self.sources.iter().find_map(|s| match &s.fetch {
            Fetch::Failed { error } => Some(error.clone()),
            _ => None,
        }) {
            return ("ERROR", error);
        }
        if let Some(error) = self.thumb_offset_error() {
            return ("ERROR", error);
        }
        let expired = now_ms >= self.created_ms + DAY_MS;
        let waiting = self
            .sources
            .iter()
            .any(|s| matches!(s.fetch, Fetch::Pending))
            || now_ms < self.ready_ms;
        match (&self.failure, waiting, expired) {
            (_, _, true) => (
                "EXPIRED",
                "Expired: the media container was not published within 24 hours.".into(),
            ),
            (_, true, false) => (
                "IN_PROGRESS",
                "In Progress: Media is still being processed.".into(),
            ),
            (Some(failure), false, false) => ("ERROR", failure.clone()),
            (None, false, false) => (
                "FINISHED",
                "Finished: Media has been uploaded and it is ready to be published.".into(),
            ),
        }
    }

    /// Meta's 2207057 when `thumb_offset` is not before the video's end (known once fetched).
    fn thumb_offset_error(&self) -> Option<String> {
        let offset: u64 = self.extras.get("thumb_offset")?.parse().ok()?;
        let length = self.sources.iter().find_map(|s| match &s.fetch {
            Fetch::Done {
                duration_ms: Some(d),
                ..
            } if s.role == "video" => Some(*d),
            _ => None,
        })?;
        (offset >= length).then(|| {
            format!(
                "Error: 2207057 The thumb_offset {offset} is out of range: it must be at least 0 and less than the video's length ({length} ms)."
            )
        })
    }

    fn is_video(&self) -> bool {
        self.sources.iter().any(|s| s.role == "video")
    }

    fn source_url(&self, role: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|s| s.role == role)
            .map(|s| s.url.as_str())
    }

    /// The container as `GET /_emulator/meta/media` shows it.
    pub fn admin_json(&self, now_ms: i64) -> Value {
        let (status_code, status) = self.status(now_ms);
        let main = self.sources.iter().find(|s| s.role != "cover");
        let (bytes, sha256) = match main.map(|s| &s.fetch) {
            Some(Fetch::Done { bytes, sha256, .. }) => (json!(bytes), json!(sha256)),
            _ => (Value::Null, Value::Null),
        };
        json!({
            "id": self.id,
            "kind": "container",
            "owner_id": self.owner,
            "login": self.login,
            "media_type": self.media_type,
            "is_carousel_item": self.is_carousel_item,
            "status_code": status_code,
            "status": status,
            "caption": self.caption,
            "children": self.children,
            "url": main.map(|s| s.url.clone()),
            "bytes": bytes,
            "sha256": sha256,
            "sources": self.sources,
            "share_to_feed": self.share_to_feed,
            "params": self.extras,
            "created_at": self.created_ms / 1000,
            "media_id": self.media_id,
        })
    }
}

/// A published object (a post, reel, story, or a carousel's child).
#[derive(Debug, Clone)]
pub struct Media {
    pub id: String,
    pub owner: String,
    pub container_id: String,
    pub login: Login,
    /// `IMAGE`, `VIDEO` or `CAROUSEL_ALBUM`.
    pub media_type: &'static str,
    /// `FEED`, `REELS` or `STORY`.
    pub product: &'static str,
    pub caption: Option<String>,
    pub shortcode: String,
    pub published_ms: i64,
    pub media_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub children: Vec<String>,
    pub is_child: bool,
    pub share_to_feed: Option<bool>,
}

impl Media {
    /// Shown in the profile grid and `media_count` (not stories, not carousel children).
    pub fn counts_in_profile(&self) -> bool {
        !self.is_child && self.product != "STORY"
    }

    fn permalink(&self, username: &str) -> String {
        match self.product {
            "REELS" => format!("https://www.instagram.com/reel/{}/", self.shortcode),
            "STORY" => format!("https://www.instagram.com/stories/{username}/{}/", self.id),
            _ => format!("https://www.instagram.com/p/{}/", self.shortcode),
        }
    }

    pub fn admin_json(&self, username: &str) -> Value {
        json!({
            "id": self.id,
            "kind": "media",
            "owner_id": self.owner,
            "container_id": self.container_id,
            "login": self.login,
            "media_type": self.media_type,
            "media_product_type": self.product,
            "caption": self.caption,
            "permalink": self.permalink(username),
            "shortcode": self.shortcode,
            "media_url": self.media_url,
            "children": self.children,
            "is_carousel_child": self.is_child,
            "timestamp": iso(self.published_ms / 1000),
        })
    }
}

// ---- creating containers ----

/// A validated `POST /{ig-user-id}/media`.
struct Plan {
    media_type: MediaType,
    is_carousel_item: bool,
    image_url: Option<String>,
    video_url: Option<String>,
    cover_url: Option<String>,
    children: Vec<String>,
    resumable: bool,
}

fn plan(call: &Call) -> GraphResult<Plan> {
    let p = &call.params;
    let is_carousel_item = p.flag("is_carousel_item")?.unwrap_or(false);
    let media_type = match p.get("media_type").map(str::to_ascii_uppercase).as_deref() {
        None | Some("IMAGE") => MediaType::Image,
        Some("VIDEO") => MediaType::Video,
        Some("REELS") => MediaType::Reels,
        Some("STORIES") => MediaType::Stories,
        Some("CAROUSEL") => MediaType::Carousel,
        Some(other) => {
            return Err(GraphError::new(36004, format!("The media type {other} is not supported"))
                .subcode(2207023)
                .user("Unsupported media type", "media_type must be one of IMAGE, REELS, STORIES, CAROUSEL (VIDEO for carousel items)."));
        }
    };
    let image_url = p.get("image_url").map(str::to_string);
    let video_url = p.get("video_url").map(str::to_string);
    let resumable = p.get("upload_type") == Some("resumable") && call.host == Host::Facebook;
    let mut plan = Plan {
        media_type,
        is_carousel_item,
        image_url: None,
        video_url: None,
        cover_url: None,
        children: Vec::new(),
        resumable: false,
    };
    match media_type {
        MediaType::Image => plan.image_url = Some(p.require("image_url")?.to_string()),
        MediaType::Video if !is_carousel_item => {
            return Err(errors::invalid_param(
                "The VIDEO media type is no longer supported for single videos: use media_type=REELS",
            )
            .subcode(2207023));
        }
        MediaType::Video | MediaType::Reels => {
            if media_type == MediaType::Reels && is_carousel_item {
                return Err(errors::invalid_param(
                    "Carousel items must be IMAGE or VIDEO, not REELS",
                ));
            }
            plan.resumable = resumable;
            if !resumable {
                plan.video_url = Some(p.require("video_url")?.to_string());
            }
            plan.cover_url = p.get("cover_url").map(str::to_string);
        }
        MediaType::Stories => match (image_url, video_url) {
            (Some(image), None) => plan.image_url = Some(image),
            (None, Some(video)) => plan.video_url = Some(video),
            (None, None) if resumable => plan.resumable = true,
            (None, None) => return Err(errors::missing_param("image_url")),
            (Some(_), Some(_)) => {
                return Err(errors::invalid_param(
                    "Only one of image_url and video_url may be set",
                ));
            }
        },
        MediaType::Carousel => {
            let children: Vec<String> = p
                .require("children")?
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if !(2..=10).contains(&children.len()) {
                return Err(errors::invalid_param(
                    "The parameter children must list between 2 and 10 container ids",
                ));
            }
            plan.children = children;
        }
    }
    check_caption(p.get("caption"))?;
    check_options(call, media_type, is_carousel_item)?;
    for json_param in ["user_tags", "product_tags", "trial_params"] {
        if let Some(raw) = p.get(json_param)
            && serde_json::from_str::<Value>(raw).is_err()
        {
            return Err(errors::invalid_param(format!(
                "Param {json_param} must be a JSON value"
            )));
        }
    }
    if let Some(offset) = p.get("thumb_offset")
        && offset.parse::<u64>().is_err()
    {
        return Err(GraphError::new(
            1,
            "The thumb_offset must be a non-negative number of milliseconds",
        )
        .subcode(2207057));
    }
    Ok(plan)
}

/// Places the emulator knows (Facebook Pages with a location): a `location_id` must be one.
pub const PLACES: &[(&str, &str)] = &[
    ("106078429431815", "Lisbon, Portugal"),
    ("108424279189115", "New York, New York"),
    ("110774245616525", "Paris, France"),
    ("213106903", "Brighton Beach"),
];
/// Collaborators on one container (unconfirmed in Meta's docs; what integrations report).
pub const MAX_COLLABORATORS: usize = 3;
/// People tagged on one media.
pub const MAX_USER_TAGS: usize = 20;

/// The optional parameters: each on the media types Meta's reference lists it for, within its
/// limits.
fn check_options(call: &Call, media_type: MediaType, is_carousel_item: bool) -> GraphResult<()> {
    let p = &call.params;
    let not_here = |param: &str| {
        errors::invalid_param(format!(
            "The parameter {param} is not supported for {} containers",
            if is_carousel_item {
                "carousel item".to_string()
            } else {
                format!("{media_type:?}").to_ascii_uppercase()
            }
        ))
    };
    let reel = media_type == MediaType::Reels;
    let story = media_type == MediaType::Stories;
    if let Some(raw) = p.get("collaborators") {
        if story || is_carousel_item {
            return Err(not_here("collaborators"));
        }
        let names: Vec<String> = serde_json::from_str(raw).map_err(|_| {
            errors::invalid_param("Param collaborators must be a JSON array of usernames")
        })?;
        if names.len() > MAX_COLLABORATORS {
            return Err(errors::invalid_param(format!(
                "Param collaborators can have at most {MAX_COLLABORATORS} usernames"
            ))
            .user(
                "Too many collaborators",
                format!("You can invite up to {MAX_COLLABORATORS} collaborators."),
            ));
        }
    }
    if let Some(raw) = p.get("user_tags") {
        if story || media_type == MediaType::Carousel {
            return Err(not_here("user_tags"));
        }
        let tags: Vec<Value> = serde_json::from_str(raw).map_err(|_| {
            errors::invalid_param("Param user_tags must be a JSON array of {username, x, y}")
        })?;
        if tags.len() > MAX_USER_TAGS {
            return Err(errors::invalid_param(format!(
                "Param user_tags can have at most {MAX_USER_TAGS} tags"
            ))
            .user(
                "Too many tags",
                format!("You can tag up to {MAX_USER_TAGS} people."),
            ));
        }
        for tag in &tags {
            if tag["username"].as_str().is_none_or(str::is_empty) {
                return Err(errors::invalid_param("Each user tag needs a username"));
            }
            for axis in ["x", "y"] {
                if let Some(v) = tag.get(axis)
                    && !v.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v))
                {
                    return Err(errors::invalid_param(format!(
                        "User tag {axis} must be a number from 0.0 to 1.0"
                    )));
                }
            }
        }
    }
    if let Some(location) = p.get("location_id") {
        if story || is_carousel_item {
            return Err(not_here("location_id"));
        }
        if !PLACES.iter().any(|(id, _)| *id == location) {
            return Err(errors::invalid_param(format!(
                "The location_id {location} is not a valid location: it must be a Page with location data"
            )));
        }
    }
    if p.get("alt_text").is_some() && (media_type != MediaType::Image || is_carousel_item) {
        return Err(not_here("alt_text"));
    }
    for reel_only in ["audio_name", "trial_params"] {
        if p.get(reel_only).is_some() && !reel {
            return Err(not_here(reel_only));
        }
    }
    if p.get("thumb_offset").is_some() && !matches!(media_type, MediaType::Reels | MediaType::Video)
    {
        return Err(not_here("thumb_offset"));
    }
    if let Some(raw) = p.get("trial_params") {
        let strategy = serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| v["graduation_strategy"].as_str().map(str::to_string));
        if !matches!(strategy.as_deref(), Some("MANUAL" | "SS_PERFORMANCE")) {
            return Err(errors::invalid_param(
                "Param trial_params must be {\"graduation_strategy\": \"MANUAL\" | \"SS_PERFORMANCE\"}",
            ));
        }
    }
    Ok(())
}

fn check_caption(caption: Option<&str>) -> GraphResult<()> {
    let Some(caption) = caption else {
        return Ok(());
    };
    let hashtags = caption.matches('#').count();
    let mentions = caption.matches('@').count();
    if caption.chars().count() > 2200 || hashtags > 30 || mentions > 20 {
        return Err(GraphError::new(9004, "The caption is invalid")
            .subcode(2207010)
            .user(
                "Invalid caption",
                "Captions are limited to 2200 characters, 30 hashtags and 20 @ tags.",
            ));
    }
    Ok(())
}

fn check_children(s: &Store, owner: &str, children: &[String], now_ms: i64) -> GraphResult<()> {
    for child in children {
        let container = s
            .containers
            .get(child)
            .filter(|c| c.owner == owner && c.is_carousel_item);
        let Some(container) = container else {
            return Err(errors::invalid_param(format!(
                "Invalid children: {child} is not a carousel item of this account"
            )));
        };
        let (status_code, _) = container.status(now_ms);
        if status_code != "FINISHED" {
            return Err(GraphError::new(2, "Carousel validation failed")
                .subcode(2207028)
                .transient(status_code == "IN_PROGRESS")
                .user(
                    "Carousel validation failed",
                    format!("The carousel item {child} is {status_code}, not FINISHED."),
                ));
        }
    }
    Ok(())
}

const PASSTHROUGH: &[&str] = &[
    "location_id",
    "user_tags",
    "product_tags",
    "collaborators",
    "thumb_offset",
    "audio_name",
    "alt_text",
    "trial_params",
];

/// `POST /{ig-user-id}/media`.
pub async fn create_container(call: &Call, token: &Token, ig: &str) -> GraphResult {
    require_scope(
        token,
        "instagram_content_publish",
        "instagram_business_content_publish",
    )?;
    let plan = plan(call)?;
    let meta = &call.meta;
    let now = meta.now_ms();
    if plan.media_type == MediaType::Carousel {
        meta.store(|s| check_children(s, ig, &plan.children, now))?;
    }
    let mut sources = Vec::new();
    if let Some(url) = &plan.image_url {
        let fetch = fetch_image(meta, url).await?;
        sources.push(Source {
            role: "image",
            url: url.clone(),
            fetch,
        });
    }
    if let Some(url) = &plan.video_url {
        sources.push(Source {
            role: "video",
            url: url.clone(),
            fetch: Fetch::Pending,
        });
    }
    if plan.resumable {
        sources.push(Source {
            role: "video",
            url: "rupload".into(),
            fetch: Fetch::Pending,
        });
    }
    if let Some(url) = &plan.cover_url {
        sources.push(Source {
            role: "cover",
            url: url.clone(),
            fetch: Fetch::Pending,
        });
    }
    let failure = meta
        .faults()
        .fail_processing
        .then(|| "Error: 2207001 Instagram server error: media processing failed.".to_string());
    let caption = call
        .params
        .get("caption")
        .filter(|_| !plan.is_carousel_item && plan.media_type != MediaType::Stories);
    let extras = PASSTHROUGH
        .iter()
        .filter_map(|k| call.params.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    let container = Container {
        id: String::new(),
        owner: ig.to_string(),
        login: token.login,
        media_type: plan.media_type,
        is_carousel_item: plan.is_carousel_item,
        caption: caption.map(str::to_string),
        children: plan.children,
        share_to_feed: call.params.flag("share_to_feed")?,
        ready_ms: if plan.video_url.is_some() || plan.resumable {
            i64::MAX
        } else {
            now
        },
        sources,
        extras,
        created_ms: now,
        failure,
        resumable: plan.resumable,
        media_id: None,
    };
    let id = meta.store(|s| {
        let id = s.next_id();
        s.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                ..container
            },
        );
        id
    });
    if plan.video_url.is_some() || plan.cover_url.is_some() {
        tokio::spawn(fetch_in_background(meta.clone(), id.clone()));
    }
    if plan.resumable {
        let version = call.version.as_deref().unwrap_or("v21.0");
        let uri = format!(
            "{}/meta/rupload/ig-api-upload/{version}/{id}",
            meta.ctx.base_url
        );
        return Ok(json!({ "id": id, "uri": uri }));
    }
    Ok(json!({ "id": id }))
}

async fn fetch_image(meta: &Meta, url: &str) -> GraphResult<Fetch> {
    match fetch(&meta.ctx.http, url, MAX_IMAGE_BYTES).await {
        Ok(done) => Ok(done),
        Err(FetchError::TooLarge) => Err(GraphError::new(36000, "The image size is too large.")
            .subcode(2207004)
            .transient(false)
            .user(
                "Image size too large",
                "The image is too large to download. It should be less than 8 MiB.",
            )),
        Err(FetchError::Unreachable(reason)) => {
            tracing::debug!(%reason, "image fetch failed");
            Err(
                GraphError::new(9004, "Only photo or video can be accepted as media type.")
                    .subcode(2207052)
                    .transient(false)
                    .user(
                        "Media download has failed.",
                        format!("The media could not be fetched from this uri: {url}"),
                    ),
            )
        }
    }
}

/// Fetches the video and cover of container `id`, then starts its processing delay.
async fn fetch_in_background(meta: Meta, id: String) {
    let urls: Vec<(usize, String)> = meta.store(|s| {
        s.containers
            .get(&id)
            .map(|c| {
                c.sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.url != "rupload" && matches!(s.fetch, Fetch::Pending))
                    .map(|(i, s)| (i, s.url.clone()))
                    .collect()
            })
            .unwrap_or_default()
    });
    for (index, url) in urls {
        let fetch = match fetch(&meta.ctx.http, &url, MAX_VIDEO_BYTES).await {
            Ok(done) => done,
            Err(FetchError::TooLarge) => Fetch::Failed {
                error: "Error: 2207026 The video file is too large.".into(),
            },
            Err(FetchError::Unreachable(_)) => Fetch::Failed {
                error: "Error: 2207052 Media could not be fetched from the URL.".into(),
            },
        };
        meta.store(|s| {
            if let Some(source) = s
                .containers
                .get_mut(&id)
                .and_then(|c| c.sources.get_mut(index))
            {
                source.fetch = fetch;
            }
        });
    }
    mark_bytes_arrived(&meta, &id);
}

/// Starts the processing delay once no source is pending.
fn mark_bytes_arrived(meta: &Meta, id: &str) {
    let delay = i64::try_from(meta.settings().video_processing_ms).unwrap_or(i64::MAX);
    let now = meta.now_ms();
    meta.store(|s| {
        if let Some(container) = s.containers.get_mut(id)
            && !container
                .sources
                .iter()
                .any(|s| matches!(s.fetch, Fetch::Pending))
        {
            container.ready_ms = if container.is_video() {
                now.saturating_add(delay)
            } else {
                now
            };
        }
    });
}

/// How much of a fetched file is kept to read an MP4's length from (a file with its index
/// first has it there).
const HEAD_BYTES: usize = 1024 * 1024;

/// The length in an MP4's `moov/mvhd` box, when it lies in `head`.
pub fn mp4_duration_ms(head: &[u8]) -> Option<u64> {
    fn boxes(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let header = data.get(at..at + 8)?;
            let size = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
            let kind = &header[4..8];
            let (start, end) = match size {
                1 => {
                    let large = data.get(at + 8..at + 16)?;
                    let large = usize::try_from(u64::from_be_bytes(large.try_into().ok()?)).ok()?;
                    (at + 16, at.checked_add(large)?)
                }
                0 => (at + 8, data.len()),
                n if n >= 8 => (at + 8, at.checked_add(n)?),
                _ => return None,
            };
            let body = data.get(start..end.min(data.len()))?;
            at = end;
            Some((kind, body))
        })
    }
    let (_, moov) = boxes(head).find(|(kind, _)| *kind == b"moov")?;
    let (_, mvhd) = boxes(moov).find(|(kind, _)| *kind == b"mvhd")?;
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let bytes = mvhd.get(range)?;
        Some(bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)))
    };
    let (timescale, duration) = match mvhd.first()? {
        0 => (number(12..16)?, number(16..20)?),
        _ => (number(20..24)?, number(24..32)?),
    };
    (timescale > 0).then(|| duration.saturating_mul(1000) / timescale)
}

enum FetchError {
    Unreachable(String),
    TooLarge,
}

/// GETs `url`, streaming and hashing the body; never holds more than one chunk.
async fn fetch(http: &reqwest::Client, url: &str, max_bytes: u64) -> Result<Fetch, FetchError> {
    let parsed = url::Url::parse(url).map_err(|e| FetchError::Unreachable(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Unreachable("unsupported scheme".into()));
    }
    let mut response = http
        .get(parsed)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(FetchError::Unreachable(format!(
            "HTTP {}",
            response.status()
        )));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut head = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?
    {
        bytes += chunk.len() as u64;
        if bytes > max_bytes {
            return Err(FetchError::TooLarge);
        }
        let room = HEAD_BYTES.saturating_sub(head.len());
        head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        hasher.update(&chunk);
    }
    Ok(Fetch::Done {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        content_type,
        duration_ms: mp4_duration_ms(&head),
    })
}

// ---- reading containers and media ----

/// `GET /{container-id}?fields=id,status_code,status`.
pub fn container(call: &Call, id: &str) -> GraphResult {
    let now = call.meta.now_ms();
    let container = call.meta.store(|s| s.containers.get(id).cloned());
    let container = container.ok_or_else(|| errors::unknown_object(id, "get"))?;
    let (status_code, status) = container.status(now);
    let mut full = Map::new();
    full.insert("id".into(), json!(container.id));
    full.insert("status_code".into(), json!(status_code));
    full.insert("status".into(), json!(status));
    if container.is_video() {
        let copyright = if status_code == "IN_PROGRESS" {
            "in_progress"
        } else {
            "completed"
        };
        full.insert(
            "copyright_check_status".into(),
            json!({"matches_found": false, "status": copyright}),
        );
    }
    let known = ["id", "status_code", "status", "copyright_check_status"];
    fields::select(&full, &call.fields(&["id"]), &known, "IGContainer")
}

const MEDIA_FIELDS: &[&str] = &[
    "id",
    "caption",
    "media_type",
    "media_product_type",
    "media_url",
    "permalink",
    "shortcode",
    "thumbnail_url",
    "timestamp",
    "username",
    "owner",
    "like_count",
    "comments_count",
    "is_comment_enabled",
    "is_shared_to_feed",
    "children",
];

/// One media object with the requested fields (children rendered with their sub-fields).
pub fn media_json(call: &Call, s: &Store, media: &Media, specs: &[FieldSpec]) -> GraphResult {
    let now = call.meta.now_ms();
    let username = s
        .ig_account(&media.owner)
        .map(|a| a.username.clone())
        .unwrap_or_default();
    let mut full = Map::new();
    full.insert("id".into(), json!(media.id));
    if let Some(caption) = &media.caption {
        full.insert("caption".into(), json!(caption));
    }
    full.insert("media_type".into(), json!(media.media_type));
    full.insert("media_product_type".into(), json!(media.product));
    if let Some(url) = &media.media_url {
        full.insert("media_url".into(), json!(url));
    }
    if let Some(url) = &media.thumbnail_url {
        full.insert("thumbnail_url".into(), json!(url));
    }
    full.insert("permalink".into(), json!(media.permalink(&username)));
    full.insert("shortcode".into(), json!(media.shortcode));
    full.insert("timestamp".into(), json!(iso(media.published_ms / 1000)));
    full.insert("username".into(), json!(username));
    full.insert("owner".into(), json!({ "id": media.owner }));
    full.insert(
        "like_count".into(),
        json!(super::engagement::likes(media, now)),
    );
    full.insert(
        "comments_count".into(),
        json!(
            s.comments
                .values()
                .filter(|c| c.media_id == media.id)
                .count()
        ),
    );
    full.insert("is_comment_enabled".into(), json!(true));
    if let Some(share) = media.share_to_feed {
        full.insert("is_shared_to_feed".into(), json!(share));
    }
    if !media.children.is_empty() && specs.iter().any(|f| f.name == "children") {
        let sub = fields::sub_fields(specs, "children", &["id"]);
        let children = media
            .children
            .iter()
            .filter_map(|id| s.media.get(id))
            .map(|child| media_json(call, s, child, &sub))
            .collect::<GraphResult<Vec<_>>>()?;
        full.insert("children".into(), json!({ "data": children }));
    }
    fields::select(&full, specs, MEDIA_FIELDS, "IGMedia")
}

/// `GET /{ig-media-id}?fields=…`.
pub fn media(call: &Call, id: &str) -> GraphResult {
    let specs = call.fields(&["id"]);
    call.meta.store(|s| {
        let media = s
            .media
            .get(id)
            .ok_or_else(|| errors::unknown_object(id, "get"))?;
        media_json(call, s, media, &specs)
    })
}

/// `GET /{ig-media-id}/children`.
pub fn children(call: &Call, id: &str) -> GraphResult {
    let specs = call.fields(&["id"]);
    call.meta.store(|s| {
        let media = s
            .media
            .get(id)
            .ok_or_else(|| errors::unknown_object(id, "get"))?;
        let data = media
            .children
            .iter()
            .filter_map(|c| s.media.get(c))
            .map(|child| media_json(call, s, child, &specs))
            .collect::<GraphResult<Vec<_>>>()?;
        Ok(json!({ "data": data }))
    })
}

/// `GET /{ig-user-id}/media` (newest first) or `/stories` (last 24 h).
pub fn list_media(call: &Call, ig: &str, stories: bool) -> GraphResult {
    let specs = call.fields(&["id"]);
    let now = call.meta.now_ms();
    let items = call.meta.store(|s| {
        s.media
            .values()
            .rev()
            .filter(|m| m.owner == ig)
            .filter(|m| {
                if stories {
                    m.product == "STORY" && now - m.published_ms < DAY_MS
                } else {
                    m.counts_in_profile()
                }
            })
            .map(|m| media_json(call, s, m, &specs).map(|v| (m.id.clone(), v)))
            .collect::<GraphResult<Vec<_>>>()
    })?;
    paginate(call, items)
}

// ---- publishing ----

fn published_since(s: &Store, ig: &str, since_ms: i64) -> usize {
    s.media
        .values()
        .filter(|m| m.owner == ig && !m.is_child && m.published_ms > since_ms)
        .count()
}

/// `POST /{ig-user-id}/media_publish?creation_id=…`.
pub fn publish(call: &Call, token: &Token, ig: &str) -> GraphResult {
    require_scope(
        token,
        "instagram_content_publish",
        "instagram_business_content_publish",
    )?;
    let creation_id = call.params.require("creation_id")?;
    let now = call.meta.now_ms();
    let limit = call.meta.settings().publishing_limit as usize;
    let id = call.meta.store(|s| {
        let container = s
            .containers
            .get(creation_id)
            .filter(|c| c.owner == ig)
            .cloned();
        let container = container.ok_or_else(|| {
            errors::invalid_param(format!(
                "The creation_id {creation_id} is not a media container of this account"
            ))
        })?;
        if container.is_carousel_item {
            return Err(errors::invalid_param(
                "Carousel items cannot be published on their own; publish the CAROUSEL container",
            ));
        }
        match container.status(now).0 {
            "FINISHED" => {}
            "PUBLISHED" => {
                return Err(
                    errors::invalid_param("The media has already been published").user(
                        "Media already published",
                        "This container was already published; create a new one.",
                    ),
                );
            }
            "EXPIRED" => {
                return Err(GraphError::new(
                    -2,
                    "The media you are trying to access has expired. Please try to upload again.",
                )
                .subcode(2207020)
                .user("Media expired", "The container expired; create a new one."));
            }
            _ => {
                return Err(GraphError::new(9007, "Media ID is not available")
                    .subcode(2207027)
                    .transient(false)
                    .user(
                        "Media not ready for publishing",
                        "The media is not ready for publishing, please wait for a moment",
                    ));
            }
        }
        if published_since(s, ig, now - DAY_MS) >= limit {
            return Err(GraphError::new(9, "Application request limit reached")
                .subcode(2207042)
                .user(
                    "Maximum posts reached",
                    format!("You reached the maximum of {limit} posts allowed in 24 hours."),
                ));
        }
        Ok(publish_container(s, &container, now))
    })?;
    Ok(json!({ "id": id }))
}

fn product_of(container: &Container) -> (&'static str, &'static str) {
    let video = container.is_video();
    let media_type = if video { "VIDEO" } else { "IMAGE" };
    match container.media_type {
        MediaType::Carousel => ("CAROUSEL_ALBUM", "FEED"),
        MediaType::Reels => ("VIDEO", "REELS"),
        MediaType::Stories => (media_type, "STORY"),
        MediaType::Image | MediaType::Video => (media_type, "FEED"),
    }
}

fn new_shortcode() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let tail: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("C{tail}")
}

/// Turns a FINISHED container into media (children first); returns the media id.
fn publish_container(s: &mut Store, container: &Container, now: i64) -> String {
    let child_containers: Vec<Container> = container
        .children
        .iter()
        .filter_map(|child| s.containers.get(child).cloned())
        .collect();
    let children: Vec<String> = child_containers
        .into_iter()
        .map(|child| {
            let id = new_media(s, &child, now, true);
            if let Some(c) = s.containers.get_mut(&child.id) {
                c.media_id = Some(id.clone());
            }
            id
        })
        .collect();
    let id = new_media(s, container, now, false);
    if let Some(m) = s.media.get_mut(&id) {
        m.children = children;
    }
    if let Some(c) = s.containers.get_mut(&container.id) {
        c.media_id = Some(id.clone());
    }
    id
}

fn new_media(s: &mut Store, container: &Container, now: i64, is_child: bool) -> String {
    let id = s.next_id();
    let (media_type, product) = product_of(container);
    let main = container
        .source_url("video")
        .or(container.source_url("image"))
        .map(str::to_string);
    let media = Media {
        id: id.clone(),
        owner: container.owner.clone(),
        container_id: container.id.clone(),
        login: container.login,
        media_type,
        product,
        caption: container.caption.clone(),
        shortcode: new_shortcode(),
        published_ms: now,
        media_url: main.filter(|u| u != "rupload"),
        thumbnail_url: container.source_url("cover").map(str::to_string),
        children: Vec::new(),
        is_child,
        share_to_feed: container.share_to_feed,
    };
    s.media.insert(id.clone(), media);
    id
}

/// `GET /{ig-user-id}/content_publishing_limit?fields=config,quota_usage[&since=]`.
pub fn publishing_limit(call: &Call, ig: &str) -> GraphResult {
    let now = call.meta.now_ms();
    let since_ms = match call.params.get("since") {
        None => now - DAY_MS,
        Some(raw) => {
            let secs = raw
                .parse::<i64>()
                .map_err(|_| errors::invalid_param("Param since must be a unix timestamp"))?;
            if secs.saturating_mul(1000) < now - DAY_MS {
                return Err(errors::invalid_param(
                    "Param since must be no older than 24 hours",
                ));
            }
            secs.saturating_mul(1000)
        }
    };
    let usage = call.meta.store(|s| published_since(s, ig, since_ms));
    let limit = call.meta.settings().publishing_limit;
    let mut full = Map::new();
    full.insert("quota_usage".into(), json!(usage));
    let config = json!({"quota_total": limit, "quota_duration": 86_400});
    full.insert("config".into(), config.clone());
    full.insert("rate_limit_settings".into(), config);
    let mut entry = fields::select(
        &full,
        &call.fields(&["quota_usage"]),
        &["quota_usage", "config", "rate_limit_settings"],
        "ContentPublishingLimit",
    )?;
    if let Some(settings) = entry
        .as_object_mut()
        .and_then(|o| o.remove("rate_limit_settings"))
    {
        entry["config"] = settings;
    }
    Ok(json!({ "data": [entry] }))
}

// ---- resumable upload ----

fn rupload_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"debug_info": {"retriable": false, "type": "ProcessingFailedError", "message": message}});
    (status, Json(body)).into_response()
}

/// `POST rupload.facebook.com/ig-api-upload/{version}/{container-id}` with
/// `Authorization: OAuth <token>` and either the bytes (`offset: 0`, `file_size`) or `file_url`.
pub async fn rupload(
    State(meta): State<Meta>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    apply_latency(&meta.faults()).await;
    let token = access_token(&headers, &Default::default());
    let token = match meta.authenticate(token.as_deref(), Host::Facebook) {
        Ok(token) => token,
        Err(err) => return err.render(Host::Facebook),
    };
    let allowed = meta.store(|s| {
        s.containers
            .get(&id)
            .filter(|c| c.resumable && s.can_access_ig(&token, &c.owner))
            .map(|c| {
                c.sources
                    .iter()
                    .any(|s| s.url == "rupload" && matches!(s.fetch, Fetch::Pending))
            })
    });
    match allowed {
        None => {
            return rupload_error(
                StatusCode::BAD_REQUEST,
                "Unknown or non-resumable media container",
            );
        }
        Some(false) => {
            return rupload_error(
                StatusCode::BAD_REQUEST,
                "The upload for this container is complete",
            );
        }
        Some(true) => {}
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let fetch = if let Some(url) = header("file_url") {
        match fetch(&meta.ctx.http, &url, MAX_VIDEO_BYTES).await {
            Ok(done) => done,
            Err(_) => {
                return rupload_error(StatusCode::BAD_REQUEST, "The file_url could not be fetched");
            }
        }
    } else {
        if header("offset").is_some_and(|o| o != "0") {
            return rupload_error(
                StatusCode::BAD_REQUEST,
                "Only offset 0 is supported by the emulator",
            );
        }
        let expected = header("file_size").and_then(|v| v.parse::<u64>().ok());
        match hash_body(body, meta.faults().drop_upload_after_bytes).await {
            Some(Fetch::Done { bytes, .. }) if expected.is_some_and(|e| e != bytes) => {
                return rupload_error(
                    StatusCode::BAD_REQUEST,
                    "file_size does not match the bytes received",
                );
            }
            Some(done) => done,
            None => return rupload_error(StatusCode::BAD_REQUEST, "The upload was interrupted"),
        }
    };
    meta.store(|s| {
        if let Some(source) = s
            .containers
            .get_mut(&id)
            .and_then(|c| c.sources.iter_mut().find(|s| s.url == "rupload"))
        {
            source.fetch = fetch;
        }
    });
    mark_bytes_arrived(&meta, &id);
    Json(json!({"success": true, "message": "Upload successful."})).into_response()
}

/// Streams and hashes a request body; `None` when it breaks off (or the drop fault hits).
async fn hash_body(body: Body, drop_after: Option<u64>) -> Option<Fetch> {
    let mut stream = body.into_data_stream();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut head = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        bytes += chunk.len() as u64;
        if drop_after.is_some_and(|limit| bytes > limit) || bytes > MAX_VIDEO_BYTES {
            return None;
        }
        let room = HEAD_BYTES.saturating_sub(head.len());
        head.extend_from_slice(&chunk[..room.min(chunk.len())]);
        hasher.update(&chunk);
    }
    Some(Fetch::Done {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        content_type: None,
        duration_ms: mp4_duration_ms(&head),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// The length comes from `moov/mvhd` (version 0 and 1), after other boxes; none without it.
    #[test]
    fn mp4_lengths() {
        let mut v0 = vec![0u8; 4 + 8];
        v0.extend_from_slice(&1000u32.to_be_bytes());
        v0.extend_from_slice(&3500u32.to_be_bytes());
        v0.extend_from_slice(&[0; 80]);
        let mut file = boxed(b"ftyp", b"isom0000");
        file.extend(boxed(
            b"moov",
            &[boxed(b"trak", &[0; 8]), boxed(b"mvhd", &v0)].concat(),
        ));
        assert_eq!(mp4_duration_ms(&file), Some(3500));

        let mut v1 = vec![1u8, 0, 0, 0];
        v1.extend_from_slice(&[0; 16]);
        v1.extend_from_slice(&90_000u32.to_be_bytes());
        v1.extend_from_slice(&(90_000u64 * 12).to_be_bytes());
        let file = boxed(b"moov", &boxed(b"mvhd", &v1));
        assert_eq!(mp4_duration_ms(&file), Some(12_000));

        assert_eq!(mp4_duration_ms(&boxed(b"ftyp", b"isom")), None);
        assert_eq!(mp4_duration_ms(b"not an mp4"), None);
    }
}
