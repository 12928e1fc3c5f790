//! SSRF on every URL tidepost requests, or hands to a provider to download on its behalf:
//!
//! - outbound webhook endpoints (tidepost POSTs to them): created and changed through the API,
//!   created through the settings page, and checked again at every delivery;
//! - media URLs (TikTok's PULL_FROM_URL `media_url` and `photo_urls`, Instagram's item and
//!   cover URLs, the shared `media` of a post to several accounts, the composer's live check
//!   and its form): tidepost does not download them, TikTok and Meta do — or, in sandbox mode,
//!   the built-in emulator on this very machine.
//!
//! Each is tried with loopback, private, link-local, metadata and unspecified addresses written
//! every way a URL parser accepts them (dotted, trailing dot, decimal, hex, IPv6, IPv4-mapped
//! IPv6) and with names that mean loopback (`localhost`, a name under `.localhost`, and a name
//! a test resolver makes resolve to 127.0.0.1), and must be refused with a clear reason: a
//! problem+json naming the field in the API, readable text in the UI, a `refused: …` attempt in
//! the delivery log. A receiver listens on the loopback port the URLs name, so a request that
//! slipped through would be seen. Redirects are never followed, so a URL that answers `302` to a
//! private address gets nowhere. Sandbox mode allows private targets on purpose (its emulator
//! downloads media served on this machine): the last test proves that still works.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_app::net_guard::{self, GuardError, Lookup, NetPolicy};

use crate::support::*;

/// A loopback HTTP server that records every request and answers with `answer`.
struct Listener {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    async fn start(answer: fn(&str) -> axum::response::Response) -> Listener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(uri.to_string());
                answer(&uri.to_string())
            }
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Listener { port, hits }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn ok(_: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::OK, "thanks").into_response()
}

/// Every non-public target, each with a word its refusal must say. The loopback ones name
/// `port`, where a [`Listener`] would record a request that got through.
fn private_urls(port: u16) -> Vec<(String, &'static str)> {
    vec![
        (format!("http://127.0.0.1:{port}/hook"), "loopback"),
        (format!("http://127.0.0.1.:{port}/hook"), "loopback"),
        (format!("http://2130706433:{port}/hook"), "loopback"),
        (format!("http://0x7f.1:{port}/hook"), "loopback"),
        (format!("http://[::1]:{port}/hook"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hook"), "loopback"),
        (format!("http://0.0.0.0:{port}/hook"), "unspecified"),
        (format!("http://localhost:{port}/hook"), "loopback"),
        (format!("http://hooks.localhost:{port}/hook"), "loopback"),
        ("http://10.0.0.7/hook".to_string(), "private"),
        ("http://192.168.1.10/hook".to_string(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://[fd00::1]/hook".to_string(), "unique-local"),
    ]
}

/// A server whose private targets are refused (as outside sandbox mode), with the emulator and
/// workers.
async fn strict_app() -> TestApp {
    spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            workers: true,
            env: vec![("TIDEPOST_WEBHOOKS_ALLOW_PRIVATE", "false".into())],
            ..Options::default()
        },
    )
    .await
}

async fn send_json(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    bare_client()
        .request(method, app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Asserts a 422 problem on `field` whose detail says the URL was refused, and why.
async fn refused(response: reqwest::Response, field: &str, why: &str, what: &str) {
    let body = problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], field, "{what}: {body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("refused") && detail.contains(why),
        "{what}: {detail}"
    );
}

/// An endpoint created through the API at a public address (taken as is: nothing is resolved),
/// whose URL is then changed in the store to `url`, as if its name had come to resolve there
/// since it was saved.
async fn endpoint_moved_to(app: &TestApp, key: &str, workspace_id: &str, url: &str) -> String {
    let created = send_json(
        app,
        key,
        reqwest::Method::POST,
        "/api/v1/webhook-endpoints",
        json!({"url": "http://93.184.216.34/tidepost"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let moved = tidepost_store::webhook_endpoints::update(
        &app.db,
        workspace_id,
        &id,
        url,
        "",
        "",
        tidepost_domain::now_ms(),
    )
    .await
    .unwrap();
    assert!(moved);
    id
}

/// The endpoint's first delivery once its first attempt has an outcome.
async fn first_delivery(app: &TestApp, key: &str, endpoint_id: &str) -> Value {
    let path = format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries");
    let mut last = Value::Null;
    for _ in 0..300 {
        last = app.api_get(key, &path).await.json().await.unwrap();
        let delivery = &last["data"][0];
        if delivery["attempt_count"].as_i64().unwrap_or(0) >= 1
            && (delivery["last_error"].is_string() || delivery["last_status"].is_number())
        {
            return delivery.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no attempt for endpoint {endpoint_id}: {last:#}");
}

/// Outbound webhooks: every private target refused when an endpoint is created or changed
/// (API and settings page) and when a delivery is made to one already stored.
#[tokio::test]
async fn webhook_endpoints_refuse_private_targets_everywhere() {
    let app = strict_app().await;
    let me = app.signed_in("ssrf-hooks").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "ssrf", &[]).await;
    let receiver = Listener::start(ok).await;
    let targets = private_urls(receiver.port);

    // Changing an endpoint's URL goes through the same guard.
    let created = send_json(
        &app,
        &key,
        reqwest::Method::POST,
        "/api/v1/webhook-endpoints",
        json!({"url": "http://93.184.216.34/kept"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let existing = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (url, why) in &targets {
        let created = send_json(
            &app,
            &key,
            reqwest::Method::POST,
            "/api/v1/webhook-endpoints",
            json!({"url": url}),
        )
        .await;
        refused(created, "url", why, &format!("create {url}")).await;
        let changed = send_json(
            &app,
            &key,
            reqwest::Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{existing}"),
            json!({"url": url}),
        )
        .await;
        refused(changed, "url", why, &format!("change to {url}")).await;

        let page = me
            .client
            .post(app.url("/settings/webhooks"))
            .form(&[
                ("csrf", me.csrf.as_str()),
                ("url", url.as_str()),
                ("description", "ssrf"),
                ("event_types", "post.published"),
            ])
            .send()
            .await
            .unwrap();
        let html = page_error(
            page,
            StatusCode::UNPROCESSABLE_ENTITY,
            "That URL cannot be used",
        )
        .await;
        assert!(html.contains(why), "{url}: {html}");
    }
    let shown: Value = app
        .api_get(&key, &format!("/api/v1/webhook-endpoints/{existing}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["url"], "http://93.184.216.34/kept", "{shown}");
    let removed = bare_client()
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{existing}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());

    // At delivery time: endpoints whose URL turned private since they were saved all get a
    // refused attempt, and nothing reaches the receiver.
    let mut stored = Vec::new();
    for (url, why) in &targets {
        stored.push((endpoint_moved_to(&app, &key, &ws, url).await, url, why));
    }
    tidepost_store::events::record(
        &app.db,
        &ws,
        "post.published",
        None,
        &json!({"post_id": "p"}),
    )
    .await
    .unwrap();
    for (id, url, why) in stored {
        let delivery = first_delivery(&app, &key, &id).await;
        let error = delivery["last_error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("refused:") && error.contains(why),
            "{url}: {delivery:#}"
        );
        assert!(delivery["last_status"].is_null(), "{url}: {delivery:#}");
    }
    assert_eq!(receiver.hits(), Vec::<String>::new());
}

/// Media URLs TikTok or Meta would download: every private target refused at submission,
/// on every path a post comes in by.
#[tokio::test]
async fn media_urls_refuse_private_targets_everywhere() {
    let app = strict_app().await;
    let me = app.signed_in("ssrf-media").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "ssrf", &[]).await;
    let tiktok = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let instagram = fixture_account(&app.db, &ws, "instagram", "17841400000000001", "IG").await;
    let media_server = Listener::start(ok).await;
    let post = |body: Value| send_json(&app, &key, reqwest::Method::POST, "/api/v1/posts", body);

    for (url, why) in private_urls(media_server.port) {
        let photo = url.replace("/hook", "/photo.jpg");
        // TikTok PULL_FROM_URL: a video, and photos.
        let answer = post(json!({
            "account_id": tiktok, "caption": "ssrf", "media_url": url,
            "privacy_level": "SELF_ONLY",
        }))
        .await;
        refused(answer, "media_url", why, &format!("media_url {url}")).await;
        let answer = post(json!({
            "account_id": tiktok, "caption": "ssrf", "privacy_level": "SELF_ONLY",
            "photo_urls": ["https://cdn.example/ok.jpg", photo],
        }))
        .await;
        refused(answer, "photo_urls", why, &format!("photo_urls {photo}")).await;
        // Instagram: an image item, and a reel's cover.
        let answer = post(json!({
            "account_id": instagram,
            "instagram": {"media_type": "image", "items": [{"url": photo, "kind": "image"}]},
        }))
        .await;
        refused(
            answer,
            "instagram.items",
            why,
            &format!("instagram item {photo}"),
        )
        .await;
        let answer = post(json!({
            "account_id": instagram,
            "instagram": {
                "media_type": "reel",
                "items": [{"url": "https://cdn.example/reel.mp4"}],
                "cover_url": photo,
            },
        }))
        .await;
        refused(
            answer,
            "instagram.cover_url",
            why,
            &format!("cover_url {photo}"),
        )
        .await;

        // One post to both accounts, and the composer's live check of it: each target says so.
        let composite = json!({
            "caption": "ssrf",
            "media": [{"url": url, "kind": "video"}],
            "targets": [
                {"account_id": tiktok, "tiktok": {"privacy_level": "SELF_ONLY"}},
                {"account_id": instagram, "instagram": {"media_type": "reel"}},
            ],
        });
        let answer = post(composite.clone()).await;
        let body = problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
        let errors = body["errors"].as_array().expect("errors per target");
        for account in [&tiktok, &instagram] {
            assert!(
                errors.iter().any(|e| e["account_id"] == account.as_str()
                    && e["message"].as_str().unwrap().contains("refused")
                    && e["message"].as_str().unwrap().contains(why)),
                "{url}: {body:#}"
            );
        }
        let checked: Value = send_json(
            &app,
            &key,
            reqwest::Method::POST,
            "/api/v1/posts/validate",
            composite,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(checked["valid"], false, "{checked}");
        assert_eq!(
            checked["errors"].as_array().map(Vec::len),
            Some(2),
            "{url}: {checked:#}"
        );

        // The composer's form says why next to the account.
        let page = me
            .client
            .post(app.url("/compose"))
            .form(&[
                ("csrf", me.csrf.as_str()),
                ("caption", "ssrf"),
                ("targets", tiktok.as_str()),
                ("media_url", url.as_str()),
                ("media_url_kind", "video"),
                ("when", "now"),
                (&format!("privacy:{tiktok}"), "SELF_ONLY"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("This media URL cannot be used") && html.contains(why),
            "{url}: {html}"
        );
    }
    let posts: Value = app
        .api_get(&key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(posts["data"], json!([]), "nothing was stored: {posts}");

    // A name this machine cannot resolve is the provider's to resolve: accepted.
    let answer = post(json!({
        "account_id": tiktok, "caption": "resolved by TikTok",
        "media_url": "https://cdn.example/v.mp4", "privacy_level": "SELF_ONLY",
    }))
    .await;
    let status = answer.status();
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        answer.text().await.unwrap()
    );
    assert_eq!(media_server.hits(), Vec::<String>::new());
}

/// A public-looking receiver that answers `302` to a private address: tidepost records the
/// redirect and never follows it, whatever the policy (here private targets are allowed, so
/// the first hop is made at all).
#[tokio::test]
async fn webhook_redirects_to_private_addresses_are_not_followed() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("ssrf-redirect").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "ssrf", &[]).await;
    let internal = Listener::start(ok).await;
    // The redirect target is read from the request path: /to/<port> goes to that loopback port.
    let redirector = Listener::start(|uri| {
        use axum::response::IntoResponse;
        let target = match uri.strip_prefix("/to/") {
            Some(port) => format!("http://127.0.0.1:{port}/internal"),
            None => "http://169.254.169.254/latest/meta-data/".to_string(),
        };
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, target)],
        )
            .into_response()
    })
    .await;
    let mut endpoints = Vec::new();
    for path in [format!("to/{}", internal.port), "metadata".to_string()] {
        let created = send_json(
            &app,
            &key,
            reqwest::Method::POST,
            "/api/v1/webhook-endpoints",
            json!({"url": format!("http://127.0.0.1:{}/{path}", redirector.port)}),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        endpoints.push(created["id"].as_str().unwrap().to_string());
    }
    tidepost_store::events::record(
        &app.db,
        &ws,
        "post.published",
        None,
        &json!({"post_id": "p"}),
    )
    .await
    .unwrap();
    for id in &endpoints {
        let delivery = first_delivery(&app, &key, id).await;
        assert_eq!(delivery["last_status"], 302, "{delivery:#}");
        let error = delivery["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("redirects are not followed"), "{delivery:#}");
    }
    assert_eq!(redirector.hits().len(), 2, "{:?}", redirector.hits());
    assert_eq!(internal.hits(), Vec::<String>::new());
}

/// A test resolver: the names it knows resolve to its addresses, others fail.
struct Hosts(Vec<(&'static str, IpAddr)>);

impl Lookup for Hosts {
    fn lookup(
        &self,
        host: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found: Vec<IpAddr> = self
            .0
            .iter()
            .filter(|(name, _)| *name == host)
            .map(|(_, ip)| *ip)
            .collect();
        Box::pin(async move {
            if found.is_empty() {
                Err(std::io::Error::other("unknown name"))
            } else {
                Ok(found)
            }
        })
    }
}

/// Names a resolver answers with a private address are refused by every check of the guard: a
/// URL being saved, a media URL, and the connection itself (a name that was public when it was
/// saved and resolves to loopback now: DNS rebinding), which never reaches the listener.
#[tokio::test]
async fn names_that_resolve_to_private_addresses_are_refused() {
    install_crypto();
    let listener = Listener::start(ok).await;
    let hosts = Arc::new(Hosts(vec![
        ("rebound.tidepost.test", "127.0.0.1".parse().unwrap()),
        ("metadata.tidepost.test", "169.254.169.254".parse().unwrap()),
        ("mixed.tidepost.test", "93.184.216.34".parse().unwrap()),
        ("mixed.tidepost.test", "10.0.0.1".parse().unwrap()),
    ]));
    let strict = NetPolicy::default();
    for (name, why) in [
        ("rebound.tidepost.test", "loopback"),
        ("metadata.tidepost.test", "link-local"),
        ("mixed.tidepost.test", "private"),
    ] {
        let url = format!("http://{name}:{}/hook", listener.port);
        let err = net_guard::check_url_with(&url, strict, &*hosts)
            .await
            .unwrap_err();
        assert!(
            matches!(err, GuardError::Refused { .. }) && err.to_string().contains(why),
            "{url}: {err}"
        );
        let err = net_guard::check_media_url_with(&url, strict, &*hosts)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(why), "{url}: {err}");
        let sent = net_guard::client_with(strict, hosts.clone())
            .post(&url)
            .body("{}")
            .send()
            .await
            .unwrap_err();
        let refusal = net_guard::refusal(&sent).expect("refused by the guard");
        assert!(refusal.to_string().contains(why), "{url}: {refusal}");
    }
    assert_eq!(listener.hits(), Vec::<String>::new());
    // The same names with private targets allowed (sandbox mode): the connection is made.
    let open = NetPolicy {
        allow_private: true,
    };
    let answer = net_guard::client_with(open, hosts)
        .post(format!(
            "http://rebound.tidepost.test:{}/hook",
            listener.port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(listener.hits().len(), 1);
}

/// Sandbox mode lets the emulator download media served on this machine, on purpose: a
/// PULL_FROM_URL post of a video on loopback is accepted and published.
#[tokio::test]
async fn sandbox_mode_lets_the_emulator_fetch_local_media() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("ssrf-sandbox").await;
    let key = app.api_key(&me.workspace.id, "ssrf", &[]).await;
    let tiktok = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let media = Listener::start(|_| {
        use axum::response::IntoResponse;
        let video = tidepost_app::media::testing::video(512 * 1024, "clip");
        (
            axum::http::StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "video/mp4")],
            video,
        )
            .into_response()
    })
    .await;
    let base = format!("http://127.0.0.1:{}", media.port);
    let emulator = app.emulator.clone().unwrap();
    let settings = bare_client()
        .put(format!("{emulator}/_emulator/tiktok/settings"))
        .json(&json!({"verified_url_prefixes": [format!("{base}/media/")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), StatusCode::OK);
    let answer = send_json(
        &app,
        &key,
        reqwest::Method::POST,
        "/api/v1/posts",
        json!({
            "account_id": tiktok, "caption": "local media",
            "media_url": format!("{base}/media/clip.mp4"), "privacy_level": "SELF_ONLY",
        }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let id = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut post = Value::Null;
    for _ in 0..1800 {
        post = app
            .api_get(&key, &format!("/api/v1/posts/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if matches!(
            post["targets"][0]["state"].as_str(),
            Some("published" | "failed")
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post["targets"][0]["state"], "published", "{post:#}");
    assert_eq!(media.hits(), vec!["/media/clip.mp4".to_string()]);
}
