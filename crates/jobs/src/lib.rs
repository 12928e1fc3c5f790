//! tidepost's durable job engine.
//!
//! Every slow or retried thing tidepost does (uploads, publish polling, inbound webhooks, token
//! refreshes, outbound webhooks, metric syncs) runs as a job stored in the database, so that a
//! crash loses nothing and a second instance doubles nothing.
//!
//! - [`Queue`] enqueues ([`NewJob`]: kind, JSON payload, workspace, idempotency key, priority,
//!   `run_at`), and wakes local workers.
//! - [`Registry`] maps a kind to a [`Handler`] and its [`RetryPolicy`].
//! - [`WorkerPool`] claims due jobs under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one
//!   claim statement on SQLite), as many per round trip as it has free slots, heartbeats them,
//!   and completes them fenced by the lease — on PostgreSQL in the same transaction as its next
//!   claim, so a busy pool pays one commit per batch; it shuts down gracefully on a
//!   `CancellationToken`. [`drain_due`] runs what is due once and reports.
//! - [`JobContext::step`] records the intent of a side effect that must not be repeated before
//!   the call and its outcome after; a re-run finds [`StepState::OutcomeUnknown`] instead of
//!   calling again.
//! - [`schedule`] fires recurring sweeps once per period across every instance.
//! - [`admin`] is the visibility API for the UI and the REST API; [`metrics`](mod@metrics)
//!   names what is exported.
//! - [`Clock`] is the engine's notion of now, which tests move by hand.
//!
//! Transactions are never held across a handler call: claiming, heartbeating, completing and
//! recording steps are each one short statement (a pool's completions and next claim, one
//! short transaction).

pub mod admin;
mod clock;
mod completer;
mod context;
mod drain;
mod error;
mod job;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod lease;
pub mod metrics;
mod pool;
mod queue;
mod registry;
mod retry;
mod runner;
pub mod schedule;

pub use clock::Clock;
pub use context::{JobContext, StepIntent, StepPeek, StepState};
pub use drain::{DrainReport, RunReport, drain_due};
pub use error::{Error, JobError};
pub use job::{Job, JobState, NewJob};
pub use pool::{ShutdownReport, WorkerConfig, WorkerPool};
pub use queue::{Enqueued, Queue};
pub use registry::{FnHandler, Handler, Registry, handler_fn};
pub use retry::RetryPolicy;
pub use runner::Outcome;

pub type Result<T, E = Error> = std::result::Result<T, E>;
