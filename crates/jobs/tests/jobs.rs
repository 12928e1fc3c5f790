//! The engine's behaviour, each test on SQLite and on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tidepost_jobs::admin::{self, Filter, Page, Scope};
use tidepost_jobs::lease::{self, Claim, Lease};
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{
    Clock, Job, JobError, JobState, NewJob, Queue, Registry, RetryPolicy, StepState, WorkerConfig,
    WorkerPool, drain_due, handler_fn,
};
use tidepost_store::{Db, both_backends};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where every frozen clock starts.
const T0: i64 = 1_800_000_000_000;
const SECOND: i64 = 1_000;

fn queue(db: &Db) -> Queue {
    Queue::with_clock(db.clone(), Clock::frozen_at(T0))
}

async fn job(db: &Db, id: &str) -> Job {
    admin::get(db, Scope::All, id)
        .await
        .unwrap()
        .expect("job exists")
}

async fn enqueue(queue: &Queue, job: NewJob) -> String {
    queue.enqueue(job).await.unwrap().id
}

fn claim_as(worker: &str, limit: usize) -> Claim<'_> {
    Claim {
        worker,
        kinds: None,
        limit,
        lease_ms: 30 * SECOND,
    }
}

/// A registry whose `ok` kind succeeds and counts its runs.
fn counting(runs: Arc<AtomicUsize>) -> Registry {
    Registry::new().register(
        "ok",
        handler_fn(move |_ctx, _payload: Value| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
    )
}

fn always_failing(policy: RetryPolicy, error: JobError) -> Registry {
    Registry::new().register_with(
        "flaky",
        policy,
        handler_fn(move |_ctx, _payload: Value| {
            let error = error.clone();
            async move { Err(error) }
        }),
    )
}

fn exact(max_attempts: u32, base_secs: u64, cap_secs: u64) -> RetryPolicy {
    RetryPolicy::new(
        max_attempts,
        Duration::from_secs(base_secs),
        Duration::from_secs(cap_secs),
    )
    .with_jitter(0.0)
}

both_backends!(enqueue_claim_complete, |db: Db| async move {
    let queue = queue(&db);
    let id = enqueue(
        &queue,
        NewJob::new("ok", &json!({"n": 1})).workspace("ws-1"),
    )
    .await;
    let queued = job(&db, &id).await;
    assert_eq!(
        (queued.state, queued.attempts, queued.run_at),
        (JobState::Queued, 0, T0)
    );
    assert_eq!(queued.workspace_id.as_deref(), Some("ws-1"));
    assert_eq!(
        serde_json::from_str::<Value>(&queued.payload).unwrap(),
        json!({"n": 1})
    );

    let claimed = lease::claim(&db, T0, claim_as("w1", 10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let running = &claimed[0];
    assert_eq!((running.state, running.attempts), (JobState::Running, 1));
    assert_eq!(running.locked_by.as_deref(), Some("w1"));
    assert_eq!(running.locked_until, Some(T0 + 30 * SECOND));
    assert!(
        lease::claim(&db, T0, claim_as("w2", 10))
            .await
            .unwrap()
            .is_empty(),
        "a held job is not claimed twice"
    );

    assert!(
        lease::complete(&db, T0 + 5, &Lease::of(running).unwrap())
            .await
            .unwrap()
    );
    let done = job(&db, &id).await;
    assert_eq!(
        (done.state, done.finished_at, done.locked_by),
        (JobState::Succeeded, Some(T0 + 5), None)
    );

    // The same through a handler.
    let runs = Arc::new(AtomicUsize::new(0));
    enqueue(&queue, NewJob::new("ok", &json!({}))).await;
    let report = drain_due(&queue, &counting(runs.clone()), None, 100)
        .await
        .unwrap();
    assert_eq!(
        (report.claimed, report.succeeded, report.exit_code()),
        (1, 1, 0)
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
});

both_backends!(idempotency_keys_yield_one_job, |db: Db| async move {
    let queue = queue(&db);
    let first = queue
        .enqueue(NewJob::new("ok", &1).idempotency_key("publish:post-1"))
        .await
        .unwrap();
    let second = queue
        .enqueue(NewJob::new("ok", &2).idempotency_key("publish:post-1"))
        .await
        .unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.id, second.id);
    let other = queue
        .enqueue(NewJob::new("ok", &3).idempotency_key("publish:post-2"))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    // Jobs without a key never collide.
    queue.enqueue(NewJob::new("ok", &4)).await.unwrap();
    queue.enqueue(NewJob::new("ok", &4)).await.unwrap();
    let all = admin::list(&db, Scope::All, &Filter::default(), &Page::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        job(&db, &first.id).await.payload,
        "1",
        "the first enqueue's payload stands"
    );

    // Inside a transaction that rolls back, the job does not exist.
    let mut tx = db.begin_write().await.unwrap();
    queue
        .enqueue_in(
            &mut tx,
            NewJob::new("ok", &5).idempotency_key("rolled-back"),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        queue
            .enqueue(NewJob::new("ok", &5).idempotency_key("rolled-back"))
            .await
            .unwrap()
            .created
    );
});

// Many jobs enqueued in the caller's transaction with one statement: each resolves in order,
// a key already stored or repeated among them to one job, and nothing exists if the caller
// rolls back.
both_backends!(
    enqueue_many_in_the_callers_transaction,
    |db: Db| async move {
        let queue = queue(&db);
        let known = enqueue(&queue, NewJob::new("ok", &0).idempotency_key("known")).await;
        let jobs = [
            NewJob::new("ok", &1).idempotency_key("a"),
            NewJob::new("ok", &2).idempotency_key("known"),
            NewJob::new("ok", &3),
            NewJob::new("ok", &4).idempotency_key("a"),
        ];
        let mut tx = db.begin_write().await.unwrap();
        let done = queue.enqueue_many_in(&mut tx, &jobs).await.unwrap();
        let created: Vec<bool> = done.iter().map(|e| e.created).collect();
        assert_eq!(created, [true, false, true, false]);
        assert_eq!(done[1].id, known);
        assert_eq!(done[3].id, done[0].id);
        tx.rollback().await.unwrap();
        let all = admin::list(&db, Scope::All, &Filter::default(), &Page::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 1, "rolled back: only the job stored before");

        let mut tx = db.begin_write().await.unwrap();
        let done = queue.enqueue_many_in(&mut tx, &jobs).await.unwrap();
        tx.commit().await.unwrap();
        queue.wake_workers();
        assert_eq!(job(&db, &done[0].id).await.payload, "1");
        assert_eq!(job(&db, &done[2].id).await.payload, "3");
        let all = admin::list(&db, Scope::All, &Filter::default(), &Page::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
    }
);

// Concurrent enqueues are committed in groups; each still resolves to its own job, a key
// repeated inside one group (or already stored) to one job, and every job is stored.
both_backends!(
    concurrent_enqueues_are_grouped_and_keep_their_keys,
    |db: Db| async move {
        let queue = queue(&db);
        let before = enqueue(&queue, NewJob::new("ok", &()).idempotency_key("stored")).await;
        let calls = (0..200).map(|n| {
            let queue = queue.clone();
            async move {
                let job = match n % 4 {
                    0 => NewJob::new("ok", &json!({ "n": n })),
                    1 => NewJob::new("ok", &json!({ "n": n })).idempotency_key(format!("k{n}")),
                    2 => NewJob::new("ok", &json!({ "n": n })).idempotency_key("shared"),
                    _ => NewJob::new("ok", &json!({ "n": n })).idempotency_key("stored"),
                };
                (n, queue.enqueue(job).await.unwrap())
            }
        });
        let results = futures::future::join_all(calls).await;
        let shared: Vec<_> = results.iter().filter(|(n, _)| n % 4 == 2).collect();
        assert_eq!(shared.iter().filter(|(_, e)| e.created).count(), 1);
        assert!(shared.iter().all(|(_, e)| e.id == shared[0].1.id));
        for (n, enqueued) in &results {
            match n % 4 {
                0 | 1 => {
                    assert!(enqueued.created, "job {n}");
                    let stored = job(&db, &enqueued.id).await;
                    assert_eq!(stored.payload, json!({ "n": n }).to_string());
                }
                3 => assert_eq!(
                    (enqueued.created, enqueued.id.as_str()),
                    (false, before.as_str())
                ),
                _ => {}
            }
        }
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            total,
            1 + 50 + 50 + 1,
            "one per call without a repeated key"
        );
    }
);

both_backends!(priority_then_run_at_order, |db: Db| async move {
    let queue = queue(&db);
    let low_late = enqueue(&queue, NewJob::new("ok", &"low-late").run_at(T0 - SECOND)).await;
    let low_early = enqueue(
        &queue,
        NewJob::new("ok", &"low-early").run_at(T0 - 10 * SECOND),
    )
    .await;
    let high = enqueue(&queue, NewJob::new("ok", &"high").priority(5)).await;
    let future = enqueue(
        &queue,
        NewJob::new("ok", &"future")
            .priority(99)
            .run_at(T0 + 60 * SECOND),
    )
    .await;

    let first = lease::claim(&db, T0, claim_as("w", 1)).await.unwrap();
    assert_eq!(first[0].id, high);
    let rest = lease::claim(&db, T0, claim_as("w", 10)).await.unwrap();
    let rest_ids: Vec<String> = rest.iter().map(|j| j.id.clone()).collect();
    assert_eq!(
        rest_ids,
        [low_early, low_late],
        "the future job waits for its run_at"
    );
    for done in first.iter().chain(&rest) {
        assert!(
            lease::complete(&db, T0, &Lease::of(done).unwrap())
                .await
                .unwrap()
        );
    }
    assert!(
        lease::claim(&db, T0 + 59 * SECOND, claim_as("w", 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        lease::claim(&db, T0 + 60 * SECOND, claim_as("w", 10))
            .await
            .unwrap()[0]
            .id,
        future
    );
});

both_backends!(backoff_timing_follows_the_policy, |db: Db| async move {
    let queue = queue(&db);
    let registry = always_failing(exact(3, 10, 15), JobError::retryable("provider timed out"));
    let id = enqueue(&queue, NewJob::new("flaky", &())).await;

    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!((report.retrying, report.exit_code()), (1, 1));
    let after_one = job(&db, &id).await;
    assert_eq!(
        (after_one.state, after_one.run_at),
        (JobState::Failed, T0 + 10 * SECOND)
    );
    assert_eq!(after_one.last_error.as_deref(), Some("provider timed out"));

    // Not due a millisecond early.
    queue.clock().advance(Duration::from_millis(9_999));
    assert_eq!(
        drain_due(&queue, &registry, None, 10)
            .await
            .unwrap()
            .claimed,
        0
    );
    queue.clock().advance(Duration::from_millis(1));
    drain_due(&queue, &registry, None, 10).await.unwrap();
    let after_two = job(&db, &id).await;
    // The second delay doubles (20 s) but is capped at 15 s.
    assert_eq!(
        (after_two.attempts, after_two.run_at),
        (2, queue.clock().now_ms() + 15 * SECOND)
    );
});

both_backends!(backoff_jitter_stays_in_range, |db: Db| async move {
    let queue = queue(&db);
    let policy =
        RetryPolicy::new(5, Duration::from_secs(100), Duration::from_secs(1000)).with_jitter(0.5);
    let registry = always_failing(policy, JobError::retryable("nope"));
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(enqueue(&queue, NewJob::new("flaky", &())).await);
    }
    drain_due(&queue, &registry, None, 100).await.unwrap();
    for id in ids {
        let delay = job(&db, &id).await.run_at - T0;
        assert!((50 * SECOND..=100 * SECOND).contains(&delay), "{delay}");
    }
});

both_backends!(retry_after_is_honoured, |db: Db| async move {
    let queue = queue(&db);
    let error = JobError::retryable("429 Too Many Requests").retry_after(Duration::from_secs(90));
    let registry = always_failing(exact(5, 1, 10), error);
    let id = enqueue(&queue, NewJob::new("flaky", &())).await;
    drain_due(&queue, &registry, None, 10).await.unwrap();
    let failed = job(&db, &id).await;
    assert_eq!(
        (failed.state, failed.run_at),
        (JobState::Failed, T0 + 90 * SECOND),
        "Retry-After beats the 1 s backoff"
    );
});

both_backends!(dead_letters_keep_the_last_error, |db: Db| async move {
    let queue = queue(&db);
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let registry = Registry::new().register_with(
        "flaky",
        exact(3, 1, 1),
        handler_fn(move |_ctx, _p: Value| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Err(JobError::retryable(format!("failure #{n}"))) }
        }),
    );
    let id = enqueue(&queue, NewJob::new("flaky", &())).await;
    for _ in 0..5 {
        drain_due(&queue, &registry, None, 10).await.unwrap();
        queue.clock().advance(Duration::from_secs(2));
    }
    let dead = job(&db, &id).await;
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 3));
    assert_eq!(dead.last_error.as_deref(), Some("failure #3"));
    assert!(dead.finished_at.is_some());
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "no run after the last attempt"
    );

    // A permanent error is dead at once, and a per-job max_attempts overrides the policy.
    let permanent = always_failing(exact(10, 1, 1), JobError::permanent("account revoked"));
    let once = enqueue(&queue, NewJob::new("flaky", &())).await;
    let report = drain_due(&queue, &permanent, None, 10).await.unwrap();
    assert_eq!((report.dead, report.exit_code()), (1, 2));
    assert_eq!(
        job(&db, &once).await.last_error.as_deref(),
        Some("account revoked")
    );
    let retryable = always_failing(exact(10, 0, 0), JobError::retryable("still failing"));
    let capped = enqueue(&queue, NewJob::new("flaky", &()).max_attempts(2)).await;
    drain_due(&queue, &retryable, None, 10).await.unwrap();
    assert_eq!(job(&db, &capped).await.state, JobState::Dead);
});

both_backends!(
    expired_leases_are_claimed_again_and_fenced,
    |db: Db| async move {
        let queue = queue(&db);
        let id = enqueue(&queue, NewJob::new("ok", &())).await;
        let first = lease::claim(&db, T0, claim_as("w1", 1))
            .await
            .unwrap()
            .remove(0);
        let first_lease = Lease::of(&first).unwrap();
        assert!(
            lease::claim(&db, T0 + 29 * SECOND, claim_as("w2", 1))
                .await
                .unwrap()
                .is_empty()
        );

        // w1 stops heartbeating (killed); once its lease has expired, w2 gets the job.
        assert_eq!(lease::expire(&db, T0 + 29 * SECOND).await.unwrap(), 0);
        assert_eq!(lease::expire(&db, T0 + 30 * SECOND).await.unwrap(), 1);
        let second = lease::claim(&db, T0 + 30 * SECOND, claim_as("w2", 1))
            .await
            .unwrap()
            .remove(0);
        assert_eq!((second.id.as_str(), second.attempts), (id.as_str(), 2));
        assert_eq!(second.locked_by.as_deref(), Some("w2"));
        assert!(
            second
                .last_error
                .as_deref()
                .unwrap()
                .contains("lease expired: worker w1"),
            "{:?}",
            second.last_error
        );

        // w1 comes back: every write it tries is refused.
        let now = T0 + 31 * SECOND;
        assert!(
            !lease::heartbeat(&db, now, &first_lease, 30 * SECOND)
                .await
                .unwrap()
        );
        assert!(!lease::complete(&db, now, &first_lease).await.unwrap());
        assert!(
            !lease::fail(&db, now, &first_lease, now, "late")
                .await
                .unwrap()
        );
        assert!(!lease::bury(&db, now, &first_lease, "late").await.unwrap());
        assert!(!lease::release(&db, now, &first_lease).await.unwrap());
        assert_eq!(job(&db, &id).await.locked_by.as_deref(), Some("w2"));

        let second_lease = Lease::of(&second).unwrap();
        assert!(
            lease::heartbeat(&db, now, &second_lease, 30 * SECOND)
                .await
                .unwrap()
        );
        assert!(lease::complete(&db, now, &second_lease).await.unwrap());
        assert_eq!(job(&db, &id).await.state, JobState::Succeeded);
        assert!(
            !lease::complete(&db, now, &second_lease).await.unwrap(),
            "completes once"
        );
    }
);

both_backends!(lost_workers_do_not_retry_forever, |db: Db| async move {
    let queue = queue(&db);
    let runs = Arc::new(AtomicUsize::new(0));
    let id = enqueue(&queue, NewJob::new("ok", &()).max_attempts(2)).await;
    lease::claim(&db, T0, claim_as("killed-1", 1))
        .await
        .unwrap();
    lease::expire(&db, T0 + 30 * SECOND).await.unwrap();
    lease::claim(&db, T0 + 30 * SECOND, claim_as("killed-2", 1))
        .await
        .unwrap();
    queue.clock().advance(Duration::from_secs(60));
    let report = drain_due(&queue, &counting(runs.clone()), None, 10)
        .await
        .unwrap();
    assert_eq!(report.dead, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let dead = job(&db, &id).await;
    assert!(
        dead.last_error
            .unwrap()
            .starts_with("gave up after 2 attempts"),
        "a poison job that kills its worker ends"
    );
});

/// A publish-like handler: one provider call guarded by a step, counted in `calls`. With
/// `hang`, it stops between intent and outcome as if its process were killed there.
fn publishing(
    calls: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    hang: Option<Arc<Notify>>,
) -> Registry {
    Registry::new().register(
        "publish",
        handler_fn(move |ctx, _p: Value| {
            let (calls, seen, hang) = (calls.clone(), seen.clone(), hang.clone());
            async move {
                match ctx.step("publish-init").await? {
                    StepState::New(intent) => {
                        seen.lock().unwrap().push("new".into());
                        let publish_id =
                            format!("pub-{}", calls.fetch_add(1, Ordering::SeqCst) + 1);
                        if let Some(reached) = hang {
                            reached.notify_one();
                            std::future::pending::<()>().await;
                        }
                        intent.record(&publish_id).await?;
                    }
                    StepState::Done(outcome) => {
                        seen.lock().unwrap().push(format!("done {outcome}"))
                    }
                    StepState::OutcomeUnknown(intent) => {
                        seen.lock()
                            .unwrap()
                            .push(format!("unknown since attempt {}", intent.attempt()));
                        // Reconcile: ask the provider (here, our counter) what happened.
                        let found = format!("pub-{}", calls.load(Ordering::SeqCst));
                        intent.record(&found).await?;
                    }
                }
                Ok(())
            }
        }),
    )
}

both_backends!(steps_never_repeat_a_side_effect, |db: Db| async move {
    let queue = queue(&db);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let id = enqueue(&queue, NewJob::new("publish", &())).await;

    // A worker runs the job and is killed between intent and outcome.
    let reached = Arc::new(Notify::new());
    let config = WorkerConfig {
        lease: Duration::from_secs(30),
        ..WorkerConfig::default()
    };
    let doomed = WorkerPool::new(
        queue.clone(),
        publishing(calls.clone(), seen.clone(), Some(reached.clone())),
        config,
    )
    .spawn(CancellationToken::new());
    reached.notified().await;
    doomed.abort();
    let _ = doomed.await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let steps = admin::steps(&db, Scope::All, &id).await.unwrap();
    assert_eq!(
        (steps[0].state.as_str(), steps[0].outcome.as_deref()),
        ("intent", None)
    );

    // After the lease, another worker re-runs it: it sees "unknown" and reconciles.
    queue.clock().advance(Duration::from_secs(31));
    let registry = publishing(calls.clone(), seen.clone(), None);
    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!(report.succeeded, 1, "{report:?} {:?}", job(&db, &id).await);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the provider was called once"
    );
    assert_eq!(*seen.lock().unwrap(), ["new", "unknown since attempt 1"]);
    let steps = admin::steps(&db, Scope::All, &id).await.unwrap();
    assert_eq!(
        (steps[0].state.as_str(), steps[0].outcome.as_deref()),
        ("done", Some("\"pub-1\""))
    );

    // A job retried by hand later finds the recorded outcome.
    assert!(
        !admin::retry(&queue, Scope::All, &id).await.unwrap(),
        "succeeded jobs are not retried"
    );
    sqlx::query("UPDATE jobs SET state = 'dead' WHERE id = $1")
        .bind(&id)
        .execute(db.pool())
        .await
        .unwrap();
    assert!(admin::retry(&queue, Scope::All, &id).await.unwrap());
    drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!(seen.lock().unwrap().last().unwrap(), "done \"pub-1\"");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
});

both_backends!(
    steps_survive_a_panic_and_need_the_lease,
    |db: Db| async move {
        let queue = queue(&db);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let registry = Registry::new().register_with(
            "publish",
            exact(3, 1, 1),
            handler_fn(move |ctx, _p: Value| {
                let calls = counter.clone();
                async move {
                    match ctx.step("call").await? {
                        StepState::New(_intent) => {
                            calls.fetch_add(1, Ordering::SeqCst);
                            panic!("crashed after the call");
                        }
                        StepState::OutcomeUnknown(intent) => intent.record(&"reconciled").await,
                        StepState::Done(_) => Ok(()),
                    }
                }
            }),
        );
        let id = enqueue(&queue, NewJob::new("publish", &())).await;
        let first = drain_due(&queue, &registry, None, 10).await.unwrap();
        assert_eq!(first.retrying, 1);
        assert!(
            job(&db, &id)
                .await
                .last_error
                .unwrap()
                .contains("the handler panicked: crashed after the call")
        );
        queue.clock().advance(Duration::from_secs(5));
        assert_eq!(
            drain_due(&queue, &registry, None, 10)
                .await
                .unwrap()
                .succeeded,
            1
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // A worker without the lease cannot record an intent: only the holder may call.
        let other = enqueue(&queue, NewJob::new("publish", &())).await;
        let held = lease::claim(&db, queue.clock().now_ms(), claim_as("w1", 1))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(held.id, other);
        queue.clock().advance(Duration::from_secs(31));
        lease::expire(&db, queue.clock().now_ms()).await.unwrap();
        let stolen = lease::claim(&db, queue.clock().now_ms(), claim_as("w2", 1))
            .await
            .unwrap()
            .remove(0);
        assert!(
            lease::complete(&db, queue.clock().now_ms(), &Lease::of(&stolen).unwrap())
                .await
                .unwrap()
        );
        assert!(
            admin::steps(&db, Scope::All, &other)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    peek_step_reads_without_recording_an_intent,
    |db: Db| async move {
        let queue = queue(&db);
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let registry = Registry::new().register_with(
            "publish",
            exact(3, 1, 1),
            handler_fn(move |ctx, p: Value| {
                let log = log.clone();
                async move {
                    let peek = ctx.peek_step("call").await?;
                    log.lock().unwrap().push(format!("before: {peek:?}"));
                    if p["peek_only"] == true {
                        // Peeking again still finds nothing: the first peek recorded nothing.
                        assert!(ctx.peek_step("call").await?.is_absent());
                        return Ok(());
                    }
                    match ctx.step("call").await? {
                        StepState::New(_intent) => {
                            let after = ctx.peek_step("call").await?;
                            log.lock().unwrap().push(format!("after new: {after:?}"));
                            // Stops without an outcome, as a crash after the call would.
                            Err(JobError::retryable("stopped before the outcome"))
                        }
                        StepState::OutcomeUnknown(intent) => {
                            intent.record(&json!({"id": 7})).await?;
                            let after = ctx.peek_step("call").await?;
                            log.lock().unwrap().push(format!("after record: {after:?}"));
                            Ok(())
                        }
                        StepState::Done(_) => Ok(()),
                    }
                }
            }),
        );

        // A run that only peeks leaves no step behind.
        let quiet = enqueue(&queue, NewJob::new("publish", &json!({"peek_only": true}))).await;
        assert_eq!(
            drain_due(&queue, &registry, None, 10)
                .await
                .unwrap()
                .succeeded,
            1
        );
        assert!(
            admin::steps(&db, Scope::All, &quiet)
                .await
                .unwrap()
                .is_empty()
        );

        // Absent, then the intent of attempt 1, then (next attempt) done with its outcome.
        let id = enqueue(&queue, NewJob::new("publish", &json!({}))).await;
        assert_eq!(
            drain_due(&queue, &registry, None, 10)
                .await
                .unwrap()
                .retrying,
            1
        );
        queue.clock().advance(Duration::from_secs(5));
        assert_eq!(
            drain_due(&queue, &registry, None, 10)
                .await
                .unwrap()
                .succeeded,
            1,
            "{:?}",
            job(&db, &id).await
        );
        assert_eq!(
            seen.lock().unwrap()[1..],
            [
                "before: Absent",
                "after new: Intent { attempt: 1 }",
                "before: Intent { attempt: 1 }",
                "after record: Done(Object {\"id\": Number(7)})",
            ]
        );
        let steps = admin::steps(&db, Scope::All, &id).await.unwrap();
        assert_eq!(
            (steps[0].state.as_str(), steps[0].outcome.as_deref()),
            ("done", Some(r#"{"id":7}"#))
        );
    }
);

both_backends!(
    recurring_sweep_fires_once_per_period_across_instances,
    |db: Db| async move {
        let url = db.pool().connect_options().database_url.to_string();
        let second_db = Db::connect(&url).await.unwrap();
        let clock = Clock::frozen_at(T0);
        let instance_a = Queue::with_clock(db.clone(), clock.clone());
        let instance_b = Queue::with_clock(second_db, clock.clone());
        let sweep = Schedule::every(
            "refresh-sweep",
            Duration::from_secs(60),
            "sweep",
            json!({"window": "1h"}),
        );
        schedule::ensure(&instance_a, &sweep).await.unwrap();
        schedule::ensure(&instance_b, &sweep).await.unwrap();

        let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = |runs: Arc<std::sync::Mutex<Vec<String>>>| {
            Registry::new().register(
                "sweep",
                handler_fn(move |ctx, payload: Value| {
                    let runs = runs.clone();
                    async move {
                        assert_eq!(payload, json!({"window": "1h"}));
                        runs.lock()
                            .unwrap()
                            .push(ctx.job().idempotency_key.clone().unwrap());
                        Ok(())
                    }
                }),
            )
        };
        let config = WorkerConfig {
            poll_interval: Duration::from_millis(20),
            chores_interval: Duration::from_millis(10),
            ..WorkerConfig::default()
        };
        let shutdown = CancellationToken::new();
        let pool_a = WorkerPool::new(instance_a.clone(), registry(runs.clone()), config.clone())
            .spawn(shutdown.clone());
        let pool_b = WorkerPool::new(instance_b.clone(), registry(runs.clone()), config)
            .spawn(shutdown.clone());
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            // Extra ticks from both sides at once, beside the pools' own.
            let (a, b) = tokio::join!(schedule::tick(&instance_a), schedule::tick(&instance_b));
            assert_eq!(
                a.unwrap() + b.unwrap(),
                0,
                "the pools already fired this period"
            );
            clock.advance(Duration::from_secs(60));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
        let (a, b) = (pool_a.await.unwrap(), pool_b.await.unwrap());
        let mut keys = runs.lock().unwrap().clone();
        keys.sort();
        let expected: Vec<String> = (0..5)
            .map(|n| format!("refresh-sweep@{}", T0 + n * 60 * SECOND))
            .collect();
        assert_eq!(keys, expected, "one run per period, none twice");
        assert_eq!(a.succeeded + b.succeeded, 5);
        assert_eq!(
            schedule::list(&db).await.unwrap()[0].next_run_at,
            T0 + 5 * 60 * SECOND
        );

        // Missed periods fire once.
        clock.advance(Duration::from_secs(600));
        assert_eq!(schedule::tick(&instance_a).await.unwrap(), 1);
        assert_eq!(schedule::tick(&instance_b).await.unwrap(), 0);
        assert!(schedule::remove(&db, "refresh-sweep").await.unwrap());
    }
);

both_backends!(
    graceful_shutdown_finishes_then_releases,
    |db: Db| async move {
        let queue = Queue::new(db.clone());
        let started = Arc::new(AtomicUsize::new(0));
        let counter = started.clone();
        let registry = Registry::new().register(
            "work",
            handler_fn(move |_ctx, millis: u64| {
                let started = counter.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Ok(())
                }
            }),
        );
        let quick = enqueue(&queue, NewJob::new("work", &150u64)).await;
        let slow = enqueue(&queue, NewJob::new("work", &600_000u64)).await;
        let config = WorkerConfig {
            concurrency: 2,
            grace: Duration::from_millis(500),
            ..WorkerConfig::default()
        };
        let shutdown = CancellationToken::new();
        let pool = WorkerPool::new(queue.clone(), registry, config).spawn(shutdown.clone());
        while started.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        let late = enqueue(&queue, NewJob::new("work", &1u64)).await;
        let report = tokio::time::timeout(Duration::from_secs(5), pool)
            .await
            .expect("stops within the grace")
            .unwrap();
        assert_eq!(
            (report.claimed, report.succeeded, report.released),
            (2, 1, 1)
        );
        assert_eq!(job(&db, &quick).await.state, JobState::Succeeded);
        let released = job(&db, &slow).await;
        assert_eq!(
            (released.state, released.attempts, released.locked_by),
            (JobState::Queued, 0, None)
        );
        assert_eq!(
            job(&db, &late).await.state,
            JobState::Queued,
            "nothing is claimed after shutdown"
        );
    }
);

both_backends!(bad_input_fails_only_its_job, |db: Db| async move {
    let queue = queue(&db);
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = counting(runs.clone())
        .register(
            "typed",
            handler_fn(|_ctx, _payload: (String, u32)| async { Ok(()) }),
        )
        .register(
            "boom",
            handler_fn(|_ctx, _payload: Value| async { panic!("kaboom") }),
        );
    let unknown = enqueue(&queue, NewJob::new("no-such-kind", &())).await;
    let garbled = enqueue(&queue, NewJob::new("typed", &json!({"not": "a tuple"}))).await;
    let panics = enqueue(&queue, NewJob::new("boom", &())).await;
    let fine = enqueue(&queue, NewJob::new("ok", &())).await;

    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!(
        (
            report.claimed,
            report.succeeded,
            report.retrying,
            report.dead
        ),
        (4, 1, 2, 1)
    );
    let unknown = job(&db, &unknown).await;
    assert_eq!(
        unknown.state,
        JobState::Failed,
        "a newer worker may know the kind: retried"
    );
    assert!(
        unknown
            .last_error
            .unwrap()
            .contains("no handler for job kind \"no-such-kind\"")
    );
    let garbled = job(&db, &garbled).await;
    assert_eq!(garbled.state, JobState::Dead);
    assert!(
        garbled
            .last_error
            .unwrap()
            .starts_with("the payload does not parse as (alloc::string::String, u32)")
    );
    let panics = job(&db, &panics).await;
    assert_eq!(panics.state, JobState::Failed);
    assert_eq!(
        panics.last_error.as_deref(),
        Some("the handler panicked: kaboom")
    );
    assert_eq!(job(&db, &fine).await.state, JobState::Succeeded);

    // A pool survives a panicking job and goes on with the next.
    let pool_queue = Queue::new(db.clone());
    let after = enqueue(&pool_queue, NewJob::new("ok", &())).await;
    enqueue(&pool_queue, NewJob::new("boom", &()).priority(10)).await;
    let shutdown = CancellationToken::new();
    let pool =
        WorkerPool::new(pool_queue, registry, WorkerConfig::default()).spawn(shutdown.clone());
    wait_for_state(&db, &after, JobState::Succeeded).await;
    shutdown.cancel();
    pool.await.unwrap();
});

both_backends!(drain_due_reports_and_filters, |db: Db| async move {
    let queue = queue(&db);
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = counting(runs.clone())
        .register_with(
            "flaky",
            exact(2, 1, 1),
            handler_fn(|_c, _p: Value| async { Err(JobError::retryable("x")) }),
        )
        .register(
            "fatal",
            handler_fn(|_c, _p: Value| async { Err(JobError::permanent("y")) }),
        );
    for _ in 0..5 {
        enqueue(&queue, NewJob::new("ok", &())).await;
    }
    enqueue(&queue, NewJob::new("flaky", &())).await;
    enqueue(&queue, NewJob::new("fatal", &())).await;

    let only_ok = drain_due(&queue, &registry, Some(&["ok".to_string()]), 3)
        .await
        .unwrap();
    assert_eq!(
        (only_ok.claimed, only_ok.succeeded, only_ok.exit_code()),
        (3, 3, 0)
    );
    let rest = drain_due(&queue, &registry, None, 100).await.unwrap();
    assert_eq!(
        (rest.claimed, rest.succeeded, rest.retrying, rest.dead),
        (4, 2, 1, 1)
    );
    assert!(!rest.all_ok());
    assert_eq!(rest.exit_code(), 2);
    let empty = drain_due(&queue, &registry, None, 100).await.unwrap();
    assert_eq!((empty.claimed, empty.exit_code()), (0, 0));
    assert_eq!(runs.load(Ordering::SeqCst), 5);
});

both_backends!(
    visibility_counts_lists_retries_and_cancels,
    |db: Db| async move {
        let queue = queue(&db);
        let registry = always_failing(exact(1, 1, 1), JobError::retryable("broken"));
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(enqueue(&queue, NewJob::new("ok", &n).workspace("ws-a")).await);
        }
        let theirs = enqueue(&queue, NewJob::new("ok", &9).workspace("ws-b")).await;
        let dead = enqueue(&queue, NewJob::new("flaky", &()).workspace("ws-a")).await;
        drain_due(&queue, &registry, Some(&["flaky".to_string()]), 10)
            .await
            .unwrap();

        let counts = admin::counts(&db, Scope::Workspace("ws-a")).await.unwrap();
        let summary: Vec<(String, JobState, i64)> = counts
            .into_iter()
            .map(|c| (c.kind, c.state, c.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("flaky".into(), JobState::Dead, 1),
                ("ok".into(), JobState::Queued, 5)
            ]
        );
        assert_eq!(
            admin::counts(&db, Scope::All)
                .await
                .unwrap()
                .iter()
                .map(|c| c.count)
                .sum::<i64>(),
            7
        );

        let filter = Filter {
            state: Some(JobState::Queued),
            kind: Some("ok".into()),
        };
        let first = admin::list(
            &db,
            Scope::Workspace("ws-a"),
            &filter,
            &Page {
                limit: 3,
                after: None,
            },
        )
        .await
        .unwrap();
        let after = Some(first.last().unwrap().id.clone());
        let second = admin::list(
            &db,
            Scope::Workspace("ws-a"),
            &filter,
            &Page { limit: 3, after },
        )
        .await
        .unwrap();
        let listed: Vec<String> = first.iter().chain(&second).map(|j| j.id.clone()).collect();
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(listed, newest_first);

        assert!(
            admin::get(&db, Scope::Workspace("ws-a"), &theirs)
                .await
                .unwrap()
                .is_none(),
            "other workspaces are hidden"
        );
        assert!(
            admin::get(&db, Scope::Workspace("ws-b"), &theirs)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            !admin::cancel(&queue, Scope::Workspace("ws-a"), &theirs)
                .await
                .unwrap()
        );
        assert!(
            !admin::retry(&queue, Scope::Workspace("ws-b"), &dead)
                .await
                .unwrap()
        );

        assert!(
            admin::retry(&queue, Scope::Workspace("ws-a"), &dead)
                .await
                .unwrap()
        );
        let retried = job(&db, &dead).await;
        assert_eq!((retried.state, retried.attempts), (JobState::Queued, 0));
        assert_eq!(retried.last_error.as_deref(), Some("broken"));

        assert!(
            admin::cancel(&queue, Scope::Workspace("ws-a"), &ids[0])
                .await
                .unwrap()
        );
        assert_eq!(job(&db, &ids[0]).await.state, JobState::Cancelled);
        assert!(
            !admin::cancel(&queue, Scope::All, &ids[0]).await.unwrap(),
            "cancelled once"
        );
        let running = lease::claim(&db, T0, claim_as("w", 1))
            .await
            .unwrap()
            .remove(0);
        assert!(
            !admin::cancel(&queue, Scope::All, &running.id)
                .await
                .unwrap(),
            "running jobs are not cancelled"
        );
        assert_eq!(admin::queue_depth(&db, T0).await.unwrap(), 5);

        queue.clock().advance(Duration::from_secs(10));
        assert_eq!(
            admin::prune(&db, queue.clock().now_ms()).await.unwrap(),
            1,
            "the cancelled job"
        );
    }
);

both_backends!(local_enqueue_wakes_an_idle_pool, |db: Db| async move {
    let queue = Queue::new(db.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let pool =
        WorkerPool::new(queue.clone(), counting(runs.clone()), config).spawn(shutdown.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = enqueue(&queue, NewJob::new("ok", &())).await;
    tokio::time::timeout(
        Duration::from_secs(5),
        wait_for_state(&db, &id, JobState::Succeeded),
    )
    .await
    .expect("woken without waiting an hour");
    shutdown.cancel();
    assert_eq!(pool.await.unwrap().succeeded, 1);
});

// The dispatcher writes completions in its claim rounds; one that finishes while another job
// holds a slot, or while the queue is idle (nothing to claim for an hour), is written at once.
both_backends!(
    completions_are_written_while_busy_and_while_idle,
    |db: Db| async move {
        let queue = Queue::new(db.clone());
        let go = Arc::new(Notify::new());
        let go_rx = go.clone();
        let registry = Registry::new()
            .register(
                "hold",
                handler_fn(move |_ctx, _p: Value| {
                    let go = go_rx.clone();
                    async move {
                        go.notified().await;
                        Ok(())
                    }
                }),
            )
            .register("ok", handler_fn(|_ctx, _p: Value| async { Ok(()) }));
        let hold = enqueue(&queue, NewJob::new("hold", &()).priority(1)).await;
        let ok = enqueue(&queue, NewJob::new("ok", &())).await;
        let config = WorkerConfig {
            concurrency: 2,
            poll_interval: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        let shutdown = CancellationToken::new();
        let pool = WorkerPool::new(queue.clone(), registry, config).spawn(shutdown.clone());
        tokio::time::timeout(
            Duration::from_secs(5),
            wait_for_state(&db, &ok, JobState::Succeeded),
        )
        .await
        .expect("completed while the other job runs");
        assert_eq!(job(&db, &hold).await.state, JobState::Running);
        // The queue is empty now, so the pool is idle for an hour.
        tokio::time::sleep(Duration::from_millis(100)).await;
        go.notify_one();
        tokio::time::timeout(
            Duration::from_secs(5),
            wait_for_state(&db, &hold, JobState::Succeeded),
        )
        .await
        .expect("completed without waiting for the poll interval");
        shutdown.cancel();
        let report = pool.await.unwrap();
        assert_eq!((report.claimed, report.succeeded), (2, 2), "{report:?}");
    }
);

both_backends!(heartbeats_keep_a_long_job_leased, |db: Db| async move {
    let queue = Queue::new(db.clone());
    let registry = Registry::new().register(
        "long",
        handler_fn(|_ctx, _p: Value| async {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            Ok(())
        }),
    );
    let config = WorkerConfig {
        lease: Duration::from_millis(400),
        heartbeat: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let id = enqueue(&queue, NewJob::new("long", &())).await;
    let shutdown = CancellationToken::new();
    let pool = WorkerPool::new(queue.clone(), registry, config).spawn(shutdown.clone());
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let rival = lease::claim(&db, tidepost_domain::now_ms(), claim_as("rival", 1))
            .await
            .unwrap();
        assert!(rival.is_empty(), "the lease was kept alive");
    }
    wait_for_state(&db, &id, JobState::Succeeded).await;
    assert_eq!(job(&db, &id).await.attempts, 1);
    shutdown.cancel();
    pool.await.unwrap();
});

both_backends!(
    handler_transactions_complete_exactly_once,
    |db: Db| async move {
        let queue = queue(&db);
        sqlx::query("CREATE TABLE ledger (job_id TEXT NOT NULL, attempt BIGINT NOT NULL)")
            .execute(db.pool())
            .await
            .unwrap();
        let (entered, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (entered_tx, go_rx) = (entered.clone(), go.clone());
        let registry = Registry::new().register(
            "ledger",
            handler_fn(move |ctx, _p: Value| {
                let (entered, go) = (entered_tx.clone(), go_rx.clone());
                async move {
                    if ctx.attempt() == 1 {
                        entered.notify_one();
                        go.notified().await;
                    }
                    let mut tx = ctx.transaction().await?;
                    sqlx::query("INSERT INTO ledger (job_id, attempt) VALUES ($1, $2)")
                        .bind(ctx.id())
                        .bind(ctx.attempt())
                        .execute(&mut *tx)
                        .await?;
                    ctx.complete_in(&mut tx).await?;
                    tx.commit().await?;
                    Ok(())
                }
            }),
        );
        let id = enqueue(&queue, NewJob::new("ledger", &())).await;
        let shutdown = CancellationToken::new();
        let one_slot = WorkerConfig {
            concurrency: 1,
            ..WorkerConfig::default()
        };
        let stalled =
            WorkerPool::new(queue.clone(), registry.clone(), one_slot).spawn(shutdown.clone());
        entered.notified().await;

        // The first worker stalls past its lease; another takes the job and finishes it; then the
        // first wakes up and tries to write.
        queue.clock().advance(Duration::from_secs(61));
        let report = drain_due(&queue, &registry, None, 10).await.unwrap();
        assert_eq!(report.succeeded, 1, "{report:?} {:?}", job(&db, &id).await);
        go.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.cancel();
        let stalled = stalled.await.unwrap();
        assert_eq!((stalled.succeeded, stalled.lost + stalled.retrying), (0, 1));

        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT job_id, attempt FROM ledger")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let done = job(&db, &id).await;
        assert_eq!(rows.len(), 1, "written once: {rows:?}");
        assert_eq!((done.state, rows[0].1), (JobState::Succeeded, 2));
    }
);

async fn wait_for_state(db: &Db, id: &str, state: JobState) {
    for _ in 0..500 {
        if job(db, id).await.state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never reached {state}: {:?}", job(db, id).await);
}

// A handler's "wait and look again" (a provider still processing, a rate-limit slot) is not a
// failure: the job stores no error, is not counted as failed, and looks again after the wait;
// only running out of attempts while still waiting makes it dead, with the wait as the reason.
both_backends!(waiting_is_not_an_error, |db: Db| async move {
    let queue = queue(&db);
    let seen = Arc::new(AtomicUsize::new(0));
    let runs = seen.clone();
    let registry = Registry::new().register_with(
        "poll",
        exact(3, 10, 15),
        handler_fn(move |_ctx, _payload: Value| {
            let runs = runs.clone();
            async move {
                match runs.fetch_add(1, Ordering::SeqCst) {
                    // A real failure first: it is the job's last error.
                    0 => Err(JobError::retryable("provider timed out")),
                    _ => Err(JobError::wait(
                        "the provider is still processing",
                        Duration::from_secs(7),
                    )),
                }
            }
        }),
    );
    let waiting = enqueue(&queue, NewJob::new("poll", &())).await;
    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");

    queue.clock().advance(Duration::from_secs(10));
    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    assert_eq!(
        (
            report.waiting,
            report.retrying,
            report.dead,
            report.exit_code()
        ),
        (1, 0, 0, 0),
        "{report:?}"
    );
    let after_wait = job(&db, &waiting).await;
    assert_eq!(after_wait.state, JobState::Queued);
    assert_eq!(after_wait.run_at, queue.clock().now_ms() + 7 * SECOND);
    assert_eq!(after_wait.attempts, 2);
    // The wait is not stored as an error: the last error is still the real one.
    assert_eq!(after_wait.last_error.as_deref(), Some("provider timed out"));

    // A job that only ever waited has no error at all.
    let fresh = enqueue(
        &queue,
        NewJob::new("poll", &json!({"n": 2})).idempotency_key("second"),
    )
    .await;
    queue.clock().advance(Duration::from_secs(7));
    let report = drain_due(&queue, &registry, None, 10).await.unwrap();
    // The first job's third attempt waits again with no attempt left: dead, and says why.
    assert_eq!((report.waiting, report.dead), (1, 1), "{report:?}");
    let fresh_job = job(&db, &fresh).await;
    assert_eq!(
        (fresh_job.state, fresh_job.last_error),
        (JobState::Queued, None)
    );
    let spent = job(&db, &waiting).await;
    assert_eq!(spent.state, JobState::Dead);
    assert!(
        spent
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("still waiting") && e.contains("still processing")),
        "{:?}",
        spent.last_error
    );
});
