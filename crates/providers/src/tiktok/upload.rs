//! FILE_UPLOAD: chunk plans by the Media Transfer Guide rules, and chunk PUTs streamed from
//! disk with a small buffer.
//!
//! The rules: `total_chunk_count = floor(video_size / chunk_size)`, the remainder rides in the
//! last chunk (which may exceed `chunk_size`, up to 128 MB); chunks are 5–64 MB; files under
//! 5 MB go whole; files over 64 MB need several chunks; at most 1000 chunks; at most 4 GB.
//! The guide does not say whether "MB" is decimal or binary, so plans stay inside both
//! readings: chunks between 5 MiB and 64,000,000 bytes, files up to 4,000,000,000 bytes.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::errors::upload_error;
use super::{PLATFORM, TikTokClient};
use crate::error::{Call, ErrorKind, ProviderError};
use crate::http::send;

/// Smallest chunk (5 MiB: also ≥ 5 MB decimal).
pub const MIN_CHUNK_SIZE: u64 = 5 * 1024 * 1024;
/// Largest regular chunk (64 MB decimal: also ≤ 64 MiB).
pub const MAX_CHUNK_SIZE: u64 = 64_000_000;
/// Largest file TikTok takes (4 GB decimal: also ≤ 4 GiB).
pub const MAX_VIDEO_SIZE: u64 = 4_000_000_000;
pub const MAX_CHUNK_COUNT: u64 = 1000;
/// The chunk size [`ChunkPlan::for_size`] aims for (TikTok's own example): small enough to
/// resume cheaply, large enough to keep the count low.
pub const DEFAULT_CHUNK_SIZE: u64 = 10_000_000;
/// Read buffer of a chunk stream.
const STREAM_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkPlanError {
    #[error("the video file is empty")]
    Empty,
    #[error("the video is {size} bytes; TikTok takes at most {max} bytes")]
    TooLarge { size: u64, max: u64 },
}

/// How a file of `video_size` bytes is cut into chunks; what init declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    video_size: u64,
    chunk_size: u64,
    total_chunk_count: u64,
}

/// One chunk: bytes `offset ..= last_byte()` of a `total`-byte file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub index: u64,
    pub offset: u64,
    pub len: u64,
    pub total: u64,
    pub is_last: bool,
}

impl Chunk {
    pub fn last_byte(&self) -> u64 {
        self.offset + self.len - 1
    }

    /// `bytes first-last/total`.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.offset, self.last_byte(), self.total)
    }
}

impl ChunkPlan {
    /// The plan for a file of `size` bytes with [`DEFAULT_CHUNK_SIZE`] chunks.
    pub fn for_size(size: u64) -> Result<Self, ChunkPlanError> {
        Self::with_chunk_size(size, DEFAULT_CHUNK_SIZE)
    }

    /// The plan for a file of `size` bytes with chunks as close to `preferred` as the rules
    /// allow. Stable: `with_chunk_size(size, plan.chunk_size())` gives `plan` again, so a plan
    /// can be rebuilt from the stored size and chunk size when resuming.
    pub fn with_chunk_size(size: u64, preferred: u64) -> Result<Self, ChunkPlanError> {
        if size == 0 {
            return Err(ChunkPlanError::Empty);
        }
        if size > MAX_VIDEO_SIZE {
            return Err(ChunkPlanError::TooLarge {
                size,
                max: MAX_VIDEO_SIZE,
            });
        }
        if size < MIN_CHUNK_SIZE {
            return Ok(Self::whole(size));
        }
        let mut chunk = preferred
            .clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
            .max(size.div_ceil(MAX_CHUNK_COUNT))
            .min(size);
        if size / chunk == 1 && size > MAX_CHUNK_SIZE {
            // One chunk may not exceed 64 MB: split in two (each ≤ 64 MB since chunk ≤ 64 MB
            // made size < 128 MB here).
            chunk = size / 2;
        }
        Ok(Self {
            video_size: size,
            chunk_size: chunk,
            total_chunk_count: size / chunk,
        })
    }

    fn whole(size: u64) -> Self {
        Self {
            video_size: size,
            chunk_size: size,
            total_chunk_count: 1,
        }
    }

    pub fn video_size(&self) -> u64 {
        self.video_size
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    pub fn total_chunk_count(&self) -> u64 {
        self.total_chunk_count
    }

    /// Chunk `index` (0-based), if the plan has it.
    pub fn chunk(&self, index: u64) -> Option<Chunk> {
        if index >= self.total_chunk_count {
            return None;
        }
        let offset = index * self.chunk_size;
        let is_last = index + 1 == self.total_chunk_count;
        let len = if is_last {
            self.video_size - offset
        } else {
            self.chunk_size
        };
        Some(Chunk {
            index,
            offset,
            len,
            total: self.video_size,
            is_last,
        })
    }

    /// Every chunk, in upload order.
    pub fn chunks(&self) -> impl Iterator<Item = Chunk> + '_ {
        (0..self.total_chunk_count).filter_map(|i| self.chunk(i))
    }
}

/// The upload endpoint's acknowledgement of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAck {
    /// 206: more chunks expected.
    Partial,
    /// 201: every byte is in; TikTok starts processing.
    Complete,
}

impl TikTokClient {
    /// PUTs one chunk of `file` to the init's `upload_url`, streamed from disk (never more than
    /// a small buffer in memory). Sending an acknowledged chunk again is harmless, so transport
    /// failures are [`ErrorKind::Retryable`]: send the same chunk again.
    pub async fn upload_chunk(
        &self,
        upload_url: &SecretString,
        file: &Path,
        chunk: &Chunk,
        content_type: &str,
    ) -> Result<ChunkAck, ProviderError> {
        let body = chunk_body(file, chunk).await?;
        self.upload_chunk_body(upload_url, body, chunk, content_type)
            .await
    }

    /// [`Self::upload_chunk`] with the chunk's bytes from elsewhere (object storage): `body`
    /// must hold exactly `chunk.len` bytes.
    pub async fn upload_chunk_body(
        &self,
        upload_url: &SecretString,
        body: reqwest::Body,
        chunk: &Chunk,
        content_type: &str,
    ) -> Result<ChunkAck, ProviderError> {
        let request = self
            .http
            .put(upload_url.expose_secret())
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, chunk.len)
            .header(CONTENT_RANGE, chunk.content_range())
            .timeout(upload_timeout(chunk.len))
            .body(body);
        let answer = send(PLATFORM, Call::idempotent("tiktok.upload_chunk"), request).await?;
        match answer.status {
            201 => Ok(ChunkAck::Complete),
            206 => Ok(ChunkAck::Partial),
            _ => Err(upload_error(&answer, uploaded_bytes(&answer.headers))),
        }
    }
}

/// A streaming body of exactly the chunk's bytes.
async fn chunk_body(file: &Path, chunk: &Chunk) -> Result<reqwest::Body, ProviderError> {
    let io_error = |err: std::io::Error| {
        ProviderError::new(
            PLATFORM,
            ErrorKind::Permanent,
            "media_file",
            format!("The media file could not be read: {err}."),
        )
    };
    let mut reader = tokio::fs::File::open(file).await.map_err(io_error)?;
    let size = reader.metadata().await.map_err(io_error)?.len();
    if size != chunk.total {
        return Err(ProviderError::new(
            PLATFORM,
            ErrorKind::Permanent,
            "media_file",
            format!(
                "The media file is {size} bytes but the upload was declared with {} bytes; it changed since the publish started.",
                chunk.total
            ),
        ));
    }
    reader
        .seek(SeekFrom::Start(chunk.offset))
        .await
        .map_err(io_error)?;
    let stream = ReaderStream::with_capacity(reader.take(chunk.len), STREAM_BUFFER);
    Ok(reqwest::Body::wrap_stream(stream))
}

/// A minute, plus a second per 512 KiB: a 128 MB chunk gets about five minutes.
fn upload_timeout(len: u64) -> Duration {
    Duration::from_secs(60 + len / (512 * 1024))
}

/// The `Content-Range: bytes 0-{UPLOADED}/{TOTAL}` progress TikTok sends with each answer.
fn uploaded_bytes(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, _) = value.strip_prefix("bytes ")?.split_once('/')?;
    range.split_once('-')?.1.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Media Transfer Guide's rules, in both MB readings at once.
    fn assert_valid(plan: &ChunkPlan) {
        let size = plan.video_size();
        let chunks: Vec<Chunk> = plan.chunks().collect();
        assert_eq!(chunks.len() as u64, plan.total_chunk_count());
        assert!((1..=MAX_CHUNK_COUNT).contains(&plan.total_chunk_count()));
        if size < MIN_CHUNK_SIZE {
            assert_eq!((plan.chunk_size(), plan.total_chunk_count()), (size, 1));
        } else {
            assert!(
                (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&plan.chunk_size()),
                "{plan:?}"
            );
            assert_eq!(plan.total_chunk_count(), size / plan.chunk_size());
        }
        if size > MAX_CHUNK_SIZE {
            assert!(plan.total_chunk_count() > 1);
        }
        let mut next = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.index, i as u64);
            assert_eq!(chunk.offset, next, "contiguous");
            assert_eq!(chunk.total, size);
            assert_eq!(chunk.is_last, i + 1 == chunks.len());
            if chunk.is_last {
                assert!(chunk.len >= plan.chunk_size().min(size));
                assert!(chunk.len <= 128_000_000);
            } else {
                assert_eq!(chunk.len, plan.chunk_size());
            }
            next += chunk.len;
        }
        assert_eq!(next, size, "covers the file exactly");
    }

    #[test]
    fn documented_examples() {
        let plan = ChunkPlan::with_chunk_size(50_000_123, 10_000_000).unwrap();
        assert_eq!(plan.total_chunk_count(), 5);
        let last = plan.chunk(4).unwrap();
        assert_eq!(last.content_range(), "bytes 40000000-50000122/50000123");
        assert_eq!(last.len, 10_000_123);
        let whole = ChunkPlan::for_size(4_194_304).unwrap();
        assert_eq!(
            whole.chunk(0).unwrap().content_range(),
            "bytes 0-4194303/4194304"
        );
        assert_eq!(ChunkPlan::for_size(0), Err(ChunkPlanError::Empty));
        assert!(matches!(
            ChunkPlan::for_size(MAX_VIDEO_SIZE + 1),
            Err(ChunkPlanError::TooLarge { .. })
        ));
    }

    #[test]
    fn edges() {
        for size in [
            1,
            MIN_CHUNK_SIZE - 1,
            MIN_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
            MAX_CHUNK_SIZE + 1,
            2 * MAX_CHUNK_SIZE - 1,
            MAX_VIDEO_SIZE,
        ] {
            for preferred in [
                0,
                1,
                MIN_CHUNK_SIZE,
                DEFAULT_CHUNK_SIZE,
                MAX_CHUNK_SIZE,
                u64::MAX,
            ] {
                assert_valid(&ChunkPlan::with_chunk_size(size, preferred).unwrap());
            }
        }
    }

    #[test]
    fn progress_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(CONTENT_RANGE, "bytes 0-10000000/50000123".parse().unwrap());
        assert_eq!(uploaded_bytes(&headers), Some(10_000_000));
    }

    proptest! {
        #[test]
        fn plans_cover_files_within_bounds(size in 1..=MAX_VIDEO_SIZE, preferred in any::<u64>()) {
            let plan = ChunkPlan::with_chunk_size(size, preferred).unwrap();
            assert_valid(&plan);
            prop_assert_eq!(ChunkPlan::with_chunk_size(size, plan.chunk_size()).unwrap(), plan);
        }

        #[test]
        fn default_plans_are_valid(size in 1..=MAX_VIDEO_SIZE) {
            assert_valid(&ChunkPlan::for_size(size).unwrap());
        }
    }
}
