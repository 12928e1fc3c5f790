//! The visibility API for the UI and the REST API: counts, lists, one job and its steps, and
//! the two operator actions (retry a failed or dead job, cancel a waiting one).
//!
//! Every function takes a [`Scope`]: `Scope::Workspace(id)` sees only that workspace's jobs
//! (what tenant-facing routes must use); `Scope::All` is for operators.

use serde::Serialize;
use tidepost_store::Db;

use crate::job::{COLUMNS, Job, JobState};
use crate::{Queue, Result};

/// Whose jobs a call sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Workspace(&'a str),
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// A page of a newest-first list: `after` is the last id of the previous page.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    pub after: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 50,
            after: None,
        }
    }
}

/// How many jobs of one kind are in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct KindCount {
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub count: i64,
}

/// A durable step of a job, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StepRow {
    pub name: String,
    /// `intent` (outcome unknown or in flight) or `done`.
    pub state: String,
    pub attempt: i64,
    pub outcome: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A `WHERE` clause built from optional conditions, every parameter a string, numbered after
/// `skip` parameters the statement binds first.
struct Where {
    sql: String,
    skip: usize,
    binds: Vec<String>,
}

impl Where {
    fn new(scope: Scope<'_>) -> Self {
        Self::after(0, scope)
    }

    fn after(skip: usize, scope: Scope<'_>) -> Self {
        let mut clause = Self {
            sql: " WHERE 1 = 1".to_string(),
            skip,
            binds: Vec::new(),
        };
        if let Scope::Workspace(id) = scope {
            clause.push("workspace_id =", id);
        }
        clause
    }

    fn push(&mut self, condition: &str, value: &str) {
        self.binds.push(value.to_string());
        self.sql.push_str(&format!(
            " AND {condition} {}",
            self.param(self.binds.len())
        ));
    }

    fn param(&self, n: usize) -> String {
        format!("${}", self.skip + n)
    }

    fn next_param(&self) -> String {
        self.param(self.binds.len() + 1)
    }
}

/// Counts by kind and state.
pub async fn counts(db: &Db, scope: Scope<'_>) -> Result<Vec<KindCount>> {
    let clause = Where::new(scope);
    let sql = format!(
        "SELECT kind, state, COUNT(*) AS count FROM jobs{} GROUP BY kind, state ORDER BY kind, state",
        clause.sql
    );
    let mut query = sqlx::query_as(&sql);
    for value in &clause.binds {
        query = query.bind(value);
    }
    Ok(query.fetch_all(db.pool()).await?)
}

/// Jobs newest first, filtered and paged.
pub async fn list(db: &Db, scope: Scope<'_>, filter: &Filter, page: &Page) -> Result<Vec<Job>> {
    let mut clause = Where::new(scope);
    if let Some(state) = filter.state {
        clause.push("state =", state.as_str());
    }
    if let Some(kind) = &filter.kind {
        clause.push("kind =", kind);
    }
    if let Some(after) = &page.after {
        clause.push("id <", after);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs{} ORDER BY id DESC LIMIT {}",
        clause.sql,
        clause.next_param()
    );
    let mut query = sqlx::query_as(&sql);
    for value in &clause.binds {
        query = query.bind(value);
    }
    Ok(query
        .bind(i64::from(page.limit.clamp(1, 500)))
        .fetch_all(db.pool())
        .await?)
}

/// One job.
pub async fn get(db: &Db, scope: Scope<'_>, id: &str) -> Result<Option<Job>> {
    let mut clause = Where::new(scope);
    clause.push("id =", id);
    let sql = format!("SELECT {COLUMNS} FROM jobs{}", clause.sql);
    let mut query = sqlx::query_as(&sql);
    for value in &clause.binds {
        query = query.bind(value);
    }
    Ok(query.fetch_optional(db.pool()).await?)
}

/// The durable steps of one job, oldest first.
pub async fn steps(db: &Db, scope: Scope<'_>, job_id: &str) -> Result<Vec<StepRow>> {
    if get(db, scope, job_id).await?.is_none() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT name, state, attempt, outcome, created_at, updated_at FROM job_steps \
         WHERE job_id = $1 ORDER BY created_at, name",
    )
    .bind(job_id)
    .fetch_all(db.pool())
    .await?)
}

/// Puts a dead or failed job back in the queue, due now, with a fresh set of attempts (its
/// last error and steps are kept). False when no such job is dead or failed in scope.
pub async fn retry(queue: &Queue, scope: Scope<'_>, id: &str) -> Result<bool> {
    let set = "state = 'queued', attempts = 0, run_at = $1, updated_at = $1, finished_at = NULL";
    let done = update_one(queue, scope, id, set, "('dead', 'failed')").await?;
    if done {
        queue.wake().notify_one();
    }
    Ok(done)
}

/// Cancels a job that is waiting (queued, or failed and waiting for a retry). A running job
/// cannot be cancelled. False when no such job waits in scope.
pub async fn cancel(queue: &Queue, scope: Scope<'_>, id: &str) -> Result<bool> {
    let set = "state = 'cancelled', updated_at = $1, finished_at = $1";
    update_one(queue, scope, id, set, "('queued', 'failed')").await
}

/// `UPDATE jobs SET {set}` (where `$1` is now) on job `id` in scope if its state is in `from`.
async fn update_one(
    queue: &Queue,
    scope: Scope<'_>,
    id: &str,
    set: &str,
    from: &str,
) -> Result<bool> {
    let mut clause = Where::after(1, scope);
    clause.push("id =", id);
    let sql = format!("UPDATE jobs SET {set}{} AND state IN {from}", clause.sql);
    let mut query = sqlx::query(&sql).bind(queue.clock().now_ms());
    for value in &clause.binds {
        query = query.bind(value);
    }
    Ok(query.execute(queue.db().pool()).await?.rows_affected() == 1)
}

/// Jobs due and waiting to run (queued, or failed with their retry due).
pub async fn queue_depth(db: &Db, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'failed') AND run_at <= $1",
    )
    .bind(now)
    .fetch_one(db.pool())
    .await?)
}

/// Deletes jobs that succeeded or were cancelled before `done_before`, and dead jobs that died
/// before `dead_before` (usually earlier: a dead job is kept longer so someone can read why it
/// failed and retry it — a retried job is queued again and no longer dead, so it is never
/// pruned under way), with their steps; returns how many. Their idempotency keys become free
/// again. Failed jobs waiting for a retry are not finished and never pruned.
pub async fn prune_finished(db: &Db, done_before: i64, dead_before: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE (state IN ('succeeded', 'cancelled') AND finished_at < $1) \
         OR (state = 'dead' AND finished_at < $2)",
    )
    .bind(done_before)
    .bind(dead_before)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Deletes finished jobs (succeeded, dead, cancelled) that finished before `before`, with their
/// steps; returns how many. Their idempotency keys become free again.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND finished_at < $1",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}
