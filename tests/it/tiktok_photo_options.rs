//! A TikTok photo post's own options through the API: `title`, `description` and
//! `auto_add_music` reach TikTok's photo init (the emulator's record of the call), the
//! description standing in for the caption; each refusal is a 422 naming
//! `targets[N].tiktok.FIELD` with nothing stored: a title over 90 UTF-16 units (counted as
//! TikTok counts them, so 46 emoji are too many), a description over 4000, the photo options
//! on a video, music asked for a draft. The OpenAPI document types them. Photos uploaded to
//! tidepost (media ids) go to TikTok as signed URLs under tidepost's `/media/` (made when the
//! post is sent), beside photos given by URL, in the post's order; TikTok pulls them and the
//! post is published. The composer's "Cover photo" field (counted from 1) is TikTok's
//! `photo_cover_index` (from 0), kept in a draft and refused past the photos. On SQLite and
//! PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_app::media::testing;

use crate::support::*;

both_backends!(
    photo_options_reach_tiktok,
    photo_option_refusals_name_the_field,
    uploaded_photos_go_to_tiktok_from_signed_urls,
    the_composer_sets_the_cover_photo,
);

/// Serves two JPEGs and the test clip on a free local port; returns the base URL.
async fn media_server() -> String {
    let jpeg = || async {
        (
            [(axum::http::header::CONTENT_TYPE, "image/jpeg")],
            testing::jpeg(1080, 1350),
        )
    };
    let router = axum::Router::new()
        .route("/media/1.jpg", axum::routing::get(jpeg))
        .route("/media/2.jpg", axum::routing::get(jpeg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/media")
}

struct Scene {
    app: TestApp,
    key: String,
    account: String,
    media: String,
}

async fn scene(backend: Backend, workers: bool) -> Scene {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("photos").await;
    let key = app.api_key(&me.workspace.id, "photos", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let media = media_server().await;
    set_emulator(
        &app,
        "tiktok",
        // The test's own media server, and tidepost's media URLs as the sandbox verifies them.
        json!({"verified_url_prefixes": [format!("{media}/"), app.url("/media/")]}),
    )
    .await;
    Scene {
        app,
        key,
        account,
        media,
    }
}

impl Scene {
    /// The photo publish TikTok received for post `id`, once the post was sent (3 minutes at most).
    async fn sent_to_tiktok(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        let publish_id = loop {
            let post: Value = self
                .app
                .api_get(&self.key, &format!("/api/v1/posts/{id}"))
                .await
                .json()
                .await
                .unwrap();
            if let Some(publish_id) = post["targets"][0]["publish_id"].as_str() {
                break publish_id.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "the photo post was sent: {post:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let emulator = self.app.emulator.clone().unwrap();
        let publishes = emulator_json(&emulator, "/_emulator/tiktok/publishes").await;
        publishes["publishes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["publish_id"] == publish_id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("the photo publish: {publishes:#}"))
    }

    fn photos(&self) -> Value {
        json!([
            {"url": format!("{}/1.jpg", self.media), "kind": "image"},
            {"url": format!("{}/2.jpg", self.media), "kind": "image"},
        ])
    }

    fn body(&self, media: Value, tiktok: Value) -> Value {
        json!({
            "caption": "Low tide #tidepost",
            "media": media,
            "targets": [{"account_id": self.account, "tiktok": tiktok}],
        })
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        let answer = bare_client()
            .post(self.app.url("/api/v1/posts"))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.json().await.unwrap())
    }
}

async fn photo_options_reach_tiktok(backend: Backend) {
    let s = scene(backend, true).await;
    let (status, post) = s
        .post(&s.body(
            s.photos(),
            json!({
                "privacy_level": "SELF_ONLY",
                "title": "Low tide",
                "description": "Two photos of the bay at low tide #tidepost",
                "auto_add_music": true,
                "photo_cover_index": 1,
            }),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let id = post["id"].as_str().unwrap().to_string();
    assert_eq!(post["options"]["targets"][0]["tiktok"]["title"], "Low tide");
    let sent = s.sent_to_tiktok(&id).await;
    let info = &sent["post_info"];
    assert_eq!(info["title"], "Low tide", "{sent:#}");
    assert_eq!(
        info["description"],
        "Two photos of the bay at low tide #tidepost"
    );
    assert_eq!(info["auto_add_music"], true);
    assert_eq!(sent["source_info"]["photo_cover_index"], 1);

    // Without a description, the caption is the description; no title, no music.
    let (status, post) = s
        .post(&s.body(s.photos(), json!({"privacy_level": "SELF_ONLY"})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let id = post["id"].as_str().unwrap().to_string();
    let sent = s.sent_to_tiktok(&id).await;
    assert_eq!(sent["post_info"]["description"], "Low tide #tidepost");
    assert!(sent["post_info"].get("title").is_none(), "{sent:#}");
    assert_eq!(sent["post_info"]["auto_add_music"], false);

    // The OpenAPI document types them.
    let doc: Value = s
        .app
        .api_get(&s.key, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let props = &doc["components"]["schemas"]["TikTokOptions"]["properties"];
    assert_eq!(props["title"]["maxLength"], 90, "{props:#}");
    assert_eq!(props["description"]["maxLength"], 4000);
    assert_eq!(props["auto_add_music"]["type"], "boolean");
}

async fn photo_option_refusals_name_the_field(backend: Backend) {
    let s = scene(backend, false).await;
    let video = json!([{"url": format!("{}/clip.mp4", s.media), "kind": "video"}]);
    let cases = [
        // 46 emoji are 92 UTF-16 units.
        (
            s.photos(),
            json!({"privacy_level": "SELF_ONLY", "title": "🌊".repeat(46)}),
            "title",
        ),
        (
            s.photos(),
            json!({"privacy_level": "SELF_ONLY", "description": "a".repeat(4001)}),
            "description",
        ),
        (
            video.clone(),
            json!({"privacy_level": "SELF_ONLY", "title": "Low tide"}),
            "title",
        ),
        (
            video.clone(),
            json!({"privacy_level": "SELF_ONLY", "description": "Low tide"}),
            "description",
        ),
        (
            video,
            json!({"privacy_level": "SELF_ONLY", "auto_add_music": true}),
            "auto_add_music",
        ),
        (
            s.photos(),
            json!({"mode": "inbox", "auto_add_music": true}),
            "auto_add_music",
        ),
    ];
    for (media, tiktok, field) in cases {
        let (status, problem) = s.post(&s.body(media, tiktok.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{tiktok}: {problem:#}"
        );
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == format!("targets[0].tiktok.{field}")
                    && e["account_id"] == s.account.as_str()),
            "{tiktok}: {problem:#}"
        );
    }
    // 45 emoji (90 units) are a title.
    let (status, post) = s
        .post(&s.body(
            s.photos(),
            json!({"privacy_level": "SELF_ONLY", "title": "🌊".repeat(45)}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let list: Value = s
        .app
        .api_get(&s.key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing of the refused posts was stored: {list:#}"
    );
}

/// The post `id` once its target is published or failed, as the API shows it.
async fn settled(s: &Scene, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let post: Value = s
            .app
            .api_get(&s.key, &format!("/api/v1/posts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let state = post["targets"][0]["state"].as_str().unwrap_or_default();
        if matches!(state, "published" | "failed") {
            return post;
        }
        assert!(Instant::now() < deadline, "the post settled: {post:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn uploaded_photos_go_to_tiktok_from_signed_urls(backend: Backend) {
    let s = scene(backend, true).await;
    let upload = |bytes: Vec<u8>| {
        let url = s.app.url("/api/v1/media");
        let key = s.key.clone();
        async move {
            let answer = bare_client()
                .post(url)
                .bearer_auth(key)
                .header("content-type", "image/jpeg")
                .body(bytes)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::CREATED);
            answer.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let first = upload(testing::jpeg(1080, 1350)).await;
    let second = upload(testing::jpeg(1080, 1080)).await;
    let media = json!([
        {"media_id": first},
        {"url": format!("{}/1.jpg", s.media), "kind": "image"},
        {"media_id": second},
    ]);
    let (status, post) = s
        .post(&s.body(
            media,
            json!({"privacy_level": "SELF_ONLY", "title": "Uploaded", "photo_cover_index": 2}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let post = settled(&s, post["id"].as_str().unwrap()).await;
    assert_eq!(post["targets"][0]["state"], "published", "{post:#}");
    let publish_id = post["targets"][0]["publish_id"].as_str().unwrap();
    let emulator = s.app.emulator.clone().unwrap();
    let publishes = emulator_json(&emulator, "/_emulator/tiktok/publishes").await;
    let sent = publishes["publishes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["publish_id"] == publish_id)
        .cloned()
        .unwrap();
    let images: Vec<&str> = sent["source_info"]["photo_images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(images.len(), 3, "{sent:#}");
    assert!(
        images[0].starts_with(&s.app.url(&format!("/media/{first}/"))),
        "a signed URL of the first upload: {images:?}"
    );
    assert_eq!(images[1], format!("{}/1.jpg", s.media));
    assert!(
        images[2].starts_with(&s.app.url(&format!("/media/{second}/"))),
        "{images:?}"
    );
    // The signed URL serves the uploaded bytes.
    let served = bare_client().get(images[0]).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(
        served.bytes().await.unwrap().to_vec(),
        testing::jpeg(1080, 1350)
    );

    // A stored video among photos is refused, naming the media; nothing stored.
    let video: Value = bare_client()
        .post(s.app.url("/api/v1/media"))
        .bearer_auth(&s.key)
        .header("content-type", "video/mp4")
        .body(testing::video(4096, "photos"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, problem) = s
        .post(&s.body(
            json!([{"media_id": first}, {"media_id": video["id"]}]),
            json!({"privacy_level": "SELF_ONLY"}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:#}");
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "media" && e["account_id"] == s.account.as_str()),
        "{problem:#}"
    );
}

/// The composer's "Cover photo" (1 for the first) becomes `photo_cover_index` (from 0); a
/// number past the photos or not a number is refused naming it; a draft keeps it.
async fn the_composer_sets_the_cover_photo(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("cover-photo").await;
    let key = app.api_key(&me.workspace.id, "cover-photo", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let mut photos = Vec::new();
    for (w, h) in [(1080, 1350), (1080, 1080)] {
        let answer: Value = bare_client()
            .post(app.url("/api/v1/media"))
            .bearer_auth(&key)
            .header("content-type", "image/jpeg")
            .body(testing::jpeg(w, h))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        photos.push(answer["id"].as_str().unwrap().to_string());
    }
    let form = |cover: &str, intent: &str| {
        vec![
            ("csrf".to_string(), me.csrf.clone()),
            ("caption".to_string(), "two photos".to_string()),
            ("targets".to_string(), account.clone()),
            ("media".to_string(), photos[0].clone()),
            ("media".to_string(), photos[1].clone()),
            ("when".to_string(), "now".to_string()),
            (format!("mode:{account}"), "direct".to_string()),
            (format!("privacy:{account}"), "SELF_ONLY".to_string()),
            (format!("cover_photo:{account}"), cover.to_string()),
            ("intent".to_string(), intent.to_string()),
        ]
    };
    for bad in ["3", "0", "second"] {
        let refused = me
            .client
            .post(app.url("/compose"))
            .form(&form(bad, "publish"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let html = refused.text().await.unwrap();
        assert!(
            html.contains("The cover index must point at one of the photos"),
            "{bad}: {html}"
        );
    }
    let posts: Value = app
        .api_get(&key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(posts["data"], json!([]), "nothing stored on a refusal");

    // Kept in a draft, shown again as typed.
    let saved = me
        .client
        .post(app.url("/compose"))
        .form(&form("2", "draft"))
        .send()
        .await
        .unwrap();
    let reopen = location(&saved);
    let html = app.page_text(&me.client, &reopen).await;
    let field = html
        .split('<')
        .find(|t| t.contains(&format!(r#"name="cover_photo:{account}""#)))
        .unwrap();
    assert!(field.contains(r#"value="2""#), "{field}");

    // Published: the second photo opens the post.
    let published = me
        .client
        .post(app.url("/compose"))
        .form(&form("2", "publish"))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::SEE_OTHER);
    let post_id = location(&published)
        .trim_start_matches("/posts/")
        .to_string();
    let post: Value = app
        .api_get(&key, &format!("/api/v1/posts/{post_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        post["options"]["targets"][0]["tiktok"]["photo_cover_index"], 1,
        "{post:#}"
    );
}
