//! The dispatch sweep: new events of the log → one delivery (and its job) per subscribed
//! endpoint, exactly once. See the [module docs](super).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_domain::now_ms;
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{JobContext, JobError, Registry, RetryPolicy, handler_fn};
use tidepost_store::webhook_deliveries::{self, Candidate, Delivery, PENDING, Position};
use tidepost_store::webhook_endpoints::{self, Endpoint};

use tokio::sync::OwnedSemaphorePermit;

use super::{deliver, endpoints, event_type_names};
use crate::App;

/// The sweep's job kind and schedule name.
pub const DISPATCH: &str = "webhooks.dispatch";

/// How far before its cursor each sweep looks again: an event is stamped when it is written
/// but becomes visible when its transaction commits, and instances' clocks differ a little.
/// Re-read events cost an index probe each: their deliveries exist.
pub const LOOKBACK_MS: i64 = 60_000;

/// Candidates handled per transaction.
const PAGE: i64 = 200;

/// First attempts a process has in flight at once, from the delivery's creation to its recorded
/// outcome (the dispatcher's own, beside the workers' jobs): enough for the group writer to
/// record many per transaction while the next ones are being sent.
pub const DIRECT_CONCURRENCY: usize = 128;

/// How far before the start of its previous dispatch the listener reads: in this process an
/// event is announced once committed, so only a write that waited between its timestamp and
/// its commit can be older; the sweep, with its minute of look-back, catches any slower one.
const LISTENER_LOOKBACK_MS: i64 = 500;

/// The permits the dispatcher waits for after a full page (see `take_permits`).
const BATCH: usize = 64;

/// See [`stranded_after_ms`].
const STRANDED_MARGIN_MS: i64 = 60_000;

/// How often (per process) the sweep looks for interrupted first attempts.
const STRANDED_EVERY_MS: i64 = 30_000;

/// When the listener looks again after events recorded inside a transaction.
const IN_TRANSACTION_RECHECKS: [Duration; 2] =
    [Duration::from_millis(20), Duration::from_millis(200)];

#[derive(Debug, Deserialize)]
struct Empty {}

pub fn register(registry: Registry, app: &App) -> Registry {
    let app = app.clone();
    registry.register_with(
        DISPATCH,
        RetryPolicy::new(3, Duration::from_secs(1), Duration::from_secs(10)),
        handler_fn(move |_ctx: JobContext, _: Empty| {
            let app = app.clone();
            async move {
                start_listener(&app);
                // One sweep at a time per process: under load a sweep outlasts its interval,
                // and the next ones would read the same candidates and take the same permits
                // only to find the deliveries made.
                let Some(_sweeping) = Sweeping::start(&app) else {
                    return Ok(());
                };
                dispatch(&app).await.map_err(JobError::retryable)?;
                Ok(())
            }
        }),
    )
}

/// This process's sweep in progress; cleared when dropped, even if the sweep is cut short.
struct Sweeping(App);

impl Sweeping {
    fn start(app: &App) -> Option<Self> {
        (!app.outbound.sweeping.swap(true, Ordering::SeqCst)).then(|| Self(app.clone()))
    }
}

impl Drop for Sweeping {
    fn drop(&mut self) {
        self.0.outbound.sweeping.store(false, Ordering::SeqCst);
    }
}

pub async fn ensure_schedule(app: &App) -> tidepost_jobs::Result<()> {
    let every = Duration::from_millis(app.config.outbound.dispatch_interval_ms);
    schedule::ensure(
        &app.queue,
        &Schedule::every(DISPATCH, every, DISPATCH, json!({})),
    )
    .await
}

/// The webhook body of an event: `{"type", "timestamp", "data"}` (Standard Webhooks).
pub fn body(event_type: &str, created_at: i64, payload: &str) -> String {
    let data: Value =
        serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_string()));
    json!({
        "type": event_type,
        "timestamp": tidepost_domain::time::rfc3339(created_at),
        "data": data,
    })
    .to_string()
}

/// Turns every new (event, endpoint) pair into a delivery and makes its first attempt;
/// returns how many deliveries this call created (once their first attempts are recorded).
///
/// Reads from the cursor less [`LOOKBACK_MS`]. The delivery rows are inserted with no attempt
/// counted, a page per statement; only the call whose insert created a row sends it, so two
/// dispatchers (two instances, the sweep and the in-process listener) never both send one. The
/// first attempts are recorded in groups ([`super::recorder`]), each with its count, its
/// outcome and (when it failed) its retry job; a first attempt cut short by a crash is found by
/// [`recover_stranded_now`].
pub async fn dispatch(app: &App) -> Result<usize, tidepost_jobs::Error> {
    let started = now_ms();
    let since = webhook_deliveries::cursor(&app.db)
        .await?
        .map_or(0, |position| position - LOOKBACK_MS);
    let created = dispatch_since(app, since, true).await?;
    webhook_deliveries::advance_cursor(&app.db, started, started).await?;
    recover_stranded(app, started).await;
    prune_sweeps(app, started).await;
    Ok(created)
}

/// An endpoint as the dispatcher sends to it: its row and its signing keys, opened once per
/// call for all its deliveries.
struct Target {
    endpoint: Endpoint,
    keys: Result<Vec<Vec<u8>>, String>,
}

/// Dispatches the events created after `since`; with `wait` false it returns once the
/// deliveries exist and their first attempts have started (the listener: a slow receiver must
/// not hold up the next events).
async fn dispatch_since(app: &App, since: i64, wait: bool) -> Result<usize, tidepost_jobs::Error> {
    let types = event_type_names();
    let mut created = 0;
    let mut sending = Vec::new();
    let mut targets: HashMap<String, Option<Arc<Target>>> = HashMap::new();
    let mut after: Option<Position> = None;
    let mut full = false;
    let mut outcome = Ok(());
    // Every page's pairs get their delivery and the next query starts where the page ended;
    // the bound only guards against a bug turning this into a busy loop.
    for _ in 0..10_000 {
        // The permits come first, one per delivery of the page: a delivery is created only
        // when its first attempt can start at once, so that the time from its creation to its
        // recorded attempt is bounded by the request timeout (see `stranded_after_ms`).
        let mut permits = take_permits(app, full).await;
        let limit = i64::try_from(permits.num_permits()).unwrap_or(PAGE);
        let page = match webhook_deliveries::candidates_after(
            &app.db,
            since,
            after.as_ref(),
            &types,
            limit,
        )
        .await
        {
            Ok(page) => page,
            Err(err) => {
                outcome = Err(err.into());
                break;
            }
        };
        let Some(last) = page.last() else {
            break;
        };
        full = page.len() == permits.num_permits();
        after = Some((
            last.event_created_at,
            last.event_id.clone(),
            last.endpoint_id.clone(),
        ));
        let inserted = match insert_page(app, &page).await {
            Ok(inserted) => inserted,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        };
        created += inserted.len();
        for delivery in inserted {
            let target = match targets.get(&delivery.endpoint_id) {
                Some(found) => found.clone(),
                None => {
                    let found = match webhook_endpoints::get(
                        &app.db,
                        &delivery.workspace_id,
                        &delivery.endpoint_id,
                    )
                    .await
                    {
                        Ok(found) => found.map(|endpoint| {
                            let keys = endpoints::signing_keys(app, &endpoint, now_ms());
                            Arc::new(Target { endpoint, keys })
                        }),
                        Err(err) => {
                            tracing::warn!(
                                "reading a webhook endpoint failed (the sweep retries its delivery): {err}"
                            );
                            continue;
                        }
                    };
                    targets.insert(delivery.endpoint_id.clone(), found.clone());
                    found
                }
            };
            let Some(target) = target else {
                continue; // Deleted meanwhile: its deliveries went with it.
            };
            let Some(permit) = permits.split(1) else {
                break; // Cannot happen: the page is no longer than the permits.
            };
            let app = app.clone();
            sending.push(tokio::spawn(async move {
                let _permit = permit;
                let id = delivery.id.clone();
                if let Err(err) =
                    deliver::first_attempt(&app, &target.endpoint, &target.keys, delivery).await
                {
                    tracing::warn!(delivery_id = %id, "recording a webhook attempt failed (the sweep retries it): {err}");
                }
            }));
        }
    }
    if wait {
        for task in sending {
            let _ = task.await;
        }
    }
    outcome.map(|()| created)
}

/// The dispatcher's permits for its next page: after a full page (more are likely waiting) a
/// [`BATCH`] of them, else one — waiting for them — and as many more as are free at once, up to
/// a page. Waiting for a batch keeps pages (and the recorder's groups) large under load instead
/// of taking each permit as the attempt holding it is recorded.
async fn take_permits(app: &App, batch: bool) -> OwnedSemaphorePermit {
    let semaphore = &app.outbound.permits;
    let first = if batch { BATCH } else { 1 };
    let mut permits = semaphore
        .clone()
        .acquire_many_owned(u32::try_from(first).unwrap_or(1))
        .await
        .expect("the dispatcher's semaphore is never closed");
    let more = semaphore
        .available_permits()
        .min(usize::try_from(PAGE).unwrap_or(200) - first);
    if more > 0
        && let Ok(extra) = semaphore
            .clone()
            .try_acquire_many_owned(u32::try_from(more).unwrap_or(1))
    {
        permits.merge(extra);
    }
    permits
}

/// Inserts a page of deliveries (no attempt counted yet) with one statement, through the
/// dispatcher's writer ([`super::recorder`]); returns the ones this call created (the ones it
/// must send).
async fn insert_page(app: &App, page: &[Candidate]) -> Result<Vec<Delivery>, tidepost_jobs::Error> {
    let now = app.queue.clock().now_ms();
    let deliveries: Vec<Delivery> = page
        .iter()
        .map(|candidate| Delivery {
            id: tidepost_domain::new_id(),
            workspace_id: candidate.workspace_id.clone(),
            endpoint_id: candidate.endpoint_id.clone(),
            event_id: candidate.event_id.clone(),
            event_type: candidate.event_type.clone(),
            body: body(
                &candidate.event_type,
                candidate.event_created_at,
                &candidate.payload,
            ),
            state: PENDING.to_string(),
            attempts: 0,
            auto_attempts: 0,
            resends: 0,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
            event_created_at: candidate.event_created_at,
            created_at: now,
            updated_at: now,
            finished_at: None,
        })
        .collect();
    super::recorder::insert(app, deliveries)
        .await
        .map_err(tidepost_jobs::Error::Database)
}

/// How long a delivery may stay without its first attempt recorded before that attempt is
/// taken for interrupted: the longest a request may take (the dispatcher creates a delivery
/// only when it can start its attempt at once), plus a margin for a slow database.
fn stranded_after_ms(app: &App) -> i64 {
    i64::try_from(app.config.outbound.timeout_secs).unwrap_or(120) * 1000 + STRANDED_MARGIN_MS
}

/// Enqueues the retry job of every delivery whose first attempt was interrupted (see
/// [`webhook_deliveries::stranded`]). The job's idempotency key is the one a failed first
/// attempt would have used, so sweeps of several instances enqueue it once. At most every
/// [`STRANDED_EVERY_MS`] per process.
async fn recover_stranded(app: &App, now: i64) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let last = LAST.load(Ordering::Relaxed);
    if now - last < STRANDED_EVERY_MS
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let Err(err) = recover_stranded_now(app).await {
        tracing::warn!("re-queueing interrupted webhook deliveries failed: {err}");
    }
}

/// [`recover_stranded_now`].without its rate limit; returns how many jobs were enqueued.
pub async fn recover_stranded_now(app: &App) -> Result<usize, tidepost_jobs::Error> {
    let before = app.queue.clock().now_ms() - stranded_after_ms(app);
    let now = app.queue.clock().now_ms();
    let stranded = webhook_deliveries::stranded(&app.db, before, PAGE).await?;
    let mut enqueued = 0;
    for delivery in &stranded {
        // The job and the touch together: the next sweep leaves the delivery to its job (and
        // looks again only if that job too has not recorded an attempt after a full wait).
        let mut tx = app.db.begin_write().await?;
        let job = app
            .queue
            .enqueue_in(&mut tx, deliver::job(delivery))
            .await?;
        webhook_deliveries::touch_in(&mut tx, &delivery.workspace_id, &delivery.id, now).await?;
        tx.commit().await?;
        if job.created {
            tracing::warn!(delivery_id = %delivery.id, "a webhook delivery's first attempt was interrupted: retrying it");
            enqueued += 1;
        }
    }
    Ok(enqueued)
}

/// Starts (once per app) the in-process listener that dispatches as soon as this process
/// records an event, instead of waiting for the next sweep; called by the sweep's handler, so
/// it runs only in processes that run workers. It holds the app weakly and ends with it.
pub fn start_listener(app: &App) {
    if app.outbound.listener_started.swap(true, Ordering::SeqCst) {
        return;
    }
    let weak = app.downgrade();
    let mut recorded = tidepost_store::events::recorded().subscribe();
    tokio::spawn(async move {
        let mut seen = *recorded.borrow_and_update();
        // When the listener's last dispatch that went through started: the next one reads
        // from a little before it rather than from the shared cursor less a minute, so a
        // burst of events is not read again on every announcement.
        let mut last: Option<i64> = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(1), recorded.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    if weak.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            }
            let now = *recorded.borrow_and_update();
            let Some(app) = App::upgrade(&weak) else {
                return;
            };
            listen_once(&app, &mut last).await;
            // Events recorded inside a transaction were announced before it committed: look
            // again shortly, when it most likely has (the sweep catches any later commit).
            if now.in_transaction != seen.in_transaction {
                for wait in IN_TRANSACTION_RECHECKS {
                    tokio::time::sleep(wait).await;
                    listen_once(&app, &mut last).await;
                }
            }
            seen = now;
        }
    });
}

/// One dispatch of the listener (see [`start_listener`]).
async fn listen_once(app: &App, last: &mut Option<i64>) {
    let started = now_ms();
    let since = match *last {
        Some(at) => Ok(at - LISTENER_LOOKBACK_MS),
        None => webhook_deliveries::cursor(&app.db)
            .await
            .map(|cursor| cursor.map_or(0, |position| position - LOOKBACK_MS)),
    };
    let done = match since {
        Ok(since) => dispatch_since(app, since, false).await,
        Err(err) => Err(err.into()),
    };
    match done {
        Ok(_) => *last = Some(started),
        Err(err) => tracing::debug!("webhook dispatch on a recorded event failed: {err}"),
    }
}

/// The sweep runs every second and each run is a job row: keep only the last hour of them.
/// Done at most every ten minutes per process; a cheap, kind-scoped delete.
async fn prune_sweeps(app: &App, now: i64) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let last = LAST.load(Ordering::Relaxed);
    if now - last < 600_000
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let pruned = sqlx::query(
        "DELETE FROM jobs WHERE kind = $1 AND state = 'succeeded' AND finished_at < $2",
    )
    .bind(DISPATCH)
    .bind(now - 3_600_000)
    .execute(app.db.pool())
    .await;
    if let Err(err) = pruned {
        tracing::debug!("pruning old dispatch sweeps failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use tidepost_store::testing::{Backend, TestDb};
    use tidepost_store::webhook_deliveries::SUCCEEDED;
    use tidepost_store::{Db, both_backends};
    use tidepost_vault::Keyring;

    use super::*;
    use crate::config::{Config, RawSettings};
    use crate::outbound::endpoints::{self, NewEndpoint};
    use crate::providers::Providers;

    fn app(db: &Db) -> App {
        app_with_keys(db, Keyring::generate_key_text().expose_secret())
    }

    fn app_with_keys(db: &Db, keys: &str) -> App {
        let raw = RawSettings::gather(&[("sandbox", "true".into())], |_| None, None).unwrap();
        let config = Config::from_raw(&raw).unwrap();
        let providers = Providers::from_config(&config, None);
        App::new(config, db.clone(), Keyring::parse(keys).unwrap(), providers)
    }

    async fn count(db: &Db, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
    }

    both_backends!(
        concurrent_sweeps_deliver_each_event_once,
        |db: Db| async move {
            let app = app(&db);
            let ws = tidepost_store::workspaces::create(&db, "w", "W")
                .await
                .unwrap()
                .id;
            let endpoint = |types: &[&str]| NewEndpoint {
                url: "http://127.0.0.1:9/hook".into(),
                event_types: types.iter().map(|t| t.to_string()).collect(),
                enabled: true,
                ..Default::default()
            };
            endpoints::create(&app, &ws, endpoint(&[])).await.unwrap();
            endpoints::create(&app, &ws, endpoint(&["post.failed"]))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            for i in 0..30 {
                let kind = if i % 3 == 0 {
                    "post.failed"
                } else {
                    "post.published"
                };
                tidepost_store::events::record(&db, &ws, kind, None, &json!({"n": i}))
                    .await
                    .unwrap();
            }
            // Four sweeps at once, as four instances would run them.
            let (a, b, c, d) = tokio::join!(
                dispatch(&app),
                dispatch(&app),
                dispatch(&app),
                dispatch(&app)
            );
            let created = a.unwrap() + b.unwrap() + c.unwrap() + d.unwrap();
            // 30 events for the catch-all endpoint, 10 failures for the other.
            assert_eq!(created, 40);
            assert_eq!(
                count(&db, "SELECT COUNT(*) FROM webhook_deliveries").await,
                40
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM jobs WHERE kind = 'webhooks.deliver'"
                )
                .await,
                40,
                "one retry job per delivery (the receiver refuses every first attempt)"
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM webhook_attempts WHERE attempt = 1 AND cause = 'auto'"
                )
                .await,
                40,
                "each first attempt made once, by the dispatcher that created the delivery"
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(DISTINCT event_id || endpoint_id) FROM webhook_deliveries"
                )
                .await,
                40
            );
            // A later sweep re-reads the look-back window and creates nothing.
            assert_eq!(dispatch(&app).await.unwrap(), 0);
            assert!(webhook_deliveries::cursor(&db).await.unwrap().is_some());
            let body: String = sqlx::query_scalar("SELECT body FROM webhook_deliveries LIMIT 1")
                .fetch_one(db.pool())
                .await
                .unwrap();
            let body: Value = serde_json::from_str(&body).unwrap();
            assert!(
                body["type"].is_string()
                    && body["timestamp"].is_string()
                    && body["data"]["n"].is_number()
            );
        }
    );

    /// A receiver on loopback answering every request 204; returns its URL and a count of
    /// the requests it got.
    async fn receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    // Read the headers and the body (its length is in the headers).
                    let mut read = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        read.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&read).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if read.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        (url, got)
    }

    both_backends!(
        first_attempt_is_made_by_the_dispatcher,
        |db: Db| async move {
            let app = app(&db);
            let ws = tidepost_store::workspaces::create(&db, "w", "W")
                .await
                .unwrap()
                .id;
            let (url, got) = receiver().await;
            let endpoint = endpoints::create(
                &app,
                &ws,
                NewEndpoint {
                    url,
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .endpoint;
            tokio::time::sleep(Duration::from_millis(5)).await;
            tidepost_store::events::record(&db, &ws, "post.published", None, &json!({"n": 1}))
                .await
                .unwrap();
            assert_eq!(dispatch(&app).await.unwrap(), 1);
            assert_eq!(got.load(Ordering::SeqCst), 1, "sent once, at once");
            let (id, state, attempts, auto): (String, String, i64, i64) =
                sqlx::query_as("SELECT id, state, attempts, auto_attempts FROM webhook_deliveries")
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            assert_eq!((state.as_str(), attempts, auto), ("succeeded", 1, 1));
            let log = webhook_deliveries::attempts(&db, &ws, &id).await.unwrap();
            assert_eq!(log.len(), 1);
            assert_eq!(
                (log[0].attempt, log[0].cause.as_str(), log[0].status_code),
                (1, "auto", Some(204))
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT COUNT(*) FROM jobs WHERE kind = 'webhooks.deliver'"
                )
                .await,
                0,
                "no job for a first attempt that got through"
            );
            let endpoint = tidepost_store::webhook_endpoints::get(&db, &ws, &endpoint.id)
                .await
                .unwrap()
                .unwrap();
            assert!(endpoint.last_success_at.is_some());
            // Dispatching again sends nothing more.
            assert_eq!(dispatch(&app).await.unwrap(), 0);
            assert_eq!(got.load(Ordering::SeqCst), 1);
        }
    );

    both_backends!(
        interrupted_first_attempts_are_retried,
        |db: Db| async move {
            let app = app(&db);
            let ws = tidepost_store::workspaces::create(&db, "w", "W")
                .await
                .unwrap()
                .id;
            let endpoint = endpoints::create(
                &app,
                &ws,
                NewEndpoint {
                    url: "http://127.0.0.1:9/hook".into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .endpoint;
            let now = app.queue.clock().now_ms();
            // As the dispatcher leaves a delivery when its process dies mid-request: created,
            // no attempt counted or recorded, no job.
            let stranded = |event_id: &str, touched: i64| Delivery {
                id: tidepost_domain::new_id(),
                workspace_id: ws.clone(),
                endpoint_id: endpoint.id.clone(),
                event_id: event_id.into(),
                event_type: "post.published".into(),
                body: "{}".into(),
                state: PENDING.into(),
                attempts: 0,
                auto_attempts: 0,
                resends: 0,
                next_attempt_at: Some(touched),
                last_status: None,
                last_error: None,
                event_created_at: touched,
                created_at: touched,
                updated_at: touched,
                finished_at: None,
            };
            let old = stranded("e-old", now - stranded_after_ms(&app) - 1_000);
            let fresh = stranded("e-fresh", now - 1_000);
            let mut conn = db.pool().acquire().await.unwrap();
            for d in [&old, &fresh] {
                assert!(webhook_deliveries::insert_in(&mut conn, d).await.unwrap());
            }
            drop(conn);
            assert_eq!(recover_stranded_now(&app).await.unwrap(), 1);
            assert_eq!(
                recover_stranded_now(&app).await.unwrap(),
                0,
                "a second sweep (or instance) enqueues nothing more"
            );
            let payloads: Vec<String> =
                sqlx::query_scalar("SELECT payload FROM jobs WHERE kind = 'webhooks.deliver'")
                    .fetch_all(db.pool())
                    .await
                    .unwrap();
            assert_eq!(payloads.len(), 1);
            assert!(payloads[0].contains(&old.id), "only the stale one");
            // A first attempt that was recorded is not stranded, however old.
            let recorded = stranded("e-recorded", now - stranded_after_ms(&app) - 1_000);
            let mut conn = db.pool().acquire().await.unwrap();
            assert!(
                webhook_deliveries::insert_in(&mut conn, &recorded)
                    .await
                    .unwrap()
            );
            drop(conn);
            let mut tx = db.begin_write().await.unwrap();
            webhook_deliveries::record_outcome_in(
                &mut tx,
                &tidepost_store::webhook_deliveries::Attempt {
                    id: tidepost_domain::new_id(),
                    workspace_id: ws.clone(),
                    delivery_id: recorded.id.clone(),
                    attempt: 1,
                    cause: "auto".into(),
                    url: endpoint.url.clone(),
                    status_code: Some(500),
                    latency_ms: 3,
                    response_excerpt: None,
                    error: None,
                    started_at: now,
                },
                true,
                None,
                now - stranded_after_ms(&app) - 1_000,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(recover_stranded_now(&app).await.unwrap(), 0);
        }
    );

    both_backends!(a_recorded_event_wakes_the_dispatcher, |db: Db| async move {
        let app = app(&db);
        let ws = tidepost_store::workspaces::create(&db, "w", "W")
            .await
            .unwrap()
            .id;
        let (url, got) = receiver().await;
        endpoints::create(
            &app,
            &ws,
            NewEndpoint {
                url,
                enabled: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // No sweep runs here: only the listener can send these.
        start_listener(&app);
        let started = std::time::Instant::now();
        tidepost_store::events::record(&db, &ws, "post.published", None, &json!({"n": 1}))
            .await
            .unwrap();
        // And one recorded inside a transaction, announced before it commits.
        let mut tx = db.begin_write().await.unwrap();
        tidepost_store::events::record_in(&mut tx, &ws, "post.failed", None, &json!({"n": 2}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        tx.commit().await.unwrap();
        while got.load(Ordering::SeqCst) < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the listener did not send both events"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    /// A receiver on loopback that reads each request and, while `hang` is set, never answers
    /// it; otherwise it answers 204. Returns its URL, the flag and a count of requests read.
    async fn hanging_receiver() -> (
        String,
        Arc<std::sync::atomic::AtomicBool>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (hang_flag, counter) = (hang.clone(), got.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (hang, counter) = (hang_flag.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut read = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The body is small: the headers' end and a pause are enough here.
                    while !String::from_utf8_lossy(&read).contains("\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    if hang.load(Ordering::SeqCst) {
                        // Held open, unanswered, until the client goes away.
                        let _ = socket.read(&mut buf).await;
                        return;
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        (url, hang, got)
    }

    /// A process dies while its dispatcher is waiting for a first attempt's answer: the
    /// delivery it created shows no attempt (none counted, none recorded), the sweep finds it
    /// stranded once the request could no longer be running and re-queues it once, and its
    /// retry is then counted once — attempt 1, made twice on the wire, as at-least-once allows.
    async fn a_crash_mid_attempt_is_neither_lost_nor_counted_twice(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.db.clone();
        let keys = Keyring::generate_key_text().expose_secret().to_string();
        let app = app_with_keys(&db, &keys);
        let ws = tidepost_store::workspaces::create(&db, "w", "W")
            .await
            .unwrap()
            .id;
        let (url, hang, got) = hanging_receiver().await;
        endpoints::create(
            &app,
            &ws,
            NewEndpoint {
                url,
                enabled: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let event =
            tidepost_store::events::record(&db, &ws, "post.published", None, &json!({"n": 1}))
                .await
                .unwrap();

        // The process that dies: its own runtime, pool and app, shut down mid-request.
        let (url, keys, seen) = (test_db.url.clone(), keys.clone(), got.clone());
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let db = Db::connect(&url).await.unwrap();
                let doomed = app_with_keys(&db, &keys);
                tokio::spawn(async move { dispatch(&doomed).await });
                while seen.load(Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
            runtime.shutdown_background();
        })
        .await
        .unwrap();
        assert_eq!(
            got.load(Ordering::SeqCst),
            1,
            "the first attempt was on its way"
        );

        let delivery: Delivery = sqlx::query_as(
            "SELECT id, workspace_id, endpoint_id, event_id, event_type, body, state, attempts, \
             auto_attempts, resends, next_attempt_at, last_status, last_error, event_created_at, \
             created_at, updated_at, finished_at FROM webhook_deliveries",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(delivery.event_id, event.id);
        assert_eq!(
            (
                delivery.state.as_str(),
                delivery.attempts,
                delivery.auto_attempts
            ),
            (PENDING, 0, 0),
            "an attempt with no outcome is not counted"
        );
        assert!(
            webhook_deliveries::attempts(&db, &ws, &delivery.id)
                .await
                .unwrap()
                .is_empty()
        );
        // Not stranded while the request could still be running.
        assert_eq!(recover_stranded_now(&app).await.unwrap(), 0);
        app.queue.clock().advance(Duration::from_millis(
            u64::try_from(stranded_after_ms(&app)).unwrap() + 1_000,
        ));
        assert_eq!(recover_stranded_now(&app).await.unwrap(), 1);
        assert_eq!(
            recover_stranded_now(&app).await.unwrap(),
            0,
            "left to its job by the next sweep"
        );
        // A later dispatch does not send it again either: the delivery exists.
        assert_eq!(dispatch(&app).await.unwrap(), 0);

        hang.store(false, Ordering::SeqCst);
        let kinds = [deliver::DELIVER.to_string()];
        let report =
            tidepost_jobs::drain_due(&app.queue, &crate::work::registry(&app), Some(&kinds), 10)
                .await
                .unwrap();
        assert_eq!((report.claimed, report.succeeded), (1, 1));
        let after = webhook_deliveries::get(&db, &ws, &delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (after.state.as_str(), after.attempts, after.auto_attempts),
            (SUCCEEDED, 1, 1)
        );
        let log = webhook_deliveries::attempts(&db, &ws, &delivery.id)
            .await
            .unwrap();
        let numbers: Vec<(i64, &str, Option<i64>)> = log
            .iter()
            .map(|a| (a.attempt, a.cause.as_str(), a.status_code))
            .collect();
        assert_eq!(numbers, [(1, "auto", Some(204))]);
        assert_eq!(got.load(Ordering::SeqCst), 2);
        assert_eq!(recover_stranded_now(&app).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_crash_mid_attempt_is_neither_lost_nor_counted_twice_sqlite() {
        a_crash_mid_attempt_is_neither_lost_nor_counted_twice(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_crash_mid_attempt_is_neither_lost_nor_counted_twice_postgres() {
        a_crash_mid_attempt_is_neither_lost_nor_counted_twice(Backend::Postgres).await;
    }
}
