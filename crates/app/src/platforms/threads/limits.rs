//! Threads' publishing limit: `threads_publishing_limit` (250 posts in a rolling 24 hours,
//! read before publishing), remembered on the account for the pages and for when Threads
//! cannot be asked, and the daily limit a target counts against.

use tidepost_providers::threads::PublishingLimit;
use tidepost_store::accounts::{self, Account};

use crate::App;
use crate::pipeline::quota::DailyLimit;
use crate::pipeline::{Prepared, PublishError};
use crate::tokens::{self, TokenError};

/// The key under which a Threads account's details keep the last reading:
/// `{"used", "total", "checked_at"}`.
pub const PUBLISHING_LIMIT_DETAIL: &str = "publishing_limit";
/// Threads' documented limit, used when it cannot be asked.
pub const DEFAULT_LIMIT: usize = 250;

/// The account's publishing limit as Threads reports it (kept on the account).
pub async fn publishing_limit(app: &App, account: &Account) -> Result<PublishingLimit, TokenError> {
    let client = app.providers.threads()?;
    let user = account.provider_user_id.as_str();
    let limit = tokens::with_token(app, account, |token| async move {
        client.publishing_limit(&token, user).await
    })
    .await?;
    remember(app, account, &limit).await;
    Ok(limit)
}

async fn remember(app: &App, account: &Account, limit: &PublishingLimit) {
    let Ok(Some(current)) = accounts::get(&app.db, &account.workspace_id, &account.id).await else {
        return;
    };
    let mut details: serde_json::Value =
        serde_json::from_str(&current.details).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = details.as_object_mut() {
        map.insert(
            PUBLISHING_LIMIT_DETAIL.into(),
            serde_json::json!({
                "used": limit.quota_usage,
                "total": limit.quota_total,
                "checked_at": tidepost_domain::now_ms(),
            }),
        );
    }
    if let Err(err) = accounts::set_details(
        &app.db,
        &account.workspace_id,
        &account.id,
        &details.to_string(),
    )
    .await
    {
        tracing::warn!(account_id = %account.id, error = %err, "could not keep the Threads publishing limit reading");
    }
}

/// Why the account cannot publish now, from the last reading kept on it.
pub fn posting_block(account: &Account, now: i64) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&account.details).ok()?;
    let reading = details.get(PUBLISHING_LIMIT_DETAIL)?;
    let used = reading["used"].as_u64()?;
    let total = reading["total"].as_u64()?;
    let checked_at = reading["checked_at"].as_i64()?;
    (used >= total && now - checked_at < 86_400_000).then(|| {
        format!(
            "Threads' publishing limit is reached: {used} of {total} posts in the last 24 hours (read {}); a slot frees as the oldest leaves the rolling window.",
            crate::compose::schedule::spoken(checked_at, None)
        )
    })
}

/// The limit as a refusal (its message and the time a slot frees at the latest) when no post
/// is left in the window.
pub(crate) fn limit_refusal(limit: &PublishingLimit, now: i64) -> Option<(String, i64)> {
    if limit.remaining() > 0 {
        return None;
    }
    let window_ms = i64::try_from(limit.quota_duration).unwrap_or(86_400) * 1000;
    let frees = now + window_ms;
    Some((
        format!(
            "Threads' publishing limit is reached: {} of {} posts in the last 24 hours. A slot frees as the oldest of them leaves the rolling window, by {} at the latest.",
            limit.quota_usage,
            limit.quota_total,
            crate::compose::schedule::spoken(frees, None)
        ),
        frees,
    ))
}

/// Threads' own count of the account's posts must allow one more sent now.
pub async fn admit_now(app: &App, account: &Account, now: i64) -> Result<(), PublishError> {
    let limit = publishing_limit(app, account).await?;
    match limit_refusal(&limit, now) {
        Some((message, frees)) => Err(PublishError::Quota {
            message,
            next_slot_ms: frees,
        }),
        None => Ok(()),
    }
}

/// The daily limit a Threads target counts against: Threads' `quota_total` (asked now; the
/// last reading or [`DEFAULT_LIMIT`] when it cannot be asked).
pub async fn daily_limit(app: &App, prepared: &Prepared) -> DailyLimit {
    let account = &prepared.account;
    let name = &account.display_name;
    let total = match publishing_limit(app, account).await {
        Ok(limit) => Some(limit.quota_total as usize),
        Err(err) => {
            tracing::info!(account_id = %account.id, error = %err, "Threads publishing limit unknown; using the last reading");
            serde_json::from_str::<serde_json::Value>(&account.details)
                .ok()
                .and_then(|d| d[PUBLISHING_LIMIT_DETAIL]["total"].as_u64())
                .map(|t| t as usize)
        }
    }
    .unwrap_or(DEFAULT_LIMIT);
    DailyLimit {
        modes: None,
        cap: total,
        message: format!(
            "{name} would exceed Threads' publishing limit of {total} posts in 24 hours"
        ),
    }
}
