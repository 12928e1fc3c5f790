//! How a refused post reads as problem+json: a publish error ([`problem_on`]), every issue of
//! a post at once ([`compose_problem`]), and a post in the single-account shape
//! ([`single_problem`]) whose issues are named as its fields and keep the statuses that shape
//! always had (404 for an unknown account, 409 to reconnect, 429 for a limit, 502 when the
//! platform refused). The platform's passing trouble while a post is checked (its rate limit,
//! a 5xx) is 503 with `Retry-After` in every shape: the post is not at fault.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tidepost_app::compose::{self, ComposeError, Issue, Schedule};
use tidepost_app::pipeline::PublishError;
use tidepost_domain::Platform;

use crate::error::Problem;

/// A publish error as problem+json, when no one platform is concerned.
pub fn problem(err: PublishError) -> Problem {
    problem_on(err, None)
}

/// A publish error about an account of `platform` (when one is concerned) as problem+json.
pub fn problem_on(err: PublishError, platform: Option<Platform>) -> Problem {
    match err {
        PublishError::Invalid { field, message } => {
            Problem::invalid(format!("{field}: {message}")).with("field", field)
        }
        PublishError::NotFound(what) => Problem::not_found(what),
        PublishError::Quota {
            message,
            next_slot_ms,
        } => limit_reached(message, next_slot_ms),
        PublishError::Conflict(message) => Problem::conflict(message),
        PublishError::NeedsReauth(message) => needs_reauth(&message, platform),
        PublishError::Provider(e) if e.is_retryable() => {
            let wait = e
                .retry_after
                .map_or(tidepost_app::compose::DEFAULT_RETRY_AFTER_SECS, |w| {
                    w.as_secs().max(1)
                });
            provider_unavailable(platform, e.message, wait)
                .with("provider_code", e.code)
                .with("retryable", true)
        }
        PublishError::Provider(e) => {
            let retryable = e.is_retryable();
            refused_by(platform, e.message)
                .with("provider_code", e.code)
                .with("retryable", retryable)
        }
        PublishError::Unavailable(message) => Problem::unavailable(message),
        PublishError::TooLarge { max } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Upload too large",
            format!("the file is larger than the {max} bytes allowed"),
        ),
        // A body the client cut off is its 400; a full media disk is an operator's problem the
        // caller should hear about plainly (507, and may retry later); the rest is ours.
        PublishError::Io(e) => Problem::from_io(e),
        PublishError::Store(e) => e.into(),
    }
}

pub(crate) fn field_problem(field: &str, message: impl std::fmt::Display) -> Problem {
    Problem::invalid(format!("{field}: {message}")).with("field", field.to_string())
}

/// The schedule fields of a request.
pub(crate) fn schedule_of(
    scheduled_at: Option<&str>,
    time_zone: Option<&str>,
    schedule: Option<&str>,
) -> Result<Schedule, Problem> {
    let next_free_slot = match schedule {
        None | Some("exact") => false,
        Some("next_free_slot") => true,
        Some(other) => {
            return Err(field_problem(
                "schedule",
                format!("expected next_free_slot or exact, got {other:?}"),
            ));
        }
    };
    let at = match scheduled_at {
        Some(text) => Some(
            compose::schedule::parse(text, time_zone)
                .map_err(|e| field_problem(e.field, e.message))?,
        ),
        None if time_zone.is_some() => {
            return Err(field_problem(
                "time_zone",
                "a time_zone goes with a scheduled_at",
            ));
        }
        None => None,
    };
    Ok(Schedule { at, next_free_slot })
}

/// A new time in a body that changes one (`PATCH /posts/{id}`, publishing a draft):
/// `scheduled_at` given — null for now — with its `time_zone` and `schedule`; `None` when the
/// body gives no time.
pub(crate) fn changed_schedule(
    scheduled_at: Option<Option<&str>>,
    time_zone: Option<&str>,
    schedule: Option<&str>,
) -> Result<Option<Schedule>, Problem> {
    match scheduled_at {
        Some(at) => schedule_of(at, time_zone, schedule).map(Some),
        None if time_zone.is_some() || schedule.is_some() => Err(field_problem(
            "scheduled_at",
            "time_zone and schedule go with a scheduled_at (null for now)",
        )),
        None => Ok(None),
    }
}

/// A field given as `null` is `Some(None)`, a missing one `None` (with `#[serde(default)]`).
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    <Option<String> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Issues as the API lists them (a refusal's `errors`, a draft's `issues`).
pub(crate) fn issues_json(issues: &[Issue]) -> Vec<Value> {
    issues
        .iter()
        .map(|i| {
            json!({
                "target": i.target,
                "account_id": i.account_id,
                "platform": i.platform,
                "field": i.field,
                "rule": i.rule,
                "message": i.message,
                "next_slot_at": i.next_slot_ms.map(tidepost_domain::time::rfc3339),
                "provider": i.provider,
            })
        })
        .collect()
}

/// A composite post's refusal as problem+json: every issue in `errors`; 409 when the only
/// problem is the time (a limit), with the latest `next_slot_at` of the targets.
pub fn compose_problem(err: ComposeError) -> Problem {
    let only_quota = err.only_quota();
    match err {
        ComposeError::Invalid(issues) => {
            let detail = issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let next_slot = issues.iter().filter_map(|i| i.next_slot_ms).max();
            let errors = issues_json(&issues);
            let first_field = issues.first().map(|i| i.field.clone()).unwrap_or_default();
            let problem = if let Some(wait) = Issue::only_provider_trouble(&issues) {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider-unavailable",
                    "The platform is not answering right now",
                    detail,
                );
                p.retry_after_secs = Some(wait);
                p.with("retryable", true)
            } else if only_quota {
                Problem::new(
                    StatusCode::CONFLICT,
                    "schedule-limit",
                    "The schedule would break a posting limit",
                    detail,
                )
            } else {
                Problem::invalid(detail)
            };
            let problem = problem.with("errors", errors).with("field", first_field);
            match next_slot {
                Some(ms) => problem.with("next_slot_at", tidepost_domain::time::rfc3339(ms)),
                None => problem,
            }
        }
        ComposeError::NotFound(what) => Problem::not_found(what),
        ComposeError::Conflict(message) => Problem::conflict(message),
        ComposeError::Unavailable(message) => Problem::unavailable(message),
        ComposeError::Publish(e) => problem(e),
        ComposeError::Stale(version) => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "post-changed",
            "The post changed",
            ComposeError::Stale(version).to_string(),
        )
        .with("version", version),
        ComposeError::Started(refused) => Problem::new(
            StatusCode::CONFLICT,
            "targets-started",
            "Every target the change touches has started",
            ComposeError::Started(refused.clone()).to_string(),
        )
        .with(
            "refused",
            serde_json::to_value(&refused).unwrap_or_default(),
        ),
        ComposeError::Store(e) => e.into(),
    }
}

/// 503: the platform did not answer (its rate limit, a 5xx), with when to try again.
fn provider_unavailable(platform: Option<Platform>, message: String, wait: u64) -> Problem {
    // The platform named by its display name: no new place for a new platform to answer.
    let who = platform.map_or("The platform", |p| p.display_name());
    let mut p = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "provider-unavailable",
        "The platform is not answering right now",
        format!(
            "{who} is not answering right now ({}); try again in {wait} seconds",
            message.trim_end_matches('.')
        ),
    );
    p.retry_after_secs = Some(wait);
    p
}

/// A post in the single-account shape refused: the issues named as the fields of that shape
/// (`privacy_level`, `instagram.media_type`, `caption`, `media_url`…), with the statuses the
/// shape has always had when the one problem is the account, a limit or the platform.
pub fn single_problem(err: ComposeError, platform: Option<Platform>) -> Problem {
    let ComposeError::Invalid(issues) = err else {
        return compose_problem(err);
    };
    let issues = single_issues(issues, platform);
    if let [one] = issues.as_slice() {
        match one.rule.as_str() {
            "not_found" => {
                let what = if one.field.contains("media") {
                    "media"
                } else {
                    "account"
                };
                return Problem::not_found(what).with("field", one.field.clone());
            }
            "needs_reauth" => return needs_reauth(&one.message, platform),
            "quota" => {
                let next = one.next_slot_ms.unwrap_or_else(tidepost_domain::now_ms);
                return limit_reached(one.message.clone(), next);
            }
            "provider" => {
                let problem = refused_by(platform, one.message.clone());
                return match &one.provider {
                    Some(refusal) => problem
                        .with("provider_code", refusal.code.clone())
                        .with("retryable", refusal.retryable),
                    None => problem,
                };
            }
            "unavailable" => {
                return Problem::unavailable(one.message.clone());
            }
            _ => {}
        }
    }
    compose_problem(ComposeError::Invalid(issues))
}

/// The issues of a post in the single-account shape, their fields named as that shape names
/// them (what `POST /posts` and `POST /posts/validate` both answer).
pub fn single_issues(issues: Vec<Issue>, platform: Option<Platform>) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|i| Issue {
            field: single_field(&i, platform),
            ..i
        })
        .collect()
}

/// 409: the account must be connected again (`platform`'s, when known).
fn needs_reauth(message: &str, platform: Option<Platform>) -> Problem {
    let account = platform.map_or("the account".to_string(), |p| {
        format!("the {} account", p.display_name())
    });
    Problem::new(
        StatusCode::CONFLICT,
        "needs-reauth",
        "The account must be connected again",
        format!("{message}; connect {account} again"),
    )
}

/// 429: a posting limit, with when the next slot opens.
fn limit_reached(message: String, next_slot_ms: i64) -> Problem {
    let wait = (next_slot_ms - tidepost_domain::now_ms()).max(1000) / 1000;
    Problem::too_many_requests(message, u64::try_from(wait).unwrap_or(1))
        .with("next_slot_at", tidepost_domain::time::rfc3339(next_slot_ms))
}

/// 502: the platform refused ("TikTok refused", or "The platform refused" when unknown).
fn refused_by(platform: Option<Platform>, message: String) -> Problem {
    let title = match platform {
        Some(Platform::Tiktok) => "TikTok refused",
        Some(Platform::Instagram) => "Instagram refused",
        Some(Platform::Threads) => "Threads refused",
        None => "The platform refused",
    };
    Problem::new(StatusCode::BAD_GATEWAY, "provider-error", title, message)
}

/// An issue's field as the single-account shape names it: the target's fields at the top
/// level (the TikTok options) or in the `instagram` object, and the media by the field that
/// gave it.
fn single_field(issue: &Issue, platform: Option<Platform>) -> String {
    let field = issue.field.as_str();
    let Some(rest) = field.strip_prefix("targets[0]") else {
        return match field {
            "media" if matches!(issue.rule.as_str(), "media_url" | "photo_urls" | "media_id") => {
                issue.rule.clone()
            }
            "media" if issue.rule == "items" => "instagram.items".into(),
            other => other.to_string(),
        };
    };
    let rest = rest.trim_start_matches('.');
    match (platform, rest) {
        (_, "") => String::new(),
        (Some(Platform::Instagram), "caption") => "instagram.caption".into(),
        (_, "caption" | "account_id") => rest.to_string(),
        (_, rest) => match rest.split_once('.') {
            Some(("tiktok", option)) => option.to_string(),
            Some(("instagram", option)) => format!("instagram.{option}"),
            _ => rest.to_string(),
        },
    }
}
