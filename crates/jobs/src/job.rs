//! A job as stored, its states, and what is needed to enqueue one.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at`.
    Queued,
    /// Claimed by a worker, which holds a lease on it.
    Running,
    /// Failed and waiting for its retry at `run_at`.
    Failed,
    Succeeded,
    /// Out of attempts, or failed permanently; `last_error` says why.
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Failed,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job will never run again by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

impl TryFrom<String> for JobState {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    pub workspace_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub priority: i64,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub run_at: i64,
    /// How many times a worker claimed it (this run included, while running).
    pub attempts: i64,
    /// `None`: the kind's retry policy decides.
    pub max_attempts: Option<i64>,
    pub last_error: Option<String>,
    pub locked_by: Option<String>,
    #[serde(skip)]
    pub lease_id: Option<String>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// Every column of `jobs`, in [`Job`]'s order.
pub(crate) const COLUMNS: &str = "id, kind, payload, workspace_id, idempotency_key, priority, state, run_at, \
     attempts, max_attempts, last_error, locked_by, lease_id, locked_until, created_at, updated_at, finished_at";

/// A job to enqueue. Built with [`NewJob::new`] and the chained setters.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) kind: String,
    pub(crate) payload: Result<String, String>,
    pub(crate) workspace_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) priority: i64,
    pub(crate) run_at: Option<i64>,
    pub(crate) max_attempts: Option<i64>,
}

impl NewJob {
    /// A job of `kind` carrying `payload` as JSON, due now, priority 0, system-wide.
    pub fn new(kind: impl Into<String>, payload: &impl Serialize) -> Self {
        Self {
            kind: kind.into(),
            payload: serde_json::to_string(payload).map_err(|e| e.to_string()),
            workspace_id: None,
            idempotency_key: None,
            priority: 0,
            run_at: None,
            max_attempts: None,
        }
    }

    /// A job whose payload is already JSON text.
    pub fn from_json(kind: impl Into<String>, payload_json: String) -> Self {
        Self {
            payload: Ok(payload_json),
            ..Self::new(kind, &())
        }
    }

    /// The workspace the job works for.
    pub fn workspace(mut self, workspace_id: impl Into<String>) -> Self {
        self.workspace_id = Some(workspace_id.into());
        self
    }

    /// Enqueuing another job with the same key yields this one instead.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Higher runs first among due jobs.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// Not before this instant (milliseconds since the epoch).
    pub fn run_at(mut self, run_at_ms: i64) -> Self {
        self.run_at = Some(run_at_ms);
        self
    }

    /// Overrides the kind's policy for this job.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(i64::from(max_attempts));
        self
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }
}
