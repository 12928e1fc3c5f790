//! The embeddable account widget: a widget link for an account of the workspace (another
//! workspace's is not found), its page read-only in light or dark, framable only by the
//! workspace's allowed origins (the Content-Security-Policy says so), and refused when altered,
//! moved to another account, or with a theme or lifetime out of range.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn widget_link(app: &TestApp, key: &str, account: &str, body: Value) -> reqwest::Response {
    bare_client()
        .post(app.url(&format!("/api/v1/accounts/{account}/widget-links")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The link's path on this test server (its public URL names port 0).
fn local(app: &TestApp, link: &Value) -> String {
    let url = url::Url::parse(link["url"].as_str().unwrap()).unwrap();
    app.url(url.path())
}

async fn widget_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("owner@host.example", "host").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let (_, other) = app.create_user("owner@other.example", "other").await;
    let account = fixture_account(&app.db, &ws.id, "tiktok", "open-w1", "Ada Widget").await;
    let second = fixture_account(&app.db, &ws.id, "tiktok", "open-w2", "Bob Widget").await;
    let foreign = fixture_account(&app.db, &other.id, "tiktok", "open-w3", "Not Yours").await;
    let origins = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({"origins": ["https://crm.example.com", "http://localhost:3000"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(origins.status(), StatusCode::OK);

    // Refusals.
    problem(
        widget_link(&app, &key, &foreign, json!({})).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    for (body, field) in [
        (json!({"expires_in": 59}), "expires_in"),
        (json!({"expires_in": 7 * 24 * 3600 + 1}), "expires_in"),
        (json!({"theme": "neon"}), "theme"),
    ] {
        let refused = problem(
            widget_link(&app, &key, &account, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        assert_eq!(refused["field"], field, "{refused}");
    }

    // The dark card, read-only, framable by the allowed origins only.
    let created = widget_link(&app, &key, &account, json!({"theme": "dark"})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let link: Value = created.json().await.unwrap();
    let url = local(&app, &link);
    let page = bare_client().get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors https://crm.example.com http://localhost:3000"),
        "{csp}"
    );
    assert!(!csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Ada Widget"), "{html}");
    assert!(html.contains("theme-dark"), "{html}");
    assert!(
        !html.contains("New post") && !html.contains("Details</a>"),
        "{html}"
    );
    assert!(
        !html.contains("class=\"topbar\""),
        "no tidepost layout: {html}"
    );
    // Light by default.
    let light: Value = widget_link(&app, &key, &account, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let html = bare_client()
        .get(local(&app, &light))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("theme-light"), "{html}");

    // Altered, or moved to another account: not found, still in no one's frame.
    let mut altered = url.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let moved = url.replace(&account, &second);
    for bad in [altered, moved] {
        let page = bare_client().get(&bad).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "{bad}");
        let html = page.text().await.unwrap();
        assert!(html.contains("not valid"), "{html}");
        assert!(!html.contains("Ada Widget"), "{html}");
    }

    // A workspace with no allowed origin: nobody may frame it.
    let other_key = app.api_key(&other.id, "other", &[]).await;
    let theirs: Value = widget_link(&app, &other_key, &foreign, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let page = bare_client()
        .get(local(&app, &theirs))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

both_backends!(widget_pages);
