//! Enqueuing jobs.
//!
//! [`Queue::enqueue`] commits in groups: calls that arrive while an insert is in flight wait
//! for it and are then written together by one multi-row statement in one transaction, so a
//! burst of enqueues (webhook ingest, fan-out) pays one commit and one round trip for many
//! jobs instead of one each, and a lone call is written at once. Each call still returns only
//! after its job is committed. No task outlives a burst: the first caller to find no write in
//! flight spawns one that writes until nothing is waiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_store::{Db, multi_row};
use tokio::sync::{Notify, oneshot};

use crate::job::NewJob;
use crate::{Clock, Error, Result, metrics};

/// The database, the clock, and a bell that wakes this process's workers on enqueue.
/// Cheap to clone; clones share the bell and the group commit.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
    clock: Clock,
    wake: Arc<Notify>,
    group: Arc<Mutex<Group>>,
}

/// The job an enqueue resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: String,
    /// False when a job with the same idempotency key already existed (its id is returned).
    pub created: bool,
}

const COLUMNS: &str = "(id, kind, payload, workspace_id, idempotency_key, priority, state, run_at, attempts, \
     max_attempts, created_at, updated_at)";

const INSERT: &str = "INSERT INTO jobs \
     (id, kind, payload, workspace_id, idempotency_key, priority, state, run_at, attempts, max_attempts, \
      created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, 0, $8, $9, $9) \
     ON CONFLICT (idempotency_key) DO NOTHING \
     RETURNING id";

/// Jobs written by one grouped statement at most (9 parameters each, far below SQLite's limit).
const MAX_GROUP: usize = 128;

/// A job ready to write: its id chosen, its payload encoded, its times fixed at the call.
#[derive(Debug)]
struct Row {
    id: String,
    kind: String,
    payload: String,
    workspace_id: Option<String>,
    idempotency_key: Option<String>,
    priority: i64,
    run_at: i64,
    max_attempts: Option<i64>,
    now: i64,
}

type Answer = oneshot::Sender<Result<Enqueued, String>>;

/// Enqueues waiting for the write in flight, and whether one is in flight.
#[derive(Debug, Default)]
struct Group {
    waiting: Vec<(Row, Answer)>,
    writing: bool,
}

impl Queue {
    pub fn new(db: Db) -> Self {
        Self::with_clock(db, Clock::system())
    }

    pub fn with_clock(db: Db, clock: Clock) -> Self {
        Self {
            db,
            clock,
            wake: Arc::new(Notify::new()),
            group: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Enqueues `job`, or finds the job that already has its idempotency key. Returns once the
    /// job is committed (grouped with concurrent calls; see the module docs).
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let row = self.row(&job)?;
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut group = self.group.lock().unwrap_or_else(|e| e.into_inner());
            group.waiting.push((row, answer));
            !std::mem::replace(&mut group.writing, true)
        };
        if lead {
            tokio::spawn(write_groups(self.clone()));
        }
        let enqueued = answered
            .await
            .map_err(|_| Error::Database("the enqueue was dropped before it was written".into()))?
            .map_err(Error::Database)?;
        self.wake.notify_one();
        Ok(enqueued)
    }

    /// Enqueues within the caller's transaction (`&mut *tx`), so that the job exists if and only
    /// if the caller's other writes commit.
    pub async fn enqueue_in(&self, conn: &mut AnyConnection, job: NewJob) -> Result<Enqueued> {
        let row = self.row(&job)?;
        let enqueued = insert_one(conn, &row).await?;
        self.wake.notify_one();
        Ok(enqueued)
    }

    /// Enqueues every job within the caller's transaction with one multi-row insert (and one
    /// read of the jobs that already held skipped idempotency keys), in order: the answer for
    /// each job, as [`Queue::enqueue_in`] would give it. Workers are not woken: the jobs are
    /// invisible until the caller commits, so the caller calls [`Queue::wake_workers`] after
    /// its commit (a wake before it would find nothing, and an idle worker would then sleep
    /// until its next poll).
    pub async fn enqueue_many_in(
        &self,
        conn: &mut AnyConnection,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>> {
        let rows = jobs
            .iter()
            .map(|job| self.row(job))
            .collect::<Result<Vec<Row>>>()?;
        let mut enqueued = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(MAX_GROUP) {
            for one in insert_rows(conn, chunk).await? {
                enqueued.push(one.map_err(Error::Database)?);
            }
        }
        Ok(enqueued)
    }

    /// Wakes this process's idle workers (after committing jobs enqueued by
    /// [`Queue::enqueue_many_in`]).
    pub fn wake_workers(&self) {
        self.wake.notify_one();
    }

    fn row(&self, job: &NewJob) -> Result<Row> {
        let payload = job.payload.clone().map_err(Error::Payload)?;
        let now = self.clock.now_ms();
        Ok(Row {
            id: tidepost_domain::new_id(),
            kind: job.kind.clone(),
            payload,
            workspace_id: job.workspace_id.clone(),
            idempotency_key: job.idempotency_key.clone(),
            priority: job.priority,
            run_at: job.run_at.unwrap_or(now),
            max_attempts: job.max_attempts,
            now,
        })
    }
}

/// Lets the next enqueue start a writer if this one ends without finishing (its runtime shut
/// down): the waiting calls belong to that runtime and are gone with it.
struct Writing {
    group: Arc<Mutex<Group>>,
    finished: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.finished {
            let mut group = self.group.lock().unwrap_or_else(|e| e.into_inner());
            group.writing = false;
            group.waiting.clear();
        }
    }
}

/// Writes what is waiting, group after group, until nothing is.
async fn write_groups(queue: Queue) {
    let mut writing = Writing {
        group: queue.group.clone(),
        finished: false,
    };
    loop {
        let batch: Vec<(Row, Answer)> = {
            let mut group = queue.group.lock().unwrap_or_else(|e| e.into_inner());
            if group.waiting.is_empty() {
                group.writing = false;
                writing.finished = true;
                return;
            }
            let take = group.waiting.len().min(MAX_GROUP);
            group.waiting.drain(..take).collect()
        };
        let (rows, answers): (Vec<Row>, Vec<Answer>) = batch.into_iter().unzip();
        let results = write_group(&queue.db, &rows).await;
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }
}

/// Writes `rows` and tells each what it resolved to. A group whose statement fails is written
/// again one row at a time, so that one bad row fails only its own call.
async fn write_group(db: &Db, rows: &[Row]) -> Vec<Result<Enqueued, String>> {
    if rows.len() > 1 {
        match insert_many(db, rows).await {
            Ok(done) => return done,
            Err(err) => tracing::debug!("a grouped enqueue failed, writing one by one: {err}"),
        }
    }
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        let result = match db.pool().acquire().await {
            Ok(mut conn) => insert_one(&mut conn, row).await,
            Err(err) => Err(err.into()),
        };
        results.push(result.map_err(|e| e.to_string()));
    }
    results
}

async fn insert_one(conn: &mut AnyConnection, row: &Row) -> Result<Enqueued> {
    let inserted: Option<String> = sqlx::query_scalar(INSERT)
        .bind(&row.id)
        .bind(&row.kind)
        .bind(&row.payload)
        .bind(&row.workspace_id)
        .bind(&row.idempotency_key)
        .bind(row.priority)
        .bind(row.run_at)
        .bind(row.max_attempts)
        .bind(row.now)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match inserted {
        Some(id) => {
            metrics::enqueued(&row.kind);
            Enqueued { id, created: true }
        }
        None => Enqueued {
            id: existing_id(conn, row.idempotency_key.as_deref()).await?,
            created: false,
        },
    })
}

/// One transaction: [`insert_rows`].
async fn insert_many(db: &Db, rows: &[Row]) -> Result<Vec<Result<Enqueued, String>>> {
    let mut tx = db.begin_write().await?;
    let done = insert_rows(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(done)
}

/// One multi-row insert, then the ids of the jobs that already held the keys of the rows it
/// skipped (a key repeated among `rows` resolves to its first row): two statements at most,
/// however many rows.
async fn insert_rows(
    conn: &mut AnyConnection,
    rows: &[Row],
) -> Result<Vec<Result<Enqueued, String>>> {
    let values = multi_row::values(
        "(?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, 0, ?8, ?9, ?9)",
        rows.len(),
        0,
    );
    let sql = format!(
        "INSERT INTO jobs {COLUMNS} VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        values
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for row in rows {
        query = query
            .bind(&row.id)
            .bind(&row.kind)
            .bind(&row.payload)
            .bind(&row.workspace_id)
            .bind(&row.idempotency_key)
            .bind(row.priority)
            .bind(row.run_at)
            .bind(row.max_attempts)
            .bind(row.now);
    }
    let inserted: HashSet<String> = query.fetch_all(&mut *conn).await?.into_iter().collect();
    let skipped: Vec<&str> = rows
        .iter()
        .filter(|row| !inserted.contains(&row.id))
        .filter_map(|row| row.idempotency_key.as_deref())
        .collect();
    let mut existing: HashMap<String, String> = HashMap::new();
    if !skipped.is_empty() {
        let params: Vec<String> = (1..=skipped.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT idempotency_key, id FROM jobs WHERE idempotency_key IN ({})",
            params.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for key in &skipped {
            query = query.bind(*key);
        }
        existing.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows
        .iter()
        .map(|row| {
            if inserted.contains(&row.id) {
                metrics::enqueued(&row.kind);
                return Ok(Enqueued {
                    id: row.id.clone(),
                    created: true,
                });
            }
            let id = row
                .idempotency_key
                .as_ref()
                .and_then(|key| existing.get(key))
                .ok_or_else(|| "the job was neither inserted nor found by its key".to_string())?;
            Ok(Enqueued {
                id: id.clone(),
                created: false,
            })
        })
        .collect())
}

async fn existing_id(conn: &mut AnyConnection, key: Option<&str>) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1")
            .bind(key)
            .fetch_one(conn)
            .await?,
    )
}
