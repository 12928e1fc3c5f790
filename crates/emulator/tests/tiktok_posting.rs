//! Fidelity tests of the posting rules (privacy, caps, unaudited clients), PULL_FROM_URL,
//! photo posts, cancel and signed webhooks.

mod tiktok_support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tiktok_support::{
    CLIENT_KEY, CLIENT_SECRET, Harness, bytes, file_upload_body, sha256_hex, wait_webhook,
    webhook_receiver,
};

const VIDEO_LEN: usize = 3_000_000;

/// A local media host: a video, a photo, a redirect, a 404 and a download that never ends.
async fn media_server() -> String {
    let router = Router::new()
        .route("/videos/clip.mp4", get(|| async { bytes(VIDEO_LEN) }))
        .route("/videos/photo.jpg", get(|| async { bytes(2048) }))
        .route(
            "/videos/moved.mp4",
            get(|| async { Redirect::temporary("/videos/clip.mp4") }),
        )
        .route(
            "/videos/missing.mp4",
            get(|| async { AxumStatus::NOT_FOUND }),
        )
        .route(
            "/videos/endless.mp4",
            get(|| async {
                let stream = futures::stream::unfold((), |_| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from_static(&[7; 1024])), ()))
                });
                Body::from_stream(stream).into_response()
            }),
        )
        .route("/elsewhere/clip.mp4", get(|| async { bytes(10) }));
    tiktok_support::serve(router).await
}

fn pull_body(url: &str, privacy: &str) -> Value {
    json!({
        "post_info": {"title": "pulled", "privacy_level": privacy},
        "source_info": {"source": "PULL_FROM_URL", "video_url": url},
    })
}

/// A photo post's init body; a draft (`MEDIA_UPLOAD`) carries only title and description.
fn photo_body(urls: &[String], mode: &str) -> Value {
    let post_info = if mode == "MEDIA_UPLOAD" {
        json!({"title": "photos", "description": "a #carousel"})
    } else {
        json!({"title": "photos", "description": "a #carousel", "privacy_level": "PUBLIC_TO_EVERYONE"})
    };
    json!({
        "media_type": "PHOTO",
        "post_mode": mode,
        "post_info": post_info,
        "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": 0},
        "is_aigc": false,
    })
}

async fn init(h: &Harness, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    h.post(token, path, body).await
}

#[tokio::test]
async fn privacy_level_must_be_one_of_the_creators_options() {
    let h = Harness::start().await;
    let private = h.access_token_for("tidepost.private").await;
    let (status, body) = init(
        &h,
        &private,
        "/v2/post/publish/video/init/",
        file_upload_body(1000, 1000, "PUBLIC_TO_EVERYONE"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "privacy_level_option_mismatch");
    let mut missing = file_upload_body(1000, 1000, "SELF_ONLY");
    missing["post_info"]
        .as_object_mut()
        .unwrap()
        .remove("privacy_level");
    let (status, body) = init(&h, &private, "/v2/post/publish/video/init/", missing).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("privacy_level_option_mismatch"))
    );
    let (status, _) = init(
        &h,
        &private,
        "/v2/post/publish/video/init/",
        file_upload_body(1000, 1000, "FOLLOWER_OF_CREATOR"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn daily_direct_post_cap() {
    let h = Harness::start().await;
    h.settings(json!({"direct_post_daily_cap": 2})).await;
    let token = h.access_token().await;
    for _ in 0..2 {
        h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    }
    let (status, body) = init(
        &h,
        &token,
        "/v2/post/publish/video/init/",
        file_upload_body(1000, 1000, "SELF_ONLY"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("spam_risk_too_many_posts"))
    );
    // creator_info reports it with HTTP 200.
    let (status, body) = h
        .post(&token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::OK, Some("spam_risk_too_many_posts"))
    );
    // The default cap is 15 and the window rolls over after 24 h.
    h.advance(86_401).await;
    let token = h.access_token().await;
    h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
}

#[tokio::test]
async fn pending_inbox_shares_are_capped() {
    let h = Harness::start().await;
    h.settings(json!({"pending_inbox_cap": 2})).await;
    let token = h.access_token().await;
    let body = json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}});
    for _ in 0..2 {
        assert_eq!(
            init(
                &h,
                &token,
                "/v2/post/publish/inbox/video/init/",
                body.clone()
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    let (status, answer) = init(&h, &token, "/v2/post/publish/inbox/video/init/", body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("spam_risk_too_many_pending_share")
        )
    );
}

#[tokio::test]
async fn unaudited_clients_post_privately_to_private_accounts_for_few_users() {
    let h = Harness::start().await;
    h.settings(json!({"unaudited": true, "unaudited_user_cap": 1}))
        .await;
    let public = h.access_token().await;
    let (status, body) = init(
        &h,
        &public,
        "/v2/post/publish/video/init/",
        file_upload_body(1000, 1000, "SELF_ONLY"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["code"],
        "unaudited_client_can_only_post_to_private_accounts"
    );

    let private = h.access_token_for("tidepost.private").await;
    let (publish_id, _) = h
        .init_upload(&private, 1000, 1000, "FOLLOWER_OF_CREATOR")
        .await;
    assert_eq!(
        h.publish(&publish_id).await["privacy_level"],
        "SELF_ONLY",
        "unaudited posts are forced to SELF_ONLY"
    );

    // A second distinct creator exceeds the unaudited client's user cap (1 here, 5 by default).
    h.settings(json!({"unaudited_user_cap": 1})).await;
    let other_private = h.access_token_for("tidepost.quiet").await;
    let (status, body) = h
        .post(
            &other_private,
            "/v2/post/publish/creator_info/query/",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::OK, Some("reached_active_user_cap"))
    );
}

#[tokio::test]
async fn pull_from_url_downloads_verified_media() {
    let h = Harness::start().await;
    let media = media_server().await;
    h.settings(json!({"verified_url_prefixes": [format!("{media}/videos/")]}))
        .await;
    let token = h.access_token().await;

    let (status, body) = init(
        &h,
        &token,
        "/v2/post/publish/video/init/",
        pull_body(&format!("{media}/elsewhere/clip.mp4"), "SELF_ONLY"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("url_ownership_unverified"))
    );

    let (status, body) = init(
        &h,
        &token,
        "/v2/post/publish/video/init/",
        pull_body(&format!("{media}/videos/clip.mp4"), "SELF_ONLY"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"].get("upload_url").is_none());
    let publish_id = body["data"]["publish_id"].as_str().unwrap().to_string();
    assert!(publish_id.starts_with("v_pub_url~v2."));
    let done = h.wait_status(&token, &publish_id, "PUBLISH_COMPLETE").await;
    assert_eq!(done["downloaded_bytes"], VIDEO_LEN);
    let admin = h.publish(&publish_id).await;
    assert_eq!(admin["sha256"], sha256_hex(&bytes(VIDEO_LEN)));
    assert_eq!(admin["source"], "PULL_FROM_URL");
}

#[tokio::test]
async fn pull_failures_end_in_video_pull_failed() {
    let h = Harness::start().await;
    let media = media_server().await;
    h.settings(json!({"verified_url_prefixes": [format!("{media}/videos/")], "direct_post_daily_cap": 100})).await;
    let token = h.access_token().await;
    for path in ["/videos/missing.mp4", "/videos/moved.mp4"] {
        let (_, body) = init(
            &h,
            &token,
            "/v2/post/publish/video/init/",
            pull_body(&format!("{media}{path}"), "SELF_ONLY"),
        )
        .await;
        let publish_id = body["data"]["publish_id"].as_str().unwrap();
        let failed = h.wait_status(&token, publish_id, "FAILED").await;
        assert_eq!(failed["fail_reason"], "video_pull_failed", "{path}");
    }
}

#[tokio::test]
async fn cancel_stops_an_ongoing_download() {
    let h = Harness::start().await;
    let media = media_server().await;
    h.settings(json!({"verified_url_prefixes": [format!("{media}/videos/")]}))
        .await;
    let token = h.access_token().await;
    let (_, body) = init(
        &h,
        &token,
        "/v2/post/publish/video/init/",
        pull_body(&format!("{media}/videos/endless.mp4"), "SELF_ONLY"),
    )
    .await;
    let publish_id = body["data"]["publish_id"].as_str().unwrap().to_string();
    assert_eq!(
        h.status(&token, &publish_id).await["status"],
        "PROCESSING_DOWNLOAD"
    );

    let (status, answer) = h
        .post(
            &token,
            "/v2/post/publish/cancel/",
            json!({"publish_id": publish_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["error"]["code"], "ok");
    assert!(answer.get("data").is_none());
    let data = h.status(&token, &publish_id).await;
    assert_eq!(
        (data["status"].as_str(), data["fail_reason"].as_str()),
        (Some("FAILED"), Some("publish_cancelled"))
    );

    let (status, answer) = h
        .post(
            &token,
            "/v2/post/publish/cancel/",
            json!({"publish_id": publish_id}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("publish_not_cancellable"))
    );
}

#[tokio::test]
async fn photo_posts_pull_every_image() {
    let h = Harness::start().await;
    let media = media_server().await;
    h.settings(json!({"verified_url_prefixes": [format!("{media}/videos/")]}))
        .await;
    let token = h.access_token().await;
    let urls = vec![
        format!("{media}/videos/photo.jpg"),
        format!("{media}/videos/photo.jpg"),
    ];
    let (status, body) = init(
        &h,
        &token,
        "/v2/post/publish/content/init/",
        photo_body(&urls, "DIRECT_POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let publish_id = body["data"]["publish_id"].as_str().unwrap().to_string();
    assert!(publish_id.starts_with("p_pub_url~v2."));
    let done = h.wait_status(&token, &publish_id, "PUBLISH_COMPLETE").await;
    assert_eq!(done["downloaded_bytes"], 4096);
    assert_eq!(h.publish(&publish_id).await["source"], "photo");

    let mut bad = photo_body(&urls, "DIRECT_POST");
    bad["source_info"]["photo_cover_index"] = json!(5);
    assert_eq!(
        init(&h, &token, "/v2/post/publish/content/init/", bad)
            .await
            .1["error"]["code"],
        "invalid_param"
    );
    let mut bad = photo_body(&urls, "DIRECT_POST");
    bad["media_type"] = json!("VIDEO");
    assert_eq!(
        init(&h, &token, "/v2/post/publish/content/init/", bad)
            .await
            .1["error"]["code"],
        "invalid_param"
    );
    let unverified = vec!["https://not-verified.example/1.jpg".to_string()];
    let (status, body) = init(
        &h,
        &token,
        "/v2/post/publish/content/init/",
        photo_body(&unverified, "MEDIA_UPLOAD"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("url_ownership_unverified"))
    );

    let upload_only = h.token(json!({"scopes": ["video.upload"]})).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = init(
        &h,
        &upload_only,
        "/v2/post/publish/content/init/",
        photo_body(&urls, "DIRECT_POST"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("scope_not_authorized"))
    );
    // A draft with a direct post's options is refused: only title and description.
    let mut with_privacy = photo_body(&urls, "MEDIA_UPLOAD");
    with_privacy["post_info"]["privacy_level"] = json!("PUBLIC_TO_EVERYONE");
    let (status, body) = init(
        &h,
        &upload_only,
        "/v2/post/publish/content/init/",
        with_privacy,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_param")),
        "{body}"
    );
    let (status, body) = init(
        &h,
        &upload_only,
        "/v2/post/publish/content/init/",
        photo_body(&urls, "MEDIA_UPLOAD"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let inbox_id = body["data"]["publish_id"].as_str().unwrap().to_string();
    h.wait_status(&upload_only, &inbox_id, "SEND_TO_USER_INBOX")
        .await;
}

/// Verifies `TikTok-Signature` independently: HMAC-SHA256(client_secret, "<t>.<raw body>").
fn assert_signed(received: &tiktok_support::Received) {
    let (t, s) = received.signature.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let s = s.strip_prefix("s=").unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    assert_eq!(hex::encode(mac.finalize().into_bytes()), s);
    let body = received.json();
    assert_eq!(body["create_time"].as_i64().unwrap().to_string(), t);
}

#[tokio::test]
async fn webhooks_are_signed_and_follow_the_publish() {
    let h = Harness::start().await;
    let (hook, received) = webhook_receiver().await;
    h.settings(json!({"webhook_url": hook})).await;
    let token = h.access_token().await;
    let data = bytes(1000);
    let (publish_id, url) = h
        .init_upload(&token, 1000, 1000, "PUBLIC_TO_EVERYONE")
        .await;
    h.put_chunk(&url, &data, 0, 1000).await;
    h.advance(2).await;

    let complete = wait_webhook(&received, "post.publish.complete").await;
    assert_signed(&complete);
    let body = complete.json();
    assert_eq!(body["client_key"], CLIENT_KEY);
    assert_eq!(body["user_openid"], "act.sandboxCreatorEmulator0000000000");
    let content: Value =
        serde_json::from_str(body["content"].as_str().expect("content is a JSON string")).unwrap();
    assert_eq!(
        content,
        json!({"publish_id": publish_id, "publish_type": "DIRECT_POST"})
    );

    h.advance(3).await;
    let public = wait_webhook(&received, "post.publish.publicly_available").await;
    assert_signed(&public);
    let content: Value = serde_json::from_str(public.json()["content"].as_str().unwrap()).unwrap();
    let post_ids = h.status(&token, &publish_id).await["publicaly_available_post_id"].clone();
    assert_eq!(content["post_id"], post_ids[0]);

    // Failure and inbox delivery.
    let (failing, _) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    h.http
        .post(h.admin(&format!("/tiktok/publishes/{failing}/fail")))
        .json(&json!({"fail_reason": "spam_risk"}))
        .send()
        .await
        .unwrap();
    let failed = wait_webhook(&received, "post.publish.failed").await;
    let content: Value = serde_json::from_str(failed.json()["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["reason"], "spam_risk");

    let inbox = json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}});
    let (_, body) = h
        .post(&token, "/v2/post/publish/inbox/video/init/", inbox)
        .await;
    h.put_chunk(body["data"]["upload_url"].as_str().unwrap(), &data, 0, 1000)
        .await;
    h.advance(2).await;
    let delivered = wait_webhook(&received, "post.publish.inbox_delivered").await;
    let content: Value =
        serde_json::from_str(delivered.json()["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["publish_type"], "INBOX_SHARE");
}

#[tokio::test]
async fn admin_revoke_sends_authorization_removed_and_kills_tokens() {
    let h = Harness::start().await;
    let (hook, received) = webhook_receiver().await;
    h.settings(json!({"webhook_url": hook})).await;
    let token = h.access_token_for("tidepost.quiet").await;
    let (publish_id, _) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    let response = h
        .http
        .post(h.admin("/tiktok/revoke"))
        .json(&json!({"creator": "tidepost.quiet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let removed = wait_webhook(&received, "authorization.removed").await;
    assert_signed(&removed);
    assert_eq!(
        removed.json()["user_openid"],
        "act.quietCreatorEmulator0000000000"
    );
    assert_eq!(removed.json()["content"], "{\"reason\":1}");
    let (status, body) = h
        .post(&token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("access_token_invalid"))
    );
    let admin = h.publish(&publish_id).await;
    assert_eq!(
        (admin["status"].as_str(), admin["fail_reason"].as_str()),
        (Some("FAILED"), Some("auth_removed"))
    );
}

#[tokio::test]
async fn webhook_fault_knobs_apply() {
    let h = Harness::start().await;
    let (hook, received) = webhook_receiver().await;
    h.settings(json!({"webhook_url": hook})).await;
    h.faults(json!({"duplicate_webhooks": true})).await;
    h.http
        .post(h.admin("/tiktok/revoke"))
        .json(&json!({"creator": "tidepost.private"}))
        .send()
        .await
        .unwrap();
    wait_webhook(&received, "authorization.removed").await;
    for _ in 0..50 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = received.lock().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].body, all[1].body);
}

/// Revokes `creator` through the admin API, which makes the emulator send
/// `authorization.removed` for it.
async fn revoke(h: &Harness, creator: &str) {
    let response = h
        .http
        .post(h.admin("/tiktok/revoke"))
        .json(&json!({"creator": creator}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn wait_count(
    received: &std::sync::Arc<std::sync::Mutex<Vec<tiktok_support::Received>>>,
    n: usize,
) {
    for _ in 0..200 {
        if received.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} webhooks, got {}",
        received.lock().unwrap().len()
    );
}

#[tokio::test]
async fn reordered_webhooks_arrive_newest_first() {
    let h = Harness::start().await;
    let (hook, received) = webhook_receiver().await;
    h.settings(json!({"webhook_url": hook})).await;
    h.faults(json!({"reorder_webhooks": 2})).await;
    revoke(&h, "tidepost.private").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "the first webhook is held until its batch is full"
    );
    revoke(&h, "tidepost.quiet").await;
    wait_count(&received, 2).await;
    let order: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.json()["user_openid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "act.quietCreatorEmulator0000000000",
            "act.privateCreatorEmulator0000000000"
        ]
    );
}

#[tokio::test]
async fn delayed_webhooks_wait_before_their_first_attempt() {
    let h = Harness::start().await;
    let (hook, received) = webhook_receiver().await;
    h.settings(json!({"webhook_url": hook})).await;
    h.faults(json!({"webhook_delay_ms": 700})).await;
    let started = std::time::Instant::now();
    revoke(&h, "tidepost.private").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing arrives during the delay"
    );
    wait_count(&received, 1).await;
    assert!(started.elapsed() >= Duration::from_millis(700));
}
