//! Fidelity tests of the v2 JSON endpoints: envelope, bearer and scope checks, user info,
//! creator info, malformed requests, rate limits and the API fault knobs.

mod tiktok_support;

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tiktok_support::{Harness, file_upload_body};

async fn user_info(h: &Harness, token: &str, fields: &str) -> (StatusCode, Value) {
    let url = format!("{}?fields={fields}", h.open("/v2/user/info/"));
    let response = h.http.get(url).bearer_auth(token).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["log_id"].as_str().unwrap().len(), 34);
}

#[tokio::test]
async fn user_info_returns_only_requested_fields() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let (status, body) = user_info(&h, &token, "open_id,union_id,avatar_url,display_name").await;
    assert_eq!(status, StatusCode::OK);
    assert_error(&body, "ok");
    assert_eq!(body["error"]["message"], "");
    let user = body["data"]["user"].as_object().unwrap();
    assert_eq!(user.len(), 4);
    assert_eq!(user["display_name"], "Tidepost Sandbox");
    assert!(user["open_id"].as_str().unwrap().starts_with("act."));

    let (_, body) = user_info(&h, &token, "username,follower_count,is_verified").await;
    assert_eq!(body["data"]["user"]["username"], "tidepost.sandbox");
    assert!(body["data"]["user"]["follower_count"].is_u64());

    let (status, body) = user_info(&h, &token, "open_id,shoe_size").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_params");
    let (status, body) = user_info(&h, &token, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_params");
}

#[tokio::test]
async fn user_info_fields_need_their_scopes() {
    let h = Harness::start().await;
    let token = h.token(json!({"scopes": ["user.info.basic"]})).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        user_info(&h, &token, "open_id,display_name").await.0,
        StatusCode::OK
    );
    let (status, body) = user_info(&h, &token, "open_id,follower_count").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "scope_permission_missed");
}

#[tokio::test]
async fn bearer_token_is_checked_everywhere() {
    let h = Harness::start().await;
    let (status, body) = user_info(&h, "act.not-a-token", "open_id").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "access_token_invalid");
    let response = h
        .http
        .post(h.open("/v2/post/publish/creator_info/query/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_error(&response.json().await.unwrap(), "access_token_invalid");

    for path in [
        "/v2/post/publish/creator_info/query/",
        "/v2/post/publish/video/init/",
        "/v2/post/publish/status/fetch/",
        "/v2/post/publish/content/init/",
    ] {
        let (status, body) = h.post("act.nope", path, json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_error(&body, "access_token_invalid");
    }
}

#[tokio::test]
async fn missing_scopes_are_refused() {
    let h = Harness::start().await;
    let basic = h.token(json!({"scopes": ["user.info.basic"]})).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/v2/post/publish/creator_info/query/",
        "/v2/post/publish/video/init/",
        "/v2/post/publish/inbox/video/init/",
        "/v2/post/publish/status/fetch/",
    ] {
        let (status, body) = h.post(&basic, path, json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_error(&body, "scope_not_authorized");
    }
    let upload_only = h.token(json!({"scopes": ["video.upload"]})).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = h
        .post(
            &upload_only,
            "/v2/post/publish/video/init/",
            file_upload_body(1000, 1000, "SELF_ONLY"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "scope_not_authorized");
    let (status, _) = h
        .post(
            &upload_only,
            "/v2/post/publish/inbox/video/init/",
            file_upload_body(1000, 1000, "SELF_ONLY"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn creator_info_reports_account_settings() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let (status, body) = h
        .post(&token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(&body, "ok");
    let data = &body["data"];
    assert_eq!(data["creator_username"], "tidepost.sandbox");
    assert_eq!(data["creator_nickname"], "Tidepost Sandbox");
    assert_eq!(
        data["privacy_level_options"],
        json!(["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    );
    assert_eq!(data["max_video_post_duration_sec"], 600);
    assert!(data["creator_avatar_url"].is_string());
    for flag in ["comment_disabled", "duet_disabled", "stitch_disabled"] {
        assert!(data[flag].is_boolean());
    }

    let private = h.access_token_for("tidepost.private").await;
    // No body at all is fine too.
    let response = h
        .http
        .post(h.open("/v2/post/publish/creator_info/query/"))
        .bearer_auth(&private)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["privacy_level_options"],
        json!(["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    );
    assert_eq!(body["data"]["duet_disabled"], true);

    // A banned creator: the documented 200-with-error answer.
    let banned = h.access_token_for("tidepost.banned").await;
    let (status, body) = h
        .post(&banned, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(&body, "spam_risk_user_banned_from_posting");
}

#[tokio::test]
async fn malformed_requests_get_invalid_param_and_wrong_methods_json() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let response = h
        .http
        .post(h.open("/v2/post/publish/video/init/"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error(&response.json().await.unwrap(), "invalid_param");

    let (status, body) = h
        .post(
            &token,
            "/v2/post/publish/video/init/",
            json!({"post_info": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_param");
    let (status, body) = h
        .post(
            &token,
            "/v2/post/publish/video/init/",
            json!({"source_info": {"source": "FILE_UPLOAD", "video_size": "big"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_param");
    let (status, body) = h
        .post(&token, "/v2/post/publish/status/fetch/", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_param");
    let (status, body) = h
        .post(
            &token,
            "/v2/post/publish/status/fetch/",
            json!({"publish_id": "v_pub_file~nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_publish_id");

    let response = h
        .http
        .get(h.open("/v2/post/publish/video/init/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&response.json().await.unwrap(), "invalid_param");
}

#[tokio::test]
async fn publish_ids_belong_to_their_creator() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let (publish_id, _) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    let other = h.access_token_for("tidepost.quiet").await;
    let (status, body) = h
        .post(
            &other,
            "/v2/post/publish/status/fetch/",
            json!({"publish_id": publish_id}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "token_not_authorized_for_specified_publish_id");
}

#[tokio::test]
async fn init_endpoints_allow_six_calls_a_minute_per_token() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.settings(json!({"direct_post_daily_cap": 100})).await;
    let body = file_upload_body(1000, 1000, "SELF_ONLY");
    for _ in 0..6 {
        assert_eq!(
            h.post(&token, "/v2/post/publish/video/init/", body.clone())
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, error) = h
        .post(&token, "/v2/post/publish/video/init/", body.clone())
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error(&error, "rate_limit_exceeded");
    // Other endpoints and other tokens have their own windows.
    assert_eq!(
        h.post(&token, "/v2/post/publish/inbox/video/init/", body.clone())
            .await
            .0,
        StatusCode::OK
    );
    let other = h.access_token().await;
    assert_eq!(
        h.post(&other, "/v2/post/publish/video/init/", body.clone())
            .await
            .0,
        StatusCode::OK
    );

    h.advance(61).await;
    assert_eq!(
        h.post(&token, "/v2/post/publish/video/init/", body).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn inbox_and_content_init_have_their_own_six_per_minute() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.settings(json!({"pending_inbox_cap": 100, "direct_post_daily_cap": 100}))
        .await;
    let inbox = json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1}});
    let photo = json!({
        "media_type": "PHOTO", "post_mode": "DIRECT_POST",
        "post_info": {"title": "t", "privacy_level": "SELF_ONLY"},
        "source_info": {"source": "PULL_FROM_URL", "photo_images": ["https://media.tidepost.example/1.jpg"], "photo_cover_index": 0},
    });
    for (path, body) in [
        ("/v2/post/publish/inbox/video/init/", inbox),
        ("/v2/post/publish/content/init/", photo),
    ] {
        for _ in 0..6 {
            let (status, answer) = h.post(&token, path, body.clone()).await;
            assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        }
        assert_eq!(
            h.post(&token, path, body).await.0,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}"
        );
    }
}

#[tokio::test]
async fn creator_info_allows_twenty_and_status_thirty_a_minute() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    for _ in 0..20 {
        assert_eq!(
            h.post(&token, "/v2/post/publish/creator_info/query/", json!({}))
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        h.post(&token, "/v2/post/publish/creator_info/query/", json!({}))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );

    let (publish_id, _) = h.init_upload(&token, 1000, 1000, "SELF_ONLY").await;
    for _ in 0..30 {
        h.status(&token, &publish_id).await;
    }
    let (status, body) = h
        .post(
            &token,
            "/v2/post/publish/status/fetch/",
            json!({"publish_id": publish_id}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error(&body, "rate_limit_exceeded");
    h.advance(60).await;
    h.status(&token, &publish_id).await;
}

#[tokio::test]
async fn injected_rate_limits_carry_retry_after() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.faults(json!({"rate_limit_share": 1.0, "retry_after_secs": 7}))
        .await;
    let (status, headers, body) = h
        .post_full(&token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error(&body, "rate_limit_exceeded");
    assert_eq!(headers["retry-after"], "7");
}

#[tokio::test]
async fn injected_server_errors_and_latency() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.faults(json!({"server_error_share": 1.0})).await;
    let (status, body) = h
        .post(&token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert!(status.is_server_error());
    assert_error(&body, "internal_error");

    h.faults(json!({"latency_ms": 300})).await;
    let started = Instant::now();
    assert_eq!(
        h.post(&token, "/v2/post/publish/creator_info/query/", json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert!(started.elapsed().as_millis() >= 300);
}

#[tokio::test]
async fn revoke_all_tokens_fault_invalidates_existing_tokens() {
    let h = Harness::start().await;
    let minted = h.token(json!({})).await;
    let token = minted["access_token"].as_str().unwrap();
    h.faults(json!({"revoke_all_tokens": true})).await;
    let (status, body) = h
        .post(token, "/v2/post/publish/creator_info/query/", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "access_token_invalid");
    // Refreshing recovers.
    let response = h
        .http
        .post(h.open("/v2/oauth/token/"))
        .form(&[
            ("client_key", tiktok_support::CLIENT_KEY),
            ("client_secret", tiktok_support::CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", minted["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let fresh: Value = response.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        h.post(fresh, "/v2/post/publish/creator_info/query/", json!({}))
            .await
            .0,
        StatusCode::OK
    );
}
