//! What the engine exports through the `metrics` facade (install a recorder, e.g. the
//! Prometheus exporter, to see them). Counters carry a `kind` label.

use std::time::Duration;

pub const ENQUEUED: &str = "tidepost_jobs_enqueued_total";
pub const STARTED: &str = "tidepost_jobs_started_total";
pub const SUCCEEDED: &str = "tidepost_jobs_succeeded_total";
/// Failed runs that will be retried.
pub const FAILED: &str = "tidepost_jobs_failed_total";
/// Runs that were waiting for something outside (not failures) and will look again.
pub const WAITED: &str = "tidepost_jobs_waited_total";
pub const DEAD: &str = "tidepost_jobs_dead_total";
/// Jobs waiting to run (queued or waiting for a retry), sampled by workers.
pub const QUEUE_DEPTH: &str = "tidepost_jobs_queue_depth";
pub const RUN_SECONDS: &str = "tidepost_jobs_run_seconds";

/// Registers the descriptions of every metric above.
pub fn describe() {
    metrics::describe_counter!(ENQUEUED, "Jobs enqueued (idempotent repeats not counted)");
    metrics::describe_counter!(STARTED, "Job runs started");
    metrics::describe_counter!(SUCCEEDED, "Job runs that succeeded");
    metrics::describe_counter!(FAILED, "Job runs that failed and will be retried");
    metrics::describe_counter!(
        WAITED,
        "Job runs that were waiting for something outside (not failures) and will look again"
    );
    metrics::describe_counter!(
        DEAD,
        "Jobs that went dead (out of attempts or failed permanently)"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Jobs queued or waiting for a retry");
    metrics::describe_histogram!(
        RUN_SECONDS,
        metrics::Unit::Seconds,
        "How long job runs take"
    );
}

pub(crate) fn enqueued(kind: &str) {
    metrics::counter!(ENQUEUED, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn started(kind: &str) {
    metrics::counter!(STARTED, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn succeeded(kind: &str) {
    metrics::counter!(SUCCEEDED, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn failed(kind: &str) {
    metrics::counter!(FAILED, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn waited(kind: &str) {
    metrics::counter!(WAITED, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn dead(kind: &str) {
    metrics::counter!(DEAD, "kind" => kind.to_string()).increment(1);
}

pub(crate) fn ran_for(kind: &str, took: Duration) {
    metrics::histogram!(RUN_SECONDS, "kind" => kind.to_string()).record(took.as_secs_f64());
}

pub(crate) fn queue_depth(depth: i64) {
    metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
}
