//! Shared sliding-window limits: every admitted request is a row `(key, at)`, and a
//! request is admitted only while fewer than `limit` rows of its key lie inside the window.
//! Admission is serialized per key across instances by a lock row (`SELECT … FOR UPDATE` on
//! PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serializes writers).

use sqlx::AnyConnection;

use crate::{Db, Dialect, Result};

/// The answer of [`admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the limit: the next slot opens at this instant (ms).
    WaitUntil(i64),
}

/// Takes the per-key lock inside the caller's write transaction.
pub async fn lock_in(conn: &mut AnyConnection, dialect: Dialect, key: &str) -> Result<()> {
    sqlx::query("INSERT INTO rate_locks (key) VALUES ($1) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT key FROM rate_locks WHERE key = $1 FOR UPDATE")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Admits one request under `key` at `now` if fewer than `limit` were admitted in the last
/// `window_ms`; otherwise says when the oldest of them leaves the window.
pub async fn admit(db: &Db, key: &str, limit: u32, window_ms: i64, now: i64) -> Result<Admission> {
    let mut tx = db.begin_write().await?;
    lock_in(&mut tx, db.dialect(), key).await?;
    sqlx::query("DELETE FROM rate_events WHERE key = $1 AND at <= $2")
        .bind(key)
        .bind(now - window_ms)
        .execute(&mut *tx)
        .await?;
    let times: Vec<i64> =
        sqlx::query_scalar("SELECT at FROM rate_events WHERE key = $1 AND at > $2 ORDER BY at ASC")
            .bind(key)
            .bind(now - window_ms)
            .fetch_all(&mut *tx)
            .await?;
    let limit = limit.max(1) as usize;
    if times.len() >= limit {
        tx.commit().await?;
        // The (len - limit + 1)-th oldest must leave before one more fits.
        let leaving = times[times.len() - limit];
        return Ok(Admission::WaitUntil(leaving + window_ms));
    }
    sqlx::query("INSERT INTO rate_events (id, key, at) VALUES ($1, $2, $3)")
        .bind(tidepost_domain::new_id())
        .bind(key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Admission::Admitted)
}

/// How many requests of `key` lie inside the window ending at `now`.
pub async fn used(db: &Db, key: &str, window_ms: i64, now: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM rate_events WHERE key = $1 AND at > $2")
            .bind(key)
            .bind(now - window_ms)
            .fetch_one(db.pool())
            .await?,
    )
}
