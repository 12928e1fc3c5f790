//! The embeddable account widget: a widget link for an account of the workspace (another
//! workspace's is not found), its page read-only in light or dark, framable only by the
//! workspace's allowed origins (the Content-Security-Policy says so), and refused when altered,
//! moved to another account, or with a theme or lifetime out of range.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
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

/// Where the creator comes back to after a Reconnect started in the widget.
const BACK: &str = "http://localhost:3000/creators/42";

/// The Reconnect form of a widget page: where it posts (on this test server) and its token.
fn reconnect_form(app: &TestApp, html: &str) -> Option<(String, String)> {
    let action = html
        .split("data-widget-reconnect")
        .next()?
        .rsplit("action=\"")
        .next()?
        .split('"')
        .next()?
        .to_string();
    let token = hidden_input(html, "form_token")?;
    html.contains("data-widget-reconnect")
        .then(|| (app.url(&action), token))
}

async fn post_reconnect(url: &str, form_token: &str, site: Option<&str>) -> reqwest::Response {
    let mut request = bare_client().post(url).form(&[("form_token", form_token)]);
    if let Some(site) = site {
        request = request.header("sec-fetch-site", site);
    }
    request.send().await.unwrap()
}

async fn widget_reconnect(backend: Backend) {
    let app = spawn_app_with(backend, Options::emulated()).await;
    let emulator = app.emulator.clone().unwrap();
    let (_, ws) = app.create_user("owner@host.example", "host").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let account = connect_new_creator(&app, &key, json!({"username": "widget_ada"})).await;
    let origins = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({"origins": ["http://localhost:3000"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(origins.status(), StatusCode::OK);

    // A return_url must be on an allowed origin, http(s), without credentials, not too long.
    for (return_url, rule) in [
        (
            "https://evil.example/back".to_string(),
            "origin_not_allowed",
        ),
        ("javascript:alert(1)".to_string(), "scheme"),
        (
            "http://me:pw@localhost:3000/back".to_string(),
            "credentials",
        ),
        (format!("{BACK}?{}", "x".repeat(2048)), "too_long"),
        ("/relative".to_string(), "not_a_url"),
    ] {
        let refused = problem(
            widget_link(&app, &key, &account, json!({"return_url": return_url})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        assert_eq!(refused["field"], "return_url", "{refused}");
        assert_eq!(refused["rule"], rule, "{return_url}: {refused}");
    }

    // Without a return_url: no button, and a POST is refused.
    let plain: Value = widget_link(&app, &key, &account, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let plain_url = local(&app, &plain);
    let html = bare_client()
        .get(&plain_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Reconnect"), "{html}");
    assert!(reconnect_form(&app, &html).is_none());

    // With one: the button, a form token, a CSP allowing only our own form action.
    let created = widget_link(&app, &key, &account, json!({"return_url": BACK})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let link: Value = created.json().await.unwrap();
    let url = local(&app, &link);
    let page = bare_client().get(&url).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("target=\"_top\""), "leaves the frame: {html}");
    let (action, form_token) = reconnect_form(&app, &html).expect("a Reconnect form");
    assert_eq!(action, format!("{url}/reconnect"));

    // The refusals: no token, a token of another widget link, a cross-site post, the
    // widget without a return_url, an altered widget token.
    let page_error = |status: StatusCode, needle: &'static str| {
        move |response: reqwest::Response| async move {
            assert_eq!(response.status(), status);
            assert!(response.headers().get(LOCATION).is_none());
            let html = response.text().await.unwrap();
            assert!(html.contains(needle), "{needle}: {html}");
        }
    };
    page_error(StatusCode::FORBIDDEN, "own page")(post_reconnect(&action, "", None).await).await;
    page_error(StatusCode::FORBIDDEN, "own page")(
        post_reconnect(&action, &form_token, Some("cross-site")).await,
    )
    .await;
    let second: Value = widget_link(&app, &key, &account, json!({"return_url": BACK}))
        .await
        .json()
        .await
        .unwrap();
    let second_html = bare_client()
        .get(local(&app, &second))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, second_token) = reconnect_form(&app, &second_html).unwrap();
    assert_ne!(second_token, form_token);
    page_error(StatusCode::FORBIDDEN, "own page")(
        post_reconnect(&action, &second_token, None).await,
    )
    .await;
    page_error(StatusCode::CONFLICT, "without a return_url")(
        post_reconnect(
            &format!("{plain_url}/reconnect"),
            &tidepost_app::widget::reconnect_token(
                &app.app,
                &account,
                plain_url.rsplit('/').next().unwrap(),
            ),
            None,
        )
        .await,
    )
    .await;
    let mut altered = action.trim_end_matches("/reconnect").to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    page_error(StatusCode::NOT_FOUND, "not valid")(
        post_reconnect(&format!("{altered}/reconnect"), &form_token, None).await,
    )
    .await;
    // An expired widget link.
    let stored = tidepost_store::accounts::get(&app.db, &ws.id, &account)
        .await
        .unwrap()
        .unwrap();
    let expired = tidepost_app::widget::url_until(
        &app.app,
        &stored,
        tidepost_domain::now_ms() / 1000 - 1,
        "light",
        Some(BACK),
    );
    let expired = app.url(url::Url::parse(&expired).unwrap().path());
    let expired_token = expired.rsplit('/').next().unwrap().to_string();
    page_error(StatusCode::GONE, "expired")(
        post_reconnect(
            &format!("{expired}/reconnect"),
            &tidepost_app::widget::reconnect_token(&app.app, &account, &expired_token),
            None,
        )
        .await,
    )
    .await;
    page_error(StatusCode::GONE, "expired")(bare_client().get(&expired).send().await.unwrap())
        .await;

    // The button: a 303 to a connect link re-authorizing this account, back to the return URL.
    let started = post_reconnect(&action, &form_token, Some("same-origin")).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let connect = location(&started);
    let connect = app.url(url::Url::parse(&connect).unwrap().path());
    assert!(connect.contains("/connect/link/"), "{connect}");
    let html = bare_client()
        .get(&connect)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Connect @widget_ada again"), "{html}");
    let picked = bare_client()
        .post(&connect)
        .form(&[("choice", "tiktok")])
        .send()
        .await
        .unwrap();
    assert_eq!(picked.status(), StatusCode::SEE_OTHER);
    let consent = bare_client()
        .get(location(&picked))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let callback = approve_tiktok_consent(&emulator, &consent, Some("widget_ada")).await;
    let landed = bare_client().get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    let back = location(&landed);
    assert!(back.starts_with(&format!("{BACK}?")), "{back}");
    assert!(back.contains("status=reconnected"), "{back}");
    assert!(back.contains(&format!("account_id={account}")), "{back}");

    // The origin taken off the list since the widget was made: refused, no link made.
    let origins = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({"origins": ["https://crm.example.com"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(origins.status(), StatusCode::OK);
    page_error(StatusCode::CONFLICT, "not among the workspace")(
        post_reconnect(&action, &form_token, None).await,
    )
    .await;
}

both_backends!(widget_reconnect);

/// `card.json` of a widget link (on this test server), asked from `origin`.
async fn card_json(url: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = bare_client().get(format!("{url}/card.json"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

/// The `<tidepost-account>` web component's data: the card as JSON, readable by a browser only
/// from the workspace's allowed origins (others refused with a problem), refused when altered
/// or expired; its Reconnect form accepted from an allowed origin's page, not from another.
async fn widget_card_for_the_web_component(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("owner@host.example", "host").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let account = fixture_account(&app.db, &ws.id, "tiktok", "open-j1", "Ada Json").await;
    let origins = bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(&key)
        .json(&json!({"origins": ["http://localhost:3000"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(origins.status(), StatusCode::OK);
    let link: Value = widget_link(
        &app,
        &key,
        &account,
        json!({"theme": "dark", "return_url": BACK}),
    )
    .await
    .json()
    .await
    .unwrap();
    let url = local(&app, &link);

    // No Origin (a server, or tidepost's own page): the data, no CORS header.
    let plain = card_json(&url, None).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    let card: Value = plain.json().await.unwrap();
    assert_eq!(card["theme"], "dark");
    assert_eq!(card["account"]["id"], account.as_str());
    assert_eq!(card["account"]["display_name"], "Ada Json");
    assert_eq!(card["account"]["platform"], "tiktok");
    assert!(card["tiktok"]["direct_cap"].as_i64().unwrap() > 0, "{card}");
    assert!(card["recent"].as_array().unwrap().is_empty(), "{card}");
    let action = card["reconnect"]["action"].as_str().unwrap();
    assert!(action.ends_with("/reconnect"), "{action}");
    let form_token = card["reconnect"]["form_token"]
        .as_str()
        .unwrap()
        .to_string();

    // An allowed origin may read it.
    let allowed = card_json(&url, Some("http://localhost:3000")).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(allowed.headers()["vary"], "Origin");
    // Any other is refused, named.
    for origin in ["https://evil.example", "null", "http://localhost:3001"] {
        let refused = card_json(&url, Some(origin)).await;
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let body = problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(body["rule"], "origin_not_allowed", "{body}");
        assert!(body["detail"].as_str().unwrap().contains(origin), "{body}");
    }

    // Altered or expired links are problems too.
    let mut altered = url.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    problem(
        card_json(&altered, Some("http://localhost:3000")).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let stored = tidepost_store::accounts::get(&app.db, &ws.id, &account)
        .await
        .unwrap()
        .unwrap();
    let expired = tidepost_app::widget::url_until(
        &app.app,
        &stored,
        tidepost_domain::now_ms() / 1000 - 1,
        "light",
        None,
    );
    let expired = app.url(url::Url::parse(&expired).unwrap().path());
    problem(card_json(&expired, None).await, StatusCode::GONE, "expired").await;

    // Without a return_url: no Reconnect.
    let plain_link: Value = widget_link(&app, &key, &account, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let card: Value = card_json(&local(&app, &plain_link), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(card["reconnect"].is_null(), "{card}");
    assert_eq!(card["theme"], "light");

    // The component's Reconnect posts from the host's page: accepted from an allowed origin,
    // refused from another.
    let reconnect = format!("{url}/reconnect");
    let from = |origin: &'static str| {
        bare_client()
            .post(&reconnect)
            .header("sec-fetch-site", "cross-site")
            .header("origin", origin)
            .form(&[("form_token", form_token.as_str())])
            .send()
    };
    let foreign = from("https://evil.example").await.unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let started = from("http://localhost:3000").await.unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert!(location(&started).contains("/connect/link/"));

    // The component itself.
    let script = bare_client()
        .get(app.url("/assets/tidepost-account.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let text = script.text().await.unwrap();
    assert!(text.contains("customElements.define(\"tidepost-account\""));
    assert!(!text.contains("innerHTML"), "values are set as text only");
}

both_backends!(widget_card_for_the_web_component);
