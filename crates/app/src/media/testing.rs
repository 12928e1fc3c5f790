//! Real media for tests (the `testing` feature; never in the binary): videos and images that
//! tidepost's [`Prober`](super::Prober) reads, made at test time with ffmpeg (nothing binary is
//! committed).
//!
//! A video is one short clip, made once per process (720×1280, 30 fps, 3.5 s of H.264 and AAC
//! in an MP4 with its index first: a valid TikTok video and Instagram reel, about 10 KB),
//! followed by an MP4 `free` box that pads it to the size a test wants. Players and ffprobe
//! skip `free` boxes, so every padded copy probes as the same clip, while its padding (bytes
//! that do not compress, drawn from the `label`) makes each label a different file, hence a
//! different content-addressed media. [`video_reader`] produces the same bytes as
//! [`video`] as they are read, for sizes that should not sit in memory.
//!
//! Everything here panics when ffmpeg is missing, naming Debian's `ffmpeg` package: a test that
//! needs real media never passes without it.

use std::path::Path;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The clip's pixel size, frame rate and length.
pub const VIDEO_WIDTH: u32 = 720;
pub const VIDEO_HEIGHT: u32 = 1280;
pub const VIDEO_FPS: u32 = 30;
pub const VIDEO_SECS: f64 = 3.5;

/// Runs ffmpeg with `args`, writing `name` in a fresh temporary folder; returns the file.
fn ffmpeg(name: &str, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder for test media");
    let out = dir.path().join(name);
    let result = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&out)
        .output();
    let output = match result {
        Ok(output) => output,
        Err(e) => panic!(
            "ffmpeg could not run ({e}): tests need it to make real media; install the `ffmpeg` \
             package (Debian: apt-get install ffmpeg)"
        ),
    };
    assert!(
        output.status.success(),
        "ffmpeg could not make {name} ({}): {}; the `ffmpeg` package (Debian) makes it",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    std::fs::read(&out).expect("ffmpeg wrote the file")
}

/// The bare clip every video starts with (made on first use, then shared by the process).
pub fn clip() -> &'static [u8] {
    static CLIP: OnceLock<Vec<u8>> = OnceLock::new();
    CLIP.get_or_init(|| {
        let video = format!("color=c=0x1f6f8b:size={VIDEO_WIDTH}x{VIDEO_HEIGHT}:rate={VIDEO_FPS}");
        let secs = VIDEO_SECS.to_string();
        ffmpeg(
            "clip.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                &video,
                "-f",
                "lavfi",
                "-i",
                "anullsrc=r=44100:cl=mono",
                "-t",
                &secs,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "40",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "16k",
                "-movflags",
                "+faststart",
            ],
        )
    })
}

/// The smallest video [`video`] makes: the clip, a `free` box header and 8 bytes of padding
/// (enough for labels to differ).
pub fn min_video_len() -> u64 {
    clip().len() as u64 + 16
}

/// The clip followed by the header of a `free` box that fills the file to `size` bytes (at
/// least [`min_video_len`]); the box's content, `size - head.len()` bytes, is up to the caller.
fn video_head(size: u64) -> Vec<u8> {
    let clip = clip();
    let size = size.max(min_video_len());
    let boxed = size - clip.len() as u64;
    let mut head = clip.to_vec();
    match u32::try_from(boxed) {
        Ok(small) => head.extend_from_slice(&small.to_be_bytes()),
        // Boxes of 4 GiB and more give their size in 64 bits after the type.
        Err(_) => head.extend_from_slice(&1u32.to_be_bytes()),
    }
    head.extend_from_slice(b"free");
    if u32::try_from(boxed).is_err() {
        head.extend_from_slice(&boxed.to_be_bytes());
    }
    head
}

/// Padding bytes that do not compress, a different stream for each label (xorshift64 seeded
/// by the label's FNV-1a hash).
struct Padding {
    x: u64,
    word: [u8; 8],
    used: usize,
}

impl Padding {
    fn new(label: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in label.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self {
            x: if hash == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                hash
            },
            word: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used == 8 {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                self.word = self.x.to_le_bytes();
                self.used = 0;
            }
            *byte = self.word[self.used];
            self.used += 1;
        }
    }
}

/// A real MP4 video of `size` bytes (or [`min_video_len`] when `size` is smaller) whose bytes
/// differ for each `label`: the same label and size give the same bytes.
pub fn video(size: usize, label: &str) -> Vec<u8> {
    let size = (size as u64).max(min_video_len());
    let mut bytes = video_head(size);
    let head = bytes.len();
    bytes.resize(
        usize::try_from(size).expect("a video that fits in memory"),
        0,
    );
    Padding::new(label).fill(&mut bytes[head..]);
    bytes
}

/// Writes [`video`]`(size, label)` to `path` a block at a time (never whole in memory).
pub fn write_video(path: &Path, size: u64, label: &str) {
    use std::io::Write;
    let size = size.max(min_video_len());
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create the video"));
    let head = video_head(size);
    file.write_all(&head).expect("write the video");
    let mut padding = Padding::new(label);
    let mut block = vec![0u8; 64 * 1024];
    let mut left = size - head.len() as u64;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(block.len());
        padding.fill(&mut block[..n]);
        file.write_all(&block[..n]).expect("write the video");
        left -= n as u64;
    }
    file.flush().expect("write the video");
}

/// [`video`]`(size, label)`'s bytes, produced as they are read.
pub fn video_reader(size: u64, label: &str) -> VideoReader {
    let size = size.max(min_video_len());
    let head = video_head(size);
    VideoReader {
        padding_left: size - head.len() as u64,
        head,
        at: 0,
        padding: Padding::new(label),
    }
}

/// See [`video_reader`].
pub struct VideoReader {
    head: Vec<u8>,
    at: usize,
    padding_left: u64,
    padding: Padding,
}

impl VideoReader {
    /// How many bytes the whole video has.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.padding_left
    }

    /// Never: a video has at least [`min_video_len`] bytes.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl AsyncRead for VideoReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.at);
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
        }
        let n = usize::try_from(this.padding_left)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        if n > 0 {
            this.padding.fill(buf.initialize_unfilled_to(n));
            buf.advance(n);
            this.padding_left -= n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

/// A real JPEG of `width` x `height` (a test pattern).
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    image("still.jpg", width, height)
}

/// A real PNG of `width` x `height` (a test pattern).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    image("still.png", width, height)
}

fn image(name: &str, width: u32, height: u32) -> Vec<u8> {
    let pattern = format!("testsrc=size={width}x{height}");
    ffmpeg(name, &["-f", "lavfi", "-i", &pattern, "-frames:v", "1"])
}
