//! Throughput of no-op jobs through the worker pool, beside a raw claim-and-complete SQL loop
//! on the same database, on SQLite and PostgreSQL with 1 and 4 workers.
//!
//! `cargo bench -p tidepost-jobs` (PostgreSQL as for the tests: `TIDEPOST_TEST_DATABASE_URL`
//! or the local default).

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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "{:<11} {:>7} {:>12} {:>12} {:>6}",
            "backend", "workers", "raw jobs/s", "pool jobs/s", "ratio"
        );
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for workers in [1, 4] {
                let raw = rate(raw_loop(&fresh(backend).await, workers).await);
                let pool = rate(pool_run(&fresh(backend).await, workers).await);
                println!(
                    "{:<11} {workers:>7} {raw:>12.0} {pool:>12.0} {:>6.2}",
                    name(backend),
                    pool / raw
                );
            }
        }
    });
}

fn name(backend: Backend) -> &'static str {
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

/// The baseline: `workers` tasks, each claiming one job with the same statement the engine
/// uses and completing it, with no engine around them.
async fn raw_loop(test_db: &TestDb, workers: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|n| tokio::spawn(raw_worker(test_db.db.clone(), format!("raw-{n}"))))
        .collect();
    let mut ran = 0;
    for task in tasks {
        ran += task.await.unwrap();
    }
    assert_eq!(ran, JOBS);
    started.elapsed()
}

async fn raw_worker(db: Db, worker: String) -> usize {
    let lock = if db.dialect() == Dialect::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let claim = format!(
        "UPDATE jobs SET state = 'running', locked_by = $1, lease_id = $2, locked_until = $3, \
             attempts = attempts + 1, updated_at = $4 \
         WHERE id IN (SELECT id FROM jobs WHERE state IN ('queued', 'failed') AND run_at <= $4 \
             ORDER BY priority DESC, run_at, id LIMIT 1{lock}) \
         RETURNING id, lease_id"
    );
    let complete = "UPDATE jobs SET state = 'succeeded', locked_by = NULL, lease_id = NULL, locked_until = NULL, \
         updated_at = $3, finished_at = $3 WHERE id = $1 AND lease_id = $2 AND state = 'running'";
    let mut ran = 0;
    loop {
        let now = tidepost_domain::now_ms();
        let claimed: Option<(String, String)> = sqlx::query_as(&claim)
            .bind(&worker)
            .bind(tidepost_domain::new_id())
            .bind(now + 60_000)
            .bind(now)
            .fetch_optional(db.pool())
            .await
            .unwrap();
        let Some((id, lease_id)) = claimed else {
            return ran;
        };
        sqlx::query(complete)
            .bind(id)
            .bind(lease_id)
            .bind(tidepost_domain::now_ms())
            .execute(db.pool())
            .await
            .unwrap();
        ran += 1;
    }
}
