//! Fidelity tests of FILE_UPLOAD: init chunk rules, the chunked PUT protocol (206/201, 400,
//! 403, 404, 416, re-sent chunks, dropped connections) and the status progression.

mod tiktok_support;

use reqwest::StatusCode;
use serde_json::json;
use tiktok_support::{Harness, bytes, file_upload_body, sha256_hex};

const MB5: u64 = 5_000_000;

async fn init_status(
    h: &Harness,
    token: &str,
    size: u64,
    chunk: u64,
    count: u64,
) -> (StatusCode, String) {
    let mut body = file_upload_body(size, chunk, "SELF_ONLY");
    body["source_info"]["total_chunk_count"] = json!(count);
    let (status, body) = h.post(token, "/v2/post/publish/video/init/", body).await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn init_enforces_the_documented_chunk_rules() {
    let h = Harness::start().await;
    h.settings(json!({"direct_post_daily_cap": 1000})).await;
    let token = h.access_token().await;
    let ok = (StatusCode::OK, "ok".to_string());
    let bad = (StatusCode::BAD_REQUEST, "invalid_param".to_string());
    let cases: &[(u64, u64, u64, bool)] = &[
        (50_000_123, 10_000_000, 5, true), // official example: floor, remainder in the last chunk
        (50_000_123, 10_000_000, 6, false), // ceil is wrong
        (4_194_304, 4_194_304, 1, true),   // small file in one piece
        (4_194_304, 1_048_576, 4, false),  // small files may not be chunked
        (4_194_304, 4_194_304, 2, false),
        (30_567_100, 30_567_100, 1, true), // one chunk up to 64 MB
        (20_000_000, 4_000_000, 5, false), // chunk below 5 MB
        (200_000_000, 70_000_000, 2, false), // chunk above 64 MiB
        (100_000_000, 100_000_000, 1, false), // over 64 MB needs several chunks
        (300_000_000, 60_000_000, 5, true),
        (134_000_000, 67_000_000, 2, true),
        (190_000_000, 60_000_000, 3, true), // last chunk 70 MB ≤ 128 MB
        (5_000_000_000, 64_000_000, 78, false), // over 4 GB
        (0, 0, 0, false),
    ];
    for &(size, chunk, count, accepted) in cases {
        let got = init_status(&h, &token, size, chunk, count).await;
        assert_eq!(
            got,
            if accepted { ok.clone() } else { bad.clone() },
            "{size}/{chunk}/{count}"
        );
        h.advance(11).await; // stay under 6 inits a minute
    }
}

#[tokio::test]
async fn chunked_upload_answers_206_then_201_and_keeps_the_bytes() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(12_000_123);
    let (publish_id, upload_url) = h
        .init_upload(&token, data.len() as u64, MB5, "PUBLIC_TO_EVERYONE")
        .await;
    assert!(publish_id.starts_with("v_pub_file~v2-1."));
    assert!(upload_url.starts_with(&format!("{}/tiktok/upload/", h.base)));
    assert!(upload_url.contains("upload_id=") && upload_url.contains("upload_token="));
    assert_eq!(
        h.status(&token, &publish_id).await["status"],
        "PROCESSING_UPLOAD"
    );

    let first = h
        .put_chunk(&upload_url, &data[..5_000_000], 0, data.len() as u64)
        .await;
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(first.headers()["content-range"], "bytes 0-5000000/12000123");
    assert_eq!(
        h.status(&token, &publish_id).await["uploaded_bytes"],
        5_000_000
    );

    // Re-sending an acknowledged chunk is idempotent.
    let again = h
        .put_chunk(&upload_url, &data[..5_000_000], 0, data.len() as u64)
        .await;
    assert_eq!(again.status(), StatusCode::PARTIAL_CONTENT);

    let last = h
        .put_chunk(
            &upload_url,
            &data[5_000_000..],
            5_000_000,
            data.len() as u64,
        )
        .await;
    assert_eq!(last.status(), StatusCode::CREATED);

    let admin = h.publish(&publish_id).await;
    assert_eq!(admin["bytes_received"], 12_000_123);
    assert_eq!(admin["chunks_received"], 2);
    assert_eq!(admin["sha256"], sha256_hex(&data));
    assert_eq!(admin["mode"], "direct");
    assert_eq!(admin["source"], "FILE_UPLOAD");
    assert_eq!(admin["post_info"]["title"], "hello #tidepost");

    // Processing, then PUBLISH_COMPLETE, then the public post id after moderation.
    let done = h.wait_status(&token, &publish_id, "PUBLISH_COMPLETE").await;
    assert_eq!(done["uploaded_bytes"], 12_000_123);
    assert_eq!(done["publicaly_available_post_id"], json!([]));
    h.advance(3).await;
    let public = h.status(&token, &publish_id).await;
    let ids = public["publicaly_available_post_id"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    let id = ids[0].as_u64().expect("post ids are JSON integers");
    assert_eq!(id.to_string().len(), 19);
    assert_eq!(
        h.publish(&publish_id).await["post_ids"][0].as_u64(),
        Some(id)
    );
}

#[tokio::test]
async fn whole_file_upload_and_private_posts_get_no_post_id() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(4_194_304);
    let (publish_id, url) = h
        .init_upload(&token, data.len() as u64, data.len() as u64, "SELF_ONLY")
        .await;
    assert_eq!(
        h.upload(&url, &data, data.len() as u64).await,
        vec![StatusCode::CREATED]
    );
    h.advance(2).await;
    h.wait_status(&token, &publish_id, "PUBLISH_COMPLETE").await;
    h.advance(60).await;
    assert_eq!(
        h.status(&token, &publish_id).await["publicaly_available_post_id"],
        json!([])
    );
}

#[tokio::test]
async fn bad_content_range_and_headers() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(12_000_123);
    let total = data.len() as u64;
    let (_, url) = h.init_upload(&token, total, MB5, "SELF_ONLY").await;
    let put = |range: String, body: Vec<u8>, content_type: &'static str| {
        h.http
            .put(&url)
            .header("Content-Type", content_type)
            .header("Content-Range", range)
            .body(body)
            .send()
    };

    // Out of order: the second chunk first.
    let response = put(
        format!("bytes 5000000-12000122/{total}"),
        data[5_000_000..].to_vec(),
        "video/mp4",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 0-0/{total}")
    );
    // Wrong total.
    let response = put(
        format!("bytes 0-4999999/{}", total + 1),
        data[..5_000_000].to_vec(),
        "video/mp4",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Not the declared chunk layout.
    let response = put(
        format!("bytes 0-5999999/{total}"),
        data[..6_000_000].to_vec(),
        "video/mp4",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Content-Length does not match the range.
    let response = put(
        format!("bytes 0-4999999/{total}"),
        data[..4_000_000].to_vec(),
        "video/mp4",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Malformed or missing Content-Range, wrong Content-Type.
    let response = put("0-4999999".into(), data[..5_000_000].to_vec(), "video/mp4")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = put(
        format!("bytes 0-4999999/{total}"),
        data[..5_000_000].to_vec(),
        "image/png",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = h
        .http
        .put(&url)
        .header("Content-Type", "video/mp4")
        .body(data[..5_000_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Nothing above counted: the upload still works from the start.
    assert_eq!(
        h.upload(&url, &data, MB5).await,
        vec![StatusCode::PARTIAL_CONTENT, StatusCode::CREATED]
    );
}

#[tokio::test]
async fn unknown_and_expired_upload_urls() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(1000);
    let (_, url) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    let wrong_token = format!("{}x", url);
    assert_eq!(
        h.put_chunk(&wrong_token, &data, 0, 1000).await.status(),
        StatusCode::NOT_FOUND
    );
    let unknown = format!("{}/tiktok/upload/video/?upload_id=1&upload_token=2", h.base);
    assert_eq!(
        h.put_chunk(&unknown, &data, 0, 1000).await.status(),
        StatusCode::NOT_FOUND
    );

    h.advance(3601).await;
    assert_eq!(
        h.put_chunk(&url, &data, 0, 1000).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn dropped_connections_do_not_acknowledge_the_chunk() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(12_000_123);
    let total = data.len() as u64;
    let (publish_id, url) = h.init_upload(&token, total, MB5, "SELF_ONLY").await;
    h.faults(json!({"drop_upload_after_bytes": 1_000_000}))
        .await;
    let result = h
        .http
        .put(&url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", format!("bytes 0-4999999/{total}"))
        .body(data[..5_000_000].to_vec())
        .send()
        .await;
    assert!(
        result.is_err(),
        "the client must see a transport error, got {:?}",
        result.map(|r| r.status())
    );
    assert_eq!(h.publish(&publish_id).await["bytes_received"], 0);

    h.faults(json!({})).await;
    assert_eq!(
        h.upload(&url, &data, MB5).await,
        vec![StatusCode::PARTIAL_CONTENT, StatusCode::CREATED]
    );
    assert_eq!(h.publish(&publish_id).await["sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn upload_server_errors_are_retryable() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(1000);
    let (_, url) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    h.faults(json!({"server_error_share": 1.0})).await;
    assert!(
        h.put_chunk(&url, &data, 0, 1000)
            .await
            .status()
            .is_server_error()
    );
    h.faults(json!({})).await;
    assert_eq!(
        h.put_chunk(&url, &data, 0, 1000).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn inbox_uploads_end_in_the_creators_inbox() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(1000);
    let body = json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}});
    let (status, init) = h
        .post(&token, "/v2/post/publish/inbox/video/init/", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{init}");
    let publish_id = init["data"]["publish_id"].as_str().unwrap().to_string();
    let url = init["data"]["upload_url"].as_str().unwrap();
    assert_eq!(
        h.put_chunk(url, &data, 0, 1000).await.status(),
        StatusCode::CREATED
    );
    h.advance(2).await;
    let data = h
        .wait_status(&token, &publish_id, "SEND_TO_USER_INBOX")
        .await;
    assert_eq!(data["uploaded_bytes"], 1000);
    assert_eq!(h.publish(&publish_id).await["mode"], "inbox");

    // The creator posts the draft publicly from the app.
    let response = h
        .http
        .post(h.admin(&format!("/tiktok/publishes/{publish_id}/complete")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        h.status(&token, &publish_id).await["status"],
        "PUBLISH_COMPLETE"
    );
    h.advance(3).await;
    assert_eq!(
        h.status(&token, &publish_id).await["publicaly_available_post_id"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn fail_processing_fault_and_forced_failures() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let data = bytes(1000);
    h.faults(json!({"fail_processing": true})).await;
    let (publish_id, url) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    h.put_chunk(&url, &data, 0, 1000).await;
    h.advance(2).await;
    let failed = h.wait_status(&token, &publish_id, "FAILED").await;
    assert_eq!(failed["fail_reason"], "file_format_check_failed");
    assert_eq!(failed["uploaded_bytes"], 1000);
    h.faults(json!({})).await;

    let (publish_id, _) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    let response = h
        .http
        .post(h.admin(&format!("/tiktok/publishes/{publish_id}/fail")))
        .json(&json!({"fail_reason": "spam_risk_text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let data = h.status(&token, &publish_id).await;
    assert_eq!(
        (data["status"].as_str(), data["fail_reason"].as_str()),
        (Some("FAILED"), Some("spam_risk_text"))
    );

    let list: serde_json::Value = h
        .http
        .get(h.admin("/tiktok/publishes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["publishes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn processing_and_moderation_delays_are_settings() {
    let h = Harness::start().await;
    h.settings(json!({"processing_delay_ms": 60_000, "moderation_delay_ms": 600_000}))
        .await;
    let token = h.access_token().await;
    let data = bytes(1000);
    let (publish_id, url) = h
        .init_upload(&token, 1000, 1000, "PUBLIC_TO_EVERYONE")
        .await;
    h.put_chunk(&url, &data, 0, 1000).await;
    assert_eq!(
        h.status(&token, &publish_id).await["status"],
        "PROCESSING_UPLOAD"
    );
    h.advance(61).await;
    assert_eq!(
        h.status(&token, &publish_id).await["status"],
        "PUBLISH_COMPLETE"
    );
    h.advance(500).await;
    assert_eq!(
        h.status(&token, &publish_id).await["publicaly_available_post_id"],
        json!([])
    );
    h.advance(101).await;
    assert_eq!(
        h.status(&token, &publish_id).await["publicaly_available_post_id"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
