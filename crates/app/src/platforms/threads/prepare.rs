//! Checking a Threads target before anything is stored or sent: the text (500, every non-ASCII
//! character counted as its UTF-8 bytes, as Threads counts emojis; at most 5 links), the media
//! type against the media given, each item resolved (stored media read for its real format and
//! size), then Threads' media rules (JPEG or PNG images up to 8 MiB within 10:1, MP4/MOV videos
//! up to 5 minutes and 1 GiB, 2–20 carousel items) and the options. Every refusal names
//! Threads' own rule.

use tidepost_store::accounts::Account;
use tidepost_store::posts::{Post, Target};

use super::options::{MediaType, ThreadsPost};
use crate::App;
use crate::media::rules;
use crate::pipeline::media::{Item, ItemKind};
use crate::pipeline::{Prepared, PublishError, check_media_url};
use crate::platforms::instagram::prepare::{Resolved, resolve};

const MIB: u64 = 1024 * 1024;
/// Threads' text limit, with emojis (and every non-ASCII character) counted as UTF-8 bytes.
pub const TEXT_LIMIT: usize = 500;
/// Links a post may carry (the text's and the link attachment, each counted once).
pub const LINK_LIMIT: usize = 5;
/// `alt_text`: threads-rs' bound (Meta gives none).
pub const MAX_ALT_TEXT: usize = 1000;

fn invalid(field: &'static str, message: impl Into<String>) -> PublishError {
    PublishError::Invalid {
        field,
        message: message.into(),
    }
}

/// The length of `text` as Threads counts it: ASCII 1, anything else its UTF-8 bytes.
pub fn weighted_len(text: &str) -> usize {
    text.chars().map(char::len_utf8).sum()
}

/// The distinct links in `text` and the link attachment.
pub fn links(text: &str, attachment: Option<&str>) -> Vec<String> {
    let mut all: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '!', '?']).to_string())
        .chain(attachment.map(str::to_string))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The text and option rules (no media).
fn check_text(post: &ThreadsPost) -> Result<(), PublishError> {
    let len = weighted_len(&post.text);
    if len > TEXT_LIMIT {
        return Err(invalid(
            "caption",
            format!(
                "Threads posts are at most {TEXT_LIMIT} characters, emojis and other non-Latin characters counted as their UTF-8 bytes (this one counts {len})"
            ),
        ));
    }
    if post.media_type == MediaType::Text && post.text.trim().is_empty() {
        return Err(invalid(
            "caption",
            "a Threads text post needs text (or add an image or a video)",
        ));
    }
    let links = links(&post.text, post.link_attachment.as_deref());
    if links.len() > LINK_LIMIT {
        return Err(invalid(
            "caption",
            format!(
                "Threads allows at most {LINK_LIMIT} links in a post, the link attachment included (this one has {})",
                links.len()
            ),
        ));
    }
    if let Some(link) = &post.link_attachment {
        if post.media_type != MediaType::Text {
            return Err(invalid(
                "link_attachment",
                format!(
                    "Threads takes a link attachment on text posts only, not on a {} post",
                    post.media_type.as_str()
                ),
            ));
        }
        let ok = url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(invalid(
                "link_attachment",
                format!("{link:?} is not a link (an http:// or https:// URL)"),
            ));
        }
    }
    if let Some(alt) = &post.alt_text {
        if post.media_type == MediaType::Text {
            return Err(invalid(
                "alt_text",
                "alt text describes an image or a video: a text post has none",
            ));
        }
        let chars = alt.chars().count();
        if chars > MAX_ALT_TEXT {
            return Err(invalid(
                "alt_text",
                format!("alt text is at most {MAX_ALT_TEXT} characters (this one has {chars})"),
            ));
        }
    }
    Ok(())
}

/// The media rules, with what is known without probing (type or extension, size, duration).
fn check_media(post: &ThreadsPost, items: &[Resolved]) -> Result<(), PublishError> {
    let count = items.len();
    let (lo, hi) = rules::THREADS_CAROUSEL_ITEMS;
    match post.media_type {
        MediaType::Text if count != 0 => {
            return Err(invalid(
                "items",
                "a Threads text post has no media: make it an image, video or carousel post",
            ));
        }
        MediaType::Image | MediaType::Video if count != 1 => {
            return Err(invalid(
                "items",
                format!(
                    "a Threads {} post has exactly one media (this one has {count}); use a carousel for several",
                    post.media_type.as_str()
                ),
            ));
        }
        MediaType::Carousel if !(lo..=hi).contains(&count) => {
            return Err(invalid(
                "items",
                format!(
                    "a Threads carousel has {lo} to {hi} images or videos (this one has {count})"
                ),
            ));
        }
        MediaType::Text | MediaType::Image | MediaType::Video | MediaType::Carousel => {}
    }
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let what = |rule: String| invalid("items", format!("item {n}: {rule}"));
        match (post.media_type, item.kind) {
            (MediaType::Image, ItemKind::Video) => {
                return Err(what(
                    "a video cannot be a Threads image post: publish it as a video".into(),
                ));
            }
            (MediaType::Video, ItemKind::Image) => {
                return Err(what(
                    "an image cannot be a Threads video post: publish it as an image".into(),
                ));
            }
            _ => {}
        }
        match item.kind {
            ItemKind::Image => {
                if let Some(c) = item.container.as_deref()
                    && !rules::THREADS_IMAGE_FORMATS.contains(&c)
                {
                    return Err(what(format!(
                        "Threads takes JPEG or PNG images, not {}",
                        item.format.as_deref().unwrap_or("this format")
                    )));
                }
                if let Some(size) = item.size
                    && size > rules::THREADS_IMAGE_MAX_BYTES
                {
                    return Err(what(format!(
                        "Threads images are at most 8 MiB (this one is {:.1} MiB)",
                        size as f64 / MIB as f64
                    )));
                }
                if let Some((w, h)) = item.dims
                    && w > 0
                    && h > 0
                {
                    let ratio = f64::from(w) / f64::from(h);
                    let (lo, hi) = rules::THREADS_IMAGE_ASPECT;
                    if !(lo - 1e-3..=hi + 1e-3).contains(&ratio) {
                        return Err(what(format!(
                            "Threads images have an aspect ratio within 10:1 either way (this image is {w}x{h}, {ratio:.2})"
                        )));
                    }
                }
            }
            ItemKind::Video => {
                if let (Some(container), Some(format)) = (&item.container, &item.format)
                    && !rules::THREADS_VIDEO_CONTAINERS.contains(&container.as_str())
                {
                    return Err(what(format!(
                        "Threads takes MP4 or MOV videos, not {format}"
                    )));
                }
                if let Some(size) = item.size
                    && size > rules::THREADS_VIDEO_MAX_BYTES
                {
                    return Err(what(format!(
                        "Threads videos are at most 1 GiB (this one is {:.0} MiB)",
                        size as f64 / MIB as f64
                    )));
                }
                let secs = item
                    .duration
                    .or_else(|| item.probed_ms.map(|ms| ms as f64 / 1000.0));
                if let Some(d) = secs
                    && (d <= 0.0 || d > rules::THREADS_VIDEO_MAX_SECS)
                {
                    return Err(what(format!(
                        "Threads videos last at most 5 minutes (this one lasts {d:.1} s)"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The media rules a Threads target's media must meet.
pub fn media_target(prepared: &Prepared) -> Option<rules::Target> {
    match MediaType::parse(&prepared.mode)? {
        MediaType::Text => None,
        MediaType::Image => Some(rules::Target::ThreadsImage),
        MediaType::Video => Some(rules::Target::ThreadsVideo),
        MediaType::Carousel => Some(rules::Target::ThreadsCarouselItem),
    }
}

/// Checks a Threads target without storing anything or calling Threads. The publishing limit
/// is the caller's.
pub async fn prepare(
    app: &App,
    workspace_id: &str,
    account: Account,
    post: &ThreadsPost,
) -> Result<Prepared, PublishError> {
    check_text(post)?;
    let mut resolved = Vec::with_capacity(post.items.len());
    for (i, item) in post.items.iter().enumerate() {
        if let Some(url) = &item.url {
            check_media_url("items", url)?;
        }
        resolved.push(resolve(app, workspace_id, item, i).await?);
    }
    check_media(post, &resolved)?;
    let urls: Vec<&str> = post.items.iter().filter_map(|i| i.url.as_deref()).collect();
    crate::pipeline::guard_media_urls(app, "items", &urls).await?;
    let mut options = post.clone();
    for (item, r) in options.items.iter_mut().zip(&resolved) {
        item.kind = Some(r.kind);
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
        caption: options.text.clone(),
        options: serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
    })
}

/// Checks one target of a composite post: the media type (inferred when not given: no media
/// is text, one image an image, one video a video, several a carousel), then [`prepare`].
pub async fn prepare_target(
    app: &App,
    workspace_id: &str,
    account: Account,
    input: &crate::pipeline::spec::TargetInput<'_>,
) -> Result<Prepared, PublishError> {
    let o = input.spec.threads.clone().unwrap_or_default();
    let media_type = o.media_type.unwrap_or(match input.kinds {
        [] => MediaType::Text,
        [Some(ItemKind::Video)] => MediaType::Video,
        [_] => MediaType::Image,
        _ => MediaType::Carousel,
    });
    let post = ThreadsPost::from_options(
        media_type,
        input.caption.to_string(),
        input.media.to_vec(),
        o,
    );
    prepare(app, workspace_id, account, &post).await
}

/// A post stored with a single Threads target, read back as its text, media and target.
pub fn single_as_spec(
    post: &Post,
    target: &Target,
) -> Option<(String, Vec<Item>, crate::pipeline::spec::TargetSpec)> {
    let stored: ThreadsPost = serde_json::from_str(target.options_or(post)).ok()?;
    let spec = crate::pipeline::spec::TargetSpec {
        account_id: target.account_id.clone(),
        threads: Some(stored.options()),
        ..Default::default()
    };
    Some((stored.text, stored.items, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_url(ext: &str, kind: ItemKind, size: Option<u64>, duration: Option<f64>) -> Resolved {
        Resolved {
            kind,
            stored: None,
            format: Some(format!("a .{ext} file")),
            container: Some(rules::container_of_extension(ext)),
            size,
            dims: None,
            duration,
            probed_ms: None,
        }
    }

    fn post(media_type: MediaType, text: &str) -> ThreadsPost {
        ThreadsPost {
            media_type,
            text: text.into(),
            ..ThreadsPost::default()
        }
    }

    #[test]
    fn text_counts_emojis_as_bytes_and_links_once() {
        assert_eq!(weighted_len("abc"), 3);
        assert_eq!(weighted_len("😀"), 4);
        assert_eq!(weighted_len("é"), 2);
        let ok = "a".repeat(496) + "😀";
        assert!(check_text(&post(MediaType::Text, &ok)).is_ok());
        let over = "a".repeat(497) + "😀";
        let err = check_text(&post(MediaType::Text, &over))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at most 500 characters") && err.contains("counts 501"),
            "{err}"
        );
        let five = "https://a.example https://b.example https://c.example https://d.example https://a.example";
        let mut p = post(MediaType::Text, five);
        p.link_attachment = Some("https://e.example".into());
        assert!(check_text(&p).is_ok(), "duplicates count once");
        p.text.push_str(" https://f.example");
        assert!(
            check_text(&p)
                .unwrap_err()
                .to_string()
                .contains("at most 5 links")
        );
        let mut image = post(MediaType::Image, "");
        image.link_attachment = Some("https://e.example".into());
        assert!(
            check_text(&image)
                .unwrap_err()
                .to_string()
                .contains("text posts only")
        );
        assert!(check_text(&post(MediaType::Text, "  ")).is_err());
    }

    #[test]
    fn media_rules_name_threads_limits() {
        use ItemKind::{Image, Video};
        let outcome =
            |t, items: Vec<Resolved>| check_media(&post(t, "x"), &items).map_err(|e| e.to_string());
        assert_eq!(
            outcome(MediaType::Image, vec![by_url("png", Image, None, None)]),
            Ok(())
        );
        assert_eq!(
            outcome(MediaType::Image, vec![by_url("webp", Image, None, None)]).unwrap_err(),
            "items: item 1: Threads takes JPEG or PNG images, not a .webp file"
        );
        assert!(
            outcome(
                MediaType::Image,
                vec![by_url("jpg", Image, Some(9 * MIB), None)]
            )
            .unwrap_err()
            .contains("at most 8 MiB")
        );
        assert_eq!(
            outcome(
                MediaType::Video,
                vec![by_url("mp4", Video, None, Some(300.0))]
            ),
            Ok(())
        );
        assert_eq!(
            outcome(
                MediaType::Video,
                vec![by_url("mp4", Video, None, Some(301.0))]
            )
            .unwrap_err(),
            "items: item 1: Threads videos last at most 5 minutes (this one lasts 301.0 s)"
        );
        assert!(
            outcome(
                MediaType::Video,
                vec![by_url("mp4", Video, Some(1025 * MIB), None)]
            )
            .unwrap_err()
            .contains("at most 1 GiB")
        );
        let one = vec![by_url("jpg", Image, None, None)];
        assert!(
            outcome(MediaType::Carousel, one)
                .unwrap_err()
                .contains("2 to 20")
        );
        let many: Vec<Resolved> = (0..21).map(|_| by_url("jpg", Image, None, None)).collect();
        assert!(
            outcome(MediaType::Carousel, many)
                .unwrap_err()
                .contains("this one has 21")
        );
        let mixed = vec![
            by_url("jpg", Image, None, None),
            by_url("mov", Video, None, Some(10.0)),
        ];
        assert_eq!(outcome(MediaType::Carousel, mixed), Ok(()));
    }
}
