//! The providers' media rules as pure functions over probed metadata ([`MediaInfo`]).
//!
//! [`check`] returns **every** broken rule at once, so a person fixes a file in one go instead
//! of uploading it once per rule. Each [`Violation`] has a stable rule id (`tiktok.video.codec`,
//! `instagram.image.aspect_ratio`, …) and a message that names the limit and the file's actual
//! value. [`advice`] returns the providers' *recommendations* a file misses (Instagram rescales
//! an image narrower than 320 px; a reel that is not 9:16 is letterboxed): worth showing,
//! never a reason to refuse.
//!
//! The numbers come from `../shared/providers/tiktok.md` (§3.5 photo restrictions, §5 video
//! constraints) and `../shared/providers/instagram.md` (§3.6 media requirements); each constant
//! cites its line. Sizes are binary (MiB/GiB): the emulator and Meta's own error text ("less
//! than 8 MiB") read them that way.
//!
//! ```ignore
//! use tidepost_app::media::rules::{self, CreatorLimits, Target};
//! let problems = rules::check(Target::TikTokVideo, &info, &CreatorLimits { max_video_post_duration_sec: Some(300) });
//! for v in &problems { println!("{}: {}", v.rule, v.message) }
//! ```

use serde::Serialize;

use super::probe::{MediaInfo, MediaKind};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

// tiktok.md §5 "Video constraints".
/// "Containers: MP4 (recommended), WebM, MOV".
pub const TIKTOK_VIDEO_CONTAINERS: &[&str] = &["mp4", "webm", "mov"];
/// "Codecs: H.264 (recommended), H.265/HEVC, VP8, VP9" (ffprobe's names).
pub const TIKTOK_VIDEO_CODECS: &[&str] = &["h264", "hevc", "vp8", "vp9"];
/// "File size: up to 4 GB" (the emulator enforces 4 GiB on `video_size`).
pub const TIKTOK_VIDEO_MAX_BYTES: u64 = 4 * GIB;
/// "Frame rate: 23–60 fps (→ frame_rate_check_failed)".
pub const TIKTOK_VIDEO_FPS: (f64, f64) = (23.0, 60.0);
/// "Picture size: min 360 px and max 4096 px on both height and width".
pub const TIKTOK_VIDEO_SIDE_PX: (u32, u32) = (360, 4096);
/// "Minimum duration 3 s".
pub const TIKTOK_VIDEO_MIN_SECS: f64 = 3.0;
/// "The longest video accepted by the Upload (inbox) init is 10 minutes": the ceiling when the
/// creator's own `max_video_post_duration_sec` is not known.
pub const TIKTOK_VIDEO_MAX_SECS: u32 = 600;
// tiktok.md §3.5 "Photo restrictions (confirmed, Media Transfer Guide)".
/// "formats WebP and JPEG only (no PNG)".
pub const TIKTOK_PHOTO_FORMATS: &[&str] = &["jpeg", "webp"];
/// "max 20 MB per image".
pub const TIKTOK_PHOTO_MAX_BYTES: u64 = 20 * MIB;
/// "max 1080p": read as at most 1920 px on the long side and 1080 px on the short side.
pub const TIKTOK_PHOTO_MAX_PX: (u32, u32) = (1920, 1080);

// instagram.md §3.6 "Media requirements".
/// "Images (feed / carousel image items): JPEG only".
pub const INSTAGRAM_IMAGE_FORMATS: &[&str] = &["jpeg"];
/// "max 8 MB" (Meta's error text: "It should be less than 8 MiB").
pub const INSTAGRAM_IMAGE_MAX_BYTES: u64 = 8 * MIB;
/// "aspect ratio between 4:5 and 1.91:1".
pub const INSTAGRAM_IMAGE_ASPECT: (f64, f64) = (0.8, 1.91);
/// "width 320–1440 px (smaller is scaled up, larger scaled down)": advice, not a refusal.
pub const INSTAGRAM_IMAGE_WIDTH_PX: (u32, u32) = (320, 1440);
/// "Reels video: container MOV or MP4".
pub const INSTAGRAM_VIDEO_CONTAINERS: &[&str] = &["mp4", "mov"];
/// "video codec HEVC or H264".
pub const INSTAGRAM_VIDEO_CODECS: &[&str] = &["h264", "hevc"];
/// "audio AAC".
pub const INSTAGRAM_AUDIO_CODECS: &[&str] = &["aac"];
/// "max 48 kHz".
pub const INSTAGRAM_AUDIO_MAX_HZ: u32 = 48_000;
/// "frame rate 23–60 FPS".
pub const INSTAGRAM_VIDEO_FPS: (f64, f64) = (23.0, 60.0);
/// "max width 1920 px".
pub const INSTAGRAM_VIDEO_MAX_WIDTH_PX: u32 = 1920;
/// "aspect ratio accepted range 0.01:1–10:1".
pub const INSTAGRAM_VIDEO_ASPECT: (f64, f64) = (0.01, 10.0);
/// "duration 3 s – 15 min".
pub const INSTAGRAM_REEL_SECS: (f64, f64) = (3.0, 900.0);
/// "max file size 300 MB … treat 300 MB as the safe limit".
pub const INSTAGRAM_REEL_MAX_BYTES: u64 = 300 * MIB;
/// "video bitrate VBR up to 25 Mbps (unconfirmed)": advice.
pub const INSTAGRAM_REEL_MAX_BITRATE: u64 = 25_000_000;
/// "recommended aspect 9:16 (1080x1920, min 540x960)": advice.
pub const INSTAGRAM_REEL_MIN_PX: (u32, u32) = (540, 960);
/// "Stories video: 3–60 s, max 100 MB".
pub const INSTAGRAM_STORY_SECS: (f64, f64) = (3.0, 60.0);
pub const INSTAGRAM_STORY_VIDEO_MAX_BYTES: u64 = 100 * MIB;
/// "Carousel video items: same codec rules, 3–60 s"; the size limit is the reel's.
pub const INSTAGRAM_CAROUSEL_VIDEO_SECS: (f64, f64) = (3.0, 60.0);

// threads.md §4 "Media specs".
/// "formats JPEG and PNG (officially supported; unlike Instagram which is JPEG-only)".
pub const THREADS_IMAGE_FORMATS: &[&str] = &["jpeg", "png"];
/// "max 8 MB".
pub const THREADS_IMAGE_MAX_BYTES: u64 = 8 * MIB;
/// "aspect ratio limit 10:1" (either way).
pub const THREADS_IMAGE_ASPECT: (f64, f64) = (0.1, 10.0);
/// "container MOV or MP4".
pub const THREADS_VIDEO_CONTAINERS: &[&str] = &["mp4", "mov"];
/// "video HEVC or H.264".
pub const THREADS_VIDEO_CODECS: &[&str] = &["h264", "hevc"];
/// "audio AAC, ≤48 kHz".
pub const THREADS_AUDIO_CODECS: &[&str] = &["aac"];
pub const THREADS_AUDIO_MAX_HZ: u32 = 48_000;
/// "23–60 FPS".
pub const THREADS_VIDEO_FPS: (f64, f64) = (23.0, 60.0);
/// "max 1920 px wide".
pub const THREADS_VIDEO_MAX_WIDTH_PX: u32 = 1920;
/// "aspect ratio between 0.01:1 and 10:1".
pub const THREADS_VIDEO_ASPECT: (f64, f64) = (0.01, 10.0);
/// "duration > 0 s and ≤ 300 s (5 min)".
pub const THREADS_VIDEO_MAX_SECS: f64 = 300.0;
/// "file ≤ 1 GB".
pub const THREADS_VIDEO_MAX_BYTES: u64 = GIB;
/// "Carousel 2–20 children".
pub const THREADS_CAROUSEL_ITEMS: (usize, usize) = (2, 20);

/// The container a media type names, as the rules name them: `image/jpeg` → `jpeg`,
/// `video/mp4` → `mp4`, `video/quicktime` → `mov`; any other type → its subtype
/// (`image/png` → `png`), which the rules then accept or not.
pub fn container_of_type(media_type: &str) -> String {
    match media_type {
        "image/jpeg" => "jpeg".into(),
        "video/mp4" => "mp4".into(),
        "video/quicktime" => "mov".into(),
        other => other.rsplit('/').next().unwrap_or(other).to_string(),
    }
}

/// The container a file extension names, as the rules name them: `jpg`/`jpeg` → `jpeg`,
/// `mp4`/`m4v` → `mp4` (an M4V is an MPEG-4 file), any other → itself, lowercased.
pub fn container_of_extension(extension: &str) -> String {
    let ext = extension.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "jpeg".into(),
        "m4v" | "mp4" => "mp4".into(),
        _ => ext,
    }
}

/// What a media file is for: one platform and one way of posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A TikTok video (direct post or inbox upload).
    TikTokVideo,
    /// One image of a TikTok photo post.
    TikTokPhoto,
    /// An Instagram feed image.
    InstagramImage,
    InstagramReel,
    /// An Instagram story: an image or a video.
    InstagramStory,
    /// One item of an Instagram carousel: an image or a video.
    InstagramCarouselItem,
    /// A Threads image post.
    ThreadsImage,
    /// A Threads video post.
    ThreadsVideo,
    /// One item of a Threads carousel: an image or a video.
    ThreadsCarouselItem,
}

impl Target {
    /// How the target reads in a message: "a TikTok video", "an Instagram reel".
    pub fn label(self) -> &'static str {
        match self {
            Target::TikTokVideo => "a TikTok video",
            Target::TikTokPhoto => "a TikTok photo",
            Target::InstagramImage => "an Instagram image",
            Target::InstagramReel => "an Instagram reel",
            Target::InstagramStory => "an Instagram story",
            Target::InstagramCarouselItem => "an Instagram carousel item",
            Target::ThreadsImage => "a Threads image",
            Target::ThreadsVideo => "a Threads video",
            Target::ThreadsCarouselItem => "a Threads carousel item",
        }
    }
}

/// What is known of the creator the media goes to (TikTok's `creator_info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatorLimits {
    /// `max_video_post_duration_sec` from TikTok's creator_info; `None` when unknown (then the
    /// 10-minute ceiling of inbox uploads applies).
    pub max_video_post_duration_sec: Option<u32>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable id: `<platform>.<kind>.<rule>`, e.g. `instagram.reel.duration`.
    pub rule: &'static str,
    /// For people: names the limit and the file's value.
    pub message: String,
}

impl Violation {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

/// Every rule of `target` that `info` breaks; empty when the file may be published there.
pub fn check(target: Target, info: &MediaInfo, limits: &CreatorLimits) -> Vec<Violation> {
    let mut out = Vec::new();
    match target {
        Target::TikTokVideo => tiktok_video(info, limits, &mut out),
        Target::TikTokPhoto => tiktok_photo(info, &mut out),
        Target::InstagramImage => instagram_image(info, "instagram.image", true, &mut out),
        Target::InstagramReel => instagram_video(info, VideoUse::Reel, &mut out),
        Target::InstagramStory => match info.kind {
            MediaKind::Image => instagram_image(info, "instagram.story", false, &mut out),
            MediaKind::Video => instagram_video(info, VideoUse::Story, &mut out),
        },
        Target::InstagramCarouselItem => match info.kind {
            MediaKind::Image => instagram_image(info, "instagram.carousel", true, &mut out),
            MediaKind::Video => instagram_video(info, VideoUse::CarouselItem, &mut out),
        },
        Target::ThreadsImage => threads_image(info, &mut out),
        Target::ThreadsVideo => threads_video(info, &mut out),
        Target::ThreadsCarouselItem => match info.kind {
            MediaKind::Image => threads_image(info, &mut out),
            MediaKind::Video => threads_video(info, &mut out),
        },
    }
    out
}

/// Threads images: JPEG or PNG, up to 8 MiB, an aspect ratio within 10:1 either way.
fn threads_image(info: &MediaInfo, out: &mut Vec<Violation>) {
    if info.kind != MediaKind::Image {
        out.push(not_a(Target::ThreadsImage, "threads.image.kind", info));
        return;
    }
    if !THREADS_IMAGE_FORMATS.contains(&info.container.as_str()) {
        out.push(Violation::new(
            "threads.image.format",
            format!(
                "Threads takes JPEG or PNG images (this one is {})",
                info.container.to_ascii_uppercase()
            ),
        ));
    }
    max_size("threads.image.size", THREADS_IMAGE_MAX_BYTES, info, out);
    if let Some(r) = info.aspect_ratio() {
        let (lo, hi) = THREADS_IMAGE_ASPECT;
        if r < lo - 1e-3 || r > hi + 1e-3 {
            out.push(Violation::new(
                "threads.image.aspect_ratio",
                format!(
                    "Threads images have an aspect ratio within 10:1 either way (this one is {}x{}, {r:.2})",
                    info.width.unwrap_or(0),
                    info.height.unwrap_or(0)
                ),
            ));
        }
    }
}

/// Threads videos: MP4 or MOV, H.264 or HEVC, AAC audio, up to 5 minutes and 1 GiB, 23–60 FPS,
/// at most 1920 px wide, an aspect ratio from 0.01:1 to 10:1.
fn threads_video(info: &MediaInfo, out: &mut Vec<Violation>) {
    if info.kind != MediaKind::Video {
        out.push(not_a(Target::ThreadsVideo, "threads.video.kind", info));
        return;
    }
    container(
        "threads.video.container",
        "Threads takes MP4 or MOV videos",
        THREADS_VIDEO_CONTAINERS,
        info,
        out,
    );
    codec(
        "threads.video.codec",
        "Threads takes H.264 or HEVC video",
        THREADS_VIDEO_CODECS,
        info,
        out,
    );
    if let Some(a) = &info.audio_codec
        && !THREADS_AUDIO_CODECS.contains(&a.as_str())
    {
        out.push(Violation::new(
            "threads.video.audio",
            format!("Threads takes AAC audio (this video's audio is {a})"),
        ));
    } else if let Some(hz) = info.audio_sample_rate
        && hz > THREADS_AUDIO_MAX_HZ
    {
        out.push(Violation::new(
            "threads.video.audio",
            format!("Threads takes audio up to 48 kHz (this video's is {hz} Hz)"),
        ));
    }
    max_size("threads.video.size", THREADS_VIDEO_MAX_BYTES, info, out);
    match info.duration_secs {
        None => out.push(Violation::new(
            "threads.video.duration",
            "the video's duration could not be read",
        )),
        Some(d) if d <= 0.0 || d > THREADS_VIDEO_MAX_SECS + 0.5 => out.push(Violation::new(
            "threads.video.duration",
            format!(
                "Threads videos last at most {} (this one lasts {})",
                clock(THREADS_VIDEO_MAX_SECS),
                clock(d)
            ),
        )),
        Some(_) => {}
    }
    frame_rate("threads.video.frame_rate", THREADS_VIDEO_FPS, info, out);
    if let Some(w) = info.width
        && w > THREADS_VIDEO_MAX_WIDTH_PX
    {
        out.push(Violation::new(
            "threads.video.width",
            format!("Threads videos are at most 1920 px wide (this one is {w} px)"),
        ));
    }
    if let Some(ratio) = info.aspect_ratio()
        && !(THREADS_VIDEO_ASPECT.0..=THREADS_VIDEO_ASPECT.1).contains(&ratio)
    {
        out.push(Violation::new(
            "threads.video.aspect_ratio",
            format!(
                "Threads videos have an aspect ratio from 0.01:1 to 10:1 (this one is {ratio:.2}:1)"
            ),
        ));
    }
}

/// The recommendations of `target` that `info` misses: shown beside the file, never blocking.
pub fn advice(target: Target, info: &MediaInfo) -> Vec<Violation> {
    let mut out = Vec::new();
    let is_image = info.kind == MediaKind::Image;
    if is_image
        && matches!(
            target,
            Target::InstagramImage | Target::InstagramCarouselItem
        )
        && let Some(w) = info.width
        && !(INSTAGRAM_IMAGE_WIDTH_PX.0..=INSTAGRAM_IMAGE_WIDTH_PX.1).contains(&w)
    {
        out.push(Violation::new(
            "instagram.image.width",
            format!(
                "Instagram shows images {}–{} px wide and rescales others (this one is {w} px wide)",
                INSTAGRAM_IMAGE_WIDTH_PX.0, INSTAGRAM_IMAGE_WIDTH_PX.1
            ),
        ));
    }
    if !is_image && target == Target::InstagramReel {
        if let (Some(w), Some(h)) = (info.width, info.height)
            && (w < INSTAGRAM_REEL_MIN_PX.0 || h < INSTAGRAM_REEL_MIN_PX.1)
        {
            out.push(Violation::new(
                "instagram.reel.resolution",
                format!(
                    "reels look best at 1080x1920 and at least {}x{} (this one is {w}x{h})",
                    INSTAGRAM_REEL_MIN_PX.0, INSTAGRAM_REEL_MIN_PX.1
                ),
            ));
        }
        if let Some(r) = info.aspect_ratio()
            && (r - 9.0 / 16.0).abs() > 0.01
        {
            out.push(Violation::new(
                "instagram.reel.aspect_ratio",
                format!("reels are shown 9:16 (0.56); this one is {r:.2} and will be letterboxed"),
            ));
        }
        if let Some(b) = info.bit_rate
            && b > INSTAGRAM_REEL_MAX_BITRATE
        {
            out.push(Violation::new(
                "instagram.reel.bitrate",
                format!(
                    "Instagram recommends at most 25 Mbps (this one is {:.1} Mbps)",
                    b as f64 / 1e6
                ),
            ));
        }
    }
    if !is_image
        && target == Target::TikTokVideo
        && let Some(a) = &info.audio_codec
        && a != "aac"
    {
        out.push(Violation::new(
            "tiktok.video.audio_codec",
            format!("TikTok recommends AAC audio (this one is {a})"),
        ));
    }
    out
}

fn tiktok_video(info: &MediaInfo, limits: &CreatorLimits, out: &mut Vec<Violation>) {
    if info.kind != MediaKind::Video {
        out.push(not_a(Target::TikTokVideo, "tiktok.video.kind", info));
        return;
    }
    container(
        "tiktok.video.container",
        "TikTok takes MP4, MOV or WebM videos",
        TIKTOK_VIDEO_CONTAINERS,
        info,
        out,
    );
    codec(
        "tiktok.video.codec",
        "TikTok takes H.264, H.265, VP8 or VP9 video",
        TIKTOK_VIDEO_CODECS,
        info,
        out,
    );
    max_size("tiktok.video.size", TIKTOK_VIDEO_MAX_BYTES, info, out);
    let max = limits
        .max_video_post_duration_sec
        .unwrap_or(TIKTOK_VIDEO_MAX_SECS);
    let whose = if limits.max_video_post_duration_sec.is_some() {
        "this creator's TikTok limit"
    } else {
        "TikTok's limit for uploads"
    };
    match info.duration_secs {
        None => out.push(Violation::new(
            "tiktok.video.duration",
            "the video's duration could not be read",
        )),
        Some(d) if d < TIKTOK_VIDEO_MIN_SECS => out.push(Violation::new(
            "tiktok.video.duration",
            format!(
                "TikTok videos last at least 3 seconds (this one lasts {})",
                clock(d)
            ),
        )),
        Some(d) if d > f64::from(max) + 0.5 => out.push(Violation::new(
            "tiktok.video.duration",
            format!(
                "{whose} is {} (this video lasts {})",
                clock(f64::from(max)),
                clock(d)
            ),
        )),
        Some(_) => {}
    }
    frame_rate("tiktok.video.frame_rate", TIKTOK_VIDEO_FPS, info, out);
    if let (Some(w), Some(h)) = (info.width, info.height) {
        let (lo, hi) = TIKTOK_VIDEO_SIDE_PX;
        if w < lo || h < lo || w > hi || h > hi {
            out.push(Violation::new(
                "tiktok.video.resolution",
                format!("TikTok takes videos {lo} to {hi} px wide and high (this one is {w}x{h})"),
            ));
        }
    } else {
        out.push(Violation::new(
            "tiktok.video.resolution",
            "the video's picture size could not be read",
        ));
    }
}

fn tiktok_photo(info: &MediaInfo, out: &mut Vec<Violation>) {
    if info.kind != MediaKind::Image {
        out.push(not_a(Target::TikTokPhoto, "tiktok.photo.kind", info));
        return;
    }
    if !TIKTOK_PHOTO_FORMATS.contains(&info.container.as_str()) {
        out.push(Violation::new(
            "tiktok.photo.format",
            format!(
                "TikTok photos are JPEG or WebP (this one is {})",
                info.container.to_ascii_uppercase()
            ),
        ));
    }
    max_size("tiktok.photo.size", TIKTOK_PHOTO_MAX_BYTES, info, out);
    if let (Some(w), Some(h)) = (info.width, info.height) {
        let (long, short) = (w.max(h), w.min(h));
        if long > TIKTOK_PHOTO_MAX_PX.0 || short > TIKTOK_PHOTO_MAX_PX.1 {
            out.push(Violation::new(
                "tiktok.photo.resolution",
                format!(
                    "TikTok photos are at most 1080p ({}x{} either way; this one is {w}x{h})",
                    TIKTOK_PHOTO_MAX_PX.0, TIKTOK_PHOTO_MAX_PX.1
                ),
            ));
        }
    }
}

/// Instagram images: feed images, carousel images (with the aspect ratio rule) and story
/// images (without: stories are full screen).
fn instagram_image(info: &MediaInfo, prefix: &'static str, aspect: bool, out: &mut Vec<Violation>) {
    let (kind_rule, format_rule, size_rule, aspect_rule) = match prefix {
        "instagram.story" => (
            "instagram.story.kind",
            "instagram.story.format",
            "instagram.story.size",
            "instagram.story.aspect_ratio",
        ),
        "instagram.carousel" => (
            "instagram.carousel.kind",
            "instagram.carousel.format",
            "instagram.carousel.size",
            "instagram.carousel.aspect_ratio",
        ),
        _ => (
            "instagram.image.kind",
            "instagram.image.format",
            "instagram.image.size",
            "instagram.image.aspect_ratio",
        ),
    };
    if info.kind != MediaKind::Image {
        out.push(not_a(Target::InstagramImage, kind_rule, info));
        return;
    }
    if !INSTAGRAM_IMAGE_FORMATS.contains(&info.container.as_str()) {
        out.push(Violation::new(
            format_rule,
            format!(
                "Instagram only takes JPEG images (this one is {})",
                info.container.to_ascii_uppercase()
            ),
        ));
    }
    max_size(size_rule, INSTAGRAM_IMAGE_MAX_BYTES, info, out);
    if aspect && let Some(r) = info.aspect_ratio() {
        let (lo, hi) = INSTAGRAM_IMAGE_ASPECT;
        if r < lo - 1e-3 || r > hi + 1e-3 {
            out.push(Violation::new(
                aspect_rule,
                format!(
                    "Instagram images have an aspect ratio from 4:5 (0.8) to 1.91:1 (this one is {}x{}, {r:.2})",
                    info.width.unwrap_or(0),
                    info.height.unwrap_or(0)
                ),
            ));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum VideoUse {
    Reel,
    Story,
    CarouselItem,
}

fn instagram_video(info: &MediaInfo, usage: VideoUse, out: &mut Vec<Violation>) {
    struct Rules {
        kind: &'static str,
        container: &'static str,
        codec: &'static str,
        audio: &'static str,
        size: &'static str,
        duration: &'static str,
        frame_rate: &'static str,
        width: &'static str,
        aspect: &'static str,
    }
    let (r, secs, max_bytes, what) = match usage {
        VideoUse::Reel => (
            Rules {
                kind: "instagram.reel.kind",
                container: "instagram.reel.container",
                codec: "instagram.reel.codec",
                audio: "instagram.reel.audio",
                size: "instagram.reel.size",
                duration: "instagram.reel.duration",
                frame_rate: "instagram.reel.frame_rate",
                width: "instagram.reel.width",
                aspect: "instagram.reel.aspect_ratio",
            },
            INSTAGRAM_REEL_SECS,
            INSTAGRAM_REEL_MAX_BYTES,
            "reels",
        ),
        VideoUse::Story => (
            Rules {
                kind: "instagram.story.kind",
                container: "instagram.story.container",
                codec: "instagram.story.codec",
                audio: "instagram.story.audio",
                size: "instagram.story.size",
                duration: "instagram.story.duration",
                frame_rate: "instagram.story.frame_rate",
                width: "instagram.story.width",
                aspect: "instagram.story.aspect_ratio",
            },
            INSTAGRAM_STORY_SECS,
            INSTAGRAM_STORY_VIDEO_MAX_BYTES,
            "story videos",
        ),
        VideoUse::CarouselItem => (
            Rules {
                kind: "instagram.carousel.kind",
                container: "instagram.carousel.container",
                codec: "instagram.carousel.codec",
                audio: "instagram.carousel.audio",
                size: "instagram.carousel.size",
                duration: "instagram.carousel.duration",
                frame_rate: "instagram.carousel.frame_rate",
                width: "instagram.carousel.width",
                aspect: "instagram.carousel.aspect_ratio",
            },
            INSTAGRAM_CAROUSEL_VIDEO_SECS,
            INSTAGRAM_REEL_MAX_BYTES,
            "carousel videos",
        ),
    };
    if info.kind != MediaKind::Video {
        out.push(not_a(Target::InstagramReel, r.kind, info));
        return;
    }
    container(
        r.container,
        "Instagram takes MP4 or MOV videos",
        INSTAGRAM_VIDEO_CONTAINERS,
        info,
        out,
    );
    codec(
        r.codec,
        "Instagram takes H.264 or HEVC video",
        INSTAGRAM_VIDEO_CODECS,
        info,
        out,
    );
    if let Some(a) = &info.audio_codec
        && !INSTAGRAM_AUDIO_CODECS.contains(&a.as_str())
    {
        out.push(Violation::new(
            r.audio,
            format!("Instagram takes AAC audio (this video's audio is {a})"),
        ));
    } else if let Some(hz) = info.audio_sample_rate
        && hz > INSTAGRAM_AUDIO_MAX_HZ
    {
        out.push(Violation::new(
            r.audio,
            format!("Instagram takes audio up to 48 kHz (this video's is {hz} Hz)"),
        ));
    }
    max_size(r.size, max_bytes, info, out);
    match info.duration_secs {
        None => out.push(Violation::new(
            r.duration,
            "the video's duration could not be read",
        )),
        Some(d) if d < secs.0 || d > secs.1 + 0.5 => out.push(Violation::new(
            r.duration,
            format!(
                "Instagram {what} last {} to {} (this one lasts {})",
                clock(secs.0),
                clock(secs.1),
                clock(d)
            ),
        )),
        Some(_) => {}
    }
    frame_rate(r.frame_rate, INSTAGRAM_VIDEO_FPS, info, out);
    if let Some(w) = info.width
        && w > INSTAGRAM_VIDEO_MAX_WIDTH_PX
    {
        out.push(Violation::new(
            r.width,
            format!("Instagram videos are at most 1920 px wide (this one is {w} px)"),
        ));
    }
    if let Some(ratio) = info.aspect_ratio()
        && !(INSTAGRAM_VIDEO_ASPECT.0..=INSTAGRAM_VIDEO_ASPECT.1).contains(&ratio)
    {
        out.push(Violation::new(
            r.aspect,
            format!("Instagram videos have an aspect ratio from 0.01:1 to 10:1 (this one is {ratio:.2}:1)"),
        ));
    }
}

fn not_a(target: Target, rule: &'static str, info: &MediaInfo) -> Violation {
    let wanted = match target {
        Target::TikTokVideo | Target::InstagramReel | Target::ThreadsVideo => "a video",
        Target::ThreadsCarouselItem => "an image or a video",
        Target::TikTokPhoto
        | Target::InstagramImage
        | Target::InstagramStory
        | Target::InstagramCarouselItem
        | Target::ThreadsImage => "an image",
    };
    Violation::new(
        rule,
        format!(
            "{} must be {wanted} (this file is {} {})",
            capitalize(target.label()),
            if info.kind == MediaKind::Image {
                "an image,"
            } else {
                "a video,"
            },
            info.container.to_ascii_uppercase()
        ),
    )
}

fn container(
    rule: &'static str,
    what: &str,
    allowed: &[&str],
    info: &MediaInfo,
    out: &mut Vec<Violation>,
) {
    if !allowed.contains(&info.container.as_str()) {
        out.push(Violation::new(
            rule,
            format!(
                "{what} (this one is {})",
                info.container.to_ascii_uppercase()
            ),
        ));
    }
}

fn codec(
    rule: &'static str,
    what: &str,
    allowed: &[&str],
    info: &MediaInfo,
    out: &mut Vec<Violation>,
) {
    match info.video_codec.as_deref() {
        Some(c) if allowed.contains(&c) => {}
        Some(c) => out.push(Violation::new(rule, format!("{what} (this one is {c})"))),
        None => out.push(Violation::new(
            rule,
            format!("{what} (this one's codec could not be read)"),
        )),
    }
}

fn max_size(rule: &'static str, max: u64, info: &MediaInfo, out: &mut Vec<Violation>) {
    if info.size_bytes > max {
        out.push(Violation::new(
            rule,
            format!(
                "the limit is {} (this file is {})",
                bytes(max),
                bytes(info.size_bytes)
            ),
        ));
    }
}

fn frame_rate(
    rule: &'static str,
    (lo, hi): (f64, f64),
    info: &MediaInfo,
    out: &mut Vec<Violation>,
) {
    if let Some(fps) = info.frame_rate
        && (fps < lo - 0.05 || fps > hi + 0.05)
    {
        out.push(Violation::new(
            rule,
            format!("the frame rate must be {lo:.0} to {hi:.0} fps (this video has {fps:.2} fps)"),
        ));
    }
}

/// `8 MiB`, `4 GiB`, `1.5 MiB`, `900 bytes`.
pub fn bytes(n: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (1024, "KiB")];
    for (size, unit) in units {
        if n >= size {
            let v = n as f64 / size as f64;
            return if (v - v.round()).abs() < 0.05 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

/// `3 s`, `1 min 30 s`, `15 min`.
fn clock(secs: f64) -> String {
    if secs < 60.0 {
        return if (secs - secs.round()).abs() < 0.05 {
            format!("{secs:.0} s")
        } else {
            format!("{secs:.1} s")
        };
    }
    let total = secs.round() as u64;
    match (total / 60, total % 60) {
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(container: &str, codec: &str, w: u32, h: u32, secs: f64) -> MediaInfo {
        MediaInfo {
            kind: MediaKind::Video,
            container: container.into(),
            mime: "video/mp4".into(),
            size_bytes: 10 * MIB,
            width: Some(w),
            height: Some(h),
            duration_secs: Some(secs),
            video_codec: Some(codec.into()),
            audio_codec: Some("aac".into()),
            audio_sample_rate: Some(44_100),
            frame_rate: Some(30.0),
            bit_rate: Some(4_000_000),
        }
    }

    fn image(format: &str, w: u32, h: u32, size: u64) -> MediaInfo {
        MediaInfo {
            kind: MediaKind::Image,
            container: format.into(),
            mime: format!("image/{format}"),
            size_bytes: size,
            width: Some(w),
            height: Some(h),
            duration_secs: None,
            video_codec: None,
            audio_codec: None,
            audio_sample_rate: None,
            frame_rate: None,
            bit_rate: None,
        }
    }

    fn rules(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    const NONE: CreatorLimits = CreatorLimits {
        max_video_post_duration_sec: None,
    };

    #[test]
    fn a_good_tiktok_video_passes() {
        let v = check(
            Target::TikTokVideo,
            &video("mp4", "h264", 1080, 1920, 30.0),
            &NONE,
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn tiktok_video_reports_every_broken_rule_at_once() {
        let mut info = video("mkv", "av1", 200, 5000, 2.0);
        info.size_bytes = 5 * GIB;
        info.frame_rate = Some(15.0);
        let v = check(Target::TikTokVideo, &info, &NONE);
        assert_eq!(
            rules(&v),
            [
                "tiktok.video.container",
                "tiktok.video.codec",
                "tiktok.video.size",
                "tiktok.video.duration",
                "tiktok.video.frame_rate",
                "tiktok.video.resolution",
            ]
        );
        assert!(v[0].message.contains("MKV"), "{}", v[0].message);
        assert!(v[1].message.contains("av1"), "{}", v[1].message);
        assert!(v[2].message.contains("4 GiB") && v[2].message.contains("5 GiB"));
        assert!(v[3].message.contains("3 seconds") && v[3].message.contains("2 s"));
        assert!(v[4].message.contains("23 to 60") && v[4].message.contains("15.00"));
        assert!(v[5].message.contains("200x5000"));
    }

    #[test]
    fn tiktok_duration_follows_the_creator() {
        let info = video("webm", "vp9", 720, 1280, 301.0);
        let v = check(
            Target::TikTokVideo,
            &info,
            &CreatorLimits {
                max_video_post_duration_sec: Some(300),
            },
        );
        assert_eq!(rules(&v), ["tiktok.video.duration"]);
        assert!(
            v[0].message.contains("creator's TikTok limit is 5 min"),
            "{}",
            v[0].message
        );
        assert!(v[0].message.contains("5 min 1 s"), "{}", v[0].message);
        assert!(check(Target::TikTokVideo, &info, &NONE).is_empty());
        let long = video("mov", "hevc", 720, 1280, 601.0);
        assert_eq!(
            rules(&check(Target::TikTokVideo, &long, &NONE)),
            ["tiktok.video.duration"]
        );
    }

    #[test]
    fn tiktok_video_must_be_a_video() {
        let v = check(Target::TikTokVideo, &image("jpeg", 1080, 1080, MIB), &NONE);
        assert_eq!(rules(&v), ["tiktok.video.kind"]);
        assert!(v[0].message.contains("must be a video"), "{}", v[0].message);
    }

    #[test]
    fn tiktok_photo_rules() {
        assert!(check(Target::TikTokPhoto, &image("webp", 1080, 1920, MIB), &NONE).is_empty());
        let v = check(
            Target::TikTokPhoto,
            &image("png", 4000, 3000, 21 * MIB),
            &NONE,
        );
        assert_eq!(
            rules(&v),
            [
                "tiktok.photo.format",
                "tiktok.photo.size",
                "tiktok.photo.resolution"
            ]
        );
        assert!(v[0].message.contains("PNG"));
        assert!(v[1].message.contains("20 MiB") && v[1].message.contains("21 MiB"));
        assert!(v[2].message.contains("4000x3000"));
        let v = check(
            Target::TikTokPhoto,
            &video("mp4", "h264", 1080, 1920, 10.0),
            &NONE,
        );
        assert_eq!(rules(&v), ["tiktok.photo.kind"]);
    }

    #[test]
    fn instagram_image_rules() {
        assert!(
            check(
                Target::InstagramImage,
                &image("jpeg", 1080, 1350, MIB),
                &NONE
            )
            .is_empty()
        );
        assert!(
            check(
                Target::InstagramImage,
                &image("jpeg", 1080, 566, MIB),
                &NONE
            )
            .is_empty()
        );
        let v = check(
            Target::InstagramImage,
            &image("webp", 1000, 2000, 9 * MIB),
            &NONE,
        );
        assert_eq!(
            rules(&v),
            [
                "instagram.image.format",
                "instagram.image.size",
                "instagram.image.aspect_ratio"
            ]
        );
        assert!(v[0].message.contains("WEBP"));
        assert!(v[1].message.contains("8 MiB") && v[1].message.contains("9 MiB"));
        assert!(v[2].message.contains("1000x2000") && v[2].message.contains("0.50"));
        let wide = check(
            Target::InstagramImage,
            &image("jpeg", 2000, 1000, MIB),
            &NONE,
        );
        assert_eq!(rules(&wide), ["instagram.image.aspect_ratio"]);
        // Width outside 320–1440 is rescaled by Instagram: advice, not a refusal.
        let narrow = image("jpeg", 300, 300, MIB);
        assert!(check(Target::InstagramImage, &narrow, &NONE).is_empty());
        assert_eq!(
            rules(&advice(Target::InstagramImage, &narrow)),
            ["instagram.image.width"]
        );
    }

    #[test]
    fn instagram_reel_rules() {
        let good = video("mov", "hevc", 1080, 1920, 60.0);
        assert!(check(Target::InstagramReel, &good, &NONE).is_empty());
        assert!(advice(Target::InstagramReel, &good).is_empty());
        let mut bad = video("webm", "vp9", 2160, 3840, 901.0);
        bad.audio_codec = Some("opus".into());
        bad.size_bytes = 301 * MIB;
        bad.frame_rate = Some(120.0);
        let v = check(Target::InstagramReel, &bad, &NONE);
        assert_eq!(
            rules(&v),
            [
                "instagram.reel.container",
                "instagram.reel.codec",
                "instagram.reel.audio",
                "instagram.reel.size",
                "instagram.reel.duration",
                "instagram.reel.frame_rate",
                "instagram.reel.width",
            ]
        );
        assert!(v[4].message.contains("3 s to 15 min") && v[4].message.contains("15 min 1 s"));
        let mut loud = video("mp4", "h264", 1080, 1920, 10.0);
        loud.audio_sample_rate = Some(96_000);
        assert_eq!(
            rules(&check(Target::InstagramReel, &loud, &NONE)),
            ["instagram.reel.audio"]
        );
        let short = video("mp4", "h264", 1080, 1920, 2.0);
        assert_eq!(
            rules(&check(Target::InstagramReel, &short, &NONE)),
            ["instagram.reel.duration"]
        );
        let square = video("mp4", "h264", 480, 480, 10.0);
        assert_eq!(
            rules(&advice(Target::InstagramReel, &square)),
            ["instagram.reel.resolution", "instagram.reel.aspect_ratio"]
        );
        let thin = video("mp4", "h264", 10, 1920, 10.0);
        assert_eq!(
            rules(&check(Target::InstagramReel, &thin, &NONE)),
            ["instagram.reel.aspect_ratio"]
        );
        assert_eq!(
            rules(&check(
                Target::InstagramReel,
                &image("jpeg", 1080, 1920, MIB),
                &NONE
            )),
            ["instagram.reel.kind"]
        );
    }

    #[test]
    fn instagram_story_rules() {
        // Stories are full screen: a 9:16 image has no aspect problem.
        assert!(
            check(
                Target::InstagramStory,
                &image("jpeg", 1080, 1920, MIB),
                &NONE
            )
            .is_empty()
        );
        assert_eq!(
            rules(&check(
                Target::InstagramStory,
                &image("png", 1080, 1920, MIB),
                &NONE
            )),
            ["instagram.story.format"]
        );
        let mut long = video("mp4", "h264", 1080, 1920, 61.0);
        long.size_bytes = 101 * MIB;
        assert_eq!(
            rules(&check(Target::InstagramStory, &long, &NONE)),
            ["instagram.story.size", "instagram.story.duration"]
        );
    }

    #[test]
    fn instagram_carousel_items() {
        assert!(
            check(
                Target::InstagramCarouselItem,
                &image("jpeg", 1080, 1080, MIB),
                &NONE
            )
            .is_empty()
        );
        assert_eq!(
            rules(&check(
                Target::InstagramCarouselItem,
                &image("jpeg", 1080, 2000, MIB),
                &NONE
            )),
            ["instagram.carousel.aspect_ratio"]
        );
        assert_eq!(
            rules(&check(
                Target::InstagramCarouselItem,
                &video("mp4", "h264", 1080, 1080, 61.0),
                &NONE
            )),
            ["instagram.carousel.duration"]
        );
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(8 * MIB), "8 MiB");
        assert_eq!(bytes(MIB + MIB / 2), "1.5 MiB");
        assert_eq!(bytes(900), "900 bytes");
        assert_eq!(clock(2.0), "2 s");
        assert_eq!(clock(900.0), "15 min");
        assert_eq!(clock(61.0), "1 min 1 s");
        assert_eq!(container_of_type("image/jpeg"), "jpeg");
        assert_eq!(container_of_type("video/quicktime"), "mov");
        assert_eq!(container_of_type("video/x-m4v"), "x-m4v");
        assert_eq!(container_of_extension("JPG"), "jpeg");
        assert_eq!(container_of_extension("m4v"), "mp4");
        assert_eq!(container_of_extension("webm"), "webm");
    }
}
