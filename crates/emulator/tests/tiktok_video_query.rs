//! `POST /v2/video/query/`: the creator's own public videos by id with only the requested
//! fields, counts that grow with emulated time, the `video.list` scope, at most 20 ids, and
//! nothing of another creator's videos.

mod tiktok_support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tiktok_support::{Harness, bytes};

async fn query(h: &Harness, token: &str, fields: &str, ids: Value) -> (StatusCode, Value) {
    let url = format!("{}?fields={fields}", h.open("/v2/video/query/"));
    let response = h
        .http
        .post(url)
        .bearer_auth(token)
        .json(&json!({"filters": {"video_ids": ids}}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Publishes a small public video and returns its public post id.
async fn public_video(h: &Harness, token: &str) -> String {
    let (publish_id, url) = h.init_upload(token, 1000, 1000, "PUBLIC_TO_EVERYONE").await;
    h.upload(&url, &bytes(1000), 1000).await;
    for _ in 0..60 {
        let status = h.status(token, &publish_id).await;
        if let Some(id) = status["publicaly_available_post_id"].get(0) {
            return id.to_string().trim_matches('"').to_string();
        }
        h.advance(5).await;
    }
    panic!("{publish_id} never became public");
}

#[tokio::test]
async fn counts_of_own_public_videos_grow_over_emulated_time() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let id = public_video(&h, &token).await;
    let (status, body) = query(&h, &token, "id,view_count,like_count", json!([id])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"]["code"], "ok");
    let video = &body["data"]["videos"][0];
    assert_eq!(video["id"], json!(id));
    assert_eq!(
        video.as_object().unwrap().len(),
        3,
        "only the requested fields: {video}"
    );
    let early = video["view_count"].as_u64().unwrap();
    h.advance(24 * 3600).await;
    // A day is past the access token's lifetime: a fresh token of the same creator.
    let token = h.access_token().await;
    let (_, later) = query(&h, &token, "id,view_count", json!([id])).await;
    let later = later["data"]["videos"][0]["view_count"].as_u64().unwrap();
    assert!(later > early && later >= 1_000, "{early} → {later}");

    // Another creator sees nothing of it; unknown ids are simply absent.
    let other = h.access_token_for("tidepost.quiet").await;
    let (status, body) = query(&h, &other, "id,view_count", json!([id, "123"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["videos"], json!([]));
}

#[tokio::test]
async fn scope_fields_and_id_count_are_checked() {
    let h = Harness::start().await;
    let no_list = h
        .token(json!({"scopes": ["user.info.basic", "video.publish"]}))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = query(&h, &no_list, "id", json!(["1"])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "scope_not_authorized");
    let token = h.access_token().await;
    let too_many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
    let (status, body) = query(&h, &token, "id", json!(too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_params");
    let (status, body) = query(&h, &token, "id,shoe_size", json!(["1"])).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_params"))
    );
    let (status, _) = query(&h, &token, "", json!(["1"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
