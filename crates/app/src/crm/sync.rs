//! The CRM sync jobs, all through the job engine:
//!
//! - `crm.sweep` (every minute, system-wide): gives accounts without a creator one, starts a
//!   metrics track for every newly published target that has a provider media id, and enqueues
//!   one `crm.metrics` job per account with tracks due and one `crm.comments` job per Instagram
//!   account whose comments are due for a pull (idempotency keys per period, so two instances
//!   sweeping at once enqueue each once).
//! - `crm.metrics`: samples an account's due tracks — TikTok through `POST /v2/video/query/`,
//!   20 videos per call; Instagram through media insights — and schedules each track's next
//!   sample by the post's age ([`next_sample_at`]): every 15 minutes the first day, hourly the
//!   first week, daily to 30 days, then never. Within the platforms' limits: a per-account
//!   sliding window shared by every instance, and Meta's own usage figures (at 80 % the job
//!   waits).
//! - `crm.comments`: pulls the comments of an Instagram account's recent media, page by page
//!   from where the last pull stopped (a cursor per account and media). Comments webhooks
//!   deliver them as they happen, so with webhooks configured this only reconciles hourly;
//!   without, it runs every 15 minutes. TikTok has no comments API for third-party apps.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::Platform;
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, handler_fn};
use tidepost_providers::meta::Insight;
use tidepost_providers::tiktok::video_query::MAX_IDS_PER_QUERY;
use tidepost_store::accounts::{self, Account};
use tidepost_store::crm::contacts::Sighting;
use tidepost_store::crm::interactions::{self, Observed};
use tidepost_store::crm::metrics::{self, Milestone, Sample, Track};
use tidepost_store::crm::{creators, cursors};
use tidepost_store::limits::{self, Admission};
use tidepost_store::{StoreError, events};

use super::announce_in;
use crate::App;
use crate::tokens::{self, TokenError};

pub const SWEEP: &str = "crm.sweep";
pub const METRICS: &str = "crm.metrics";
pub const COMMENTS: &str = "crm.comments";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Video queries per account per minute. TikTok's figure for the Display API is unconfirmed;
/// this stays far below any figure seen.
pub const TIKTOK_QUERIES_PER_MINUTE: u32 = 20;
/// Graph calls (insights and comment pages) per Instagram account per hour: Meta allows about
/// 200 per account per hour, shared with publishing, so the CRM takes at most a quarter.
pub const INSTAGRAM_CALLS_PER_HOUR: u32 = 50;
/// Comment pages read per media per pull.
const MAX_COMMENT_PAGES: usize = 10;

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

/// Instagram stories disappear after a day: their insights stop with them.
fn stops_early(track: &Track, now: i64) -> bool {
    track.media_type.as_deref() == Some("story") && now - track.published_at > DAY_MS
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
        let media = match found.platform {
            Platform::Tiktok => serde_json::from_str::<Vec<String>>(&found.media)
                .ok()
                .and_then(|ids| ids.into_iter().next()),
            Platform::Instagram => Some(found.media.clone()),
        };
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
    for (workspace_id, account_id) in instagram_accounts_with_tracks(app).await? {
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

async fn instagram_accounts_with_tracks(app: &App) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT workspace_id, account_id FROM metric_tracks \
         WHERE platform = 'instagram' AND next_sample_at IS NOT NULL ORDER BY account_id LIMIT 500",
    )
    .fetch_all(app.db.pool())
    .await?)
}

/// Takes a slot of the account's CRM call budget, or says how long to wait.
async fn take_slot(app: &App, account: &Account, now: i64) -> Result<(), JobError> {
    let (key, per_minute) = match account.platform {
        Platform::Tiktok => (
            format!("tiktok:crm:{}", account.id),
            TIKTOK_QUERIES_PER_MINUTE,
        ),
        Platform::Instagram => {
            if let Some((percent, wait)) = app
                .providers
                .meta_usage()
                .wait_for(&account.provider_user_id)
            {
                return Err(JobError::wait(
                    format!("Meta reports {percent} % of the call budget used; waiting"),
                    wait,
                ));
            }
            let hourly = format!("instagram:crm:hour:{}", account.id);
            if let Admission::WaitUntil(at) =
                limits::admit(&app.db, &hourly, INSTAGRAM_CALLS_PER_HOUR, HOUR_MS, now).await?
            {
                return Err(wait_until(at, now, "Instagram hourly CRM budget"));
            }
            return Ok(());
        }
    };
    match limits::admit(&app.db, &key, per_minute, MINUTE_MS, now).await? {
        Admission::Admitted => Ok(()),
        Admission::WaitUntil(at) => Err(wait_until(at, now, "TikTok video query limit")),
    }
}

fn wait_until(at: i64, now: i64, what: &str) -> JobError {
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
    match account.platform {
        Platform::Tiktok => {
            for batch in due.chunks(MAX_IDS_PER_QUERY) {
                take_slot(app, &account, now).await?;
                sample_tiktok(app, &account, batch, now).await?;
            }
        }
        Platform::Instagram => {
            for track in &due {
                if stops_early(track, now) {
                    defer_stop(app, track, "stories have no insights after a day").await?;
                    continue;
                }
                take_slot(app, &account, now).await?;
                sample_instagram(app, &account, track, now).await?;
            }
        }
    }
    Ok(())
}

async fn defer(app: &App, track: &Track, now: i64, at: i64, why: &str) -> Result<(), StoreError> {
    let slot = track.next_sample_at.unwrap_or(now);
    metrics::defer(&app.db, track, slot, at, why).await?;
    Ok(())
}

async fn defer_stop(app: &App, track: &Track, why: &str) -> Result<(), StoreError> {
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
async fn failed(app: &App, tracks: &[Track], now: i64, err: TokenError) -> Result<(), JobError> {
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

async fn sample_tiktok(
    app: &App,
    account: &Account,
    batch: &[Track],
    now: i64,
) -> Result<(), JobError> {
    let client = app
        .tiktok()
        .map_err(|e| JobError::permanent(e.to_string()))?
        .clone();
    let ids: Vec<String> = batch.iter().map(|t| t.provider_media_id.clone()).collect();
    let result = tokens::with_token(app, account, |token| {
        let (client, ids) = (client.clone(), ids.clone());
        async move { client.query_videos(&token, &ids).await }
    })
    .await;
    let videos = match result {
        Ok(videos) => videos,
        Err(err) => return failed(app, batch, now, err).await,
    };
    for track in batch {
        match videos.iter().find(|v| v.id == track.provider_media_id) {
            Some(video) => {
                let sample = Sample {
                    sampled_at: now,
                    views: video.view_count,
                    likes: video.like_count,
                    comments: video.comment_count,
                    shares: video.share_count,
                    saves: None,
                    reach: None,
                };
                store_sample(app, track, &sample, now).await?;
            }
            None => {
                let next = next_sample_at(track.published_at, now).unwrap_or(now + DAY_MS);
                defer(
                    app,
                    track,
                    now,
                    next,
                    "TikTok did not return this video (deleted, private or not yet public)",
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The insights asked for by media type (Meta refuses a metric the type does not have).
fn instagram_metrics(media_type: Option<&str>) -> &'static [&'static str] {
    match media_type {
        Some("story") => &["reach", "views", "shares"],
        _ => &["reach", "views", "likes", "comments", "shares", "saved"],
    }
}

async fn sample_instagram(
    app: &App,
    account: &Account,
    track: &Track,
    now: i64,
) -> Result<(), JobError> {
    let client = app
        .providers
        .meta()
        .map_err(|e| JobError::permanent(e.to_string()))?
        .clone();
    let host = crate::instagram::host_of(account);
    let wanted = instagram_metrics(track.media_type.as_deref());
    let media = track.provider_media_id.clone();
    let result = tokens::with_token(app, account, |token| {
        let (client, media) = (client.clone(), media.clone());
        async move { client.insights(host, &token, &media, wanted).await }
    })
    .await;
    let insights = match result {
        Ok(insights) => insights,
        Err(err) => return failed(app, std::slice::from_ref(track), now, err).await,
    };
    let value = |name: &str| -> Option<i64> {
        insights
            .iter()
            .find(|i: &&Insight| i.name == name)
            .and_then(|i| i.value)
    };
    let sample = Sample {
        sampled_at: now,
        views: value("views"),
        likes: value("likes"),
        comments: value("comments"),
        shares: value("shares"),
        saves: value("saved"),
        reach: value("reach"),
    };
    store_sample(app, track, &sample, now).await?;
    Ok(())
}

/// Writes a sample for the track's slot and, when it was ours to write, `metrics.updated`.
async fn store_sample(
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

/// Pulls new comments of an Instagram account's recent media (the `crm.comments` job).
pub async fn pull_comments(app: &App, r: &AccountRef, now: i64) -> Result<(), JobError> {
    let Some(account) = load_account(app, r).await? else {
        return Ok(());
    };
    let has_comments = match account.platform {
        Platform::Instagram => true,
        Platform::Tiktok => false,
    };
    if !has_comments || account.needs_reauth() {
        return Ok(());
    }
    let client = app
        .providers
        .meta()
        .map_err(|e| JobError::permanent(e.to_string()))?
        .clone();
    let host = crate::instagram::host_of(&account);
    for track in metrics::active_of_account(&app.db, &r.workspace_id, &r.account_id).await? {
        if track.media_type.as_deref() == Some("story") {
            continue;
        }
        let scope = format!("comments:{}", track.provider_media_id);
        let mut after = cursors::get(&app.db, &r.workspace_id, &r.account_id, &scope).await?;
        for _ in 0..MAX_COMMENT_PAGES {
            take_slot(app, &account, now).await?;
            let media = track.provider_media_id.clone();
            let page_after = after.clone();
            let page = tokens::with_token(app, &account, |token| {
                let (client, media, page_after) =
                    (client.clone(), media.clone(), page_after.clone());
                async move {
                    client
                        .comments(host, &token, &media, page_after.as_deref())
                        .await
                }
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(TokenError::Provider(e)) if !e.is_retryable() => {
                    tracing::info!(account_id = %account.id, media = %track.provider_media_id, error = %e, "comments pull skipped a media");
                    break;
                }
                Err(err) => return Err(JobError::retryable(err.to_string())),
            };
            let mut tx = app.db.begin_write().await?;
            for c in &page.comments {
                let at = c
                    .timestamp
                    .as_deref()
                    .and_then(parse_graph_time)
                    .unwrap_or(now);
                let author = c.from.as_ref().filter(|f| !f.id.is_empty());
                let own = author.is_some_and(|f| f.id == account.provider_user_id);
                let observed = Observed {
                    platform: Platform::Instagram,
                    kind: if c.parent_id.is_some() {
                        "reply"
                    } else {
                        "comment"
                    },
                    direction: if own { "outbound" } else { "inbound" },
                    provider_id: &c.id,
                    parent_provider_id: c.parent_id.as_deref(),
                    author: author.filter(|_| !own).map(|f| Sighting {
                        platform: Platform::Instagram,
                        platform_user_id: &f.id,
                        handle: f.username.as_deref().or(c.username.as_deref()),
                        name: None,
                        at,
                    }),
                    account_id: &account.id,
                    provider_media_id: Some(&track.provider_media_id),
                    text: &c.text,
                    occurred_at: at,
                };
                if let Some(i) =
                    interactions::record_in(&mut tx, &r.workspace_id, &observed).await?
                {
                    announce_in(&mut tx, &i).await?;
                }
            }
            tx.commit().await.map_err(StoreError::from)?;
            // Resume from the last page that had a next one: the final page is read again
            // next time (recording is idempotent), so comments added to it are not missed.
            match page.next_cursor {
                Some(next) => {
                    cursors::set(&app.db, &r.workspace_id, &r.account_id, &scope, &next).await?;
                    after = Some(next);
                }
                None => break,
            }
        }
    }
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

/// Graph times: `2024-05-01T12:00:00+0000`.
fn parse_graph_time(text: &str) -> Option<i64> {
    let normal = if text.len() > 5 && (text.ends_with("+0000") || text.ends_with("-0000")) {
        format!("{}Z", &text[..text.len() - 5])
    } else {
        text.to_string()
    };
    normal
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
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

    #[test]
    fn graph_times_parse() {
        assert_eq!(parse_graph_time("1970-01-01T00:00:01+0000"), Some(1_000));
        assert_eq!(parse_graph_time("nonsense"), None);
    }
}
