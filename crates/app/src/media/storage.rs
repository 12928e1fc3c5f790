//! Where media bytes live, behind [`Storage`] so an object store can be added beside the local
//! disk. Files are named by their content address (the SHA-256 of their bytes, 64 lowercase hex
//! digits) and nothing else: no name a user chose ever becomes part of a path, so there is no
//! path to traverse.

use std::future::Future;
use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// A stream of bytes going into or out of the storage.
pub type ByteStream<'a> = Pin<Box<dyn AsyncRead + Send + 'a>>;
pub(crate) type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Storage::put`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The content address: SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub size: u64,
}

/// Why a put failed.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the upload is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    #[error("the file is empty")]
    Empty,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A file on this machine holding stored content, for tools that read files (ffprobe): the
/// stored file itself on the local disk, a temporary copy (deleted when dropped) otherwise.
#[derive(Debug)]
pub enum LocalCopy {
    Stored(PathBuf),
    Temporary(tempfile::TempPath),
}

impl LocalCopy {
    pub fn path(&self) -> &Path {
        match self {
            LocalCopy::Stored(p) => p,
            LocalCopy::Temporary(p) => p,
        }
    }
}

/// Content-addressed byte storage.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Streams `reader` in (never whole in memory), hashing as it goes; refuses more than
    /// `max` bytes. Storing content that is already there keeps one copy.
    fn put<'a>(&'a self, reader: ByteStream<'a>, max: u64) -> Fut<'a, Result<Stored, PutError>>;

    /// Takes a complete file (a finished resumable upload) in, moving it when it can.
    fn put_file<'a>(&'a self, path: &'a Path) -> Fut<'a, Result<Stored, PutError>>;

    /// Reads the content, or the `range` of it (`start..end`, end exclusive).
    fn open<'a>(
        &'a self,
        sha256: &'a str,
        range: Option<Range<u64>>,
    ) -> Fut<'a, std::io::Result<ByteStream<'static>>>;

    /// Deletes the content; false when it was not there.
    fn delete<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>>;

    fn exists<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>>;

    /// The size of the content in bytes; `None` when it is not there.
    fn size<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<Option<u64>>>;

    /// A file on this machine holding the content, for tools that read files (ffprobe).
    fn local_copy<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<LocalCopy>>;

    /// The path of the content's own file on this machine; `None` for a remote store.
    fn local_path(&self, sha256: &str) -> Option<PathBuf>;

    /// The S3 bucket behind this storage, for what only S3 does (resumable uploads kept in the
    /// bucket); `None` for the local disk.
    fn as_s3(&self) -> Option<&super::S3Storage> {
        None
    }

    /// Where the content lives, for readiness and logs (`local:/srv/media`, `s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// Whether the storage can be written, read and deleted in; the reason when not.
    fn check(&self) -> Fut<'_, Result<(), String>>;
}

/// Whether `s` is a content address (64 lowercase hex digits).
pub fn is_address(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn bad_address(s: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{s:?} is not a content address"),
    )
}

const BUFFER: usize = 256 * 1024;

/// Files in one folder, each named by its content address. Partial files are written beside
/// them under a random `.put-…` name and renamed into place once complete and synced, so a
/// reader never sees half a file.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
}

impl LocalDisk {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, sha256: &str) -> std::io::Result<PathBuf> {
        if is_address(sha256) {
            Ok(self.root.join(sha256))
        } else {
            Err(bad_address(sha256))
        }
    }

    async fn temp(&self) -> std::io::Result<PathBuf> {
        tokio::fs::create_dir_all(&self.root).await?;
        Ok(self
            .root
            .join(format!(".put-{}", tidepost_domain::new_id())))
    }

    async fn adopt(&self, temp: &Path, sha256: &str) -> std::io::Result<()> {
        tokio::fs::rename(temp, self.path(sha256)?).await
    }
}

/// Hashes `reader` into `file`, refusing more than `max` bytes.
async fn copy_hashing(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    file: &mut tokio::fs::File,
    max: u64,
) -> Result<Stored, PutError> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > max {
            return Err(PutError::TooLarge { max });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    if size == 0 {
        return Err(PutError::Empty);
    }
    Ok(Stored {
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

impl Storage for LocalDisk {
    fn put<'a>(
        &'a self,
        mut reader: ByteStream<'a>,
        max: u64,
    ) -> Fut<'a, Result<Stored, PutError>> {
        Box::pin(async move {
            let temp = self.temp().await?;
            let result = async {
                let mut file = tokio::fs::File::create(&temp).await?;
                let stored = copy_hashing(&mut reader, &mut file, max).await?;
                self.adopt(&temp, &stored.sha256).await?;
                Ok(stored)
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&temp).await;
            }
            result
        })
    }

    fn put_file<'a>(&'a self, path: &'a Path) -> Fut<'a, Result<Stored, PutError>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(path).await?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; BUFFER];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                hasher.update(&buf[..n]);
            }
            if size == 0 {
                return Err(PutError::Empty);
            }
            let sha256 = hex::encode(hasher.finalize());
            tokio::fs::create_dir_all(&self.root).await?;
            if tokio::fs::rename(path, self.path(&sha256)?).await.is_err() {
                // Another file system: copy beside, then rename into place.
                let temp = self.temp().await?;
                tokio::fs::copy(path, &temp).await?;
                tokio::fs::File::open(&temp).await?.sync_all().await?;
                self.adopt(&temp, &sha256).await?;
                let _ = tokio::fs::remove_file(path).await;
            }
            Ok(Stored { sha256, size })
        })
    }

    fn open<'a>(
        &'a self,
        sha256: &'a str,
        range: Option<Range<u64>>,
    ) -> Fut<'a, std::io::Result<ByteStream<'static>>> {
        Box::pin(async move {
            let mut file = tokio::fs::File::open(self.path(sha256)?).await?;
            Ok(match range {
                Some(r) => {
                    file.seek(SeekFrom::Start(r.start)).await?;
                    Box::pin(file.take(r.end.saturating_sub(r.start))) as ByteStream<'static>
                }
                None => Box::pin(file) as ByteStream<'static>,
            })
        })
    }

    fn delete<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(sha256)?).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn exists<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>> {
        Box::pin(async move { tokio::fs::try_exists(self.path(sha256)?).await })
    }

    fn size<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<Option<u64>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(sha256)?).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn local_copy<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<LocalCopy>> {
        Box::pin(async move { Ok(LocalCopy::Stored(self.path(sha256)?)) })
    }

    fn local_path(&self, sha256: &str) -> Option<PathBuf> {
        self.path(sha256).ok()
    }

    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn check(&self) -> Fut<'_, Result<(), String>> {
        Box::pin(async move {
            let at = self.root.display();
            let temp = self
                .temp()
                .await
                .map_err(|e| format!("{at}: cannot create the folder: {e}"))?;
            let written = tokio::fs::write(&temp, b"tidepost storage check").await;
            let _ = tokio::fs::remove_file(&temp).await;
            written.map_err(|e| format!("{at}: cannot write: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_content_and_reads_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::new(dir.path().join("media"));
        let a = disk.put(Box::pin(&b"hello world"[..]), 1024).await.unwrap();
        assert_eq!(a.size, 11);
        assert!(is_address(&a.sha256));
        let again = disk.put(Box::pin(&b"hello world"[..]), 1024).await.unwrap();
        assert_eq!(again, a);
        // One file, no leftovers.
        let names: Vec<_> = std::fs::read_dir(disk.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, std::slice::from_ref(&a.sha256));
        let mut part = String::new();
        disk.open(&a.sha256, Some(6..11))
            .await
            .unwrap()
            .read_to_string(&mut part)
            .await
            .unwrap();
        assert_eq!(part, "world");
        assert!(disk.exists(&a.sha256).await.unwrap());
        assert!(disk.delete(&a.sha256).await.unwrap());
        assert!(!disk.delete(&a.sha256).await.unwrap());
        assert!(!disk.exists(&a.sha256).await.unwrap());
    }

    #[tokio::test]
    async fn refuses_too_much_and_nothing_and_non_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::new(dir.path());
        assert!(matches!(
            disk.put(Box::pin(&[0u8; 100][..]), 99).await,
            Err(PutError::TooLarge { max: 99 })
        ));
        assert!(matches!(
            disk.put(Box::pin(&b""[..]), 99).await,
            Err(PutError::Empty)
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        for bad in ["../etc/passwd", "ABC", &"g".repeat(64), &"A".repeat(64)] {
            assert!(disk.open(bad, None).await.is_err(), "{bad}");
            assert!(disk.delete(bad).await.is_err(), "{bad}");
            assert!(disk.local_path(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn adopts_a_finished_file() {
        let dir = tempfile::tempdir().unwrap();
        let disk = LocalDisk::new(dir.path().join("media"));
        let upload = dir.path().join("upload.part");
        std::fs::write(&upload, b"abc").unwrap();
        let stored = disk.put_file(&upload).await.unwrap();
        assert!(!upload.exists());
        assert_eq!(
            std::fs::read(disk.local_path(&stored.sha256).unwrap()).unwrap(),
            b"abc"
        );
    }
}
