//! The emulator's upload route (`PUT {upload_url}`) reads `Content-Range`, `Content-Length` and
//! `Content-Type` from whoever calls it. Property: whatever those headers say, the answer is a
//! 4xx (400 malformed, 416 not this upload's next chunk) or, for exactly the declared chunk, 201
//! — never a 5xx, never a panic — and a refused PUT stores nothing.
//!
//! cargo-fuzz needs a nightly toolchain the build machines cannot fetch; this is a proptest
//! property with a fixed, small case budget against a running emulator.

mod tiktok_support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use tiktok_support::{Harness, bytes};

/// HTTP round trips per property: small, each is a real request.
const CASES: u32 = 192;
/// A file small enough to go in one chunk (under 5 MB), so the only valid PUT is all of it.
const SIZE: u64 = 1_000;

/// A `Content-Range` value: free text, or `bytes a-b/t` with numbers near the real layout's
/// edges and the integer limits.
fn content_ranges() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just(0u64),
        Just(1),
        Just(SIZE - 1),
        Just(SIZE),
        Just(SIZE + 1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..3_000,
        any::<u64>(),
    ];
    let number_text = prop_oneof![
        number.prop_map(|n| n.to_string()),
        Just("-1".to_string()),
        Just(" 0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("*".to_string()),
        Just(String::new()),
        "[0-9a-f+-]{1,4}",
    ];
    prop_oneof![
        3 => (number_text.clone(), number_text.clone(), number_text)
            .prop_map(|(a, b, t)| format!("bytes {a}-{b}/{t}")),
        1 => "[ -~]{0,40}",
        1 => Just(format!("bytes 0-{}/{SIZE}", SIZE - 1)),
        1 => Just(format!("bytes=0-{}/{SIZE}", SIZE - 1)),
        1 => Just(format!("bytes 0-{}/*", SIZE - 1)),
    ]
}

fn content_types() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some("video/mp4".to_string())),
        Just(Some("VIDEO/MP4; charset=binary".to_string())),
        Just(Some("image/png".to_string())),
        Just(None),
        "[ -~]{0,20}".prop_map(Some),
    ]
}

/// What a range denotes, read the way the route reads it (the value and each number trimmed).
fn read_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

fn body_lengths() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(SIZE as usize - 1),
        Just(SIZE as usize),
        Just(SIZE as usize + 1),
        0usize..2_500,
    ]
}

#[test]
fn any_content_range_is_answered_with_a_4xx_or_the_real_chunk() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(Harness::start());
    let token = rt.block_on(h.access_token());
    let (publish_id, url) = rt.block_on(h.init_upload(&token, SIZE, SIZE, "SELF_ONLY"));
    let data = bytes(SIZE as usize);
    let completed = std::cell::Cell::new(false);

    let mut runner = TestRunner::new(Config::with_cases(CASES));
    let strategy = (content_ranges(), content_types(), body_lengths());
    runner
        .run(&strategy, |(range, content_type, len)| {
            let body: Vec<u8> = if len == SIZE as usize {
                data.clone()
            } else {
                bytes(len)
            };
            let status = rt.block_on(async {
                let mut request = h.http.put(&url).body(body.clone());
                if reqwest::header::HeaderValue::from_str(&range).is_ok() {
                    request = request.header("Content-Range", range.as_str());
                }
                if let Some(ct) = &content_type
                    && reqwest::header::HeaderValue::from_str(ct).is_ok()
                {
                    request = request.header("Content-Type", ct.as_str());
                }
                request.send().await.unwrap().status()
            });
            let video = content_type.as_deref().is_some_and(|ct| {
                let mime = ct.split(';').next().unwrap_or_default().trim();
                mime.eq_ignore_ascii_case("video/mp4")
            });
            let exact =
                read_range(&range) == Some((0, SIZE - 1, SIZE)) && len == SIZE as usize && video;
            prop_assert!(
                !status.is_server_error(),
                "{range:?} {content_type:?} {len}: {status}"
            );
            if exact {
                prop_assert_eq!(status, StatusCode::CREATED, "{:?}", range);
                completed.set(true);
            } else {
                prop_assert!(
                    matches!(
                        status,
                        StatusCode::BAD_REQUEST | StatusCode::RANGE_NOT_SATISFIABLE
                    ),
                    "{range:?} {content_type:?} {len}: {status}"
                );
            }
            Ok(())
        })
        .unwrap();

    // Nothing refused was stored: the upload is either untouched or exactly the file.
    let publish = rt.block_on(h.publish(&publish_id));
    let received = publish["bytes_received"].as_u64().unwrap_or_default();
    if completed.get() {
        assert_eq!(received, SIZE, "{publish}");
        assert_eq!(
            publish["sha256"],
            tiktok_support::sha256_hex(&data),
            "{publish}"
        );
    } else {
        assert_eq!(received, 0, "{publish}");
        // The upload still takes its one real chunk after all that.
        let status = rt.block_on(h.put_chunk(&url, &data, 0, SIZE)).status();
        assert_eq!(status, StatusCode::CREATED);
    }
}
