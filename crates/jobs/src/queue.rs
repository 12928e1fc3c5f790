//! Enqueuing jobs.

use std::sync::Arc;

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_store::Db;
use tokio::sync::Notify;

use crate::job::NewJob;
use crate::{Clock, Error, Result, metrics};

/// The database, the clock, and a bell that wakes this process's workers on enqueue.
/// Cheap to clone; clones share the bell.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
    clock: Clock,
    wake: Arc<Notify>,
}

/// The job an enqueue resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: String,
    /// False when a job with the same idempotency key already existed (its id is returned).
    pub created: bool,
}

const INSERT: &str = "INSERT INTO jobs \
     (id, kind, payload, workspace_id, idempotency_key, priority, state, run_at, attempts, max_attempts, \
      created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, 0, $8, $9, $9) \
     ON CONFLICT (idempotency_key) DO NOTHING \
     RETURNING id";

impl Queue {
    pub fn new(db: Db) -> Self {
        Self::with_clock(db, Clock::system())
    }

    pub fn with_clock(db: Db, clock: Clock) -> Self {
        Self {
            db,
            clock,
            wake: Arc::new(Notify::new()),
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

    /// Enqueues `job`, or finds the job that already has its idempotency key.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let mut conn = self.db.pool().acquire().await?;
        self.enqueue_in(&mut conn, job).await
    }

    /// Enqueues within the caller's transaction (`&mut *tx`), so that the job exists if and only
    /// if the caller's other writes commit.
    pub async fn enqueue_in(&self, conn: &mut AnyConnection, job: NewJob) -> Result<Enqueued> {
        let payload = job.payload.clone().map_err(Error::Payload)?;
        let now = self.clock.now_ms();
        let inserted: Option<String> = sqlx::query_scalar(INSERT)
            .bind(tidepost_domain::new_id())
            .bind(&job.kind)
            .bind(payload)
            .bind(&job.workspace_id)
            .bind(&job.idempotency_key)
            .bind(job.priority)
            .bind(job.run_at.unwrap_or(now))
            .bind(job.max_attempts)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
        let enqueued = match inserted {
            Some(id) => {
                metrics::enqueued(&job.kind);
                Enqueued { id, created: true }
            }
            None => Enqueued {
                id: existing_id(conn, &job).await?,
                created: false,
            },
        };
        self.wake.notify_one();
        Ok(enqueued)
    }
}

async fn existing_id(conn: &mut AnyConnection, job: &NewJob) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT id FROM jobs WHERE idempotency_key = $1")
            .bind(&job.idempotency_key)
            .fetch_one(conn)
            .await?,
    )
}
