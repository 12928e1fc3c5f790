//! Attacks on a running tidepost, each answered the safe way.
//!
//! - **CSRF** on every state-changing form and API route: the list is read from the routes
//!   registered in `crates/http/src` ([`registered_routes`]), so a new form is covered the day
//!   it is added. A forged form gets the 403 "form has expired" page before anything else is
//!   looked at (not even whether the id exists); a browser session calling the API without
//!   `X-CSRF-Token` gets a 403 problem.
//! - **Session fixation**: a session id planted before sign-in is never the one after it.
//! - **OAuth state** replay and mix-up between workspaces: refused, nothing connected.
//! - **Open redirects**: every redirect parameter (`next`) and every `Redirect::` in the code.
//! - **Oversize bodies** on every route: 413 (problem+json under `/api`), or the route never
//!   reads a body. Routes with their own, larger limit are listed in [`OWN_LIMITS`].
//! - **Path traversal** in media ids, asset names and upload file names.
//! - **Arbitrary bytes** to every API route that takes a body: a 4xx problem, never a 5xx.
//! - **Secrets** (passwords, sessions, API keys, OAuth states and codes, provider tokens, the
//!   keyring, webhook secrets) never reach the log of a real `tidepost serve` at debug level,
//!   its error pages or its API answers.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidepost_vault::secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The routes, read from the source.
// ---------------------------------------------------------------------------------------------

impl Route {
    fn is_api(&self) -> bool {
        self.template.starts_with("/api/")
    }

    /// The path with every placeholder replaced by a fresh id (no such object exists).
    fn path_with_fresh_ids(&self) -> String {
        let mut path = String::new();
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("a closed placeholder") + open;
            path.push_str(&tidepost_domain::new_id());
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        path
    }

    fn changes_state(&self) -> bool {
        self.method != "GET"
    }
}

/// UI routes that change state without the session's CSRF token, each with what protects it.
const NOT_SESSION_FORMS: &[(&str, &str)] = &[
    // The first-run form: its secret, single-use setup token is the CSRF protection.
    ("/setup", "setup token"),
    // Provider webhooks: verified by their signature (see the webhook tests).
    ("/webhooks/tiktok", "TikTok-Signature"),
    ("/webhooks/instagram", "X-Hub-Signature-256"),
    // A connect link's hosted page: for a creator with no session; the link's secret,
    // single-use token in the path is what makes the form unforgeable.
    ("/connect/link/{token}", "connect link token"),
    // The account widget's Reconnect, for a creator with no session inside a host's frame:
    // its form token is bound to the widget's signed token (tests/it/widget.rs refuses a
    // missing one, another widget's and a cross-site post).
    ("/widget/{id}/{token}/reconnect", "widget form token"),
];

#[test]
fn the_route_scanner_reads_handlers_and_nesting() {
    let source = r#"pub fn router() -> Router<HttpState> {
        Router::new()
            .route("/a/{id}", delete(revoke).get(show))
            .route("/b", get(list).post(create))
    }
    pub fn api_router() -> Router<HttpState> {
        Router::new().route("/c/{x}/go", post(go_get))
    }"#;
    let routes: Vec<_> = routes_in(source)
        .into_iter()
        .map(|(at, t, m)| (enclosing_fn(source, at).to_string(), t, m))
        .collect();
    assert_eq!(
        routes,
        vec![
            (
                "router".to_string(),
                "/a/{id}".to_string(),
                vec!["GET".to_string(), "DELETE".into()]
            ),
            (
                "router".into(),
                "/b".into(),
                vec!["GET".into(), "POST".into()]
            ),
            ("api_router".into(), "/c/{x}/go".into(), vec!["POST".into()]),
        ]
    );
    let route = Route {
        method: "POST".into(),
        template: "/x/{id}/y/{target}".into(),
    };
    let path = route.path_with_fresh_ids();
    assert!(!path.contains('{') && path.starts_with("/x/") && path.contains("/y/"));
}

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

both_backends!(
    every_state_changing_form_refuses_a_missing_or_foreign_csrf_token,
    every_state_changing_api_route_refuses_a_session_without_its_csrf_header,
    session_ids_planted_before_sign_in_are_never_kept,
    oauth_states_are_single_use_and_bound_to_their_session,
    no_redirect_parameter_leaves_the_site,
    every_route_limits_its_body,
    traversal_in_ids_names_and_file_names_reaches_no_file,
    secrets_never_reach_logs_pages_or_answers,
);

async fn every_state_changing_form_refuses_a_missing_or_foreign_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let other = app.signed_in("other").await;
    let key = app.api_key(&me.workspace.id, "watch", &[]).await;
    let forms: Vec<Route> = registered_routes()
        .into_iter()
        .filter(|r| r.changes_state() && !r.is_api())
        .filter(|r| !NOT_SESSION_FORMS.iter().any(|(p, _)| *p == r.template))
        .collect();
    assert!(forms.len() >= 8, "too few forms found: {forms:?}");
    for route in &forms {
        let path = route.path_with_fresh_ids();
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        // No token, an empty one, another session's token, and this session's token with a
        // character changed.
        let mut altered = me.csrf.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        for token in [
            None,
            Some(""),
            Some(other.csrf.as_str()),
            Some(altered.as_str()),
        ] {
            let mut form: Vec<(&str, &str)> = vec![("name", "forged"), ("login", "facebook")];
            if let Some(token) = token {
                form.push(("csrf", token));
            }
            let response = me
                .client
                .request(method.clone(), app.url(&path))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let html = response.text().await.unwrap();
            assert!(
                status == StatusCode::FORBIDDEN && html.contains("This form has expired"),
                "{} {} with csrf {token:?}: {status}\n{html}",
                route.method,
                route.template
            );
        }
    }
    // Nothing happened: the session lives, no key was made, the key was not revoked.
    let settings = me.client.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(settings.status(), StatusCode::OK, "still signed in");
    assert!(!settings.text().await.unwrap().contains("forged"));
    assert_eq!(
        app.api_get(&key, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    let accounts: Value = app
        .api_get(&key, "/api/v1/accounts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        accounts["data"].as_array().map(Vec::len),
        Some(0),
        "{accounts}"
    );

    // The exceptions are protected by what the table says: a setup post without the token
    // makes no user.
    let response = bare_client()
        .post(app.url("/setup"))
        .form(&[
            ("email", "intruder@evil.example"),
            ("password", PASSWORD),
            ("workspace", "evil"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        tidepost_store::users::by_email(&app.db, "intruder@evil.example")
            .await
            .unwrap()
            .is_none()
    );
}

async fn every_state_changing_api_route_refuses_a_session_without_its_csrf_header(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let other = app.signed_in("other").await;
    let routes: Vec<Route> = registered_routes()
        .into_iter()
        .filter(|r| r.changes_state() && r.is_api())
        .collect();
    assert!(routes.len() >= 8, "too few API routes found: {routes:?}");
    for route in &routes {
        let path = route.path_with_fresh_ids();
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        for header in [None, Some(""), Some(other.csrf.as_str())] {
            let mut request = me
                .client
                .request(method.clone(), app.url(&path))
                .json(&json!({"name": "forged"}));
            if let Some(value) = header {
                request = request.header("X-CSRF-Token", value);
            }
            let response = request.send().await.unwrap();
            let body = problem(response, StatusCode::FORBIDDEN, "forbidden").await;
            assert!(
                body["detail"].as_str().unwrap().contains("X-CSRF-Token"),
                "{} {}: {body}",
                route.method,
                route.template
            );
        }
    }
    // With its header the same session is let through (the refusal was the header).
    let response = me
        .client
        .post(app.url("/api/v1/api-keys"))
        .header("X-CSRF-Token", &me.csrf)
        .json(&json!({"name": "with the header"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------------
// Session fixation
// ---------------------------------------------------------------------------------------------

/// Signs in with a bare client sending `cookies` by hand; returns the new session cookie.
async fn sign_in_with_cookies(app: &TestApp, email: &str, cookies: &str) -> Option<String> {
    let page = bare_client()
        .get(app.url("/login"))
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap();
    let login_csrf = cookie_value(&set_cookie(page.headers(), "tidepost_login_csrf").unwrap());
    let html = page.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = bare_client()
        .post(app.url("/login"))
        .header(
            COOKIE,
            format!("{cookies}; tidepost_login_csrf={login_csrf}"),
        )
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(response.headers(), "tidepost_session").map(|c| cookie_value(&c))
}

async fn workspace_of_session(app: &TestApp, token: &str) -> Option<String> {
    let response = bare_client()
        .get(app.url("/api/v1/me"))
        .header(COOKIE, format!("tidepost_session={token}"))
        .send()
        .await
        .unwrap();
    if response.status() != StatusCode::OK {
        return None;
    }
    let me: Value = response.json().await.unwrap();
    me["workspace"]["slug"].as_str().map(str::to_string)
}

async fn session_ids_planted_before_sign_in_are_never_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("victim@acme.example", "acme").await;
    app.create_user("attacker@evil.example", "evil").await;

    // A made-up id planted in the victim's browser is replaced, and never becomes valid.
    let planted = "attacker-chosen-session-id-0000000000000000000";
    let issued = sign_in_with_cookies(
        &app,
        "victim@acme.example",
        &format!("tidepost_session={planted}"),
    )
    .await
    .expect("sign-in sets a session cookie");
    assert_ne!(issued, planted);
    assert_eq!(workspace_of_session(&app, planted).await, None);
    assert_eq!(
        workspace_of_session(&app, &issued).await.as_deref(),
        Some("acme")
    );

    // The attacker's own live session planted in the victim's browser: signing in issues a new
    // one, and the attacker's stays the attacker's (it never becomes the victim's).
    let attacker = sign_in_with_cookies(&app, "attacker@evil.example", "x=y")
        .await
        .unwrap();
    let victims = sign_in_with_cookies(
        &app,
        "victim@acme.example",
        &format!("tidepost_session={attacker}"),
    )
    .await
    .expect("a new session cookie");
    assert_ne!(victims, attacker);
    assert_eq!(
        workspace_of_session(&app, &attacker).await.as_deref(),
        Some("evil")
    );
    assert_eq!(
        workspace_of_session(&app, &victims).await.as_deref(),
        Some("acme")
    );

    // Each session has its own CSRF token.
    let page = |token: String| {
        let app = &app;
        async move {
            let html = bare_client()
                .get(app.url("/"))
                .header(COOKIE, format!("tidepost_session={token}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            hidden_input(&html, "csrf").unwrap()
        }
    };
    assert_ne!(page(issued).await, page(victims).await);
}

// ---------------------------------------------------------------------------------------------
// OAuth state
// ---------------------------------------------------------------------------------------------

/// Starts connecting TikTok as `who` and approves at the emulator: the callback URL.
async fn approved_callback(app: &TestApp, who: &SignedIn) -> String {
    let emulator = app.emulator.clone().unwrap();
    let start = who
        .client
        .post(app.url("/connect/tiktok"))
        .form(&[("csrf", who.csrf.as_str())])
        .send()
        .await
        .unwrap();
    let authorize = location(&start);
    assert!(authorize.starts_with(&emulator), "{authorize}");
    let consent = bare_client()
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("name=\"creator\" value=\""),
        "the consent page lists a creator"
    );
    let callback = approve_tiktok_consent(&emulator, &consent, None).await;
    assert!(
        callback.contains("code=") && callback.contains("state="),
        "{callback}"
    );
    callback
}

async fn account_count(app: &TestApp, workspace_id: &str) -> usize {
    tidepost_store::accounts::list(&app.db, workspace_id)
        .await
        .unwrap()
        .len()
}

async fn oauth_states_are_single_use_and_bound_to_their_session(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let a = app.signed_in("tenant-a").await;
    let b = app.signed_in("tenant-b").await;

    // Mix-up: A's approved callback opened in B's session is refused, and connects nothing
    // anywhere; the state is spent, so A cannot be tricked into finishing it later either.
    let callback = approved_callback(&app, &a).await;
    let response = b.client.get(&callback).send().await.unwrap();
    page_error(
        response,
        StatusCode::BAD_REQUEST,
        "started in another session or workspace",
    )
    .await;
    // Without any session (a link sent to someone else) it is refused the same way.
    let callback = approved_callback(&app, &a).await;
    let response = bare_client().get(&callback).send().await.unwrap();
    page_error(
        response,
        StatusCode::BAD_REQUEST,
        "started in another session or workspace",
    )
    .await;
    assert_eq!(account_count(&app, &a.workspace.id).await, 0);
    assert_eq!(account_count(&app, &b.workspace.id).await, 0);

    // The rightful session connects once; replaying the same callback is refused, in the same
    // session and in another.
    let callback = approved_callback(&app, &a).await;
    let response = a.client.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/accounts/"));
    assert_eq!(account_count(&app, &a.workspace.id).await, 1);
    for who in [&a, &b] {
        let response = who.client.get(&callback).send().await.unwrap();
        page_error(response, StatusCode::BAD_REQUEST, "already used").await;
    }
    assert_eq!(account_count(&app, &a.workspace.id).await, 1);
    assert_eq!(account_count(&app, &b.workspace.id).await, 0);

    // A state that was never issued, an empty one, and one with the right shape but made up.
    let base = callback.split('?').next().unwrap().to_string();
    let made_up = tidepost_app::access::random_token();
    for state in ["", "forged", made_up.as_str()] {
        let response = a
            .client
            .get(&base)
            .query(&[("code", "stolen-code"), ("state", state)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "state {state:?}"
        );
    }
    assert_eq!(account_count(&app, &a.workspace.id).await, 1);
}

/// Query strings an OAuth callback may be sent: the real parameters with hostile values, unknown
/// ones, repeated ones, and bytes that are no query at all.
fn callback_queries() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("code".to_string()),
        Just("state".to_string()),
        Just("scopes".to_string()),
        Just("error".to_string()),
        Just("error_description".to_string()),
        "[a-z_.]{1,8}",
    ];
    let value = prop_oneof![
        ".{0,40}".prop_map(|v| url::form_urlencoded::byte_serialize(v.as_bytes()).collect()),
        "[A-Za-z0-9%&=+._~-]{0,40}",
        Just("%".to_string()),
        Just("%zz".to_string()),
        Just("%00".to_string()),
        Just("access_denied".to_string()),
    ];
    prop_oneof![
        3 => prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
            pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
        }),
        1 => "[ -~]{0,60}".prop_map(|raw| raw.replace(['#', ' '], "")),
    ]
}

/// Any query on either OAuth callback is refused with a 4xx (a page, never a 5xx) and
/// connects nothing, signed in or not.
#[tokio::test]
async fn oauth_callbacks_refuse_any_query_and_connect_nothing() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("acme").await;
    let mut runner = TestRunner::new(ProptestConfig::default());
    let queries = callback_queries();
    for case in 0..FUZZ_CASES * 2 {
        let query = queries.new_tree(&mut runner).unwrap().current();
        for path in [
            "/oauth/tiktok/callback",
            "/oauth/instagram/callback",
            "/oauth/threads/callback",
        ] {
            let target = format!("{}{path}?{query}", app.base);
            let Ok(target) = reqwest::Url::parse(&target) else {
                continue;
            };
            let client = if case % 2 == 0 {
                &me.client
            } else {
                &app.client
            };
            let response = client.get(target).send().await.unwrap();
            let status = response.status();
            assert!(
                status.is_client_error(),
                "{path}?{query}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
    }
    assert_eq!(account_count(&app, &me.workspace.id).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Open redirects
// ---------------------------------------------------------------------------------------------

/// Values of a redirect parameter that must never send anyone off the site (or break the page).
const HOSTILE_TARGETS: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "////evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    " //evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nLocation: https://evil.example",
    "/\u{0}evil",
    "/\u{b}/evil.example",
    "/\u{7f}",
    "/\u{85}evil",
    "/login",
    "/logout",
];

async fn no_redirect_parameter_leaves_the_site(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    // The percent-encoded spellings arrive decoded, and double-encoded ones stay paths.
    let encoded = [
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%252F%252Fevil.example",
        "%2F%09%2Fevil.example",
        "%2f%2F%2Fevil.example",
    ];
    let mut targets: Vec<String> = HOSTILE_TARGETS.iter().map(|t| t.to_string()).collect();
    for raw in encoded {
        let decoded: String = url::form_urlencoded::parse(format!("next={raw}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        targets.push(decoded);
    }
    for next in &targets {
        // The form never carries a hostile value…
        let response = app
            .client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        // (An address holding %00 is refused outright.)
        if response.status() != StatusCode::BAD_REQUEST || !next.contains('\0') {
            assert_eq!(response.status(), StatusCode::OK, "{next:?}");
            let page = response.text().await.unwrap();
            assert_eq!(
                hidden_input(&page, "next").as_deref(),
                Some("/"),
                "{next:?}"
            );
        }
        // …and a forged post lands on the dashboard, never a 500 or another site (a NUL in a
        // form field is refused outright too, like any text field's: a 400 and no redirect).
        let client = client();
        let response = app
            .sign_in(&client, "ada@example.com", PASSWORD, next)
            .await;
        if next.contains('\0') {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{next:?}");
            continue;
        }
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&response), "/", "{next:?}");
    }
    // A path on the site is kept, with its query.
    let client = client();
    let response = app
        .sign_in(
            &client,
            "ada@example.com",
            PASSWORD,
            "/posts?after=x&y=%2F%2F",
        )
        .await;
    assert_eq!(location(&response), "/posts?after=x&y=%2F%2F");
    // The sign-in redirect of a page carries only this site's path.
    let response = app
        .client
        .get(app.url("//evil.example/settings"))
        .send()
        .await
        .unwrap();
    if let Some(target) = response.headers().get("location") {
        let target = target.to_str().unwrap();
        assert!(
            target.starts_with('/') && !target.starts_with("//"),
            "{target}"
        );
    }
}

/// Arguments of `Redirect::…(…)` in `crates/http/src` that are not a literal path on this site,
/// with why each is safe. A new dynamic redirect fails [`every_redirect_in_the_code_is_reviewed`]
/// until it is reviewed and listed here.
const DYNAMIC_REDIRECTS: &[(&str, &str)] = &[
    // The provider's authorize URL, built from the configured provider base URL.
    ("ui/accounts.rs", "&url"),
    ("instagram.rs", "&url"),
    // `/login?next=<this request's own path, percent-encoded>`, only when `safe_next` passes.
    ("auth.rs", "&target"),
    // The sign-in form's `next`, through `safe_next`.
    ("ui/session.rs", "safe_next(&form.next).unwrap_or(\"/\")"),
    // A connect link: the provider's authorize URL (as above), and the host's `return_url`,
    // whose origin was checked against the workspace's allowed origins when the link was made.
    ("connect_links.rs", "&url"),
    ("connect_links.rs", "&connect_links::return_url(&link)"),
    // A moved post goes back to the calendar page it was moved from: `return_to` through
    // `safe_next` and only under `/calendar`, else the post's own page.
    (
        "ui/compose.rs",
        "back.as_deref().unwrap_or(&format!(\"/posts/{id}\"))",
    ),
];

#[test]
fn every_redirect_in_the_code_is_reviewed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/http/src");
    let mut stack = vec![root.clone()];
    let mut unreviewed = Vec::new();
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let file = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let source = std::fs::read_to_string(&path).unwrap();
            for constructor in [
                "Redirect::to(",
                "Redirect::temporary(",
                "Redirect::permanent(",
            ] {
                for (at, _) in source.match_indices(constructor) {
                    seen += 1;
                    let rest = &source[at + constructor.len()..];
                    let mut depth = 1;
                    let end = rest
                        .char_indices()
                        .find(|&(_, c)| {
                            match c {
                                '(' => depth += 1,
                                ')' => depth -= 1,
                                _ => {}
                            }
                            depth == 0
                        })
                        .map_or(rest.len(), |(i, _)| i);
                    let argument: String = rest[..end].split_whitespace().collect();
                    let argument = argument.as_str();
                    let literal_path = argument.len() > 2
                        && argument.starts_with("\"/")
                        && !argument.starts_with("\"//")
                        && argument.ends_with('"')
                        && !argument[1..argument.len() - 1].contains('"');
                    let formatted_path = argument.starts_with("&format!(\"/")
                        && !argument.starts_with("&format!(\"//");
                    let reviewed = DYNAMIC_REDIRECTS
                        .iter()
                        .any(|(f, a)| *f == file && *a == argument);
                    if !(literal_path || formatted_path || reviewed) {
                        unreviewed.push(format!("{file}: {constructor}{argument})"));
                    }
                }
            }
        }
    }
    assert!(seen >= 5, "the scan found only {seen} redirects");
    assert!(
        unreviewed.is_empty(),
        "redirects to a computed target: check they cannot leave the site, then list them in \
         DYNAMIC_REDIRECTS: {unreviewed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Outbound requests (SSRF)
// ---------------------------------------------------------------------------------------------

/// Files of `crates/app/src`, `crates/http/src` and `src` allowed to build an HTTP client, and
/// why each cannot be pointed at an address a user chose. Media URLs people give tidepost are
/// never fetched by it (TikTok and Meta fetch them); URLs tenants type in (outbound webhooks) go
/// through `net_guard`, whose client checks every address it connects to.
const OUTBOUND_CLIENTS: &[(&str, &str)] = &[
    (
        "crates/app/src/providers.rs",
        "provider API clients on the operator's configured base URLs",
    ),
    (
        "crates/app/src/net_guard.rs",
        "the SSRF guard's own client (resolver checks every address, no redirects)",
    ),
    (
        "src/cli/serve.rs",
        "configures the in-process sandbox emulator at its own local address",
    ),
    (
        "crates/app/src/media/s3.rs",
        "object_store's S3 client on the operator's configured bucket and endpoint",
    ),
    (
        "crates/app/src/media/s3_server.rs",
        "tests only (feature `testing`): makes buckets on the moto server a test started on loopback",
    ),
];

#[test]
fn only_reviewed_code_makes_outbound_requests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let needles = [
        "reqwest::Client",
        "reqwest::get(",
        "reqwest::ClientBuilder",
        "http_client()",
        "hyper::client",
        "TcpStream::connect",
    ];
    let mut found = Vec::new();
    let mut stack: Vec<_> = ["crates/app/src", "crates/http/src", "src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let file = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if needles.iter().any(|n| source.contains(n)) {
                found.push(file);
            }
        }
    }
    assert!(
        found.iter().any(|f| f == "crates/app/src/providers.rs"),
        "the scan found no HTTP client at all: {found:?}"
    );
    let unreviewed: Vec<_> = found
        .iter()
        .filter(|f| !OUTBOUND_CLIENTS.iter().any(|(allowed, _)| allowed == f))
        .collect();
    assert!(
        unreviewed.is_empty(),
        "code that builds an HTTP client: requests to a URL a user chose must go through \
         crates/app/src/net_guard.rs; then list the file in OUTBOUND_CLIENTS with why: \
         {unreviewed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Oversize bodies
// ---------------------------------------------------------------------------------------------

/// Routes with a limit of their own, larger than the default, each tested with a body over it
/// by [`every_route_limits_its_body`].
const OWN_LIMITS: &[(&str, &str)] = &[
    // Multipart uploads up to `max_upload_bytes` (streamed to disk); JSON at the default.
    ("POST", "/api/v1/posts"),
];

async fn every_route_limits_its_body(backend: Backend) {
    const MAX_UPLOAD: usize = 1024 * 1024;
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            env: vec![("TIDEPOST_MAX_UPLOAD_BYTES", MAX_UPLOAD.to_string())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("acme").await;
    let key = app
        .api_key(&me.workspace.id, "big", &["api", "worker"])
        .await;
    let oversize = vec![b'a'; tidepost_http::DEFAULT_BODY_LIMIT + 1024];
    for route in registered_routes().iter().filter(|r| r.changes_state()) {
        let what = format!("{} {}", route.method, route.template);
        let path = route.path_with_fresh_ids();
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let send = |body: Vec<u8>| {
            let request = if route.is_api() {
                bare_client()
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(&key)
                    .header(CONTENT_TYPE, "application/json")
            } else {
                me.client
                    .request(method.clone(), app.url(&path))
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            };
            request.body(body).send()
        };
        let empty = send(Vec::new()).await.unwrap().status();
        // A server that refuses to read the rest of a body may close the connection while the
        // client is still sending it: that is a refusal too.
        let Ok(response) = send(oversize.clone()).await else {
            continue;
        };
        let status = response.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            if route.is_api() {
                problem(response, status, "too-large").await;
            }
            continue;
        }
        // Otherwise the route must never have read the body: it refused before reading one (the
        // ids are fresh, a required header is missing…), and says the same whatever the body.
        let text = response.text().await.unwrap_or_default();
        assert!(
            status == empty && !status.is_server_error(),
            "{what}: an oversize body got {status} (an empty one {empty}), not 413: {text}"
        );
        assert!(
            !OWN_LIMITS.contains(&(route.method.as_str(), route.template.as_str())),
            "{what} has its own limit and must refuse an oversize JSON body with 413"
        );
    }
    // The upload route: a multipart file over max_upload_bytes is 413, and nothing is kept.
    let video = tidepost_app::media::testing::video(MAX_UPLOAD + 1, "big");
    let part = reqwest::multipart::Part::bytes(video)
        .file_name("big.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("account_id", "none")
        .part("file", part);
    let response = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::PAYLOAD_TOO_LARGE, "too-large").await;
}

// ---------------------------------------------------------------------------------------------
// Path traversal
// ---------------------------------------------------------------------------------------------

const TRAVERSALS: &[&str] = &[
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "..%2f..%2fCargo.toml",
    "%2e%2e%2f%2e%2e%2fCargo.toml",
    "..%5C..%5CCargo.toml",
    "....%2F%2F....%2F%2Fetc%2Fpasswd",
    "%00",
    "Cargo.toml%00.png",
    "%2Fetc%2Fpasswd",
];

async fn traversal_in_ids_names_and_file_names_reaches_no_file(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let key = app.api_key(&me.workspace.id, "paths", &[]).await;
    for bad in TRAVERSALS {
        for path in [
            format!("/media/{bad}/token"),
            format!("/media/x/{bad}"),
            format!("/assets/{bad}"),
        ] {
            let response = bare_client().get(app.url(&path)).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                matches!(status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
                "{path}: {status}"
            );
            assert!(
                !body.contains("root:") && !body.contains("[package]"),
                "{path}"
            );
        }
        for path in [
            format!("/api/v1/posts/{bad}"),
            format!("/api/v1/accounts/{bad}"),
            format!("/api/v1/jobs/{bad}"),
            format!("/api/v1/api-keys/{bad}"),
        ] {
            let response = app.api_get(&key, &path).await;
            let status = response.status();
            assert!(status.is_client_error(), "{path}: {status}");
            let content_type = response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(content_type, "application/problem+json", "{path}");
        }
        let response = me
            .client
            .get(app.url(&format!("/posts/{bad}")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "/posts/{bad}");
    }
    // An upload named like a path is stored by its content hash under the media folder.
    let video = tidepost_app::media::testing::video(4096, "traversal");
    let part = reqwest::multipart::Part::bytes(video)
        .file_name("../../../../../tmp/tidepost-traversal.mp4")
        .mime_str("video/mp4")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("account_id", tidepost_domain::new_id())
        .part("file", part);
    let response = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(!Path::new("/tmp/tidepost-traversal.mp4").exists());
    let mut conn = app.db.pool().acquire().await.unwrap();
    let paths: Vec<String> = sqlx::query_scalar("SELECT storage_path FROM media")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    for stored in paths {
        assert!(
            stored.starts_with("media/") && !stored.contains(".."),
            "{stored}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bytes to the API
// ---------------------------------------------------------------------------------------------

/// Requests per route: small, each is a real HTTP round trip.
const FUZZ_CASES: u32 = 48;

fn fuzz_bodies() -> impl Strategy<Value = Vec<u8>> {
    let json_leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::from),
        Just(Value::from("https://127.0.0.1/x.mp4")),
        Just(Value::from(tidepost_domain::new_id())),
    ];
    let key = prop_oneof![
        "[a-z_]{1,12}",
        Just("name".to_string()),
        Just("account_id".to_string()),
        Just("media_url".to_string()),
        Just("instagram".to_string()),
        Just("scopes".to_string()),
        Just("login".to_string()),
        Just("items".to_string()),
        Just("photo_urls".to_string()),
        Just("mode".to_string()),
    ];
    let json = json_leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        3 => json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => "[{}\\[\\]\":,0-9a-z ]{0,64}".prop_map(String::into_bytes),
        1 => (1usize..5_000).prop_map(|depth| {
            let mut b = vec![b'['; depth];
            b.extend(vec![b']'; depth]);
            b
        }),
        1 => Just(b"{\"name\": \"\\u0000\\ud800\"}".to_vec()),
        1 => Just(b"{\"name\": 1e999999}".to_vec()),
    ]
}

fn fuzz_content_types() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just("application/json"),
        1 => Just("application/json; charset=utf-16"),
        1 => Just("text/plain"),
        1 => Just("multipart/form-data"),
        1 => Just("multipart/form-data; boundary=x"),
        1 => Just("application/x-www-form-urlencoded"),
    ]
}

#[tokio::test]
async fn arbitrary_bytes_to_every_api_route_are_problems_never_5xx() {
    // With the emulator, so that every provider is configured (a 503 "not configured" is no
    // parser's answer).
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("fuzz@acme.example", "acme").await;
    let key = app.api_key(&workspace.id, "fuzz", &["api", "worker"]).await;
    let routes: Vec<Route> = registered_routes()
        .into_iter()
        .filter(|r| r.is_api() && r.changes_state())
        .collect();
    let mut runner = TestRunner::new(ProptestConfig::default());
    let strategy = (fuzz_bodies(), fuzz_content_types());
    for route in &routes {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        for _ in 0..FUZZ_CASES {
            let (body, content_type) = strategy.new_tree(&mut runner).unwrap().current();
            let path = route.path_with_fresh_ids();
            let response = bare_client()
                .request(method.clone(), app.url(&path))
                .bearer_auth(&key)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            assert!(
                !status.is_server_error(),
                "{} {} ({content_type}) {shown:?}: {status} {}",
                route.method,
                route.template,
                response.text().await.unwrap_or_default()
            );
            if status.is_client_error() {
                let ct = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                assert_eq!(
                    ct, "application/problem+json",
                    "{} {} ({content_type}) {shown:?}: {status}",
                    route.method, route.template
                );
                let problem: Value = response.json().await.expect("a JSON problem");
                assert_eq!(problem["status"], status.as_u16());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets in logs, pages and answers
// ---------------------------------------------------------------------------------------------

/// The built binary in `dir`, with none of the test environment's tidepost variables.
fn tidepost(dir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidepost"));
    command.current_dir(dir).kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("TIDEPOST_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Every response body the test saw, to scan for secrets (the one-time displays excepted).
#[derive(Default)]
struct Seen {
    bodies: Vec<(String, String)>,
}

impl Seen {
    async fn keep(&mut self, what: &str, response: reqwest::Response) -> (StatusCode, String) {
        let status = response.status();
        let mut text = format!("{:?}\n", response.headers());
        text.push_str(&response.text().await.unwrap_or_default());
        self.bodies.push((what.to_string(), text.clone()));
        (status, text)
    }
}

async fn secrets_never_reach_logs_pages_or_answers(backend: Backend) {
    let dir = tempfile::TempDir::new().unwrap();
    let (db_url, _db_dir) = unmigrated_db(backend).await;
    let keys = tidepost_vault::Keyring::generate_key_text()
        .expose_secret()
        .to_string();
    let password = format!("pw-{}", tidepost_app::access::random_token());
    let wrong_password = format!("wrong-{}", tidepost_app::access::random_token());
    let env = [
        ("TIDEPOST_KEYS", keys.as_str()),
        ("TIDEPOST_LOG", "debug"),
        ("TIDEPOST_DATABASE_URL", db_url.as_str()),
    ];

    // The first user, with the password on standard input.
    let mut create = tidepost(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "ada@acme.example",
            "--workspace",
            "acme",
            "--password-stdin",
        ])
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = create.stdin.take().unwrap();
    stdin.write_all(password.as_bytes()).await.unwrap();
    drop(stdin);
    let created = create.wait_with_output().await.unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mut logs = String::from_utf8_lossy(&created.stdout).into_owned();
    logs.push_str(&String::from_utf8_lossy(&created.stderr));

    // `tidepost serve --sandbox` at debug level, its output captured.
    let mut child = tidepost(dir.path())
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let mut base = None;
    let mut emulator = None;
    while base.is_none() || emulator.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("serve starts")
            .unwrap()
            .expect("serve prints its address");
        if let Some(rest) = line.strip_prefix("tidepost is listening on ") {
            base = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("Sandbox: TikTok and Instagram are emulated at ") {
            emulator = rest.split_whitespace().next().map(str::to_string);
        }
        stdout.push(line);
    }
    let stdout_task = tokio::spawn(async move {
        let mut rest = stdout;
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    let base = base.unwrap();
    let emulator = emulator.unwrap();
    let url = |path: &str| format!("{base}{path}");
    let mut seen = Seen::default();
    let mut secrets: Vec<(&str, String)> = vec![
        ("the password", password.clone()),
        ("a wrong password", wrong_password.clone()),
    ];
    for entry in keys.split([',', '\n']) {
        if let Some((_, material)) = entry.split_once(':') {
            secrets.push(("the keyring's key material", material.trim().to_string()));
        }
    }
    secrets.push((
        "the sandbox TikTok client secret",
        "sandbox-tiktok-client-secret".into(),
    ));

    // A wrong password, then the right one.
    let browser = client();
    let page = browser.get(url("/login")).send().await.unwrap();
    let html = page.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = browser
        .post(url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ada@acme.example"),
            ("password", wrong_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, _) = seen.keep("wrong password", response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let html = browser
        .get(url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = browser
        .post(url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ada@acme.example"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let session = cookie_value(&set_cookie(response.headers(), "tidepost_session").unwrap());
    secrets.push(("the session cookie", session.clone()));
    let html = browser
        .get(url("/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_input(&html, "csrf").unwrap();
    // Pages carry the CSRF token in their forms by design: it is looked for in the log only.
    let log_only = [csrf.clone()];

    // An API key from the UI (shown once on that page) and one from the API (in that answer).
    // The form answers 303 and the page it leads to shows the key (post/redirect/get).
    let response = browser
        .post(url("/settings/api-keys"))
        .form(&[("csrf", csrf.as_str()), ("name", "ui key")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let created = browser
        .get(url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ui_key = created
        .split("<code")
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(_, v)| v))
        .filter_map(|v| v.split('<').next())
        .find(|v| v.len() >= 32 && !v.contains(' '))
        .unwrap_or_else(|| panic!("the new key is shown once: {created}"))
        .to_string();
    secrets.push(("an API key made in the UI", ui_key.clone()));
    let response = bare_client()
        .post(url("/api/v1/api-keys"))
        .bearer_auth(&ui_key)
        .json(&json!({"name": "api key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let api_made: Value = response.json().await.unwrap();
    let api_key = api_made["secret"]
        .as_str()
        .or_else(|| api_made["key"].as_str())
        .unwrap_or_else(|| panic!("the new key is in the answer: {api_made}"))
        .to_string();
    secrets.push(("an API key made through the API", api_key.clone()));
    // A guessed key is not repeated back.
    let guessed = format!("tp_{}", tidepost_app::access::random_token());
    secrets.push(("a guessed API key", guessed.clone()));
    let response = bare_client()
        .get(url("/api/v1/me"))
        .bearer_auth(&guessed)
        .send()
        .await
        .unwrap();
    let (status, _) = seen.keep("guessed key", response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Connect TikTok through the sandbox emulator: the state and code travel in URLs.
    let start = browser
        .post(url("/connect/tiktok"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let mut next = location(&start);
    let state = url::Url::parse(&next)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("the authorize URL has a state");
    secrets.push(("the OAuth state", state));
    // The emulator approves at once in sandbox mode, or shows its consent form.
    let mut callback = None;
    for _ in 0..5 {
        if next.starts_with(&base) {
            callback = Some(next.clone());
            break;
        }
        let response = bare_client().get(&next).send().await.unwrap();
        if response.status().is_redirection() {
            next = location(&response);
            continue;
        }
        let consent = response.text().await.unwrap();
        next = approve_tiktok_consent(&emulator, &consent, None).await;
    }
    let callback = callback.expect("the emulator sends the person back");
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    secrets.push(("the OAuth code", code));
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "connected");
    // Replaying it shows an error page (which must not repeat the code either).
    let response = browser.get(&callback).send().await.unwrap();
    let (status, _) = seen.keep("replayed callback", response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The provider tokens, as stored (encrypted) and as they really are.
    let db = tidepost_store::Db::connect(&db_url).await.unwrap();
    let keyring = tidepost_vault::Keyring::parse(&keys).unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, access_token, refresh_token FROM accounts")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    assert_eq!(rows.len(), 1, "one account connected");
    for (id, access, refresh) in &rows {
        let aad = tidepost_vault::Aad::new(tidepost_store::accounts::TABLE, id, "access_token");
        let token = keyring.decrypt_str(access, &aad).unwrap();
        secrets.push(("a provider access token", token.expose_secret().to_string()));
        secrets.push(("an access token envelope", access.clone()));
        if let Some(refresh) = refresh {
            let aad =
                tidepost_vault::Aad::new(tidepost_store::accounts::TABLE, id, "refresh_token");
            let token = keyring.decrypt_str(refresh, &aad).unwrap();
            secrets.push((
                "a provider refresh token",
                token.expose_secret().to_string(),
            ));
        }
    }
    db.close().await;

    // Every API answer that lists things (never the secrets of what it lists).
    for path in [
        "/api/v1/me",
        "/api/v1/accounts",
        "/api/v1/api-keys",
        "/api/v1/jobs",
    ] {
        let response = bare_client()
            .get(url(path))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap();
        let (status, _) = seen.keep(path, response).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let accounts: Value = serde_json::from_str(
        &bare_client()
            .get(url("/api/v1/accounts"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let account_id = accounts["data"][0]["id"].as_str().unwrap().to_string();
    for path in [
        "/".to_string(),
        "/accounts".to_string(),
        format!("/accounts/{account_id}"),
        "/settings".to_string(),
        "/jobs".to_string(),
    ] {
        let response = browser.get(url(&path)).send().await.unwrap();
        let (status, _) = seen.keep(&path, response).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let response = bare_client()
        .get(url(&format!("/api/v1/accounts/{account_id}")))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    seen.keep("the account", response).await;
    // A forged webhook and a bad sign-in form: their refusals name no secret.
    let response = bare_client()
        .post(url("/webhooks/tiktok"))
        .header("TikTok-Signature", "t=1,s=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    seen.keep("forged webhook", response).await;
    // Disconnecting revokes at the emulator with the token: that request is logged too.
    let response = bare_client()
        .delete(url(&format!("/api/v1/accounts/{account_id}")))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    seen.keep("disconnect", response).await;

    // Stop the server and read everything it wrote.
    let pid = child.id().expect("still running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("serve stops")
        .unwrap();
    logs.push_str(&stderr.await.unwrap());
    for line in stdout_task.await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
    }
    assert!(
        logs.lines().count() > 20,
        "debug logging produced almost nothing: {logs}"
    );
    assert!(logs.contains("DEBUG") || logs.contains("debug"), "{logs}");

    secrets.push(("the session's CSRF token", csrf.clone()));
    for (what, secret) in &secrets {
        assert!(
            secret.len() >= 8,
            "{what} is too short to scan for: {secret}"
        );
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!("{what} is in the log: {line}");
        }
        for (page, text) in seen.bodies.iter().filter(|_| !log_only.contains(secret)) {
            assert!(
                !text.contains(secret.as_str()),
                "{what} is in the answer to {page}: {text}"
            );
        }
    }
}
