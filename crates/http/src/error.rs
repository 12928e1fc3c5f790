//! Errors as clients see them: `application/problem+json` (RFC 9457) for the API with a stable
//! `type` per kind of problem, and a readable HTML page for the UI. Internal causes go to the
//! log with an id that the response repeats; they never reach the client.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tidepost_app::access::AccessError;
use tidepost_app::connect::ConnectError;
use tidepost_store::StoreError;

use crate::ui::Chrome;

/// An API error. `code` becomes the stable `type` URI `urn:tidepost:problem:<code>`.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            retry_after_secs: None,
            extra: Map::new(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such {what} in this workspace"),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            detail,
        );
        p.retry_after_secs = Some(retry_after_secs);
        p
    }

    /// A 500 whose cause is logged under a fresh id and not shown.
    /// A 503 for something that passes by itself (another instance refreshing the account's
    /// token, a store busy for a moment): `Retry-After` says when to send the request again.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            detail,
        );
        problem.retry_after_secs = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        problem
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let id = tidepost_domain::new_id();
        tracing::error!(error_id = %id, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            format!(
                "something went wrong on our side; the log has the details under error id {id}"
            ),
        )
    }

    /// An I/O error while a request was handled: a body the client did not finish
    /// ([`crate::bodies::client_io`]) is its 400, logged as a warning; object storage that is
    /// down or refuses us is 503; a full disk is 507; anything else is ours (500).
    pub fn from_io(err: std::io::Error) -> Self {
        if crate::bodies::is_client_io(&err) {
            tracing::warn!(error = %err, "a request body broke off");
            return Self::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                "Malformed request body",
                crate::bodies::BODY_CUT,
            );
        }
        if tidepost_app::media::s3::is_unavailable(&err) {
            tracing::warn!(error = %err, "the media storage failed");
            return Self::unavailable(
                "the media storage (object storage) did not answer or refused the request, so nothing was kept; try again shortly",
            );
        }
        if err.kind() == std::io::ErrorKind::StorageFull {
            tracing::warn!(error = %err, "the media storage is full");
            return Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient-storage",
                "Storage full",
                "the media storage is full, so the file was not kept; try again once space is freed",
            );
        }
        Self::internal(err)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:tidepost:problem:{}", self.code),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        let mut response = (
            self.status,
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what } => Problem::conflict(format!("{what} already exists")),
            other @ (StoreError::UnsupportedScheme { .. }
            | StoreError::InvalidUrl(_)
            | StoreError::Unreachable { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::NotMigrated
            | StoreError::Migrate(_)
            | StoreError::Sqlx(_)) => {
                if other.is_invalid_text() {
                    Problem::bad_request(INVALID_TEXT)
                } else if other.is_unavailable() {
                    tracing::warn!(error = %other, "the database is unavailable");
                    let mut p = Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database-unavailable",
                        "Database unavailable",
                        DATABASE_UNAVAILABLE,
                    );
                    p.retry_after_secs = Some(5);
                    p
                } else {
                    Problem::internal(other)
                }
            }
        }
    }
}

/// A [`ConnectError`] from starting a connection or disconnecting an account: 503 when the
/// platform is not configured on this instance, else our own failure. (The callbacks, where the
/// refusals come from, answer with their own pages.)
pub fn connect_problem(err: ConnectError) -> Problem {
    match err {
        ConnectError::NotConfigured(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider-not-configured",
            "Provider not configured",
            e.to_string(),
        ),
        other @ (ConnectError::StateMissing
        | ConnectError::StateUnknown
        | ConnectError::StateReused
        | ConnectError::StateExpired
        | ConnectError::StateFromAnotherSession
        | ConnectError::Denied { .. }
        | ConnectError::ProviderError { .. }
        | ConnectError::CodeMissing
        | ConnectError::ScopeMissing { .. }
        | ConnectError::PersonalAccount { .. }
        | ConnectError::NoPages
        | ConnectError::NoInstagramAccount
        | ConnectError::NothingChosen
        | ConnectError::NotChoosable(_)
        | ConnectError::WrongAccount { .. }
        | ConnectError::Vault(_)
        | ConnectError::Store(_)) => Problem::internal(other),
    }
}

impl From<AccessError> for Problem {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::Store(store) => store.into(),
            AccessError::TooManyAttempts { retry_after_secs }
            | AccessError::AccountLocked { retry_after_secs } => {
                Problem::too_many_requests(err.to_string(), retry_after_secs.max(1) as u64)
            }
            AccessError::WrongCredentials => Problem::unauthorized(err.to_string()),
            AccessError::UnknownWorkspace(_) => Problem::not_found("workspace"),
            other @ (AccessError::WeakPassword
            | AccessError::InvalidEmail(_)
            | AccessError::InvalidWorkspace(_)
            | AccessError::UnknownScope(_)
            | AccessError::KeyAboveCreator { .. }
            | AccessError::InvalidKeyName) => Problem::invalid(other.to_string()),
        }
    }
}

/// An error page for people, inside the layout: the navigation when they are signed in, the
/// sandbox banner (see [`crate::ui::error_chrome`]).
#[derive(Debug, Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: String,
    pub message: String,
    /// A way forward besides the dashboard: (link, label).
    pub action: Option<(String, String)>,
    /// The page the person came from (same site), offered as "Go back": the browser's own back
    /// keeps what they typed in a form.
    pub back: Option<String>,
}

/// What a page says went wrong. As a response it is an [`ErrorPage`] without the person's
/// layout, and carries itself as an extension so that the router's
/// [`crate::ui::error_chrome`] layer renders it again in that layout.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub action: Option<(String, String)>,
    /// Sent as `Retry-After` (every 429 has one: [`PageError::too_many_requests`]).
    pub retry_after_secs: Option<u64>,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            action: None,
            retry_after_secs: None,
        }
    }

    /// A 429: the page says why and when to come back, and so does `Retry-After`.
    pub fn too_many_requests(
        title: impl Into<String>,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, title, message)
            .with_retry_after(Some(retry_after_secs.max(1)))
    }

    /// Keeps a `Retry-After` (e.g. of the [`Problem`] this page tells about).
    pub fn with_retry_after(mut self, retry_after_secs: Option<u64>) -> Self {
        self.retry_after_secs = retry_after_secs;
        self
    }

    /// Offers a link besides "Back to the dashboard" (e.g. "Try again").
    pub fn with_action(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.action = Some((href.into(), label.into()));
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or it belongs to another workspace.",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let id = tidepost_domain::new_id();
        tracing::error!(error_id = %id, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            format!("This is our fault, not yours. The log has the details under error id {id}."),
        )
    }
}

impl PageError {
    /// The page in `chrome`'s layout, with "Go back" to `back` when known.
    pub fn page(self, chrome: Chrome, back: Option<String>) -> Response {
        let status = self.status;
        let page = ErrorPage {
            chrome,
            status: status.as_u16(),
            title: self.title,
            message: self.message,
            action: self.action,
            back,
        };
        let retry_after = self.retry_after_secs;
        let mut response = (status, page).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = self.clone().page(Chrome::bare(), None);
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        if err.is_invalid_text() {
            return PageError::new(StatusCode::BAD_REQUEST, "That did not work", INVALID_TEXT);
        }
        if err.is_unavailable() {
            tracing::warn!(error = %err, "the database is unavailable");
            return PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable",
                "tidepost cannot reach its database right now. Nothing you did caused this; \
                 try again in a few seconds.",
            )
            .with_retry_after(Some(5));
        }
        PageError::internal(err)
    }
}

/// How long a client waits before sending again a request refused as briefly unavailable.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// The database is stopped, restarting or out of reach: the client should try again.
const DATABASE_UNAVAILABLE: &str = "the database is unavailable right now (stopped, restarting or unreachable); try again in a few seconds";

/// A request whose text the database cannot store (a NUL character, in an id or a field).
const INVALID_TEXT: &str =
    "the request holds a NUL character, which no id or text field may contain";

impl From<AccessError> for PageError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::Store(store) => store.into(),
            AccessError::TooManyAttempts { retry_after_secs }
            | AccessError::AccountLocked { retry_after_secs } => PageError::too_many_requests(
                "Too many sign-in attempts",
                capitalize(&err.to_string()),
                u64::try_from(retry_after_secs).unwrap_or(1),
            ),
            other @ (AccessError::WrongCredentials
            | AccessError::WeakPassword
            | AccessError::InvalidEmail(_)
            | AccessError::InvalidWorkspace(_)
            | AccessError::UnknownWorkspace(_)
            | AccessError::UnknownScope(_)
            | AccessError::KeyAboveCreator { .. }
            | AccessError::InvalidKeyName) => PageError::new(
                StatusCode::BAD_REQUEST,
                "That did not work",
                other.to_string(),
            ),
        }
    }
}

/// An error's text as the first sentence of a page: upper-case first letter.
pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Class: every 429 page says when to come back in `Retry-After`, like every 429 problem.
    #[test]
    fn every_429_page_carries_retry_after() {
        let pages = [
            PageError::from(AccessError::TooManyAttempts {
                retry_after_secs: 30,
            }),
            PageError::from(AccessError::AccountLocked {
                retry_after_secs: 900,
            }),
            PageError::too_many_requests("Slow down", "Try again later.", 0),
            PageError::new(StatusCode::TOO_MANY_REQUESTS, "Limited", "by a provider")
                .with_retry_after(Problem::too_many_requests("limited", 42).retry_after_secs),
        ];
        let expected = ["30", "900", "1", "42"];
        for (page, expected) in pages.into_iter().zip(expected) {
            let response = page.into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                Some(expected)
            );
        }
        // A sign-in limit is not a bad request: the page says how long to wait.
        let page = PageError::from(AccessError::AccountLocked {
            retry_after_secs: 61,
        });
        assert!(
            page.message.starts_with("This account is locked"),
            "{}",
            page.message
        );
        assert!(page.message.contains("2 minutes"), "{}", page.message);
    }
}
