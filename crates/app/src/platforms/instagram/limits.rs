//! Instagram's publishing limit: Meta's `content_publishing_limit` (posts in a rolling 24
//! hours, posts from other apps counted), remembered on the account for when Meta cannot be
//! asked, and the daily limit a target counts against.

use tidepost_store::accounts::{self, Account};

use super::host_of;
use crate::App;
use crate::pipeline::quota::DailyLimit;
use crate::pipeline::{Prepared, PublishError};
use crate::tokens::{self, TokenError};

/// The account's publishing limit as Meta reports it.
pub async fn publishing_limit(
    app: &App,
    account: &Account,
) -> Result<tidepost_providers::meta::PublishingLimit, TokenError> {
    let client = app.providers.meta()?;
    let host = host_of(account);
    let ig = account.provider_user_id.as_str();
    let limit = tokens::with_token(app, account, |token| async move {
        client.publishing_limit(host, &token, ig).await
    })
    .await?;
    remember_limit(app, account, &limit).await;
    Ok(limit)
}

/// Keeps the latest reading in the account's details, so pages can show the limit used
/// without calling Meta. Best effort: a failure here only makes the page's figure older.
async fn remember_limit(
    app: &App,
    account: &Account,
    limit: &tidepost_providers::meta::PublishingLimit,
) {
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
        tracing::warn!(account_id = %account.id, error = %err, "could not keep the publishing limit reading");
    }
}

/// The key under which an Instagram account's details keep the last publishing-limit reading:
/// `{"used", "total", "checked_at"}`.
pub const PUBLISHING_LIMIT_DETAIL: &str = "publishing_limit";

/// Why the account cannot publish now, from the last publishing-limit reading kept on it: every
/// post of Meta's rolling 24 hours used, read less than 24 hours ago.
pub fn posting_block(account: &Account, now: i64) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&account.details).ok()?;
    let reading = details.get(PUBLISHING_LIMIT_DETAIL)?;
    let used = reading["used"].as_u64()?;
    let total = reading["total"].as_u64()?;
    let checked_at = reading["checked_at"].as_i64()?;
    (used >= total && now - checked_at < 86_400_000).then(|| {
        format!(
            "Instagram's publishing limit is reached: {used} of {total} posts in the last 24 hours (read {}); a slot frees as the oldest leaves the rolling window.",
            crate::compose::schedule::spoken(checked_at, None)
        )
    })
}

/// The limit as a refusal when no post is left in the window.
pub(crate) fn limit_refusal(
    limit: &tidepost_providers::meta::PublishingLimit,
    now: i64,
) -> Option<(String, i64)> {
    if limit.remaining() != Some(0) {
        return None;
    }
    let window_ms = i64::try_from(limit.window_secs.unwrap_or(86_400)).unwrap_or(86_400) * 1000;
    let frees = now + window_ms;
    Some((
        format!(
            "Instagram's publishing limit is reached: {} of {} posts in the last 24 hours. A slot frees as the oldest of them leaves the rolling window, by {} at the latest.",
            limit.quota_usage,
            limit.quota_total.unwrap_or(limit.quota_usage),
            crate::compose::schedule::spoken(frees, None)
        ),
        frees,
    ))
}

/// Meta's own count of the account's posts (from other apps too) must allow one more sent
/// now.
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

/// Instagram's publishing limit when Meta cannot be asked: the lower of the two figures Meta
/// documents (50 in the endpoint's reference, 100 in the guide).
pub const DEFAULT_LIMIT: usize = 50;

/// The daily limit an Instagram target counts against: Meta's `content_publishing_limit`
/// (asked now; the last reading or [`DEFAULT_LIMIT`] when Meta cannot be asked), every post of
/// the account counted.
pub async fn daily_limit(app: &App, prepared: &Prepared) -> DailyLimit {
    let account = &prepared.account;
    let name = &account.display_name;
    let total = match publishing_limit(app, account).await {
        Ok(limit) => limit.quota_total.map(|t| t as usize),
        Err(err) => {
            tracing::info!(account_id = %account.id, error = %err, "publishing limit unknown; using the last reading");
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
            "{name} would exceed Instagram's publishing limit of {total} posts in 24 hours"
        ),
    }
}
