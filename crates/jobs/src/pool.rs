//! Long-running workers: a dispatcher that claims as many due jobs as it has free slots, runs
//! each in its own task, and shuts down gracefully.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::clock::millis;
use crate::completer::{Batch, Completer};
use crate::drain::short_random;
use crate::lease::{self, Claim};
use crate::runner::{self, LeaseTiming};
use crate::{Job, Outcome, Queue, Registry, RunReport, admin, metrics, schedule};

/// How a [`WorkerPool`] works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Shown in `locked_by` (with the process id and a random suffix).
    pub name: String,
    /// Handlers run at once. A job's slot is freed when its handler returns, so its outcome is
    /// written while the next job runs (see [`runner::run`]).
    pub concurrency: usize,
    /// How often to look for due jobs when idle (a local enqueue wakes the pool at once).
    pub poll_interval: Duration,
    /// How long a claim lasts unless extended; a killed worker's jobs run again after it.
    pub lease: Duration,
    /// How often a running job's lease is extended.
    pub heartbeat: Duration,
    /// At shutdown, how long running jobs may take to finish before they are released.
    pub grace: Duration,
    /// Only these kinds; `None` for any (unknown kinds then fail with a clear error).
    pub kinds: Option<Vec<String>>,
    /// Whether this pool fires due recurring schedules.
    pub run_schedules: bool,
    /// How often schedules are checked and the queue depth sampled.
    pub chores_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "worker".to_string(),
            concurrency: 4,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(20),
            grace: Duration::from_secs(20),
            kinds: None,
            run_schedules: true,
            chores_interval: Duration::from_secs(1),
        }
    }
}

/// Workers over one [`Queue`] and [`Registry`].
#[derive(Debug)]
pub struct WorkerPool {
    queue: Queue,
    registry: Arc<Registry>,
    config: WorkerConfig,
    worker_id: String,
}

/// What a pool did over its life, returned when it has shut down.
pub type ShutdownReport = RunReport;

impl WorkerPool {
    pub fn new(queue: Queue, registry: Registry, config: WorkerConfig) -> Self {
        let worker_id = format!("{}:{}:{}", config.name, std::process::id(), short_random());
        Self {
            queue,
            registry: Arc::new(registry),
            config,
            worker_id,
        }
    }

    /// What this pool writes in `locked_by`.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Runs the pool on its own task until `shutdown` is cancelled and it has shut down.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<ShutdownReport> {
        tokio::spawn(self.run(shutdown))
    }

    /// Runs until `shutdown` is cancelled; then claims nothing more, lets running jobs finish
    /// within the grace period, and releases the rest (they run again elsewhere).
    ///
    /// The dispatcher claims when a slot is free and writes the completions waiting at that
    /// moment in the same transaction (see [`lease::complete_and_claim`]); a completion that
    /// comes while no slot is free, or while the queue is idle, is written at once. After a
    /// claim finds nothing, it waits for a local enqueue or the poll interval.
    pub async fn run(self, shutdown: CancellationToken) -> ShutdownReport {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let abort = CancellationToken::new();
        let mut running = JoinSet::new();
        let mut report = RunReport::default();
        let chores = AbortOnDrop(tokio::spawn(chores(
            self.queue.clone(),
            self.config.clone(),
            shutdown.clone(),
        )));
        let (completer, mut completions) = Completer::channel();
        let timing = LeaseTiming {
            lease: self.config.lease,
            heartbeat: self.config.heartbeat,
            completer: Some(completer),
        };
        // Set when a claim found nothing: no claim before this instant unless woken.
        let mut idle_until: Option<Instant> = None;
        tracing::info!(worker = %self.worker_id, concurrency = self.config.concurrency, "workers started");
        loop {
            while let Some(done) = running.try_join_next() {
                report.add(settled(done));
            }
            let (mut finished, first) = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(finished) = completions.next() => (finished, None),
                Ok(first) = slots.clone().acquire_owned(), if idle_until.is_none() => {
                    (Batch::default(), Some(first))
                }
                _ = self.queue.wake().notified(), if idle_until.is_some() => {
                    idle_until = None;
                    continue;
                }
                _ = tokio::time::sleep_until(idle_until.unwrap_or_else(Instant::now)), if idle_until.is_some() => {
                    idle_until = None;
                    continue;
                }
            };
            // Jobs claimed together are spawned together and usually finish together: let the
            // others that are ready give back their slots and ask for their completions first,
            // so that one round completes and claims a whole batch instead of one job each.
            tokio::task::yield_now().await;
            finished.extend(completions.pending());
            let mut permits: Vec<_> = first.into_iter().collect();
            if idle_until.is_none() {
                permits.extend(take_free(&slots));
            }
            let claiming = !permits.is_empty();
            let jobs = self.round(finished, permits.len()).await;
            if claiming && jobs.is_empty() {
                idle_until = Some(Instant::now() + self.config.poll_interval);
            }
            report.claimed += jobs.len();
            for (job, permit) in jobs.into_iter().zip(permits) {
                running.spawn(self.run_one(job, permit, timing.clone(), abort.clone()));
            }
        }
        drop(chores);
        drop(timing);
        completions.spawn_writer(self.queue.clone());
        self.shut_down(running, abort, report).await
    }

    /// Writes `finished` and claims up to `limit` jobs in one transaction, and answers the
    /// finished runs. A failure is answered to them (they retry) and claims nothing.
    async fn round(&self, finished: Batch, limit: usize) -> Vec<Job> {
        let claim = Claim {
            worker: &self.worker_id,
            kinds: self.config.kinds.as_deref(),
            limit,
            lease_ms: millis(self.config.lease),
        };
        let now = self.queue.clock().now_ms();
        if finished.is_empty() {
            return match lease::claim(self.queue.db(), now, claim).await {
                Ok(jobs) => jobs,
                Err(err) => {
                    tracing::warn!(worker = %self.worker_id, "claiming jobs failed: {err}");
                    Vec::new()
                }
            };
        }
        match lease::complete_and_claim(self.queue.db(), now, &finished.leases(), claim).await {
            Ok((completed, jobs)) => {
                finished.answer(Ok(completed));
                jobs
            }
            Err(err) => {
                tracing::warn!(worker = %self.worker_id, "completing and claiming jobs failed: {err}");
                finished.answer(Err(err));
                Vec::new()
            }
        }
    }

    fn run_one(
        &self,
        job: Job,
        permit: OwnedSemaphorePermit,
        timing: LeaseTiming,
        abort: CancellationToken,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        let queue = self.queue.clone();
        let registry = self.registry.clone();
        async move { runner::run(&queue, &registry, job, &timing, &abort, Some(permit)).await }
    }

    async fn shut_down(
        &self,
        mut running: JoinSet<Outcome>,
        abort: CancellationToken,
        mut report: RunReport,
    ) -> ShutdownReport {
        tracing::info!(worker = %self.worker_id, running = running.len(), "workers stopping");
        let finish = async {
            while let Some(done) = running.join_next().await {
                report.add(settled(done));
            }
        };
        if tokio::time::timeout(self.config.grace, finish)
            .await
            .is_err()
        {
            abort.cancel();
            while let Some(done) = running.join_next().await {
                report.add(settled(done));
            }
        }
        tracing::info!(worker = %self.worker_id, ?report, "workers stopped");
        report
    }
}

/// Stops the chores when the pool stops, even when its task is aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every slot free now, without waiting.
fn take_free(slots: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
    let mut permits = Vec::new();
    while let Ok(permit) = slots.clone().try_acquire_owned() {
        permits.push(permit);
    }
    permits
}

/// A run task's outcome; a task that died outside the handler counts as lost (its lease will
/// expire and the job run again).
fn settled(done: Result<Outcome, JoinError>) -> Outcome {
    done.unwrap_or_else(|err| {
        tracing::error!("a job task died: {err}");
        Outcome::LeaseLost
    })
}

/// Periodic chores beside the dispatcher: fire due schedules, give back expired leases, sample
/// the queue depth.
async fn chores(queue: Queue, config: WorkerConfig, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(config.chores_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if config.run_schedules
            && let Err(err) = schedule::tick(&queue).await
        {
            tracing::warn!("firing schedules failed: {err}");
        }
        if let Err(err) = lease::expire(queue.db(), queue.clock().now_ms()).await {
            tracing::warn!("giving back expired leases failed: {err}");
        }
        match admin::queue_depth(queue.db(), queue.clock().now_ms()).await {
            Ok(depth) => metrics::queue_depth(depth),
            Err(err) => tracing::debug!("sampling the queue depth failed: {err}"),
        }
    }
}
