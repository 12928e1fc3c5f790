//! The one error type of every provider call, classified by what the caller should do next.
//!
//! Each provider module owns the table that turns its documented error codes into an
//! [`ErrorKind`] (`tiktok::errors`, `meta::errors`); this module holds the shared shape and the
//! transport-level classification (timeouts, dropped connections), where idempotency matters:
//! a call that creates something on the provider (TikTok init, Meta `media_publish`) and whose
//! answer was lost is [`ErrorKind::OutcomeUnknown`], never [`ErrorKind::Retryable`].

use std::fmt;
use std::time::Duration;

use tidepost_domain::Platform;

use crate::meta::Usage;

/// What the caller should do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A transient failure (5xx, transport error on an idempotent call, media not ready yet):
    /// retry later with backoff.
    Retryable,
    /// A rate limit or quota was hit: wait at least [`ProviderError::retry_after`] when set.
    RateLimited,
    /// The token is invalid, expired, revoked or lacks a scope. See
    /// [`ProviderError::token_refresh_may_help`] for whether a refresh can fix it; otherwise
    /// the account needs the user to connect again.
    Reauth,
    /// The request cannot succeed as sent (bad parameter, permission missing, policy cap,
    /// unverified URL, …): show [`ProviderError::message`] to a person.
    Permanent,
    /// A non-idempotent call (TikTok init, Meta `media_publish`, TikTok token refresh) may or
    /// may not have taken effect: reconcile with the provider before calling again.
    OutcomeUnknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Retryable => "retryable",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Reauth => "reauth",
            ErrorKind::Permanent => "permanent",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider call. Never carries a token or a secret: messages are the provider's
/// error text or ours, and transport errors are stripped of their URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub platform: Platform,
    pub kind: ErrorKind,
    /// The provider's error code (`"access_token_invalid"`, `"190"`, …), or one of ours:
    /// `"transport"`, `"unexpected_response"`, `"media_file"`, `"upload_http_<status>"`.
    pub code: String,
    /// Meta's `error_subcode` (e.g. `463` expired token, `2207027` media not ready).
    pub subcode: Option<i64>,
    /// A message a person can act on.
    pub message: String,
    pub http_status: Option<u16>,
    /// How long to wait before trying again, when known (capped at [`MAX_RETRY_AFTER`]).
    pub retry_after: Option<Duration>,
    /// Meta's usage headers on the failed answer, if any.
    pub usage: Option<Box<Usage>>,
}

/// The longest wait a provider may impose through `Retry-After` (or an estimate) before we
/// ignore it and let the caller's own backoff decide.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

impl ProviderError {
    pub(crate) fn new(
        platform: Platform,
        kind: ErrorKind,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            platform,
            kind,
            code: code.into(),
            subcode: None,
            message: message.into(),
            http_status: None,
            retry_after: None,
            usage: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait.map(|w| w.min(MAX_RETRY_AFTER));
        self
    }

    /// An answer we could not make sense of (not the documented shape).
    pub(crate) fn unexpected(platform: Platform, status: u16, what: &str) -> Self {
        let kind = if status >= 500 {
            ErrorKind::Retryable
        } else {
            ErrorKind::Permanent
        };
        Self::new(
            platform,
            kind,
            "unexpected_response",
            format!(
                "{} answered HTTP {status} with {what}",
                platform.display_name()
            ),
        )
        .with_status(status)
    }

    /// A request that failed below HTTP: connect error, timeout, connection dropped, body cut.
    pub(crate) fn transport(platform: Platform, call: Call, err: reqwest::Error) -> Self {
        let err = err.without_url();
        // A connect failure means nothing reached the provider, whatever the call was.
        let never_sent = err.is_connect();
        let kind = match call.idempotency {
            Idempotency::Idempotent => ErrorKind::Retryable,
            Idempotency::NonIdempotent if never_sent => ErrorKind::Retryable,
            Idempotency::NonIdempotent => ErrorKind::OutcomeUnknown,
        };
        let what = if never_sent {
            "could not connect to"
        } else if err.is_timeout() {
            "timed out waiting for"
        } else {
            "lost the connection to"
        };
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        let mut message = format!(
            "{what} {} during {} ({detail})",
            platform.display_name(),
            call.label
        );
        if kind == ErrorKind::OutcomeUnknown {
            message.push_str(
                "; the call may have taken effect, so check its outcome before calling again",
            );
        }
        Self::new(platform, kind, "transport", message)
    }

    /// Whether refreshing the access token (TikTok refresh grant, Instagram-Login refresh) may
    /// fix this error: an expired or invalid access token, as opposed to a revoked
    /// authorization or a missing scope, which need the user to connect again.
    pub fn token_refresh_may_help(&self) -> bool {
        self.kind == ErrorKind::Reauth
            && match self.platform {
                Platform::Tiktok => self.code == "access_token_invalid",
                Platform::Instagram => {
                    self.code == "190" && matches!(self.subcode, None | Some(463))
                }
                // Threads refreshes only a token that is still valid: a token it refused
                // (expired, revoked) cannot be refreshed, the person must connect again.
                Platform::Threads => false,
            }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Retryable | ErrorKind::RateLimited)
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} error: {} [code {}",
            self.platform.display_name(),
            self.kind,
            self.message,
            self.code
        )?;
        if let Some(subcode) = self.subcode {
            write!(f, "/{subcode}")?;
        }
        if let Some(status) = self.http_status {
            write!(f, ", HTTP {status}")?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for ProviderError {}

/// Why an inbound webhook's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error(
        "the signature timestamp is {age_secs} s away from now, outside the {tolerance_secs} s window"
    )]
    OutsideWindow { age_secs: i64, tolerance_secs: u64 },
}

/// Whether repeating a call can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    Idempotent,
    NonIdempotent,
}

/// A provider call as the error helpers see it: a label for messages and logs (never a URL,
/// which may carry a token) and its idempotency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub label: &'static str,
    pub idempotency: Idempotency,
}

impl Call {
    pub const fn idempotent(label: &'static str) -> Self {
        Self {
            label,
            idempotency: Idempotency::Idempotent,
        }
    }

    pub const fn non_idempotent(label: &'static str) -> Self {
        Self {
            label,
            idempotency: Idempotency::NonIdempotent,
        }
    }
}

/// `Retry-After` in seconds (HTTP dates are rare on these APIs and are ignored).
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_code() {
        let err = ProviderError::new(
            Platform::Tiktok,
            ErrorKind::Reauth,
            "access_token_invalid",
            "The access token is invalid.",
        )
        .with_status(401);
        assert_eq!(
            err.to_string(),
            "TikTok reauth error: The access token is invalid. [code access_token_invalid, HTTP 401]"
        );
        assert!(err.token_refresh_may_help());
    }

    #[test]
    fn retry_after_is_capped() {
        let err = ProviderError::new(Platform::Tiktok, ErrorKind::RateLimited, "x", "y")
            .with_retry_after(Some(Duration::from_secs(86_400)));
        assert_eq!(err.retry_after, Some(MAX_RETRY_AFTER));
    }
}
