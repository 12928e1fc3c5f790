//! Graph error codes → [`ErrorKind`] and a message a person can act on.
//!
//! | code / subcode | kind |
//! |---|---|
//! | 190 (any subcode: 458 app removed, 460 password changed, 463 expired, 467 invalid), 102 | Reauth |
//! | 4, 17, 32, 613, 80002, 341 | RateLimited (wait from `estimated_time_to_regain_access`, else 5 min) |
//! | 4 / 2207051 (activity restricted) | Permanent |
//! | 9 / 2207042 (publishing limit) | RateLimited (retry after the rolling 24 h window frees a slot) |
//! | 9007 / 2207027 (media not ready) | Retryable |
//! | 9004 / 2207052, 2207003 (media fetch failed) | Retryable |
//! | -1 / 2207001, codes 1 and 2, `is_transient: true`, HTTP 5xx | Retryable |
//! | 10, 200–299 (permission missing) | Permanent, naming the permission |
//! | -2 / 2207020 (container expired), 100, 506, others | Permanent |
//!
//! A non-idempotent call (`media_publish`, a reply) answered with HTTP 5xx is OutcomeUnknown:
//! Meta's 5xx do not say whether the write happened.

use std::time::Duration;

use serde::Deserialize;

use super::PLATFORM;
use super::usage::Usage;
use crate::error::{Call, ErrorKind, Idempotency, ProviderError, retry_after_header};
use crate::http::Answer;

/// Meta gives no window for 4/17/32/613 without the BUC header; it asks callers to stop a while.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5 * 60);
/// The publishing limit is a rolling 24 h window: wait as long as we ever hint (the caller can
/// read `publishing_limit` to know better).
const PUBLISHING_LIMIT_WAIT: Duration = crate::error::MAX_RETRY_AFTER;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GraphError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<i64>,
    pub error_subcode: Option<i64>,
    pub error_user_title: Option<String>,
    pub error_user_msg: Option<String>,
    pub is_transient: Option<bool>,
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct GraphEnvelope {
    error: GraphError,
}

/// api.instagram.com's legacy error shape.
#[derive(Deserialize)]
struct LegacyError {
    error_message: String,
}

/// The error of a non-2xx answer (or a 2xx answer carrying an error body).
pub(crate) fn from_answer(answer: &Answer, call: Call, usage: Option<Usage>) -> ProviderError {
    let mut error = if let Ok(GraphEnvelope { error }) = serde_json::from_slice(&answer.body) {
        classify(&error, usage.as_ref())
    } else if let Ok(legacy) = serde_json::from_slice::<LegacyError>(&answer.body) {
        legacy_error(&legacy)
    } else {
        let mut error = ProviderError::unexpected(
            PLATFORM,
            answer.status,
            &format!("no readable error body for {}", call.label),
        );
        if answer.status == 429 {
            error.kind = ErrorKind::RateLimited;
            error = error.with_retry_after(
                retry_after_header(&answer.headers).or(Some(DEFAULT_RATE_LIMIT_WAIT)),
            );
        }
        error
    };
    if answer.status >= 500 && call.idempotency == Idempotency::NonIdempotent {
        error.kind = ErrorKind::OutcomeUnknown;
        error
            .message
            .push_str(" The call may have taken effect: check before calling again.");
    }
    error.http_status = Some(answer.status);
    error.usage = usage.map(Box::new);
    error
}

/// One Graph error, by the table in the module docs.
pub(crate) fn classify(e: &GraphError, usage: Option<&Usage>) -> ProviderError {
    use ErrorKind::*;
    let code = e.code.unwrap_or(0);
    let subcode = e.error_subcode;
    let said = said(e);
    let rate_wait = usage
        .and_then(Usage::regain_access_after)
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
    let (kind, message, wait) = match (code, subcode) {
        (190, sub) | (102, sub) => (Reauth, format!("{}{said}", token_message(sub)), None),
        (4, Some(2207051)) => (
            Permanent,
            format!("Instagram restricted this account's activity (suspected spam); the account owner must resolve it in the Instagram app{said}"),
            None,
        ),
        (9, Some(2207042)) => (
            RateLimited,
            "This Instagram account reached its limit of posts published through the API in 24 hours; publish again once the rolling window frees a slot.".to_string(),
            Some(PUBLISHING_LIMIT_WAIT),
        ),
        (4 | 17 | 32 | 613 | 80002 | 341, _) => (
            RateLimited,
            format!("Meta's rate limit was reached; stop calling for a while{said}"),
            Some(rate_wait),
        ),
        (_, Some(2207027)) | (9007, _) => (
            Retryable,
            "The media is not ready for publishing yet; wait until the container is FINISHED, then publish again.".into(),
            None,
        ),
        (_, Some(2207052 | 2207003)) | (9004, None) => (
            Retryable,
            format!("Meta could not fetch the media from its URL; check it is public and reachable, then try again{said}"),
            None,
        ),
        (_, Some(2207020)) => (
            Permanent,
            "The media container expired (not published within 24 hours); create a new one.".into(),
            None,
        ),
        (_, Some(2207001)) | (1 | 2, _) => (
            Retryable,
            format!("Meta had a temporary error; try again later{said}"),
            None,
        ),
        (10 | 200..=299, _) => (
            Permanent,
            format!("A permission is missing on the Instagram connection; reconnect the account granting it{said}"),
            None,
        ),
        _ if e.is_transient == Some(true) => (
            Retryable,
            format!("Meta had a transient error; try again later{said}"),
            None,
        ),
        _ => (Permanent, format!("Meta refused the request{said}"), None),
    };
    let code_text = e
        .code
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    let mut error = ProviderError::new(PLATFORM, kind, code_text, message).with_retry_after(wait);
    error.subcode = subcode;
    error
}

/// `: <user message or message> (trace <id>).` — what Meta said, for people and support.
fn said(e: &GraphError) -> String {
    let text = e
        .error_user_msg
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(&e.message);
    let trace = e
        .fbtrace_id
        .as_deref()
        .map(|t| format!(" (trace {t})"))
        .unwrap_or_default();
    if text.is_empty() {
        format!(".{trace}")
    } else {
        format!(": {text}{trace}")
    }
}

fn token_message(subcode: Option<i64>) -> String {
    let why = match subcode {
        Some(458) => "the user removed the app",
        Some(459) => "the user must log in to Facebook to unlock their account",
        Some(460) => "the user changed their password",
        Some(463) => "the token expired",
        Some(464) => "the user is not confirmed",
        Some(467) => "the token is no longer valid",
        _ => "the token is invalid",
    };
    format!("Meta refused the access token ({why}); the account must be connected again")
}

fn legacy_error(e: &LegacyError) -> ProviderError {
    ProviderError::new(
        PLATFORM,
        ErrorKind::Permanent,
        "oauth",
        format!(
            "Instagram refused the login: {}; start the connection again.",
            e.error_message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: i64, subcode: Option<i64>) -> GraphError {
        GraphError {
            message: "m".into(),
            code: Some(code),
            error_subcode: subcode,
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        use ErrorKind::*;
        let cases = [
            (190, Some(463), Reauth),
            (190, Some(458), Reauth),
            (190, None, Reauth),
            (4, None, RateLimited),
            (17, None, RateLimited),
            (32, None, RateLimited),
            (613, Some(1996), RateLimited),
            (80002, None, RateLimited),
            (4, Some(2207051), Permanent),
            (9, Some(2207042), RateLimited),
            (9007, Some(2207027), Retryable),
            (9004, Some(2207052), Retryable),
            (-2, Some(2207003), Retryable),
            (-2, Some(2207020), Permanent),
            (-1, Some(2207001), Retryable),
            (2, None, Retryable),
            (10, None, Permanent),
            (200, None, Permanent),
            (100, None, Permanent),
            (36000, Some(2207004), Permanent),
        ];
        for (code, subcode, kind) in cases {
            assert_eq!(
                classify(&error(code, subcode), None).kind,
                kind,
                "{code}/{subcode:?}"
            );
        }
        let transient = GraphError {
            is_transient: Some(true),
            ..error(123, None)
        };
        assert_eq!(classify(&transient, None).kind, Retryable);
        let fetch = classify(&error(9004, Some(2207052)), None);
        assert!(
            fetch
                .message
                .contains("Meta could not fetch the media from its URL")
        );
        let limit = classify(&error(9, Some(2207042)), None);
        assert_eq!(limit.retry_after, Some(crate::error::MAX_RETRY_AFTER));
    }
}
