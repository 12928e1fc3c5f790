//! The post page shows the post's preview after publishing, drawn by the composer's own
//! preview script from what was stored: a TikTok video from the media library shown 9:16 at
//! its chosen cover frame, the disclosure and AI-generated labels, the caption, and the link to
//! the post on TikTok once TikTok gave its id; a photo post of library images opens on its
//! cover photo. In a real browser at 390 px; screenshots under
//! `target/screenshots/post_preview_tiktok/`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

both_backends!(the_post_page_shows_a_tiktok_posts_preview);

async fn run(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

async fn the_post_page_shows_a_tiktok_posts_preview(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("ttpreview").await;
    let key = app.api_key(&me.workspace.id, "ttpreview", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let answer = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "video/mp4")
        .header("x-file-name", "bay.mp4")
        .body(tidepost_app::media::testing::video(64 * 1024, "preview"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let video: Value = answer.json().await.unwrap();
    let media_id = video["id"].as_str().unwrap();
    let answer = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(&json!({
            "caption": "Low tide at the bay #tidepost",
            "media": [{"media_id": media_id}],
            "targets": [{"account_id": account, "tiktok": {
                "privacy_level": "PUBLIC_TO_EVERYONE",
                "brand_organic_toggle": true,
                "is_aigc": true,
                "video_cover_timestamp_ms": 1500,
            }}],
        }))
        .send()
        .await
        .unwrap();
    let created: Value = answer.json().await.unwrap();
    let post_id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a post: {created}"))
        .to_string();

    // Published, with the public post id TikTok gives after moderation.
    let deadline = Instant::now() + Duration::from_secs(60);
    let target = loop {
        let post: Value = app
            .api_get(&key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        let t = post["targets"][0].clone();
        assert_ne!(t["state"], "failed", "{post:#}");
        if t["state"] == "published" && t["post_url"].is_string() {
            break t;
        }
        assert!(Instant::now() < deadline, "published with its id: {post:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let post_url = target["post_url"].as_str().unwrap();

    let b = Browser::start(390, 844).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "owner@ttpreview.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("signed in", |p| !p.starts_with("/login"))
        .await;
    b.goto(&app.url(&format!("/posts/{post_id}"))).await;
    let card = ".post-preview .preview-tiktok";
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = run(
            &b,
            &format!(
                "const card = document.querySelector(\"{card}\"); if (!card) return null; \
                 const frame = card.querySelector('[data-role=preview-media]'); \
                 const img = frame.querySelector('img'); \
                 if (!img || !img.complete || !img.naturalWidth) return null; \
                 const r = frame.getBoundingClientRect(); const a = card.querySelector('.preview-link a'); \
                 return {{ratio: Math.round(1000 * r.width / r.height), src: img.getAttribute('src'), \
                 labels: Array.from(card.querySelectorAll('.preview-label')).map(l => l.textContent), \
                 caption: card.querySelector('[data-role=preview-caption]').textContent, \
                 counts: card.querySelector('[data-role=preview-counts]').textContent, \
                 link: a && [a.textContent, a.getAttribute('href')]}};"
            ),
        )
        .await;
        if !shown.is_null() {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "the preview on the post page: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(shown["ratio"], 563, "9:16: {shown}");
    assert_eq!(
        shown["src"],
        format!("/api/v1/media/{media_id}/frame?at_ms=1500"),
        "the chosen cover frame: {shown}"
    );
    assert_eq!(
        shown["labels"],
        json!(["Promotional content", "AI-generated"]),
        "{shown}"
    );
    assert_eq!(shown["caption"], "Low tide at the bay #tidepost");
    assert_eq!(shown["counts"], "1 hashtags · 0 mentions");
    assert_eq!(shown["link"], json!(["View on TikTok", post_url]));
    b.assert_layout_fits("the post page with a TikTok preview")
        .await;
    b.screenshot_of(card, "post_preview_tiktok", "01-post-page")
        .await;

    // A photo post of two library images with the second as its cover opens on the cover.
    set_emulator(
        &app,
        "tiktok",
        json!({"verified_url_prefixes": [app.url("/media/")]}),
    )
    .await;
    let mut photos = Vec::new();
    for (w, h) in [(1080, 1350), (1080, 1080)] {
        let answer = bare_client()
            .post(app.url("/api/v1/media"))
            .bearer_auth(&key)
            .header("content-type", "image/jpeg")
            .body(tidepost_app::media::testing::jpeg(w, h))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let item: Value = answer.json().await.unwrap();
        photos.push(item["id"].as_str().unwrap().to_string());
    }
    let answer = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(&json!({
            "caption": "Two photos",
            "media": [{"media_id": photos[0]}, {"media_id": photos[1]}],
            "targets": [{"account_id": account, "tiktok": {
                "privacy_level": "SELF_ONLY",
                "title": "The bay",
                "photo_cover_index": 1,
            }}],
        }))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let created: Value = answer.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    b.goto(&app.url(&format!("/posts/{}", created["id"].as_str().unwrap())))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = run(
            &b,
            &format!(
                "const card = document.querySelector(\"{card}\"); if (!card) return null; \
                 const img = card.querySelector('[data-role=preview-image]'); \
                 if (!img || !img.complete || !img.naturalWidth) return null; \
                 return [img.getAttribute('src'), card.querySelector('.preview-index').textContent, \
                 card.querySelectorAll('.preview-item').length];"
            ),
        )
        .await;
        if !shown.is_null() {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "the photo preview: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(
        shown,
        json!([format!("/api/v1/media/{}/content", photos[1]), "2/2", 2]),
        "the cover photo first"
    );
    b.screenshot_of(card, "post_preview_tiktok", "02-photo-post-cover")
        .await;
    b.close().await;
}
