//! Media on S3-compatible object storage (AWS S3, R2, MinIO, Garage, Ceph, GCS's S3 API), on
//! the `object_store` crate (its `aws` feature: SigV4 over the reqwest/rustls/ring stack tidepost
//! already builds, no second HTTP or TLS stack).
//!
//! Objects are named `<prefix>/<sha256>`. A put streams into a multipart upload under a
//! temporary key (`<prefix>/.put/<uuid>`) while hashing, with at most a few parts in memory;
//! once complete, the object is copied server-side to its content address (or dropped, when
//! that address is already there) and the temporary object deleted. Reads are ranged GETs,
//! streamed. A file tool (ffprobe) gets a temporary local copy ([`LocalCopy`]).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::storage::{
    ByteStream, Fut, LocalCopy, PutError, Storage, Stored, bad_address, is_address,
};
use crate::config::{ConfigError, RawSettings};

/// Bytes per multipart part (S3's minimum for all parts but the last is 5 MiB). Resumable
/// uploads use the same size for every part but the last, as R2 requires.
pub const PART: usize = 8 * 1024 * 1024;
/// Parts being sent at once: with the one being filled, the memory a put holds is about
/// `PART × (PARTS_IN_FLIGHT + 1)`.
const PARTS_IN_FLIGHT: usize = 2;
const BUFFER: usize = 256 * 1024;
/// S3's largest single `CopyObject`: a put larger than this cannot be moved to its address.
pub const MAX_OBJECT_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// The `s3_*` settings.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix, without slashes at either end (may be empty).
    pub prefix: String,
    pub region: String,
    /// For stores other than AWS (`http://127.0.0.1:9000`, `https://<account>.r2.cloudflarestorage.com`).
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
}

impl S3Settings {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let text = |name: &'static str| {
            raw.get(name)
                .map(|(v, o)| (v.trim().to_string(), o.to_string()))
                .filter(|(v, _)| !v.is_empty())
        };
        let (bucket, origin) = text("s3_bucket").ok_or(ConfigError::Missing {
            setting: "s3_bucket",
            message: "storage is s3: name the bucket media goes to (TIDEPOST_S3_BUCKET)".into(),
        })?;
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(ConfigError::Invalid {
                setting: "s3_bucket",
                origin,
                message: format!(
                    "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
                ),
            });
        }
        let prefix = text("s3_prefix")
            .map(|(v, _)| v.trim_matches('/').to_string())
            .unwrap_or_default();
        let endpoint = match text("s3_endpoint") {
            None => None,
            Some((v, origin)) => match url::Url::parse(&v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Some(v.trim_end_matches('/').to_string())
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "s3_endpoint",
                        origin,
                        message: format!("{v:?} is not an http:// or https:// URL"),
                    });
                }
            },
        };
        let path_style = match text("s3_path_style") {
            None => false,
            Some((v, origin)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "s3_path_style",
                        origin,
                        message: format!("expected true or false, got {v:?}"),
                    });
                }
            },
        };
        let access_key_id = text("s3_access_key_id").map(|(v, _)| v);
        let secret_access_key = text("s3_secret_access_key").map(|(v, _)| SecretString::from(v));
        if access_key_id.is_some() != secret_access_key.is_some() {
            let missing = if access_key_id.is_some() {
                "s3_secret_access_key"
            } else {
                "s3_access_key_id"
            };
            return Err(ConfigError::Missing {
                setting: missing,
                message: "an S3 access key needs both its id and its secret".into(),
            });
        }
        Ok(Self {
            bucket,
            prefix,
            region: text("s3_region")
                .map(|(v, _)| v)
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint,
            path_style,
            access_key_id,
            secret_access_key,
            session_token: text("s3_session_token").map(|(v, _)| SecretString::from(v)),
        })
    }

    /// `s3://bucket/prefix`, for readiness and logs.
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Content-addressed objects in one bucket under one prefix.
#[derive(Clone)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    settings: Arc<S3Settings>,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("at", &self.settings.describe())
            .finish()
    }
}

/// What the object store answered when it failed: carried inside the [`std::io::Error`]s of
/// [`S3Storage`], so that the HTTP layer tells "the storage is down or refuses us" (503, try
/// again) from a fault of tidepost (500). The text names the object and S3's answer, never a
/// credential.
#[derive(Debug, thiserror::Error)]
#[error("the media storage failed: {0}")]
pub struct StorageUnavailable(pub String);

/// Whether `err` is the object store failing ([`StorageUnavailable`]), not an object missing.
pub fn is_unavailable(err: &std::io::Error) -> bool {
    err.kind() != std::io::ErrorKind::NotFound
        && err
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<StorageUnavailable>().is_some())
}

/// An object store error as an I/O error of the matching kind (the message names the object,
/// never a credential).
pub(crate) fn io_error(e: object_store::Error) -> std::io::Error {
    use std::io::ErrorKind;
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "object_store::Error is #[non_exhaustive]; only these kinds mean something here"
    )]
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            ErrorKind::AlreadyExists
        }
        _ => ErrorKind::Other,
    };
    std::io::Error::new(kind, StorageUnavailable(e.to_string().replace('\n', " ")))
}

impl S3Storage {
    pub fn new(settings: S3Settings) -> Result<Self, String> {
        // A store that is down fails a request within seconds (a few retries), rather than
        // after object_store's default three minutes: the job engine retries the work later.
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(20),
            ..Default::default()
        };
        // A request may take long once connected: S3 documents that completing a large
        // multipart upload can take minutes (moto took over the default 30 s for 1 GiB, and
        // the retried completion then found the upload gone). A store that is down is found
        // by the connect timeout.
        let client = object_store::ClientOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(600));
        let mut builder = AmazonS3Builder::new()
            .with_retry(retry)
            .with_client_options(client)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose_secret());
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token.expose_secret());
        }
        let store = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            store: Arc::new(store),
            settings: Arc::new(settings),
        })
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    fn key_of(&self, name: &str) -> Key {
        if self.settings.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.settings.prefix))
        }
    }

    fn key(&self, sha256: &str) -> std::io::Result<Key> {
        if is_address(sha256) {
            Ok(self.key_of(sha256))
        } else {
            Err(bad_address(sha256))
        }
    }

    fn temp_key(&self) -> Key {
        self.key_of(&format!(".put/{}", tidepost_domain::new_id()))
    }

    /// Streams `reader` into a multipart upload at `temp`, hashing; refuses more than `max`.
    async fn upload_hashing(
        &self,
        temp: &Key,
        reader: &mut (dyn AsyncRead + Send + Unpin),
        max: u64,
    ) -> Result<Stored, PutError> {
        let upload = self.store.put_multipart(temp).await.map_err(io_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; BUFFER];
        let failed = loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => break Some(PutError::Io(e)),
            };
            if n == 0 {
                break None;
            }
            size += n as u64;
            if size > max {
                break Some(PutError::TooLarge { max });
            }
            hasher.update(&buf[..n]);
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                break Some(PutError::Io(io_error(e)));
            }
            writer.write(&buf[..n]);
        };
        let failed = failed.or((size == 0).then_some(PutError::Empty));
        if let Some(err) = failed {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, "could not abort a multipart upload");
            }
            return Err(err);
        }
        writer.finish().await.map_err(io_error)?;
        Ok(Stored {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    }

    /// Moves the complete object at `temp` to its content address (kept once).
    async fn adopt(&self, temp: &Key, sha256: &str) -> std::io::Result<()> {
        let dest = self.key(sha256)?;
        let result = match self.store.head(&dest).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                self.store.copy(temp, &dest).await.map_err(io_error)
            }
            Err(e) => Err(io_error(e)),
        };
        if let Err(e) = self.store.delete(temp).await {
            tracing::warn!(key = %temp, error = %e, "could not delete a temporary object");
        }
        result
    }

    /// The object `name` of the unfinished resumable upload `id`: `<prefix>/.uploads/<id>/<name>`.
    fn upload_key(&self, id: &str, name: &str) -> Key {
        self.key_of(&format!(".uploads/{id}/{name}"))
    }

    /// Starts the multipart upload of the resumable upload `id` (its object `data`); returns
    /// S3's upload id.
    pub(crate) async fn begin_upload(&self, id: &str) -> std::io::Result<String> {
        self.store
            .create_multipart(&self.upload_key(id, "data"))
            .await
            .map_err(io_error)
    }

    /// Sends part `number` (from 1) of the upload's multipart upload; returns its ETag.
    pub(crate) async fn put_upload_part(
        &self,
        id: &str,
        multipart_id: &str,
        number: usize,
        bytes: bytes::Bytes,
    ) -> std::io::Result<String> {
        let part = self
            .store
            .put_part(
                &self.upload_key(id, "data"),
                &multipart_id.to_string(),
                number.saturating_sub(1),
                bytes.into(),
            )
            .await
            .map_err(io_error)?;
        Ok(part.content_id)
    }

    /// Writes the upload's object `name` (a tail) whole.
    pub(crate) async fn put_upload_object(
        &self,
        id: &str,
        name: &str,
        bytes: bytes::Bytes,
    ) -> std::io::Result<()> {
        self.store
            .put(&self.upload_key(id, name), bytes.into())
            .await
            .map(drop)
            .map_err(io_error)
    }

    /// Reads the upload's object `name` (a tail, shorter than a part) whole.
    pub(crate) async fn read_upload_object(
        &self,
        id: &str,
        name: &str,
    ) -> std::io::Result<bytes::Bytes> {
        self.store
            .get(&self.upload_key(id, name))
            .await
            .map_err(io_error)?
            .bytes()
            .await
            .map_err(io_error)
    }

    pub(crate) async fn delete_upload_object(&self, id: &str, name: &str) {
        let key = self.upload_key(id, name);
        if let Err(e) = self.store.delete(&key).await {
            tracing::warn!(%key, error = %e, "could not delete an upload's object");
        }
    }

    /// Completes the multipart upload from its parts' ETags (in part order) into the
    /// upload's object `data`.
    pub(crate) async fn complete_upload(
        &self,
        id: &str,
        multipart_id: &str,
        etags: Vec<String>,
    ) -> std::io::Result<()> {
        let parts = etags
            .into_iter()
            .map(|content_id| object_store::multipart::PartId { content_id })
            .collect();
        self.store
            .complete_multipart(
                &self.upload_key(id, "data"),
                &multipart_id.to_string(),
                parts,
            )
            .await
            .map(drop)
            .map_err(io_error)
    }

    /// The size of the upload's assembled object `data`; `None` when it is not there.
    pub(crate) async fn upload_size(&self, id: &str) -> std::io::Result<Option<u64>> {
        match self.store.head(&self.upload_key(id, "data")).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    /// Streams the upload's assembled object into the local file `to` while hashing it.
    pub(crate) async fn download_upload(&self, id: &str, to: &Path) -> std::io::Result<Stored> {
        let result = self
            .store
            .get(&self.upload_key(id, "data"))
            .await
            .map_err(io_error)?;
        let mut reader = tokio_util::io::StreamReader::new(result.into_stream().map_err(io_error));
        let mut file = tokio::fs::File::create(to).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).await?;
        }
        file.flush().await?;
        Ok(Stored {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    }

    /// Copies the upload's assembled object to its content address `sha256` (server-side; kept
    /// once when the address is already there). The upload's objects stay until
    /// [`Self::discard_upload`].
    pub(crate) async fn adopt_upload(&self, id: &str, sha256: &str) -> std::io::Result<()> {
        let dest = self.key(sha256)?;
        match self.store.head(&dest).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => self
                .store
                .copy(&self.upload_key(id, "data"), &dest)
                .await
                .map_err(io_error),
            Err(e) => Err(io_error(e)),
        }
    }

    /// Forgets the bytes of the upload `id`: aborts its multipart upload (S3 then drops the
    /// parts; one already gone is fine) and deletes its objects (tails, the assembled object).
    pub(crate) async fn discard_upload(
        &self,
        id: &str,
        multipart_id: Option<&str>,
    ) -> std::io::Result<()> {
        if let Some(multipart_id) = multipart_id {
            match self
                .store
                .abort_multipart(&self.upload_key(id, "data"), &multipart_id.to_string())
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        let prefix = self.key_of(&format!(".uploads/{id}"));
        let keys: Vec<Key> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(io_error)?;
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    /// The objects of resumable uploads (`.uploads/<id>/<name>`) last written before `before`
    /// (ms), as (upload id, name).
    pub(crate) async fn upload_objects_before(
        &self,
        before: i64,
    ) -> std::io::Result<Vec<(String, String)>> {
        let prefix = self.key_of(".uploads");
        let found: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_filter(|m| futures::future::ready(m.last_modified.timestamp_millis() < before))
            .try_collect()
            .await
            .map_err(io_error)?;
        Ok(found
            .into_iter()
            .filter_map(|m| {
                let mut parts: Vec<String> =
                    m.location.parts().map(|p| p.as_ref().to_string()).collect();
                let name = parts.pop()?;
                let id = parts.pop()?;
                Some((id, name))
            })
            .collect())
    }

    /// Deletes the temporary objects of puts (`.put/`) last written before `before` (ms): left
    /// by a process that stopped between sending an object and moving it to its address.
    /// Returns how many went.
    pub(crate) async fn delete_stray_puts(&self, before: i64) -> std::io::Result<u64> {
        let prefix = self.key_of(".put");
        let stale: Vec<Key> = self
            .store
            .list(Some(&prefix))
            .try_filter(|m| futures::future::ready(m.last_modified.timestamp_millis() < before))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(io_error)?;
        let mut deleted = 0;
        for key in stale {
            match self.store.delete(&key).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(deleted)
    }

    /// Whether the bucket answers and these credentials may list, write, read and delete in
    /// it: each permission tried, the first missing one named.
    pub async fn check(&self) -> Result<(), String> {
        let probe = self.key_of(&format!(".check/{}", tidepost_domain::new_id()));
        let at = self.settings.describe();
        self.store
            .list_with_delimiter(Some(&self.key_of("")))
            .await
            .map_err(|e| format!("{at}: cannot list (s3:ListBucket): {}", answer(&e)))?;
        self.store
            .put(
                &probe,
                bytes::Bytes::from_static(b"tidepost storage check").into(),
            )
            .await
            .map_err(|e| format!("{at}: cannot write (s3:PutObject): {}", answer(&e)))?;
        let read = self.store.get(&probe).await;
        let deleted = self.store.delete(&probe).await;
        read.map_err(|e| format!("{at}: cannot read (s3:GetObject): {}", answer(&e)))?;
        deleted.map_err(|e| format!("{at}: cannot delete (s3:DeleteObject): {}", answer(&e)))?;
        Ok(())
    }

    /// Every content address stored under the prefix.
    pub async fn addresses(&self) -> std::io::Result<Vec<String>> {
        let prefix = self.key_of("");
        let found: Vec<_> = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(io_error)?
            .objects;
        Ok(found
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .filter(|name| is_address(name))
            .collect())
    }

    /// Copies the local file at `path` to the content address `sha256` if it is not there
    /// yet, verifying the hash of the bytes sent. True when it copied.
    pub async fn upload_file(&self, path: &Path, sha256: &str, max: u64) -> Result<bool, PutError> {
        if self.exists(sha256).await? {
            return Ok(false);
        }
        let mut file = tokio::fs::File::open(path).await?;
        let temp = self.temp_key();
        let stored = self.upload_hashing(&temp, &mut file, max).await?;
        if stored.sha256 != sha256 {
            let _ = self.store.delete(&temp).await;
            return Err(PutError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds bytes whose SHA-256 is {}, not its name",
                    path.display(),
                    stored.sha256
                ),
            )));
        }
        self.adopt(&temp, sha256).await?;
        Ok(true)
    }
}

/// What S3 answered, in one line, with the setting that is likely wrong.
fn answer(e: &object_store::Error) -> String {
    let text = e.to_string().replace('\n', " ");
    let setting = if text.contains("NoSuchBucket") {
        "check s3_bucket: the bucket does not exist"
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("InvalidToken")
        || text.contains("ExpiredToken")
    {
        "check s3_access_key_id and s3_secret_access_key: S3 refused the credentials"
    // The status as object_store words it ("403 Forbidden"): a bare "403" also matches the
    // time a request took ("in 403.8ms"), which named permissions for an endpoint that was down.
    } else if text.contains("AccessDenied") || text.contains("403 Forbidden") {
        "check the credentials' permissions on the bucket (s3_access_key_id)"
    } else if text.contains("error sending request")
        || text.contains("connect")
        || text.contains("dns")
    {
        "check s3_endpoint and s3_region: nothing answered"
    } else {
        "check s3_endpoint: is it an S3 API?"
    };
    format!("{setting} ({text})")
}

impl Storage for S3Storage {
    fn put<'a>(
        &'a self,
        mut reader: ByteStream<'a>,
        max: u64,
    ) -> Fut<'a, Result<Stored, PutError>> {
        Box::pin(async move {
            let temp = self.temp_key();
            let stored = self.upload_hashing(&temp, &mut reader, max).await?;
            self.adopt(&temp, &stored.sha256).await?;
            Ok(stored)
        })
    }

    fn put_file<'a>(&'a self, path: &'a Path) -> Fut<'a, Result<Stored, PutError>> {
        Box::pin(async move {
            let file = tokio::fs::File::open(path).await?;
            let stored = self.put(Box::pin(file), u64::MAX).await?;
            let _ = tokio::fs::remove_file(path).await;
            Ok(stored)
        })
    }

    fn open<'a>(
        &'a self,
        sha256: &'a str,
        range: Option<Range<u64>>,
    ) -> Fut<'a, std::io::Result<ByteStream<'static>>> {
        Box::pin(async move {
            let key = self.key(sha256)?;
            if let Some(r) = &range
                && r.start >= r.end
            {
                // S3 has no empty range: check the object is there, give nothing.
                self.store.head(&key).await.map_err(io_error)?;
                return Ok(Box::pin(tokio::io::empty()) as ByteStream<'static>);
            }
            let options = GetOptions {
                range: range.map(GetRange::Bounded),
                ..Default::default()
            };
            let result = self.store.get_opts(&key, options).await.map_err(io_error)?;
            let stream = result.into_stream().map_err(io_error);
            Ok(Box::pin(tokio_util::io::StreamReader::new(stream)) as ByteStream<'static>)
        })
    }

    fn delete<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>> {
        Box::pin(async move {
            if !self.exists(sha256).await? {
                return Ok(false);
            }
            self.store
                .delete(&self.key(sha256)?)
                .await
                .map_err(io_error)?;
            Ok(true)
        })
    }

    fn exists<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<bool>> {
        Box::pin(async move { Ok(self.size(sha256).await?.is_some()) })
    }

    fn size<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<Option<u64>>> {
        Box::pin(async move {
            match self.store.head(&self.key(sha256)?).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(io_error(e)),
            }
        })
    }

    fn local_copy<'a>(&'a self, sha256: &'a str) -> Fut<'a, std::io::Result<LocalCopy>> {
        Box::pin(async move {
            let mut reader = self.open(sha256, None).await?;
            let temp = tempfile::Builder::new()
                .prefix(".tidepost-media-")
                .tempfile()?
                .into_temp_path();
            let mut file = tokio::fs::File::create(&temp).await?;
            tokio::io::copy(&mut reader, &mut file).await?;
            file.flush().await?;
            Ok(LocalCopy::Temporary(temp))
        })
    }

    fn local_path(&self, _sha256: &str) -> Option<std::path::PathBuf> {
        None
    }

    fn as_s3(&self) -> Option<&S3Storage> {
        Some(self)
    }

    fn describe(&self) -> String {
        self.settings.describe()
    }

    fn check(&self) -> Fut<'_, Result<(), String>> {
        Box::pin(S3Storage::check(self))
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Files copied into the bucket.
    pub copied: u64,
    /// Files already in the bucket (a resumed migration skips them).
    pub present: u64,
    /// Files not copied, with the reason (a file whose bytes are not its name, an error).
    pub failed: Vec<(String, String)>,
}

/// Copies every content-addressed file of the local media folder `from` into `to`, verifying
/// each file's SHA-256 against its name as it is sent. Files already in the bucket are skipped,
/// so a migration that stopped halfway is resumed by running it again. Unfinished uploads
/// (`.uploads/`) and other names are left alone.
pub async fn migrate(
    from: &Path,
    to: &S3Storage,
    mut progress: impl FnMut(&str, &str),
) -> std::io::Result<MigrateReport> {
    let mut report = MigrateReport::default();
    let mut entries = tokio::fs::read_dir(from).await?;
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        if let Some(name) = entry.file_name().to_str()
            && is_address(name)
            && entry.file_type().await?.is_file()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    for name in names {
        match to.upload_file(&from.join(&name), &name, u64::MAX).await {
            Ok(true) => {
                report.copied += 1;
                progress(&name, "copied");
            }
            Ok(false) => {
                report.present += 1;
                progress(&name, "already there");
            }
            Err(e) => {
                progress(&name, &format!("failed: {e}"));
                report.failed.push((name, e.to_string()));
            }
        }
    }
    Ok(report)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::media::s3_server::S3Server;

    async fn read_all(mut r: ByteStream<'static>) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        out
    }

    /// Every key in the bucket under the storage's prefix.
    async fn keys(s: &S3Storage) -> Vec<String> {
        let mut all: Vec<String> = s
            .store
            .list(Some(&s.key_of("")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        all
    }

    #[tokio::test]
    async fn stores_by_content_reads_ranges_dedupes_and_deletes() {
        let server = S3Server::start();
        let s3 = server.storage("media").await;
        let a = s3.put(Box::pin(&b"hello world"[..]), 1024).await.unwrap();
        assert_eq!(a.size, 11);
        assert_eq!(
            a.sha256,
            hex::encode(Sha256::digest(b"hello world")),
            "the content address"
        );
        let again = s3.put(Box::pin(&b"hello world"[..]), 1024).await.unwrap();
        assert_eq!(again, a);
        // One object at the address, no temporary left.
        assert_eq!(keys(&s3).await, vec![format!("media/{}", a.sha256)]);
        assert_eq!(
            read_all(s3.open(&a.sha256, None).await.unwrap()).await,
            b"hello world"
        );
        assert_eq!(
            read_all(s3.open(&a.sha256, Some(6..11)).await.unwrap()).await,
            b"world"
        );
        assert_eq!(
            read_all(s3.open(&a.sha256, Some(3..3)).await.unwrap()).await,
            b""
        );
        assert_eq!(s3.size(&a.sha256).await.unwrap(), Some(11));
        let copy = s3.local_copy(&a.sha256).await.unwrap();
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"hello world");
        let path = copy.path().to_path_buf();
        drop(copy);
        assert!(!path.exists(), "the temporary copy is deleted with it");
        assert!(s3.local_path(&a.sha256).is_none());
        assert!(s3.exists(&a.sha256).await.unwrap());
        assert!(s3.delete(&a.sha256).await.unwrap());
        assert!(!s3.delete(&a.sha256).await.unwrap());
        assert!(!s3.exists(&a.sha256).await.unwrap());
        assert_eq!(s3.size(&a.sha256).await.unwrap(), None);
        let gone = s3.open(&a.sha256, None).await.err().expect("gone");
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
        assert!(keys(&s3).await.is_empty());
        s3.check().await.expect("every permission");
        assert!(keys(&s3).await.is_empty(), "the check leaves nothing");
    }

    #[tokio::test]
    async fn streams_large_files_in_parts_and_refuses_too_much_and_nothing() {
        let server = S3Server::start();
        let s3 = server.storage("").await;
        // Three parts and a bit, made as it is read.
        let size = 3 * PART as u64 + 12_345;
        let reader = crate::media::testing::video_reader(size, "s3-large");
        let stored = s3.put(Box::pin(reader), size).await.unwrap();
        assert_eq!(stored.size, size);
        let expected = crate::media::testing::video(size as usize, "s3-large");
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&expected)));
        let at = PART as u64 - 10;
        let part = read_all(s3.open(&stored.sha256, Some(at..at + 20)).await.unwrap()).await;
        assert_eq!(
            part,
            &expected[at as usize..at as usize + 20],
            "a range across parts"
        );
        assert_eq!(
            read_all(s3.open(&stored.sha256, None).await.unwrap()).await,
            expected
        );
        assert_eq!(keys(&s3).await, vec![stored.sha256.clone()]);

        assert!(matches!(
            s3.put(Box::pin(&[7u8; 100][..]), 99).await,
            Err(PutError::TooLarge { max: 99 })
        ));
        let big = crate::media::testing::video_reader(PART as u64 * 2, "too-large");
        assert!(matches!(
            s3.put(Box::pin(big), PART as u64 + 1).await,
            Err(PutError::TooLarge { .. })
        ));
        assert!(matches!(
            s3.put(Box::pin(&b""[..]), 99).await,
            Err(PutError::Empty)
        ));
        assert_eq!(
            keys(&s3).await,
            vec![stored.sha256.clone()],
            "refusals leave nothing"
        );
        for bad in ["../etc/passwd", "ABC", &"g".repeat(64), &"A".repeat(64)] {
            assert!(s3.open(bad, None).await.is_err(), "{bad}");
            assert!(s3.delete(bad).await.is_err(), "{bad}");
            assert!(s3.exists(bad).await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn migrates_a_local_folder_resumably_verifying_hashes() {
        let server = S3Server::start();
        let s3 = server.storage("media").await;
        let dir = tempfile::tempdir().unwrap();
        let disk = crate::media::LocalDisk::new(dir.path());
        let a = disk.put(Box::pin(&b"first"[..]), 1024).await.unwrap();
        let b = disk.put(Box::pin(&b"second"[..]), 1024).await.unwrap();
        // Already there (a migration that stopped halfway).
        s3.put(Box::pin(&b"first"[..]), 1024).await.unwrap();
        // A file whose bytes are not its name, and files that are no media.
        let liar = hex::encode(Sha256::digest(b"something else"));
        std::fs::write(dir.path().join(&liar), b"tampered").unwrap();
        std::fs::create_dir_all(dir.path().join(".uploads")).unwrap();
        std::fs::write(dir.path().join(".uploads/x"), b"partial").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let mut seen = Vec::new();
        let report = migrate(dir.path(), &s3, |name, what| {
            seen.push(format!("{name}: {what}"))
        })
        .await
        .unwrap();
        assert_eq!(report.copied, 1);
        assert_eq!(report.present, 1);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, liar);
        assert!(report.failed[0].1.contains("not its name"), "{report:?}");
        assert_eq!(seen.len(), 3);
        let mut expected = vec![format!("media/{}", a.sha256), format!("media/{}", b.sha256)];
        expected.sort();
        assert_eq!(keys(&s3).await, expected);
        assert_eq!(
            read_all(s3.open(&b.sha256, None).await.unwrap()).await,
            b"second"
        );
        // Again: nothing left to copy.
        std::fs::remove_file(dir.path().join(&liar)).unwrap();
        let again = migrate(dir.path(), &s3, |_, _| {}).await.unwrap();
        assert_eq!((again.copied, again.present, again.failed.len()), (0, 2, 0));
    }

    #[tokio::test]
    async fn finds_stray_temporary_objects() {
        let server = S3Server::start();
        let s3 = server.storage("media").await;
        let kept = s3.put(Box::pin(&b"kept"[..]), 1024).await.unwrap();
        // A put that stopped between sending and moving, and an upload's tail.
        let stray = s3.temp_key();
        s3.store
            .put(&stray, bytes::Bytes::from_static(b"half").into())
            .await
            .unwrap();
        s3.put_upload_object("u1", "tail-1", bytes::Bytes::from_static(b"tail"))
            .await
            .unwrap();
        let now = tidepost_domain::now_ms();
        // Nothing is older than an hour ago.
        assert_eq!(s3.delete_stray_puts(now - 3_600_000).await.unwrap(), 0);
        assert!(
            s3.upload_objects_before(now - 3_600_000)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s3.upload_objects_before(now + 1000).await.unwrap(),
            vec![("u1".to_string(), "tail-1".to_string())]
        );
        assert_eq!(s3.delete_stray_puts(now + 1000).await.unwrap(), 1);
        s3.discard_upload("u1", None).await.unwrap();
        assert_eq!(keys(&s3).await, vec![format!("media/{}", kept.sha256)]);
    }

    #[test]
    fn a_request_that_took_403_ms_is_no_refusal() {
        let down = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://127.0.0.1:9/b in 403.855927ms, after 3 retries - HTTP error: error sending request".into(),
        };
        assert!(
            answer(&down).starts_with("check s3_endpoint and s3_region"),
            "{}",
            answer(&down)
        );
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 403 Forbidden: <Error><Code>AccessDenied</Code></Error>".into(),
        };
        assert!(
            answer(&refused).starts_with("check the credentials' permissions"),
            "{}",
            answer(&refused)
        );
    }

    #[tokio::test]
    async fn says_which_setting_is_wrong() {
        let server = S3Server::start();
        let good = server.storage("").await;
        let mut settings = good.settings().clone();
        settings.bucket = "no-such-bucket".into();
        let err = S3Storage::new(settings).unwrap().check().await.unwrap_err();
        assert!(err.contains("s3_bucket"), "{err}");
        assert!(err.contains("s3://no-such-bucket"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        // Nothing listens there.
        let mut settings = good.settings().clone();
        let port = TcpListenerPort::free();
        settings.endpoint = Some(format!("http://127.0.0.1:{port}"));
        let err = S3Storage::new(settings).unwrap().check().await.unwrap_err();
        assert!(err.contains("s3_endpoint"), "{err}");
        assert!(
            !err.contains(super::super::s3_server::SECRET_ACCESS_KEY),
            "{err}"
        );
    }

    struct TcpListenerPort;
    impl TcpListenerPort {
        fn free() -> u16 {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    }
}
