//! Operations: health, readiness, metrics, security headers, HSTS and cookie attributes.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap};
use serde_json::{Value, json};

use crate::support::*;

both_backends!(
    health_and_readiness,
    readiness_fails_until_migrated,
    cookies_and_hsts_over_plain_http,
    cookies_and_hsts_behind_https,
);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = bare_client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let response = bare_client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let database = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"], database, "{body}");
    assert_eq!(body["ffprobe"]["available"], true, "{body}");
    assert_eq!(body["storage"]["available"], true, "{body}");
    assert!(
        body["storage"]["at"]
            .as_str()
            .unwrap()
            .starts_with("local:"),
        "{body}"
    );
    assert!(
        body["ffprobe"]["version"]
            .as_str()
            .unwrap()
            .starts_with("ffprobe version"),
        "{body}"
    );
}

/// A missing ffprobe leaves the instance ready for everything but video uploads: `/readyz`
/// answers 200 with `"status": "degraded"` and says why, so monitoring can alert without a load
/// balancer taking the instance out of rotation.
#[tokio::test]
async fn readiness_reports_a_missing_ffprobe() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            env: vec![("TIDEPOST_FFPROBE_PATH", "/nonexistent/ffprobe".into())],
            ..Default::default()
        },
    )
    .await;
    let response = bare_client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"], "SQLite", "{body}");
    assert_eq!(body["ffprobe"]["available"], false, "{body}");
    let error = body["ffprobe"]["error"].as_str().unwrap();
    assert!(
        error.contains("/nonexistent/ffprobe") && error.contains("install ffmpeg"),
        "{body}"
    );
}

async fn readiness_fails_until_migrated(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            unmigrated: true,
            ..Options::default()
        },
    )
    .await;
    let response = bare_client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the process is up all the same"
    );
    let response = bare_client().get(app.url("/readyz")).send().await.unwrap();
    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE, "not-ready").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("run `tidepost migrate`"),
        "{body}"
    );
    app.db.migrate().await.unwrap();
    let response = bare_client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let key = app.api_key(&ws.id, "ci", &[]).await;
    let id = app.key_id(&key).await;
    bare_client().get(app.url("/healthz")).send().await.unwrap();
    app.api_get(&key, &format!("/api/v1/api-keys/{id}")).await;
    let response = bare_client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let counter_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tidepost_http_requests_total{"))
        .collect();
    assert!(
        counter_lines
            .iter()
            .any(|l| l.contains("route=\"/healthz\"") && l.contains("method=\"GET\"")),
        "{text}"
    );
    // Routes are labelled by template, never by the raw path with its id.
    assert!(
        counter_lines
            .iter()
            .any(|l| l.contains("route=\"/api/v1/api-keys/{id}\"")),
        "{text}"
    );
    assert!(!text.contains(&id), "an id leaked into the metrics");
    assert!(
        text.contains("tidepost_http_request_duration_seconds"),
        "{text}"
    );
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let expect = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ];
    for (name, value) in expect {
        assert_eq!(
            headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name} on {what}"
        );
    }
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("CSP on {what}"))
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

/// Signs in without a cookie jar (a jar would not send `Secure` cookies back over plain HTTP)
/// and returns the headers of the sign-in form and of the successful sign-in.
async fn sign_in_by_hand(app: &TestApp) -> (HeaderMap, HeaderMap) {
    app.create_user("ada@example.com", "acme").await;
    let http = bare_client();
    let form = http.get(app.url("/login")).send().await.unwrap();
    let form_headers = form.headers().clone();
    let csrf_cookie = set_cookie(&form_headers, "tidepost_login_csrf").expect("a CSRF cookie");
    let html = form.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = http
        .post(app.url("/login"))
        .header(
            COOKIE,
            format!("tidepost_login_csrf={}", cookie_value(&csrf_cookie)),
        )
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    (form_headers, response.headers().clone())
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

async fn cookies_and_hsts_over_plain_http(backend: Backend) {
    let app = spawn_app(backend).await;
    let (form, signed_in) = sign_in_by_hand(&app).await;
    assert_security_headers(&form, "the sign-in page");
    assert_security_headers(&signed_in, "the sign-in redirect");
    assert!(form.get("strict-transport-security").is_none());
    let session = set_cookie(&signed_in, "tidepost_session").unwrap();
    let attrs = attributes(&session);
    assert!(attrs.contains(&"httponly".into()), "{session}");
    assert!(attrs.contains(&"samesite=lax".into()), "{session}");
    assert!(attrs.contains(&"path=/".into()), "{session}");
    assert!(!attrs.contains(&"secure".into()), "{session}");
    let login = set_cookie(&form, "tidepost_login_csrf").unwrap();
    assert!(attributes(&login).contains(&"httponly".into()), "{login}");
    assert!(!attributes(&login).contains(&"secure".into()), "{login}");
    // API answers and problems carry the headers as well.
    let response = bare_client()
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_security_headers(response.headers(), "an API problem");
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

async fn cookies_and_hsts_behind_https(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            public_url: Some("https://posts.example.com".into()),
            ..Options::default()
        },
    )
    .await;
    let (form, signed_in) = sign_in_by_hand(&app).await;
    for (headers, what) in [
        (&form, "the sign-in page"),
        (&signed_in, "the sign-in redirect"),
    ] {
        assert_security_headers(headers, what);
        let hsts = headers
            .get("strict-transport-security")
            .unwrap_or_else(|| panic!("HSTS on {what}"))
            .to_str()
            .unwrap();
        assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
    }
    let session = set_cookie(&signed_in, "tidepost_session").unwrap();
    let attrs = attributes(&session);
    assert!(attrs.contains(&"secure".into()), "{session}");
    assert!(attrs.contains(&"httponly".into()), "{session}");
    assert!(attrs.contains(&"samesite=lax".into()), "{session}");
    let login = set_cookie(&form, "tidepost_login_csrf").unwrap();
    assert!(attributes(&login).contains(&"secure".into()), "{login}");
    let response = bare_client().get(app.url("/healthz")).send().await.unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_some()
    );
}
