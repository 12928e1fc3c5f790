//! The HTTP parts of Instagram, on both backends: the webhook handshake (right and wrong verify
//! token), deliveries (signature right, wrong and missing; a duplicate applied once), the API
//! connect → Facebook dialog → callback chooser page → choose round trip without a session, and
//! the signed media URLs Meta fetches uploads from; `POST /api/v1/posts` with an `instagram`
//! object publishing an image (multipart upload) and a carousel (JSON, uploads and a URL)
//! through the emulator, with the permalink shown and refusals naming the field.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use tidepost_app::config::RawSettings;
use tidepost_app::instagram::{self, media_url};
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_http::{HttpState, SetupToken, router};
use tidepost_jobs::{Queue, Registry, drain_due};
use tidepost_store::testing::{Backend, TestDb};
use tidepost_vault::Keyring;

struct Env {
    base: String,
    app: App,
    ws: String,
    key: String,
    http: reqwest::Client,
    _emu: Emulator,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn env(backend: Backend) -> Env {
    let test_db = TestDb::new(backend).await;
    let emu = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            auto_approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let flags = vec![
        ("database_url", test_db.url.clone()),
        ("data_dir", dir.path().display().to_string()),
        ("sandbox", "true".to_string()),
        ("public_url", base.clone()),
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
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let state = HttpState {
        app: app.clone(),
        setup: SetupToken::new(None),
        metrics,
    };
    let service = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Env {
        base,
        app,
        ws,
        key,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _emu: emu,
        _db: test_db,
        _dir: dir,
    }
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn drain(app: &App) {
    let registry = instagram::register(Registry::new(), app);
    let queue = Queue::new(app.db.clone());
    for _ in 0..5 {
        drain_due(&queue, &registry, None, 100).await.unwrap();
    }
}

/// Connects the emulator's business account through the API, the dialog, the chooser page and
/// its form, with no session (as a host application's user would).
async fn connect(e: &Env) -> Value {
    let answer = e
        .http
        .post(format!("{}/api/v1/connect/instagram", e.base))
        .bearer_auth(&e.key)
        .json(&json!({"login": "facebook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let body: Value = answer.json().await.unwrap();
    let authorize = body["authorize_url"].as_str().unwrap();
    assert!(
        authorize.contains("instagram_content_publish"),
        "{authorize}"
    );
    let dialog = e.http.get(authorize).send().await.unwrap();
    assert_eq!(dialog.status(), 302);
    let callback = dialog.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.starts_with(&format!("{}/oauth/instagram/callback", e.base)),
        "{callback}"
    );
    let page = e.http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        "Tidepost Coffee",
        "@tidepost.coffee",
        "Tia Creates",
        "No Instagram account",
        "Linked accounts",
    ] {
        assert!(
            html.contains(needle),
            "{needle} missing from the chooser:\n{html}"
        );
    }
    let choice = html
        .split("name=\"choice\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // Sent with nothing ticked: the same chooser again, with the reason and every pair, and
    // the choice still good (no second Facebook login).
    let empty = e
        .http
        .post(format!("{}/connect/instagram/choose", e.base))
        .form(&[("choice", choice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 422);
    let again = empty.text().await.unwrap();
    for needle in [
        "Tick at least one Page",
        "Tidepost Coffee",
        "@tidepost.coffee",
        &format!("name=\"choice\" value=\"{choice}\""),
    ] {
        assert!(
            again.contains(needle),
            "{needle} missing from the chooser shown again:\n{again}"
        );
    }
    let done = e
        .http
        .post(format!("{}/connect/instagram/choose", e.base))
        .form(&[("choice", choice.as_str()), ("page", "134895793791914")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("connected"));
    let list: Value = e
        .http
        .get(format!("{}/api/v1/accounts", e.base))
        .bearer_auth(&e.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["provider_user_id"], json!("17841405822304914"));
    data[0].clone()
}

async fn connect_round_trip(backend: Backend) {
    let e = env(backend).await;
    let account = connect(&e).await;
    assert_eq!(account["platform"], json!("instagram"));
    // A bad login value is refused.
    let answer = e
        .http
        .post(format!("{}/api/v1/connect/instagram", e.base))
        .bearer_auth(&e.key)
        .json(&json!({"login": "myspace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
}

async fn webhooks(backend: Backend) {
    let e = env(backend).await;
    let url = format!("{}/webhooks/instagram", e.base);
    // Handshake: right token echoes the challenge as text; a wrong one is refused.
    let ok = e
        .http
        .get(format!("{url}?hub.mode=subscribe&hub.verify_token=emulator-verify-token&hub.challenge=1158201444"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = e
        .http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);

    let account = connect(&e).await;
    let body = json!({"object": "instagram", "entry": [{"id": "17841405822304914", "time": 1714560000,
        "changes": [{"field": "comments", "value": {"id": "17990000000000001", "text": "love it",
            "from": {"id": "555", "username": "bob"}, "media": {"id": "17900000000000009", "media_product_type": "FEED"}}}]}]})
    .to_string();
    let post = |signature: Option<String>| {
        let mut request = e
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(s) = signature {
            request = request.header("x-hub-signature-256", s);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(
        post(Some(sign(b"not-the-secret", body.as_bytes())))
            .await
            .unwrap()
            .status(),
        401
    );
    let good = sign(b"emulator-facebook-app-secret", body.as_bytes());
    let first: Value = post(Some(good.clone()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["duplicate"], json!(false));
    let second: Value = post(Some(good)).await.unwrap().json().await.unwrap();
    assert_eq!(second["duplicate"], json!(true));
    drain(&e.app).await;
    let events = tidepost_store::events::recent(&e.app.db, &e.ws, None, 50)
        .await
        .unwrap();
    let interactions: Vec<_> = events
        .iter()
        .filter(|ev| ev.r#type == "interaction.created")
        .collect();
    assert_eq!(interactions.len(), 1, "applied once");
    assert!(interactions[0].payload.contains("love it"));
    assert_eq!(
        interactions[0].subject_id.as_deref(),
        account["id"].as_str()
    );
}

async fn signed_media(backend: Backend) {
    let e = env(backend).await;
    let bytes = tidepost_app::media::testing::jpeg(1080, 1080);
    let media = tidepost_app::pipeline::media::store(
        &e.app,
        &e.ws,
        &bytes[..],
        "image/jpeg",
        Some("a.jpg"),
    )
    .await
    .unwrap();
    let url = media_url::signed_url(&e.app, &media);
    let answer = e.http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "image/jpeg");
    assert_eq!(answer.bytes().await.unwrap().to_vec(), bytes);
    // Tampered or moved to another id: not found. Expired: gone.
    let tampered = url.replace("/media/", "/media/x");
    assert_eq!(e.http.get(&tampered).send().await.unwrap().status(), 404);
    let mut broken = url.clone();
    let at = broken.find('?').unwrap() - 3;
    broken.replace_range(
        at..at + 1,
        if &broken[at..at + 1] == "A" { "B" } else { "A" },
    );
    assert_eq!(e.http.get(&broken).send().await.unwrap().status(), 404);
    let old = media_url::signed_url_until(&e.app, &media, tidepost_domain::now_ms() / 1000 - 10);
    assert_eq!(e.http.get(&old).send().await.unwrap().status(), 410);
}

/// A JPEG-looking file of `width` x `height` (an SOF0 header and filler).
fn jpeg(width: u16, height: u16, filler: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&[0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    bytes.extend(std::iter::repeat_n(filler, 3000));
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// Runs the jobs until the post is final; returns it as `GET /api/v1/posts/{id}` shows it.
async fn published(e: &Env, post_id: &str) -> Value {
    for _ in 0..60 {
        drain(&e.app).await;
        let post: Value = e
            .http
            .get(format!("{}/api/v1/posts/{post_id}", e.base))
            .bearer_auth(&e.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["published", "failed", "cancelled", "partly_failed"]
            .contains(&post["summary"].as_str().unwrap_or_default())
        {
            return post;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("post {post_id} never finished");
}

async fn api_publish(backend: Backend) {
    let e = env(backend).await;
    let account = connect(&e).await;
    let account_id = account["id"].as_str().unwrap();
    let posts = format!("{}/api/v1/posts", e.base);

    // An image: the file is uploaded with the request, Meta fetches it from a signed URL.
    let form = reqwest::multipart::Form::new()
        .text("account_id", account_id.to_string())
        .text("caption", "one image #tidepost")
        .text("instagram", json!({"media_type": "image"}).to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(jpeg(1080, 1080, 1))
                .file_name("a.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let answer = e
        .http
        .post(&posts)
        .bearer_auth(&e.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let created: Value = answer.json().await.unwrap();
    assert_eq!(status, 202, "{created}");
    // The post is a photo post; Instagram's name for it is the target's mode.
    assert_eq!(created["kind"], json!("photo"));
    assert_eq!(created["targets"][0]["mode"], json!("image"));
    assert_eq!(created["targets"][0]["platform"], json!("instagram"));
    let post = published(&e, created["id"].as_str().unwrap()).await;
    assert_eq!(post["summary"], json!("published"), "{post}");
    let target = &post["targets"][0];
    let media_id = target["instagram"]["media_id"].as_str().unwrap();
    assert_eq!(target["post_ids"], json!([media_id]));
    let permalink = target["post_url"].as_str().unwrap();
    assert!(
        permalink.starts_with("https://www.instagram.com/p/"),
        "{post}"
    );
    assert_eq!(target["instagram"]["permalink"], json!(permalink));

    // A carousel: two uploads by media id and one image by URL (a signed URL of a third).
    let mut ids = Vec::new();
    for (w, h, fill) in [(1080, 1080, 2), (1080, 1350, 3), (1080, 1080, 4)] {
        let media = tidepost_app::pipeline::media::store(
            &e.app,
            &e.ws,
            &jpeg(w, h, fill)[..],
            "image/jpeg",
            Some("c.jpg"),
        )
        .await
        .unwrap();
        ids.push(media);
    }
    let url = media_url::signed_url(&e.app, &ids[2]);
    let answer = e
        .http
        .post(&posts)
        .bearer_auth(&e.key)
        .json(&json!({"account_id": account_id, "caption": "three in one", "idempotency_key": "carousel-1",
            "instagram": {"media_type": "carousel", "children": [
                {"media_id": ids[0].id}, {"media_id": ids[1].id}, {"url": url, "kind": "image"}]}}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let created: Value = answer.json().await.unwrap();
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["kind"], json!("photo"));
    assert_eq!(created["targets"][0]["mode"], json!("carousel"));
    let post = published(&e, created["id"].as_str().unwrap()).await;
    assert_eq!(post["summary"], json!("published"), "{post}");
    assert!(
        post["targets"][0]["post_url"]
            .as_str()
            .unwrap()
            .starts_with("https://www.instagram.com/p/")
    );
    assert_eq!(post["options"]["media"].as_array().unwrap().len(), 3);

    // The dashboard's Instagram widget: token days left, the publishing limit as Meta last
    // reported it to the publish job (no call to Meta on page load), and the latest posts.
    tidepost_app::access::create_user(
        &e.app.db,
        "ada@example.com",
        "correct horse battery",
        "acme",
    )
    .await
    .unwrap();
    let session = tidepost_app::access::sign_in(
        &e.app.db,
        &e.app.keyring,
        tidepost_app::access::SignIn {
            email: "ada@example.com",
            password: "correct horse battery",
            client: "1.2.3.4",
            devices: &[],
            session_hours: 1,
        },
    )
    .await
    .unwrap();
    let dashboard = e
        .http
        .get(format!("{}/", e.base))
        .header("cookie", format!("tidepost_session={}", session.token))
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("class=\"limit-used\">1 of 100<"), "{html}");
    assert!(
        html.contains("days left") && html.contains("three in one"),
        "{html}"
    );

    // Refusals name the field and the rule.
    let refuse = |body: Value| {
        let request = e.http.post(&posts).bearer_auth(&e.key).json(&body);
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 422);
            answer.json::<Value>().await.unwrap()
        }
    };
    let one = refuse(
        json!({"account_id": account_id, "instagram": {"media_type": "carousel",
        "items": [{"media_id": ids[0].id}]}}),
    )
    .await;
    assert_eq!(one["field"], json!("instagram.items"), "{one}");
    assert!(one["detail"].as_str().unwrap().contains("2 to 10"), "{one}");
    let kind = refuse(
        json!({"account_id": account_id, "instagram": {"media_type": "gif",
        "media_id": ids[0].id}}),
    )
    .await;
    assert_eq!(kind["field"], json!("instagram.media_type"), "{kind}");
    let missing = refuse(json!({"account_id": account_id, "media_id": ids[0].id})).await;
    assert_eq!(missing["field"], json!("instagram"), "{missing}");
    let tiktok = refuse(
        json!({"account_id": account_id, "privacy_level": "SELF_ONLY",
        "instagram": {"media_type": "image", "media_id": ids[0].id}}),
    )
    .await;
    assert_eq!(tiktok["field"], json!("privacy_level"), "{tiktok}");
    let png = tidepost_app::pipeline::media::store(
        &e.app,
        &e.ws,
        &tidepost_app::media::testing::png(1080, 1080)[..],
        "image/png",
        Some("p.png"),
    )
    .await
    .unwrap();
    let format = refuse(
        json!({"account_id": account_id, "instagram": {"media_type": "image",
        "media_id": png.id}}),
    )
    .await;
    assert!(
        format["detail"].as_str().unwrap().contains("JPEG"),
        "{format}"
    );
}

macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(Backend::Postgres).await;
            }
        }
    };
}

on_both!(
    instagram_connect_through_the_api_and_chooser,
    connect_round_trip
);
on_both!(instagram_webhook_handshake_signature_dedupe, webhooks);
on_both!(instagram_signed_media_urls, signed_media);
on_both!(instagram_publish_through_the_api, api_publish);
