//! The test media generator (`media::testing`) makes what it says: padded videos that ffprobe
//! and tidepost's prober read as the same valid TikTok video and Instagram reel, whatever their
//! size, with different bytes per label; images of the asked size.

use tidepost_app::media::rules::{self, CreatorLimits, Target};
use tidepost_app::media::testing::{self, VIDEO_HEIGHT, VIDEO_SECS, VIDEO_WIDTH};
use tidepost_app::media::{MediaKind, Prober};
use tokio::io::AsyncReadExt;

async fn probe(bytes: &[u8]) -> tidepost_app::media::MediaInfo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    std::fs::write(&path, bytes).unwrap();
    Prober::default().probe(&path).await.unwrap()
}

#[tokio::test]
async fn padded_videos_probe_as_the_clip() {
    for size in [0, 16 * 1024, 100_000, 3 * 1024 * 1024] {
        let video = testing::video(size, "a");
        assert_eq!(
            video.len() as u64,
            (size as u64).max(testing::min_video_len())
        );
        let info = probe(&video).await;
        assert_eq!(info.kind, MediaKind::Video, "{size}: {info:?}");
        assert_eq!(
            (info.container.as_str(), info.mime.as_str()),
            ("mp4", "video/mp4")
        );
        assert_eq!(
            (info.width, info.height),
            (Some(VIDEO_WIDTH), Some(VIDEO_HEIGHT))
        );
        assert_eq!(info.video_codec.as_deref(), Some("h264"));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert!(
            (info.duration_secs.unwrap() - VIDEO_SECS).abs() < 0.1,
            "{info:?}"
        );
        assert_eq!(info.size_bytes, video.len() as u64);
        for target in [Target::TikTokVideo, Target::InstagramReel] {
            let broken = rules::check(target, &info, &CreatorLimits::default());
            assert!(broken.is_empty(), "{target:?}: {broken:?}");
        }
    }
    // ffprobe itself reads it without a complaint.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.mp4");
    std::fs::write(&path, testing::video(64 * 1024, "ffprobe")).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_format", "-show_streams"])
        .arg(&path)
        .output()
        .expect("ffprobe runs (Debian: apt-get install ffmpeg)");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("codec_type=video") && text.contains("duration=3.5"),
        "{text}"
    );
}

#[tokio::test]
async fn labels_make_distinct_files_and_every_way_gives_the_same_bytes() {
    let a = testing::video(50_000, "a");
    assert_eq!(a, testing::video(50_000, "a"));
    assert_ne!(a, testing::video(50_000, "b"));
    let small = testing::video(0, "1");
    assert_ne!(small, testing::video(0, "2"));

    let mut streamed = Vec::new();
    testing::video_reader(50_000, "a")
        .read_to_end(&mut streamed)
        .await
        .unwrap();
    assert_eq!(streamed, a);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.mp4");
    testing::write_video(&path, 50_000, "a");
    assert_eq!(std::fs::read(&path).unwrap(), a);
}

/// Over 4 GiB the `free` box's size takes 64 bits; a sparse file stands in for the padding.
#[tokio::test]
async fn a_video_over_4_gib_still_probes() {
    let size = 5 * 1024 * 1024 * 1024;
    let mut reader = testing::video_reader(size, "big");
    assert_eq!(reader.len(), size);
    let mut head = vec![0u8; testing::min_video_len() as usize];
    reader.read_exact(&mut head).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    std::fs::write(&path, &head).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(size)
        .unwrap();
    let info = Prober::default().probe(&path).await.unwrap();
    assert_eq!(
        (info.kind, info.container.as_str()),
        (MediaKind::Video, "mp4")
    );
    assert!(
        (info.duration_secs.unwrap() - VIDEO_SECS).abs() < 0.1,
        "{info:?}"
    );
}

#[tokio::test]
async fn images_have_the_asked_size() {
    for (bytes, container) in [
        (testing::jpeg(1080, 1350), "jpeg"),
        (testing::png(1000, 2000), "png"),
    ] {
        let info = probe(&bytes).await;
        assert_eq!(info.kind, MediaKind::Image);
        assert_eq!(info.container, container);
        let expected = if container == "jpeg" {
            (1080, 1350)
        } else {
            (1000, 2000)
        };
        assert_eq!(
            (info.width, info.height),
            (Some(expected.0), Some(expected.1))
        );
    }
}
