//! Running what is due once, then returning: for `tidepost run-once`, cron and serverless.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::millis;
use crate::lease::{self, Claim};
use crate::runner::{self, LeaseTiming};
use crate::{Outcome, Queue, Registry, Result, admin, metrics, schedule};

/// Counts of what a run of workers did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub claimed: usize,
    pub succeeded: usize,
    /// Failed and scheduled to try again.
    pub retrying: usize,
    /// Not failed: waiting for something outside (a provider still processing, a rate-limit
    /// slot) and due again later.
    pub waiting: usize,
    pub dead: usize,
    /// Could not be settled: the lease was gone (the job will run again elsewhere).
    pub lost: usize,
    /// Given back unfinished at shutdown.
    pub released: usize,
}

/// What [`drain_due`] returns.
pub type DrainReport = RunReport;

impl RunReport {
    pub(crate) fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Retrying { .. } => self.retrying += 1,
            Outcome::Waiting { .. } => self.waiting += 1,
            Outcome::Dead => self.dead += 1,
            Outcome::LeaseLost => self.lost += 1,
            Outcome::Released => self.released += 1,
        }
    }

    /// Runs that did not succeed.
    pub fn failed(&self) -> usize {
        self.retrying + self.dead + self.lost
    }

    pub fn all_ok(&self) -> bool {
        self.failed() == 0
    }

    /// For a CLI: 0 when every run succeeded, 2 when a job went dead, 1 for other failures.
    pub fn exit_code(&self) -> i32 {
        if self.dead > 0 {
            2
        } else if self.failed() > 0 {
            1
        } else {
            0
        }
    }
}

/// How many claimed jobs a drain runs at once.
const DRAIN_CONCURRENCY: usize = 4;
const DRAIN_LEASE: Duration = Duration::from_secs(60);

/// Fires due schedules, then claims and runs due jobs (only `kinds` when given) until none is
/// due or `max_jobs` were claimed, and reports what happened.
pub async fn drain_due(
    queue: &Queue,
    registry: &Registry,
    kinds: Option<&[String]>,
    max_jobs: usize,
) -> Result<RunReport> {
    schedule::tick(queue).await?;
    lease::expire(queue.db(), queue.clock().now_ms()).await?;
    let worker = format!("drain:{}:{}", std::process::id(), short_random());
    let timing = LeaseTiming {
        lease: DRAIN_LEASE,
        heartbeat: DRAIN_LEASE / 3,
        completer: None,
    };
    let never = CancellationToken::new();
    let mut report = RunReport::default();
    while report.claimed < max_jobs {
        let limit = (max_jobs - report.claimed).min(DRAIN_CONCURRENCY);
        let claim = Claim {
            worker: &worker,
            kinds,
            limit,
            lease_ms: millis(timing.lease),
        };
        let jobs = lease::claim(queue.db(), queue.clock().now_ms(), claim).await?;
        if jobs.is_empty() {
            break;
        }
        report.claimed += jobs.len();
        let runs = jobs
            .into_iter()
            .map(|job| runner::run(queue, registry, job, &timing, &never, None));
        for outcome in futures::future::join_all(runs).await {
            report.add(outcome);
        }
    }
    metrics::queue_depth(admin::queue_depth(queue.db(), queue.clock().now_ms()).await?);
    Ok(report)
}

/// A few random hex digits to tell workers of one process apart.
pub(crate) fn short_random() -> String {
    let id = tidepost_domain::new_id();
    id[id.len() - 8..].to_string()
}
