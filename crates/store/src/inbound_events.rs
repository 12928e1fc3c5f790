//! Inbound provider webhooks, stored raw before they are acknowledged, deduplicated by a key
//! (a hash of the raw body), and applied later by a job.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InboundEvent {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    pub event_type: String,
    pub body: String,
    pub signature_ts: Option<i64>,
    pub received_at: i64,
    pub applied_at: Option<i64>,
    pub apply_result: Option<String>,
}

const SELECT: &str = "SELECT id, provider, dedupe_key, event_type, body, signature_ts, received_at, \
     applied_at, apply_result FROM inbound_events ";

/// Stores the event unless one with the same dedupe key exists. Returns the stored event and
/// whether this call inserted it.
pub async fn insert(db: &Db, e: &InboundEvent) -> Result<(InboundEvent, bool)> {
    let done = sqlx::query(
        "INSERT INTO inbound_events (id, provider, dedupe_key, event_type, body, signature_ts, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&e.id)
    .bind(&e.provider)
    .bind(&e.dedupe_key)
    .bind(&e.event_type)
    .bind(&e.body)
    .bind(e.signature_ts)
    .bind(e.received_at)
    .execute(db.pool())
    .await?;
    let stored = sqlx::query_as(&format!("{SELECT} WHERE dedupe_key = $1"))
        .bind(&e.dedupe_key)
        .fetch_one(db.pool())
        .await?;
    Ok((stored, done.rows_affected() == 1))
}

/// System-wide (webhooks are not bound to a workspace until applied).
pub async fn get(db: &Db, id: &str) -> Result<Option<InboundEvent>> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Marks the event applied once; false when it already was.
pub async fn mark_applied(db: &Db, id: &str, result: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE inbound_events SET applied_at = $1, apply_result = $2 WHERE id = $3 AND applied_at IS NULL",
    )
    .bind(now)
    .bind(result)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_applied`] inside a transaction, so that what applying wrote and the mark commit
/// together (false: another run applied it first; roll back).
pub async fn mark_applied_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    result: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE inbound_events SET applied_at = $1, apply_result = $2 WHERE id = $3 AND applied_at IS NULL",
    )
    .bind(now)
    .bind(result)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Events of one provider received since `since`, newest first (for the UI and tests).
pub async fn recent(db: &Db, provider: &str, limit: i64) -> Result<Vec<InboundEvent>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE provider = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
    ))
    .bind(provider)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
