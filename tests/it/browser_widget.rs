//! The account widget in a real browser, as a host application shows it: framed in the host's
//! page, its Reconnect leaves the frame for a connect link, the creator approves on the
//! emulator and lands back on the host's page with `status=reconnected`; and the
//! `<tidepost-account>` web component on the host's page renders the card in its shadow root,
//! while the same component on an origin the workspace does not allow shows why it cannot.
//! Screenshots under `target/screenshots/<test>/`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

/// A pretend host: `/frame` and `/component` answer the HTML set in `pages`, anything else a
/// page listing the query it got (the return URL).
async fn host(pages: Arc<Mutex<(String, String)>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, axum::extract::RawQuery(query): axum::extract::RawQuery| {
            let pages = pages.clone();
            async move {
                let (frame, component) = pages.lock().unwrap().clone();
                let html = match uri.path() {
                    "/frame" => frame,
                    "/component" => component,
                    _ => {
                        let rows: String =
                            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                                .map(|(k, v)| format!("<li id=\"{k}\">{k}: {v}</li>"))
                                .collect();
                        format!("<!doctype html><title>Host CRM</title><h1>Back in the CRM</h1><ul>{rows}</ul>")
                    }
                };
                axum::response::Html(html)
            }
        },
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    origin
}

async fn wait_for_url(b: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = b.client.current_url().await.unwrap().to_string();
        if check(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "never reached {what}; at {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the `<tidepost-account>` element's shadow root, once it holds `needle`.
async fn shadow_text(b: &Browser, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = b
            .client
            .execute(
                "const el = document.querySelector('tidepost-account'); \
                 return el && el.shadowRoot ? el.shadowRoot.textContent : '';",
                vec![],
            )
            .await
            .unwrap();
        let text = text.as_str().unwrap_or_default().to_string();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the component never showed {needle:?}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn widget_in_a_host_page(backend: Backend) {
    let test = "widget";
    let app = spawn_app_with(backend, Options::emulated()).await;
    let (_, ws) = app.create_user("owner@host.example", "host").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let account_id = connect_new_creator(&app, &key, json!({"username": "frame_ada"})).await;
    let account: Value = app
        .api_get(&key, &format!("/api/v1/accounts/{account_id}"))
        .await
        .json()
        .await
        .unwrap();
    let open_id = account["provider_user_id"].as_str().unwrap().to_string();
    let pages = Arc::new(Mutex::new((String::new(), String::new())));
    let origin = host(pages.clone()).await;
    let foreign = host(pages.clone()).await;
    let set = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({ "origins": [origin] }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let widget: Value = bare_client()
        .post(app.url(&format!("/api/v1/accounts/{account_id}/widget-links")))
        .bearer_auth(&key)
        .json(&json!({"return_url": format!("{origin}/back"), "theme": "dark"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let widget_url = widget["url"].as_str().unwrap().to_string();
    *pages.lock().unwrap() = (
        format!(
            "<!doctype html><title>CRM</title><h1>Creator</h1>\
             <iframe src=\"{widget_url}\" style=\"width:360px;height:420px;border:0\"></iframe>"
        ),
        format!(
            "<!doctype html><title>CRM</title><h1>Creator</h1>\
             <script src=\"{}\"></script>\
             <tidepost-account src=\"{widget_url}\"></tidepost-account>",
            app.url("/assets/tidepost-account.js")
        ),
    );

    let b = Browser::start(1280, 800).await;
    // The web component on the allowed origin: the card in its shadow root, dark.
    b.goto(&format!("{origin}/component")).await;
    let text = shadow_text(&b, "@frame_ada").await;
    assert!(text.contains("Direct posts left today"), "{text}");
    assert!(text.contains("Reconnect"), "{text}");
    let dark = b
        .client
        .execute(
            "return !!document.querySelector('tidepost-account').shadowRoot.querySelector('.dark');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dark, Value::Bool(true));
    b.screenshot(test, "01-component").await;
    // On an origin the workspace does not allow: it says why it cannot.
    b.goto(&format!("{foreign}/component")).await;
    let text = shadow_text(&b, "allowed").await;
    assert!(!text.contains("@frame_ada"), "{text}");
    b.screenshot(test, "02-component-foreign").await;

    // Framed: Reconnect leaves the frame for the connect link, and the creator comes back.
    b.goto(&format!("{origin}/frame")).await;
    let frame = b
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("iframe"))
        .await
        .unwrap();
    frame.enter_frame().await.unwrap();
    let card = b.text_of(".account-card").await;
    assert!(card.contains("@frame_ada"), "{card}");
    b.screenshot(test, "03-framed").await;
    b.click("form[data-widget-reconnect] button").await;
    // The whole window moved on: back to its top-level context (the frame is gone).
    let _ = b.client.enter_parent_frame().await;
    wait_for_url(&b, "the connect link's page", |u| {
        u.contains("/connect/link/")
    })
    .await;
    assert!(b.text_of("main").await.contains("@frame_ada"));
    b.click("button[name=choice][value=tiktok]").await;
    let emulator = app.emulator.clone().unwrap();
    wait_for_url(&b, "the emulator's consent page", |u| {
        u.starts_with(&emulator)
    })
    .await;
    b.click(&format!("input[name=creator][value=\"{open_id}\"]"))
        .await;
    b.click("button[name=decision][value=approve]").await;
    wait_for_url(&b, "the host's page", |u| u.starts_with(&origin)).await;
    assert_eq!(b.text_of("#status").await, "status: reconnected");
    assert_eq!(
        b.text_of("#account_id").await,
        format!("account_id: {account_id}")
    );
    b.screenshot(test, "04-back-reconnected").await;
    b.close().await;
}

both_backends!(widget_in_a_host_page);
