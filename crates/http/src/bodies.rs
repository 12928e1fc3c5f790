//! Request bodies at the boundary, for every route at once.
//!
//! - **Text a database cannot hold.** [`refuse_nul`] (a layer over the whole router) refuses a
//!   NUL character (U+0000) in the address, in any string (or key) of a JSON body, and in any
//!   field of a form body, with a 400 naming the field (`targets[0].tiktok.caption`,
//!   `caption`). PostgreSQL takes no NUL in text, and SQLite would store it and hand it to the
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
    /// Anything else: multipart (its routes check their parts), files, none.
    Other,
}

fn kind_of(request: &Request) -> Kind {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Kind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Kind::Form
    } else if essence.is_empty() && request.uri().path().starts_with("/webhooks/") {
        // Provider webhooks are read as JSON whatever they are labelled.
        Kind::Json
    } else {
        Kind::Other
    }
}

/// Refuses a NUL character in the address, or in a field of a JSON or form body, with a 400
/// naming it, before any handler runs. A JSON or form body is read whole here (they are
/// limited to [`DEFAULT_BODY_LIMIT`] anyway) and handed on unchanged.
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
    if kind == Kind::Other {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > DEFAULT_BODY_LIMIT as u64) {
        return refusal(&path, too_large(), "That was too large");
    }
    let (parts, body) = request.into_parts();
    let bytes = match read_limited(body, DEFAULT_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(Read::TooLarge) => return refusal(&path, too_large(), "That was too large"),
        Err(Read::Cut(err)) => {
            tracing::warn!(error = %err, path = %path, "a request body could not be read");
            let problem = Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                "Malformed request body",
                BODY_CUT,
            );
            return refusal(&path, problem, "That did not arrive whole");
        }
    };
    let field = match kind {
        Kind::Json => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|value| nul_in_json(&value, String::new())),
        Kind::Form => nul_in_form(&bytes),
        Kind::Other => None,
    };
    if let Some(field) = field {
        return refusal(&path, nul_problem(&field), "That did not work");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

enum Read {
    TooLarge,
    Cut(axum::Error),
}

/// The whole body, up to `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, Read> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Read::Cut)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Read::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.into())
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

    #[test]
    fn client_io_is_told_apart() {
        assert!(is_client_io(&client_io("cut")));
        assert!(!is_client_io(&std::io::Error::other("disk")));
        assert!(!is_client_io(&std::io::Error::from(
            std::io::ErrorKind::StorageFull
        )));
    }
}
