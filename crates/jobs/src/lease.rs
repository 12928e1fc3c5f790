//! The lease protocol, one short statement per step; the worker pool and [`drain_due`](crate::drain_due)
//! are built on it, and it is public for tools and benchmarks that need the raw loop.
//!
//! [`expire`] gives back jobs whose lease expired (their worker was killed or stalled: `running`
//! with `locked_until <= now` becomes `queued`, lease cleared, error noted); worker pools run it
//! every `chores_interval` and [`drain_due`](crate::drain_due) before it claims. [`claim`]
//! moves due jobs (queued or failed with `run_at <= now`) to `running` with `locked_by`, a
//! fresh `lease_id` and `locked_until`, and counts an attempt. Two statements rather than one
//! with an `OR`, so that each reads its own partial index instead of sorting the whole table. Every later write about the job (heartbeat, completion, retry, release) is fenced:
//! it changes the row only while `lease_id` is still the one this claim wrote and the job is
//! still running, so a worker that lost its lease cannot finish a job someone else now holds.

use std::fmt::Write as _;

use sqlx::AnyConnection;
use tidepost_store::{Db, Dialect};

use crate::Result;
use crate::job::{COLUMNS, Job};

/// Proof of a claim: which job, which claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: String,
    pub lease_id: String,
}

impl Lease {
    /// The lease a claimed job carries.
    pub fn of(job: &Job) -> Option<Lease> {
        Some(Lease {
            job_id: job.id.clone(),
            lease_id: job.lease_id.clone()?,
        })
    }
}

/// What to claim.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Recorded in `locked_by`, for people looking at the queue.
    pub worker: &'a str,
    /// Only these kinds; `None` for any.
    pub kinds: Option<&'a [String]>,
    /// At most this many jobs.
    pub limit: usize,
    /// How long the lease lasts unless extended, in milliseconds.
    pub lease_ms: i64,
}

/// Claims up to `claim.limit` due jobs, highest priority first, then earliest `run_at`.
pub async fn claim(db: &Db, now: i64, claim: Claim<'_>) -> Result<Vec<Job>> {
    if claim.limit == 0 || claim.kinds.is_some_and(|k| k.is_empty()) {
        return Ok(Vec::new());
    }
    let mut conn = db.pool().acquire().await?;
    claim_in(&mut conn, db.dialect(), now, claim).await
}

/// [`claim`] on the caller's connection or within its transaction.
pub async fn claim_in(
    conn: &mut AnyConnection,
    dialect: Dialect,
    now: i64,
    claim: Claim<'_>,
) -> Result<Vec<Job>> {
    if claim.limit == 0 || claim.kinds.is_some_and(|k| k.is_empty()) {
        return Ok(Vec::new());
    }
    let sql = claim_sql(dialect, claim.kinds.map_or(0, <[String]>::len));
    let mut query = sqlx::query_as::<_, Job>(&sql)
        .bind(claim.worker)
        .bind(tidepost_domain::new_id())
        .bind(now + claim.lease_ms)
        .bind(now)
        .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX));
    for kind in claim.kinds.unwrap_or_default() {
        query = query.bind(kind);
    }
    let mut jobs = query.fetch_all(conn).await?;
    jobs.sort_by(|a, b| (b.priority, a.run_at, &a.id).cmp(&(a.priority, b.run_at, &b.id)));
    Ok(jobs)
}

/// One round of a busy worker pool: completes the jobs of `finished` (each fenced by its own
/// lease) and claims the next jobs. On PostgreSQL both statements share one transaction, so a
/// busy pool pays one commit (one WAL flush) per round instead of two. On SQLite, where a
/// commit costs no flush (WAL, `synchronous=NORMAL`) but every statement is a round trip to
/// the database thread, they are two statements in a row on one connection, each its own
/// transaction (one claim per transaction). Returns the ids completed (the others had lost
/// their lease) and the jobs claimed.
pub async fn complete_and_claim(
    db: &Db,
    now: i64,
    finished: &[Lease],
    claim: Claim<'_>,
) -> Result<(Vec<String>, Vec<Job>)> {
    let claims = claim.limit > 0 && !claim.kinds.is_some_and(|k| k.is_empty());
    match (finished.is_empty(), claims) {
        (true, _) => Ok((Vec::new(), self::claim(db, now, claim).await?)),
        (false, false) => Ok((complete_many(db, now, finished).await?, Vec::new())),
        (false, true) if db.dialect() == Dialect::Sqlite => {
            let mut conn = db.pool().acquire().await?;
            let completed = complete_many_in(&mut conn, now, finished).await?;
            let claimed = claim_in(&mut conn, db.dialect(), now, claim).await?;
            Ok((completed, claimed))
        }
        (false, true) => {
            let mut tx = db.begin_write().await?;
            let completed = complete_many_in(&mut tx, now, finished).await?;
            let claimed = claim_in(&mut tx, db.dialect(), now, claim).await?;
            tx.commit().await?;
            Ok((completed, claimed))
        }
    }
}

/// Gives back every job whose lease expired at `now`; returns how many.
pub async fn expire(db: &Db, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'queued', \
             last_error = 'lease expired: worker ' || COALESCE(locked_by, '?') || ' stopped before finishing', \
             locked_by = NULL, lease_id = NULL, locked_until = NULL, updated_at = $1 \
         WHERE state = 'running' AND locked_until <= $1",
    )
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// One statement: select the due rows (skipping rows other claimers hold on PostgreSQL) and
/// take them. On SQLite the statement is its own write transaction, so claims never overlap.
fn claim_sql(dialect: Dialect, kinds: usize) -> String {
    let mut sql = String::from(
        "UPDATE jobs SET state = 'running', locked_by = $1, lease_id = $2, locked_until = $3, \
             attempts = attempts + 1, updated_at = $4 \
         WHERE id IN (SELECT id FROM jobs WHERE state IN ('queued', 'failed') AND run_at <= $4",
    );
    if kinds > 0 {
        let params: Vec<String> = (0..kinds).map(|i| format!("${}", 6 + i)).collect();
        let _ = write!(sql, " AND kind IN ({})", params.join(", "));
    }
    sql.push_str(" ORDER BY priority DESC, run_at, id LIMIT $5");
    if dialect == Dialect::Postgres {
        sql.push_str(" FOR UPDATE SKIP LOCKED");
    }
    let _ = write!(sql, ") RETURNING {COLUMNS}");
    sql
}

/// The fence every write after a claim carries (parameters `$1` job id, `$2` lease id).
const FENCE: &str = "id = $1 AND lease_id = $2 AND state = 'running'";

/// Extends the lease to `now + lease_ms`; false when it was lost.
pub async fn heartbeat(db: &Db, now: i64, lease: &Lease, lease_ms: i64) -> Result<bool> {
    let sql = format!("UPDATE jobs SET locked_until = $3, updated_at = $4 WHERE {FENCE}");
    fenced(db.pool(), &sql, lease, |q| q.bind(now + lease_ms).bind(now)).await
}

/// Marks the job succeeded; false when the lease was lost.
pub async fn complete(db: &Db, now: i64, lease: &Lease) -> Result<bool> {
    let mut conn = db.pool().acquire().await?;
    complete_in(&mut conn, now, lease).await
}

/// [`complete`] within the caller's transaction.
pub async fn complete_in(conn: &mut AnyConnection, now: i64, lease: &Lease) -> Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'succeeded', locked_by = NULL, lease_id = NULL, locked_until = NULL, \
             updated_at = $3, finished_at = $3 WHERE {FENCE}"
    );
    fenced(conn, &sql, lease, |q| q.bind(now)).await
}

/// Completes several jobs in one statement, each fenced by its own lease; returns the ids of
/// the jobs completed (the others had lost their lease).
pub async fn complete_many(db: &Db, now: i64, leases: &[Lease]) -> Result<Vec<String>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = db.pool().acquire().await?;
    complete_many_in(&mut conn, now, leases).await
}

/// [`complete_many`] on the caller's connection or within its transaction.
pub async fn complete_many_in(
    conn: &mut AnyConnection,
    now: i64,
    leases: &[Lease],
) -> Result<Vec<String>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<String> = (0..leases.len())
        .map(|i| format!("(id = ${} AND lease_id = ${})", 2 + 2 * i, 3 + 2 * i))
        .collect();
    let sql = format!(
        "UPDATE jobs SET state = 'succeeded', locked_by = NULL, lease_id = NULL, locked_until = NULL, \
             updated_at = $1, finished_at = $1 WHERE state = 'running' AND ({}) RETURNING id",
        pairs.join(" OR ")
    );
    let mut query = sqlx::query_scalar(&sql).bind(now);
    for lease in leases {
        query = query.bind(&lease.job_id).bind(&lease.lease_id);
    }
    Ok(query.fetch_all(conn).await?)
}

/// Puts the job back as `failed`, due again at `run_at`, keeping `error`.
pub async fn fail(db: &Db, now: i64, lease: &Lease, run_at: i64, error: &str) -> Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'failed', run_at = $3, last_error = $4, locked_by = NULL, lease_id = NULL, \
             locked_until = NULL, updated_at = $5 WHERE {FENCE}"
    );
    fenced(db.pool(), &sql, lease, |q| {
        q.bind(run_at).bind(error).bind(now)
    })
    .await
}

/// Puts a job that waits for something outside (not a failure) back as `queued`, due at
/// `run_at`; its `last_error` is left as it was (a wait is not an error).
pub async fn wait(db: &Db, now: i64, lease: &Lease, run_at: i64) -> Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'queued', run_at = $3, locked_by = NULL, lease_id = NULL, \
             locked_until = NULL, updated_at = $4 WHERE {FENCE}"
    );
    fenced(db.pool(), &sql, lease, |q| q.bind(run_at).bind(now)).await
}

/// Moves the job to `dead`, keeping `error`.
pub async fn bury(db: &Db, now: i64, lease: &Lease, error: &str) -> Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'dead', last_error = $3, locked_by = NULL, lease_id = NULL, \
             locked_until = NULL, updated_at = $4, finished_at = $4 WHERE {FENCE}"
    );
    fenced(db.pool(), &sql, lease, |q| q.bind(error).bind(now)).await
}

/// Gives the job back unfinished (shutdown): queued, due now, this attempt not counted.
pub async fn release(db: &Db, now: i64, lease: &Lease) -> Result<bool> {
    let sql = format!(
        "UPDATE jobs SET state = 'queued', run_at = $3, attempts = attempts - 1, \
             last_error = 'released unfinished by a worker shutting down', locked_by = NULL, lease_id = NULL, \
             locked_until = NULL, updated_at = $3 WHERE {FENCE}"
    );
    fenced(db.pool(), &sql, lease, |q| q.bind(now)).await
}

/// Checks, inside the caller's write transaction, that the lease is still held, and keeps it
/// held until the transaction ends (the row is locked on PostgreSQL; SQLite has one writer).
pub async fn hold_in(conn: &mut AnyConnection, now: i64, lease: &Lease) -> Result<bool> {
    let sql = format!("UPDATE jobs SET updated_at = $3 WHERE {FENCE}");
    fenced(conn, &sql, lease, |q| q.bind(now)).await
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

async fn fenced<'q, 'c, E>(
    executor: E,
    sql: &'q str,
    lease: &'q Lease,
    bind_rest: impl FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
) -> Result<bool>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let query = sqlx::query(sql).bind(&lease.job_id).bind(&lease.lease_id);
    let done = bind_rest(query).execute(executor).await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_sql_differs_only_in_locking() {
        let sqlite = claim_sql(Dialect::Sqlite, 2);
        let postgres = claim_sql(Dialect::Postgres, 2);
        assert!(sqlite.contains("AND kind IN ($6, $7)"));
        assert!(!sqlite.contains("SKIP LOCKED"));
        assert_eq!(postgres.replace(" FOR UPDATE SKIP LOCKED", ""), sqlite);
    }
}
