//! The CRM sync jobs, all through the job engine:
//!
//! - `crm.sweep` (every minute, system-wide): gives accounts without a creator one, starts a
//!   metrics track for every newly published target that has a provider media id, and enqueues
//!   one `crm.metrics` job per account with tracks due and one `crm.comments` job per Instagram
//!   account whose comments are due for a pull (idempotency keys per period, so two instances
//!   sweeping at once enqueue each once).
//! - `crm.metrics`: samples an account's due tracks through its platform
//!   (`platforms::sample_metrics`: TikTok's video query, 20 videos per call; Instagram's media
//!   insights) and schedules each track's next sample by the post's age ([`next_sample_at`]):
//!   every 15 minutes the first day, hourly the first week, daily to 30 days, then never.
//!   Within the platforms' limits: a per-account sliding window shared by every instance, and
//!   Meta's own usage figures (at 80 % the job waits).
//! - `crm.comments`: pulls the comments of an account's recent media where its platform has
//!   them (`platforms::pulls_comments`; Instagram, page by page from where the last pull
//!   stopped). Comments webhooks deliver them as they happen, so with webhooks configured this
//!   only reconciles hourly; without, it runs every 15 minutes. TikTok has no comments API for
//!   third-party apps.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::Platform;
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, handler_fn};
use tidepost_store::accounts::{self, Account};
use tidepost_store::crm::metrics::{self, Milestone, Sample, Track};
use tidepost_store::crm::{creators, cursors};
use tidepost_store::{StoreError, events};

use crate::App;
use crate::platforms;
use crate::tokens::TokenError;

pub const SWEEP: &str = "crm.sweep";
pub const METRICS: &str = "crm.metrics";
pub const COMMENTS: &str = "crm.comments";

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// When the next sample of a post published at `published_at` is due, after one at `now`:
/// every 15 minutes the first day, hourly the first week, daily until 30 days, then never.
pub fn next_sample_at(published_at: i64, now: i64) -> Option<i64> {
    let age = now.saturating_sub(published_at);
    let every = if age < DAY_MS {
        15 * MINUTE_MS
    } else if age < 7 * DAY_MS {
        HOUR_MS
    } else if age < 30 * DAY_MS {
        DAY_MS
    } else {
        return None;
    };
    Some(now + every)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccountRef {
    pub workspace_id: String,
    pub account_id: String,
}

#[derive(Debug, Deserialize)]
struct Empty {}

/// Registers the CRM job kinds.
pub fn register(registry: Registry, app: &App) -> Registry {
    let policy = RetryPolicy::new(5, Duration::from_secs(10), Duration::from_secs(600));
    let (sweep_app, metrics_app, comments_app) = (app.clone(), app.clone(), app.clone());
    registry
        .register_with(
            SWEEP,
            policy,
            handler_fn(move |ctx: JobContext, _: Empty| {
                let app = sweep_app.clone();
                async move {
                    sweep(&app, ctx.clock().now_ms())
                        .await
                        .map_err(JobError::retryable)?;
                    Ok(())
                }
            }),
        )
        .register_with(
            METRICS,
            policy,
            handler_fn(move |ctx: JobContext, r: AccountRef| {
                let app = metrics_app.clone();
                async move { sample_account(&app, &r, ctx.clock().now_ms()).await }
            }),
        )
        .register_with(
            COMMENTS,
            policy,
            handler_fn(move |ctx: JobContext, r: AccountRef| {
                let app = comments_app.clone();
                async move { pull_comments(&app, &r, ctx.clock().now_ms()).await }
            }),
        )
}

/// Registers the minute sweep (idempotent).
pub async fn ensure_schedules(app: &App) -> tidepost_jobs::Result<()> {
    schedule::ensure(
        &app.queue,
        &Schedule::every(SWEEP, Duration::from_secs(60), SWEEP, json!({})),
    )
    .await
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub creators_created: usize,
    pub tracks_started: usize,
    pub metrics_jobs: usize,
    pub comments_jobs: usize,
}

/// The sweep (see the module docs). `now` is the job clock's.
pub async fn sweep(app: &App, now: i64) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    for (workspace_id, account_id) in creators::orphan_accounts(&app.db, 200).await? {
        if creators::ensure_for_account(&app.db, &workspace_id, &account_id)
            .await?
            .is_some()
        {
            report.creators_created += 1;
        }
    }
    for found in metrics::untracked(&app.db, 500).await? {
        let media = platforms::metrics_media_id(found.platform, &found.media);
        let Some(media) = media.filter(|m| !m.is_empty()) else {
            continue;
        };
        let next = (now - found.published_at < 30 * DAY_MS).then_some(now);
        let track = Track {
            target_id: found.target_id,
            workspace_id: found.workspace_id,
            account_id: found.account_id,
            platform: found.platform,
            provider_media_id: media,
            media_type: found.media_type,
            published_at: found.published_at,
            next_sample_at: next,
            last_sample_at: None,
            samples: 0,
            last_error: None,
            created_at: now,
        };
        if metrics::insert_track(&app.db, &track).await? {
            report.tracks_started += 1;
        }
    }
    let minute = now / MINUTE_MS;
    for (workspace_id, account_id) in metrics::due_accounts(&app.db, now, 500).await? {
        let job = NewJob::new(
            METRICS,
            &AccountRef {
                workspace_id: workspace_id.clone(),
                account_id: account_id.clone(),
            },
        )
        .workspace(workspace_id)
        .run_at(now)
        .idempotency_key(format!("{METRICS}:{account_id}:{minute}"));
        app.queue.enqueue(job).await.map_err(queue_error)?;
        report.metrics_jobs += 1;
    }
    let every = comments_interval(app);
    for (workspace_id, account_id) in accounts_with_comments(app).await? {
        let last: i64 = cursors::get(&app.db, &workspace_id, &account_id, LAST_PULL)
            .await?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if now - last < every {
            continue;
        }
        let job = NewJob::new(
            COMMENTS,
            &AccountRef {
                workspace_id: workspace_id.clone(),
                account_id: account_id.clone(),
            },
        )
        .workspace(workspace_id)
        .run_at(now)
        .idempotency_key(format!("{COMMENTS}:{account_id}:{}", now / every));
        app.queue.enqueue(job).await.map_err(queue_error)?;
        report.comments_jobs += 1;
    }
    if report != SweepReport::default() {
        tracing::debug!(?report, "CRM sweep");
    }
    Ok(report)
}

fn queue_error(err: tidepost_jobs::Error) -> StoreError {
    StoreError::Migrate(format!("cannot enqueue a CRM job: {err}"))
}

/// The cursor scope that holds when an account's comments were last pulled.
const LAST_PULL: &str = "comments:last_pull";

/// Hourly reconciliation when comments webhooks can arrive; every 15 minutes otherwise.
fn comments_interval(app: &App) -> i64 {
    if app.providers.meta_webhook_secrets().is_empty() {
        15 * MINUTE_MS
    } else {
        HOUR_MS
    }
}

/// The accounts with tracks being sampled whose platform has comments to pull.
async fn accounts_with_comments(app: &App) -> Result<Vec<(String, String)>, StoreError> {
    // The platforms are filtered in the query, not after it, so that accounts of platforms
    // without comments never take the places of the LIMIT.
    let pulled: Vec<&str> = Platform::ALL
        .into_iter()
        .filter(|p| platforms::pulls_comments(*p))
        .map(Platform::as_str)
        .collect();
    if pulled.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=pulled.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT DISTINCT workspace_id, account_id FROM metric_tracks \
         WHERE next_sample_at IS NOT NULL AND platform IN ({}) ORDER BY account_id LIMIT 500",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for platform in pulled {
        query = query.bind(platform);
    }
    Ok(query.fetch_all(app.db.pool()).await?)
}

/// A job error that waits until `at` for a slot of `what`.
pub(crate) fn wait_until(at: i64, now: i64, what: &str) -> JobError {
    let wait = Duration::from_millis((at - now).max(1_000) as u64);
    JobError::wait(
        format!("{what} reached; next slot in {} s", wait.as_secs()),
        wait,
    )
}

/// Loads the job's account; `None` (after stopping its tracks) when it was disconnected.
async fn load_account(app: &App, r: &AccountRef) -> Result<Option<Account>, StoreError> {
    let account = accounts::get(&app.db, &r.workspace_id, &r.account_id).await?;
    if account.is_none() {
        metrics::stop_account(
            &app.db,
            &r.workspace_id,
            &r.account_id,
            "the account was disconnected",
        )
        .await?;
    }
    Ok(account)
}

/// Samples the account's due tracks (the `crm.metrics` job).
pub async fn sample_account(app: &App, r: &AccountRef, now: i64) -> Result<(), JobError> {
    let Some(account) = load_account(app, r).await? else {
        return Ok(());
    };
    let due = metrics::due_of_account(&app.db, &r.workspace_id, &r.account_id, now, 100).await?;
    if account.needs_reauth() {
        for track in &due {
            defer(
                app,
                track,
                now,
                now + HOUR_MS,
                "the account must be connected again",
            )
            .await?;
        }
        return Ok(());
    }
    platforms::sample_metrics(app, &account, &due, now).await
}

pub(crate) async fn defer(
    app: &App,
    track: &Track,
    now: i64,
    at: i64,
    why: &str,
) -> Result<(), StoreError> {
    let slot = track.next_sample_at.unwrap_or(now);
    metrics::defer(&app.db, track, slot, at, why).await?;
    Ok(())
}

pub(crate) async fn defer_stop(app: &App, track: &Track, why: &str) -> Result<(), StoreError> {
    let slot = track.next_sample_at.unwrap_or_default();
    sqlx::query(
        "UPDATE metric_tracks SET next_sample_at = NULL, last_error = $1 WHERE workspace_id = $2 AND target_id = $3 AND next_sample_at = $4",
    )
    .bind(why)
    .bind(&track.workspace_id)
    .bind(&track.target_id)
    .bind(slot)
    .execute(app.db.pool())
    .await?;
    Ok(())
}

/// A provider failure of one call: reauth stops the job (the account is marked by
/// [`tokens::with_token`]); anything else puts the tracks back by five minutes with the reason,
/// or retries the job when the provider asked to wait.
pub(crate) async fn failed(
    app: &App,
    tracks: &[Track],
    now: i64,
    err: TokenError,
) -> Result<(), JobError> {
    let message = err.to_string();
    for track in tracks {
        defer(app, track, now, now + 5 * MINUTE_MS, &message).await?;
    }
    match err {
        TokenError::Provider(e) if e.is_retryable() => {
            Err(JobError::retryable(message).retry_after(Duration::from_secs(60)))
        }
        TokenError::RefreshBusy => Err(JobError::retryable(message)),
        TokenError::Provider(_)
        | TokenError::NeedsReauth(_)
        | TokenError::NotConfigured(_)
        | TokenError::Vault(_)
        | TokenError::Store(_) => Ok(()),
    }
}

/// Writes a sample for the track's slot and, when it was ours to write, `metrics.updated`.
pub(crate) async fn store_sample(
    app: &App,
    track: &Track,
    sample: &Sample,
    now: i64,
) -> Result<(), StoreError> {
    let Some(slot) = track.next_sample_at else {
        return Ok(());
    };
    let next = next_sample_at(track.published_at, now);
    let Some(crossed) = metrics::record_sample(&app.db, track, slot, sample, next).await? else {
        return Ok(());
    };
    let mut conn = app.db.pool().acquire().await?;
    let post_id =
        metrics::post_of_target_in(&mut conn, &track.workspace_id, &track.target_id).await?;
    drop(conn);
    let mut counts = serde_json::Map::new();
    for (name, value) in [
        ("views", sample.views),
        ("likes", sample.likes),
        ("comments", sample.comments),
        ("shares", sample.shares),
        ("saves", sample.saves),
        ("reach", sample.reach),
    ] {
        if let Some(value) = value {
            counts.insert(name.into(), json!(value));
        }
    }
    events::record(
        &app.db,
        &track.workspace_id,
        "metrics.updated",
        post_id.as_deref(),
        &json!({
            "post_id": post_id,
            "target_id": track.target_id,
            "account_id": track.account_id,
            "platform": track.platform,
            "provider_media_id": track.provider_media_id,
            "sampled_at": tidepost_domain::time::rfc3339(sample.sampled_at),
            "metrics": counts,
            "milestones": crossed.iter().map(milestone_json).collect::<Vec<_>>(),
            "next_sample_at": next.map(tidepost_domain::time::rfc3339),
        }),
    )
    .await?;
    Ok(())
}

pub fn milestone_json(m: &Milestone) -> serde_json::Value {
    json!({"metric": m.metric, "threshold": m.threshold, "value": m.value,
           "reached_at": tidepost_domain::time::rfc3339(m.reached_at)})
}

/// Pulls the new comments of an account's recent media, where its platform has them (the
/// `crm.comments` job).
pub async fn pull_comments(app: &App, r: &AccountRef, now: i64) -> Result<(), JobError> {
    let Some(account) = load_account(app, r).await? else {
        return Ok(());
    };
    if !platforms::pulls_comments(account.platform) || account.needs_reauth() {
        return Ok(());
    }
    platforms::pull_comments(app, &account, now).await?;
    cursors::set(
        &app.db,
        &r.workspace_id,
        &r.account_id,
        LAST_PULL,
        &now.to_string(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_slows_as_a_post_ages_then_stops() {
        let published = 1_000_000;
        let at = |age: i64| next_sample_at(published, published + age).map(|n| n - published - age);
        assert_eq!(at(0), Some(15 * MINUTE_MS));
        assert_eq!(at(DAY_MS - 1), Some(15 * MINUTE_MS));
        assert_eq!(at(DAY_MS), Some(HOUR_MS));
        assert_eq!(at(7 * DAY_MS), Some(DAY_MS));
        assert_eq!(at(30 * DAY_MS - 1), Some(DAY_MS));
        assert_eq!(at(30 * DAY_MS), None);
    }
}
