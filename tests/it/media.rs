//! The media library over HTTP: direct uploads with dedupe and probing, the tus protocol
//! (creation, an interrupted PATCH resumed from HEAD, a wrong offset, the size limit,
//! termination), listing with a cursor, deletion refused while a pending post uses the media,
//! tenancy, and the /media page. Fixtures are made at test time with ffmpeg.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::support::*;

fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg made {name}");
    std::fs::read(out).unwrap()
}

pub(crate) fn jpeg(dir: &Path, w: u32, h: u32) -> Vec<u8> {
    let color = format!("color=c=green:size={w}x{h}");
    ffmpeg(
        dir,
        &format!("{w}x{h}.jpg"),
        &["-f", "lavfi", "-i", &color, "-frames:v", "1"],
    )
}

/// A detailed JPEG (a test pattern, tens of KiB), to send in many chunks.
fn photo(dir: &Path, name: &str, w: u32, h: u32) -> Vec<u8> {
    let pattern = format!("testsrc=size={w}x{h}");
    ffmpeg(
        dir,
        name,
        &["-f", "lavfi", "-i", &pattern, "-frames:v", "1", "-q:v", "2"],
    )
}

pub(crate) fn mp4(dir: &Path) -> Vec<u8> {
    ffmpeg(
        dir,
        "clip.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=360x640:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    )
}

/// A body that sends what is written to it, then fails: a connection dropped mid-PATCH.
struct FailAtEnd(tokio::io::DuplexStream);

impl AsyncRead for FailAtEnd {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => Poll::Ready(Err(
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped"),
            )),
            other => other,
        }
    }
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

every_storage!(
    media_api_and_resumable_uploads,
    signed_media_urls_stream_from_the_storage,
    tus_upload_across_instances
);

/// The bucket media lives in, on S3.
fn bucket_of(app: &TestApp) -> Option<String> {
    tidepost_app::media::storage(&app.app)
        .as_s3()
        .map(|s3| s3.settings().bucket.clone())
}

/// Files under `dir` (recursively), as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

/// A tus upload begun on one instance and finished on another, the two sharing the database:
/// on S3 each has its own data directory (no shared disk), on the local disk they share the
/// media folder (as docs/deploy.md requires for it). The first instance takes a whole S3 part
/// and a bit, then a PATCH that breaks off midway (what arrived before the break is kept); the
/// second learns the offset and sends the rest. The media is the file, byte for byte, and
/// nothing of the upload is left: no object under `.uploads/`, no multipart upload in progress
/// in the bucket, no file in either data directory. Then an upload that expires with a part and
/// a tail: the sweep aborts its multipart upload (S3's own listing shows none) and deletes its
/// tail.
async fn tus_upload_across_instances(backend: Backend, storage: MediaStorage) {
    let s3 = storage == MediaStorage::S3;
    let shared = tempfile::tempdir().unwrap();
    let own_b = tempfile::tempdir().unwrap();
    let dir_a = shared.path().to_path_buf();
    let dir_b = if s3 {
        own_b.path().to_path_buf()
    } else {
        dir_a.clone()
    };
    let a = spawn_app_with(
        backend,
        Options {
            s3,
            env: vec![("TIDEPOST_DATA_DIR", dir_a.display().to_string())],
            ..Default::default()
        },
    )
    .await;
    let bucket = bucket_of(&a);
    // Object keys as S3 lists them, under the storage's prefix.
    let prefix = tidepost_app::media::storage(&a.app)
        .as_s3()
        .map(|s3| format!("{}/", s3.settings().prefix))
        .unwrap_or_default();
    let prefix = if prefix == "/" { String::new() } else { prefix };
    let mut env_b = vec![("TIDEPOST_DATA_DIR", dir_b.display().to_string())];
    if let (Some(server), Some(bucket)) = (&a.s3, &bucket) {
        env_b.extend(server.env_of(bucket));
    }
    let b = spawn_app_with(
        backend,
        Options {
            database_url: Some(a.database_url.clone()),
            env: env_b,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        tidepost_app::media::storage(&b.app).describe(),
        tidepost_app::media::storage(&a.app).describe()
    );
    let ws = a.signed_in("across").await;
    let key = a.api_key(&ws.workspace.id, "tus", &[]).await;
    let http = bare_client();
    let part = tidepost_app::media::s3::PART;
    let video = tidepost_app::media::testing::video(2 * part + 777_777, "across");
    let r = http
        .post(a.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", video.len().to_string())
        .header("upload-metadata", "filename YWNyb3NzLm1wNA==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let path = header(&r, "location");
    let id = path.rsplit('/').next().unwrap().to_string();
    let patch = |app: &TestApp, path: &str, offset: usize, body: reqwest::Body| {
        http.patch(app.url(path))
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let first = part + 1_000_000;
    let r = patch(&a, &path, 0, video[..first].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "upload-offset"), first.to_string());
    let row = tidepost_store::uploads::get(&a.db, &ws.workspace.id, &id)
        .await
        .unwrap()
        .unwrap();
    let parts = tidepost_store::uploads::parts(&a.db, &ws.workspace.id, &id)
        .await
        .unwrap();
    if s3 {
        assert_eq!(parts.len(), 1, "one whole part in the multipart upload");
        assert_eq!(parts[0].size as usize, part);
        let tail = row
            .tail
            .clone()
            .expect("the bytes past the part are a tail");
        let server = a.s3.as_ref().unwrap();
        let objects = server.objects(bucket.as_deref().unwrap()).await;
        assert_eq!(
            objects,
            vec![format!("{prefix}.uploads/{id}/{tail}")],
            "{objects:?}"
        );
        assert_eq!(
            server
                .multipart_uploads(bucket.as_deref().unwrap())
                .await
                .len(),
            1
        );
    } else {
        assert!(parts.is_empty() && row.multipart_id.is_none() && row.tail.is_none());
    }

    // The connection to the first instance drops after 3 MB more.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let piece = video[first..first + 3_000_000].to_vec();
    tokio::spawn(async move {
        writer.write_all(&piece).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        drop(writer);
    });
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(FailAtEnd(reader)));
    assert!(
        patch(&a, &path, first, body).await.is_err(),
        "the PATCH broke off"
    );
    // The second instance tells what was kept; the rest goes to it.
    let mut offset = 0;
    for _ in 0..100 {
        let r = http
            .head(b.url(&path))
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        offset = header(&r, "upload-offset").parse::<usize>().unwrap();
        if offset == first + 3_000_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        offset,
        first + 3_000_000,
        "what arrived before the drop is kept"
    );
    // The first instance lets go of the upload a moment after it recorded the offset.
    let mut r = patch(&b, &path, offset, video[offset..].to_vec().into())
        .await
        .unwrap();
    for _ in 0..50 {
        if r.status() != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = patch(&b, &path, offset, video[offset..].to_vec().into())
            .await
            .unwrap();
    }
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "upload-offset"), video.len().to_string());
    let media_id = header(&r, "tidepost-media-id");
    let m: Value = a
        .api_get(&key, &format!("/api/v1/media/{media_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["kind"], "video", "{m}");
    assert_eq!(m["original_name"], "across.mp4");
    assert_eq!(m["size_bytes"], video.len());
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&video));
    assert_eq!(m["sha256"], sha.as_str(), "{m}");
    let mut stored = Vec::new();
    tidepost_app::media::storage(&a.app)
        .open(&sha, None)
        .await
        .unwrap()
        .read_to_end(&mut stored)
        .await
        .unwrap();
    assert!(stored == video, "the stored media is the file");
    // Nothing of the upload is left.
    if let (Some(server), Some(bucket)) = (&a.s3, &bucket) {
        assert_eq!(server.objects(bucket).await, vec![format!("{prefix}{sha}")]);
        assert!(server.multipart_uploads(bucket).await.is_empty());
        for dir in [&dir_a, &dir_b] {
            let kept = files_under(dir);
            assert!(
                kept.iter().all(|f| !f.contains(".uploads")),
                "{}: {kept:?}",
                dir.display()
            );
        }
    } else {
        assert!(files_under(&dir_a.join("media/.uploads")).is_empty());
    }

    // An upload that expires with a part and a tail.
    let r = http
        .post(b.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", video.len().to_string())
        .send()
        .await
        .unwrap();
    let path = header(&r, "location");
    let gone_id = path.rsplit('/').next().unwrap().to_string();
    let r = patch(&b, &path, 0, video[..part + 4096].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    if let (Some(server), Some(bucket)) = (&a.s3, &bucket) {
        assert_eq!(server.multipart_uploads(bucket).await.len(), 1);
        assert_eq!(
            server.objects(bucket).await.len(),
            2,
            "the media and a tail"
        );
    }
    sqlx::query("UPDATE uploads SET expires_at = 0 WHERE id = $1")
        .bind(&gone_id)
        .execute(a.db.pool())
        .await
        .unwrap();
    let report = tidepost_app::media::sweep::sweep(&a.app, tidepost_domain::now_ms())
        .await
        .unwrap();
    assert_eq!(report.uploads_expired, 1, "{report:?}");
    assert_eq!(report.uploads_kept, 0, "{report:?}");
    if let (Some(server), Some(bucket)) = (&a.s3, &bucket) {
        assert!(
            server.multipart_uploads(bucket).await.is_empty(),
            "the sweep aborted the multipart upload"
        );
        assert_eq!(server.objects(bucket).await, vec![format!("{prefix}{sha}")]);
    } else {
        assert!(files_under(&dir_a.join("media/.uploads")).is_empty());
    }
    let r = http
        .head(a.url(&path))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// The signed, expiring `/media/{id}/{token}` URL Meta fetches stored media from streams the
/// bytes from the storage (the folder or the bucket) with their type and length; once the
/// object is gone from the storage it answers 410, not a 500.
async fn signed_media_urls_stream_from_the_storage(backend: Backend, storage: MediaStorage) {
    let app = spawn_app_with(
        backend,
        Options {
            s3: storage == MediaStorage::S3,
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a = app.signed_in("media-url").await;
    let key = app.api_key(&a.workspace.id, "media", &[]).await;
    let image = photo(dir.path(), "signed.jpg", 640, 800);
    let r = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let media = tidepost_store::media::get(&app.db, &a.workspace.id, &id)
        .await
        .unwrap()
        .unwrap();
    let signed = tidepost_app::platforms::instagram::media_url::signed_url(&app.app, &media);
    let signed = url::Url::parse(&signed).unwrap();
    let path = format!("{}?{}", signed.path(), signed.query().unwrap_or_default());
    let r = bare_client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "image/jpeg");
    assert_eq!(header(&r, "content-length"), image.len().to_string());
    assert_eq!(r.bytes().await.unwrap().as_ref(), image.as_slice());

    let storage_of = tidepost_app::media::storage(&app.app);
    assert!(storage_of.delete(&media.sha256).await.unwrap());
    let r = bare_client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
}

async fn media_api_and_resumable_uploads(backend: Backend, storage: MediaStorage) {
    let app = spawn_app_with(
        backend,
        Options {
            env: vec![("TIDEPOST_MAX_UPLOAD_BYTES", "20000000".into())],
            s3: storage == MediaStorage::S3,
            ..Default::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a = app.signed_in("media-a").await;
    let b = app.signed_in("media-b").await;
    let key = app.api_key(&a.workspace.id, "media", &[]).await;
    let other = app.api_key(&b.workspace.id, "media", &[]).await;
    let http = bare_client();

    // A direct upload, sniffed from its bytes whatever its name says.
    let image = jpeg(dir.path(), 1080, 1350);
    let r = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .header("x-file-name", "cover.png")
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["kind"], "image");
    assert_eq!(first["container"], "jpeg");
    assert_eq!(first["content_type"], "image/jpeg");
    assert_eq!(
        (first["width"].as_i64(), first["height"].as_i64()),
        (Some(1080), Some(1350))
    );
    assert_eq!(first["checks"]["instagram_image"], serde_json::json!([]));
    // The same bytes as a multipart form: the same media.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(image.clone())
            .file_name("again.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let again: Value = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], first["id"], "same bytes, one media");
    // A wide image breaks Instagram's aspect ratio rule, named in the checks.
    let wide: Value = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .body(jpeg(dir.path(), 2000, 1000))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        wide["checks"]["instagram_image"][0]["rule"],
        "instagram.image.aspect_ratio"
    );
    // Not a video, whatever its type says.
    let r = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "video/mp4")
        .body("this is text")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unsupported-media").await;

    // tus: discovery, version, size limit.
    let r = http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    assert_eq!(header(&r, "tus-extension"), "creation,termination");
    assert_eq!(header(&r, "tus-max-size"), "20000000");
    let r = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    problem(r, StatusCode::PRECONDITION_FAILED, "tus-version").await;
    let r = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "20000001")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "too-large").await;

    // A video in three PATCHes, the second one dropped halfway.
    let video = mp4(dir.path());
    let r = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", video.len().to_string())
        .header(
            "upload-metadata",
            "filename Y2xpcC5tcDQ=,filetype dmlkZW8vbXA0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "tus-resumable"), "1.0.0");
    let url = app.url(&header(&r, "location"));
    let patch = |offset: usize, body: reqwest::Body| {
        http.patch(&url)
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let r = patch(0, video[..20_000].to_vec().into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "upload-offset"), "20000");
    // A wrong offset: 409 with where to resume.
    let r = patch(100, video[100..200].to_vec().into()).await.unwrap();
    assert_eq!(header(&r, "upload-offset"), "20000");
    let p = problem(r, StatusCode::CONFLICT, "offset-mismatch").await;
    assert_eq!(p["offset"], 20_000);
    // The connection drops after 30,000 more bytes.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let piece = video[20_000..50_000].to_vec();
    tokio::spawn(async move {
        writer.write_all(&piece).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        drop(writer);
    });
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(FailAtEnd(reader)));
    assert!(patch(20_000, body).await.is_err(), "the PATCH broke off");
    // HEAD tells what the server kept; the rest goes from there.
    let mut offset = 0;
    for _ in 0..50 {
        let r = http
            .head(&url)
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "upload-length"), video.len().to_string());
        assert_eq!(header(&r, "cache-control"), "no-store");
        offset = header(&r, "upload-offset").parse::<usize>().unwrap();
        if offset == 50_000 {
            break;
        }
        // The server notices the dropped body a moment later.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(offset, 50_000, "what arrived before the drop is kept");
    // Another workspace does not see the upload.
    let r = http
        .head(&url)
        .bearer_auth(&other)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = patch(offset, video[offset..].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "upload-offset"), video.len().to_string());
    let media_id = header(&r, "tidepost-media-id");
    assert!(!media_id.is_empty());
    let upload: Value = http
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upload["state"], "complete");
    assert_eq!(upload["media_id"], media_id.as_str());
    let m: Value = app
        .api_get(&key, &format!("/api/v1/media/{media_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["kind"], "video");
    assert_eq!(m["container"], "mp4");
    assert_eq!(m["original_name"], "clip.mp4");
    assert_eq!(m["size_bytes"], video.len());
    assert_eq!(m["info"]["video_codec"], "h264");
    assert_eq!(m["info"]["audio_codec"], "aac");
    assert!(
        (m["duration_secs"].as_f64().unwrap() - 4.0).abs() < 0.2,
        "{m}"
    );
    assert_eq!(m["checks"]["tik_tok_video"], serde_json::json!([]));
    assert_eq!(m["usage"]["posts"], 0);
    // Another workspace: not found.
    let r = app
        .api_get(&other, &format!("/api/v1/media/{media_id}"))
        .await;
    problem(r, StatusCode::NOT_FOUND, "not-found").await;

    // Termination of an unfinished upload.
    let r = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .send()
        .await
        .unwrap();
    let gone = app.url(&header(&r, "location"));
    let r = http
        .delete(&gone)
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = http.get(&gone).bearer_auth(&key).send().await.unwrap();
    problem(r, StatusCode::NOT_FOUND, "not-found").await;

    // Listing: newest first, by kind, page by page.
    let list: Value = app
        .api_get(&key, "/api/v1/media?kind=image&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], wide["id"]);
    let cursor = list["next_cursor"].as_str().unwrap();
    let next: Value = app
        .api_get(
            &key,
            &format!("/api/v1/media?kind=image&limit=1&cursor={cursor}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"][0]["id"], first["id"]);
    assert_eq!(next["next_cursor"], Value::Null);
    let all: Value = app
        .api_get(&key, "/api/v1/media")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    problem(
        app.api_get(&key, "/api/v1/media?kind=audio").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let theirs: Value = app
        .api_get(&other, "/api/v1/media")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], serde_json::json!([]));

    // A post that has not finished uses the video: it cannot be deleted.
    let now = tidepost_domain::now_ms();
    sqlx::query(
        "INSERT INTO posts (id, workspace_id, caption, kind, media_id, options, created_at, updated_at) \
         VALUES ('p-media', $1, '', 'video', $2, '{}', $3, $3)",
    )
    .bind(&a.workspace.id)
    .bind(&media_id)
    .bind(now)
    .execute(app.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO post_targets (id, workspace_id, post_id, account_id, platform, mode, source, state, \
         bytes_total, bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, provider_post_ids, \
         error_retryable, created_at, updated_at) \
         VALUES ('t-media', $1, 'p-media', 'acc', 'tiktok', 'direct', 'file_upload', 'queued', 0, 0, 0, 0, 0, 0, '[]', 0, $2, $2)",
    )
    .bind(&a.workspace.id)
    .bind(now)
    .execute(app.db.pool())
    .await
    .unwrap();
    let r = http
        .delete(app.url(&format!("/api/v1/media/{media_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::CONFLICT, "media-in-use").await;
    assert_eq!(p["post_ids"], serde_json::json!(["p-media"]));
    // Another workspace cannot delete anything of ours.
    let r = http
        .delete(app.url(&format!("/api/v1/media/{}", wide["id"].as_str().unwrap())))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND, "not-found").await;
    let r = http
        .delete(app.url(&format!("/api/v1/media/{}", wide["id"].as_str().unwrap())))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // The library page lists what is left, with its metadata, and deletes from there.
    let page = app.page_text(&a.client, "/media").await;
    assert!(
        page.contains("clip.mp4") && page.contains("cover.png"),
        "{page}"
    );
    assert!(
        page.contains("360×640") && page.contains("h264 + aac"),
        "{page}"
    );
    assert!(page.contains("/assets/tus_upload.js"));
    assert!(
        page.contains(r#"href="/media""#),
        "the nav links the library"
    );
    let r = a
        .client
        .post(app.url(&format!("/media/{media_id}/delete")))
        .form(&[("csrf", a.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let shown = app.page_text(&a.client, &location(&r)).await;
    assert!(shown.contains("have not finished"), "{shown}");
    let r = a
        .client
        .post(app.url(&format!("/media/{}/delete", first["id"].as_str().unwrap())))
        .form(&[("csrf", a.csrf.as_str())])
        .send()
        .await
        .unwrap();
    let shown = app.page_text(&a.client, &location(&r)).await;
    assert!(
        shown.contains("Deleted.") && !shown.contains("cover.png"),
        "{shown}"
    );
    let js = http
        .get(app.url("/assets/tus_upload.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("TidepostUpload"));
}

/// The media page in Chromium: tus_upload.js sends a real JPEG in small chunks, survives a
/// PATCH that fails on the network (it asks HEAD and goes on), reports progress, and the page's
/// own upload form adds a file to the library.
#[tokio::test]
async fn browser_uploads_resume_after_a_failed_chunk() {
    use crate::browser::Browser;
    use fantoccini::Locator;

    let app = spawn_app(Backend::Sqlite).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(1280, 800).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    b.click(".nav a[href='/media']").await;
    b.wait_for_path("the media page", |p| p == "/media").await;
    assert_eq!(b.text_of("h1").await, "Media library");

    let dir = tempfile::tempdir().unwrap();
    let image = photo(dir.path(), "pattern.jpg", 1080, 1350);
    assert!(image.len() > 5 * 4096, "several chunks: {}", image.len());
    let path = dir.path().join("sunrise.jpg");
    std::fs::write(&path, &image).unwrap();
    b.client
        .find(Locator::Css("#media-files"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    // The second PATCH fails as if the network dropped it.
    b.client
        .execute(
            r##"
            var patches = 0;
            var send = XMLHttpRequest.prototype.send;
            var open = XMLHttpRequest.prototype.open;
            XMLHttpRequest.prototype.open = function (method) {
              this.__method = method;
              return open.apply(this, arguments);
            };
            XMLHttpRequest.prototype.send = function (body) {
              if (this.__method === "PATCH") window.__patches = ++patches;
              if (this.__method === "PATCH" && patches === 2) {
                var xhr = this;
                setTimeout(function () { xhr.onerror(); }, 10);
                return;
              }
              return send.apply(this, arguments);
            };
            window.__progress = [];
            var form = document.querySelector("form[data-tus-upload]");
            TidepostUpload.start(document.querySelector("#media-files").files[0], {
              csrf: form.getAttribute("data-csrf"),
              chunkSize: 4096,
              onProgress: function (sent, total) { window.__progress.push([sent, total]); },
              onSuccess: function (mediaId) { window.__done = mediaId; },
              onError: function (message) { window.__failed = message; },
            });
            return true;
            "##,
            vec![],
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let media_id = loop {
        let state: Value = b
            .client
            .execute(
                "return [window.__done || null, window.__failed || null];",
                vec![],
            )
            .await
            .unwrap();
        if let Some(id) = state[0].as_str() {
            break id.to_string();
        }
        assert!(state[1].is_null(), "the upload failed: {state}");
        assert!(
            std::time::Instant::now() < deadline,
            "the upload did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let progress: Value = b
        .client
        .execute("return window.__progress;", vec![])
        .await
        .unwrap();
    let sent: Vec<u64> = progress
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    assert!(sent.len() > 5, "progress events: {sent:?}");
    let patches: Value = b
        .client
        .execute("return window.__patches;", vec![])
        .await
        .unwrap();
    assert_eq!(
        patches.as_u64(),
        Some(image.len().div_ceil(4096) as u64 + 1),
        "one PATCH per chunk, and the failed one sent again"
    );
    assert_eq!(*sent.last().unwrap(), image.len() as u64);
    let stored = tidepost_store::media::get(&app.db, &ws.id, &media_id)
        .await
        .unwrap()
        .expect("the media is in the library");
    assert_eq!(stored.original_name.as_deref(), Some("sunrise.jpg"));
    assert_eq!(stored.size_bytes, image.len() as i64);
    assert_eq!((stored.width, stored.height), (Some(1080), Some(1350)));

    // The page's own form (fresh page, no fault): the file appears in the list.
    b.goto(&app.url("/media")).await;
    let second = dir.path().join("noon.jpg");
    std::fs::write(&second, jpeg(dir.path(), 1080, 1080)).unwrap();
    b.client
        .find(Locator::Css("#media-files"))
        .await
        .unwrap()
        .send_keys(&second.display().to_string())
        .await
        .unwrap();
    b.click("#media-upload button[type=submit]").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let table = b.client.find(Locator::Css("#media")).await;
        if let Ok(t) = table
            && t.text().await.unwrap_or_default().contains("noon.jpg")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "noon.jpg never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let text = b.text_of("#media").await;
    assert!(
        text.contains("sunrise.jpg") && text.contains("1080×1350"),
        "{text}"
    );
    b.assert_layout_fits("the media page").await;
    b.screenshot("media_library", "uploaded").await;
    b.close().await;
}

/// Without ffprobe a video cannot be probed: the upload says so (503, naming the fix) instead
/// of failing obscurely, a resumable upload keeps its bytes, and images (read by their headers)
/// still work.
#[tokio::test]
async fn missing_ffprobe_is_a_clear_error() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            env: vec![("TIDEPOST_FFPROBE_PATH", "/nonexistent/ffprobe".into())],
            ..Default::default()
        },
    )
    .await;
    let a = app.signed_in("no-ffprobe").await;
    let key = app.api_key(&a.workspace.id, "media", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let http = bare_client();
    let video = mp4(dir.path());
    let r = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "video/mp4")
        .body(video.clone())
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        p["detail"].as_str().unwrap().contains("install ffmpeg"),
        "{p}"
    );
    let r = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", video.len().to_string())
        .send()
        .await
        .unwrap();
    let url = app.url(&header(&r, "location"));
    let r = http
        .patch(&url)
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(video.clone())
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let upload: Value = http
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upload["state"], "receiving", "kept, to finish later");
    assert_eq!(upload["offset"], video.len());
    let r = http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .body(jpeg(dir.path(), 800, 800))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
