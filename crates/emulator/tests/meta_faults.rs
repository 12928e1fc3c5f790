//! Every Meta fault knob has a visible effect; usage headers are always present.

mod meta_support;

use std::time::{Duration, Instant};

use meta_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn header_json(response: &reqwest::Response, name: &str) -> Value {
    let raw = response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{name} header"));
    serde_json::from_str(raw).expect("header is JSON")
}

#[tokio::test]
async fn usage_headers_rate_limit_server_error_and_latency() {
    let h = Harness::start().await;
    let t = h.admin_token().await;
    let ig_url = h.graph(&t.ig_user_id);

    let response = h
        .http
        .get(&ig_url)
        .bearer_auth(&t.access_token)
        .send()
        .await
        .expect("ok");
    let usage = header_json(&response, "x-app-usage");
    assert!(usage["call_count"].as_u64().is_some_and(|c| c < 100));
    let buc = header_json(&response, "x-business-use-case-usage");
    assert_eq!(buc[&t.ig_user_id][0]["type"], "instagram");

    h.faults(json!({"rate_limit_share": 1.0})).await;
    let response = h
        .http
        .get(&ig_url)
        .bearer_auth(&t.access_token)
        .send()
        .await
        .expect("limited");
    assert_eq!(header_json(&response, "x-app-usage")["call_count"], 100);
    let buc = header_json(&response, "x-business-use-case-usage");
    assert_eq!(buc[&t.ig_user_id][0]["call_count"], 100);
    assert!(
        buc[&t.ig_user_id][0]["estimated_time_to_regain_access"]
            .as_u64()
            .is_some_and(|m| m > 0)
    );
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 17, None);
    let (_, body) = h
        .get(&h.graph("oauth/access_token"), &[("client_id", "x")])
        .await;
    assert_graph_error(&body, 4, None);

    h.faults(json!({"server_error_share": 1.0})).await;
    let (status, body) = h.get(&ig_url, &[("access_token", &t.access_token)]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["is_transient"], true);

    h.faults(json!({"latency_ms": 400})).await;
    let started = Instant::now();
    let (status, _) = h.get(&ig_url, &[("access_token", &t.access_token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn revoke_all_and_refuse_refresh() {
    let h = Harness::start().await;
    let t = h.admin_token().await;
    let ig_token = h.ig_login("17841405822304914").await;

    h.faults(json!({"refuse_refresh": true})).await;
    let (status, body) = h
        .get(
            &h.graph("oauth/access_token"),
            &[
                ("grant_type", "fb_exchange_token"),
                ("client_id", "1234567890123456"),
                ("client_secret", "emulator-facebook-app-secret"),
                ("fb_exchange_token", &t.access_token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 190, Some(458));
    let exchange = format!("{}/meta/ig-graph/access_token", h.base);
    let (_, body) = h
        .get(
            &exchange,
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", "emulator-instagram-app-secret"),
                ("access_token", &ig_token),
            ],
        )
        .await;
    let long = s(&body["access_token"]);
    h.advance(25 * 3600).await;
    let refresh = format!("{}/meta/ig-graph/refresh_access_token", h.base);
    let (_, body) = h
        .get(
            &refresh,
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_graph_error(&body, 190, Some(458));

    h.faults(json!({"revoke_all_tokens": true})).await;
    let (status, body) = h
        .get(&h.graph("me"), &[("access_token", &t.access_token)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 190, Some(458));
    let (_, body) = h.get(&h.ig_graph("me"), &[("access_token", &long)]).await;
    assert_graph_error(&body, 190, Some(458));

    let (status, _) = h
        .admin(Method::DELETE, "/_emulator/faults/meta", json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = h
        .get(&h.graph("me"), &[("access_token", &t.access_token)])
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn fail_processing_and_duplicate_webhooks() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let (tok, ig) = (t.access_token.as_str(), t.ig_user_id.as_str());

    h.faults(json!({"fail_processing": true})).await;
    let image = h
        .container(tok, ig, &[("image_url", &files.url("/image.jpg"))])
        .await;
    let reel = h
        .container(
            tok,
            ig,
            &[
                ("media_type", "REELS"),
                ("video_url", &files.url("/video.mp4")),
            ],
        )
        .await;
    for id in [&image, &reel] {
        let done = h.wait_container(tok, id).await;
        assert_eq!(done["status_code"], "ERROR", "{done}");
        assert!(s(&done["status"]).starts_with("Error:"));
        let (_, body) = h.publish(tok, ig, id).await;
        assert_graph_error(&body, 9007, Some(2207027));
    }

    h.faults(json!({"duplicate_webhooks": true})).await;
    let good = h
        .container(tok, ig, &[("image_url", &files.url("/image.jpg"))])
        .await;
    let (_, body) = h.publish(tok, ig, &good).await;
    let media = s(&body["id"]);
    let (receiver, hook) = Receiver::start("emulator-verify-token").await;
    h.admin(
        Method::PUT,
        "/_emulator/meta/settings",
        json!({"webhook_url": hook}),
    )
    .await;
    h.admin(
        Method::POST,
        "/_emulator/meta/comments",
        json!({"media_id": media, "text": "twice"}),
    )
    .await;
    let deliveries = receiver.wait_for(2).await;
    assert_eq!(deliveries[0].1, deliveries[1].1);
}

#[tokio::test]
async fn dropped_rupload_leaves_the_container_waiting() {
    let h = Harness::start().await;
    let t = h.admin_token().await;
    let (_, body) = h
        .post(
            &h.graph(&format!("{}/media", t.ig_user_id)),
            &[
                ("media_type", "REELS"),
                ("upload_type", "resumable"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    let (id, uri) = (s(&body["id"]), s(&body["uri"]));
    h.faults(json!({"drop_upload_after_bytes": 1000})).await;
    let response = h
        .http
        .post(&uri)
        .header("Authorization", format!("OAuth {}", t.access_token))
        .header("offset", "0")
        .header("file_size", "50000")
        .body(vec![7u8; 50_000])
        .send()
        .await
        .expect("rupload");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["debug_info"]["type"], "ProcessingFailedError");
    let (_, body) = h
        .get(
            &h.graph(&id),
            &[("fields", "status_code"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(body["status_code"], "IN_PROGRESS");
}
