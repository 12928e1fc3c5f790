//! TikTok's limits, shared by every instance through the database:
//!
//! - posting endpoints (init): `tiktok_posting_requests_per_minute` (6) per account in a
//!   sliding minute; excess requests wait for the window (the job is rescheduled to the
//!   instant the next slot opens);
//! - status fetch: 30 per minute per account, same mechanism;
//! - quotas, checked when a post is accepted and again (under a per-account lock, reserving
//!   the slot) right before init: direct posts per creator per 24 h, pending inbox uploads per
//!   creator per 24 h, and for an unaudited app the distinct creators per 24 h. Each refusal
//!   says when the next slot opens.
//!
//! The per-minute limits are counted per connected account: one access token is live per
//! account at a time, so this is the per-token limit TikTok documents (a refreshed token
//! inherits the count, which errs on the safe side).

use sqlx::AnyConnection;
use tidepost_store::accounts::Account;
use tidepost_store::limits::{self, Admission};
use tidepost_store::{StoreError, posts};

use super::Mode;
use crate::App;
use crate::pipeline::quota::DailyLimit;
use crate::pipeline::{Prepared, PublishError};

pub const MINUTE_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;
/// TikTok's documented status fetch limit per token.
pub const STATUS_REQUESTS_PER_MINUTE: u32 = 30;

pub fn posting_key(account_id: &str) -> String {
    format!("tiktok:posting:{account_id}")
}

/// How much longer than a minute a posting slot is held. TikTok stamps a request when it
/// arrives, a little after the slot was taken here (the call's own latency, longer in a burst),
/// and its clock is not ours: without a margin, the 7th init of a busy minute can reach TikTok
/// a few milliseconds inside the window of the 1st (the fan-out benchmark saw it happen).
pub const POSTING_WINDOW_MARGIN_MS: i64 = 1_000;

/// Takes a slot on the posting endpoints for `account_id`, or says when one opens.
pub async fn posting_slot(app: &App, account_id: &str, now: i64) -> Result<Admission, StoreError> {
    let limit = app.config.publish.tiktok_posting_requests_per_minute;
    let window = MINUTE_MS + POSTING_WINDOW_MARGIN_MS;
    limits::admit(&app.db, &posting_key(account_id), limit, window, now).await
}

/// Takes a slot on the status endpoint for `account_id`, or says when one opens.
pub async fn status_slot(app: &App, account_id: &str, now: i64) -> Result<Admission, StoreError> {
    let key = format!("tiktok:status:{account_id}");
    limits::admit(&app.db, &key, STATUS_REQUESTS_PER_MINUTE, MINUTE_MS, now).await
}

/// Whether a new post of `mode` for `account` fits the quotas now (no reservation).
pub async fn check_quotas(
    app: &App,
    account: &Account,
    mode: Mode,
    except: Option<&str>,
    now: i64,
) -> Result<(), PublishError> {
    let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
    match refusal(&mut conn, app, account, mode, except, now).await? {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Checks the quotas under the account's lock and, when they allow it, reserves the init for
/// `target_id` (its `init_at`) together with the upload plan.
#[allow(clippy::too_many_arguments)]
pub async fn reserve_init(
    app: &App,
    account: &Account,
    mode: Mode,
    target_id: &str,
    bytes_total: i64,
    chunk_size: i64,
    chunks_total: i64,
    now: i64,
) -> Result<(), PublishError> {
    let mut tx = app.db.begin_write().await?;
    if app.config.publish.tiktok_unaudited && mode == Mode::Direct {
        limits::lock_in(&mut tx, app.db.dialect(), "tiktok:quota:app").await?;
    }
    limits::lock_in(
        &mut tx,
        app.db.dialect(),
        &crate::pipeline::quota::lock_key(account),
    )
    .await?;
    if let Some(err) = refusal(&mut tx, app, account, mode, Some(target_id), now).await? {
        tx.rollback().await.map_err(StoreError::from)?;
        return Err(err);
    }
    posts::reserve_init_in(
        &mut tx,
        &account.workspace_id,
        target_id,
        bytes_total,
        chunk_size,
        chunks_total,
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn refusal(
    conn: &mut AnyConnection,
    app: &App,
    account: &Account,
    mode: Mode,
    except: Option<&str>,
    now: i64,
) -> Result<Option<PublishError>, StoreError> {
    let settings = &app.config.publish;
    let since = now - DAY_MS;
    let name = &account.display_name;
    let inits = posts::quota_inits(conn, &account.id, mode.as_str(), since, except).await?;
    match mode {
        Mode::Direct => {
            let cap = settings.tiktok_direct_post_daily_cap as usize;
            if inits.len() >= cap {
                let next = inits[inits.len() - cap].1 + DAY_MS;
                return Ok(Some(quota(
                    format!(
                        "{name} reached the daily cap of {cap} direct posts through tidepost (TikTok allows about 15 a day per creator, across all apps); the next slot opens at {}",
                        crate::compose::schedule::spoken(next, None)
                    ),
                    next,
                )));
            }
            if settings.tiktok_unaudited {
                let cap = settings.tiktok_unaudited_user_cap as usize;
                let users =
                    posts::direct_posting_accounts(conn, tidepost_domain::Platform::Tiktok, since)
                        .await?;
                let others: Vec<&(String, i64)> =
                    users.iter().filter(|(id, _)| *id != account.id).collect();
                if others.len() >= cap && users.len() == others.len() {
                    let next = others[others.len() - cap].1 + DAY_MS;
                    return Ok(Some(quota(
                        format!(
                            "this TikTok app is not audited yet, so it may post for at most {cap} creators a day and that many already posted; the next slot opens at {}",
                            crate::compose::schedule::spoken(next, None)
                        ),
                        next,
                    )));
                }
            }
        }
        Mode::Inbox => {
            let cap = settings.tiktok_pending_inbox_cap as usize;
            let pending: Vec<i64> = inits
                .iter()
                .filter(|(_, _, status)| status.as_deref() != Some("PUBLISH_COMPLETE"))
                .map(|(_, at, _)| *at)
                .collect();
            if pending.len() >= cap {
                let next = pending[pending.len() - cap] + DAY_MS;
                return Ok(Some(quota(
                    format!(
                        "{name} already has {cap} drafts from the last 24 hours waiting in their TikTok inbox; ask them to post or discard them, or wait until {}",
                        crate::compose::schedule::spoken(next, None)
                    ),
                    next,
                )));
            }
        }
    }
    Ok(None)
}

fn quota(message: String, next_slot_ms: i64) -> PublishError {
    PublishError::Quota {
        message,
        next_slot_ms,
    }
}

/// The daily limit a TikTok target counts against: the pending-inbox cap for drafts, the
/// direct-post cap otherwise (tidepost's own caps, configurable).
pub fn daily_limit(app: &App, prepared: &Prepared) -> DailyLimit {
    let name = &prepared.account.display_name;
    if prepared.mode == Mode::Inbox.as_str() {
        let cap = app.config.publish.tiktok_pending_inbox_cap as usize;
        DailyLimit {
            modes: Some(vec!["inbox"]),
            cap,
            message: format!(
                "{name} would have more than {cap} drafts from 24 hours waiting in their TikTok inbox"
            ),
        }
    } else {
        let cap = app.config.publish.tiktok_direct_post_daily_cap as usize;
        DailyLimit {
            modes: Some(vec!["direct"]),
            cap,
            message: format!(
                "{name} would exceed the daily cap of {cap} direct TikTok posts through tidepost"
            ),
        }
    }
}

/// TikTok's quotas for one more post of `prepared` sent now (no reservation: the init reserves).
pub async fn admit_now(app: &App, prepared: &Prepared, now: i64) -> Result<(), PublishError> {
    let mode = if prepared.mode == Mode::Inbox.as_str() {
        Mode::Inbox
    } else {
        Mode::Direct
    };
    check_quotas(app, &prepared.account, mode, None, now).await
}

/// The key under which a TikTok account's details keep the creator's last "cannot post"
/// answer from `creator_info` (`{"code", "message", "checked_at"}`); absent when the last
/// reading allowed posting.
pub const POSTING_BLOCK_DETAIL: &str = "posting_block";

/// The `creator_info` refusals that say this creator cannot post now (TikTok answers them with
/// HTTP 200 and `error.code`): banned from posting, the creator's daily cap of API posts, the
/// app's cap of active creators, too many pending inbox shares.
pub const POSTING_BLOCK_CODES: &[&str] = &[
    "spam_risk_user_banned_from_posting",
    "spam_risk_too_many_posts",
    "reached_active_user_cap",
    "spam_risk_too_many_pending_share",
];

/// Keeps what a `creator_info` reading says of the creator's ability to post on the account:
/// a refusal of [`POSTING_BLOCK_CODES`] is remembered, an answer clears it; other failures
/// (the network, a token) say nothing about it. So the accounts page, the API's account and
/// the composer agree without each asking TikTok. Best effort: a failure here only leaves the
/// shown health older.
pub async fn remember_posting_reading<T>(
    app: &App,
    account: &Account,
    reading: &Result<T, PublishError>,
) {
    let block = match reading {
        Ok(_) => None,
        Err(PublishError::Provider(e)) if POSTING_BLOCK_CODES.contains(&e.code.as_str()) => {
            Some(serde_json::json!({
                "code": e.code,
                "message": e.message,
                "checked_at": tidepost_domain::now_ms(),
            }))
        }
        Err(_) => return,
    };
    let Ok(Some(current)) =
        tidepost_store::accounts::get(&app.db, &account.workspace_id, &account.id).await
    else {
        return;
    };
    let mut details: serde_json::Value =
        serde_json::from_str(&current.details).unwrap_or_else(|_| serde_json::json!({}));
    let Some(map) = details.as_object_mut() else {
        return;
    };
    let changed = match block {
        Some(block) => {
            map.insert(POSTING_BLOCK_DETAIL.into(), block);
            true
        }
        None => map.remove(POSTING_BLOCK_DETAIL).is_some(),
    };
    if !changed {
        return;
    }
    if let Err(err) = tidepost_store::accounts::set_details(
        &app.db,
        &account.workspace_id,
        &account.id,
        &details.to_string(),
    )
    .await
    {
        tracing::warn!(account_id = %account.id, error = %err, "could not keep the creator's posting reading");
    }
}

/// Why the creator cannot post now, from the last `creator_info` reading kept on the account.
pub fn posting_block(account: &Account) -> Option<String> {
    let details: serde_json::Value = serde_json::from_str(&account.details).ok()?;
    let block = details.get(POSTING_BLOCK_DETAIL)?;
    let message = block["message"]
        .as_str()
        .unwrap_or("TikTok refuses posts from this creator now.");
    Some(format!(
        "TikTok does not let this creator post now: {message}"
    ))
}
