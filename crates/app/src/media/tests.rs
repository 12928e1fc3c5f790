//! The media library against real files made at test time with ffmpeg (nothing binary is
//! committed) and a real database on both backends.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tidepost_store::testing::{Backend, TestDb};
use tokio::io::{AsyncRead, ReadBuf};

use super::rules::{self, CreatorLimits, Target};
use super::*;
use crate::config::RawSettings;
use crate::providers::Providers;

/// Runs ffmpeg with `args` to make `name` in `dir`; returns its path.
fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg made {name}");
    out
}

/// A short H.264/AAC clip of `w`x`h` lasting `secs`, in the container `name`'s extension says.
fn clip(dir: &Path, name: &str, w: u32, h: u32, secs: u32, codec: &[&str]) -> PathBuf {
    let video = format!("testsrc=size={w}x{h}:rate=30");
    let secs = secs.to_string();
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440",
        "-t",
        &secs,
    ];
    args.extend_from_slice(codec);
    ffmpeg(dir, name, &args)
}

const H264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
];

fn still(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let color = format!("color=c=blue:size={w}x{h}");
    ffmpeg(dir, name, &["-f", "lavfi", "-i", &color, "-frames:v", "1"])
}

async fn app(db: &TestDb, dir: &Path, extra: &[(&'static str, String)]) -> App {
    let mut flags: Vec<(&'static str, String)> = vec![
        ("database_url", db.url.clone()),
        ("data_dir", dir.display().to_string()),
        ("sandbox", "true".into()),
    ];
    flags.extend_from_slice(extra);
    let raw = RawSettings::gather(&flags, |_| None, None).unwrap();
    let config = crate::Config::from_raw(&raw).unwrap();
    let keyring = tidepost_vault::Keyring::parse(secrecy::ExposeSecret::expose_secret(
        &tidepost_vault::Keyring::generate_key_text(),
    ))
    .unwrap();
    let providers = Providers::from_config(&config, None);
    App::new(config, db.db.clone(), keyring, providers)
}

async fn workspace(app: &App, slug: &str) -> String {
    tidepost_store::workspaces::create(&app.db, slug, slug)
        .await
        .unwrap()
        .id
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn probes_real_videos_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let prober = Prober::default();
    let mp4 = prober
        .probe(&clip(d, "a.mp4", 360, 640, 4, H264))
        .await
        .unwrap();
    assert_eq!(mp4.kind, MediaKind::Video);
    assert_eq!(
        (mp4.container.as_str(), mp4.mime.as_str()),
        ("mp4", "video/mp4")
    );
    assert_eq!((mp4.width, mp4.height), (Some(360), Some(640)));
    assert_eq!(mp4.video_codec.as_deref(), Some("h264"));
    assert_eq!(mp4.audio_codec.as_deref(), Some("aac"));
    assert!((mp4.duration_secs.unwrap() - 4.0).abs() < 0.2, "{mp4:?}");
    assert!((mp4.frame_rate.unwrap() - 30.0).abs() < 0.01, "{mp4:?}");
    assert!(mp4.bit_rate.unwrap() > 0);
    assert!(rules::check(Target::TikTokVideo, &mp4, &CreatorLimits::default()).is_empty());
    // Instagram reels are fine too (a 9:16 clip), though small: advice, no refusal.
    assert!(rules::check(Target::InstagramReel, &mp4, &CreatorLimits::default()).is_empty());
    assert_eq!(
        rules::advice(Target::InstagramReel, &mp4)
            .iter()
            .map(|v| v.rule)
            .collect::<Vec<_>>(),
        ["instagram.reel.resolution"]
    );

    let mov = prober
        .probe(&clip(d, "a.mov", 640, 360, 3, H264))
        .await
        .unwrap();
    assert_eq!(
        (mov.container.as_str(), mov.mime.as_str()),
        ("mov", "video/quicktime")
    );

    let webm = prober
        .probe(&clip(
            d,
            "a.webm",
            320,
            240,
            1,
            &["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"],
        ))
        .await
        .unwrap();
    assert_eq!(
        (webm.container.as_str(), webm.mime.as_str()),
        ("webm", "video/webm")
    );
    assert_eq!(webm.video_codec.as_deref(), Some("vp8"));
    let v: Vec<_> = rules::check(Target::TikTokVideo, &webm, &CreatorLimits::default())
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(v, ["tiktok.video.duration", "tiktok.video.resolution"]);
    let v: Vec<_> = rules::check(Target::InstagramReel, &webm, &CreatorLimits::default())
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(
        v,
        [
            "instagram.reel.container",
            "instagram.reel.codec",
            "instagram.reel.audio",
            "instagram.reel.duration"
        ]
    );

    let mkv = prober
        .probe(&clip(d, "a.mkv", 400, 400, 4, &["-c:v", "mpeg4", "-an"]))
        .await
        .unwrap();
    assert_eq!(mkv.container, "mkv");
    assert_eq!(mkv.audio_codec, None);
    let v: Vec<_> = rules::check(Target::TikTokVideo, &mkv, &CreatorLimits::default())
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(v, ["tiktok.video.container", "tiktok.video.codec"]);

    let jpeg = prober.probe(&still(d, "a.jpg", 1080, 1350)).await.unwrap();
    assert_eq!(jpeg.kind, MediaKind::Image);
    assert_eq!(
        (jpeg.container.as_str(), jpeg.mime.as_str()),
        ("jpeg", "image/jpeg")
    );
    assert_eq!((jpeg.width, jpeg.height), (Some(1080), Some(1350)));
    assert!(rules::check(Target::InstagramImage, &jpeg, &CreatorLimits::default()).is_empty());
    assert!(rules::check(Target::TikTokPhoto, &jpeg, &CreatorLimits::default()).is_empty());
    // Sniffed from the bytes: a PNG named .jpg is a PNG.
    let png = still(d, "b.png", 1000, 2000);
    std::fs::rename(&png, d.join("b.jpg")).unwrap();
    let png = prober.probe(&d.join("b.jpg")).await.unwrap();
    assert_eq!(png.container, "png");
    let v: Vec<_> = rules::check(Target::InstagramImage, &png, &CreatorLimits::default())
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(
        v,
        ["instagram.image.format", "instagram.image.aspect_ratio"]
    );
    let webp = prober.probe(&still(d, "c.webp", 800, 600)).await.unwrap();
    assert_eq!((webp.container.as_str(), webp.width), ("webp", Some(800)));
    assert!(rules::check(Target::TikTokPhoto, &webp, &CreatorLimits::default()).is_empty());

    std::fs::write(d.join("notes.mp4"), b"just some text, not a video at all").unwrap();
    let err = prober.probe(&d.join("notes.mp4")).await.unwrap_err();
    assert!(matches!(err, ProbeError::Unreadable(_)), "{err:?}");

    let missing = Prober {
        ffprobe: "/nonexistent/ffprobe".into(),
        ..Prober::default()
    };
    let err = missing.probe(&d.join("notes.mp4")).await.unwrap_err();
    assert!(matches!(err, ProbeError::ToolMissing(_)), "{err:?}");
    assert!(err.to_string().contains("install ffmpeg"), "{err}");
    assert!(missing.check().await.is_err());
    assert!(prober.check().await.unwrap().contains("ffprobe"));
}

async fn dedupe_and_delete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&db, dir.path(), &[]).await;
    let a = workspace(&app, "a").await;
    let b = workspace(&app, "b").await;
    let jpeg = std::fs::read(still(dir.path(), "x.jpg", 1080, 1080)).unwrap();
    let first = import(
        &app,
        &a,
        &jpeg[..],
        "application/octet-stream",
        Some("../../x.jpg"),
    )
    .await
    .unwrap();
    let again = import(&app, &a, &jpeg[..], "image/jpeg", Some("y.jpg"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "same bytes, one media");
    // What the bytes are, not what the client said; the name is shown, never a path.
    assert_eq!(
        (first.kind.as_str(), first.content_type.as_str()),
        ("image", "image/jpeg")
    );
    assert_eq!(first.original_name.as_deref(), Some("x.jpg"));
    assert_eq!((first.width, first.height), (Some(1080), Some(1080)));
    assert_eq!(info(&first).unwrap().container, "jpeg");
    let media_dir = dir.path().join("media");
    assert_eq!(files_in(&media_dir), std::slice::from_ref(&first.sha256));
    // Another workspace: its own row, the same file.
    let other = import(&app, &b, &jpeg[..], "image/jpeg", None)
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(files_in(&media_dir), std::slice::from_ref(&first.sha256));
    // Tenancy: b cannot delete a's media.
    assert!(matches!(
        delete(&app, &b, &first.id).await,
        Err(MediaError::NotFound("media"))
    ));
    delete(&app, &a, &first.id).await.unwrap();
    assert_eq!(
        files_in(&media_dir),
        std::slice::from_ref(&first.sha256),
        "b still holds it"
    );
    delete(&app, &b, &other.id).await.unwrap();
    assert!(files_in(&media_dir).is_empty());

    // The strict import refuses what is neither video nor image, and keeps no file.
    let err = import(&app, &a, &b"hello"[..], "video/mp4", Some("a.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Unreadable(_)), "{err:?}");
    assert!(files_in(&media_dir).is_empty());
    // The lenient store (publishing's older path) keeps it, and the rules say why it fails.
    let kept = store(&app, &a, &b"hello"[..], "video/mp4", Some("a.mp4"))
        .await
        .unwrap();
    assert!(kept.info.is_none() && kept.probe_error.is_some());
    let v = check(&kept, Target::TikTokVideo, &CreatorLimits::default());
    assert_eq!(v[0].rule, "media.probe");
    assert!(v[0].message.contains("a.mp4"), "{}", v[0].message);
}

#[tokio::test]
async fn dedupe_and_delete_sqlite() {
    dedupe_and_delete(Backend::Sqlite).await;
}

#[tokio::test]
async fn dedupe_and_delete_postgres() {
    dedupe_and_delete(Backend::Postgres).await;
}

/// Reads `bytes`, then fails: a connection that drops in the middle of a PATCH.
struct Broken {
    bytes: Vec<u8>,
    at: usize,
}

impl AsyncRead for Broken {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at >= self.bytes.len() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset",
            )));
        }
        let n = buf.remaining().min(self.bytes.len() - self.at).min(1000);
        let at = self.at;
        buf.put_slice(&self.bytes[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

async fn resumable_upload(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&db, dir.path(), &[("max_upload_bytes", "10000000".into())]).await;
    let ws = workspace(&app, "a").await;
    let other = workspace(&app, "b").await;
    let video = std::fs::read(clip(dir.path(), "v.mp4", 360, 640, 4, H264)).unwrap();
    let len = video.len() as u64;
    let meta = "filename di5tcDQ=,filetype dmlkZW8vbXA0";
    let up = uploads::create(&app, &ws, len, meta, None).await.unwrap();
    assert_eq!((up.received, up.file_name.as_deref()), (0, Some("v.mp4")));
    // The first PATCH breaks off after 3000 bytes: what arrived is kept.
    let err = uploads::append(
        &app,
        &ws,
        &up.id,
        0,
        Broken {
            bytes: video[..3000].to_vec(),
            at: 0,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MediaError::Io(_)), "{err:?}");
    let now = uploads::get(&app, &ws, &up.id).await.unwrap();
    assert_eq!(now.received, 3000);
    // A client that thinks it is elsewhere is told where to resume.
    match uploads::append(&app, &ws, &up.id, 0, &video[..10]).await {
        Err(MediaError::Conflict {
            offset: Some(3000), ..
        }) => {}
        other => panic!("expected an offset mismatch, got {other:?}"),
    }
    // Another workspace cannot see or append to it.
    assert!(matches!(
        uploads::append(&app, &other, &up.id, 3000, &video[3000..]).await,
        Err(MediaError::NotFound("upload"))
    ));
    // More bytes than declared are refused; what fit is kept.
    let mut too_long = video[3000..].to_vec();
    too_long.extend_from_slice(b"and some more");
    let err = uploads::append(&app, &ws, &up.id, 3000, &too_long[..])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Upload-Length"), "{err}");
    let at = uploads::get(&app, &ws, &up.id).await.unwrap().received as usize;
    assert_eq!(at, video.len());
    // A PATCH with no bytes at the end finishes it.
    let done = uploads::append(&app, &ws, &up.id, at as u64, &video[at..])
        .await
        .unwrap();
    assert_eq!(done.state, "complete");
    assert_eq!(done.received as u64, len);
    let media = tidepost_store::media::get(&app.db, &ws, done.media_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(media.original_name.as_deref(), Some("v.mp4"));
    assert_eq!(
        (media.kind.as_str(), media.container.as_deref()),
        ("video", Some("mp4"))
    );
    assert_eq!(media.duration_ms.map(|d| (d + 500) / 1000), Some(4));
    assert_eq!(
        std::fs::read(path_of(&app, &media)).unwrap(),
        video,
        "stored byte for byte"
    );
    assert!(
        files_in(&uploads::dir(&app)).is_empty(),
        "the partial file is gone"
    );
    // Nothing more can be appended; the same bytes uploaded directly are the same media.
    assert!(matches!(
        uploads::append(&app, &ws, &up.id, len, &b"x"[..]).await,
        Err(MediaError::Conflict { .. })
    ));
    let direct = import(&app, &ws, &video[..], "video/mp4", None)
        .await
        .unwrap();
    assert_eq!(direct.id, media.id);

    // The size limit is checked when the upload is created.
    assert!(matches!(
        uploads::create(&app, &ws, 10_000_001, "", None).await,
        Err(MediaError::TooLarge { max: 10_000_000 })
    ));
    // A complete upload that is no video fails with the reason, and keeps no bytes.
    let bad = uploads::create(&app, &ws, 5, "", None).await.unwrap();
    let err = uploads::append(&app, &ws, &bad.id, 0, &b"hello"[..])
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Unreadable(_)), "{err:?}");
    let failed = uploads::get(&app, &ws, &bad.id).await.unwrap();
    assert_eq!(failed.state, "failed");
    assert!(failed.error.is_some());
    // Termination forgets the upload and its bytes.
    let gone = uploads::create(&app, &ws, 100, "", None).await.unwrap();
    uploads::append(&app, &ws, &gone.id, 0, &video[..50])
        .await
        .unwrap();
    assert!(matches!(
        uploads::terminate(&app, &other, &gone.id).await,
        Err(MediaError::NotFound(_))
    ));
    uploads::terminate(&app, &ws, &gone.id).await.unwrap();
    assert!(files_in(&uploads::dir(&app)).is_empty());
    assert!(matches!(
        uploads::get(&app, &ws, &gone.id).await,
        Err(MediaError::NotFound(_))
    ));
}

#[tokio::test]
async fn resumable_upload_sqlite() {
    resumable_upload(Backend::Sqlite).await;
}

#[tokio::test]
async fn resumable_upload_postgres() {
    resumable_upload(Backend::Postgres).await;
}

async fn sweep_cleans_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        &db,
        dir.path(),
        &[
            ("media_retention_days", "7".into()),
            ("upload_expiry_hours", "1".into()),
        ],
    )
    .await;
    let ws = workspace(&app, "a").await;
    let d = dir.path();
    let unused = import(
        &app,
        &ws,
        &std::fs::read(still(d, "1.jpg", 100, 100)).unwrap()[..],
        "image/jpeg",
        None,
    )
    .await
    .unwrap();
    let pending = import(
        &app,
        &ws,
        &std::fs::read(still(d, "2.jpg", 200, 200)).unwrap()[..],
        "image/jpeg",
        None,
    )
    .await
    .unwrap();
    let recent = import(
        &app,
        &ws,
        &std::fs::read(still(d, "3.jpg", 300, 300)).unwrap()[..],
        "image/jpeg",
        None,
    )
    .await
    .unwrap();
    // A post that has not finished uses `pending`.
    sqlx::query(
        "INSERT INTO posts (id, workspace_id, caption, kind, media_id, options, created_at, updated_at) \
         VALUES ('p1', $1, '', 'photo', $2, '{}', 0, 0)",
    )
    .bind(&ws)
    .bind(&pending.id)
    .execute(app.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO post_targets (id, workspace_id, post_id, account_id, platform, mode, source, state, \
         bytes_total, bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, provider_post_ids, \
         error_retryable, created_at, updated_at) \
         VALUES ('t1', $1, 'p1', 'acc', 'tiktok', 'direct', 'file', 'scheduled', 0, 0, 0, 0, 0, 0, '[]', 0, 0, 0)",
    )
    .bind(&ws)
    .execute(app.db.pool())
    .await
    .unwrap();
    assert!(matches!(
        delete(&app, &ws, &pending.id).await,
        Err(MediaError::InUse { ref post_ids, .. }) if post_ids == &["p1".to_string()]
    ));
    let partial = uploads::create(&app, &ws, 100, "", None).await.unwrap();
    uploads::append(&app, &ws, &partial.id, 0, &b"0123456789"[..])
        .await
        .unwrap();
    // Partial files a crash left: a put's temporary file and the file of an upload whose row
    // is gone (both a week old by the time the sweep runs).
    std::fs::write(d.join("media").join(".put-crashed"), b"half").unwrap();
    let orphan = tidepost_domain::new_id();
    std::fs::write(uploads::dir(&app).join(&orphan), b"half").unwrap();
    // Eight days later, with `recent` used yesterday.
    let later = tidepost_domain::now_ms() + 8 * 86_400_000;
    tidepost_store::media::touch(&app.db, &ws, &recent.id, later - 86_400_000)
        .await
        .unwrap();
    let report = sweep::sweep(&app, later).await.unwrap();
    assert_eq!(
        report,
        sweep::SweepReport {
            media_deleted: 1,
            media_kept: 1,
            uploads_expired: 1,
            uploads_kept: 0,
            strays_deleted: 2,
        }
    );
    assert!(!d.join("media").join(".put-crashed").exists());
    let left: Vec<String> = tidepost_store::media::list(&app.db, &ws, None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, [recent.id.clone(), pending.id.clone()]);
    assert!(!files_in(&d.join("media")).contains(&unused.sha256));
    assert!(files_in(&uploads::dir(&app)).is_empty());
    assert!(uploads::get(&app, &ws, &partial.id).await.is_err());
    // Nothing more to do on a second run.
    assert_eq!(
        sweep::sweep(&app, later).await.unwrap(),
        sweep::SweepReport::default()
    );
}

#[tokio::test]
async fn sweep_cleans_up_sqlite() {
    sweep_cleans_up(Backend::Sqlite).await;
}

#[tokio::test]
async fn sweep_cleans_up_postgres() {
    sweep_cleans_up(Backend::Postgres).await;
}

/// Probing that cannot run (no ffprobe) is not the file's fault: a finished resumable upload
/// keeps its bytes, and finishes once ffprobe is there.
#[tokio::test]
async fn an_upload_waits_for_ffprobe() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let without = app(
        &db,
        dir.path(),
        &[("ffprobe_path", "/nonexistent/ffprobe".into())],
    )
    .await;
    let ws = workspace(&without, "a").await;
    let video = std::fs::read(clip(dir.path(), "v.mp4", 360, 640, 4, H264)).unwrap();
    let up = uploads::create(&without, &ws, video.len() as u64, "", None)
        .await
        .unwrap();
    let err = uploads::append(&without, &ws, &up.id, 0, &video[..])
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("install ffmpeg"), "{err}");
    assert_eq!(
        std::fs::read(uploads::dir(&without).join(&up.id)).unwrap(),
        video,
        "the bytes are kept whole"
    );
    let with = app(&db, dir.path(), &[]).await;
    let done = uploads::append(&with, &ws, &up.id, video.len() as u64, &b""[..])
        .await
        .unwrap();
    assert_eq!(done.state, "complete");
    assert!(done.media_id.is_some());
}
