//! The HTTP parts of publishing: `POST /webhooks/tiktok` (bad signature 401, old timestamp
//! 400, duplicate 200 applied once) and `/api/v1/posts` (a streamed multipart upload published
//! through the emulator, provider ids as strings, problem+json refusals), on both backends.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidepost_app::config::RawSettings;
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config, tiktok as publish, tokens};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_http::{HttpState, SetupToken, router};
use tidepost_jobs::{Queue, Registry, drain_due};
use tidepost_store::accounts::{self, Account};
use tidepost_store::testing::{Backend, TestDb};
use tidepost_vault::Keyring;

struct Env {
    base: String,
    app: App,
    emu: Emulator,
    key: String,
    account_id: String,
    http: reqwest::Client,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn env(backend: Backend) -> Env {
    let test_db = TestDb::new(backend).await;
    let mut emu_config = EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    };
    emu_config.tiktok.processing_delay_ms = 0;
    emu_config.tiktok.moderation_delay_ms = 0;
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), emu_config)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flags = vec![
        ("database_url", test_db.url.clone()),
        ("data_dir", dir.path().display().to_string()),
        ("sandbox", "true".to_string()),
        ("listen", "127.0.0.1:0".to_string()),
    ];
    let config = Config::from_raw(&RawSettings::gather(&flags, |_| None, None).unwrap()).unwrap();
    let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
    let providers = Providers::from_config(&config, Some(&emu.base_url()));
    let app = App::new(config, test_db.db.clone(), keyring, providers);
    let ws = tidepost_store::workspaces::create(&app.db, "acme", "Acme")
        .await
        .unwrap()
        .id;
    let key = tidepost_app::access::create_api_key(&app.db, &ws, "test", &["api"])
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let minted: Value = http
        .post(format!("{}/_emulator/tiktok/token", emu.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = tidepost_domain::new_id();
    let now = tidepost_domain::now_ms();
    let access = SecretString::from(minted["access_token"].as_str().unwrap().to_string());
    let refresh = SecretString::from(minted["refresh_token"].as_str().unwrap().to_string());
    accounts::upsert(
        &app.db,
        &Account {
            id: id.clone(),
            workspace_id: ws.clone(),
            platform: tidepost_domain::Platform::Tiktok,
            provider_user_id: minted["open_id"].as_str().unwrap().into(),
            display_name: "Tidepost Sandbox".into(),
            username: None,
            avatar_url: None,
            status: "active".into(),
            status_reason: None,
            scopes: "video.publish,video.upload".into(),
            access_token: tokens::seal(&app, &id, tokens::ACCESS_TOKEN, &access),
            refresh_token: Some(tokens::seal(&app, &id, tokens::REFRESH_TOKEN, &refresh)),
            access_expires_at: Some(now + 86_400_000),
            refresh_expires_at: None,
            last_refreshed_at: None,
            refresh_lease_until: None,
            refresh_lease_by: None,
            details: "{}".into(),
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .unwrap();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let state = HttpState {
        app: app.clone(),
        setup: SetupToken::new(None),
        metrics,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Env {
        base,
        app,
        emu,
        key,
        account_id: id,
        http,
        _db: test_db,
        _dir: dir,
    }
}

fn sign(t: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(b"sandbox-tiktok-client-secret").unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},s={}", hex::encode(mac.finalize().into_bytes()))
}

async fn drain(app: &App) {
    let registry = publish::register(Registry::new(), app);
    let queue = Queue::new(app.db.clone());
    for _ in 0..10 {
        drain_due(&queue, &registry, None, 100).await.unwrap();
    }
}

async fn webhooks(backend: Backend) {
    let e = env(backend).await;
    let url = format!("{}/webhooks/tiktok", e.base);
    let body = serde_json::to_vec(&json!({
        "client_key": "sandbox-tiktok-client-key", "event": "authorization.removed",
        "create_time": 1, "user_openid": "act.nobody", "content": "{\"reason\":1}",
    }))
    .unwrap();
    let now = tidepost_domain::now_ms() / 1000;
    let post = |sig: Option<String>| {
        let mut r = e.http.post(&url).body(body.clone());
        if let Some(sig) = sig {
            r = r.header("TikTok-Signature", sig);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some(sign(now, b"other"))).await.unwrap().status(), 401);
    assert_eq!(
        post(Some(sign(now - 3600, &body))).await.unwrap().status(),
        400
    );
    let first = post(Some(sign(now, &body))).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["duplicate"], false);
    let again = post(Some(sign(now, &body))).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);
    let stored = tidepost_store::inbound_events::recent(&e.app.db, "tiktok", 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    drain(&e.app).await;
    let stored = tidepost_store::inbound_events::recent(&e.app.db, "tiktok", 10)
        .await
        .unwrap();
    assert!(stored[0].applied_at.is_some());
}

async fn api_upload(backend: Backend) {
    let e = env(backend).await;
    let bytes = tidepost_app::media::testing::video(3_000_000, "api upload");
    let part = reqwest::multipart::Part::bytes(bytes.clone())
        .file_name("clip.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("account_id", e.account_id.clone())
        .text("mode", "direct")
        .text("caption", "from the API")
        .text("privacy_level", "SELF_ONLY")
        .part("file", part);
    let response = e
        .http
        .post(format!("{}/api/v1/posts", e.base))
        .bearer_auth(&e.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let post: Value = response.json().await.unwrap();
    let id = post["id"].as_str().unwrap().to_string();
    assert_eq!(post["targets"][0]["state"], "queued");
    drain(&e.app).await;
    let get = |path: String| {
        let request = e.http.get(format!("{}{path}", e.base)).bearer_auth(&e.key);
        async move { request.send().await.unwrap() }
    };
    let post: Value = get(format!("/api/v1/posts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let target = &post["targets"][0];
    assert_eq!(target["state"], "published", "{post}");
    assert_eq!(target["bytes_sent"], 3_000_000);
    assert!(target["publish_id"].is_string());
    let publishes: Value = e
        .http
        .get(format!("{}/_emulator/tiktok/publishes", e.emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        publishes["publishes"][0]["sha256"],
        hex::encode(Sha256::digest(&bytes))
    );
    let list: Value = get("/api/v1/posts?limit=10".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Refusals in problem+json naming the option.
    let bad = e
        .http
        .post(format!("{}/api/v1/posts", e.base))
        .bearer_auth(&e.key)
        .json(&json!({"account_id": e.account_id, "media_url": "https://media.tidepost.example/a.mp4", "privacy_level": "NOPE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["field"], "privacy_level", "{problem}");
    // An unknown post id is not found.
    let other = get(format!("/api/v1/posts/{}", tidepost_domain::new_id())).await;
    assert_eq!(other.status(), 404);

    // Multipart text is text: a caption that reads like a number or a checkbox's word stays
    // the caption, while the TikTok options' words are read as theirs ("on" turns comments off).
    for caption in ["2024", "true", "on"] {
        let form = reqwest::multipart::Form::new()
            .text("account_id", e.account_id.clone())
            .text("caption", caption)
            .text("privacy_level", "SELF_ONLY")
            .text("disable_comment", "on")
            .text("media_url", "https://media.tidepost.example/a.mp4");
        let answer = e
            .http
            .post(format!("{}/api/v1/posts", e.base))
            .bearer_auth(&e.key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let post: Value = answer.json().await.unwrap();
        assert_eq!(status, 202, "caption {caption:?}: {post}");
        assert_eq!(post["caption"], caption, "{post}");
        assert_eq!(
            post["options"]["targets"][0]["tiktok"]["disable_comment"], true,
            "{post}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_sqlite() {
    webhooks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_postgres() {
    webhooks(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_upload_sqlite() {
    api_upload(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_upload_postgres() {
    api_upload(Backend::Postgres).await;
}
