//! One frame of a stored video as a JPEG, rendered by ffmpeg: what the composer's frame picker
//! shows for TikTok's `video_cover_timestamp_ms` and Instagram's `thumb_offset`.
//!
//! ffmpeg is expensive, and a person dragging a slider asks for many frames, so:
//! - times are taken in [`STEP_MS`] steps (rounded down, so never past the end);
//! - frames are kept in memory, keyed by the file's content address and the time
//!   ([`FRAME_CACHE_BYTES`] at most, the least recently used dropped first), so the same frame
//!   is rendered once per process whatever the workspace;
//! - at most [`CONCURRENCY`] ffmpeg processes run at once per process (a semaphore); the others
//!   wait their turn;
//! - each run is killed after the probe timeout (`probe_timeout_secs`).
//!
//! ffmpeg seeks before it opens the input (`-ss` before `-i`: fast, from the nearest key frame,
//! then decoded to the exact time), writes one frame scaled to at most [`FRAME_WIDTH`] pixels
//! wide, as a JPEG on its standard output.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidepost_store::media::{self as repo, Media};
use tokio::sync::Semaphore;

use super::{MediaError, MediaKind};
use crate::App;

/// Frames are taken every this many milliseconds (a time is rounded down to a step).
pub const STEP_MS: u64 = 100;
/// The widest frame rendered, in pixels (narrower videos keep their width).
pub const FRAME_WIDTH: u32 = 480;
/// How many ffmpeg processes render frames at once, per process.
pub const CONCURRENCY: usize = 2;
/// How many bytes of rendered frames are kept in memory, per process.
pub const FRAME_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// A rendered frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The time rendered: the time asked, rounded down to a [`STEP_MS`] step.
    pub at_ms: u64,
    /// The JPEG.
    pub jpeg: Arc<Vec<u8>>,
}

/// The process's frame renderer: its permits and its cache (one per [`App`]).
pub struct Frames {
    permits: Semaphore,
    cache: Mutex<Cache>,
}

impl Default for Frames {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(CONCURRENCY),
            cache: Mutex::new(Cache::new(FRAME_CACHE_BYTES)),
        }
    }
}

impl Frames {
    /// How many frames are kept now (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.map.len()).unwrap_or(0)
    }
}

/// Least-recently-used frames by (sha256, ms), bounded by their total size.
struct Cache {
    max_bytes: usize,
    bytes: usize,
    map: HashMap<(String, u64), Arc<Vec<u8>>>,
    /// Oldest use first; a key may appear more than once (its last place counts).
    order: VecDeque<(String, u64)>,
}

impl Cache {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&mut self, key: &(String, u64)) -> Option<Arc<Vec<u8>>> {
        let hit = self.map.get(key).cloned()?;
        self.order.push_back(key.clone());
        self.compact();
        Some(hit)
    }

    fn put(&mut self, key: (String, u64), jpeg: Arc<Vec<u8>>) {
        if jpeg.len() > self.max_bytes {
            return;
        }
        self.bytes += jpeg.len();
        if let Some(old) = self.map.insert(key.clone(), jpeg) {
            self.bytes -= old.len();
        }
        self.order.push_back(key);
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            // Dropped only at its last use in the order.
            if !self.order.contains(&oldest)
                && let Some(gone) = self.map.remove(&oldest)
            {
                self.bytes -= gone.len();
            }
        }
        self.compact();
    }

    /// Keeps the order list from growing without bound under repeated hits: rebuilt with each
    /// key at its last place once it holds far more entries than keys.
    fn compact(&mut self) {
        if self.order.len() <= 4 * self.map.len() + 64 {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        let mut kept = VecDeque::with_capacity(self.map.len());
        for key in self.order.drain(..).rev() {
            if self.map.contains_key(&key) && seen.insert(key.clone()) {
                kept.push_front(key);
            }
        }
        self.order = kept;
    }
}

/// The ffmpeg beside the configured ffprobe (`…/ffprobe` → `…/ffmpeg`; Debian's `ffmpeg`
/// package installs both), else `ffmpeg` on the PATH.
pub fn ffmpeg_path(ffprobe: &str) -> String {
    match ffprobe.strip_suffix("ffprobe") {
        Some(dir) => format!("{dir}ffmpeg"),
        None => "ffmpeg".into(),
    }
}

/// The stored video `media_id` of the workspace (`NotFound` for another workspace's), before
/// anything of the request is looked at: a refusal never tells whether another workspace has it.
pub async fn video(app: &App, workspace_id: &str, media_id: &str) -> Result<Media, MediaError> {
    repo::get(&app.db, workspace_id, media_id)
        .await?
        .ok_or(MediaError::NotFound("media"))
}

/// The frame of the stored `media` at `at_ms`, as a JPEG. Refuses (naming `at_ms`) a time past
/// the probed end, and media that is not a video.
pub async fn render(app: &App, media: &Media, at_ms: u64) -> Result<Frame, MediaError> {
    if MediaKind::parse(&media.kind) != Some(MediaKind::Video) {
        return Err(MediaError::Invalid {
            field: "media",
            message: format!(
                "{} is {} {}, not a video: only a video has frames to choose from",
                media.original_name.as_deref().unwrap_or("this media"),
                if media.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                },
                media.kind
            ),
        });
    }
    let Some(length) = media.duration_ms.and_then(|d| u64::try_from(d).ok()) else {
        return Err(MediaError::Unreadable(format!(
            "the length of {} is not known (it could not be probed), so no frame can be chosen",
            media.original_name.as_deref().unwrap_or("this video")
        )));
    };
    if at_ms >= length {
        return Err(MediaError::Invalid {
            field: "at_ms",
            message: format!(
                "{at_ms} ms is past the video's end: it lasts {length} ms (choose 0 to {})",
                length.saturating_sub(1)
            ),
        });
    }
    let at_ms = at_ms - at_ms % STEP_MS;
    let key = (media.sha256.clone(), at_ms);
    let frames = &app.frames;
    if let Some(jpeg) = cached(frames, &key) {
        return Ok(Frame { at_ms, jpeg });
    }
    let _permit = frames
        .permits
        .acquire()
        .await
        .map_err(|_| MediaError::Unavailable("frame rendering is shutting down".into()))?;
    // Another request may have rendered it while this one waited.
    if let Some(jpeg) = cached(frames, &key) {
        return Ok(Frame { at_ms, jpeg });
    }
    let jpeg = Arc::new(run_ffmpeg(app, media, at_ms).await?);
    if let Ok(mut cache) = frames.cache.lock() {
        cache.put(key, jpeg.clone());
    }
    Ok(Frame { at_ms, jpeg })
}

fn cached(frames: &Frames, key: &(String, u64)) -> Option<Arc<Vec<u8>>> {
    frames.cache.lock().ok()?.get(key)
}

/// The arguments of one frame's render (output on standard output).
pub fn ffmpeg_args(input: &std::path::Path, at_ms: u64) -> Vec<std::ffi::OsString> {
    let at = format!("{}.{:03}", at_ms / 1000, at_ms % 1000);
    let scale = format!("scale='min({FRAME_WIDTH},iw)':-2");
    let mut args: Vec<std::ffi::OsString> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-ss",
        &at,
        "-i",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    args.push(input.as_os_str().to_owned());
    args.extend(
        [
            "-frames:v",
            "1",
            "-an",
            "-vf",
            &scale,
            "-q:v",
            "4",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "pipe:1",
        ]
        .into_iter()
        .map(std::ffi::OsString::from),
    );
    args
}

async fn run_ffmpeg(app: &App, media: &Media, at_ms: u64) -> Result<Vec<u8>, MediaError> {
    let ffmpeg = ffmpeg_path(&app.config.media.ffprobe);
    // A file ffmpeg can read: the stored file itself on disk, a temporary copy from a bucket.
    let copy = super::storage(app)
        .local_copy(&media.sha256)
        .await
        .map_err(|e| MediaError::Unavailable(format!("the video could not be read: {e}")))?;
    let child = tokio::process::Command::new(&ffmpeg)
        .args(ffmpeg_args(copy.path(), at_ms))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            MediaError::Unavailable(format!(
                "ffmpeg is not available ({ffmpeg}: {e}); install ffmpeg (Debian: apt-get install ffmpeg)"
            ))
        })?;
    let secs = app.config.media.probe_timeout_secs.max(1);
    let output = tokio::time::timeout(Duration::from_secs(secs), child.wait_with_output())
        .await
        .map_err(|_| MediaError::Unavailable(format!("ffmpeg took longer than {secs} seconds")))?
        .map_err(|e| MediaError::Unavailable(format!("ffmpeg failed: {e}")))?;
    if !output.status.success() {
        let reason = String::from_utf8_lossy(&output.stderr);
        tracing::warn!(media_id = %media.id, at_ms, error = %reason.trim(), "ffmpeg could not render a frame");
        return Err(MediaError::Unreadable(format!(
            "the frame at {at_ms} ms of {} could not be rendered",
            media.original_name.as_deref().unwrap_or("this video")
        )));
    }
    if output.stdout.is_empty() {
        // The probed length counts the longest stream; the picture may end before the sound.
        return Err(MediaError::Invalid {
            field: "at_ms",
            message: format!(
                "the video has no picture at {at_ms} ms (its picture ends earlier): choose an earlier time"
            ),
        });
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ms: u64) -> (String, u64) {
        ("a".into(), ms)
    }

    #[test]
    fn the_cache_drops_the_least_recently_used_over_its_size() {
        let mut cache = Cache::new(30);
        cache.put(key(0), Arc::new(vec![0; 10]));
        cache.put(key(100), Arc::new(vec![0; 10]));
        cache.put(key(200), Arc::new(vec![0; 10]));
        assert!(cache.get(&key(0)).is_some(), "used again: now the newest");
        cache.put(key(300), Arc::new(vec![0; 10]));
        assert!(
            cache.get(&key(100)).is_none(),
            "the least recently used went"
        );
        assert!(cache.get(&key(0)).is_some());
        assert!(cache.get(&key(200)).is_some());
        assert!(cache.get(&key(300)).is_some());
        assert_eq!(cache.bytes, 30);
        cache.put(key(400), Arc::new(vec![0; 31]));
        assert!(
            cache.get(&key(400)).is_none(),
            "larger than the whole cache"
        );
        for _ in 0..1000 {
            cache.get(&key(0));
        }
        assert!(cache.order.len() <= 4 * cache.map.len() + 64);
    }

    #[test]
    fn ffmpeg_is_found_beside_ffprobe() {
        assert_eq!(ffmpeg_path("ffprobe"), "ffmpeg");
        assert_eq!(ffmpeg_path("/opt/ff/bin/ffprobe"), "/opt/ff/bin/ffmpeg");
        assert_eq!(ffmpeg_path("/opt/probe-wrapper"), "ffmpeg");
    }

    #[test]
    fn the_seek_comes_before_the_input() {
        let args: Vec<String> = ffmpeg_args(std::path::Path::new("/v.mp4"), 1_250)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let ss = args.iter().position(|a| a == "-ss").unwrap();
        let input = args.iter().position(|a| a == "-i").unwrap();
        assert!(ss < input);
        assert_eq!(args[ss + 1], "1.250");
        assert!(args.contains(&"1".to_string()));
    }
}
