//! Failed sign-in attempts, counted per subject (an email, or a client address) in the database
//! so that every instance shares the limit.

use crate::{Db, Result};

pub async fn record_failure(db: &Db, subject: &str, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO login_attempts (subject, at) VALUES ($1, $2)")
        .bind(subject)
        .bind(at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Failures for `subject` at or after `since`, and the oldest of them.
pub async fn failures_since(db: &Db, subject: &str, since: i64) -> Result<(i64, Option<i64>)> {
    let row: (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(at) FROM login_attempts WHERE subject = $1 AND at >= $2",
    )
    .bind(subject)
    .bind(since)
    .fetch_one(db.pool())
    .await?;
    Ok(row)
}

pub async fn clear(db: &Db, subject: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_attempts WHERE subject = $1")
        .bind(subject)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Forgets attempts older than `before`.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(before)
        .execute(db.pool())
        .await?
        .rows_affected())
}
