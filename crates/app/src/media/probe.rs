//! What a media file is, read from its bytes — never from its name or the content type a client
//! claimed. Images are sniffed with `imagesize` (format from the magic bytes, pixel size from
//! the headers); anything else goes to `ffprobe` (Debian's `ffmpeg` package), run as a
//! subprocess with a timeout and `-print_format json`, which reports the container, the
//! streams' codecs, duration, pixel size, frame rate and bit rate.
//!
//! The result, [`MediaInfo`], is stored as JSON on the media row and is what
//! [`super::rules`] checks.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

/// `video` or `image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Video,
    Image,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "video" => Some(MediaKind::Video),
            "image" => Some(MediaKind::Image),
            _ => None,
        }
    }
}

/// What probing found in a file. Fields a format does not have (an image's duration, a silent
/// video's audio codec) are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub kind: MediaKind,
    /// The container or image format, normalised: `mp4`, `mov`, `webm`, `mkv`, `avi`, … for
    /// videos; `jpeg`, `webp`, `png`, `gif`, `heif`, … for images.
    pub container: String,
    /// The MIME type that matches `container` (what the bytes are, not what was claimed).
    pub mime: String,
    pub size_bytes: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_secs: Option<f64>,
    /// ffprobe's codec name of the first video stream: `h264`, `hevc`, `vp8`, `vp9`, `av1`, …
    pub video_codec: Option<String>,
    /// ffprobe's codec name of the first audio stream: `aac`, `opus`, `mp3`, …
    pub audio_codec: Option<String>,
    pub audio_sample_rate: Option<u32>,
    /// Frames per second of the first video stream.
    pub frame_rate: Option<f64>,
    /// The whole file's bit rate, bits per second.
    pub bit_rate: Option<u64>,
}

impl MediaInfo {
    /// Width ÷ height, when both are known and non-zero.
    pub fn aspect_ratio(&self) -> Option<f64> {
        match (self.width, self.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Some(f64::from(w) / f64::from(h)),
            _ => None,
        }
    }
}

/// Why a file could not be probed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// ffprobe is not installed (or not where `ffprobe_path` says): an operator problem.
    #[error(
        "ffprobe is not available ({0}); install ffmpeg (Debian: apt-get install ffmpeg) or set TIDEPOST_FFPROBE_PATH"
    )]
    ToolMissing(String),
    #[error("ffprobe took longer than {0} seconds")]
    Timeout(u64),
    /// The bytes are neither an image nor a video ffprobe can read.
    #[error("{0}")]
    Unreadable(String),
}

/// How to run ffprobe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prober {
    pub ffprobe: String,
    pub timeout: Duration,
}

impl Default for Prober {
    fn default() -> Self {
        Self {
            ffprobe: "ffprobe".into(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Prober {
    /// Whether ffprobe runs at all (`ffprobe -version`), for readiness checks and a clear
    /// error before a large upload starts.
    pub async fn check(&self) -> Result<String, ProbeError> {
        let output = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::process::Command::new(&self.ffprobe)
                .arg("-version")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| ProbeError::Timeout(10))?
        .map_err(|e| ProbeError::ToolMissing(format!("{}: {e}", self.ffprobe)))?;
        if !output.status.success() {
            return Err(ProbeError::ToolMissing(format!(
                "{} -version exited with {}",
                self.ffprobe, output.status
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.lines().next().unwrap_or_default().to_string())
    }

    /// Probes the file at `path`: images by their headers, everything else with ffprobe.
    pub async fn probe(&self, path: &Path) -> Result<MediaInfo, ProbeError> {
        let unreadable = |e: std::io::Error| ProbeError::Unreadable(format!("cannot read: {e}"));
        let size_bytes = tokio::fs::metadata(path).await.map_err(unreadable)?.len();
        let mut head = vec![0u8; 64 * 1024];
        let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let mut filled = 0;
        while filled < head.len() {
            let n = file.read(&mut head[filled..]).await.map_err(unreadable)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        head.truncate(filled);
        if let Some(info) = sniff_image(&head, size_bytes, path).await {
            return Ok(info);
        }
        self.ffprobe(path, &head, size_bytes).await
    }

    async fn ffprobe(&self, path: &Path, head: &[u8], size: u64) -> Result<MediaInfo, ProbeError> {
        let child = tokio::process::Command::new(&self.ffprobe)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                "--",
            ])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ProbeError::ToolMissing(format!("{}: {e}", self.ffprobe)))?;
        let secs = self.timeout.as_secs().max(1);
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| ProbeError::Timeout(secs))?
            .map_err(|e| ProbeError::Unreadable(format!("ffprobe failed: {e}")))?;
        if !output.status.success() {
            let reason = String::from_utf8_lossy(&output.stderr);
            let reason = reason
                .lines()
                .map(|l| l.rsplit(": ").next().unwrap_or(l).trim())
                .find(|l| !l.is_empty())
                .unwrap_or("unknown format");
            return Err(ProbeError::Unreadable(format!("ffprobe says {reason:?}")));
        }
        parse_ffprobe(&output.stdout, head, size)
    }
}

/// An image, sniffed from its first bytes.
async fn sniff_image(head: &[u8], size_bytes: u64, path: &Path) -> Option<MediaInfo> {
    use imagesize::ImageType;
    let kind = imagesize::image_type(head).ok()?;
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "imagesize's ImageType is #[non_exhaustive]: formats it learns are not media for a post either"
    )]
    let (container, mime) = match kind {
        ImageType::Jpeg => ("jpeg", "image/jpeg"),
        ImageType::Webp => ("webp", "image/webp"),
        ImageType::Png => ("png", "image/png"),
        ImageType::Gif => ("gif", "image/gif"),
        ImageType::Heif(_) => ("heif", "image/heif"),
        ImageType::Bmp => ("bmp", "image/bmp"),
        ImageType::Tiff => ("tiff", "image/tiff"),
        // Other formats imagesize knows (textures, PSD, …) are no media for a social post;
        // let ffprobe have its say.
        _ => return None,
    };
    // The pixel size sits in the headers, usually within the first 64 KiB; a JPEG with a large
    // EXIF block puts it further, so fall back to reading the file in a blocking task.
    let dims = match imagesize::blob_size(head) {
        Ok(d) => Some(d),
        Err(_) => {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || imagesize::size(path).ok())
                .await
                .ok()
                .flatten()
        }
    }?;
    Some(MediaInfo {
        kind: MediaKind::Image,
        container: container.into(),
        mime: mime.into(),
        size_bytes,
        width: u32::try_from(dims.width).ok(),
        height: u32::try_from(dims.height).ok(),
        duration_secs: None,
        video_codec: None,
        audio_codec: None,
        audio_sample_rate: None,
        frame_rate: None,
        bit_rate: None,
    })
}

#[derive(Debug, Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Debug, Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    sample_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Turns ffprobe's JSON into a [`MediaInfo`]. `head` is the file's first bytes, used to tell
/// containers ffprobe names alike apart (MP4 from MOV by the `ftyp` brand, WebM from Matroska
/// by the EBML doctype).
pub(crate) fn parse_ffprobe(json: &[u8], head: &[u8], size: u64) -> Result<MediaInfo, ProbeError> {
    let probe: Probe = serde_json::from_slice(json)
        .map_err(|e| ProbeError::Unreadable(format!("ffprobe answered unreadable JSON: {e}")))?;
    let format = probe
        .format
        .ok_or_else(|| ProbeError::Unreadable("ffprobe found no container".into()))?;
    let format_name = format.format_name.unwrap_or_default();
    let video = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let audio = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));
    let Some(video) = video else {
        return Err(ProbeError::Unreadable(if audio.is_some() {
            "an audio file without pictures, not a video".to_string()
        } else {
            format!("no video stream in this {format_name} file")
        }));
    };
    // Single-frame "videos" are images ffprobe decoded (e.g. a BMP imagesize skipped).
    if format_name.ends_with("_pipe") || format_name == "image2" {
        return Err(ProbeError::Unreadable(format!(
            "a {format_name} image, which tidepost does not take"
        )));
    }
    let container = container_of(&format_name, &format.tags, head);
    let mime = match container.as_str() {
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "3gp" => "video/3gpp",
        _ => "application/octet-stream",
    }
    .to_string();
    let secs = |s: &Option<String>| {
        s.as_deref()
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0)
    };
    let duration_secs = secs(&format.duration).or_else(|| secs(&video.duration));
    let frame_rate = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .find_map(|r| r.as_deref().and_then(parse_rate));
    // A rotated phone video is stored landscape with a rotation tag; people (and the
    // providers) see it upright.
    let rotated = video
        .tags
        .get("rotate")
        .and_then(|r| r.parse::<i32>().ok())
        .is_some_and(|r| r.rem_euclid(180) == 90);
    let (width, height) = if rotated {
        (video.height, video.width)
    } else {
        (video.width, video.height)
    };
    Ok(MediaInfo {
        kind: MediaKind::Video,
        container,
        mime,
        size_bytes: size,
        width,
        height,
        duration_secs,
        video_codec: video.codec_name.clone(),
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
        audio_sample_rate: audio
            .and_then(|a| a.sample_rate.as_deref())
            .and_then(|r| r.parse().ok()),
        frame_rate,
        bit_rate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
    })
}

/// `30000/1001` → 29.97; `0/0` → None.
fn parse_rate(rate: &str) -> Option<f64> {
    let (n, d) = rate.split_once('/').unwrap_or((rate, "1"));
    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
    (n > 0.0 && d > 0.0).then(|| n / d)
}

fn container_of(
    format_name: &str,
    tags: &std::collections::BTreeMap<String, String>,
    head: &[u8],
) -> String {
    let names: Vec<&str> = format_name.split(',').collect();
    if names.contains(&"mov") || names.contains(&"mp4") {
        // The ftyp box's major brand: `qt  ` is QuickTime; ISO brands are MP4.
        let brand = tags
            .get("major_brand")
            .map(|b| b.trim().to_ascii_lowercase())
            .or_else(|| {
                (head.len() >= 12 && &head[4..8] == b"ftyp").then(|| {
                    String::from_utf8_lossy(&head[8..12])
                        .trim()
                        .to_ascii_lowercase()
                })
            });
        return match brand.as_deref() {
            Some("qt") | None => "mov",
            Some(b) if b.starts_with("3g") => "3gp",
            Some(_) => "mp4",
        }
        .into();
    }
    if names.contains(&"matroska") || names.contains(&"webm") {
        let doctype_webm = head.windows(4).take(64).any(|w| w == b"webm");
        return if doctype_webm { "webm" } else { "mkv" }.into();
    }
    names.first().copied().unwrap_or("unknown").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("30/1"), Some(30.0));
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("25"), Some(25.0));
    }

    #[test]
    fn parses_ffprobe_json() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"avg_frame_rate":"30/1","tags":{"rotate":"90"}},
            {"codec_type":"audio","codec_name":"aac","sample_rate":"44100"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"12.5","bit_rate":"800000","tags":{"major_brand":"isom"}}}"#;
        let info = parse_ffprobe(json, b"", 1000).unwrap();
        assert_eq!(info.kind, MediaKind::Video);
        assert_eq!(info.container, "mp4");
        assert_eq!(info.mime, "video/mp4");
        assert_eq!((info.width, info.height), (Some(1080), Some(1920)));
        assert_eq!(info.video_codec.as_deref(), Some("h264"));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert_eq!(info.audio_sample_rate, Some(44_100));
        assert_eq!(info.duration_secs, Some(12.5));
        assert_eq!(info.frame_rate, Some(30.0));
        assert_eq!(info.bit_rate, Some(800_000));
    }

    #[test]
    fn audio_only_is_not_a_video() {
        let json = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"}],"format":{"format_name":"mp3"}}"#;
        let err = parse_ffprobe(json, b"", 10).unwrap_err();
        assert!(err.to_string().contains("audio file"), "{err}");
    }
}
