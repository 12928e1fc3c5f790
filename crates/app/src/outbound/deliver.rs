//! One delivery attempt per job run, the retry schedule, disabling endpoints that keep
//! failing, and manual re-sends. See the [module docs](super) for the rules.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, handler_fn};
use tidepost_store::webhook_deliveries::{
    self, Attempt, Delivery, FAILED, Outcome, PENDING, SUCCEEDED,
};
use tidepost_store::webhook_endpoints::{self, Endpoint};
use tidepost_store::{StoreError, events};

use super::{endpoints, policy, signing};
use crate::App;
use crate::net_guard;

/// The job kind: one attempt of one delivery.
pub const DELIVER: &str = "webhooks.deliver";

/// The wait before each automatic attempt: the first at once, then 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h and 10 h; after the eighth the delivery has failed.
pub const SCHEDULE: [Duration; 8] = [
    Duration::from_secs(0),
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How much of a receiver's answer is kept.
pub const EXCERPT_BYTES: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverJob {
    pub delivery_id: String,
    /// A re-send: one attempt, outside the retry schedule.
    #[serde(default)]
    pub manual: bool,
}

/// The job of a delivery's automatic retries: enqueued when its first attempt (made by the
/// dispatcher) fails, or when that attempt was interrupted. One per delivery (its key).
pub fn job(delivery: &Delivery) -> NewJob {
    NewJob::new(
        DELIVER,
        &DeliverJob {
            delivery_id: delivery.id.clone(),
            manual: false,
        },
    )
    .workspace(&delivery.workspace_id)
    .idempotency_key(format!("{DELIVER}:{}", delivery.id))
}

pub fn register(registry: Registry, app: &App) -> Registry {
    // The handler follows SCHEDULE itself (it says when to retry); the policy only bounds
    // re-runs after a worker died mid-attempt.
    let policy = RetryPolicy::new(40, Duration::from_secs(5), Duration::from_secs(3600));
    let app = app.clone();
    registry.register_with(
        DELIVER,
        policy,
        handler_fn(move |ctx: JobContext, job: DeliverJob| {
            let app = app.clone();
            async move { run(&app, &ctx, &job).await }
        }),
    )
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

impl Sent {
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// One line for `last_error` and the job.
    pub fn summary(&self) -> String {
        match (&self.error, self.status) {
            (Some(error), _) => error.clone(),
            (None, Some(status)) => format!("the receiver answered {status}"),
            (None, None) => "no answer".to_string(),
        }
    }
}

async fn run(app: &App, ctx: &JobContext, job: &DeliverJob) -> Result<(), JobError> {
    let Some(workspace_id) = ctx.workspace_id() else {
        return Err(JobError::permanent(
            "a webhook delivery job without a workspace",
        ));
    };
    let db = &app.db;
    let Some(delivery) = webhook_deliveries::get(db, workspace_id, &job.delivery_id).await? else {
        return Ok(()); // Its endpoint was deleted.
    };
    if !job.manual && delivery.state != PENDING {
        return Ok(()); // Settled meanwhile (a re-send got it through, the endpoint was disabled).
    }
    let Some(endpoint) = webhook_endpoints::get(db, workspace_id, &delivery.endpoint_id).await?
    else {
        return Ok(());
    };
    let now = ctx.clock().now_ms();
    if !endpoint.enabled() {
        if delivery.state == PENDING {
            let reason = format!(
                "not sent: the endpoint is disabled ({})",
                endpoint
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            );
            settle(app, &delivery, FAILED, None, Some(&reason), None, now).await?;
        }
        return Ok(());
    }
    let sent = send(app, &endpoint, &delivery).await;
    let status = sent.status.map(i64::from);
    let done_at = ctx.clock().now_ms();
    let summary = sent.summary();
    // The attempt is counted with its outcome, in one transaction: a worker that dies
    // mid-request leaves nothing, and its job's next run makes the attempt again.
    let mut tx = db.begin_write().await?;
    let Some((attempt, auto_attempts)) = webhook_deliveries::count_attempt_in(
        &mut tx,
        workspace_id,
        &delivery.id,
        !job.manual,
        done_at,
    )
    .await?
    else {
        return Ok(()); // Deleted meanwhile (the transaction rolls back).
    };
    webhook_deliveries::record_attempt_in(
        &mut tx,
        &Attempt {
            id: tidepost_domain::new_id(),
            workspace_id: workspace_id.to_string(),
            delivery_id: delivery.id.clone(),
            attempt,
            cause: if job.manual { "manual" } else { "auto" }.to_string(),
            url: endpoint.url.clone(),
            status_code: status,
            latency_ms: sent.latency_ms,
            response_excerpt: sent.excerpt.clone(),
            error: sent.error.clone(),
            started_at: now,
        },
    )
    .await?;
    if sent.delivered() {
        let outcome = Outcome {
            state: SUCCEEDED,
            status,
            error: None,
            next_attempt_at: None,
        };
        webhook_deliveries::settle_in(&mut tx, workspace_id, &delivery.id, &outcome, done_at)
            .await?;
        webhook_endpoints::record_success_in(&mut tx, workspace_id, &endpoint.id, done_at).await?;
        tx.commit().await?;
        return Ok(());
    }
    if job.manual {
        // A re-send is one attempt: a pending delivery keeps its schedule, a failed one stays
        // failed with this answer.
        if delivery.state == FAILED {
            let outcome = Outcome {
                state: FAILED,
                status,
                error: Some(&summary),
                next_attempt_at: None,
            };
            webhook_deliveries::settle_in(&mut tx, workspace_id, &delivery.id, &outcome, done_at)
                .await?;
        }
        tx.commit().await?;
        return Ok(());
    }
    let next = usize::try_from(auto_attempts)
        .ok()
        .and_then(|n| SCHEDULE.get(n))
        .copied();
    match next {
        Some(wait) => {
            let at = done_at + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            let outcome = Outcome {
                state: PENDING,
                status,
                error: Some(&summary),
                next_attempt_at: Some(at),
            };
            webhook_deliveries::settle_in(&mut tx, workspace_id, &delivery.id, &outcome, done_at)
                .await?;
            tx.commit().await?;
            Err(JobError::retryable(format!(
                "attempt {auto_attempts} of {}: {summary}",
                SCHEDULE.len()
            ))
            .retry_after(wait))
        }
        None => {
            let outcome = Outcome {
                state: FAILED,
                status,
                error: Some(&summary),
                next_attempt_at: None,
            };
            webhook_deliveries::settle_in(&mut tx, workspace_id, &delivery.id, &outcome, done_at)
                .await?;
            tx.commit().await?;
            tracing::warn!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, "webhook delivery failed after every retry: {summary}");
            let streak =
                webhook_endpoints::record_final_failure(db, workspace_id, &endpoint.id, done_at)
                    .await?;
            if let Some(streak) = streak
                && streak >= i64::from(app.config.outbound.disable_after_failures)
            {
                disable_failing(app, &endpoint, streak).await?;
            }
            Ok(())
        }
    }
}

/// Makes the first automatic attempt of a delivery the dispatcher just created (with no
/// attempt counted yet) and records it ([`super::recorder`]): the attempt, the delivery counted
/// and settled, the endpoint's success and — when it failed — the retry job on [`SCHEDULE`]
/// are written in one transaction, so a crash leaves either nothing (the dispatch sweep then
/// finds the delivery stranded and retries it) or all of it. `keys` are the endpoint's signing
/// keys ([`endpoints::signing_keys`]), or why there are none.
pub async fn first_attempt(
    app: &App,
    endpoint: &Endpoint,
    keys: &Result<Vec<Vec<u8>>, String>,
    delivery: Delivery,
) -> Result<(), String> {
    let started_at = app.queue.clock().now_ms();
    let sent = send_with(app, endpoint, keys, &delivery).await;
    let attempt = Attempt {
        id: tidepost_domain::new_id(),
        workspace_id: delivery.workspace_id.clone(),
        delivery_id: delivery.id.clone(),
        attempt: 1,
        cause: "auto".to_string(),
        url: endpoint.url.clone(),
        status_code: sent.status.map(i64::from),
        latency_ms: sent.latency_ms,
        response_excerpt: sent.excerpt.clone(),
        error: sent.error.clone(),
        started_at,
    };
    super::recorder::record(
        app,
        super::recorder::Finished {
            delivery,
            attempt,
            sent,
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    delivery: &Delivery,
    state: &str,
    status: Option<i64>,
    error: Option<&str>,
    next_attempt_at: Option<i64>,
    now: i64,
) -> Result<bool, StoreError> {
    webhook_deliveries::settle(
        &app.db,
        &delivery.workspace_id,
        &delivery.id,
        &Outcome {
            state,
            status,
            error,
            next_attempt_at,
        },
        now,
    )
    .await
}

/// Disables an endpoint whose deliveries keep failing, once, and records `endpoint.disabled`.
async fn disable_failing(app: &App, endpoint: &Endpoint, streak: i64) -> Result<(), StoreError> {
    let reason = format!("{streak} deliveries in a row failed after every retry");
    if endpoints::set_disabled(app, &endpoint.workspace_id, &endpoint.id, &reason).await? {
        tracing::warn!(endpoint_id = %endpoint.id, workspace_id = %endpoint.workspace_id, "webhook endpoint disabled: {reason}");
        events::record(
            &app.db,
            &endpoint.workspace_id,
            "endpoint.disabled",
            Some(&endpoint.id),
            &json!({
                "endpoint_id": endpoint.id,
                "url": endpoint.url,
                "reason": reason,
                "failure_streak": streak,
            }),
        )
        .await?;
    }
    Ok(())
}

/// Unix seconds now (the receiver compares `webhook-timestamp` with its own wall clock, so
/// this is the system's, never a test's moved clock).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Makes one signed POST of the delivery to the endpoint, through the SSRF guard.
pub async fn send(app: &App, endpoint: &Endpoint, delivery: &Delivery) -> Sent {
    let keys = endpoints::signing_keys(app, endpoint, tidepost_domain::now_ms());
    send_with(app, endpoint, &keys, delivery).await
}

/// [`send`] with the endpoint's signing keys already opened (the dispatcher opens them once
/// per endpoint for all the deliveries it sends there).
pub async fn send_with(
    app: &App,
    endpoint: &Endpoint,
    keys: &Result<Vec<Vec<u8>>, String>,
    delivery: &Delivery,
) -> Sent {
    let started = Instant::now();
    let failed = |error: String| Sent {
        status: None,
        latency_ms: 0,
        excerpt: None,
        error: Some(error),
    };
    let policy = policy(app);
    let url = match net_guard::parse_url(&endpoint.url)
        .and_then(|url| net_guard::check_literal(&url, policy).map(|()| url))
    {
        Ok(url) => url,
        Err(err) => return failed(format!("refused: {err}")),
    };
    let keys = match keys {
        Ok(keys) => keys,
        Err(err) => return failed(err.clone()),
    };
    let timestamp = unix_now();
    let signature = signing::signature_header(
        keys,
        &delivery.event_id,
        timestamp,
        delivery.body.as_bytes(),
    );
    let timeout = Duration::from_secs(app.config.outbound.timeout_secs);
    let request = net_guard::client(policy)
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone());
    let result = request.send().await;
    let mut sent = match result {
        Err(err) => failed(describe(&err, timeout)),
        Ok(mut response) => {
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let excerpt = read_excerpt(&mut response).await;
            let error = status.is_redirection().then(|| {
                format!(
                    "the receiver answered {} (redirect{}); redirects are not followed",
                    status.as_u16(),
                    location.map(|l| format!(" to {l}")).unwrap_or_default()
                )
            });
            Sent {
                status: Some(status.as_u16()),
                latency_ms: 0,
                excerpt,
                error,
            }
        }
    };
    sent.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    sent
}

/// At most [`EXCERPT_BYTES`] of the answer, read chunk by chunk (a huge answer is not
/// downloaded), cut on a character boundary.
async fn read_excerpt(response: &mut reqwest::Response) -> Option<String> {
    let mut bytes: Vec<u8> = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    if bytes.is_empty() {
        return None;
    }
    bytes.truncate(EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    while text.len() > EXCERPT_BYTES {
        text.pop();
    }
    Some(text)
}

fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    if let Some(refused) = net_guard::refusal(err) {
        return format!("refused: {refused}");
    }
    if err.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs());
    }
    // The URL is on the attempt already; the causes say what went wrong.
    let mut text = String::from("the request failed");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_connect() {
        format!("could not connect: {text}")
    } else {
        text
    }
}

/// Why a re-send was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("the endpoint is disabled: enable it before re-sending")]
    EndpointDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jobs(#[from] tidepost_jobs::Error),
}

/// Makes one more attempt of a delivery at once (whatever its state); `Ok(None)` when there is
/// no such delivery in the workspace.
pub async fn resend(
    app: &App,
    workspace_id: &str,
    delivery_id: &str,
) -> Result<Option<Delivery>, ResendError> {
    let db = &app.db;
    let Some(delivery) = webhook_deliveries::get(db, workspace_id, delivery_id).await? else {
        return Ok(None);
    };
    let endpoint = webhook_endpoints::get(db, workspace_id, &delivery.endpoint_id).await?;
    if !endpoint.is_some_and(|e| e.enabled()) {
        return Err(ResendError::EndpointDisabled);
    }
    let Some(n) =
        webhook_deliveries::count_resend(db, workspace_id, delivery_id, tidepost_domain::now_ms())
            .await?
    else {
        return Ok(None);
    };
    let job = NewJob::new(
        DELIVER,
        &DeliverJob {
            delivery_id: delivery.id.clone(),
            manual: true,
        },
    )
    .workspace(workspace_id)
    .priority(1)
    .idempotency_key(format!("{DELIVER}:{}:resend:{n}", delivery.id));
    app.queue.enqueue(job).await?;
    tracing::info!(delivery_id, workspace_id, "webhook delivery re-sent");
    Ok(webhook_deliveries::get(db, workspace_id, delivery_id).await?)
}
