//! Throughput of no-op jobs through the worker pool, beside raw claim-and-complete SQL loops on
//! the same database, on SQLite and PostgreSQL with 1 and 4 workers.
//!
//! `cargo bench -p tidepost-jobs` (PostgreSQL as for the tests: `TIDEPOST_TEST_DATABASE_URL`
//! or the local default). Each configuration runs `TIDEPOST_BENCH_ROUNDS` rounds (default 3)
//! of `JOBS` jobs, each on a fresh database, raw loops and pool alternating; the best and the
//! median round are printed, with the load average, because other work on the machine moves
//! PostgreSQL's commit (fsync) time, which bounds every figure here.
//!
//! Two baselines, both doing only the SQL a job needs at minimum, with no engine around it:
//! - *raw*: `workers` tasks, each claiming one job with the engine's claim statement and
//!   completing it with the engine's fenced completion: two commits per job per task;
//! - *raw batched*: one loop claiming `workers` jobs per statement and completing them all in
//!   one statement, as the pool's batched claims and group completer do, but without
//!   overlapping the two.
//!
//! The ratio is the pool against the plain raw loop (the baseline); the ratio against
//! the batched loop is printed beside it. The headline figures go to the bench report.

#[path = "../../../benches/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidepost_jobs::{NewJob, Queue, Registry, WorkerConfig, WorkerPool, handler_fn};
use tidepost_store::testing::{Backend, TestDb};
use tidepost_store::{Db, Dialect};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const JOBS: usize = 5_000;
const TARGET_PG4_JOBS_PER_S: f64 = 2_000.0;
const TARGET_RATIO: f64 = 0.7;

/// Best and median of a configuration's rounds, in jobs/s.
#[derive(Clone, Copy)]
struct Figures {
    best: f64,
    median: f64,
}

impl Figures {
    fn of(mut rates: Vec<f64>) -> Figures {
        rates.sort_by(f64::total_cmp);
        Figures {
            best: rates[rates.len() - 1],
            median: rates[rates.len() / 2],
        }
    }
}

fn main() {
    let rounds: usize = std::env::var("TIDEPOST_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("{JOBS} no-op jobs per round, {rounds} rounds, load average before: {}", load());
        println!(
            "{:<11} {:>7} {:>15} {:>15} {:>15} {:>6} {:>8}",
            "backend", "workers", "raw jobs/s", "raw batched/s", "pool jobs/s", "ratio", "/batched"
        );
        println!("{:<11} {:>7} {:>15} {:>15} {:>15}", "", "", "best  median", "best  median", "best  median");
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for workers in [1, 4] {
                let (mut raw, mut batched, mut pool) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..rounds {
                    raw.push(rate(raw_loop(&fresh(backend).await, workers).await));
                    batched.push(rate(raw_batched_loop(&fresh(backend).await, workers).await));
                    pool.push(rate(pool_run(&fresh(backend).await, workers).await));
                }
                let (raw, batched, pool) = (Figures::of(raw), Figures::of(batched), Figures::of(pool));
                let ratio = pool.median / raw.median;
                println!(
                    "{:<11} {workers:>7} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {ratio:>6.2} {:>8.2}",
                    backend_name(backend),
                    raw.best,
                    raw.median,
                    batched.best,
                    batched.median,
                    pool.best,
                    pool.median,
                    pool.median / batched.median,
                );
                report(backend, workers, pool, ratio);
            }
        }
        println!("load average after: {}", load());
        println!(
            "targets: PostgreSQL with 4 workers ≥ {TARGET_PG4_JOBS_PER_S} jobs/s and ≥ {TARGET_RATIO} of the raw loop \
             (ratios are of medians)"
        );
    });
}

/// The headline figures for the bench report: the pool's median rate and its ratio to the raw
/// loop; the target applies to PostgreSQL with 4 workers.
fn report(backend: Backend, workers: usize, pool: Figures, ratio: f64) {
    let pg4 = backend == Backend::Postgres && workers == 4;
    let what = format!(
        "{} {workers} worker{}",
        backend_name(backend),
        if workers == 1 { "" } else { "s" }
    );
    common::record(
        "jobs",
        &format!("{what}: pool jobs/s (median)"),
        pool.median.round(),
        "jobs/s",
        &if pg4 {
            format!(">= {TARGET_PG4_JOBS_PER_S}")
        } else {
            String::new()
        },
    );
    common::record(
        "jobs",
        &format!("{what}: pool jobs/s (best)"),
        pool.best.round(),
        "jobs/s",
        "",
    );
    common::record(
        "jobs",
        &format!("{what}: pool / raw loop (medians)"),
        (ratio * 100.0).round() / 100.0,
        "×",
        &if pg4 {
            format!(">= {TARGET_RATIO}")
        } else {
            String::new()
        },
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

fn rate(took: Duration) -> f64 {
    JOBS as f64 / took.as_secs_f64()
}

/// A fresh database holding `JOBS` queued no-op jobs.
async fn fresh(backend: Backend) -> TestDb {
    let test_db = TestDb::new(backend).await;
    let queue = Queue::new(test_db.db.clone());
    let mut tx = test_db.db.begin_write().await.unwrap();
    for _ in 0..JOBS {
        queue
            .enqueue_in(&mut tx, NewJob::new("noop", &()))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    test_db
}

/// The engine: a pool of `workers` running no-op handlers until every job succeeded.
async fn pool_run(test_db: &TestDb, workers: usize) -> Duration {
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let (counter, bell) = (done.clone(), all_done.clone());
    let registry = Registry::new().register(
        "noop",
        handler_fn(move |_ctx, _payload: Value| {
            if counter.fetch_add(1, Ordering::SeqCst) + 1 == JOBS {
                bell.notify_one();
            }
            async { Ok(()) }
        }),
    );
    let config = WorkerConfig {
        concurrency: workers,
        run_schedules: false,
        ..WorkerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let pool =
        WorkerPool::new(Queue::new(test_db.db.clone()), registry, config).spawn(shutdown.clone());
    all_done.notified().await;
    shutdown.cancel();
    let report = pool.await.unwrap();
    let took = started.elapsed();
    assert_eq!(report.succeeded, JOBS);
    took
}

/// The plain baseline: `workers` tasks, each claiming one job with the same statement the
/// engine uses and completing it, with no engine around them.
async fn raw_loop(test_db: &TestDb, workers: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|n| tokio::spawn(raw_worker(test_db.db.clone(), format!("raw-{n}"), 1)))
        .collect();
    let mut ran = 0;
    for task in tasks {
        ran += task.await.unwrap();
    }
    assert_eq!(ran, JOBS);
    started.elapsed()
}

/// The batched baseline: one loop claiming `workers` jobs per statement and completing them in
/// one statement.
async fn raw_batched_loop(test_db: &TestDb, workers: usize) -> Duration {
    let started = Instant::now();
    let ran = raw_worker(test_db.db.clone(), "raw-batched".into(), workers).await;
    assert_eq!(ran, JOBS);
    started.elapsed()
}

/// Claims up to `batch` jobs per statement and completes them, fenced by their lease, in one
/// statement, until nothing is due; returns how many it ran.
async fn raw_worker(db: Db, worker: String, batch: usize) -> usize {
    let lock = if db.dialect() == Dialect::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let claim = format!(
        "UPDATE jobs SET state = 'running', locked_by = $1, lease_id = $2, locked_until = $3, \
             attempts = attempts + 1, updated_at = $4 \
         WHERE id IN (SELECT id FROM jobs WHERE state IN ('queued', 'failed') AND run_at <= $4 \
             ORDER BY priority DESC, run_at, id LIMIT {batch}{lock}) \
         RETURNING id, lease_id"
    );
    let fences: Vec<String> = (0..batch)
        .map(|i| format!("(id = ${} AND lease_id = ${})", 2 + 2 * i, 3 + 2 * i))
        .collect();
    let mut completes = Vec::new();
    for n in 1..=batch {
        completes.push(format!(
            "UPDATE jobs SET state = 'succeeded', locked_by = NULL, lease_id = NULL, locked_until = NULL, \
                 updated_at = $1, finished_at = $1 WHERE state = 'running' AND ({})",
            fences[..n].join(" OR ")
        ));
    }
    let mut ran = 0;
    loop {
        let now = tidepost_domain::now_ms();
        let claimed: Vec<(String, String)> = sqlx::query_as(&claim)
            .bind(&worker)
            .bind(tidepost_domain::new_id())
            .bind(now + 60_000)
            .bind(now)
            .fetch_all(db.pool())
            .await
            .unwrap();
        if claimed.is_empty() {
            return ran;
        }
        let mut complete =
            sqlx::query(&completes[claimed.len() - 1]).bind(tidepost_domain::now_ms());
        for (id, lease_id) in &claimed {
            complete = complete.bind(id).bind(lease_id);
        }
        let done = complete.execute(db.pool()).await.unwrap();
        assert_eq!(done.rows_affected() as usize, claimed.len());
        ran += claimed.len();
    }
}
