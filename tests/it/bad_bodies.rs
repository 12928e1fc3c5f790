//! Bad bodies are the client's fault: every route that takes a body (every POST, PUT and PATCH
//! registered in `crates/http/src`, the API's, the pages' forms, webhooks ingress, OAuth and
//! tus) is fed a truncated multipart body, truncated JSON, a wrong content type, a body shorter
//! than its `Content-Length` (the connection half-closed), invalid UTF-8 and a huge field; none
//! answers 5xx and none logs an ERROR line.

use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::support::*;

/// ERROR events, with the thread they were logged on (each test's server runs on its own
/// current-thread runtime, so a test reads only its own).
static ERRORS: OnceLock<Mutex<Vec<(ThreadId, String)>>> = OnceLock::new();

struct Capture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() != tracing::Level::ERROR {
            return;
        }
        let mut text = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                text.push_str(&format!("{}={value:?} ", field.name()));
            },
        );
        ERRORS
            .get_or_init(Default::default)
            .lock()
            .unwrap()
            .push((std::thread::current().id(), text));
    }
}

/// Starts recording ERROR events (once per process).
pub fn capture_errors() {
    ERRORS.get_or_init(Default::default);
    let _ = tracing_subscriber::registry()
        .with(Capture.with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .try_init();
}

/// The ERROR lines logged on this thread so far.
pub fn errors_here() -> Vec<String> {
    let me = std::thread::current().id();
    ERRORS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .iter()
        .filter(|(thread, _)| *thread == me)
        .map(|(_, text)| text.clone())
        .collect()
}

/// A route's path with its placeholders filled (`{id}` → an id that does not exist).
pub fn concrete(template: &str, upload: &str) -> String {
    if template == "/api/v1/uploads/{id}" {
        return template.replace("{id}", upload);
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str("nosuchid0");
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// The bodies every route is fed: (what, content type, bytes).
fn bad_bodies() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut huge = b"{\"caption\": \"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    huge.extend(b"\"}");
    let mut huge_form = b"csrf=x&caption=".to_vec();
    huge_form.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    vec![
        (
            "truncated multipart",
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n\r\n\x00\x00\x00\x18ftypmp42 partial".to_vec(),
        ),
        (
            "multipart without a boundary",
            "multipart/form-data",
            b"--XyZ\r\n".to_vec(),
        ),
        (
            "truncated JSON",
            "application/json",
            b"{\"caption\": \"abc".to_vec(),
        ),
        ("wrong content type", "text/plain", b"caption=hello".to_vec()),
        (
            "JSON sent as XML",
            "application/xml",
            b"{\"caption\": \"abc\"}".to_vec(),
        ),
        (
            "invalid UTF-8 JSON",
            "application/json",
            b"{\"caption\": \"\xff\xfe\xc3\"}".to_vec(),
        ),
        (
            "invalid UTF-8 form",
            "application/x-www-form-urlencoded",
            b"csrf=%FF%FE&caption=\xff\xfe".to_vec(),
        ),
        ("huge JSON field", "application/json", huge),
        ("huge form field", "application/x-www-form-urlencoded", huge_form),
        (
            "tus bytes, cut",
            "application/offset+octet-stream",
            vec![7u8; 10],
        ),
    ]
}

/// Sends a request whose body is shorter than its `Content-Length` and half-closes the
/// connection; the status line of the answer, or `None` when the server closed without one
/// (a 499-style closure, which is fine).
pub async fn short_body(
    base: &str,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
) -> Option<u16> {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 10]).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "{method} {path}: the server hung on a short body"
    );
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

both_backends!(bad_bodies_never_answer_5xx);

async fn bad_bodies_never_answer_5xx(backend: Backend) {
    capture_errors();
    // The providers configured (the emulator), so connect routes read their bodies instead of
    // answering that the provider is not set up (a 503 that is not about the body).
    let app = spawn_app_with(backend, Options::emulated()).await;
    let me = app.signed_in("bodies").await;
    let key = app.api_key(&me.workspace.id, "bodies", &[]).await;
    let http = bare_client();
    // A real upload, so the tus PATCH reads its body.
    let created = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let upload = created.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let routes: Vec<Route> = registered_routes()
        .into_iter()
        .filter(|r| ["POST", "PUT", "PATCH"].contains(&r.method.as_str()))
        .collect();
    for needed in [
        "/api/v1/posts",
        "/api/v1/media",
        "/compose",
        "/webhooks/tiktok",
    ] {
        assert!(
            routes.iter().any(|r| r.template == needed),
            "{needed} is not among {routes:?}"
        );
    }
    // Every operation of the OpenAPI document that takes a body is among them.
    let doc: serde_json::Value = app
        .api_get(&key, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let mut documented = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            documented += 1;
            let method = method.to_uppercase();
            assert!(
                routes
                    .iter()
                    .any(|r| r.method == method && &r.template == template),
                "{method} {template} takes a body in the OpenAPI document but was not found among the routes"
            );
        }
    }
    assert!(documented > 10, "only {documented} bodies documented");
    let mut failures = Vec::new();
    for route in &routes {
        let path = concrete(&route.template, &upload);
        let api = path.starts_with("/api/");
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        for (what, content_type, body) in bad_bodies() {
            let client = if api { &http } else { &me.client };
            let mut request = client
                .request(method.clone(), app.url(&path))
                .header(CONTENT_TYPE, content_type)
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", "0")
                .body(body);
            if api {
                request = request.bearer_auth(&key);
            }
            let answer = request.send().await.unwrap();
            if answer.status().is_server_error() {
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                failures.push(format!("{} {path} ({what}): {status} {text}", route.method));
            }
        }
        for content_type in [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=XyZ",
            "application/offset+octet-stream",
            "video/mp4",
        ] {
            let auth = format!("Bearer {key}");
            let headers: Vec<(&str, &str)> = if api {
                vec![
                    ("Authorization", auth.as_str()),
                    ("Tus-Resumable", "1.0.0"),
                    ("Upload-Offset", "0"),
                ]
            } else {
                Vec::new()
            };
            let status = short_body(&app.base, &route.method, &path, content_type, &headers).await;
            if status.is_some_and(|s| s >= 500) {
                failures.push(format!(
                    "{} {path} (body shorter than Content-Length, {content_type}): {status:?}",
                    route.method
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "5xx for the client's bad bodies:\n{}",
        failures.join("\n")
    );
    let errors = errors_here();
    assert!(
        errors.is_empty(),
        "ERROR lines for bad bodies:\n{}",
        errors.join("\n")
    );

    // The cut tus PATCH is a 400 that keeps what arrived: the client resumes from there.
    let created = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let upload = created.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let auth = format!("Bearer {key}");
    let status = short_body(
        &app.base,
        "PATCH",
        &format!("/api/v1/uploads/{upload}"),
        "application/offset+octet-stream",
        &[
            ("Authorization", auth.as_str()),
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", "0"),
        ],
    )
    .await;
    assert!(matches!(status, Some(400) | None), "{status:?}");
    let head = http
        .head(app.url(&format!("/api/v1/uploads/{upload}")))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["upload-offset"], "10");

    // A post whose JSON (labelled otherwise, as `curl -d` does) broke off is a 400, not a 413.
    for label in ["text/plain", "application/json"] {
        let status = short_body(
            &app.base,
            "POST",
            "/api/v1/posts",
            label,
            &[("Authorization", auth.as_str())],
        )
        .await;
        assert!(matches!(status, Some(400) | None), "{label}: {status:?}");
    }

    // A multipart post cut inside its file is a 400 naming the body, not a 500.
    let answer = http
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .header(CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body(bad_bodies().remove(0).2)
        .send()
        .await
        .unwrap();
    let body = problem(answer, StatusCode::BAD_REQUEST, "bad-body").await;
    assert!(
        body["detail"].as_str().unwrap().contains("multipart"),
        "{body}"
    );
}
