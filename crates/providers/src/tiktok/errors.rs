//! TikTok's error codes → [`ErrorKind`] and a message a person can act on.
//!
//! | code | kind |
//! |---|---|
//! | `rate_limit_exceeded` | RateLimited (`Retry-After` honoured, else one minute) |
//! | `access_token_invalid` | Reauth (refresh may help) |
//! | `scope_not_authorized`, `scope_permission_missed` | Reauth (connect again granting the scope) |
//! | `internal_error`, other 5xx | Retryable |
//! | `spam_risk_*`, `reached_active_user_cap`, `unaudited_client_can_only_post_to_private_accounts`, `privacy_level_option_mismatch`, `url_ownership_unverified`, `invalid_param(s)`, `app_version_check_failed`, `invalid_publish_id`, `token_not_authorized_for_specified_publish_id`, `publish_not_cancellable`, others | Permanent |
//!
//! OAuth (flat) errors: `invalid_grant` on a refresh → Reauth; `server_error` /
//! `temporarily_unavailable` → Retryable; everything else → Permanent.

use std::time::Duration;

use crate::error::{Call, ErrorKind, Idempotency, ProviderError, retry_after_header};
use crate::http::Answer;

use super::PLATFORM;

/// TikTok documents no `Retry-After`; its windows are one minute long.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What the call was about, for messages.
#[derive(Debug, Default)]
pub(crate) struct Context<'a> {
    /// Media URLs of a PULL_FROM_URL init.
    pub pull_urls: &'a [String],
}

/// An error in the v2 envelope.
pub(crate) fn api_error(
    answer: &Answer,
    code: &str,
    provider_message: &str,
    log_id: &str,
    context: &Context<'_>,
) -> ProviderError {
    use ErrorKind::*;
    let said = if provider_message.is_empty() {
        String::new()
    } else {
        format!(" (TikTok said: {provider_message})")
    };
    let (kind, message) = match code {
        "rate_limit_exceeded" => (
            RateLimited,
            "TikTok's rate limit for this call was exceeded; wait a minute before calling again."
                .to_string(),
        ),
        "access_token_invalid" => (
            Reauth,
            "The TikTok access token is invalid or expired; refresh it, or ask the creator to connect the account again.".into(),
        ),
        "scope_not_authorized" | "scope_permission_missed" => (
            Reauth,
            format!("The creator did not grant TikTok a permission this needs; ask them to connect the account again and allow it{said}."),
        ),
        "internal_error" => (
            Retryable,
            "TikTok had an internal error; try again later.".into(),
        ),
        "spam_risk_too_many_posts" => (
            Permanent,
            "This TikTok account reached its daily limit of posts made through apps; try again in 24 hours or post from the TikTok app.".into(),
        ),
        "spam_risk_user_banned_from_posting" => (
            Permanent,
            "TikTok has banned this account from making new posts.".into(),
        ),
        "spam_risk_too_many_pending_share" => (
            Permanent,
            "This TikTok account already has the maximum of drafts waiting in its inbox from the last 24 hours; ask the creator to post or discard them, or try again later.".into(),
        ),
        "reached_active_user_cap" => (
            Permanent,
            "This TikTok app reached its daily quota of creators who may post through it; try again tomorrow (an audited app gets a larger quota).".into(),
        ),
        "unaudited_client_can_only_post_to_private_accounts" => (
            Permanent,
            "This TikTok app has not been audited by TikTok yet, so it can only post to private accounts (as \"only me\"); make the account private, or have the app audited in the TikTok developer portal.".into(),
        ),
        "privacy_level_option_mismatch" => (
            Permanent,
            "The chosen privacy level is not one this creator allows; fetch the creator info again and let the user pick one of its privacy options.".into(),
        ),
        "url_ownership_unverified" => (Permanent, url_ownership_message(context.pull_urls)),
        "app_version_check_failed" => (
            Permanent,
            "The creator's TikTok app is too old for this kind of upload; ask them to update the app.".into(),
        ),
        "invalid_param" | "invalid_params" => (
            Permanent,
            format!("TikTok refused the request as invalid{said}."),
        ),
        "invalid_file_upload" => (
            Permanent,
            format!("The uploaded file does not meet TikTok's requirements{said}."),
        ),
        "invalid_publish_id" | "token_not_authorized_for_specified_publish_id" => (
            Permanent,
            format!("TikTok does not know this publish for this account{said}."),
        ),
        "publish_not_cancellable" => (
            Permanent,
            "The publish can no longer be cancelled: it already reached a final state or is being processed.".into(),
        ),
        _ => (
            by_status(answer.status),
            format!("TikTok answered with error {code}{said}."),
        ),
    };
    let message = if log_id.is_empty() {
        message
    } else {
        format!("{message} (log id {log_id})")
    };
    let mut error = ProviderError::new(PLATFORM, kind, code, message).with_status(answer.status);
    if kind == RateLimited {
        error = error.with_retry_after(
            retry_after_header(&answer.headers).or(Some(DEFAULT_RATE_LIMIT_WAIT)),
        );
    }
    error
}

/// An answer without the v2 envelope (a gateway page, an empty 502, …).
pub(crate) fn without_envelope(answer: &Answer, call: Call) -> ProviderError {
    let status = answer.status;
    let mut error = match status {
        429 => ProviderError::new(
            PLATFORM,
            ErrorKind::RateLimited,
            "rate_limit_exceeded",
            "TikTok's rate limit was exceeded; wait before calling again.",
        )
        .with_status(status)
        .with_retry_after(retry_after_header(&answer.headers).or(Some(DEFAULT_RATE_LIMIT_WAIT))),
        401 => ProviderError::new(
            PLATFORM,
            ErrorKind::Reauth,
            "access_token_invalid",
            "TikTok refused the access token; refresh it, or ask the creator to connect again.",
        )
        .with_status(status),
        _ => ProviderError::unexpected(
            PLATFORM,
            status,
            &format!("no readable body for {}", call.label),
        ),
    };
    // A gateway error on a call that creates something says nothing about whether it did.
    if status >= 500 && call.idempotency == Idempotency::NonIdempotent {
        error.kind = ErrorKind::OutcomeUnknown;
        error
            .message
            .push_str("; the call may have taken effect, so check before calling again");
    }
    error
}

/// A flat OAuth error (token and revoke endpoints).
pub(crate) fn oauth_error(
    answer: &Answer,
    error: &str,
    description: &str,
    grant: Grant,
) -> ProviderError {
    use ErrorKind::*;
    let said = if description.is_empty() {
        String::new()
    } else {
        format!(" (TikTok said: {description})")
    };
    let (kind, message) = match (error, grant) {
        ("invalid_grant", Grant::Refresh) => (
            Reauth,
            format!(
                "TikTok refused the refresh token (expired, revoked or already used); the creator must connect the account again{said}."
            ),
        ),
        ("invalid_grant", Grant::Code) => (
            Permanent,
            format!(
                "TikTok refused the authorization code (expired, already used, or the redirect URI or PKCE verifier differs); start the connection again{said}."
            ),
        ),
        ("invalid_client", _) => (
            Permanent,
            format!(
                "TikTok refused the app's client key or secret; check the TikTok app configuration{said}."
            ),
        ),
        ("server_error" | "temporarily_unavailable", _) => (
            Retryable,
            format!("TikTok's login service is temporarily unavailable; try again later{said}."),
        ),
        _ => (
            Permanent,
            format!("TikTok refused the request: {error}{said}."),
        ),
    };
    ProviderError::new(PLATFORM, kind, error, message).with_status(answer.status)
}

/// Which OAuth call failed: the same `invalid_grant` means different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    Code,
    Refresh,
    Revoke,
}

/// A chunk PUT that was not acknowledged. The upload endpoint documents statuses, not bodies.
pub(crate) fn upload_error(answer: &Answer, uploaded: Option<u64>) -> ProviderError {
    use ErrorKind::*;
    let status = answer.status;
    let progress = uploaded
        .map(|b| format!(" TikTok has {b} bytes of the file."))
        .unwrap_or_default();
    let (kind, message) = match status {
        400 => (
            Permanent,
            "TikTok refused the chunk as malformed (headers or length).".to_string(),
        ),
        403 => (
            Permanent,
            "The TikTok upload URL expired (it is valid one hour); start a new publish.".into(),
        ),
        404 => (
            Permanent,
            "TikTok has no upload task for this upload URL.".into(),
        ),
        416 => (
            Permanent,
            format!(
                "TikTok expected a different byte range for this chunk; resume from the bytes it already has.{progress}"
            ),
        ),
        429 => (
            RateLimited,
            "TikTok is throttling uploads; wait before sending the chunk again.".into(),
        ),
        s if s >= 500 => (
            Retryable,
            "TikTok's upload gateway failed; send the same chunk again.".into(),
        ),
        _ => (
            Permanent,
            format!("TikTok answered the chunk with HTTP {status}."),
        ),
    };
    let mut error = ProviderError::new(PLATFORM, kind, format!("upload_http_{status}"), message)
        .with_status(status);
    if kind == RateLimited {
        error = error.with_retry_after(
            retry_after_header(&answer.headers).or(Some(DEFAULT_RATE_LIMIT_WAIT)),
        );
    }
    error
}

/// A `FAILED` publish's `fail_reason` (also the `reason` of `post.publish.failed`).
pub(crate) fn fail_reason_error(reason: &str) -> ProviderError {
    use ErrorKind::*;
    let (kind, message) = match reason {
        "internal" => (
            Retryable,
            "TikTok had an internal error while processing the post; publish it again.",
        ),
        "video_pull_failed" => (
            Retryable,
            "TikTok could not download the video from its URL (connection error or one-hour timeout); check the URL stays reachable and publish again.",
        ),
        "photo_pull_failed" => (
            Retryable,
            "TikTok could not download the photos from their URLs; check they stay reachable and publish again.",
        ),
        "auth_removed" => (
            Reauth,
            "The creator removed this app's access on TikTok while the post was processing; they must connect the account again.",
        ),
        "publish_cancelled" => (Permanent, "The publish was cancelled."),
        "file_format_check_failed" => (
            Permanent,
            "TikTok does not support this media format (use MP4, MOV or WebM with H.264/H.265/VP8/VP9; JPEG or WebP for photos).",
        ),
        "duration_check_failed" => (
            Permanent,
            "The video is too short or longer than this creator may post.",
        ),
        "frame_rate_check_failed" => (
            Permanent,
            "The video's frame rate is outside TikTok's 23–60 fps.",
        ),
        "picture_size_check_failed" => (
            Permanent,
            "The picture size is outside TikTok's limits (360–4096 px per side; photos at most 1080p).",
        ),
        "spam_risk_too_many_posts" => (
            Permanent,
            "This TikTok account made too many posts through apps in the last 24 hours; try again tomorrow or post from the TikTok app.",
        ),
        "spam_risk_user_banned_from_posting" => (
            Permanent,
            "TikTok has banned this account from making new posts.",
        ),
        "spam_risk_text" => (
            Permanent,
            "TikTok judged the caption risky or spammy; change it before posting again.",
        ),
        "spam_risk" => (Permanent, "TikTok judged the request risky and refused it."),
        _ => (Permanent, "TikTok failed the publish."),
    };
    let code = if reason.is_empty() { "failed" } else { reason };
    ProviderError::new(PLATFORM, kind, code, message)
}

fn by_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::RateLimited,
        401 => ErrorKind::Reauth,
        s if s >= 500 => ErrorKind::Retryable,
        _ => ErrorKind::Permanent,
    }
}

/// Tells which domain or URL prefix to verify, without echoing a query string (pre-signed
/// media URLs carry credentials there).
fn url_ownership_message(urls: &[String]) -> String {
    let generic = "TikTok refuses to pull media from a domain this app has not verified; verify the media host's domain or URL prefix under URL properties in the TikTok developer portal.".to_string();
    let Some(url) = urls.first().and_then(|u| url::Url::parse(u).ok()) else {
        return generic;
    };
    let Some(host) = url.host_str() else {
        return generic;
    };
    let path = url.path();
    let folder = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!(
        "TikTok refuses to pull media from {host}: this app has not verified it. In the TikTok developer portal, under URL properties, verify the domain {host} or the URL prefix {}://{host}{folder} (all media URLs must lie under a verified property).",
        url.scheme()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ownership_names_host_and_prefix_but_not_query() {
        let message =
            url_ownership_message(&["https://cdn.example.com/media/v/1.mp4?sig=SECRET".into()]);
        assert!(message.contains("cdn.example.com"));
        assert!(message.contains("https://cdn.example.com/media/v/"));
        assert!(!message.contains("SECRET"));
    }
}
