//! Long-running workers: a dispatcher that claims as many due jobs as it has free slots, runs
//! each in its own task, and shuts down gracefully.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::clock::millis;
use crate::completer::Completer;
use crate::drain::short_random;
use crate::lease::{self, Claim};
use crate::runner::{self, LeaseTiming};
use crate::{Job, Outcome, Queue, Registry, RunReport, admin, metrics, schedule};

/// How a [`WorkerPool`] works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Shown in `locked_by` (with the process id and a random suffix).
    pub name: String,
    /// Jobs run at once.
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
        let timing = LeaseTiming {
            lease: self.config.lease,
            heartbeat: self.config.heartbeat,
            completer: Some(Completer::spawn(self.queue.clone())),
        };
        tracing::info!(worker = %self.worker_id, concurrency = self.config.concurrency, "workers started");
        while let Some(permits) = free_slots(&slots, &shutdown).await {
            while let Some(done) = running.try_join_next() {
                report.add(settled(done));
            }
            let jobs = self.claim(permits.len()).await;
            if jobs.is_empty() {
                drop(permits);
                self.idle(&shutdown).await;
                continue;
            }
            report.claimed += jobs.len();
            for (job, permit) in jobs.into_iter().zip(permits) {
                running.spawn(self.run_one(job, permit, timing.clone(), abort.clone()));
            }
        }
        drop(chores);
        self.shut_down(running, abort, report).await
    }

    async fn claim(&self, limit: usize) -> Vec<Job> {
        let claim = Claim {
            worker: &self.worker_id,
            kinds: self.config.kinds.as_deref(),
            limit,
            lease_ms: millis(self.config.lease),
        };
        match lease::claim(self.queue.db(), self.queue.clock().now_ms(), claim).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(worker = %self.worker_id, "claiming jobs failed: {err}");
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
        async move {
            let outcome = runner::run(&queue, &registry, job, &timing, &abort).await;
            drop(permit);
            outcome
        }
    }

    /// Waits for a local enqueue, the poll interval, or shutdown.
    async fn idle(&self, shutdown: &CancellationToken) {
        tokio::select! {
            _ = self.queue.wake().notified() => {}
            _ = tokio::time::sleep(self.config.poll_interval) => {}
            _ = shutdown.cancelled() => {}
        }
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

/// Waits until at least one slot is free and takes every free one; `None` at shutdown.
async fn free_slots(
    slots: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        biased;
        _ = shutdown.cancelled() => return None,
        permit = slots.clone().acquire_owned() => permit.ok()?,
    };
    let mut permits = vec![first];
    while let Ok(permit) = slots.clone().try_acquire_owned() {
        permits.push(permit);
    }
    Some(permits)
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
