//! Recurring sweeps, fired once per period across every instance.
//!
//! A schedule is a row (`name`, `kind`, `payload`, `interval_ms`, `next_run_at`). Whoever sees
//! it due advances `next_run_at` with a compare-and-set and, in the same transaction, enqueues
//! the period's job under the idempotency key `name@period` (the period's start in
//! milliseconds): of several instances ticking at once, exactly one wins each period, and even
//! a repeated tick cannot enqueue a period twice. Periods missed while nothing ran fire once.

use std::time::Duration;

use serde::Serialize;
use tidepost_store::Db;

use crate::clock::millis;
use crate::{NewJob, Queue, Result};

/// A recurring job: `kind` with `payload`, every `every`.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub every: Duration,
}

impl Schedule {
    pub fn every(
        name: impl Into<String>,
        every: Duration,
        kind: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            payload,
            every,
        }
    }
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ScheduleRow {
    pub name: String,
    pub kind: String,
    pub payload: String,
    pub interval_ms: i64,
    pub next_run_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Creates the schedule (first due now) or updates its kind, payload and interval (keeping
/// when it is next due). Every instance may call this at start-up.
pub async fn ensure(queue: &Queue, schedule: &Schedule) -> Result<()> {
    let now = queue.clock().now_ms();
    sqlx::query(
        "INSERT INTO job_schedules (name, kind, payload, interval_ms, next_run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $5) \
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, payload = excluded.payload, \
             interval_ms = excluded.interval_ms, updated_at = excluded.updated_at",
    )
    .bind(&schedule.name)
    .bind(&schedule.kind)
    .bind(schedule.payload.to_string())
    .bind(millis(schedule.every).max(1))
    .bind(now)
    .execute(queue.db().pool())
    .await?;
    Ok(())
}

/// Removes a schedule; false when there was none.
pub async fn remove(db: &Db, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM job_schedules WHERE name = $1")
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn list(db: &Db) -> Result<Vec<ScheduleRow>> {
    Ok(sqlx::query_as(
        "SELECT name, kind, payload, interval_ms, next_run_at, created_at, updated_at FROM job_schedules ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Fires every due schedule this instance wins; returns how many jobs it enqueued.
pub async fn tick(queue: &Queue) -> Result<usize> {
    let now = queue.clock().now_ms();
    let due: Vec<ScheduleRow> = sqlx::query_as(
        "SELECT name, kind, payload, interval_ms, next_run_at, created_at, updated_at FROM job_schedules \
         WHERE next_run_at <= $1",
    )
    .bind(now)
    .fetch_all(queue.db().pool())
    .await?;
    let mut fired = 0;
    for schedule in &due {
        if fire(queue, schedule, now).await? {
            fired += 1;
        }
    }
    Ok(fired)
}

/// Advances one due schedule past `now` and enqueues its period, or does nothing when another
/// instance advanced it first.
async fn fire(queue: &Queue, schedule: &ScheduleRow, now: i64) -> Result<bool> {
    let period = schedule.next_run_at;
    let mut tx = queue.db().begin_write().await?;
    let advanced = sqlx::query(
        "UPDATE job_schedules SET next_run_at = $3, updated_at = $4 WHERE name = $1 AND next_run_at = $2",
    )
    .bind(&schedule.name)
    .bind(period)
    .bind(next_after(period, schedule.interval_ms, now))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if advanced.rows_affected() != 1 {
        return Ok(false);
    }
    let job = NewJob::from_json(&schedule.kind, schedule.payload.clone())
        .idempotency_key(format!("{}@{period}", schedule.name));
    let enqueued = queue.enqueue_in(&mut tx, job).await?;
    tx.commit()
        .await
        .map_err(tidepost_store::StoreError::from)?;
    Ok(enqueued.created)
}

/// The first period start after `now` on the grid `period + k · interval`.
fn next_after(period: i64, interval_ms: i64, now: i64) -> i64 {
    let interval = interval_ms.max(1);
    let skipped = (now - period).max(0) / interval;
    period + (skipped + 1) * interval
}

#[cfg(test)]
mod tests {
    use super::next_after;

    #[test]
    fn next_period_skips_missed_ones() {
        assert_eq!(next_after(1_000, 100, 1_000), 1_100);
        assert_eq!(next_after(1_000, 100, 1_099), 1_100);
        assert_eq!(next_after(1_000, 100, 1_100), 1_200);
        assert_eq!(next_after(1_000, 100, 1_550), 1_600);
    }
}
