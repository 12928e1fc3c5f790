//! Fidelity of insights, comments (with cursors), webhook deliveries (signatures checked with an
//! independent HMAC) and the verification handshake.

mod meta_support;

use hmac::{Hmac, KeyInit, Mac};
use meta_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

async fn published_image(h: &Harness, t: &AdminToken, files: &MediaServer) -> String {
    let id = h
        .container(
            &t.access_token,
            &t.ig_user_id,
            &[("image_url", &files.url("/image.jpg"))],
        )
        .await;
    let (status, body) = h.publish(&t.access_token, &t.ig_user_id, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s(&body["id"])
}

fn metric(body: &Value, name: &str) -> u64 {
    body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["name"] == name))
        .and_then(|m| m["values"][0]["value"].as_u64())
        .unwrap_or_else(|| panic!("metric {name} in {body}"))
}

#[tokio::test]
async fn insights_grow_with_emulated_time() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let media = published_image(&h, &t, &files).await;
    let url = h.graph(&format!("{media}/insights"));
    let query = [
        (
            "metric",
            "reach,likes,comments,saved,shares,total_interactions,views",
        ),
        ("access_token", t.access_token.as_str()),
    ];
    h.advance(3600).await;
    let (status, early) = h.get(&url, &query).await;
    assert_eq!(status, StatusCode::OK, "{early}");
    let first = &early["data"][0];
    assert_eq!(first["period"], "lifetime");
    assert_eq!(first["id"], format!("{media}/insights/reach/lifetime"));
    assert!(first["title"].is_string());
    h.advance(48 * 3600).await;
    let (_, late) = h.get(&url, &query).await;
    assert!(metric(&late, "reach") > metric(&early, "reach"));
    assert!(metric(&late, "views") >= metric(&late, "reach"));

    let (status, body) = h
        .get(
            &url,
            &[("metric", "impressions"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "deprecated metric");
    assert_graph_error(&body, 100, None);
    let (_, body) = h.get(&url, &[("access_token", &t.access_token)]).await;
    assert_eq!(body["error"]["message"], "The parameter metric is required");
}

#[tokio::test]
async fn comments_replies_and_cursors() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let media = published_image(&h, &t, &files).await;
    let comments = h.graph(&format!("{media}/comments"));
    let mut ids = Vec::new();
    for text in ["first", "second", "third"] {
        let (status, body) = h
            .post(
                &comments,
                &[("message", text), ("access_token", &t.access_token)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(s(&body["id"]));
    }
    let (status, body) = h
        .post(
            &h.graph(&format!("{}/replies", ids[0])),
            &[("message", "thanks!"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = h
        .post(&comments, &[("access_token", &t.access_token)])
        .await;
    assert_eq!(
        body["error"]["message"],
        "The parameter message is required"
    );

    let fields = "id,text,username,timestamp,replies{id,text}";
    let (_, page1) = h
        .get(
            &comments,
            &[
                ("fields", fields),
                ("limit", "2"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    let data = page1["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["text"], "first");
    assert_eq!(data[0]["replies"]["data"][0]["text"], "thanks!");
    assert_eq!(data[0]["username"], "tidepost.coffee");
    let next = s(&page1["paging"]["next"]);
    assert!(page1["paging"]["cursors"]["after"].is_string());
    let (_, page2) = h.get(&next, &[]).await;
    assert_eq!(page2["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page2["data"][0]["id"], ids[2].as_str());
    assert!(page2["paging"].get("next").is_none());
    assert!(page2["paging"]["previous"].is_string());

    let (_, body) = h
        .get(
            &h.graph(&media),
            &[
                ("fields", "comments_count,like_count"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    assert_eq!(body["comments_count"], 4);
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn signed_comment_and_mention_webhooks() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let (receiver, hook) = Receiver::start("emulator-verify-token").await;
    let t = h.admin_token().await;
    let media = published_image(&h, &t, &files).await;

    let (status, body) = h
        .admin(
            Method::POST,
            "/_emulator/meta/comments",
            json!({"media_id": media, "text": "Schön!"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["webhook_sent"], false, "no callback URL yet");

    h.admin(
        Method::PUT,
        "/_emulator/meta/settings",
        json!({"webhook_url": hook}),
    )
    .await;
    let (_, injected) = h
        .admin(
            Method::POST,
            "/_emulator/meta/comments",
            json!({"media_id": media, "text": "Schön!", "username": "bob"}),
        )
        .await;
    let deliveries = receiver.wait_for(1).await;
    let (headers, raw) = &deliveries[0];
    let signature = headers["x-hub-signature-256"].to_str().expect("signature");
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex("emulator-facebook-app-secret", raw))
    );
    assert!(
        std::str::from_utf8(raw)
            .expect("utf8")
            .contains("Sch\\u00f6n!"),
        "non-ASCII escaped like Meta"
    );
    let payload: Value = serde_json::from_slice(raw).expect("json");
    assert_eq!(payload["object"], "instagram");
    let entry = &payload["entry"][0];
    assert_eq!(entry["id"], t.ig_user_id.as_str());
    assert!(entry["time"].is_i64());
    let change = &entry["changes"][0];
    assert_eq!(change["field"], "comments");
    assert_eq!(change["value"]["id"], injected["comment_id"]);
    assert_eq!(change["value"]["text"], "Schön!");
    assert_eq!(change["value"]["from"]["username"], "bob");
    assert_eq!(
        change["value"]["media"],
        json!({"id": media, "media_product_type": "FEED"})
    );

    // The injected comment is visible through the API.
    let (_, list) = h
        .get(
            &h.graph(&format!("{media}/comments")),
            &[
                ("fields", "id,text,username"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    assert!(
        list["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|c| c["username"] == "bob")
    );

    h.admin(
        Method::POST,
        "/_emulator/meta/comments",
        json!({"mention_of": t.ig_user_id, "text": "@tidepost.coffee look"}),
    )
    .await;
    let deliveries = receiver.wait_for(2).await;
    let payload: Value = serde_json::from_slice(&deliveries[1].1).expect("json");
    let change = &payload["entry"][0]["changes"][0];
    assert_eq!(change["field"], "mentions");
    assert!(change["value"]["comment_id"].is_string() && change["value"]["media_id"].is_string());

    let (status, _) = h
        .admin(
            Method::POST,
            "/_emulator/meta/comments",
            json!({"media_id": "1", "text": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn verification_handshake() {
    let h = Harness::start().await;
    let (_, report) = h
        .admin(Method::POST, "/_emulator/meta/webhooks/verify", json!({}))
        .await;
    assert!(
        report["error"].is_string(),
        "no callback configured: {report}"
    );

    let (_, hook) = Receiver::start("emulator-verify-token").await;
    h.admin(
        Method::PUT,
        "/_emulator/meta/settings",
        json!({"webhook_url": hook}),
    )
    .await;
    let (status, report) = h
        .admin(Method::POST, "/_emulator/meta/webhooks/verify", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["status"], 200);
    assert_eq!(report["body"], report["challenge"]);

    let (_, report) = h
        .admin(
            Method::POST,
            "/_emulator/meta/webhooks/verify",
            json!({"verify_token": "wrong"}),
        )
        .await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["status"], 403);
}

#[tokio::test]
async fn instagram_login_media_webhooks_use_the_instagram_app_secret() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let (receiver, hook) = Receiver::start("emulator-verify-token").await;
    h.admin(
        Method::PUT,
        "/_emulator/meta/settings",
        json!({"webhook_url": hook}),
    )
    .await;
    let token = h.ig_login("17841405822304914").await;
    let (_, body) = h
        .post(
            &h.ig_graph("me/media"),
            &[
                ("image_url", &files.url("/image.jpg")),
                ("access_token", &token),
            ],
        )
        .await;
    let (_, body) = h
        .post(
            &h.ig_graph("me/media_publish"),
            &[("creation_id", &s(&body["id"])), ("access_token", &token)],
        )
        .await;
    let media = s(&body["id"]);
    h.admin(
        Method::POST,
        "/_emulator/meta/comments",
        json!({"media_id": media, "text": "hi"}),
    )
    .await;
    let deliveries = receiver.wait_for(1).await;
    let (headers, raw) = &deliveries[0];
    let expected = format!("sha256={}", hmac_hex("emulator-instagram-app-secret", raw));
    assert_eq!(
        headers["x-hub-signature-256"].to_str().expect("header"),
        expected
    );
}

#[tokio::test]
async fn account_insights_per_day_and_total_value() {
    let h = Harness::start().await;
    let t = h.admin_token().await;
    let url = h.graph(&format!("{}/insights", t.ig_user_id));
    let now = 1_750_000_000i64;
    let (since, until) = ((now - 3 * 86_400).to_string(), now.to_string());
    let query = [
        ("metric", "follower_count,reach"),
        ("period", "day"),
        ("since", since.as_str()),
        ("until", until.as_str()),
        ("access_token", t.access_token.as_str()),
    ];
    let (status, body) = h.get(&url, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["values"].as_array().map(Vec::len), Some(3));
    assert!(body["data"][1]["values"][0]["end_time"].is_string());
    let total = [
        ("metric_type", "total_value"),
        ("metric", "likes,views"),
        ("period", "day"),
        ("access_token", t.access_token.as_str()),
    ];
    let (_, body) = h.get(&url, &total).await;
    assert!(body["data"][0]["total_value"]["value"].is_u64(), "{body}");
    let too_long = [
        ("metric", "reach"),
        ("since", "0"),
        ("until", until.as_str()),
        ("access_token", t.access_token.as_str()),
    ];
    let (_, body) = h.get(&url, &too_long).await;
    assert_graph_error(&body, 100, None);
}
