//! Class: no page a person can reach ends without a way back. Every error page a signed-in
//! person meets keeps the layout (the navigation, the sandbox banner, the sign-out form) and a
//! link onwards; signed out, the banner still shows. The pages come from the router itself:
//! every UI route that takes an id, asked for one that does not exist, and every UI form, sent
//! with a CSRF token that does not match.

use reqwest::StatusCode;

use crate::support::{Backend, both_backends, registered_routes, spawn_app};

/// Routes that answer machines, not people (API, provider callbacks and webhooks, signed media,
/// assets, health and metrics), and the account widget a host frames in its own page: they
/// have no layout to keep.
fn for_people(path: &str) -> bool {
    ![
        "/api/",
        "/webhooks/",
        "/media/",
        "/widget/",
        "/assets/",
        "/healthz",
        "/readyz",
        "/metrics",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix) || path == prefix.trim_end_matches('/'))
}

fn with_ids(template: &str) -> String {
    template
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                "no-such-thing"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn assert_layout(path: &str, status: StatusCode, html: &str, signed_in: bool) {
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{path}: {status} is not an error"
    );
    assert!(
        html.contains("class=\"banner\""),
        "{path} ({status}): the sandbox banner is missing:\n{html}"
    );
    assert!(
        html.contains("Back to the dashboard") || html.contains("href=\"/login"),
        "{path} ({status}): no way onwards:\n{html}"
    );
    if signed_in {
        for needle in ["class=\"nav\"", "href=\"/compose\"", "action=\"/logout\""] {
            assert!(
                html.contains(needle),
                "{path} ({status}): {needle} is missing from the error page:\n{html}"
            );
        }
    }
}

async fn error_pages_keep_the_layout(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let routes = registered_routes();
    let mut seen = 0;
    // Pages with an id: a missing one is a 404 in the layout.
    for route in routes
        .iter()
        .filter(|r| r.method == "GET" && r.template.contains('{') && for_people(&r.template))
    {
        let path = with_ids(&route.template);
        let response = me.client.get(app.url(&path)).send().await.unwrap();
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_layout(&path, status, &html, true);
        seen += 1;
    }
    // Forms sent with a token that does not match: refused in the layout. (A connect link's
    // page has no session form: its link is its token, and an unknown one is a page of its own
    // saying to ask the host for a new link, tested in `connect_links.rs`.)
    for route in routes
        .iter()
        .filter(|r| r.method == "POST" && for_people(&r.template))
        .filter(|r| {
            !["/login", "/setup", "/logout", "/connect/link/{token}"].contains(&r.template.as_str())
        })
    {
        let path = with_ids(&route.template);
        let response = me
            .client
            .post(app.url(&path))
            .header("referer", app.url("/settings"))
            .form(&[("csrf", "not-the-token")])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_layout(&path, status, &html, true);
        // Back to the form it came from, where the browser keeps what was typed.
        assert!(
            html.contains("href=\"/settings\" data-back>Go back</a>"),
            "{path} ({status}): no way back to the form:\n{html}"
        );
        seen += 1;
    }
    // Another site's page is not offered as the way back.
    let response = me
        .client
        .post(app.url("/settings/api-keys"))
        .header("referer", "https://elsewhere.example/form")
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(!html.contains("data-back"), "{html}");
    // A path no route has.
    let response = me
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_layout(
        "/no/such/page",
        status,
        &response.text().await.unwrap(),
        true,
    );
    assert!(seen >= 20, "only {seen} error pages were tried");
    // Signed out, the banner stays and the page points to sign in or the dashboard.
    let response = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_layout("/no/such/page (signed out)", status, &html, false);
    assert!(!html.contains("class=\"nav\""), "{html}");
}

both_backends!(error_pages_keep_the_layout);
