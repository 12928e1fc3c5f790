//! Inbound webhook ingest: verified and durably stored provider events per second through the
//! real HTTP routes of `tidepost serve` (a separate process, `--no-workers` so that nothing but
//! ingest runs), on SQLite and on PostgreSQL, with p50/p99 latency, beside a raw insert of the
//! same rows (the event and its application job) from this process in the same run.
//!
//! `cargo bench --bench webhook_ingest`. Half the deliveries go to `/webhooks/tiktok` (signed
//! `TikTok-Signature: t=…,s=HMAC-SHA256(client secret, "t.body")` as TikTok does), half to
//! `/webhooks/instagram` (`X-Hub-Signature-256: sha256=HMAC-SHA256(app secret, body)` as Meta
//! does); every body is distinct, so every one is stored. Bodies and signatures are made
//! before the clock starts. `CONNECTIONS` keep-alive HTTP/1.1 connections each send their share
//! one after another; a response counts only as a `200`, and afterwards the bench checks that
//! the database holds exactly one event and one job per `200` (a 2xx means stored). The
//! routes store each event and its job in one transaction, grouped with the deliveries that
//! arrive while a write is in flight (one commit per group).
//!
//! Two raw baselines write the same two rows per event (the event, its application job) from
//! this process, without HTTP, verification or parsing: *raw*, with the store's and the
//! queue's own single-row statements, one transaction per event, from as many concurrent tasks
//! as there are connections; and *raw batched*, one loop writing `CONNECTIONS` events per
//! transaction with one multi-row insert per table, as tidepost's group commits do at best.
//! The ratio is against the plain raw insert; the one against the batched loop is printed
//! beside it.
//! Target (issue 10): ≥ 10,000 events/s on SQLite with p99 < 10 ms.
//! `TIDEPOST_BENCH_EVENTS` sets the number of deliveries per backend (default 20,000).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tidepost_store::testing::TestDb;
use tidepost_store::{Db, Dialect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_tidepost");
const CONNECTIONS: usize = 32;
const TIKTOK_SECRET: &str = "bench-tiktok-client-secret";
const META_SECRET: &str = "bench-facebook-app-secret";
const TARGET_SQLITE_EVENTS_PER_S: f64 = 10_000.0;
const TARGET_SQLITE_P99_MS: f64 = 10.0;

fn main() {
    let events: usize = std::env::var("TIDEPOST_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
        .max(CONNECTIONS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "{events} deliveries per backend over {CONNECTIONS} connections, load average before: {}",
            load()
        );
        println!(
            "{:<11} {:>10} {:>9} {:>9} {:>12} {:>7} {:>14} {:>9}",
            "backend", "events/s", "p50 ms", "p99 ms", "raw rows/s", "ratio", "raw batched/s", "/batched"
        );
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let figures = run_backend(dialect, events).await;
            println!(
                "{:<11} {:>10.0} {:>9.2} {:>9.2} {:>12.0} {:>7.2} {:>14.0} {:>9.2}",
                dialect.name(),
                figures.rate,
                figures.p50_ms,
                figures.p99_ms,
                figures.raw_rate,
                figures.rate / figures.raw_rate,
                figures.batched_rate,
                figures.rate / figures.batched_rate
            );
            report(dialect, &figures);
        }
        println!("load average after: {}", load());
        println!(
            "target: SQLite ≥ {TARGET_SQLITE_EVENTS_PER_S} events/s with p99 < {TARGET_SQLITE_P99_MS} ms"
        );
    });
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    raw_rate: f64,
    batched_rate: f64,
}

fn report(dialect: Dialect, f: &Figures) {
    let sqlite = dialect == Dialect::Sqlite;
    let name = dialect.name();
    common::record(
        "webhook_ingest",
        &format!("{name}: events/s stored through HTTP"),
        f.rate.round(),
        "events/s",
        &if sqlite {
            format!(">= {TARGET_SQLITE_EVENTS_PER_S}")
        } else {
            String::new()
        },
    );
    common::record(
        "webhook_ingest",
        &format!("{name}: p50 latency"),
        (f.p50_ms * 100.0).round() / 100.0,
        "ms",
        "",
    );
    common::record(
        "webhook_ingest",
        &format!("{name}: p99 latency"),
        (f.p99_ms * 100.0).round() / 100.0,
        "ms",
        &if sqlite {
            format!("< {TARGET_SQLITE_P99_MS}")
        } else {
            String::new()
        },
    );
    common::record(
        "webhook_ingest",
        &format!("{name}: ingest / raw insert"),
        (f.rate / f.raw_rate * 100.0).round() / 100.0,
        "×",
        "",
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A database of its own, the server on it, the deliveries, the checks, and the baseline.
async fn run_backend(dialect: Dialect, events: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = match dialect {
        Dialect::Sqlite => format!("sqlite://{}", dir.path().join("ingest.db").display()),
        Dialect::Postgres => TestDb::postgres_schema_url().await,
    };
    let server = Server::start(&url, dir.path());
    let addr = server.addr.clone();

    // Warm up connections, caches and the database files.
    let warm = deliveries(0, 500);
    let _ = send_all(&addr, warm).await;
    let batch = deliveries(1, events);
    let started = Instant::now();
    let mut latencies = send_all(&addr, batch).await;
    let took = started.elapsed();
    assert_eq!(latencies.len(), events, "every delivery answered 200");
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    let (p50_ms, p99_ms) = (pct(0.50), pct(0.99));

    let db = Db::connect(&url)
        .await
        .expect("connect to the bench database");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events")
        .fetch_one(db.pool())
        .await
        .expect("count events");
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind LIKE '%.webhook'")
        .fetch_one(db.pool())
        .await
        .expect("count jobs");
    let expected = (events + 500) as i64;
    assert_eq!(
        (stored, jobs),
        (expected, expected),
        "one event and one job per 200"
    );
    drop(server);

    let raw_took = raw_insert(&db, events).await;
    let batched_took = raw_batched_insert(&db, events).await;
    Figures {
        batched_rate: events as f64 / batched_took.as_secs_f64(),
        rate: events as f64 / took.as_secs_f64(),
        p50_ms,
        p99_ms,
        raw_rate: events as f64 / raw_took.as_secs_f64(),
    }
}

/// One delivery: the route, the signature header, the body.
struct Delivery {
    path: &'static str,
    header: (&'static str, String),
    body: String,
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `count` distinct deliveries, alternating TikTok and Instagram; `round` keeps rounds apart.
fn deliveries(round: usize, count: usize) -> Vec<Delivery> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    (0..count)
        .map(|n| {
            if n % 2 == 0 {
                let content = format!(
                    r#"{{\"publish_id\":\"v_pub_bench_{round}_{n}\",\"publish_type\":\"DIRECT_PUBLISH\"}}"#
                );
                let body = format!(
                    r#"{{"client_key":"bench-key","event":"post.publish.complete","create_time":{now},"user_openid":"bench-user-{n}","content":"{content}"}}"#
                );
                let signature = hmac_hex(
                    TIKTOK_SECRET,
                    &[now.to_string().as_bytes(), b".", body.as_bytes()],
                );
                Delivery {
                    path: "/webhooks/tiktok",
                    header: ("TikTok-Signature", format!("t={now},s={signature}")),
                    body,
                }
            } else {
                let body = format!(
                    r#"{{"object":"instagram","entry":[{{"id":"17841400000000{round}","time":{now},"changes":[{{"field":"comments","value":{{"id":"c_{round}_{n}","text":"nice","from":{{"id":"u_{n}","username":"fan{n}"}},"media":{{"id":"m_1"}}}}}}]}}]}}"#
                );
                let signature = hmac_hex(META_SECRET, &[body.as_bytes()]);
                Delivery {
                    path: "/webhooks/instagram",
                    header: ("X-Hub-Signature-256", format!("sha256={signature}")),
                    body,
                }
            }
        })
        .collect()
}

/// Sends every delivery over `CONNECTIONS` keep-alive connections; returns the latency of each
/// `200` (a different status fails the bench, with the answer).
async fn send_all(addr: &str, deliveries: Vec<Delivery>) -> Vec<Duration> {
    let deliveries = Arc::new(deliveries);
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let deliveries = deliveries.clone();
            let addr = addr.to_string();
            tokio::spawn(async move {
                let mut connection = Connection::open(&addr).await;
                let mut latencies = Vec::new();
                for delivery in deliveries.iter().skip(c).step_by(CONNECTIONS) {
                    let request = format!(
                        "POST {} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{}: {}\r\nContent-Length: {}\r\n\r\n{}",
                        delivery.path,
                        delivery.header.0,
                        delivery.header.1,
                        delivery.body.len(),
                        delivery.body
                    );
                    let sent = Instant::now();
                    let (status, answer) = connection.exchange(request.as_bytes()).await;
                    assert_eq!(status, 200, "{} answered {status}: {answer}", delivery.path);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(deliveries.len());
    for task in tasks {
        all.extend(task.await.expect("sender task"));
    }
    all
}

/// A minimal HTTP/1.1 keep-alive client: enough to measure the server, not the client.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).await.expect("connect to serve");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Writes one request and reads its response: the status and the body.
    async fn exchange(&mut self, request: &[u8]) -> (u16, String) {
        self.stream.write_all(request).await.expect("send");
        self.buf.clear();
        let head_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            self.read_more().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_string();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("a Content-Length");
        while self.buf.len() < head_end + length {
            self.read_more().await;
        }
        let body = String::from_utf8_lossy(&self.buf[head_end..head_end + length]).to_string();
        (status, body)
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `tidepost serve` on `url`, workers off, TikTok and Meta webhook secrets set.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(url: &str, dir: &std::path::Path) -> Server {
        let key = Command::new(BIN)
            .args(["keys", "generate"])
            .stderr(Stdio::null())
            .output()
            .expect("keys generate");
        let key = String::from_utf8(key.stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-workers"])
            .env("DATABASE_URL", url)
            .env("TIDEPOST_KEYS", key)
            .env("TIDEPOST_ALLOW_HTTP", "true")
            .env("TIDEPOST_LOG", "warn")
            .env("TIDEPOST_TIKTOK_CLIENT_KEY", "bench-key")
            .env("TIDEPOST_TIKTOK_CLIENT_SECRET", TIKTOK_SECRET)
            .env("TIDEPOST_FACEBOOK_APP_ID", "1000000000001")
            .env("TIDEPOST_FACEBOOK_APP_SECRET", META_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tidepost serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("tidepost is listening on http://")
                    .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
            })
            .expect("the listening line");
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The baseline: the same rows the route writes per event (the event, its application job),
/// with the same statements, one transaction per event, `CONNECTIONS` tasks at once.
async fn raw_insert(db: &Db, events: usize) -> Duration {
    let rows = Arc::new(deliveries(2, events));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (db, rows) = (db.clone(), rows.clone());
            tokio::spawn(async move {
                for (n, row) in rows.iter().enumerate().skip(c).step_by(CONNECTIONS) {
                    let now = tidepost_domain::now_ms();
                    let provider = if row.path.ends_with("tiktok") { "tiktok" } else { "instagram" };
                    let id = tidepost_domain::new_id();
                    let mut tx = db.begin_write().await.expect("begin");
                    sqlx::query(
                        "INSERT INTO inbound_events (id, provider, dedupe_key, event_type, body, signature_ts, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING",
                    )
                    .bind(&id)
                    .bind(provider)
                    .bind(format!("raw:{provider}:{n}"))
                    .bind("bench")
                    .bind(&row.body)
                    .bind(now / 1000)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .expect("insert event");
                    let kind = format!("{provider}.webhook");
                    let job: Option<String> = sqlx::query_scalar(
                        "INSERT INTO jobs (id, kind, payload, workspace_id, idempotency_key, priority, state, run_at, \
                             attempts, max_attempts, created_at, updated_at) \
                         VALUES ($1, $2, $3, NULL, $4, 0, 'queued', $5, 0, NULL, $5, $5) \
                         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                    )
                    .bind(tidepost_domain::new_id())
                    .bind(&kind)
                    .bind(format!(r#"{{"event_id":"{id}"}}"#))
                    .bind(format!("{kind}:{id}"))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .expect("insert job");
                    assert!(job.is_some());
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("raw task");
    }
    started.elapsed()
}

/// The batched baseline: `CONNECTIONS` events per transaction, one multi-row insert for the
/// events and one for their jobs, one loop.
async fn raw_batched_insert(db: &Db, events: usize) -> Duration {
    let rows = deliveries(3, events);
    let started = Instant::now();
    for (b, chunk) in rows.chunks(CONNECTIONS).enumerate() {
        let now = tidepost_domain::now_ms();
        let ids: Vec<String> = chunk.iter().map(|_| tidepost_domain::new_id()).collect();
        let values = |width: usize, fixed: &str| -> String {
            (0..chunk.len())
                .map(|i| {
                    let params: Vec<String> =
                        (1..=width).map(|n| format!("${}", width * i + n)).collect();
                    format!("({}{fixed})", params.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let events_sql = format!(
            "INSERT INTO inbound_events (id, provider, dedupe_key, event_type, body, signature_ts, received_at) \
             VALUES {} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            values(7, "")
        );
        let jobs_sql = format!(
            "INSERT INTO jobs (id, kind, payload, idempotency_key, run_at, created_at, updated_at, \
                 workspace_id, priority, state, attempts, max_attempts) \
             VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            values(7, ", NULL, 0, 'queued', 0, NULL")
        );
        let mut insert_events = sqlx::query_scalar::<_, String>(&events_sql);
        let mut insert_jobs = sqlx::query_scalar::<_, String>(&jobs_sql);
        for (i, row) in chunk.iter().enumerate() {
            let provider = if row.path.ends_with("tiktok") {
                "tiktok"
            } else {
                "instagram"
            };
            let kind = format!("{provider}.webhook");
            insert_events = insert_events
                .bind(ids[i].clone())
                .bind(provider)
                .bind(format!("batched:{provider}:{b}:{i}"))
                .bind("bench")
                .bind(row.body.clone())
                .bind(now / 1000)
                .bind(now);
            insert_jobs = insert_jobs
                .bind(tidepost_domain::new_id())
                .bind(kind.clone())
                .bind(format!(r#"{{"event_id":"{}"}}"#, ids[i]))
                .bind(format!("{kind}:{}", ids[i]))
                .bind(now)
                .bind(now)
                .bind(now);
        }
        let mut tx = db.begin_write().await.expect("begin");
        let stored = insert_events
            .fetch_all(&mut *tx)
            .await
            .expect("insert events");
        let queued = insert_jobs.fetch_all(&mut *tx).await.expect("insert jobs");
        assert_eq!((stored.len(), queued.len()), (chunk.len(), chunk.len()));
        tx.commit().await.expect("commit");
    }
    started.elapsed()
}
