//! A 1 GiB FILE_UPLOAD in 16 chunks of 64 MiB, streamed from both sides: the emulator must
//! store and hash it without holding it in memory. Alone in its binary so peak RSS is its own.

mod tiktok_support;

use bytes::Bytes;
use reqwest::StatusCode;
use sha2::Digest;
use tiktok_support::{Harness, layout};

const SIZE: u64 = 1 << 30;
const CHUNK: u64 = 64 << 20;
const BLOCK: usize = 1 << 20;

/// Peak resident set size of this process in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn one_gib_upload_keeps_memory_bounded() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let block = Bytes::from(tiktok_support::bytes(BLOCK));
    let before = peak_rss_kib();
    let (publish_id, url) = h.init_upload(&token, SIZE, CHUNK, "SELF_ONLY").await;

    let mut expected = sha2::Sha256::new();
    let mut statuses = Vec::new();
    for (first, last) in layout(SIZE, CHUNK) {
        let len = last - first + 1;
        let blocks = (len as usize) / BLOCK;
        for _ in 0..blocks {
            expected.update(&block);
        }
        let block = block.clone();
        let stream =
            futures::stream::iter((0..blocks).map(move |_| Ok::<_, std::io::Error>(block.clone())));
        let response = h
            .http
            .put(&url)
            .header("Content-Type", "video/mp4")
            .header("Content-Length", len)
            .header("Content-Range", format!("bytes {first}-{last}/{SIZE}"))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(statuses.len(), 16);
    assert!(
        statuses[..15]
            .iter()
            .all(|s| *s == StatusCode::PARTIAL_CONTENT)
    );
    assert_eq!(statuses[15], StatusCode::CREATED);

    let admin = h.publish(&publish_id).await;
    assert_eq!(admin["bytes_received"], SIZE);
    assert_eq!(admin["sha256"], hex::encode(expected.finalize()));
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = after.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 200,
            "peak RSS grew by {grown_mib} MiB during a 1 GiB upload"
        );
    }
}
