//! `POST /v2/video/list/`: the creator's own public videos newest first with the requested
//! fields, paged by `cursor` / `has_more` at most 20 at a time; private posts, other creators'
//! videos and posts still in moderation are not listed; the `video.list` scope and the
//! request's fields and counts are checked, errors in TikTok's envelope.

mod tiktok_support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tiktok_support::{Harness, bytes};

async fn list(h: &Harness, token: &str, fields: &str, body: Value) -> (StatusCode, Value) {
    let url = format!("{}?fields={fields}", h.open("/v2/video/list/"));
    let response = h
        .http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// A small direct post with `title` and `privacy`, uploaded and run to `PUBLISH_COMPLETE`.
async fn post(h: &Harness, token: &str, title: &str, privacy: &str) -> String {
    let body = json!({
        "post_info": {"title": title, "privacy_level": privacy, "brand_content_toggle": false},
        "source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1},
    });
    let (status, answer) = h.post(token, "/v2/post/publish/video/init/", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let publish_id = answer["data"]["publish_id"].as_str().unwrap().to_string();
    let url = answer["data"]["upload_url"].as_str().unwrap();
    h.upload(url, &bytes(1000), 1000).await;
    h.wait_status(token, &publish_id, "PUBLISH_COMPLETE").await;
    publish_id
}

#[tokio::test]
async fn public_videos_newest_first_in_pages() {
    let h = Harness::start().await;
    h.settings(json!({"processing_delay_ms": 0, "moderation_delay_ms": 0}))
        .await;
    let token = h.access_token().await;
    for n in 0..3 {
        post(&h, &token, &format!("public {n}"), "PUBLIC_TO_EVERYONE").await;
        // Distinct creation times, a second apart.
        h.advance(1).await;
    }
    post(&h, &token, "only me", "SELF_ONLY").await;
    // Another creator's public video is not listed.
    let other = h.access_token_for("tidepost.quiet").await;
    post(&h, &other, "someone else", "PUBLIC_TO_EVERYONE").await;

    let (status, body) = list(&h, &token, "id,title,create_time", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"]["code"], "ok");
    let titles: Vec<&str> = body["data"]["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["public 2", "public 1", "public 0"], "{body}");
    assert_eq!(body["data"]["has_more"], false);
    let first = &body["data"]["videos"][0];
    assert_eq!(first.as_object().unwrap().len(), 3, "only the fields asked");
    assert!(first["id"].as_str().unwrap().parse::<u64>().is_ok());
    let times: Vec<i64> = body["data"]["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["create_time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");

    // Two at a time: the cursor walks on, has_more says when to stop, nothing twice.
    let (_, page1) = list(&h, &token, "id,title", json!({"max_count": 2})).await;
    assert_eq!(page1["data"]["videos"].as_array().unwrap().len(), 2);
    assert_eq!(page1["data"]["has_more"], true);
    let cursor = page1["data"]["cursor"].as_i64().unwrap();
    let (_, page2) = list(
        &h,
        &token,
        "id,title",
        json!({"max_count": 2, "cursor": cursor}),
    )
    .await;
    assert_eq!(page2["data"]["videos"][0]["title"], "public 0", "{page2}");
    assert_eq!(page2["data"]["videos"].as_array().unwrap().len(), 1);
    assert_eq!(page2["data"]["has_more"], false);
}

#[tokio::test]
async fn a_video_is_listed_once_moderation_makes_it_public() {
    let h = Harness::start().await;
    h.settings(json!({"processing_delay_ms": 0, "moderation_delay_ms": 60_000}))
        .await;
    let token = h.access_token().await;
    post(&h, &token, "in review", "PUBLIC_TO_EVERYONE").await;
    let (_, body) = list(&h, &token, "id", json!({})).await;
    assert_eq!(body["data"]["videos"], json!([]), "not public yet");
    h.advance(61).await;
    let (_, body) = list(&h, &token, "id,video_description", json!({})).await;
    assert_eq!(body["data"]["videos"][0]["video_description"], "in review");
}

#[tokio::test]
async fn scope_fields_and_max_count_are_checked() {
    let h = Harness::start().await;
    let no_list = h
        .token(json!({"scopes": ["user.info.basic", "video.publish"]}))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = list(&h, &no_list, "id", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "scope_not_authorized");
    assert_eq!(body["data"], json!({}));
    let token = h.access_token().await;
    for bad in [
        json!({"max_count": 21}),
        json!({"max_count": 0}),
        json!({"cursor": "x"}),
    ] {
        let (status, body) = list(&h, &token, "id", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_params");
    }
    let (status, body) = list(&h, &token, "id,shoe_size", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_params"))
    );
    let (status, _) = list(&h, &token, "", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = list(&h, "not-a-token", "id", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "access_token_invalid");
}
