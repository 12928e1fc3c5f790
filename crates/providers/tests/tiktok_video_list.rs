//! `TikTokClient::list_videos` against the emulator: the creator's public videos newest first,
//! paged with the cursor TikTok hands back, ids kept exactly as text; a missing `video.list`
//! scope is a reauth error and an out-of-range page size is refused before any call.

mod support;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use support::Harness;
use tidepost_providers::tiktok::{TikTokClient, TikTokEndpoints};
use tidepost_providers::{ErrorKind, http_client};

fn client(h: &Harness) -> TikTokClient {
    TikTokClient::new(
        http_client(),
        TikTokEndpoints::emulator(&h.base),
        "sandbox-tiktok-client-key",
        SecretString::from("sandbox-tiktok-client-secret"),
    )
}

async fn token(h: &Harness, body: Value) -> SecretString {
    let minted = h.admin_post("/tiktok/token", body).await;
    SecretString::from(minted["access_token"].as_str().unwrap())
}

/// A one-chunk direct post of `title`, sent straight to the emulator and run to completion.
async fn post(h: &Harness, token: &SecretString, title: &str, privacy: &str) {
    let http = reqwest::Client::new();
    let init: Value = http
        .post(format!("{}/tiktok/open/v2/post/publish/video/init/", h.base))
        .bearer_auth(token.expose_secret())
        .json(&json!({
            "post_info": {"title": title, "privacy_level": privacy, "brand_content_toggle": false},
            "source_info": {"source": "FILE_UPLOAD", "video_size": 100, "chunk_size": 100, "total_chunk_count": 1},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = init["data"]["upload_url"].as_str().expect("an upload URL");
    let put = http
        .put(url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", "bytes 0-99/100")
        .body(vec![7u8; 100])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    // One second apart: distinct creation times.
    h.advance(1).await;
}

#[tokio::test]
async fn lists_public_videos_newest_first_page_by_page() {
    let h = Harness::start().await;
    h.admin_put(
        "/tiktok/settings",
        json!({"processing_delay_ms": 0, "moderation_delay_ms": 0}),
    )
    .await;
    let token = token(&h, json!({"creator": "tidepost.sandbox"})).await;
    for title in ["first", "second", "third"] {
        post(&h, &token, title, "PUBLIC_TO_EVERYONE").await;
    }
    post(&h, &token, "private", "SELF_ONLY").await;
    let tiktok = client(&h);

    let page = tiktok.list_videos(&token, None, 2).await.unwrap();
    let titles: Vec<_> = page
        .videos
        .iter()
        .map(|v| v.title.clone().unwrap())
        .collect();
    assert_eq!(titles, ["third", "second"]);
    assert!(page.has_more);
    assert!(
        page.videos
            .iter()
            .all(|v| v.id.len() >= 18 && v.id.parse::<u64>().is_ok())
    );
    let newest = page.videos[0].create_time.unwrap();
    assert!(newest > page.videos[1].create_time.unwrap());
    let rest = tiktok.list_videos(&token, page.cursor, 2).await.unwrap();
    assert_eq!(rest.videos.len(), 1);
    assert_eq!(rest.videos[0].title.as_deref(), Some("first"));
    assert_eq!(rest.videos[0].video_description.as_deref(), Some("first"));
    assert!(!rest.has_more);
}

#[tokio::test]
async fn scope_and_page_size_errors() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let no_list = token(&h, json!({"scopes": ["user.info.basic", "video.publish"]})).await;
    let err = tiktok.list_videos(&no_list, None, 20).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Reauth, "scope_not_authorized")
    );
    let token = token(&h, json!({})).await;
    assert!(tiktok.list_videos(&token, None, 21).await.is_err());
    assert!(tiktok.list_videos(&token, None, 0).await.is_err());
    let empty = tiktok.list_videos(&token, None, 20).await.unwrap();
    assert!(empty.videos.is_empty() && !empty.has_more);
}
