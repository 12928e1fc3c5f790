//! One run of one claimed job: call its handler under a heartbeat, catch what goes wrong, and
//! settle the job (succeeded, retry later, dead, or released), fenced by the lease.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::clock::millis;
use crate::completer::Completer;
use crate::error::Retry;
use crate::lease::{self, Lease};
use crate::{Job, JobContext, JobError, Queue, Registry, Result, metrics};

/// How one run of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Failed; due again at this instant.
    Retrying {
        at: i64,
    },
    /// Not finished and not failed: waiting for something outside; due again at this instant.
    Waiting {
        at: i64,
    },
    Dead,
    /// The lease was gone when the run tried to settle: another worker owns the job now.
    LeaseLost,
    /// Given back unfinished at shutdown.
    Released,
}

/// Lease timing for runs, and the pool's group completer when there is one.
#[derive(Debug, Clone)]
pub(crate) struct LeaseTiming {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub completer: Option<Completer>,
}

/// Runs `job` (just claimed) to its outcome. `abort` drops the handler and releases the job.
///
/// `slot` (a worker pool's concurrency permit) is given back as soon as the handler has
/// returned, before the outcome is written: settling is a short fenced statement that needs no
/// slot, and freeing the slot early lets the pool claim the next jobs while the completions
/// commit, so claims and completions overlap instead of taking turns. The fence still decides
/// whether the outcome lands, so nothing about exactly-once changes.
pub(crate) async fn run(
    queue: &Queue,
    registry: &Registry,
    job: Job,
    timing: &LeaseTiming,
    abort: &CancellationToken,
    slot: Option<OwnedSemaphorePermit>,
) -> Outcome {
    let Some(lease) = Lease::of(&job) else {
        tracing::error!(job = %job.id, "a claimed job without a lease id");
        return Outcome::LeaseLost;
    };
    metrics::started(&job.kind);
    let started = Instant::now();
    let kind = job.kind.clone();
    let outcome = run_leased(queue, registry, job, lease, timing, abort, slot).await;
    metrics::ran_for(&kind, started.elapsed());
    match outcome {
        Outcome::Succeeded => metrics::succeeded(&kind),
        Outcome::Retrying { .. } => metrics::failed(&kind),
        Outcome::Waiting { .. } => metrics::waited(&kind),
        Outcome::Dead => metrics::dead(&kind),
        Outcome::LeaseLost | Outcome::Released => {}
    }
    outcome
}

async fn run_leased(
    queue: &Queue,
    registry: &Registry,
    job: Job,
    lease: Lease,
    timing: &LeaseTiming,
    abort: &CancellationToken,
    slot: Option<OwnedSemaphorePermit>,
) -> Outcome {
    let policy = registry.policy(&job.kind);
    let max_attempts = job.max_attempts.unwrap_or(i64::from(policy.max_attempts));
    if job.attempts > max_attempts {
        let error = format!(
            "gave up after {} attempts: the last run's worker stopped without finishing ({})",
            job.attempts - 1,
            job.last_error.as_deref().unwrap_or("no error recorded")
        );
        drop(slot);
        return bury(queue, &job, &lease, &error).await;
    }
    let ctx = JobContext::new(
        queue.db().clone(),
        queue.clock().clone(),
        job.clone(),
        lease.clone(),
    );
    let result = match registry.call(&job.kind, ctx.clone(), &job.payload) {
        Some(handler) => supervise(queue, handler, &ctx, timing, abort).await,
        None => Some(Err(JobError::retryable(format!(
            "no handler for job kind {:?} on this worker (it knows {:?})",
            job.kind,
            registry.kinds()
        )))),
    };
    drop(slot);
    match result {
        None => release(queue, &job, &lease).await,
        Some(Ok(())) if ctx.completed_by_handler() => Outcome::Succeeded,
        Some(Ok(())) => complete(queue, &job, &lease, timing.completer.as_ref()).await,
        Some(Err(err)) if err.is_wait() => {
            let Retry::Wait { after } = err.retry else {
                unreachable!("is_wait")
            };
            if job.attempts < max_attempts {
                wait(queue, &job, &lease, after, &err.message).await
            } else {
                let error = format!(
                    "gave up after {} attempts, still waiting: {}",
                    job.attempts, err.message
                );
                bury(queue, &job, &lease, &error).await
            }
        }
        Some(Err(err)) => {
            let retry_after = match err.retry {
                Retry::Yes { after } if job.attempts < max_attempts => Some(after),
                Retry::Yes { .. } | Retry::No | Retry::Wait { .. } => None,
            };
            match retry_after {
                Some(after) => {
                    let delay = after.unwrap_or_else(|| policy.delay(attempt_number(&job)));
                    retry(queue, &job, &lease, delay, &err.message).await
                }
                None => bury(queue, &job, &lease, &err.message).await,
            }
        }
    }
}

/// Polls the handler to its end while extending the lease; `None` when aborted first.
async fn supervise(
    queue: &Queue,
    handler: BoxFuture<'static, Result<(), JobError>>,
    ctx: &JobContext,
    timing: &LeaseTiming,
    abort: &CancellationToken,
) -> Option<Result<(), JobError>> {
    let mut handler = AssertUnwindSafe(handler).catch_unwind();
    let start = tokio::time::Instant::now() + timing.heartbeat;
    let mut heartbeat = tokio::time::interval_at(start, timing.heartbeat);
    loop {
        tokio::select! {
            biased;
            result = &mut handler => {
                return Some(result.unwrap_or_else(|panic| {
                    Err(JobError::retryable(format!("the handler panicked: {}", panic_message(&*panic))))
                }));
            }
            _ = abort.cancelled() => return None,
            _ = heartbeat.tick(), if !ctx.lease_lost().is_cancelled() => extend(queue, ctx, timing).await,
        }
    }
}

async fn extend(queue: &Queue, ctx: &JobContext, timing: &LeaseTiming) {
    let now = queue.clock().now_ms();
    match lease::heartbeat(queue.db(), now, ctx.lease(), millis(timing.lease)).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %ctx.id(), kind = %ctx.kind(), "job lease lost; another worker may run it");
            ctx.lease_lost().cancel();
        }
        Err(err) => tracing::warn!(job = %ctx.id(), "heartbeat failed, will try again: {err}"),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

fn attempt_number(job: &Job) -> u32 {
    u32::try_from(job.attempts.max(1)).unwrap_or(u32::MAX)
}

async fn complete(
    queue: &Queue,
    job: &Job,
    lease: &Lease,
    completer: Option<&Completer>,
) -> Outcome {
    let done = match completer {
        Some(completer) => settle(|| completer.complete(lease)).await,
        None => settle(|| lease::complete(queue.db(), queue.clock().now_ms(), lease)).await,
    };
    if done {
        tracing::debug!(job = %job.id, kind = %job.kind, "job succeeded");
        Outcome::Succeeded
    } else {
        lost(job)
    }
}

async fn retry(queue: &Queue, job: &Job, lease: &Lease, delay: Duration, error: &str) -> Outcome {
    let now = queue.clock().now_ms();
    let at = now.saturating_add(millis(delay));
    tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, retry_in = ?delay, "job failed: {error}");
    if settle(|| lease::fail(queue.db(), now, lease, at, error)).await {
        Outcome::Retrying { at }
    } else {
        lost(job)
    }
}

/// Puts a waiting job back, due at `now + delay`: not a failure, so nothing is stored as its
/// error and the log says it waits (at debug level), never that it failed.
async fn wait(queue: &Queue, job: &Job, lease: &Lease, delay: Duration, note: &str) -> Outcome {
    let now = queue.clock().now_ms();
    let at = now.saturating_add(millis(delay));
    tracing::debug!(job = %job.id, kind = %job.kind, attempt = job.attempts, look_again_in = ?delay, "job waiting: {note}");
    if settle(|| lease::wait(queue.db(), now, lease, at)).await {
        Outcome::Waiting { at }
    } else {
        lost(job)
    }
}

async fn bury(queue: &Queue, job: &Job, lease: &Lease, error: &str) -> Outcome {
    tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, "job dead: {error}");
    if settle(|| lease::bury(queue.db(), queue.clock().now_ms(), lease, error)).await {
        Outcome::Dead
    } else {
        lost(job)
    }
}

async fn release(queue: &Queue, job: &Job, lease: &Lease) -> Outcome {
    if settle(|| lease::release(queue.db(), queue.clock().now_ms(), lease)).await {
        tracing::info!(job = %job.id, kind = %job.kind, "job released unfinished at shutdown");
        Outcome::Released
    } else {
        lost(job)
    }
}

fn lost(job: &Job) -> Outcome {
    tracing::warn!(job = %job.id, kind = %job.kind, "could not settle the job: its lease is gone");
    Outcome::LeaseLost
}

/// Runs a fenced write, retrying database errors a few times; false when the fence refused it
/// or the database stayed unreachable (then the lease expires and the job runs again).
async fn settle<F, Fut>(mut write: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    const PAUSES_MS: [u64; 3] = [50, 250, 1000];
    for pause in PAUSES_MS {
        match write().await {
            Ok(done) => return done,
            Err(err) => tracing::warn!("settling a job failed, retrying: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    write().await.unwrap_or(false)
}
