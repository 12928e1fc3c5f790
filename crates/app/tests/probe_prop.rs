//! Media probing reads files people upload: any bytes, with any name. Property: probing never
//! panics and never hangs, whatever the bytes — random, or a real format's magic number followed
//! by garbage (the case that reaches the header parsers and ffprobe) — and what it reports as an
//! image or video is consistent with itself.
//!
//! cargo-fuzz needs a nightly toolchain the build machines cannot fetch; this is a proptest
//! property with a small, fixed case budget (each case may run ffprobe as a subprocess).

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tidepost_app::media::{MediaKind, Prober};

/// Files probed: each non-image case runs ffprobe once.
const CASES: usize = 48;

/// Magic numbers of the formats the prober knows, so the parsers behind them see garbage.
const MAGICS: &[&[u8]] = &[
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    b"\xff\xd8\xff\xe0\0\x10JFIF\0",
    b"\xff\xd8\xff\xc0\0\x11\x08",
    b"GIF89a",
    b"RIFF\0\0\0\0WEBPVP8 ",
    b"RIFF\0\0\0\0WEBPVP8X",
    b"\0\0\0\x18ftypheic",
    b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41",
    b"\0\0\0\x14ftypqt  ",
    b"\x1a\x45\xdf\xa3",
    b"BM",
    b"II*\0",
    b"MM\0*",
];

fn files() -> impl Strategy<Value = Vec<u8>> {
    let garbage = prop::collection::vec(any::<u8>(), 0..2048);
    prop_oneof![
        1 => garbage.clone(),
        3 => (prop::sample::select(MAGICS), garbage, any::<u32>(), any::<u32>()).prop_map(
            |(magic, tail, w, h)| {
                let mut file = magic.to_vec();
                // Pixel sizes where the headers keep them, extreme ones included.
                file.extend_from_slice(&w.to_be_bytes());
                file.extend_from_slice(&h.to_be_bytes());
                file.extend(tail);
                file
            }
        ),
    ]
}

#[tokio::test]
async fn probing_any_bytes_never_panics_or_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let prober = Prober {
        timeout: Duration::from_secs(10),
        ..Prober::default()
    };
    let mut runner = TestRunner::default();
    let strategy = files();
    for case in 0..CASES {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        let path = dir.path().join(format!("upload-{case}.mp4"));
        std::fs::write(&path, &bytes).unwrap();
        let probed = tokio::time::timeout(Duration::from_secs(30), prober.probe(&path))
            .await
            .unwrap_or_else(|_| panic!("probing hung on {:?}", &bytes[..bytes.len().min(64)]));
        if let Ok(info) = probed {
            assert_eq!(info.size_bytes, bytes.len() as u64);
            assert!(
                !info.container.is_empty() && !info.mime.is_empty(),
                "{info:?}"
            );
            if info.kind == MediaKind::Image {
                assert!(info.mime.starts_with("image/"), "{info:?}");
            }
            if let Some(ratio) = info.aspect_ratio() {
                assert!(ratio.is_finite() && ratio > 0.0, "{info:?}");
            }
            for value in [info.duration_secs, info.frame_rate].into_iter().flatten() {
                assert!(value.is_finite() && value >= 0.0, "{info:?}");
            }
        }
    }
    // An empty file and a missing one are errors, not panics.
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(prober.probe(&empty).await.is_err());
    assert!(prober.probe(&dir.path().join("missing.mp4")).await.is_err());
}

/// An upload that is an HLS playlist (or any format that references other files) must not make
/// the prober fetch what it names: ffprobe's default protocol whitelist for a local file keeps
/// it to `file,crypto,data`. A listener on loopback proves nothing was requested.
#[tokio::test]
async fn a_playlist_upload_makes_the_prober_fetch_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("innocent.mp4");
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://{addr}/internal.ts\n\
         #EXTINF:10,\nhttp://{addr}/latest/meta-data/\n#EXT-X-ENDLIST\n"
    );
    std::fs::write(&path, playlist).unwrap();
    let probed = Prober::default().probe(&path).await;
    assert!(probed.is_err(), "{probed:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        listener.accept().is_err(),
        "probing an uploaded playlist connected to {addr}"
    );
}
