//! Exactly once across processes and crashes: 5,000 jobs run by 4 worker tasks in 2 OS
//! processes on one PostgreSQL schema; one process is killed with SIGKILL while it holds jobs
//! and a fresh one takes its place. Every job's side effect (a counter row, written in a
//! transaction fenced by the job's lease together with its completion) must happen exactly once.
//!
//! The worker processes are this test binary again, running the ignored test `worker_process`
//! with the schema's URL in `TIDEPOST_JOBS_WORKER_URL`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tidepost_jobs::{
    JobContext, JobError, NewJob, Queue, Registry, WorkerConfig, WorkerPool, handler_fn,
};
use tidepost_store::Db;
use tidepost_store::testing::TestDb;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const URL_ENV: &str = "TIDEPOST_JOBS_WORKER_URL";
const NAME_ENV: &str = "TIDEPOST_JOBS_WORKER_NAME";
const JOBS: usize = 5_000;
/// Every this many jobs, one sleeps long enough to be caught mid-run by the kill.
const SLOW_EVERY: usize = 200;

#[derive(Serialize, Deserialize)]
struct Count {
    sleep_ms: u64,
}

#[tokio::test]
async fn four_workers_in_two_processes_run_each_job_exactly_once() {
    let test_db = TestDb::postgres().await;
    let db = test_db.db.clone();
    sqlx::query("CREATE TABLE effects (job_id TEXT PRIMARY KEY, runs BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    enqueue_all(&db).await;
    let started = Instant::now();

    let mut a = spawn_worker(&test_db.url, "a");
    let mut b = spawn_worker(&test_db.url, "b");
    let held = wait_until_a_holds_jobs(&db).await;
    a.kill().await.expect("SIGKILL worker a");
    let mut c = spawn_worker(&test_db.url, "c");

    for child in [&mut b, &mut c] {
        let status = tokio::time::timeout(Duration::from_secs(50), child.wait())
            .await
            .expect("workers finish in time")
            .unwrap();
        assert!(status.success(), "a worker process failed: {status}");
    }
    eprintln!(
        "{JOBS} jobs in {:?} (a killed holding {} jobs)",
        started.elapsed(),
        held.len()
    );

    let unfinished: i64 = scalar(&db, "SELECT COUNT(*) FROM jobs WHERE state <> 'succeeded'").await;
    assert_eq!(unfinished, 0);
    let effects: i64 = scalar(&db, "SELECT COUNT(*) FROM effects").await;
    let total_runs: i64 = scalar(
        &db,
        "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM effects",
    )
    .await;
    let doubled: i64 = scalar(&db, "SELECT COUNT(*) FROM effects WHERE runs <> 1").await;
    assert_eq!(
        (effects, total_runs, doubled),
        (JOBS as i64, JOBS as i64, 0),
        "each side effect exactly once"
    );

    // The jobs a held when it was killed ran again elsewhere.
    for id in &held {
        let (attempts, last_error): (i64, String) =
            sqlx::query_as("SELECT attempts, COALESCE(last_error, '') FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert!(
            attempts >= 2,
            "job {id} held by the killed worker ran again ({attempts} attempts)"
        );
        assert!(
            last_error.contains("lease expired: worker a:"),
            "{last_error}"
        );
    }
}

/// One worker process: 2 tasks until no job is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process for the multi-process test, which starts it"]
async fn worker_process() {
    let Ok(url) = std::env::var(URL_ENV) else {
        return;
    };
    let name = std::env::var(NAME_ENV).unwrap_or_else(|_| "worker".into());
    let db = Db::connect(&url).await.expect("connect");
    let registry = Registry::new().register("count", handler_fn(count));
    let config = WorkerConfig {
        name,
        concurrency: 2,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_millis(1_500),
        heartbeat: Duration::from_millis(300),
        grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let pool = WorkerPool::new(Queue::new(db.clone()), registry, config).spawn(shutdown.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let left: i64 = scalar(
            &db,
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'failed', 'running')",
        )
        .await;
        if left == 0 {
            break;
        }
    }
    shutdown.cancel();
    pool.await.unwrap();
}

/// The side effect: bump this job's counter, in the same fenced transaction as its completion.
async fn count(ctx: JobContext, payload: Count) -> Result<(), JobError> {
    tokio::time::sleep(Duration::from_millis(payload.sleep_ms)).await;
    let mut tx = ctx.transaction().await?;
    sqlx::query(
        "INSERT INTO effects (job_id, runs) VALUES ($1, 1) \
         ON CONFLICT (job_id) DO UPDATE SET runs = effects.runs + 1",
    )
    .bind(ctx.id())
    .execute(&mut *tx)
    .await?;
    ctx.complete_in(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

async fn enqueue_all(db: &Db) {
    let queue = Queue::new(db.clone());
    let mut tx = db.begin_write().await.unwrap();
    for n in 0..JOBS {
        let sleep_ms = if n % SLOW_EVERY == 0 { 400 } else { 0 };
        queue
            .enqueue_in(&mut tx, NewJob::new("count", &Count { sleep_ms }))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

fn spawn_worker(url: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "worker_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL_ENV, url)
        .env(NAME_ENV, name)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start a worker process")
}

/// Waits until worker `a` has done some work and holds jobs (a slow one among them, mid-run),
/// and returns the ids it holds.
async fn wait_until_a_holds_jobs(db: &Db) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let done: i64 = scalar(db, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'").await;
        if done >= (JOBS / 4) as i64 {
            let held: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM jobs WHERE state = 'running' AND locked_by LIKE 'a:%' AND payload LIKE '%400%'",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            if !held.is_empty() {
                return held;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("worker a never held a slow job after a quarter of the work");
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}
