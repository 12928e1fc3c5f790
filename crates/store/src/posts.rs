//! Posts and their targets (one post to one account). A target's `state` only changes by
//! compare-and-set ([`set_state`]), so that concurrent updaters (the worker, status polling,
//! webhooks) never overwrite each other; the rules of which change is allowed live in
//! `tidepost_domain::publish`.

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_domain::Platform;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Post {
    pub id: String,
    pub workspace_id: String,
    pub caption: String,
    /// `video` or `photo`.
    pub kind: String,
    pub media_id: Option<String>,
    pub media_url: Option<String>,
    /// JSON: the publish options as accepted.
    pub options: String,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the post is due (UTC ms); `None` for a post sent as soon as it was accepted.
    pub scheduled_at: Option<i64>,
    /// The IANA zone the schedule was given in, to show it back in that zone.
    pub time_zone: Option<String>,
    /// 1 when made, one more with every edit: the post's ETag.
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Target {
    pub id: String,
    pub workspace_id: String,
    pub post_id: String,
    pub account_id: String,
    pub platform: Platform,
    /// `direct` or `inbox`.
    pub mode: String,
    /// `file_upload` or `pull_from_url`.
    pub source: String,
    pub state: String,
    pub bytes_total: i64,
    pub bytes_sent: i64,
    pub chunk_size: i64,
    pub chunks_total: i64,
    pub chunks_acked: i64,
    /// Bumped each time the provider publish must be started afresh (a retry, an expired
    /// upload URL, an init that definitely failed): names the durable init step.
    pub init_generation: i64,
    pub publish_id: Option<String>,
    pub provider_status: Option<String>,
    /// JSON array of strings.
    pub provider_post_ids: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_retryable: i64,
    /// Vault envelope (the upload URL is a capability).
    #[serde(skip)]
    pub upload_url: Option<String>,
    pub upload_url_expires_at: Option<i64>,
    pub init_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// JSON: this target's own options (the post's shared caption and media with the target's
    /// overrides applied). `None` for a single-target post, whose options are the post's.
    pub options: Option<String>,
    /// When this target's job is due (UTC ms); `None` when it was sent right away.
    pub scheduled_at: Option<i64>,
    /// 1 when made, one more with every edit. An edit writes the target only at the version it
    /// read ([`edit_target_in`]), and a publish job claims it only at the version it read its
    /// options at ([`claim`]): of the two racing, exactly one wins.
    pub version: i64,
}

impl Target {
    pub fn post_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.provider_post_ids).unwrap_or_default()
    }

    /// The options the publish job works from: the target's own, else the post's.
    pub fn options_or<'a>(&'a self, post: &'a Post) -> &'a str {
        self.options.as_deref().unwrap_or(&post.options)
    }
}

const POST_COLUMNS: &str = "id, workspace_id, caption, kind, media_id, media_url, options, idempotency_key, \
     created_by, created_at, updated_at, scheduled_at, time_zone";
const TARGET_COLUMNS: &str = "id, workspace_id, post_id, account_id, platform, mode, source, state, bytes_total, \
     bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, publish_id, provider_status, \
     provider_post_ids, error_code, error_message, error_retryable, upload_url, upload_url_expires_at, init_at, \
     finished_at, created_at, updated_at, options, scheduled_at";
/// What a read selects: the inserted columns and the version (1 on insert, by its default).
const POST_SELECT: &str = "id, workspace_id, caption, kind, media_id, media_url, options, idempotency_key, \
     created_by, created_at, updated_at, scheduled_at, time_zone, version";
const TARGET_SELECT: &str = "id, workspace_id, post_id, account_id, platform, mode, source, state, bytes_total, \
     bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, publish_id, provider_status, \
     provider_post_ids, error_code, error_message, error_retryable, upload_url, upload_url_expires_at, init_at, \
     finished_at, created_at, updated_at, options, scheduled_at, version";

pub async fn insert_post_in(conn: &mut AnyConnection, p: &Post) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO posts ({POST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&p.id)
    .bind(&p.workspace_id)
    .bind(&p.caption)
    .bind(&p.kind)
    .bind(&p.media_id)
    .bind(&p.media_url)
    .bind(&p.options)
    .bind(&p.idempotency_key)
    .bind(&p.created_by)
    .bind(p.created_at)
    .bind(p.updated_at)
    .bind(p.scheduled_at)
    .bind(&p.time_zone)
    .execute(conn)
    .await
    .map_err(crate::error::conflict_as(
        "a post with this idempotency key",
    ))?;
    Ok(())
}

pub async fn insert_target_in(conn: &mut AnyConnection, t: &Target) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO post_targets ({TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
    ))
    .bind(&t.id)
    .bind(&t.workspace_id)
    .bind(&t.post_id)
    .bind(&t.account_id)
    .bind(t.platform.as_str())
    .bind(&t.mode)
    .bind(&t.source)
    .bind(&t.state)
    .bind(t.bytes_total)
    .bind(t.bytes_sent)
    .bind(t.chunk_size)
    .bind(t.chunks_total)
    .bind(t.chunks_acked)
    .bind(t.init_generation)
    .bind(&t.publish_id)
    .bind(&t.provider_status)
    .bind(&t.provider_post_ids)
    .bind(&t.error_code)
    .bind(&t.error_message)
    .bind(t.error_retryable)
    .bind(&t.upload_url)
    .bind(t.upload_url_expires_at)
    .bind(t.init_at)
    .bind(t.finished_at)
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(&t.options)
    .bind(t.scheduled_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Post>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POST_SELECT} FROM posts WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

pub async fn by_idempotency_key(db: &Db, workspace_id: &str, key: &str) -> Result<Option<Post>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POST_SELECT} FROM posts WHERE workspace_id = $1 AND idempotency_key = $2"
    ))
    .bind(workspace_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?)
}

/// Newest first; `before` is the id of the last post of the previous page (ids are UUIDv7, so
/// they sort by creation).
pub async fn list(
    db: &Db,
    workspace_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Post>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POST_SELECT} FROM posts WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

pub async fn targets_of(db: &Db, workspace_id: &str, post_id: &str) -> Result<Vec<Target>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TARGET_SELECT} FROM post_targets WHERE workspace_id = $1 AND post_id = $2 ORDER BY id"
    ))
    .bind(workspace_id)
    .bind(post_id)
    .fetch_all(db.pool())
    .await?)
}

/// The targets of several posts in one query (a page of a list), in post and id order.
pub async fn targets_of_posts(
    db: &Db,
    workspace_id: &str,
    post_ids: &[String],
) -> Result<Vec<Target>> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = (0..post_ids.len())
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {TARGET_SELECT} FROM post_targets WHERE workspace_id = $1 AND post_id IN ({placeholders}) \
         ORDER BY post_id, id"
    );
    let mut query = sqlx::query_as(&sql).bind(workspace_id);
    for id in post_ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(db.pool()).await?)
}

pub async fn target(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Target>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TARGET_SELECT} FROM post_targets WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// System-wide: the target a provider publish id belongs to (webhooks name the publish, not
/// the workspace).
pub async fn target_by_publish_id(
    db: &Db,
    platform: Platform,
    publish_id: &str,
) -> Result<Option<Target>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TARGET_SELECT} FROM post_targets WHERE platform = $1 AND publish_id = $2 ORDER BY id DESC LIMIT 1"
    ))
    .bind(platform.as_str())
    .bind(publish_id)
    .fetch_optional(db.pool())
    .await?)
}

/// Moves the target from `from` to `to` if it is still in `from`; false when it moved meanwhile.
/// `finished` sets `finished_at`. Moving to `published` clears the error of earlier, retried
/// attempts: a published target shows no error.
pub async fn set_state(
    db: &Db,
    workspace_id: &str,
    id: &str,
    from: &str,
    to: &str,
    finished: bool,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET state = $1, updated_at = $2, \
         finished_at = CASE WHEN $3 = 1 THEN $2 ELSE finished_at END, \
         error_code = CASE WHEN $1 = 'published' THEN NULL ELSE error_code END, \
         error_message = CASE WHEN $1 = 'published' THEN NULL ELSE error_message END, \
         error_retryable = CASE WHEN $1 = 'published' THEN 0 ELSE error_retryable END \
         WHERE workspace_id = $4 AND id = $5 AND state = $6",
    )
    .bind(to)
    .bind(now)
    .bind(i64::from(finished))
    .bind(workspace_id)
    .bind(id)
    .bind(from)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`set_state`] and the error that goes with the new state, in one statement: no reader ever
/// sees the state without its error.
#[allow(clippy::too_many_arguments)]
pub async fn set_state_with_error(
    db: &Db,
    workspace_id: &str,
    id: &str,
    from: &str,
    to: &str,
    finished: bool,
    error: (&str, &str, bool),
    now: i64,
) -> Result<bool> {
    let (code, message, retryable) = error;
    let done = sqlx::query(
        "UPDATE post_targets SET state = $1, updated_at = $2, \
         finished_at = CASE WHEN $3 = 1 THEN $2 ELSE finished_at END, \
         error_code = $4, error_message = $5, error_retryable = $6 \
         WHERE workspace_id = $7 AND id = $8 AND state = $9",
    )
    .bind(to)
    .bind(now)
    .bind(i64::from(finished))
    .bind(code)
    .bind(message)
    .bind(i64::from(retryable))
    .bind(workspace_id)
    .bind(id)
    .bind(from)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failure's details (set together with the `failed` state, or as the last error of
/// a target still retrying).
pub async fn set_error(
    db: &Db,
    workspace_id: &str,
    id: &str,
    code: Option<&str>,
    message: Option<&str>,
    retryable: bool,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE post_targets SET error_code = $1, error_message = $2, error_retryable = $3, updated_at = $4 \
         WHERE workspace_id = $5 AND id = $6",
    )
    .bind(code)
    .bind(message)
    .bind(i64::from(retryable))
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Reserves the init (`init_at`) and declares the upload plan, before the provider is called.
#[allow(clippy::too_many_arguments)]
pub async fn reserve_init_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
    bytes_total: i64,
    chunk_size: i64,
    chunks_total: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE post_targets SET init_at = $1, bytes_total = $2, chunk_size = $3, chunks_total = $4, updated_at = $1 \
         WHERE workspace_id = $5 AND id = $6",
    )
    .bind(now)
    .bind(bytes_total)
    .bind(chunk_size)
    .bind(chunks_total)
    .bind(workspace_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores what init returned for init generation `generation`. Written before anything else
/// happens with the publish. False when the target has moved on to another generation
/// meanwhile (a person sent it again while this answer was late): nothing is written, so a
/// stalled run cannot put its publish in place of the current one.
#[allow(clippy::too_many_arguments)]
pub async fn set_publish(
    db: &Db,
    workspace_id: &str,
    id: &str,
    generation: i64,
    publish_id: &str,
    upload_url: Option<&str>,
    upload_url_expires_at: Option<i64>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET publish_id = $1, upload_url = $2, upload_url_expires_at = $3, chunks_acked = 0, \
         bytes_sent = 0, updated_at = $4 WHERE workspace_id = $5 AND id = $6 AND init_generation = $7",
    )
    .bind(publish_id)
    .bind(upload_url)
    .bind(upload_url_expires_at)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .bind(generation)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that chunks `0..chunks_acked` are acknowledged (never goes down).
pub async fn ack_chunks(
    db: &Db,
    workspace_id: &str,
    id: &str,
    chunks_acked: i64,
    bytes_sent: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE post_targets SET chunks_acked = $1, bytes_sent = $2, updated_at = $3 \
         WHERE workspace_id = $4 AND id = $5 AND chunks_acked < $1",
    )
    .bind(chunks_acked)
    .bind(bytes_sent)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Forgets the provider publish so that the next run starts a new one (expired upload URL,
/// a definite init failure, an explicit retry): bumps the init generation.
pub async fn restart_publish(
    db: &Db,
    workspace_id: &str,
    id: &str,
    generation: i64,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET publish_id = NULL, upload_url = NULL, upload_url_expires_at = NULL, \
         chunks_acked = 0, bytes_sent = 0, provider_status = NULL, init_at = NULL, \
         init_generation = init_generation + 1, updated_at = $1 \
         WHERE workspace_id = $2 AND id = $3 AND init_generation = $4",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .bind(generation)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Clears the error of a target being retried.
pub async fn clear_error(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE post_targets SET error_code = NULL, error_message = NULL, error_retryable = 0, finished_at = NULL, \
         updated_at = $1 WHERE workspace_id = $2 AND id = $3",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The provider's latest raw status and, when known, its byte progress and post ids.
pub async fn set_provider_status(
    db: &Db,
    workspace_id: &str,
    id: &str,
    status: &str,
    post_ids: Option<&[String]>,
    now: i64,
) -> Result<()> {
    let ids = post_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()));
    sqlx::query(
        "UPDATE post_targets SET provider_status = $1, provider_post_ids = COALESCE($2, provider_post_ids), \
         updated_at = $3 WHERE workspace_id = $4 AND id = $5",
    )
    .bind(status)
    .bind(ids)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records the provider's status and replaces the public post ids with `ids`, only if they are
/// still `known` (the JSON stored when the caller read the target): of two reporters at once,
/// one changes them. False when they had changed meanwhile.
pub async fn add_post_ids(
    db: &Db,
    workspace_id: &str,
    id: &str,
    status: &str,
    known: &str,
    ids: &[String],
    now: i64,
) -> Result<bool> {
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let done = sqlx::query(
        "UPDATE post_targets SET provider_status = $1, provider_post_ids = $2, updated_at = $3 \
         WHERE workspace_id = $4 AND id = $5 AND provider_post_ids = $6",
    )
    .bind(status)
    .bind(ids)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .bind(known)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inits of one account in one mode since `since` that still count against a quota (not
/// failed or cancelled), oldest first, excluding `except` (the target asking).
pub async fn quota_inits(
    conn: &mut AnyConnection,
    account_id: &str,
    mode: &str,
    since: i64,
    except: Option<&str>,
) -> Result<Vec<(String, i64, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT id, init_at, provider_status FROM post_targets WHERE account_id = $1 AND mode = $2 \
         AND init_at IS NOT NULL AND init_at > $3 AND state NOT IN ('failed', 'cancelled') \
         AND ($4 IS NULL OR id <> $4) ORDER BY init_at ASC",
    )
    .bind(account_id)
    .bind(mode)
    .bind(since)
    .bind(except)
    .fetch_all(conn)
    .await?)
}

/// Accounts of `platform` with a direct init since `since` (oldest init of each first).
pub async fn direct_posting_accounts(
    conn: &mut AnyConnection,
    platform: Platform,
    since: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT account_id, MIN(init_at) FROM post_targets WHERE platform = $1 AND mode = 'direct' \
         AND init_at IS NOT NULL AND init_at > $2 AND state NOT IN ('failed', 'cancelled') \
         GROUP BY account_id ORDER BY MIN(init_at) ASC",
    )
    .bind(platform.as_str())
    .bind(since)
    .fetch_all(conn)
    .await?)
}

/// One of an account's latest targets with its post's caption (the dashboard's TikTok widget).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RecentTarget {
    pub post_id: String,
    pub caption: String,
    pub kind: String,
    pub mode: String,
    pub state: String,
    pub created_at: i64,
}

/// The latest `limit` targets of one account, newest first (ids are UUIDv7). Reads the
/// account's targets through the `(account_id, …)` index.
pub async fn recent_for_account(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
    limit: i64,
) -> Result<Vec<RecentTarget>> {
    Ok(sqlx::query_as(
        "SELECT t.post_id, p.caption, p.kind, t.mode, t.state, t.created_at FROM post_targets t \
         JOIN posts p ON p.id = t.post_id \
         WHERE t.account_id = $1 AND t.workspace_id = $2 ORDER BY t.id DESC LIMIT $3",
    )
    .bind(account_id)
    .bind(workspace_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Which posts [`list_filtered`] returns, beside the workspace.
#[derive(Debug, Clone, Default)]
pub struct PostFilter {
    /// Only posts with a target in this state (`queued`, `scheduled`, `published`, …).
    pub target_state: Option<String>,
    /// Only posts with a target on this account.
    pub account_id: Option<String>,
    /// `Some(true)`: posts still waiting for their time (a target `scheduled`); `Some(false)`:
    /// the others (sent, on their way or finished).
    pub scheduled: Option<bool>,
    /// The id of the last post of the previous page.
    pub before: Option<String>,
    /// Only posts with a target on an account of this creator.
    pub creator_id: Option<String>,
    /// Only posts planned in `[from, to)` (ms): their schedule, or their creation for a post
    /// sent at once (the calendar's window).
    pub planned_between: Option<(i64, i64)>,
}

/// Newest first (ids are UUIDv7), filtered; the filters are optional and combine with AND.
pub async fn list_filtered(
    db: &Db,
    workspace_id: &str,
    filter: &PostFilter,
    limit: i64,
) -> Result<Vec<Post>> {
    let scheduled = filter.scheduled.map(i64::from);
    Ok(sqlx::query_as(&format!(
        "SELECT {POST_SELECT} FROM posts p WHERE p.workspace_id = $1 AND ($2 IS NULL OR p.id < $2) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM post_targets t WHERE t.post_id = p.id AND t.state = $3)) \
         AND ($4 IS NULL OR EXISTS (SELECT 1 FROM post_targets t WHERE t.post_id = p.id AND t.account_id = $4)) \
         AND ($5 IS NULL OR ($5 = 1) = EXISTS (SELECT 1 FROM post_targets t WHERE t.post_id = p.id \
              AND t.state = 'scheduled')) \
         AND ($6 IS NULL OR EXISTS (SELECT 1 FROM post_targets t JOIN accounts a ON a.id = t.account_id \
              WHERE t.post_id = p.id AND a.workspace_id = p.workspace_id AND a.creator_id = $6)) \
         AND ($7 IS NULL OR COALESCE(p.scheduled_at, p.created_at) >= $7) \
         AND ($8 IS NULL OR COALESCE(p.scheduled_at, p.created_at) < $8) \
         ORDER BY p.id DESC LIMIT $9"
    ))
    .bind(workspace_id)
    .bind(filter.before.as_deref())
    .bind(filter.target_state.as_deref())
    .bind(filter.account_id.as_deref())
    .bind(scheduled)
    .bind(filter.creator_id.as_deref())
    .bind(filter.planned_between.map(|(from, _)| from))
    .bind(filter.planned_between.map(|(_, to)| to))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The times at which an account's targets count against a daily limit, in `(from, to)`,
/// oldest first: a target that reached the provider counts from its init (`init_at`), one
/// waiting for its time from `scheduled_at`, any other from its creation. Failed and cancelled
/// targets do not count, nor inbox drafts the creator has posted (TikTok's inbox cap counts
/// drafts still pending). `modes` narrows to those modes (TikTok's direct posts and inbox
/// drafts have separate limits); `except_post` leaves out one post's targets (the post being
/// rescheduled).
pub async fn limit_events_in(
    conn: &mut AnyConnection,
    account_id: &str,
    modes: Option<&[&str]>,
    from: i64,
    to: i64,
    except_post: Option<&str>,
) -> Result<Vec<i64>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT COALESCE(init_at, scheduled_at, created_at) AS at, mode FROM post_targets \
         WHERE account_id = $1 AND state NOT IN ('failed', 'cancelled') \
         AND NOT (mode = 'inbox' AND COALESCE(provider_status, '') = 'PUBLISH_COMPLETE') \
         AND COALESCE(init_at, scheduled_at, created_at) > $2 \
         AND COALESCE(init_at, scheduled_at, created_at) < $3 \
         AND ($4 IS NULL OR post_id <> $4) ORDER BY at ASC",
    )
    .bind(account_id)
    .bind(from)
    .bind(to)
    .bind(except_post)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, mode)| modes.is_none_or(|m| m.contains(&mode.as_str())))
        .map(|(at, _)| at)
        .collect())
}

/// Moves a post that has not started to `scheduled_at` (and its zone).
pub async fn set_schedule_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    post_id: &str,
    scheduled_at: Option<i64>,
    time_zone: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE posts SET scheduled_at = $1, time_zone = $2, updated_at = $3 \
         WHERE workspace_id = $4 AND id = $5",
    )
    .bind(scheduled_at)
    .bind(time_zone)
    .bind(now)
    .bind(workspace_id)
    .bind(post_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a target that has not started (`queued` or `scheduled`) to `scheduled_at` in state
/// `state`; false when it started meanwhile.
pub async fn set_target_schedule_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    target_id: &str,
    scheduled_at: Option<i64>,
    state: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET scheduled_at = $1, state = $2, updated_at = $3 \
         WHERE workspace_id = $4 AND id = $5 AND state IN ('queued', 'scheduled')",
    )
    .bind(scheduled_at)
    .bind(state)
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Changes the shared caption of a post that has not started.
pub async fn set_caption_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    post_id: &str,
    caption: &str,
    options: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE posts SET caption = $1, options = $2, updated_at = $3 WHERE workspace_id = $4 AND id = $5",
    )
    .bind(caption)
    .bind(options)
    .bind(now)
    .bind(workspace_id)
    .bind(post_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the options of a target that has not started; false when it started meanwhile.
pub async fn set_target_options_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    target_id: &str,
    options: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET options = $1, updated_at = $2 \
         WHERE workspace_id = $3 AND id = $4 AND state IN ('queued', 'scheduled')",
    )
    .bind(options)
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an edit writes on the post row.
#[derive(Debug, Clone)]
pub struct PostEdit<'a> {
    pub caption: &'a str,
    pub kind: &'a str,
    pub media_id: Option<&'a str>,
    pub media_url: Option<&'a str>,
    pub options: &'a str,
    pub scheduled_at: Option<i64>,
    pub time_zone: Option<&'a str>,
}

/// Writes an edit of the post and moves it to the next version; with `version`, only at that
/// version (false: it changed since, nothing written).
pub async fn edit_post_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    post_id: &str,
    version: Option<i64>,
    edit: &PostEdit<'_>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE posts SET caption = $1, kind = $2, media_id = $3, media_url = $4, options = $5, \
         scheduled_at = $6, time_zone = $7, updated_at = $8, version = version + 1 \
         WHERE workspace_id = $9 AND id = $10 AND ($11 IS NULL OR version = $11)",
    )
    .bind(edit.caption)
    .bind(edit.kind)
    .bind(edit.media_id)
    .bind(edit.media_url)
    .bind(edit.options)
    .bind(edit.scheduled_at)
    .bind(edit.time_zone)
    .bind(now)
    .bind(workspace_id)
    .bind(post_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What an edit writes on a target.
#[derive(Debug, Clone)]
pub struct TargetEdit<'a> {
    pub mode: &'a str,
    pub source: &'a str,
    pub bytes_total: i64,
    pub options: &'a str,
    pub scheduled_at: Option<i64>,
    /// `queued` or `scheduled`.
    pub state: &'a str,
}

/// Writes an edit of a target that has not started, at the version the edit read; false when
/// it started (a publish job claimed it, [`claim`]) or changed meanwhile: nothing written.
pub async fn edit_target_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    target_id: &str,
    version: i64,
    edit: &TargetEdit<'_>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET mode = $1, source = $2, bytes_total = $3, options = $4, \
         scheduled_at = $5, state = $6, updated_at = $7, version = version + 1 \
         WHERE workspace_id = $8 AND id = $9 AND version = $10 AND state IN ('queued', 'scheduled')",
    )
    .bind(edit.mode)
    .bind(edit.source)
    .bind(edit.bytes_total)
    .bind(edit.options)
    .bind(edit.scheduled_at)
    .bind(edit.state)
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels a target an edit removes, at the version the edit read; false when it started or
/// changed meanwhile.
pub async fn remove_target_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    target_id: &str,
    version: i64,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET state = 'cancelled', finished_at = $1, updated_at = $1, \
         version = version + 1 \
         WHERE workspace_id = $2 AND id = $3 AND version = $4 AND state IN ('queued', 'scheduled')",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A publish job takes a target that has not started (queued or scheduled) to `uploading`,
/// only at `version`, the version it read the target and its options at: false when an edit
/// committed meanwhile (the job reads the post again) or the target moved on.
pub async fn claim(
    db: &Db,
    workspace_id: &str,
    target_id: &str,
    version: i64,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE post_targets SET state = 'uploading', updated_at = $1 \
         WHERE workspace_id = $2 AND id = $3 AND version = $4 AND state IN ('queued', 'scheduled')",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .bind(version)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
