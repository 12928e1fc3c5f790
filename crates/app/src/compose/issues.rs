//! What is wrong with a post, named so a person can act: [`Issue`] (the target, account and
//! platform, the field as the API names it, a stable rule and a message), made from a
//! platform check's refusal ([`issue_of`]) or a limit's ([`quota_issue`]).

use serde::Serialize;
use tidepost_domain::Platform;

use super::TargetSpec;
use crate::pipeline::PublishError;
use crate::pipeline::quota::LimitCheck;

/// One problem with a composite post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The index of the target in the request; `None` for the post as a whole.
    pub target: Option<usize>,
    pub account_id: Option<String>,
    pub platform: Option<Platform>,
    /// The field at fault, as the API names it (`targets[1].tiktok.privacy_level`,
    /// `scheduled_at`, `media`).
    pub field: String,
    /// A stable name of the rule (`required`, `not_found`, `duplicate`, `wrong_platform`,
    /// `needs_reauth`, `quota`, `in_past`, or the platform check's field such as
    /// `privacy_level`, `caption`, `items`).
    pub rule: String,
    pub message: String,
    /// For a `quota` refusal: when the next slot opens (ms since the epoch).
    pub next_slot_ms: Option<i64>,
    /// For a `provider` refusal: the platform's error code and whether trying again may work.
    pub provider: Option<ProviderRefusal>,
}

/// What a platform said when it refused a check (an `Issue` of rule `provider`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProviderRefusal {
    pub code: String,
    pub retryable: bool,
    /// For the platform's passing trouble (its rate limit, a 5xx): how many seconds to wait
    /// before trying again. Such a refusal is about the moment, not the post.
    pub retry_after_secs: Option<u64>,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.account_id, &self.platform) {
            (Some(account), Some(platform)) => {
                write!(f, "{platform} account {account}: ")?;
            }
            (Some(account), None) => write!(f, "account {account}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The wait suggested when the platform's trouble named none.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 30;

/// The rule of an issue that is the platform's passing trouble (its rate limit or a 5xx while
/// the post was checked), not a fault of the post.
pub const PROVIDER_UNAVAILABLE: &str = "provider_unavailable";

impl Issue {
    /// When every issue is a platform's passing trouble: the longest wait they name. Nothing is
    /// wrong with the post itself, so the API answers 503 with `Retry-After` (and the composer
    /// page the same), not a refusal of the post.
    pub fn only_provider_trouble(issues: &[Issue]) -> Option<u64> {
        if issues.is_empty() || issues.iter().any(|i| i.rule != PROVIDER_UNAVAILABLE) {
            return None;
        }
        issues
            .iter()
            .filter_map(|i| i.provider.as_ref().and_then(|p| p.retry_after_secs))
            .max()
            .or(Some(DEFAULT_RETRY_AFTER_SECS))
    }
}

pub(super) fn issue(
    target: Option<(usize, &TargetSpec, Option<Platform>)>,
    field: impl Into<String>,
    rule: &str,
    message: impl Into<String>,
) -> Issue {
    Issue {
        target: target.map(|t| t.0),
        account_id: target.map(|t| t.1.account_id.clone()),
        platform: target.and_then(|t| t.2),
        field: field.into(),
        rule: rule.into(),
        message: message.into(),
        next_slot_ms: None,
        provider: None,
    }
}

/// The issue a platform check's refusal makes, its field under the target.
pub(super) fn issue_of(
    index: usize,
    spec: &TargetSpec,
    platform: Platform,
    err: PublishError,
) -> Issue {
    let at = Some((index, spec, Some(platform)));
    let base = format!("targets[{index}]");
    // A platform's options are under its name (`targets[0].tiktok.privacy_level`).
    let section = platform.as_str();
    match err {
        PublishError::Invalid { field, message } => {
            let path = match field {
                "caption" => format!("{base}.caption"),
                "media" | "media_url" | "photo_urls" | "items" => "media".to_string(),
                "account_id" => format!("{base}.account_id"),
                other => format!("{base}.{section}.{other}"),
            };
            issue(at, path, field, message)
        }
        PublishError::NotFound(what) => issue(
            at,
            if what == "media" {
                "media".to_string()
            } else {
                format!("{base}.account_id")
            },
            "not_found",
            format!("{what} not found"),
        ),
        PublishError::NeedsReauth(message) => issue(
            at,
            format!("{base}.account_id"),
            "needs_reauth",
            format!("the account must be connected again: {message}"),
        ),
        PublishError::Quota {
            message,
            next_slot_ms,
        } => Issue {
            next_slot_ms: Some(next_slot_ms),
            ..issue(at, "scheduled_at", "quota", message)
        },
        PublishError::Provider(e) if e.is_retryable() => {
            // The platform's rate limit or a 5xx while checking the post (TikTok's
            // creator_info, Meta's publishing limit): nothing is wrong with the post.
            let wait = e
                .retry_after
                .map_or(DEFAULT_RETRY_AFTER_SECS, |w| w.as_secs().max(1));
            Issue {
                provider: Some(ProviderRefusal {
                    code: e.code.clone(),
                    retryable: true,
                    retry_after_secs: Some(wait),
                }),
                ..issue(
                    at,
                    format!("{base}.account_id"),
                    PROVIDER_UNAVAILABLE,
                    format!(
                        "{} is not answering right now ({}), so the post could not be checked; nothing was posted, try again in {wait} seconds",
                        platform.display_name(),
                        e.message.trim_end_matches('.'),
                    ),
                )
            }
        }
        PublishError::Provider(e) => Issue {
            provider: Some(ProviderRefusal {
                code: e.code.clone(),
                retryable: false,
                retry_after_secs: None,
            }),
            ..issue(
                at,
                format!("{base}.account_id"),
                "provider",
                format!("the provider refused: {}", e.message),
            )
        },
        other @ (PublishError::Conflict(_)
        | PublishError::Unavailable(_)
        | PublishError::Store(_)
        | PublishError::Io(_)
        | PublishError::TooLarge { .. }) => issue(at, base, "unavailable", other.to_string()),
    }
}

/// The `quota` issue of a target refused at `at` by its limit, naming the next free slot (times
/// spoken in `time_zone`, the zone the post was scheduled in, else UTC, named).
pub(super) fn quota_issue(
    index: usize,
    spec: &TargetSpec,
    platform: Platform,
    limit: &LimitCheck,
    next: Option<i64>,
    time_zone: Option<&str>,
) -> Issue {
    let at = Some((index, spec, Some(platform)));
    let message = &limit.message;
    match next {
        Some(slot) => Issue {
            next_slot_ms: Some(slot),
            ..issue(
                at,
                "scheduled_at",
                "quota",
                format!(
                    "{message} on {}; the next free slot is {}",
                    super::schedule::spoken(limit.at, time_zone),
                    super::schedule::spoken(slot, time_zone)
                ),
            )
        },
        None => issue(
            at,
            "scheduled_at",
            "quota",
            format!("{message}: the limit is 0, nothing can be posted"),
        ),
    }
}
