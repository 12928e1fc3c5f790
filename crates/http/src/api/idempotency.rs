//! `Idempotency-Key` on POSTs under `/api/v1`: a client that sends the header can retry a POST
//! whose answer it lost without acting twice.
//!
//! The first request with a key claims it for the caller's workspace
//! ([`tidepost_store::idempotency`]), runs, and its answer (status, the headers worth keeping,
//! body) is stored with a fingerprint of the request: method, path and query, content type and
//! body. Then, for 24 hours:
//! - the same request again gets the stored answer with `Idempotent-Replayed: true`;
//! - a different request with the same key gets 422 (`idempotency-key-reused`);
//! - a request while the first is still running gets 409 (`idempotency-key-in-use`).
//!
//! Answers that say "try again" are not stored and free the key: 5xx, 401, 403, 408, 409 and
//! 429. A request that fails authentication is passed on untouched (the handler answers 401).
//! The layer sits outside every API route, so it covers every POST that creates something, and
//! routes need nothing to take part; `posts.idempotency_key` keeps deduplicating posts beneath
//! it for clients that send the key in the body.
//!
//! A secret shown once is never replayed. A handler whose answer carries one marks the answer
//! with [`OneTimeSecret`]: `Withhold` stores it without the secret's fields and with a `note`
//! saying the secret was shown once (a new API key, a webhook signing secret: the replay gives
//! the object's metadata, and running the request again would make a second object);
//! `Regenerate` does not store it at all, so a retry runs again and gets a fresh secret (a
//! connect link, whose single-use OAuth state expires in minutes and whose repetition changes
//! nothing). Stored bodies are still sealed with the instance's keyring (AES-256-GCM, bound to
//! the workspace and key). Records expire within a day, so `keys rotate` leaves them alone; one
//! sealed under a key since removed from the keyring answers 500 until it expires rather than
//! running the request a second time.
//!
//! Bodies up to [`DEFAULT_BODY_LIMIT`] are read before the handler runs; larger ones (media
//! uploads) are hashed as the handler reads them, never held in memory. The fingerprint of a
//! `multipart/form-data` body leaves out its boundary, which HTTP clients pick afresh for each
//! attempt, so a retried upload with the same parts matches.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tidepost_store::idempotency::{self as store, Claim, Stored};
use tidepost_vault::Aad;
use tidepost_vault::secrecy::ExposeSecret;

use crate::auth::Caller;
use crate::error::Problem;
use crate::server::DEFAULT_BODY_LIMIT;
use crate::state::HttpState;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a running request holds its key if its process dies without releasing it (a
/// request that ends in any other way releases or fills its key at once).
const LEASE_MS: i64 = 15 * 60_000;
/// The headers of an answer that are stored and replayed (the others are the server's own,
/// added again by outer layers, or belong to one exchange).
const KEPT_HEADERS: &[HeaderName] = &[header::CONTENT_TYPE, header::LOCATION, header::LINK];
/// API answers are small JSON documents; anything larger is not stored.
const MAX_STORED_BODY: usize = 4 * 1024 * 1024;

/// Set on an answer (as a response extension) that carries a secret shown once: how a replay
/// of it avoids showing the secret again.
#[derive(Debug, Clone, Copy)]
pub enum OneTimeSecret {
    /// Store the answer without these top-level JSON fields, with `note` added: a replay gives
    /// the object's metadata and says the secret was shown once.
    Withhold {
        fields: &'static [&'static str],
        note: &'static str,
    },
    /// Store nothing: a retry with the same key runs again and makes a new secret (for answers
    /// whose repetition changes nothing, such as a connect link).
    Regenerate,
}

impl OneTimeSecret {
    /// The body to store for a first answer `body`, or `None` when nothing may be stored.
    fn storable(self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            OneTimeSecret::Regenerate => None,
            OneTimeSecret::Withhold { fields, note } => {
                let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
                let object = value.as_object_mut()?;
                for field in fields {
                    object.remove(*field);
                }
                object.insert("note".into(), serde_json::Value::from(note));
                serde_json::to_vec(&value).ok()
            }
        }
    }
}

/// The middleware (installed on `/api/v1` in `server.rs`).
pub(crate) async fn layer(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(KEY_HEADER) else {
        return next.run(request).await;
    };
    let key = match valid_key(raw) {
        Ok(key) => key,
        Err(problem) => return problem.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    let workspace_id = caller.workspace_id;
    let fingerprint = Fingerprint::of(&parts);
    let db = &state.app.db;
    let claim =
        match store::claim(db, &workspace_id, &key, tidepost_domain::now_ms(), LEASE_MS).await {
            Ok(claim) => claim,
            Err(err) => return Problem::from(err).into_response(),
        };
    match claim {
        Claim::Running => in_use(),
        Claim::Done(stored) => {
            let mut fingerprint = fingerprint;
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => fingerprint.update(&chunk),
                    Err(err) => return unreadable(err),
                }
            }
            if fingerprint.finish() == stored.fingerprint {
                replay(&state, &workspace_id, &key, stored)
            } else {
                reused()
            }
        }
        Claim::Claimed => {
            let mut held = Held {
                state: state.clone(),
                workspace_id,
                key,
                armed: true,
            };
            let (body, progress) = match watch(body, fingerprint).await {
                Ok(watched) => watched,
                Err(err) => return unreadable(err),
            };
            let response = next.run(Request::from_parts(parts, body)).await;
            let fingerprint = progress.lock().map(|p| p.done.clone()).unwrap_or(None);
            held.settle(fingerprint, response).await
        }
    }
}

/// 1 to 255 visible ASCII characters (spaces allowed inside).
fn valid_key(raw: &HeaderValue) -> Result<String, Problem> {
    let bytes = raw.as_bytes();
    let text = std::str::from_utf8(bytes).unwrap_or_default().trim();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters, such as a UUID",
        ));
    }
    Ok(text.to_string())
}

fn in_use() -> Response {
    let mut problem = Problem::new(
        StatusCode::CONFLICT,
        "idempotency-key-in-use",
        "Request in progress",
        "a request with this Idempotency-Key is still running; retry once it has finished to get its answer",
    );
    problem.retry_after_secs = Some(1);
    problem.into_response()
}

fn reused() -> Response {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "this Idempotency-Key was used for a different request (method, path or body); use a new key for a new request",
    )
    .into_response()
}

fn unreadable(err: axum::Error) -> Response {
    Problem::bad_request(format!("the request body could not be read: {err}")).into_response()
}

/// Where a stored body is sealed: the record's table, its (workspace, key) and the column.
fn sealed_at(row: &str) -> Aad<'_> {
    Aad::new("idempotency_keys", row, "body")
}

fn row_of(workspace_id: &str, key: &str) -> String {
    format!("{workspace_id}/{key}")
}

/// The stored answer again, marked as such.
fn replay(state: &HttpState, workspace_id: &str, key: &str, stored: Stored) -> Response {
    let row = row_of(workspace_id, key);
    let body = match String::from_utf8(stored.body)
        .map_err(|e| e.to_string())
        .and_then(|envelope| {
            state
                .app
                .keyring
                .decrypt(&envelope, &sealed_at(&row))
                .map_err(|e| e.to_string())
        }) {
        Ok(body) => body.expose_secret().to_vec(),
        Err(err) => {
            return Problem::internal(format!(
                "a stored Idempotency-Key answer cannot be opened: {err}"
            ))
            .into_response();
        }
    };
    let status = u16::try_from(stored.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers: Vec<(String, String)> = serde_json::from_str(&stored.headers).unwrap_or_default();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// A claimed key: filled with the answer, or released; released as well when the request is
/// dropped half way (the client went away, a panic), so its key does not stay busy.
struct Held {
    state: HttpState,
    workspace_id: String,
    key: String,
    armed: bool,
}

impl Held {
    async fn settle(&mut self, fingerprint: Option<String>, response: Response) -> Response {
        self.armed = false;
        let db = &self.state.app.db;
        let status = response.status();
        let retryable = status.is_server_error()
            || matches!(
                status,
                StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::REQUEST_TIMEOUT
                    | StatusCode::CONFLICT
                    | StatusCode::TOO_MANY_REQUESTS
            );
        // A large body the handler did not read to its end has no fingerprint to match.
        let Some(fingerprint) = fingerprint.filter(|_| !retryable) else {
            self.release().await;
            return response;
        };
        let secret = response.extensions().get::<OneTimeSecret>().copied();
        if let Some(OneTimeSecret::Regenerate) = secret {
            self.release().await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
            Ok(body) => body,
            Err(err) => {
                self.release().await;
                return Problem::internal(format!("an API answer could not be stored: {err}"))
                    .into_response();
            }
        };
        // The client gets the secret this once; what is kept for replays never holds it.
        let kept = match secret {
            None => body.to_vec(),
            Some(marker) => match marker.storable(&body) {
                Some(kept) => kept,
                None => {
                    self.release().await;
                    return Response::from_parts(parts, Body::from(body));
                }
            },
        };
        let headers: Vec<(&str, &str)> = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str(), value))
            })
            .collect();
        let row = row_of(&self.workspace_id, &self.key);
        let sealed = self.state.app.keyring.encrypt(&kept, &sealed_at(&row));
        let stored = Stored {
            fingerprint,
            status: i64::from(status.as_u16()),
            headers: serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into()),
            body: sealed.into_bytes(),
        };
        if let Err(err) = store::finish(db, &self.workspace_id, &self.key, &stored).await {
            // The client still gets its answer; the key is freed so its retry runs anew
            // rather than waiting out the lease.
            tracing::warn!(error = %err, "could not store an Idempotency-Key answer");
            self.release().await;
        }
        Response::from_parts(parts, Body::from(body))
    }

    async fn release(&self) {
        if let Err(err) = store::release(&self.state.app.db, &self.workspace_id, &self.key).await {
            tracing::warn!(error = %err, "could not release an Idempotency-Key");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let db = self.state.app.db.clone();
        let workspace_id = std::mem::take(&mut self.workspace_id);
        let key = std::mem::take(&mut self.key);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store::release(&db, &workspace_id, &key).await;
            });
        }
    }
}

/// How far the handler has read the body: `done` is the fingerprint once it read it all.
struct Progress {
    fingerprint: Option<Fingerprint>,
    done: Option<String>,
}

type Shared = Arc<Mutex<Progress>>;

/// Reads up to [`DEFAULT_BODY_LIMIT`] bytes; a body that ends there is fingerprinted at once and
/// handed on whole, a longer one is handed on as a stream that fingerprints what passes.
async fn watch(body: Body, mut fingerprint: Fingerprint) -> Result<(Body, Shared), axum::Error> {
    let mut stream = body.into_data_stream();
    let mut prefix: Vec<Bytes> = Vec::new();
    let mut size = 0;
    while size <= DEFAULT_BODY_LIMIT {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                size += chunk.len();
                fingerprint.update(&chunk);
                prefix.push(chunk);
            }
            None => {
                let done = Some(fingerprint.finish());
                let progress = Arc::new(Mutex::new(Progress {
                    fingerprint: None,
                    done,
                }));
                return Ok((Body::from(prefix.concat()), progress));
            }
        }
    }
    let progress = Arc::new(Mutex::new(Progress {
        fingerprint: Some(fingerprint),
        done: None,
    }));
    let (passing, ending) = (progress.clone(), progress.clone());
    let rest = stream.map(move |chunk| {
        if let (Ok(chunk), Ok(mut progress)) = (&chunk, passing.lock())
            && let Some(fingerprint) = progress.fingerprint.as_mut()
        {
            fingerprint.update(chunk);
        }
        chunk
    });
    let end = futures::stream::once(async move {
        if let Ok(mut progress) = ending.lock()
            && let Some(fingerprint) = progress.fingerprint.take()
        {
            progress.done = Some(fingerprint.finish());
        }
    })
    .filter_map(|()| async { None::<Result<Bytes, axum::Error>> });
    let body = futures::stream::iter(prefix.into_iter().map(Ok))
        .chain(rest)
        .chain(end);
    Ok((Body::from_stream(body), progress))
}

/// SHA-256 of what makes two requests the same one: method, path and query, content type
/// without a multipart boundary, and the body with each occurrence of that boundary left out.
struct Fingerprint {
    hasher: Sha256,
    boundary: Option<Vec<u8>>,
    /// The end of the body seen so far that may be the start of a boundary.
    carry: Vec<u8>,
}

impl Fingerprint {
    fn of(parts: &Parts) -> Self {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut media_type = Vec::new();
        let mut boundary = None;
        for (i, param) in content_type.split(';').map(str::trim).enumerate() {
            match param.split_once('=') {
                Some((name, value)) if i > 0 && name.eq_ignore_ascii_case("boundary") => {
                    let value = value.trim_matches('"');
                    if !value.is_empty() {
                        boundary = Some(value.as_bytes().to_vec());
                    }
                }
                _ => media_type.push(param.to_ascii_lowercase()),
            }
        }
        let mut hasher = Sha256::new();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        for field in [parts.method.as_str(), path, &media_type.join(";")] {
            hasher.update(field.as_bytes());
            hasher.update([0]);
        }
        Fingerprint {
            hasher,
            boundary,
            carry: Vec::new(),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        let Some(boundary) = self.boundary.as_deref() else {
            self.hasher.update(chunk);
            return;
        };
        self.carry.extend_from_slice(chunk);
        let data = &self.carry;
        let mut from = 0;
        let mut at = 0;
        while let Some(found) = find(&data[at..], boundary) {
            let start = at + found;
            self.hasher.update(&data[from..start]);
            self.hasher.update([0]);
            at = start + boundary.len();
            from = at;
        }
        // Bytes before `safe` cannot begin a boundary that the next chunk would complete.
        let safe = (data.len() + 1).saturating_sub(boundary.len()).max(from);
        self.hasher.update(&data[from..safe]);
        self.carry.drain(..safe);
    }

    fn finish(mut self) -> String {
        let rest = std::mem::take(&mut self.carry);
        self.hasher.update(&rest);
        hex::encode(self.hasher.finalize())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| haystack[i] == first && &haystack[i..i + needle.len()] == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(content_type: &str) -> Parts {
        let (parts, ()) = axum::http::Request::post("/api/v1/posts?x=1")
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    fn digest(content_type: &str, chunks: &[&[u8]]) -> String {
        let mut fingerprint = Fingerprint::of(&parts(content_type));
        for chunk in chunks {
            fingerprint.update(chunk);
        }
        fingerprint.finish()
    }

    #[test]
    fn a_multipart_boundary_does_not_count_wherever_chunks_split() {
        let body_a = b"--AAAAAAAA\r\ncontent-disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n--AAAAAAAA--\r\n";
        let body_b = b"--BBBBBBBB\r\ncontent-disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n--BBBBBBBB--\r\n";
        let whole = digest("multipart/form-data; boundary=AAAAAAAA", &[body_a]);
        assert_eq!(
            whole,
            digest("multipart/form-data; boundary=\"BBBBBBBB\"", &[body_b])
        );
        for split in 0..body_a.len() {
            let (a, b) = body_a.split_at(split);
            assert_eq!(
                digest("multipart/form-data; boundary=AAAAAAAA", &[a, b]),
                whole,
                "split at {split}"
            );
        }
        let other = b"--AAAAAAAA\r\ncontent-disposition: form-data; name=\"caption\"\r\n\r\nho\r\n--AAAAAAAA--\r\n";
        assert_ne!(
            digest("multipart/form-data; boundary=AAAAAAAA", &[other]),
            whole
        );
    }

    #[test]
    fn method_path_type_and_body_all_count() {
        let base = digest("application/json", &[b"{\"a\":1}"]);
        assert_eq!(base, digest("application/json", &[b"{\"a\"", b":1}"]));
        assert_ne!(base, digest("application/json", &[b"{\"a\":2}"]));
        assert_ne!(base, digest("text/plain", &[b"{\"a\":1}"]));
        let (other_path, ()) = axum::http::Request::post("/api/v1/posts?x=2")
            .header(header::CONTENT_TYPE, "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let mut fingerprint = Fingerprint::of(&other_path);
        fingerprint.update(b"{\"a\":1}");
        assert_ne!(base, fingerprint.finish());
    }

    #[test]
    fn a_one_time_secret_is_never_kept_for_a_replay() {
        let body = br#"{"id":"k1","name":"ci","secret":"tp_abc","signing":"whsec_x"}"#;
        let withhold = OneTimeSecret::Withhold {
            fields: &["secret", "signing"],
            note: "shown once",
        };
        let kept: serde_json::Value =
            serde_json::from_slice(&withhold.storable(body).unwrap()).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"id": "k1", "name": "ci", "note": "shown once"})
        );
        assert!(OneTimeSecret::Regenerate.storable(body).is_none());
        // An answer that is not a JSON object cannot be cleaned: it is not kept either.
        assert!(withhold.storable(b"tp_abc").is_none());
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid_key(&HeaderValue::from_static("0b5f-1 x")).is_ok());
        assert!(valid_key(&HeaderValue::from_static("")).is_err());
        assert!(valid_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
        assert!(valid_key(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_err());
    }
}
