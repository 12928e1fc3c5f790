//! A connect link in a real browser, at 390 and 1280 px, against the in-process emulator: a
//! pretend host application (a page on this machine that shows what tidepost sent back) makes
//! a link, the creator opens it with no tidepost session, reads the workspace's name and the
//! ways to connect, continues with TikTok, approves on the emulator's consent page and lands
//! back on the host's page with `status=connected`, the account and the host's own id; the
//! account's widget (dark) shows its card. The same
//! link opened again says it was used, and says what to do. Every page is checked for
//! sideways scrolling; screenshots under `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

/// A pretend host application: `GET /back?…` answers a page listing the query it got.
async fn host_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(
        |axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
            let rows: String = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| format!("<li id=\"{k}\">{k}: {v}</li>"))
                .collect();
            axum::response::Html(format!(
                "<!doctype html><title>Host CRM</title><h1>Back in the CRM</h1><ul>{rows}</ul>"
            ))
        },
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    origin
}

async fn current(b: &Browser) -> String {
    b.client.current_url().await.unwrap().to_string()
}

async fn wait_for_url(b: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = current(b).await;
        if check(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "never reached {what}; at {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn hosted_page_at(backend: Backend, width: u32, height: u32) {
    let test = "connect_link";
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().unwrap();
    let (_, ws) = app
        .create_user("owner@studio-north.example", "studio-north")
        .await;
    sqlx::query("UPDATE workspaces SET name = 'Studio North' WHERE id = $1")
        .bind(&ws.id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let host = host_page().await;
    let set = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({ "origins": [host] }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let link: Value = bare_client()
        .post(app.url("/api/v1/connect-links"))
        .bearer_auth(&key)
        .json(&json!({"external_ref": "crm-42", "return_url": format!("{host}/back")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap().to_string();

    let b = Browser::start(width, height).await;
    b.goto(&url).await;
    assert_eq!(b.text_of("h1").await, "Connect your account");
    assert!(b.text_of("main").await.contains("Studio North"));
    b.assert_layout_fits("the connect link's page").await;
    b.screenshot(
        test,
        &format!("01-link-{}", format!("{backend:?}").to_lowercase()),
    )
    .await;

    b.click("button[name=choice][value=tiktok]").await;
    wait_for_url(&b, "the emulator's consent page", |u| {
        u.starts_with(&emulator)
    })
    .await;
    b.click("input[name=creator]").await;
    b.click("button[name=decision][value=approve]").await;
    let back = wait_for_url(&b, "the host's page", |u| u.starts_with(&host)).await;
    assert_eq!(b.text_of("#status").await, "status: connected", "{back}");
    assert_eq!(b.text_of("#external_ref").await, "external_ref: crm-42");
    let account_id = b.text_of("#account_id").await;
    let account_id = account_id.trim_start_matches("account_id: ");
    let account: Value = app
        .api_get(&key, &format!("/api/v1/accounts/{account_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["external_ref"], "crm-42", "{account}");
    b.screenshot(
        test,
        &format!("02-back-on-host-{}", format!("{backend:?}").to_lowercase()),
    )
    .await;

    // The account's widget, as the host frames it, in the dark style.
    let widget: Value = bare_client()
        .post(app.url(&format!("/api/v1/accounts/{account_id}/widget-links")))
        .bearer_auth(&key)
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b.goto(widget["url"].as_str().unwrap()).await;
    assert!(b.text_of(".account-card").await.contains("Token"));
    b.assert_layout_fits("the account widget").await;
    b.screenshot(
        test,
        &format!("02b-widget-{}", format!("{backend:?}").to_lowercase()),
    )
    .await;

    // Twice: a page in the layout saying so, and what to do.
    b.goto(&url).await;
    assert_eq!(b.text_of("h1").await, "This connect link was already used");
    assert!(b.text_of("main").await.contains("new link"));
    b.assert_layout_fits("a used link's page").await;
    b.screenshot(
        test,
        &format!("03-used-{}", format!("{backend:?}").to_lowercase()),
    )
    .await;
    b.close().await;
}

async fn hosted_page(backend: Backend) {
    hosted_page_at(backend, 390, 844).await;
    hosted_page_at(backend, 1280, 800).await;
}

both_backends!(hosted_page);
