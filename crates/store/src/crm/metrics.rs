//! Post metrics: a track per published target (which provider media to sample, when next),
//! the samples (one row per reading: views, likes, comments, shares, saves, reach where the
//! platform gives them), and the milestones a target crossed (1k, 10k, … views).
//!
//! A sample is written together with the move of its track's `next_sample_at`, by
//! compare-and-set on the slot it was taken for: two workers sampling the same slot record it
//! once.

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_domain::Platform;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Track {
    pub target_id: String,
    pub workspace_id: String,
    pub account_id: String,
    pub platform: Platform,
    pub provider_media_id: String,
    pub media_type: Option<String>,
    pub published_at: i64,
    /// `None` once sampling stopped (the post is old enough).
    pub next_sample_at: Option<i64>,
    pub last_sample_at: Option<i64>,
    pub samples: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

const TRACK_COLUMNS: &str = "target_id, workspace_id, account_id, platform, provider_media_id, media_type, \
     published_at, next_sample_at, last_sample_at, samples, last_error, created_at";

/// One reading; a metric the platform does not give is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Sample {
    pub sampled_at: i64,
    pub views: Option<i64>,
    pub likes: Option<i64>,
    pub comments: Option<i64>,
    pub shares: Option<i64>,
    pub saves: Option<i64>,
    pub reach: Option<i64>,
}

/// A metric crossing a threshold for the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Milestone {
    pub target_id: String,
    pub metric: String,
    pub threshold: i64,
    pub value: i64,
    pub reached_at: i64,
}

/// Views thresholds that make a milestone.
pub const VIEW_MILESTONES: &[i64] = &[1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// A published target not tracked yet, with the provider media to sample.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Untracked {
    pub target_id: String,
    pub workspace_id: String,
    pub account_id: String,
    pub platform: Platform,
    /// Instagram: the media id; TikTok: the JSON array of public post ids.
    pub media: String,
    pub media_type: Option<String>,
    pub published_at: i64,
}

/// Published targets of every workspace that have a provider media id and no track yet.
pub async fn untracked(db: &Db, limit: i64) -> Result<Vec<Untracked>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS target_id, t.workspace_id, t.account_id, t.platform, m.media_id AS media, \
         m.media_type, COALESCE(t.finished_at, t.updated_at) AS published_at \
         FROM post_targets t JOIN instagram_media m ON m.target_id = t.id \
         LEFT JOIN metric_tracks k ON k.target_id = t.id \
         WHERE t.state = 'published' AND t.platform = 'instagram' AND m.media_id IS NOT NULL AND k.target_id IS NULL \
         UNION ALL \
         SELECT t.id AS target_id, t.workspace_id, t.account_id, t.platform, t.provider_post_ids AS media, \
         NULL AS media_type, COALESCE(t.finished_at, t.updated_at) AS published_at \
         FROM post_targets t LEFT JOIN metric_tracks k ON k.target_id = t.id \
         WHERE t.state = 'published' AND t.platform = 'tiktok' AND t.provider_post_ids <> '[]' AND k.target_id IS NULL \
         ORDER BY target_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Starts tracking a target (no-op when it is tracked already).
pub async fn insert_track(db: &Db, t: &Track) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO metric_tracks ({TRACK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (target_id) DO NOTHING"
    ))
    .bind(&t.target_id)
    .bind(&t.workspace_id)
    .bind(&t.account_id)
    .bind(t.platform.as_str())
    .bind(&t.provider_media_id)
    .bind(&t.media_type)
    .bind(t.published_at)
    .bind(t.next_sample_at)
    .bind(t.last_sample_at)
    .bind(t.samples)
    .bind(&t.last_error)
    .bind(t.created_at)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn track(db: &Db, workspace_id: &str, target_id: &str) -> Result<Option<Track>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TRACK_COLUMNS} FROM metric_tracks WHERE workspace_id = $1 AND target_id = $2"
    ))
    .bind(workspace_id)
    .bind(target_id)
    .fetch_optional(db.pool())
    .await?)
}

/// Accounts (with their workspace) that have a track due at `now`, most overdue first.
pub async fn due_accounts(db: &Db, now: i64, limit: i64) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT workspace_id, account_id FROM metric_tracks WHERE next_sample_at IS NOT NULL AND next_sample_at <= $1 \
         GROUP BY workspace_id, account_id ORDER BY MIN(next_sample_at) LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// One account's tracks due at `now`, most overdue first.
pub async fn due_of_account(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<Track>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TRACK_COLUMNS} FROM metric_tracks WHERE workspace_id = $1 AND account_id = $2 \
         AND next_sample_at IS NOT NULL AND next_sample_at <= $3 ORDER BY next_sample_at, target_id LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(account_id)
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// An account's tracks that are still sampled (their media are recent enough to pull
/// comments for).
pub async fn active_of_account(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
) -> Result<Vec<Track>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TRACK_COLUMNS} FROM metric_tracks WHERE workspace_id = $1 AND account_id = $2 \
         AND next_sample_at IS NOT NULL ORDER BY published_at DESC, target_id"
    ))
    .bind(workspace_id)
    .bind(account_id)
    .fetch_all(db.pool())
    .await?)
}

/// Records the sample taken for the slot `slot` of the track and moves the track to `next`
/// (`None`: stop), all or nothing. Returns the milestones this sample crossed first, or `None`
/// when the slot was already sampled (another worker got there first).
pub async fn record_sample(
    db: &Db,
    track: &Track,
    slot: i64,
    sample: &Sample,
    next: Option<i64>,
) -> Result<Option<Vec<Milestone>>> {
    let mut tx = db.begin_write().await?;
    let moved = sqlx::query(
        "UPDATE metric_tracks SET next_sample_at = $1, last_sample_at = $2, samples = samples + 1, last_error = NULL \
         WHERE workspace_id = $3 AND target_id = $4 AND next_sample_at = $5",
    )
    .bind(next)
    .bind(sample.sampled_at)
    .bind(&track.workspace_id)
    .bind(&track.target_id)
    .bind(slot)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO metric_samples (id, workspace_id, target_id, sampled_at, views, likes, comments, shares, saves, reach) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tidepost_domain::new_id())
    .bind(&track.workspace_id)
    .bind(&track.target_id)
    .bind(sample.sampled_at)
    .bind(sample.views)
    .bind(sample.likes)
    .bind(sample.comments)
    .bind(sample.shares)
    .bind(sample.saves)
    .bind(sample.reach)
    .execute(&mut *tx)
    .await?;
    let mut crossed = Vec::new();
    if let Some(views) = sample.views {
        for &threshold in VIEW_MILESTONES.iter().filter(|t| views >= **t) {
            let inserted = sqlx::query(
                "INSERT INTO metric_milestones (target_id, workspace_id, metric, threshold, value, reached_at) \
                 VALUES ($1, $2, 'views', $3, $4, $5) ON CONFLICT (target_id, metric, threshold) DO NOTHING",
            )
            .bind(&track.target_id)
            .bind(&track.workspace_id)
            .bind(threshold)
            .bind(views)
            .bind(sample.sampled_at)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                crossed.push(Milestone {
                    target_id: track.target_id.clone(),
                    metric: "views".into(),
                    threshold,
                    value: views,
                    reached_at: sample.sampled_at,
                });
            }
        }
    }
    tx.commit().await?;
    Ok(Some(crossed))
}

/// A failed sampling attempt: keeps the error and moves the slot to `retry_at` (compare-and-set
/// on `slot`, like a sample).
pub async fn defer(db: &Db, track: &Track, slot: i64, retry_at: i64, error: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE metric_tracks SET next_sample_at = $1, last_error = $2 \
         WHERE workspace_id = $3 AND target_id = $4 AND next_sample_at = $5",
    )
    .bind(retry_at)
    .bind(error)
    .bind(&track.workspace_id)
    .bind(&track.target_id)
    .bind(slot)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The samples of one target, oldest first (the last `limit`).
pub async fn series(
    db: &Db,
    workspace_id: &str,
    target_id: &str,
    limit: i64,
) -> Result<Vec<Sample>> {
    let mut rows: Vec<Sample> = sqlx::query_as(
        "SELECT sampled_at, views, likes, comments, shares, saves, reach FROM metric_samples \
         WHERE workspace_id = $1 AND target_id = $2 ORDER BY sampled_at DESC, id DESC LIMIT $3",
    )
    .bind(workspace_id)
    .bind(target_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.reverse();
    Ok(rows)
}

pub async fn milestones_of(db: &Db, workspace_id: &str, target_id: &str) -> Result<Vec<Milestone>> {
    Ok(sqlx::query_as(
        "SELECT target_id, metric, threshold, value, reached_at FROM metric_milestones \
         WHERE workspace_id = $1 AND target_id = $2 ORDER BY reached_at, threshold",
    )
    .bind(workspace_id)
    .bind(target_id)
    .fetch_all(db.pool())
    .await?)
}

/// The target published as this provider media, if any (tracked, or an Instagram media on
/// record).
pub async fn target_of_media(
    conn: &mut AnyConnection,
    workspace_id: &str,
    platform: Platform,
    media_id: &str,
) -> Result<Option<String>> {
    let tracked: Option<String> = sqlx::query_scalar(
        "SELECT target_id FROM metric_tracks WHERE workspace_id = $1 AND platform = $2 AND provider_media_id = $3 \
         ORDER BY target_id LIMIT 1",
    )
    .bind(workspace_id)
    .bind(platform.as_str())
    .bind(media_id)
    .fetch_optional(&mut *conn)
    .await?;
    // Only Instagram records its media outside the tracks (`instagram_media`).
    let recorded_apart = match platform {
        Platform::Instagram => true,
        Platform::Tiktok | Platform::Threads => false,
    };
    if tracked.is_some() || !recorded_apart {
        return Ok(tracked);
    }
    Ok(sqlx::query_scalar(
        "SELECT target_id FROM instagram_media WHERE workspace_id = $1 AND media_id = $2 ORDER BY target_id LIMIT 1",
    )
    .bind(workspace_id)
    .bind(media_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// A creator's post target with its post's caption and tracking state (creator pages).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CreatorPost {
    pub target_id: String,
    pub post_id: String,
    pub caption: String,
    pub platform: Platform,
    pub state: String,
    pub account_id: String,
    pub created_at: i64,
    pub provider_media_id: Option<String>,
    pub samples: Option<i64>,
}

/// The latest `limit` targets of a creator's accounts, newest first.
pub async fn posts_of_creator(
    db: &Db,
    workspace_id: &str,
    creator_id: &str,
    limit: i64,
) -> Result<Vec<CreatorPost>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS target_id, t.post_id, p.caption, t.platform, t.state, t.account_id, t.created_at, \
         k.provider_media_id, k.samples FROM post_targets t JOIN posts p ON p.id = t.post_id \
         JOIN accounts a ON a.id = t.account_id LEFT JOIN metric_tracks k ON k.target_id = t.id \
         WHERE t.workspace_id = $1 AND a.workspace_id = $1 AND a.creator_id = $2 ORDER BY t.id DESC LIMIT $3",
    )
    .bind(workspace_id)
    .bind(creator_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Stops sampling every track of an account (it was disconnected).
pub async fn stop_account(db: &Db, workspace_id: &str, account_id: &str, why: &str) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE metric_tracks SET next_sample_at = NULL, last_error = $1 \
         WHERE workspace_id = $2 AND account_id = $3 AND next_sample_at IS NOT NULL",
    )
    .bind(why)
    .bind(workspace_id)
    .bind(account_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// The post a target belongs to.
pub async fn post_of_target_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    target_id: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT post_id FROM post_targets WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(target_id)
            .fetch_optional(conn)
            .await?,
    )
}
