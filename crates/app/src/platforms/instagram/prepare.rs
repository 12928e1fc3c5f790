//! Checking an Instagram target before anything is stored or sent: each item resolved (stored
//! media read for its real format and JPEG size), then the media rules (JPEG images up to 8 MiB
//! with an aspect ratio from 4:5 to 1.91:1, MP4/MOV videos, reel and story durations when
//! known, 2–10 carousel items, caption limits) and the media URLs' addresses.

use tidepost_store::accounts::Account;
use tidepost_store::media::{self, Media};
use tidepost_store::posts::{Post, Target};
use tokio::io::AsyncReadExt;

use super::options::{InstagramPost, MediaType};
use crate::App;
use crate::media::rules;
use crate::pipeline::media::{Item, ItemKind, extension, kind_of_extension};
use crate::pipeline::{Prepared, PublishError, check_media_url};

const MIB: u64 = 1024 * 1024;

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
pub(crate) struct Resolved {
    pub(crate) kind: ItemKind,
    pub(crate) stored: Option<Media>,
    /// How the format reads in a message: the stored media's type (`image/jpeg`), or the
    /// URL's extension (`a .png file`).
    pub(crate) format: Option<String>,
    /// The container as `media::rules` names them (`jpeg`, `mp4`, `mov`, …), when anything
    /// says it (a URL without an extension says nothing).
    pub(crate) container: Option<String>,
    pub(crate) size: Option<u64>,
    pub(crate) dims: Option<(u32, u32)>,
    pub(crate) duration: Option<f64>,
    /// A stored video's probed length, in milliseconds.
    pub(crate) probed_ms: Option<i64>,
}

pub(crate) async fn resolve(
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
                probed_ms: None,
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
            if let Ok(mut file) = crate::media::storage(app)
                .open(&stored.sha256, Some(0..head.len() as u64))
                .await
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
                probed_ms: stored.duration_ms,
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

/// Collaborators Meta takes on one post (Meta's docs do not say; 3 is the figure integrations
/// report and the emulator enforces).
pub const MAX_COLLABORATORS: usize = 3;
/// People tagged on one media: Instagram's in-app limit (Meta's docs give no number).
pub const MAX_USER_TAGS: usize = 20;
/// `alt_text` length: Meta's docs give none; 1000 characters is tidepost's own bound.
pub const MAX_ALT_TEXT: usize = 1000;
/// `audio_name` length: Meta's docs give none; 100 characters is tidepost's own bound.
pub const MAX_AUDIO_NAME: usize = 100;

/// The media types that take each option, as Meta's container reference lists them.
fn takes(field: &str, media_type: MediaType) -> bool {
    use MediaType::{Carousel, Image, Reel, Story};
    let allowed: &[MediaType] = match field {
        "cover_url" | "share_to_feed" | "thumb_offset" | "audio_name" | "trial_params" => &[Reel],
        "alt_text" => &[Image],
        "collaborators" | "user_tags" | "location_id" | "first_comment" => &[Image, Reel, Carousel],
        _ => &[Image, Reel, Carousel, Story],
    };
    allowed.contains(&media_type)
}

fn media_types_taking(field: &str) -> String {
    let names: Vec<&str> = [
        MediaType::Image,
        MediaType::Reel,
        MediaType::Carousel,
        MediaType::Story,
    ]
    .into_iter()
    .filter(|t| takes(field, *t))
    .map(|t| match t {
        MediaType::Image => "image posts",
        MediaType::Reel => "reels",
        MediaType::Carousel => "carousels",
        MediaType::Story => "stories",
    })
    .collect();
    match names.as_slice() {
        [one] => format!("{one} only"),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => "nothing".into(),
    }
}

/// An Instagram username: 1 to 30 letters, digits, periods and underscores (a leading `@` is
/// dropped).
fn username(field: &'static str, what: &str, raw: &str) -> Result<String, PublishError> {
    let name = raw.trim().trim_start_matches('@');
    let valid = (1..=30).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(invalid(
            field,
            format!(
                "{what}: {raw:?} is not an Instagram username (1 to 30 letters, digits, periods and underscores)"
            ),
        ))
    }
}

/// The publishing options: each only where its media type takes it, each within its limits.
/// Returns the post with usernames as Meta takes them (no `@`).
fn check_options(post: &InstagramPost, items: &[Resolved]) -> Result<InstagramPost, PublishError> {
    let mut post = post.clone();
    let given: [(&'static str, bool); 10] = [
        ("cover_url", post.cover_url.is_some()),
        ("share_to_feed", post.share_to_feed.is_some()),
        ("collaborators", !post.collaborators.is_empty()),
        ("user_tags", !post.user_tags.is_empty()),
        ("location_id", post.location_id.is_some()),
        ("alt_text", post.alt_text.is_some()),
        ("thumb_offset", post.thumb_offset.is_some()),
        ("audio_name", post.audio_name.is_some()),
        ("trial_params", post.trial_params.is_some()),
        ("first_comment", post.first_comment.is_some()),
    ];
    for (field, set) in given {
        if set && !takes(field, post.media_type) {
            return Err(invalid(
                field,
                format!(
                    "Instagram does not take {field} on a {}: it is for {}",
                    post.media_type.as_str(),
                    media_types_taking(field)
                ),
            ));
        }
    }
    if post.collaborators.len() > MAX_COLLABORATORS {
        return Err(invalid(
            "collaborators",
            format!(
                "Instagram takes at most {MAX_COLLABORATORS} collaborators (this post has {})",
                post.collaborators.len()
            ),
        ));
    }
    let mut collaborators = Vec::with_capacity(post.collaborators.len());
    for (i, raw) in post.collaborators.iter().enumerate() {
        let name = username("collaborators", &format!("collaborator {}", i + 1), raw)?;
        if collaborators.contains(&name) {
            return Err(invalid("collaborators", format!("{name} is invited twice")));
        }
        collaborators.push(name);
    }
    post.collaborators = collaborators;

    let carousel = post.media_type == MediaType::Carousel;
    let mut per_item = vec![0usize; items.len().max(1)];
    for (i, tag) in post.user_tags.iter_mut().enumerate() {
        let what = format!("tag {}", i + 1);
        tag.username = username("user_tags", &what, &tag.username)?;
        let index = match (carousel, tag.item) {
            (true, None) => {
                return Err(invalid(
                    "user_tags",
                    format!("{what}: say which carousel item it is on (\"item\", from 0)"),
                ));
            }
            (true, Some(n)) if n >= items.len() => {
                return Err(invalid(
                    "user_tags",
                    format!(
                        "{what}: the carousel has no item {n} (items are counted from 0 to {})",
                        items.len().saturating_sub(1)
                    ),
                ));
            }
            (true, Some(n)) => n,
            (false, None | Some(0)) => 0,
            (false, Some(_)) => {
                return Err(invalid(
                    "user_tags",
                    format!("{what}: \"item\" is for carousels; this post has one media"),
                ));
            }
        };
        let video = items.get(index).is_some_and(|r| r.kind == ItemKind::Video);
        match (video, tag.x, tag.y) {
            (true, None, None) => {}
            (true, _, _) => {
                return Err(invalid(
                    "user_tags",
                    format!("{what}: a video takes tags by username only, without x and y"),
                ));
            }
            (false, Some(x), Some(y)) => {
                for (axis, v) in [("x", x), ("y", y)] {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(invalid(
                            "user_tags",
                            format!("{what}: {axis} must be between 0.0 and 1.0 (got {v})"),
                        ));
                    }
                }
            }
            (false, _, _) => {
                return Err(invalid(
                    "user_tags",
                    format!(
                        "{what}: a tag on an image needs x and y (0.0 to 1.0, from the top left)"
                    ),
                ));
            }
        }
        per_item[index] += 1;
        if per_item[index] > MAX_USER_TAGS {
            return Err(invalid(
                "user_tags",
                format!("Instagram takes at most {MAX_USER_TAGS} people tagged on one media"),
            ));
        }
    }
    if let Some(location) = &post.location_id
        && !(location.len() <= 20 && location.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(invalid(
            "location_id",
            format!(
                "{location:?} is not a location id: the id of a Facebook Page with a location (digits)"
            ),
        ));
    }
    if let Some(alt) = &post.alt_text
        && alt.chars().count() > MAX_ALT_TEXT
    {
        return Err(invalid(
            "alt_text",
            format!(
                "alt text is at most {MAX_ALT_TEXT} characters (this one has {})",
                alt.chars().count()
            ),
        ));
    }
    if let Some(audio) = &post.audio_name
        && audio.chars().count() > MAX_AUDIO_NAME
    {
        return Err(invalid(
            "audio_name",
            format!(
                "the audio name is at most {MAX_AUDIO_NAME} characters (this one has {})",
                audio.chars().count()
            ),
        ));
    }
    if let Some(offset) = post.thumb_offset {
        if post.cover_url.is_some() {
            return Err(invalid(
                "thumb_offset",
                "give one cover: a cover_url or a thumb_offset (Meta ignores the offset when both are given)",
            ));
        }
        let length = items.first().and_then(|r| {
            r.probed_ms
                .or_else(|| r.duration.map(|d| (d * 1000.0) as i64))
        });
        if let Some(length) = length
            && i64::try_from(offset).unwrap_or(i64::MAX) >= length
        {
            return Err(invalid(
                "thumb_offset",
                format!(
                    "the cover frame at {offset} ms is past the video's end (it lasts {length} ms)"
                ),
            ));
        }
    }
    if let Some(comment) = &post.first_comment {
        let chars = comment.chars().count();
        if chars > 2200 {
            return Err(invalid(
                "first_comment",
                format!("an Instagram comment is at most 2200 characters (this one has {chars})"),
            ));
        }
        let hashtags = comment.matches('#').count();
        if hashtags > 30 {
            return Err(invalid(
                "first_comment",
                format!(
                    "Instagram allows at most 30 hashtags in a comment (this one has {hashtags})"
                ),
            ));
        }
    }
    Ok(post)
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
    let post = &check_options(post, &resolved)?;
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
    let post = InstagramPost::from_options(
        media_type,
        input.caption.to_string(),
        input.media.to_vec(),
        o,
    );
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
        instagram: Some(ig.options()),
        ..Default::default()
    };
    Some((ig.caption, ig.items, spec))
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
            probed_ms: None,
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
            probed_ms: None,
        }
    }

    fn outcome(media_type: MediaType, items: Vec<Resolved>) -> Result<(), String> {
        let post = InstagramPost {
            media_type,
            ..InstagramPost::default()
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
}
