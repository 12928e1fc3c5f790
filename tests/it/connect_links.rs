//! Embedding tidepost in a host application: the workspace's allowed origins (API and settings
//! page), connect links (every refusal; the host's whole flow against the emulator: link →
//! hosted page → consent → back on the host with the account → the account and its events
//! carry `external_ref`), used twice, late, tampered, declined, and reconnecting the wrong
//! account.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::outbound_webhooks::Receiver;
use crate::support::*;

/// The host application's origin in these tests (nothing listens there: the tests read the
/// `Location` tidepost sends the creator to).
const HOST: &str = "https://crm.example.com";

async fn post_json(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    bare_client()
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn put_origins(app: &TestApp, key: &str, origins: Value) -> reqwest::Response {
    bare_client()
        .put(app.url("/api/v1/allowed-origins"))
        .bearer_auth(key)
        .json(&json!({ "origins": origins }))
        .send()
        .await
        .unwrap()
}

/// A 422 naming `field` and `rule`.
async fn refused(response: reqwest::Response, field: &str, rule: &str) -> Value {
    let body = problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], field, "{body}");
    assert_eq!(body["rule"], rule, "{body}");
    body
}

async fn create_link(app: &TestApp, key: &str, body: Value) -> Value {
    let response = post_json(app, key, "/api/v1/connect-links", body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The page a link's URL (or a path) shows to a creator with no session.
async fn open(url: &str) -> (StatusCode, String) {
    let response = bare_client().get(url).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Picks `choice` on a link's page: the answer (a 303 to the platform when it worked).
async fn pick(url: &str, choice: &str) -> reqwest::Response {
    bare_client()
        .post(url)
        .form(&[("choice", choice)])
        .send()
        .await
        .unwrap()
}

/// Picks TikTok on the link's page and approves the emulator's consent as `username`: the
/// callback URL and tidepost's answer to it.
async fn consent_with_tiktok(
    emulator: &str,
    url: &str,
    username: &str,
) -> (String, reqwest::Response) {
    let started = pick(url, "tiktok").await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let authorize = location(&started);
    assert!(authorize.starts_with(emulator), "{authorize}");
    let consent = bare_client()
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let callback = approve_tiktok_consent(emulator, &consent, Some(username)).await;
    let landed = bare_client().get(&callback).send().await.unwrap();
    (callback, landed)
}

/// The link's address on this test server (the public URL of a server without the emulator
/// names port 0).
fn local(app: &TestApp, link: &Value) -> String {
    let url = url::Url::parse(link["url"].as_str().unwrap()).unwrap();
    assert!(url.path().starts_with("/connect/link/"), "{url}");
    app.url(url.path())
}

/// A workspace named `name` (the slug is made from it) with its owner.
async fn workspace(app: &TestApp, name: &str) -> tidepost_store::workspaces::Workspace {
    let slug = name.to_lowercase().replace(' ', "-");
    let (_, ws) = app
        .create_user(&format!("owner@{slug}.example"), &slug)
        .await;
    sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(&ws.id)
        .execute(app.db.pool())
        .await
        .unwrap();
    ws
}

fn query_of(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn origins_and_refusals(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("owner@host.example", "host").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let (_, other) = app.create_user("owner@other.example", "other").await;
    let foreign =
        fixture_account(&app.db, &other.id, "tiktok", "open-foreign", "Someone else").await;
    let ours = fixture_account(&app.db, &ws.id, "instagram", "ig-ours", "Ours").await;

    // No allowed origin yet: any return_url is refused, saying where to add one.
    let body = refused(
        post_json(
            &app,
            &key,
            "/api/v1/connect-links",
            json!({"return_url": format!("{HOST}/back")}),
        )
        .await,
        "return_url",
        "origin_not_allowed",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("allowed-origins"),
        "{body}"
    );

    // Origins: scheme, host and port only.
    for (bad, rule) in [
        ("https://crm.example.com/path", "path"),
        ("https://crm.example.com/?q=1", "path"),
        ("https://user:pw@crm.example.com", "credentials"),
        ("ftp://crm.example.com", "scheme"),
        ("crm.example.com", "not_an_origin"),
    ] {
        refused(
            put_origins(&app, &key, json!([HOST, bad])).await,
            "origins[1]",
            rule,
        )
        .await;
    }
    let set = put_origins(
        &app,
        &key,
        json!([
            "https://CRM.example.com:443/",
            "http://localhost:3000",
            HOST
        ]),
    )
    .await;
    assert_eq!(set.status(), StatusCode::OK);
    let set: Value = set.json().await.unwrap();
    assert_eq!(set["origins"], json!([HOST, "http://localhost:3000"]));
    let read: Value = app
        .api_get(&key, "/api/v1/allowed-origins")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, set);
    // Another workspace's list is its own.
    let other_key = app.api_key(&other.id, "other", &[]).await;
    let theirs: Value = app
        .api_get(&other_key, "/api/v1/allowed-origins")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["origins"], json!([]));

    let good = json!({"platforms": ["tiktok"], "return_url": format!("{HOST}/back")});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("return_url", json!("https://evil.example.com/back")),
            "return_url",
            "origin_not_allowed",
        ),
        (
            with("return_url", json!("javascript:alert(1)")),
            "return_url",
            "scheme",
        ),
        (
            with(
                "return_url",
                json!("data:text/html,<script>alert(1)</script>"),
            ),
            "return_url",
            "scheme",
        ),
        (
            with("return_url", json!("https://me:pw@crm.example.com/back")),
            "return_url",
            "credentials",
        ),
        (
            with(
                "return_url",
                json!(format!("{HOST}/{}", "a".repeat(2049 - HOST.len()))),
            ),
            "return_url",
            "too_long",
        ),
        (
            with("return_url", json!("/relative")),
            "return_url",
            "not_a_url",
        ),
        (with("expires_in", json!(0)), "expires_in", "out_of_range"),
        (with("expires_in", json!(59)), "expires_in", "out_of_range"),
        (
            with("expires_in", json!(7 * 24 * 3600 + 1)),
            "expires_in",
            "out_of_range",
        ),
        (
            with("platforms", json!(["tiktok", "myspace"])),
            "platforms[1]",
            "unknown_platform",
        ),
        (with("platforms", json!([])), "platforms", "empty"),
        (
            with("external_ref", json!("x".repeat(256))),
            "external_ref",
            "too_long",
        ),
        (
            with("external_ref", json!("crm\n42")),
            "external_ref",
            "control_characters",
        ),
        (with("external_ref", json!("")), "external_ref", "empty"),
        (
            with("reconnect_account_id", json!(foreign)),
            "reconnect_account_id",
            "not_found",
        ),
        (
            with("reconnect_account_id", json!(ours)),
            "platforms",
            "reconnect_platform",
        ),
    ];
    for (body, field, rule) in cases {
        refused(
            post_json(&app, &key, "/api/v1/connect-links", body.clone()).await,
            field,
            rule,
        )
        .await;
    }
    // Nothing was stored by any refusal.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connect_links")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // A good one: 7 days is the longest; 255 characters of external_ref are fine.
    let reference = "é".repeat(255);
    let link = create_link(
        &app,
        &key,
        with("expires_in", json!(7 * 24 * 3600))
            .as_object()
            .cloned()
            .map(|mut b| {
                b.insert("external_ref".into(), json!(reference));
                Value::Object(b)
            })
            .unwrap(),
    )
    .await;
    assert_eq!(link["platforms"], json!(["tiktok"]));
    assert_eq!(link["external_ref"], json!(reference));
    let url = local(&app, &link);
    let token = url.rsplit('/').next().unwrap();
    // Only a hash of the token is stored.
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM connect_links")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        hashes,
        vec![tidepost_app::access::sha256_hex(token)],
        "the hash, never the token"
    );
    // A reconnect link inherits the account's platform.
    let again = create_link(
        &app,
        &key,
        json!({"reconnect_account_id": ours, "return_url": format!("{HOST}/back")}),
    )
    .await;
    assert_eq!(again["platforms"], json!(["instagram"]));

    // The accounts filter checks its value too.
    refused(
        app.api_get(&key, "/api/v1/accounts?external_ref=a%0Ab")
            .await,
        "external_ref",
        "control_characters",
    )
    .await;
}

async fn unusable_links(backend: Backend) {
    let app = spawn_app(backend).await;
    let ws = workspace(&app, "Studio North").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    assert_eq!(
        put_origins(&app, &key, json!([HOST])).await.status(),
        StatusCode::OK
    );
    let body = json!({"return_url": format!("{HOST}/back"), "external_ref": "<b>crm</b>"});
    let link = create_link(&app, &key, body.clone()).await;
    let url = local(&app, &link);

    // The page: the workspace's name and every platform, nothing reflected unescaped.
    let (status, html) = open(&url).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Studio North"), "{html}");
    assert!(html.contains("value=\"tiktok\""), "{html}");
    assert!(html.contains("value=\"instagram:facebook\""), "{html}");
    assert!(html.contains("value=\"instagram:instagram\""), "{html}");
    assert!(!html.contains("<b>crm</b>"));

    // Tampered: one character changed, or cut short.
    let mut tampered = url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered.clone(), url[..url.len() - 5].to_string()] {
        let (status, html) = open(&bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(html.contains("This connect link is not valid"), "{html}");
        assert!(html.contains("class=\"topbar\""), "in the layout: {html}");
        assert!(html.contains("new link"), "says what to do: {html}");
        let response = pick(&bad, "tiktok").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    // A choice the link does not offer: the page again, the link unspent.
    let only_tiktok = create_link(
        &app,
        &key,
        json!({"platforms": ["tiktok"], "return_url": format!("{HOST}/back")}),
    )
    .await;
    let only_url = &local(&app, &only_tiktok);
    let response = pick(only_url, "instagram:facebook").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("Choose one of the ways"), "{html}");
    assert!(!html.contains("value=\"instagram:facebook\""), "{html}");
    assert_eq!(open(only_url).await.0, StatusCode::OK, "still usable");

    // Late: a link past its expiry.
    sqlx::query("UPDATE connect_links SET expires_at = $1 WHERE id = $2")
        .bind(tidepost_domain::now_ms() - 1)
        .bind(link["id"].as_str().unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    let (status, html) = open(&url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("This connect link has expired"), "{html}");
    assert_eq!(pick(&url, "tiktok").await.status(), StatusCode::GONE);

    // Twice: once spent (by the flow the platform's own tests cover), a link is used.
    sqlx::query("UPDATE connect_links SET used_at = $1 WHERE id = $2")
        .bind(tidepost_domain::now_ms())
        .bind(only_tiktok["id"].as_str().unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    let (status, html) = open(only_url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(
        html.contains("This connect link was already used"),
        "{html}"
    );
}

/// The host's whole flow against the emulator, with its webhook receiver.
async fn host_flow(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Default::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().unwrap();
    let ws = workspace(&app, "Studio North").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    assert_eq!(
        put_origins(&app, &key, json!([HOST])).await.status(),
        StatusCode::OK
    );
    let receiver = Receiver::start(200).await;
    let endpoint = post_json(
        &app,
        &key,
        "/api/v1/webhook-endpoints",
        json!({"url": receiver.url, "event_types": ["account.connected", "account.reconnected"]}),
    )
    .await;
    assert_eq!(endpoint.status(), StatusCode::CREATED);
    for username in ["link_ada", "link_bob"] {
        let added = bare_client()
            .post(format!("{emulator}/_emulator/tiktok/creators"))
            .json(&json!({ "username": username }))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), StatusCode::CREATED);
    }

    // Link → hosted page → TikTok → consent → back on the host.
    let return_url = format!("{HOST}/creators/42?tab=accounts");
    let link = create_link(
        &app,
        &key,
        json!({"platforms": ["tiktok"], "external_ref": "crm-42", "return_url": return_url}),
    )
    .await;
    let url = link["url"].as_str().unwrap().to_string();
    let (status, html) = open(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Studio North"));
    let (callback, landed) = consent_with_tiktok(&emulator, &url, "link_ada").await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    let back = location(&landed);
    assert!(
        back.starts_with(&format!("{HOST}/creators/42?tab=accounts&")),
        "{back}"
    );
    let query = query_of(&back);
    assert_eq!(param(&query, "status"), Some("connected"), "{back}");
    assert_eq!(param(&query, "external_ref"), Some("crm-42"), "{back}");
    assert_eq!(param(&query, "error"), None, "{back}");
    let account_id = param(&query, "account_id").unwrap().to_string();

    // The account carries external_ref, and the API filters by it.
    let found: Value = app
        .api_get(&key, "/api/v1/accounts?external_ref=crm-42")
        .await
        .json()
        .await
        .unwrap();
    let data = found["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{found}");
    assert_eq!(data[0]["id"], account_id.as_str());
    assert_eq!(data[0]["username"], "link_ada");
    assert_eq!(data[0]["external_ref"], "crm-42");
    let none: Value = app
        .api_get(&key, "/api/v1/accounts?external_ref=crm-43")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["data"], json!([]));
    let one: Value = app
        .api_get(&key, &format!("/api/v1/accounts/{account_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["external_ref"], "crm-42");
    // And on its creator record.
    let creator_ref: Option<String> = sqlx::query_scalar(
        "SELECT c.external_ref FROM creators c JOIN accounts a ON a.creator_id = c.id WHERE a.id = $1",
    )
    .bind(&account_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(creator_ref.as_deref(), Some("crm-42"));
    // The creators API shows it and finds the creator by it.
    let creators: Value = app
        .api_get(&key, "/api/v1/creators?external_ref=crm-42")
        .await
        .json()
        .await
        .unwrap();
    let data = creators["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{creators}");
    assert_eq!(data[0]["external_ref"], "crm-42");
    assert_eq!(data[0]["accounts"][0]["id"], account_id.as_str());
    let none: Value = app
        .api_get(&key, "/api/v1/creators?external_ref=crm-43")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["data"], json!([]));
    // One widget link per account of the creator, for the host's page of that creator.
    let creator_id = data[0]["id"].as_str().unwrap();
    let links = bare_client()
        .post(app.url(&format!("/api/v1/creators/{creator_id}/widget-links")))
        .bearer_auth(&key)
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(links.status(), StatusCode::CREATED);
    let links: Value = links.json().await.unwrap();
    let links = links["data"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["account_id"], account_id.as_str());
    assert_eq!(links[0]["platform"], "tiktok");
    let card = bare_client()
        .get(links[0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), StatusCode::OK);
    assert!(card.text().await.unwrap().contains("link_ada"));

    // The event reached the host's receiver with it.
    let got = receiver.wait_for(1, "account.connected").await;
    let event: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(event["type"], "account.connected", "{event}");
    assert_eq!(event["data"]["account_id"], account_id.as_str());
    assert_eq!(event["data"]["external_ref"], "crm-42");

    // Twice: the link and the callback are spent.
    let (status, html) = open(&url).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("already used"), "{html}");
    assert_eq!(pick(&url, "tiktok").await.status(), StatusCode::GONE);
    let replay = bare_client().get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::GONE);
    let html = replay.text().await.unwrap();
    assert!(html.contains("This sign-in is over"), "{html}");
    assert!(
        html.contains("status=connected"),
        "offers the way back: {html}"
    );

    // Reconnecting as someone else is refused, and nothing is stored.
    let reconnect = |app: &TestApp| {
        let key = key.clone();
        let account_id = account_id.clone();
        let app_url = app.url("/api/v1/connect-links");
        async move {
            let response = bare_client()
                .post(app_url)
                .bearer_auth(&key)
                .json(&json!({"reconnect_account_id": account_id, "return_url": format!("{HOST}/back")}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let link: Value = response.json().await.unwrap();
            assert_eq!(link["external_ref"], "crm-42", "inherited: {link}");
            link["url"].as_str().unwrap().to_string()
        }
    };
    let wrong = reconnect(&app).await;
    let (_, html) = open(&wrong).await;
    assert!(html.contains("Connect @link_ada again"), "{html}");
    let (_, landed) = consent_with_tiktok(&emulator, &wrong, "link_bob").await;
    assert_eq!(landed.status(), StatusCode::BAD_REQUEST);
    let html = landed.text().await.unwrap();
    assert!(html.contains("@link_bob"), "{html}");
    assert!(html.contains("@link_ada"), "{html}");
    assert!(
        html.contains("status=error&#38;external_ref=crm-42&#38;error=wrong_account"),
        "{html}"
    );
    let all: Value = app
        .api_get(&key, "/api/v1/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");

    // The right creator: reconnected, the same account, announced as such.
    let right = reconnect(&app).await;
    let (_, landed) = consent_with_tiktok(&emulator, &right, "link_ada").await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    let query = query_of(&location(&landed));
    assert_eq!(param(&query, "status"), Some("reconnected"));
    assert_eq!(param(&query, "account_id"), Some(account_id.as_str()));
    let got = receiver.wait_for(2, "account.reconnected").await;
    let event: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(event["type"], "account.reconnected", "{event}");
    assert_eq!(event["data"]["external_ref"], "crm-42");

    // Declined at TikTok: straight back with status=declined.
    let declined = create_link(
        &app,
        &key,
        json!({"external_ref": "crm-7", "return_url": format!("{HOST}/back")}),
    )
    .await;
    let started = pick(declined["url"].as_str().unwrap(), "tiktok").await;
    let consent = bare_client()
        .get(location(&started))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let callback = answer_tiktok_consent(&emulator, &consent, Some("link_bob"), "deny").await;
    let landed = bare_client().get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::SEE_OTHER);
    let query = query_of(&location(&landed));
    assert_eq!(param(&query, "status"), Some("declined"));
    assert_eq!(param(&query, "error"), Some("access_denied"));
    assert_eq!(param(&query, "external_ref"), Some("crm-7"));
    assert_eq!(param(&query, "account_id"), None);
}

/// The settings page keeps the list, and a refused line with everything typed.
async fn settings_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("studio").await;
    let typed = "https://crm.example.com\n\nhttps://crm.example.com/oops";
    let refused = me
        .client
        .post(app.url("/settings/allowed-origins"))
        .form(&[("csrf", me.csrf.as_str()), ("origins", typed)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Line 3: "), "{html}");
    assert!(
        html.contains("https://crm.example.com\n\nhttps://crm.example.com/oops</textarea>"),
        "what was typed is kept: {html}"
    );
    let saved = me
        .client
        .post(app.url("/settings/allowed-origins"))
        .form(&[
            ("csrf", me.csrf.as_str()),
            ("origins", "https://CRM.example.com\nhttp://localhost:3000/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let html = app.page_text(&me.client, "/settings").await;
    assert!(
        html.contains("https://crm.example.com\nhttp://localhost:3000</textarea>"),
        "{html}"
    );
}

both_backends!(
    origins_and_refusals,
    unusable_links,
    host_flow,
    settings_page
);

/// Instagram through a link: Facebook Login, the Page chooser (no tidepost session), back on
/// the host with the Instagram account; the same chooser sent again is a clear page.
async fn instagram_through_a_link(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Default::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().unwrap();
    let ws = workspace(&app, "Studio North").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    assert_eq!(
        put_origins(&app, &key, json!([HOST])).await.status(),
        StatusCode::OK
    );
    let link = create_link(
        &app,
        &key,
        json!({"platforms": ["instagram"], "external_ref": "crm-ig", "return_url": format!("{HOST}/back")}),
    )
    .await;
    let url = link["url"].as_str().unwrap();
    let (_, html) = open(url).await;
    assert!(!html.contains("value=\"tiktok\""), "{html}");
    let started = pick(url, "instagram:facebook").await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let callback = approve_facebook_dialog(&emulator, &location(&started)).await;
    let chooser = bare_client().get(&callback).send().await.unwrap();
    assert_eq!(chooser.status(), StatusCode::OK, "the Page chooser");
    let chooser = chooser.text().await.unwrap();
    let mut form = hidden_fields(&chooser);
    form.push((
        "page".into(),
        tidepost_emulator::meta::state::BUSINESS_PAGE_ID.into(),
    ));
    let chosen = bare_client()
        .post(app.url("/connect/instagram/choose"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    let query = query_of(&location(&chosen));
    assert_eq!(param(&query, "status"), Some("connected"));
    assert_eq!(param(&query, "external_ref"), Some("crm-ig"));
    let account_id = param(&query, "account_id").unwrap();
    let account: Value = app
        .api_get(&key, &format!("/api/v1/accounts/{account_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["platform"], "instagram");
    assert_eq!(
        account["provider_user_id"],
        tidepost_emulator::meta::state::BUSINESS_IG_ID
    );
    assert_eq!(account["external_ref"], "crm-ig");
    // The chooser sent again: its choice is spent.
    let again = bare_client()
        .post(app.url("/connect/instagram/choose"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    let html = again.text().await.unwrap();
    assert!(html.contains("This sign-in is over"), "{html}");
}

both_backends!(instagram_through_a_link);
