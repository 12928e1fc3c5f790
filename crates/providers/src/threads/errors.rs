//! Threads error codes → [`ErrorKind`] and a message a person can act on. Every Threads error
//! is Graph's envelope with `type: OAuthException`, mostly HTTP 400; the localized
//! `error_user_*` texts are shown, never matched.
//!
//! | code / subcode | kind |
//! |---|---|
//! | 190 (463 expired, 458 removed, …), 102 | Reauth |
//! | 24 / 4279009 (media not found: the container is not visible yet) | Retryable |
//! | 9 (publishing limit, code unconfirmed for Threads) or a message naming the limit at publish | RateLimited |
//! | 4, 17, 32, 613 | RateLimited (5 minutes) |
//! | 452 / 4279019 (exchanging a token that is already long-lived) | Permanent |
//! | 1 / 2207052 (media could not be fetched) | Retryable |
//! | 2207051, 4279013 (account restricted) | Permanent |
//! | 1, 2, `is_transient: true`, HTTP 5xx | Retryable |
//! | 10, 200–299 (permission missing) | Permanent |
//! | 100 and others | Permanent |
//!
//! A non-idempotent call (`threads_publish`) answered with HTTP 5xx is OutcomeUnknown.

use std::time::Duration;

use serde::Deserialize;

use super::PLATFORM;
use crate::error::{Call, ErrorKind, Idempotency, ProviderError, retry_after_header};
use crate::http::Answer;

/// "Media Not Found" at `threads_publish`: the container is not visible yet (transient).
pub const MEDIA_NOT_FOUND_SUBCODE: i64 = 4279009;
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GraphError {
    message: String,
    code: Option<i64>,
    error_subcode: Option<i64>,
    error_user_msg: Option<String>,
    is_transient: Option<bool>,
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

/// Whether `e` says the account's publishing limit (250 posts in 24 hours) is spent.
pub fn is_publishing_limit(e: &ProviderError) -> bool {
    e.platform == PLATFORM && e.code == "9"
}

pub(super) fn from_answer(answer: &Answer, call: Call) -> ProviderError {
    let mut error = match serde_json::from_slice::<Envelope>(&answer.body) {
        Ok(Envelope { error }) => classify(&error),
        Err(_) => {
            let mut error = ProviderError::unexpected(
                PLATFORM,
                answer.status,
                &format!("no readable error body for {}", call.label),
            );
            if answer.status == 429 {
                error.kind = ErrorKind::RateLimited;
                error = error.with_retry_after(
                    retry_after_header(&answer.headers).or(Some(RATE_LIMIT_WAIT)),
                );
            }
            error
        }
    };
    if answer.status >= 500 && call.idempotency == Idempotency::NonIdempotent {
        error.kind = ErrorKind::OutcomeUnknown;
        error
            .message
            .push_str(" The call may have taken effect: check before calling again.");
    }
    error.http_status = Some(answer.status);
    error
}

fn classify(e: &GraphError) -> ProviderError {
    use ErrorKind::*;
    let code = e.code.unwrap_or(0);
    let said = said(e);
    let limit_words = e.message.to_ascii_lowercase().contains("limit");
    let not_yet = e.message.contains("eligible for refresh");
    let (kind, message, wait) = match (code, e.error_subcode) {
        // A refresh asked too early (a token under 24 hours old): the token stays valid.
        (190 | 100, _) if not_yet => (
            Permanent,
            format!("Threads refreshes a long-lived token only once it is 24 hours old{said}"),
            None,
        ),
        (190 | 102, sub) => (
            Reauth,
            format!(
                "Threads refused the access token ({}); the account must be connected again{said}",
                match sub {
                    Some(463) => "it expired",
                    Some(458) => "the app was removed",
                    Some(460) => "the password changed",
                    _ => "it is no longer valid",
                }
            ),
            None,
        ),
        (_, Some(MEDIA_NOT_FOUND_SUBCODE)) => (
            Retryable,
            format!("Threads does not see the container yet; publishing again shortly{said}"),
            None,
        ),
        (9, _) => (
            RateLimited,
            format!("This Threads account reached its limit of 250 posts in 24 hours{said}"),
            Some(crate::error::MAX_RETRY_AFTER),
        ),
        (_, Some(2207051 | 4279013)) => (
            Permanent,
            format!(
                "Threads restricted this account's activity; the owner must resolve it in the Threads app{said}"
            ),
            None,
        ),
        (4 | 17 | 32 | 613, _) => (
            RateLimited,
            format!("Meta's rate limit for Threads was reached; stop calling for a while{said}"),
            Some(RATE_LIMIT_WAIT),
        ),
        (452, _) | (_, Some(4279019)) => (
            Permanent,
            format!(
                "Threads refused to exchange the token (it is already long-lived or revoked){said}"
            ),
            None,
        ),
        (_, Some(2207052)) => (
            Retryable,
            format!(
                "Threads could not fetch the media from its URL; check it is public and reachable{said}"
            ),
            None,
        ),
        (1 | 2, _) => (
            Retryable,
            format!("Threads had a temporary error; try again later{said}"),
            None,
        ),
        (10 | 200..=299, _) => (
            Permanent,
            format!(
                "A permission is missing on the Threads connection; reconnect the account granting it{said}"
            ),
            None,
        ),
        _ if e.is_transient == Some(true) => (
            Retryable,
            format!("Threads had a transient error; try again later{said}"),
            None,
        ),
        _ if limit_words && code != 100 => (
            RateLimited,
            format!("A Threads limit was reached{said}"),
            Some(RATE_LIMIT_WAIT),
        ),
        _ => (
            Permanent,
            format!("Threads refused the request{said}"),
            None,
        ),
    };
    let code_text = e
        .code
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    let mut error = ProviderError::new(PLATFORM, kind, code_text, message).with_retry_after(wait);
    error.subcode = e.error_subcode;
    error
}

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

/// A container's `error_message` (Meta's enum, `INVALID_ASPEC_RATIO` spelled as the API
/// spells it) as a kind and words: a download that failed may work another time, a file
/// Threads cannot take will not.
pub(super) fn container_error(reason: &str) -> (ErrorKind, String) {
    let words = match reason {
        "FAILED_DOWNLOADING_VIDEO" => {
            "Threads could not download the video from its URL (it fetches the file itself; check the URL is public and reachable)"
        }
        "FAILED_PROCESSING_AUDIO" => {
            "Threads could not process the video's audio (AAC, up to 48 kHz, mono or stereo)"
        }
        "FAILED_PROCESSING_VIDEO" => {
            "Threads could not process the video (H.264 or HEVC, MP4 or MOV)"
        }
        "INVALID_ASPEC_RATIO" => {
            "Threads refused the video's aspect ratio (between 0.01:1 and 10:1)"
        }
        "INVALID_BIT_RATE" => "Threads refused the video's bit rate (at most 100 Mbps)",
        "INVALID_DURATION" => {
            "Threads refused the video's length (longer than 0 s and at most 5 minutes)"
        }
        "INVALID_FRAME_RATE" => "Threads refused the video's frame rate (23 to 60 FPS)",
        "INVALID_AUDIO_CHANNELS" | "INVALID_AUDIO_CHANNEL_LAYOUT" => {
            "Threads refused the video's audio channels (mono or stereo)"
        }
        _ => "Threads could not process the media",
    };
    let kind = if reason == "FAILED_DOWNLOADING_VIDEO" || reason == "UNKNOWN" {
        ErrorKind::Retryable
    } else {
        ErrorKind::Permanent
    };
    (kind, format!("{words} [{reason}]."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: i64, subcode: Option<i64>, message: &str) -> GraphError {
        GraphError {
            message: message.into(),
            code: Some(code),
            error_subcode: subcode,
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        use ErrorKind::*;
        let cases = [
            (190, Some(463), "m", Reauth),
            (190, None, "m", Reauth),
            (
                24,
                Some(4279009),
                "The requested resource does not exist",
                Retryable,
            ),
            (9, None, "m", RateLimited),
            (4, None, "m", RateLimited),
            (452, Some(4279019), "m", Permanent),
            (1, Some(2207052), "m", Retryable),
            (4, Some(2207051), "m", Permanent),
            (2, None, "m", Retryable),
            (10, None, "m", Permanent),
            (100, None, "text must be at most 500 characters", Permanent),
            (100, None, "link limit", Permanent),
            (190, None, "Session not eligible for refresh", Permanent),
        ];
        for (code, subcode, message, kind) in cases {
            assert_eq!(
                classify(&error(code, subcode, message)).kind,
                kind,
                "{code}/{subcode:?}"
            );
        }
        // A rate limit says how long to stop.
        assert_eq!(
            classify(&error(4, None, "m")).retry_after,
            Some(RATE_LIMIT_WAIT)
        );
        assert!(is_publishing_limit(&classify(&error(9, None, "m"))));
    }

    #[test]
    fn container_reasons() {
        assert_eq!(
            container_error("FAILED_DOWNLOADING_VIDEO").0,
            ErrorKind::Retryable
        );
        let (kind, words) = container_error("INVALID_DURATION");
        assert_eq!(kind, ErrorKind::Permanent);
        assert!(words.contains("5 minutes") && words.contains("[INVALID_DURATION]"));
    }
}
