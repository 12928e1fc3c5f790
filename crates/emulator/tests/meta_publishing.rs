//! Fidelity of content publishing: every media type, fetching and hashing, the container status
//! machine, publish errors and the publishing limit.

mod meta_support;

use meta_support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn admin_container<'a>(media: &'a Value, id: &str) -> &'a Value {
    media["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .expect("container in admin list")
}

#[tokio::test]
async fn image_post_is_fetched_hashed_and_published_once() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let image = files.url("/image.jpg");
    let id = h
        .container(
            &t.access_token,
            &t.ig_user_id,
            &[("image_url", &image), ("caption", "Hello #coffee")],
        )
        .await;

    let (status, body) = h
        .get(
            &h.graph(&id),
            &[
                ("fields", "status_code,status,id"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status_code"], "FINISHED");
    assert_eq!(body["id"], id.as_str());
    let (_, body) = h
        .get(&h.graph(&id), &[("access_token", &t.access_token)])
        .await;
    assert!(body.get("status").is_none(), "status only when asked for");

    let admin = h.admin_media().await;
    let container = admin_container(&admin, &id);
    assert_eq!(container["sha256"], sha256_hex(&files.image));
    assert_eq!(container["bytes"], files.image.len());
    assert_eq!(container["url"], image.as_str());
    assert_eq!(container["owner_id"], t.ig_user_id.as_str());

    let (status, body) = h.publish(&t.access_token, &t.ig_user_id, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let media_id = s(&body["id"]);
    let (status, body) = h.publish(&t.access_token, &t.ig_user_id, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "double publish refused");
    assert_graph_error(&body, 100, None);

    let (_, body) = h
        .get(
            &h.graph(&id),
            &[("fields", "status_code"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(body["status_code"], "PUBLISHED");

    let fields = "id,permalink,media_type,media_product_type,timestamp,caption,shortcode,media_url";
    let (status, media) = h
        .get(
            &h.graph(&media_id),
            &[("fields", fields), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{media}");
    assert_eq!(media["media_type"], "IMAGE");
    assert_eq!(media["media_product_type"], "FEED");
    assert_eq!(media["caption"], "Hello #coffee");
    let permalink = s(&media["permalink"]);
    assert_eq!(
        permalink,
        format!("https://www.instagram.com/p/{}/", s(&media["shortcode"]))
    );
    assert!(s(&media["timestamp"]).ends_with("+0000"));

    let (_, list) = h
        .get(
            &h.graph(&format!("{}/media", t.ig_user_id)),
            &[("fields", "id,caption"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(list["data"][0]["id"], media_id.as_str());
}

#[tokio::test]
async fn reel_goes_through_processing_with_json_body_and_bearer() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    h.admin(
        Method::PUT,
        "/_emulator/meta/settings",
        json!({"video_processing_ms": 3_600_000}),
    )
    .await;
    let body = json!({
        "media_type": "REELS",
        "video_url": files.url("/video.mp4"),
        "cover_url": files.url("/cover.jpg"),
        "share_to_feed": true,
        "caption": "A reel",
    });
    let response = h
        .http
        .post(h.graph(&format!("{}/media", t.ig_user_id)))
        .bearer_auth(&t.access_token)
        .json(&body)
        .send()
        .await
        .expect("create");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = s(&body["id"]);
    let (_, status_body) = h
        .get(
            &h.graph(&id),
            &[("fields", "status_code"), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(status_body["status_code"], "IN_PROGRESS");

    let (status, body) = h.publish(&t.access_token, &t.ig_user_id, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 9007, Some(2207027));

    // Once the bytes are in, the processing delay runs on the emulated clock.
    for _ in 0..100 {
        let admin = h.admin_media().await;
        let sources = admin_container(&admin, &id)["sources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if sources.iter().all(|s| s["state"] == "done") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.advance(3601).await;
    let done = h.wait_container(&t.access_token, &id).await;
    assert_eq!(done["status_code"], "FINISHED", "{done}");
    let admin = h.admin_media().await;
    let container = admin_container(&admin, &id);
    assert_eq!(container["sha256"], sha256_hex(&files.video));
    assert_eq!(container["bytes"], files.video.len());
    let cover = container["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["role"] == "cover"))
        .expect("cover");
    assert_eq!(cover["sha256"], sha256_hex(&[0xff, 0xd8, 0xff, 1, 2, 3]));

    let (status, body) = h.publish(&t.access_token, &t.ig_user_id, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields = "media_type,media_product_type,permalink,thumbnail_url,is_shared_to_feed";
    let (_, media) = h
        .get(
            &h.graph(&s(&body["id"])),
            &[("fields", fields), ("access_token", &t.access_token)],
        )
        .await;
    assert_eq!(media["media_type"], "VIDEO");
    assert_eq!(media["media_product_type"], "REELS");
    assert!(s(&media["permalink"]).starts_with("https://www.instagram.com/reel/"));
    assert_eq!(media["is_shared_to_feed"], true);
}

#[tokio::test]
async fn carousel_and_story() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let (tok, ig) = (t.access_token.as_str(), t.ig_user_id.as_str());
    let image = files.url("/image.jpg");
    let video = files.url("/video.mp4");
    let a = h
        .container(
            tok,
            ig,
            &[("image_url", &image), ("is_carousel_item", "true")],
        )
        .await;
    let b = h
        .container(
            tok,
            ig,
            &[
                ("media_type", "VIDEO"),
                ("video_url", &video),
                ("is_carousel_item", "true"),
            ],
        )
        .await;
    let media = h.graph(&format!("{ig}/media"));

    let (status, body) = h
        .post(
            &media,
            &[
                ("media_type", "CAROUSEL"),
                ("children", &a),
                ("access_token", tok),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "one child is too few");
    assert_graph_error(&body, 100, None);
    let stranger = h.container(tok, ig, &[("image_url", &image)]).await;
    let (_, body) = h
        .post(
            &media,
            &[
                ("media_type", "CAROUSEL"),
                ("children", &format!("{a},{stranger}")),
                ("access_token", tok),
            ],
        )
        .await;
    assert_graph_error(&body, 100, None);

    h.wait_container(tok, &b).await;
    // Children still processing would be refused; after the wait they are FINISHED.
    let children = format!("{a},{b}");
    let parent = h
        .container(
            tok,
            ig,
            &[
                ("media_type", "CAROUSEL"),
                ("children", &children),
                ("caption", "Album"),
            ],
        )
        .await;
    let (status, body) = h.publish(tok, ig, &a).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "children cannot be published alone: {body}"
    );
    let (status, body) = h.publish(tok, ig, &parent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let album = s(&body["id"]);
    let (_, body) = h
        .get(
            &h.graph(&album),
            &[
                ("fields", "media_type,children{id,media_type},permalink"),
                ("access_token", tok),
            ],
        )
        .await;
    assert_eq!(body["media_type"], "CAROUSEL_ALBUM");
    let kids = body["children"]["data"].as_array().expect("children");
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1]["media_type"], "VIDEO");
    let admin = h.admin_media().await;
    assert_eq!(admin_container(&admin, &parent)["children"], json!([a, b]));

    let story = h
        .container(tok, ig, &[("media_type", "STORIES"), ("image_url", &image)])
        .await;
    let (_, body) = h.publish(tok, ig, &story).await;
    let (_, body) = h
        .get(
            &h.graph(&s(&body["id"])),
            &[
                ("fields", "media_product_type,permalink"),
                ("access_token", tok),
            ],
        )
        .await;
    assert_eq!(body["media_product_type"], "STORY");
    let (_, stories) = h
        .get(&h.graph(&format!("{ig}/stories")), &[("access_token", tok)])
        .await;
    assert_eq!(stories["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn fetch_failures_errors_and_expiry() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let (tok, ig) = (t.access_token.as_str(), t.ig_user_id.as_str());
    let media = h.graph(&format!("{ig}/media"));

    let (status, body) = h
        .post(
            &media,
            &[("image_url", &files.url("/missing")), ("access_token", tok)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 9004, Some(2207052));

    let reel = h
        .container(
            tok,
            ig,
            &[
                ("media_type", "REELS"),
                ("video_url", &files.url("/missing")),
            ],
        )
        .await;
    let done = h.wait_container(tok, &reel).await;
    assert_eq!(done["status_code"], "ERROR");
    assert!(s(&done["status"]).contains("2207052"), "{done}");
    let (_, body) = h.publish(tok, ig, &reel).await;
    assert_graph_error(&body, 9007, Some(2207027));

    let (_, body) = h.post(&media, &[("access_token", tok)]).await;
    assert_graph_error(&body, 100, None);
    assert_eq!(
        body["error"]["message"],
        "The parameter image_url is required"
    );
    let (_, body) = h
        .post(&media, &[("media_type", "REELS"), ("access_token", tok)])
        .await;
    assert_eq!(
        body["error"]["message"],
        "The parameter video_url is required"
    );
    let (_, body) = h
        .post(
            &media,
            &[
                ("media_type", "HOLOGRAM"),
                ("image_url", "x"),
                ("access_token", tok),
            ],
        )
        .await;
    assert_eq!(body["error"]["error_subcode"], 2207023);
    let (_, body) = h.publish(tok, ig, "17000000000000000").await;
    assert_graph_error(&body, 100, None);
    let (_, body) = h
        .post(
            &h.graph(&format!("{ig}/media_publish")),
            &[("access_token", tok)],
        )
        .await;
    assert_eq!(
        body["error"]["message"],
        "The parameter creation_id is required"
    );

    let stale = h
        .container(tok, ig, &[("image_url", &files.url("/image.jpg"))])
        .await;
    h.advance(24 * 3600 + 60).await;
    let (_, body) = h
        .get(
            &h.graph(&stale),
            &[("fields", "status_code"), ("access_token", tok)],
        )
        .await;
    assert_eq!(body["status_code"], "EXPIRED");
    let (_, body) = h.publish(tok, ig, &stale).await;
    assert_graph_error(&body, -2, Some(2207020));
}

#[tokio::test]
async fn publishing_limit_is_a_rolling_window() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let t = h.admin_token().await;
    let (tok, ig) = (t.access_token.as_str(), t.ig_user_id.as_str());
    let (_, settings) = h
        .admin(
            Method::PUT,
            "/_emulator/meta/settings",
            json!({"publishing_limit": 2}),
        )
        .await;
    assert_eq!(settings["publishing_limit"], 2);
    let image = files.url("/image.jpg");
    for _ in 0..2 {
        let id = h.container(tok, ig, &[("image_url", &image)]).await;
        let (status, body) = h.publish(tok, ig, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let limit = h.graph(&format!("{ig}/content_publishing_limit"));
    let (_, body) = h
        .get(
            &limit,
            &[("fields", "config,quota_usage"), ("access_token", tok)],
        )
        .await;
    assert_eq!(
        body,
        json!({"data": [{"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}]})
    );
    let (_, body) = h.get(&limit, &[("access_token", tok)]).await;
    assert_eq!(body, json!({"data": [{"quota_usage": 2}]}));

    let third = h.container(tok, ig, &[("image_url", &image)]).await;
    let (status, body) = h.publish(tok, ig, &third).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 9, Some(2207042));

    h.advance(20 * 3600).await;
    let (_, body) = h.publish(tok, ig, &third).await;
    assert_graph_error(&body, 9, Some(2207042));
    h.advance(4 * 3600 + 60).await;
    let (_, body) = h.get(&limit, &[("access_token", tok)]).await;
    assert_eq!(body["data"][0]["quota_usage"], 0);
    let fresh = h.container(tok, ig, &[("image_url", &image)]).await;
    let (status, body) = h.publish(tok, ig, &fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn instagram_login_publishes_on_graph_instagram_com() {
    let h = Harness::start().await;
    let files = MediaServer::start().await;
    let token = h.ig_login("17841405822304914").await;
    let (status, body) = h
        .post(
            &h.ig_graph("me/media"),
            &[
                ("image_url", &files.url("/image.jpg")),
                ("access_token", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = s(&body["id"]);
    let (status, body) = h
        .post(
            &h.ig_graph("17841405822304914/media_publish"),
            &[("creation_id", &id), ("access_token", &token)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Resumable uploads are Facebook-Login only: Instagram Login wants video_url.
    let (_, body) = h
        .post(
            &h.ig_graph("me/media"),
            &[
                ("media_type", "REELS"),
                ("upload_type", "resumable"),
                ("access_token", &token),
            ],
        )
        .await;
    assert_eq!(body["error"]["type"], "IGApiException");
    assert_eq!(
        body["error"]["message"],
        "The parameter video_url is required"
    );
    // Another account's id is not reachable with this token.
    let (_, body) = h
        .get(
            &h.ig_graph("17841405822304915"),
            &[("access_token", &token)],
        )
        .await;
    assert_graph_error(&body, 100, Some(33));
}

#[tokio::test]
async fn resumable_upload_through_rupload() {
    let h = Harness::start().await;
    let t = h.admin_token().await;
    let (status, body) = h
        .post(
            &h.graph(&format!("{}/media", t.ig_user_id)),
            &[
                ("media_type", "REELS"),
                ("upload_type", "resumable"),
                ("access_token", &t.access_token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = s(&body["id"]);
    let uri = s(&body["uri"]);
    assert!(uri.ends_with(&format!("/ig-api-upload/{V}/{id}")));
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
    let response = h
        .http
        .post(&uri)
        .header("Authorization", format!("OAuth {}", t.access_token))
        .header("offset", "0")
        .header("file_size", bytes.len().to_string())
        .body(bytes.clone())
        .send()
        .await
        .expect("rupload");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"success": true, "message": "Upload successful."})
    );
    let done = h.wait_container(&t.access_token, &id).await;
    assert_eq!(done["status_code"], "FINISHED");
    let admin = h.admin_media().await;
    assert_eq!(admin_container(&admin, &id)["sha256"], sha256_hex(&bytes));
}
