//! Outbound webhook delivery: deliveries per second from the event log to a local receiver,
//! and the latency tidepost adds between an event being recorded and the receiver getting it,
//! beside a baseline of plain signed POSTs from a reqwest loop in the same run.
//!
//! `cargo bench --bench outbound_delivery`. tidepost runs in this process as `serve` runs it:
//! the worker pool with `serve`'s settings (4 jobs at once, schedules checked every second), the
//! dispatch sweep at its default interval (1 s) and the dispatcher's listener (it dispatches as
//! soon as an event is recorded and makes first attempts itself), on SQLite (and on PostgreSQL
//! when `TIDEPOST_BENCH_POSTGRES=1`). The receiver is an axum server on loopback answering 204.
//! `TIDEPOST_BENCH_ROUNDS` (default 1) repeats the tidepost runs; the best and the median are
//! printed with the machine's load.
//!
//! - **Throughput**: `TIDEPOST_BENCH_DELIVERIES` events (default 2,000) recorded one after
//!   another, as fast as the database takes them; the time from the first record to the
//!   receiver getting the last one. The bench prints how fast the events alone were recorded:
//!   on PostgreSQL each record is a commit, and that bounds this figure.
//! - **Backlog**: as many events again written by one transaction, then announced as `record`
//!   announces a committed event; the time from the commit to the receiver getting the last
//!   one: what delivery alone costs, whatever the producer.
//! - **Added latency**: 200 events recorded 20 ms apart; for each, receiver time − record time;
//!   p50 and p99. The listener starts with the first sweep, which the bench waits for.
//! - **Baseline**: the same bodies, signed the same way (HMAC-SHA256, Standard Webhooks
//!   headers), POSTed by 4 concurrent reqwest loops: what the network and the receiver cost
//!   without tidepost's queue, database writes and attempt log.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tidepost_app::config::RawSettings;
use tidepost_app::outbound::endpoints::{self, NewEndpoint};
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config};
use tidepost_jobs::{WorkerConfig, WorkerPool};
use tidepost_store::testing::{Backend, TestDb};
use tidepost_vault::Keyring;
use tidepost_vault::secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

const LATENCY_EVENTS: usize = 200;
const CONCURRENCY: usize = 4;

/// Receipt time of each `webhook-id`.
type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver() -> (String, Receipts) {
    let receipts: Receipts = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let shared = receipts.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, _body: String| {
        let shared = shared.clone();
        async move {
            let now = Instant::now();
            if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                shared.lock().unwrap().entry(id.to_string()).or_insert(now);
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receipts)
}

async fn wait_all(receipts: &Receipts, ids: &[String], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let got = {
            let map = receipts.lock().unwrap();
            ids.iter().filter(|id| map.contains_key(*id)).count()
        };
        if got == ids.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {got} of {} arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Figures {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Events recorded per second during the burst (the producer alone).
    recorded_per_s: f64,
    /// Deliveries per second of a backlog committed at once.
    backlog_per_s: f64,
}

async fn tidepost(backend: Backend, deliveries: usize) -> Figures {
    let test_db = TestDb::new(backend).await;
    let raw = RawSettings::gather(
        &[
            ("database_url", test_db.url.clone()),
            ("sandbox", "true".into()),
        ],
        |_| None,
        None,
    )
    .unwrap();
    let config = Config::from_raw(&raw).unwrap();
    let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
    let providers = Providers::from_config(&config, None);
    let app = App::new(config, test_db.db.clone(), keyring, providers);
    let ws = tidepost_store::workspaces::create(&app.db, "bench", "Bench")
        .await
        .unwrap()
        .id;
    let (url, receipts) = receiver().await;
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
    tidepost_app::work::ensure_schedules(&app).await.unwrap();
    let shutdown = CancellationToken::new();
    let pool = WorkerPool::new(
        app.queue.clone(),
        tidepost_app::work::registry(&app),
        WorkerConfig {
            name: "bench".into(),
            concurrency: CONCURRENCY,
            ..WorkerConfig::default()
        },
    )
    .spawn(shutdown.clone());

    // Warm-up: one event, delivered by the first sweep, which also starts the listener.
    let warm = tidepost_store::events::record(
        &app.db,
        &ws,
        "post.published",
        None,
        &serde_json::json!({"post_id": "warm-up", "platform": "tiktok"}),
    )
    .await
    .unwrap();
    wait_all(&receipts, &[warm.id], "warm-up event").await;

    // Added latency: events spread out, each timed from its record to its receipt.
    let mut recorded = Vec::new();
    for i in 0..LATENCY_EVENTS {
        let at = Instant::now();
        let event = tidepost_store::events::record(
            &app.db,
            &ws,
            "post.published",
            None,
            &serde_json::json!({"post_id": format!("latency-{i}"), "platform": "tiktok"}),
        )
        .await
        .unwrap();
        recorded.push((event.id, at));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids: Vec<String> = recorded.iter().map(|(id, _)| id.clone()).collect();
    wait_all(&receipts, &ids, "latency events").await;
    let mut added: Vec<f64> = {
        let map = receipts.lock().unwrap();
        recorded
            .iter()
            .map(|(id, at)| map[id].duration_since(*at).as_secs_f64() * 1000.0)
            .collect()
    };
    added.sort_by(f64::total_cmp);

    // Throughput: a burst of events, first record to last receipt.
    let start = Instant::now();
    let mut ids = Vec::with_capacity(deliveries);
    for i in 0..deliveries {
        let event = tidepost_store::events::record(
            &app.db,
            &ws,
            "post.published",
            None,
            &serde_json::json!({"post_id": format!("burst-{i}"), "platform": "tiktok"}),
        )
        .await
        .unwrap();
        ids.push(event.id);
    }
    let recorded_per_s = deliveries as f64 / start.elapsed().as_secs_f64();
    wait_all(&receipts, &ids, "burst").await;
    let last = {
        let map = receipts.lock().unwrap();
        ids.iter().map(|id| map[id]).max().unwrap()
    };
    let per_s = deliveries as f64 / last.duration_since(start).as_secs_f64();

    // Backlog: events committed together, then announced. Written with plain inserts rather
    // than `record_in`, whose announcements before the commit would send the listener into
    // its in-transaction re-checks and time those instead.
    let mut tx = app.db.begin_write().await.unwrap();
    let mut ids = Vec::with_capacity(deliveries);
    for i in 0..deliveries {
        let id = tidepost_domain::new_id();
        sqlx::query(
            "INSERT INTO events (id, workspace_id, type, subject_id, payload, created_at) \
             VALUES ($1, $2, 'post.published', NULL, $3, $4)",
        )
        .bind(&id)
        .bind(&ws)
        .bind(
            serde_json::json!({"post_id": format!("backlog-{i}"), "platform": "tiktok"})
                .to_string(),
        )
        .bind(tidepost_domain::now_ms())
        .execute(&mut *tx)
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    let start = Instant::now();
    tidepost_store::events::recorded().send_modify(|n| n.committed += 1);
    wait_all(&receipts, &ids, "backlog").await;
    let last = {
        let map = receipts.lock().unwrap();
        ids.iter().map(|id| map[id]).max().unwrap()
    };
    let backlog_per_s = deliveries as f64 / last.duration_since(start).as_secs_f64();
    shutdown.cancel();
    let _ = pool.await;
    Figures {
        per_s,
        p50_ms: percentile(&added, 0.5),
        p99_ms: percentile(&added, 0.99),
        recorded_per_s,
        backlog_per_s,
    }
}

/// The same bodies, signed the same way, POSTed by plain reqwest loops.
async fn baseline(deliveries: usize) -> Figures {
    let (url, _receipts) = receiver().await;
    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let client = reqwest::Client::new();
    let sign = |id: &str, ts: u64, body: &str| {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    };
    let requests: Vec<(String, String, String)> = (0..deliveries + LATENCY_EVENTS)
        .map(|i| {
            let id = tidepost_domain::new_id();
            let body = serde_json::json!({
                "type": "post.published",
                "timestamp": tidepost_domain::time::rfc3339(tidepost_domain::now_ms()),
                "data": {"post_id": format!("base-{i}"), "platform": "tiktok"},
            })
            .to_string();
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let signature = sign(&id, ts, &body);
            (id, body, format!("{ts} {signature}"))
        })
        .collect();
    let send = |client: reqwest::Client,
                url: String,
                (id, body, stamp): (String, String, String)| async move {
        let (ts, signature) = stamp.split_once(' ').unwrap();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts)
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    };
    // Latency: one at a time.
    let mut latencies = Vec::new();
    for request in requests[..LATENCY_EVENTS].iter().cloned() {
        let at = Instant::now();
        send(client.clone(), url.clone(), request).await;
        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    // Throughput: CONCURRENCY loops.
    let queue = Arc::new(Mutex::new(requests[LATENCY_EVENTS..].to_vec()));
    let start = Instant::now();
    let mut loops = Vec::new();
    for _ in 0..CONCURRENCY {
        let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
        loops.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop();
                match next {
                    Some(request) => send(client.clone(), url.clone(), request).await,
                    None => return,
                }
            }
        }));
    }
    for l in loops {
        l.await.unwrap();
    }
    let per_s = deliveries as f64 / start.elapsed().as_secs_f64();
    Figures {
        per_s,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        recorded_per_s: f64::NAN,
        backlog_per_s: per_s,
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let deliveries: usize = std::env::var("TIDEPOST_BENCH_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let rounds: usize = std::env::var("TIDEPOST_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut backends = vec![("SQLite", Backend::Sqlite)];
    if std::env::var("TIDEPOST_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
        backends.push(("PostgreSQL", Backend::Postgres));
    }
    runtime.block_on(async {
        let base = baseline(deliveries).await;
        println!(
            "baseline (plain signed POSTs, {CONCURRENCY} reqwest loops): {:.0} deliveries/s, one POST p50 {:.2} ms, p99 {:.2} ms (load {})",
            base.per_s,
            base.p50_ms,
            base.p99_ms,
            load()
        );
        common::record("outbound_delivery", "baseline POSTs/s", base.per_s, "/s", "");
        for (name, backend) in backends {
            let mut runs = Vec::new();
            for round in 1..=rounds {
                let f = tidepost(backend, deliveries).await;
                println!(
                    "tidepost on {name}, round {round}: {:.0} deliveries/s ({:.2}× the baseline; the events alone were recorded at {:.0}/s); backlog {:.0} deliveries/s ({:.2}×); added latency (event recorded → receiver got it) p50 {:.1} ms, p99 {:.1} ms (load {})",
                    f.per_s,
                    f.per_s / base.per_s,
                    f.recorded_per_s,
                    f.backlog_per_s,
                    f.backlog_per_s / base.per_s,
                    f.p50_ms,
                    f.p99_ms,
                    load()
                );
                runs.push(f);
            }
            let mut per_s: Vec<f64> = runs.iter().map(|f| f.per_s).collect();
            per_s.sort_by(f64::total_cmp);
            let mut p99: Vec<f64> = runs.iter().map(|f| f.p99_ms).collect();
            p99.sort_by(f64::total_cmp);
            let mut p50: Vec<f64> = runs.iter().map(|f| f.p50_ms).collect();
            p50.sort_by(f64::total_cmp);
            let (best, median) = (per_s[per_s.len() - 1], percentile(&per_s, 0.5));
            let mut backlog: Vec<f64> = runs.iter().map(|f| f.backlog_per_s).collect();
            backlog.sort_by(f64::total_cmp);
            let backlog_median = percentile(&backlog, 0.5);
            println!(
                "tidepost on {name} over {rounds} round(s): best {best:.0}/s ({:.2}×), median {median:.0}/s ({:.2}×); added latency p50 best {:.1} ms median {:.1} ms, p99 best {:.1} ms median {:.1} ms",
                best / base.per_s,
                median / base.per_s,
                p50[0],
                percentile(&p50, 0.5),
                p99[0],
                percentile(&p99, 0.5),
            );
            println!(
                "tidepost on {name}: backlog median {backlog_median:.0}/s ({:.2}× the baseline)",
                backlog_median / base.per_s
            );
            common::record("outbound_delivery", &format!("{name} deliveries/s"), median, "/s", "");
            common::record(
                "outbound_delivery",
                &format!("{name} backlog deliveries/s (median)"),
                backlog_median,
                "/s",
                "",
            );
            common::record(
                "outbound_delivery",
                &format!("{name} backlog ratio vs plain POSTs (median)"),
                backlog_median / base.per_s,
                "x",
                ">= 0.5",
            );
            common::record(
                "outbound_delivery",
                &format!("{name} ratio vs plain POSTs (best)"),
                best / base.per_s,
                "x",
                ">= 0.5",
            );
            common::record(
                "outbound_delivery",
                &format!("{name} ratio vs plain POSTs (median)"),
                median / base.per_s,
                "x",
                ">= 0.5",
            );
            common::record(
                "outbound_delivery",
                &format!("{name} p99 added latency (median)"),
                percentile(&p99, 0.5),
                "ms",
                "< 100",
            );
        }
    });
}
