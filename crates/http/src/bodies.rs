//! Request bodies at the boundary, for every route at once.
//!
//! - **Text a database cannot hold.** [`refuse_nul`] (a layer over the whole router) refuses a
//!   NUL character (U+0000) in the address, in any string (or key) of a JSON body (whatever its
//!   label), and in any field of a form body, with a 400 naming the field
//!   (`targets[0].tiktok.caption`, `caption`). PostgreSQL takes no NUL in text, and SQLite would store it and hand it to the
//!   pages; refused here, no route can forget it. Multipart text parts are read by the routes
//!   themselves (files are streamed, never buffered here): they check each part with
//!   [`text_field`] (and a part holding JSON with [`json_field`]); `tests/it/nul_text.rs`
//!   sends a NUL in every field of every body the OpenAPI document and the pages describe.
//! - **A body the client did not finish.** A body shorter than its `Content-Length`, a
//!   multipart body cut before its closing boundary, a connection dropped mid-upload: the
//!   client's fault, not ours. Routes that stream a body read it through [`client_io`], which
//!   marks the error, and [`crate::error::Problem::from_io`] answers such an error with 400,
//!   logged as a warning, never as a 500.

use std::fmt;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

use crate::error::{PageError, Problem, capitalize};
use crate::server::DEFAULT_BODY_LIMIT;

/// A request body that ended before it was complete (or broke off): the error a streamed body
/// gives is wrapped in this, so whoever maps an I/O error can tell the client's from ours.
#[derive(Debug)]
pub struct ClientBodyError(String);

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body could not be read: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {}

/// An error of the request body's stream (or of a multipart part's) as an I/O error marked as
/// the client's: use it as the `map_err` of every body turned into a reader.
pub fn client_io(err: impl fmt::Display) -> std::io::Error {
    std::io::Error::other(ClientBodyError(err.to_string()))
}

/// Whether `err` is a request body's ([`client_io`]).
pub fn is_client_io(err: &std::io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<ClientBodyError>())
}

/// What a client is told when its body broke off.
pub const BODY_CUT: &str = "the request body ended before it was complete (shorter than its Content-Length, a multipart body without its closing boundary, or a connection closed mid-upload); send it again";

/// A multipart rejection or part error as the client's problem: 413 over a limit, else 400,
/// never a 500 (axum's own status for a stream it could not read is a 400 or a 413 too).
pub fn multipart_problem(err: impl fmt::Display, status: StatusCode) -> Problem {
    tracing::warn!(error = %err, "a multipart body could not be read");
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            err.to_string(),
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Malformed request body",
            format!("the multipart body could not be read: {err}"),
        )
    }
}

/// A multipart text part (or a part's file name) checked like every other text field: a NUL
/// is refused naming `field`.
pub fn text_field(field: &str, text: &str) -> Result<(), Problem> {
    if text.contains('\0') {
        Err(nul_problem(field))
    } else {
        Ok(())
    }
}

/// A JSON value read from a multipart part named `field`, checked like a JSON body.
pub fn json_field(field: &str, value: &Value) -> Result<(), Problem> {
    match nul_in_json(value, field.to_string()) {
        Some(at) => Err(nul_problem(&at)),
        None => Ok(()),
    }
}

fn nul_message(field: &str) -> String {
    format!("{field}: the text holds a NUL character (U+0000), which no text field may contain")
}

fn nul_problem(field: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-text",
        "Invalid text",
        nul_message(field),
    )
    .with("field", field.to_string())
}

/// Whether `path` is the API's (problem+json) rather than the pages'.
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The answer for a refusal at the boundary: problem+json under `/api`, a page elsewhere.
fn refusal(path: &str, problem: Problem, page_title: &str) -> Response {
    if is_api(path) {
        problem.into_response()
    } else {
        PageError::new(
            problem.status,
            page_title,
            capitalize(&problem.detail) + ".",
        )
        .into_response()
    }
}

/// What a body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Form,
    /// `multipart/form-data` ([`is_multipart`]): streamed by its routes, which check their text
    /// parts themselves.
    Multipart,
    /// Anything else, or no label: a file (raw media, a tus chunk), or JSON a client labelled
    /// otherwise (`curl -d` says form, some say `text/plain`); several routes read any body that
    /// is not multipart as JSON, so such a body is checked as JSON when it is one.
    Other,
}

/// The media type of a `Content-Type`, lower-cased, without its parameters.
fn essence(headers: &axum::http::HeaderMap) -> String {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a body is `multipart/form-data` (in any case): the one test of it, so the routes
/// that read multipart and [`refuse_nul`], which leaves it to them, never disagree.
pub fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    essence(headers) == "multipart/form-data"
}

fn kind_of(request: &Request) -> Kind {
    let essence = essence(request.headers());
    let essence = essence.as_str();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Kind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if essence == "multipart/form-data" {
        Kind::Multipart
    } else {
        Kind::Other
    }
}

/// Refuses a NUL character in the address, or in a field of a body, with a 400 naming it,
/// before any handler runs.
///
/// - A JSON or form body is read whole here (they are limited to [`DEFAULT_BODY_LIMIT`]
///   anyway) and handed on unchanged.
/// - A multipart body is never read here: its files stream to disk, and its routes check its
///   text parts ([`text_field`], [`json_field`]).
/// - Any other body is read up to [`DEFAULT_BODY_LIMIT`]: if it ends by then it is checked as
///   JSON when it parses as JSON (a route reading it as JSON whatever its label would otherwise
///   take the NUL), and handed on; if it is longer it is a file (a raw media upload, a tus chunk)
///   and streams on from where it is, unchecked, with at most that much held (none at all when
///   its `Content-Length` says it is longer). No JSON route reads a body that long.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let raw = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_default();
    if raw.to_ascii_lowercase().contains("%00") {
        let problem = Problem::bad_request(
            "the address holds a NUL character (%00), which no id or parameter may contain",
        );
        return refusal(&path, problem, "That address is not valid");
    }
    let kind = kind_of(&request);
    let labelled = match kind {
        Kind::Multipart => return next.run(request).await,
        Kind::Json | Kind::Form => true,
        Kind::Other => false,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DEFAULT_BODY_LIMIT as u64) {
        if labelled {
            return refusal(&path, too_large(), "That was too large");
        }
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_limited(body, DEFAULT_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(Read::TooLarge { .. }) if labelled => {
            return refusal(&path, too_large(), "That was too large");
        }
        Err(Read::TooLarge { head, rest }) => {
            let body =
                Body::from_stream(futures::stream::iter(head.into_iter().map(Ok)).chain(rest));
            return next.run(Request::from_parts(parts, body)).await;
        }
        Err(Read::Cut { head, err }) if !labelled => {
            // Perhaps a file chunk the route keeps as far as it came (a tus PATCH is resumed
            // from there): it gets what arrived, then the same error, as if unread.
            let arrived = futures::stream::iter(head.into_iter().map(Ok));
            let body = Body::from_stream(arrived.chain(futures::stream::once(async { Err(err) })));
            return next.run(Request::from_parts(parts, body)).await;
        }
        Err(Read::Cut { err, .. }) => {
            tracing::warn!(error = %err, path = %path, "a request body could not be read");
            return refusal(&path, body_cut(), "That did not arrive whole");
        }
    };
    let field = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => nul_in_json(&value, String::new()),
        Err(_) if kind == Kind::Form => nul_in_form(&bytes),
        Err(_) => None,
    };
    if let Some(field) = field {
        return refusal(&path, nul_problem(&field), "That did not work");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

type BodyStream = axum::body::BodyDataStream;

enum Read {
    /// Longer than the limit: what was read (in the chunks it came in) and the rest.
    TooLarge {
        head: Vec<axum::body::Bytes>,
        rest: BodyStream,
    },
    /// The body broke off: what arrived before, and the error.
    Cut {
        head: Vec<axum::body::Bytes>,
        err: axum::Error,
    },
}

/// The 400 for a body the client did not finish.
fn body_cut() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-body",
        "Malformed request body",
        BODY_CUT,
    )
}

/// A body a route reads whole (JSON it parses itself), up to `limit` bytes: over it is 413,
/// and a body that broke off is the client's 400 (logged as a warning), never a 500.
pub async fn read_whole(body: Body, limit: usize) -> Result<axum::body::Bytes, Problem> {
    match read_limited(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(Read::TooLarge { .. }) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!(
                "a JSON body may be at most {limit} bytes; send files as multipart/form-data or through /api/v1/uploads"
            ),
        )),
        Err(Read::Cut { err, .. }) => {
            tracing::warn!(error = %err, "a request body could not be read");
            Err(body_cut())
        }
    }
}

/// The whole body, up to `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, Read> {
    let mut stream = body.into_data_stream();
    let mut head: Vec<axum::body::Bytes> = Vec::new();
    let mut len = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => return Err(Read::Cut { head, err }),
        };
        len += chunk.len();
        head.push(chunk);
        if len > limit {
            return Err(Read::TooLarge { head, rest: stream });
        }
    }
    if head.len() == 1 {
        return Ok(head.remove(0));
    }
    Ok(head.concat().into())
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Request body too large",
        format!(
            "a JSON or form body may be at most {DEFAULT_BODY_LIMIT} bytes; send files as multipart/form-data or through /api/v1/uploads"
        ),
    )
}

/// A key as a field name shows it (a NUL written out, so the name itself can be shown).
fn shown_key(key: &str) -> String {
    key.replace('\0', "\\u0000")
}

/// The path of the first string (or key) holding a NUL: `caption`, `targets[1].tiktok.x`,
/// `photo_urls[0]`; `body` for a bare string.
fn nul_in_json(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => {
            Some(if path.is_empty() { "body".into() } else { path })
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in_json(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let at = if path.is_empty() {
                shown_key(key)
            } else {
                format!("{path}.{}", shown_key(key))
            };
            if key.contains('\0') {
                Some(at)
            } else {
                nul_in_json(item, at)
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => None,
    }
}

/// The name of the first form field whose name or value holds a NUL.
fn nul_in_form(bytes: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(bytes)
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| shown_key(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths_name_the_field() {
        let at = |v: Value| nul_in_json(&v, String::new());
        assert_eq!(
            at(json!({"caption": "a\u{0}b"})).as_deref(),
            Some("caption")
        );
        assert_eq!(
            at(json!({"targets": [{"x": 1}, {"tiktok": {"privacy_level": "\u{0}"}}]})).as_deref(),
            Some("targets[1].tiktok.privacy_level")
        );
        assert_eq!(
            at(json!({"photo_urls": ["ok", "n\u{0}"]})).as_deref(),
            Some("photo_urls[1]")
        );
        assert_eq!(at(json!({"a\u{0}": 1})).as_deref(), Some("a\\u0000"));
        assert_eq!(at(json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(at(json!({"caption": "fine", "n": [1, true, null]})), None);
    }

    #[test]
    fn form_fields_are_named() {
        assert_eq!(nul_in_form(b"csrf=x&name=a%00b").as_deref(), Some("name"));
        assert_eq!(nul_in_form(b"n%00=1").as_deref(), Some("n\\u0000"));
        assert_eq!(nul_in_form(b"csrf=x&name=ab"), None);
    }

    /// A router echoing how many bytes its handler read (and their sum), behind the layer.
    fn echo() -> axum::Router {
        async fn count(body: Body) -> String {
            let mut stream = body.into_data_stream();
            let (mut len, mut sum) = (0usize, 0u64);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.unwrap();
                len += chunk.len();
                sum += chunk.iter().map(|b| u64::from(*b)).sum::<u64>();
            }
            format!("{len} {sum}")
        }
        // (A fallback, not a route: the tests that scan the source for routes would find it.)
        axum::Router::new()
            .fallback(count)
            .layer(axum::middleware::from_fn(refuse_nul))
    }

    async fn send(body: Body, content_type: &str, length: Option<usize>) -> (StatusCode, String) {
        use tower::ServiceExt;
        let mut request = Request::post("/api/x").header(header::CONTENT_TYPE, content_type);
        if let Some(length) = length {
            request = request.header(header::CONTENT_LENGTH, length);
        }
        let answer = echo().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = answer.status();
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A body in many chunks, as a file upload arrives: `n` chunks of 64 KiB of `byte`.
    fn chunked(n: usize, byte: u8) -> Body {
        let chunks = (0..n)
            .map(move |_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![byte; 64 * 1024])));
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn json_under_any_label_is_checked() {
        let nul = r#"{"caption": "a\u0000b"}"#;
        for label in [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "Multipart/Mixed",
        ] {
            let (status, text) = send(Body::from(nul), label, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{label:?}: {text}");
            assert!(
                text.contains("caption: the text holds a NUL"),
                "{label:?}: {text}"
            );
        }
        let (status, text) = send(
            Body::from("name=a%00b"),
            "application/x-www-form-urlencoded",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        // Text without a NUL goes on unchanged.
        let (status, text) = send(Body::from(r#"{"caption": "ab"}"#), "text/plain", None).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "17 1419"));
    }

    #[tokio::test]
    async fn files_and_multipart_stream_on_whole() {
        // 8 MiB without a length: the first 2 MiB are held, then everything streams on.
        let n = 128;
        let want = format!("{} {}", n * 64 * 1024, (n * 64 * 1024) as u64 * 7);
        for label in ["video/mp4", "application/offset+octet-stream", ""] {
            let (status, text) = send(chunked(n, 7), label, None).await;
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::OK, want.as_str()),
                "{label:?}"
            );
        }
        // A multipart body is not read here at all, whatever it holds or its size.
        let (status, text) = send(
            Body::from(r#"{"caption": "a\u0000b"}"#),
            "multipart/form-data; boundary=x",
            None,
        )
        .await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "23 1820"));
        // A JSON body over the limit is refused; a declared file length is not read first.
        let (status, _) = send(chunked(n, b' '), "application/json", None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, text) = send(chunked(n, 7), "video/mp4", Some(n * 64 * 1024)).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, want.as_str()));
    }

    #[test]
    fn client_io_is_told_apart() {
        assert!(is_client_io(&client_io("cut")));
        assert!(!is_client_io(&std::io::Error::other("disk")));
        assert!(!is_client_io(&std::io::Error::from(
            std::io::ErrorKind::StorageFull
        )));
    }
}
