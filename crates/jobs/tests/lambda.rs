//! The Lambda entry under the real `lambda_runtime` loop, against a small stand-in of the
//! Lambda Runtime API. Run with `cargo test -p tidepost-jobs --features lambda --test lambda`.
#![cfg(feature = "lambda")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tidepost_jobs::admin::{self, Scope};
use tidepost_jobs::{JobError, JobState, NewJob, Queue, Registry, handler_fn};
use tidepost_store::testing::{Backend, TestDb};
use tokio::sync::{Notify, mpsc};

/// The stand-in: hands out queued events on `next` and collects what the function answers.
#[derive(Clone)]
struct RuntimeApi {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    event_ready: Arc<Notify>,
    answers: mpsc::UnboundedSender<(String, Result<Value, Value>)>,
}

async fn next(State(api): State<RuntimeApi>) -> (HeaderMap, String) {
    loop {
        let ready = api.event_ready.notified();
        if let Some((id, event)) = api.events.lock().unwrap().pop_front() {
            let deadline = tidepost_domain::now_ms() + 60_000;
            let mut headers = HeaderMap::new();
            headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            headers.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:test:0:function:jobs".parse().unwrap(),
            );
            return (headers, event.to_string());
        }
        ready.await;
    }
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    let _ = api
        .answers
        .send((id, Ok(serde_json::from_str(&body).unwrap_or(Value::Null))));
    "{\"status\":\"OK\"}"
}

async fn error(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: String,
) -> &'static str {
    let _ = api
        .answers
        .send((id, Err(serde_json::from_str(&body).unwrap_or(Value::Null))));
    "{\"status\":\"OK\"}"
}

impl RuntimeApi {
    fn invoke(&self, id: &str, event: Value) {
        self.events
            .lock()
            .unwrap()
            .push_back((id.to_string(), event));
        self.event_ready.notify_waiters();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_loop_drains_due_jobs_per_invocation() {
    // One test for both backends: the runtime reads its endpoint from the process environment.
    for backend in [Backend::Sqlite, Backend::Postgres] {
        drains_on(backend).await;
    }
}

async fn drains_on(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let queue = Queue::new(test_db.db.clone());
    for n in 0..5 {
        queue.enqueue(NewJob::new("ok", &n)).await.unwrap();
    }
    let fatal = queue.enqueue(NewJob::new("fatal", &())).await.unwrap().id;
    let registry = Registry::new()
        .register("ok", handler_fn(|_ctx, _n: u32| async { Ok(()) }))
        .register(
            "fatal",
            handler_fn(|_ctx, _p: Value| async { Err(JobError::permanent("refused")) }),
        );

    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        events: Default::default(),
        event_ready: Default::default(),
        answers: answers_tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // SAFETY: this test binary has this one test, and nothing else reads the environment while
    // it is being set.
    unsafe {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", address.to_string());
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "tidepost-jobs");
        std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "1");
    }
    let function = tokio::spawn(tidepost_jobs::lambda::run(queue.clone(), registry));

    api.invoke("first", json!({"kinds": ["ok"], "max_jobs": 3}));
    let (id, first) = answer(&mut answers).await;
    assert_eq!(id, "first");
    let first = first.expect("the invocation succeeded");
    assert_eq!(
        (first["claimed"].as_u64(), first["succeeded"].as_u64()),
        (Some(3), Some(3)),
        "{first}"
    );

    // A scheduled event's payload is not a drain request: everything due is drained.
    api.invoke(
        "second",
        json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
    );
    let (id, second) = answer(&mut answers).await;
    assert_eq!(id, "second");
    let second = second.expect("the invocation succeeded");
    assert_eq!(
        (
            second["claimed"].as_u64(),
            second["succeeded"].as_u64(),
            second["dead"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );

    let counts = admin::counts(&test_db.db, Scope::All).await.unwrap();
    let finished: i64 = counts
        .iter()
        .filter(|c| c.state.is_final())
        .map(|c| c.count)
        .sum();
    assert_eq!(finished, 6);
    let dead = admin::get(&test_db.db, Scope::All, &fatal)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (dead.state, dead.last_error.as_deref()),
        (JobState::Dead, Some("refused"))
    );

    function.abort();
    server.abort();
}

async fn answer(
    answers: &mut mpsc::UnboundedReceiver<(String, Result<Value, Value>)>,
) -> (String, Result<Value, Value>) {
    tokio::time::timeout(Duration::from_secs(30), answers.recv())
        .await
        .expect("the function answered")
        .unwrap()
}
