//! What a handler gets besides its payload: the job, the database, the lease, and durable steps.
//!
//! # Durable steps
//!
//! A side effect that must never happen twice (a provider's publish call) goes through
//! [`JobContext::step`]:
//!
//! ```ignore
//! match ctx.step("publish-init").await? {
//!     StepState::New(intent) => {
//!         let id = provider.publish(&post).await?;   // the one and only call
//!         intent.record(&id).await?;
//!     }
//!     StepState::Done(outcome) => { /* it happened: use the recorded outcome */ }
//!     StepState::OutcomeUnknown(intent) => {
//!         // A run before this one recorded the intent and stopped (crash, lease lost, panic)
//!         // before recording the outcome: ask the provider what happened, never call blindly.
//!         let found = provider.find_publish(&post).await?;
//!         intent.record(&found).await?;
//!     }
//! }
//! ```
//!
//! `New` is handed out once per job and step name, ever: the intent row is inserted under the
//! job's primary key and only by a worker that still holds the lease, so no two runs can both
//! be told to make the call.
//!
//! # Preparing before the intent
//!
//! An intent is recorded when [`JobContext::step`] says `New`; from then on a crash makes the
//! next run see `OutcomeUnknown`, whether or not the call was made. So whatever may wait or
//! fail before the call (a rate-limit slot, a quota lock, a token refresh) belongs *before*
//! `step`, and [`JobContext::peek_step`] tells a handler whether that preparation is needed
//! without recording anything:
//!
//! ```ignore
//! if ctx.peek_step("publish-init").await?.is_absent() {
//!     take_rate_slot().await?;        // may wait; a crash here leaves no intent
//! }
//! match ctx.step("publish-init").await? { /* as above, the call right after `New` */ }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use tidepost_store::Db;
use tokio_util::sync::CancellationToken;

use crate::lease::{self, Lease};
use crate::{Clock, Job, JobError};

/// The running job's handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    clock: Clock,
    job: Job,
    lease: Lease,
    lease_lost: CancellationToken,
    completed: AtomicBool,
}

impl JobContext {
    pub(crate) fn new(db: Db, clock: Clock, job: Job, lease: Lease) -> Self {
        let inner = Inner {
            db,
            clock,
            job,
            lease,
            lease_lost: CancellationToken::new(),
            completed: AtomicBool::new(false),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The job as claimed.
    pub fn job(&self) -> &Job {
        &self.inner.job
    }

    pub fn id(&self) -> &str {
        &self.inner.job.id
    }

    pub fn kind(&self) -> &str {
        &self.inner.job.kind
    }

    pub fn workspace_id(&self) -> Option<&str> {
        self.inner.job.workspace_id.as_deref()
    }

    /// This run's attempt number, from 1.
    pub fn attempt(&self) -> i64 {
        self.inner.job.attempts
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Cancelled when a heartbeat finds the lease lost: another worker may run the job now, so
    /// a long handler should stop at its next opportunity.
    pub fn lease_lost(&self) -> &CancellationToken {
        &self.inner.lease_lost
    }

    pub(crate) fn lease(&self) -> &Lease {
        &self.inner.lease
    }

    /// True when the handler completed the job inside its own transaction.
    pub(crate) fn completed_by_handler(&self) -> bool {
        self.inner.completed.load(Ordering::SeqCst)
    }

    /// A write transaction in which the lease is checked first and then held until the end:
    /// the handler's writes in it happen only if this run still owns the job.
    pub async fn transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, JobError> {
        let mut tx = self.db().begin_write().await?;
        if !lease::hold_in(&mut tx, self.clock().now_ms(), self.lease()).await? {
            return Err(JobError::lease_lost());
        }
        Ok(tx)
    }

    /// Marks the job succeeded inside the handler's [`transaction`](Self::transaction), so that
    /// its writes and the completion commit together (exactly-once for database side effects).
    pub async fn complete_in(&self, conn: &mut AnyConnection) -> Result<(), JobError> {
        if !lease::complete_in(conn, self.clock().now_ms(), self.lease()).await? {
            return Err(JobError::lease_lost());
        }
        self.inner.completed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Where the side effect called `name` stands; see the module docs.
    pub async fn step(&self, name: &str) -> Result<StepState, JobError> {
        let now = self.clock().now_ms();
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO job_steps (job_id, name, state, attempt, created_at, updated_at) \
             SELECT id, $2, 'intent', attempts, $3, $3 FROM jobs \
             WHERE id = $1 AND lease_id = $4 AND state = 'running' \
             ON CONFLICT (job_id, name) DO NOTHING \
             RETURNING attempt",
        )
        .bind(self.id())
        .bind(name)
        .bind(now)
        .bind(&self.lease().lease_id)
        .fetch_optional(self.db().pool())
        .await?;
        if let Some(attempt) = inserted {
            return Ok(StepState::New(self.intent(name, attempt)));
        }
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT state, attempt, outcome FROM job_steps WHERE job_id = $1 AND name = $2",
        )
        .bind(self.id())
        .bind(name)
        .fetch_optional(self.db().pool())
        .await?;
        match row {
            None => Err(JobError::lease_lost()),
            Some((state, _, outcome)) if state == "done" => {
                let outcome = outcome.as_deref().unwrap_or("null");
                let value = serde_json::from_str(outcome).map_err(|e| {
                    JobError::permanent(format!("step {name:?}: recorded outcome unreadable: {e}"))
                })?;
                Ok(StepState::Done(value))
            }
            Some((_, attempt, _)) => {
                self.ensure_lease().await?;
                Ok(StepState::OutcomeUnknown(self.intent(name, attempt)))
            }
        }
    }

    /// Where the step called `name` stands, without recording an intent: read-only, so a
    /// handler can prepare a call (wait for a slot, refresh a token) only when no run has
    /// recorded the intent yet, and record it with [`step`](Self::step) right before the call.
    /// The answer is a snapshot; `step` remains the only way to be handed the call.
    pub async fn peek_step(&self, name: &str) -> Result<StepPeek, JobError> {
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT state, attempt, outcome FROM job_steps WHERE job_id = $1 AND name = $2",
        )
        .bind(self.id())
        .bind(name)
        .fetch_optional(self.db().pool())
        .await?;
        Ok(match row {
            None => StepPeek::Absent,
            Some((state, _, outcome)) if state == "done" => {
                let outcome = outcome.as_deref().unwrap_or("null");
                let value = serde_json::from_str(outcome).map_err(|e| {
                    JobError::permanent(format!("step {name:?}: recorded outcome unreadable: {e}"))
                })?;
                StepPeek::Done(value)
            }
            Some((_, attempt, _)) => StepPeek::Intent { attempt },
        })
    }

    fn intent(&self, name: &str, attempt: i64) -> StepIntent {
        StepIntent {
            ctx: self.clone(),
            name: name.to_string(),
            attempt,
        }
    }

    async fn ensure_lease(&self) -> Result<(), JobError> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM jobs WHERE id = $1 AND lease_id = $2 AND state = 'running'",
        )
        .bind(self.id())
        .bind(&self.lease().lease_id)
        .fetch_optional(self.db().pool())
        .await?;
        held.map(|_| ()).ok_or_else(JobError::lease_lost)
    }
}

/// Where a durable step stands. See [`JobContext::step`].
#[derive(Debug)]
pub enum StepState {
    /// No run has tried it: make the call, then [`StepIntent::record`] its outcome.
    New(StepIntent),
    /// It happened; this is the recorded outcome.
    Done(serde_json::Value),
    /// A run recorded the intent and stopped before the outcome: the call may or may not have
    /// happened. Reconcile (ask the other side), then record what you found.
    OutcomeUnknown(StepIntent),
}

impl StepState {
    /// The recorded outcome, decoded, when the step is done.
    pub fn done_as<T: DeserializeOwned>(&self) -> Option<Result<T, serde_json::Error>> {
        match self {
            StepState::Done(value) => Some(serde_json::from_value(value.clone())),
            _ => None,
        }
    }
}

/// What [`JobContext::peek_step`] found: the step's state, with nothing recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum StepPeek {
    /// No run has recorded an intent for this step: [`JobContext::step`] would hand out `New`.
    Absent,
    /// An intent without an outcome, recorded by `attempt`: the call may have been made
    /// (`step` would say `OutcomeUnknown`, or the recording run is still going).
    Intent { attempt: i64 },
    /// Done; the recorded outcome.
    Done(serde_json::Value),
}

impl StepPeek {
    /// True when no intent has been recorded yet.
    pub fn is_absent(&self) -> bool {
        matches!(self, StepPeek::Absent)
    }
}

/// A recorded intent waiting for its outcome. Dropping it without recording leaves the step
/// unknown for the next run, which is what a crash does too.
#[derive(Debug)]
pub struct StepIntent {
    ctx: JobContext,
    name: String,
    attempt: i64,
}

const RECORD: &str = "UPDATE job_steps SET state = 'done', outcome = $3, updated_at = $4 \
     WHERE job_id = $1 AND name = $2 AND state = 'intent'";

impl StepIntent {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The attempt that recorded the intent.
    pub fn attempt(&self) -> i64 {
        self.attempt
    }

    /// Records the outcome. The first outcome recorded wins: it is the truth about a call that
    /// happened, so it is kept even if this run has lost its lease since.
    pub async fn record<T: Serialize>(self, outcome: &T) -> Result<(), JobError> {
        let mut conn = self.ctx.db().pool().acquire().await?;
        self.record_in(&mut conn, outcome).await
    }

    /// [`record`](Self::record) within the caller's transaction.
    pub async fn record_in<T: Serialize>(
        self,
        conn: &mut AnyConnection,
        outcome: &T,
    ) -> Result<(), JobError> {
        let outcome = serde_json::to_string(outcome).map_err(|e| {
            JobError::permanent(format!("step {:?}: outcome not encodable: {e}", self.name))
        })?;
        sqlx::query(RECORD)
            .bind(self.ctx.id())
            .bind(&self.name)
            .bind(outcome)
            .bind(self.ctx.clock().now_ms())
            .execute(conn)
            .await?;
        Ok(())
    }
}
