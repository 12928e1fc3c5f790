//! The built binary run as separate processes against the provider emulator, for the tests
//! that need real processes (scale-out, a PostgreSQL restart): the emulator, the environment a
//! process gets, starting one with its output in a log file, waiting for it to be healthy,
//! reading the logs back for failure messages, and connecting an emulator creator through the
//! real OAuth flow.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::support::*;

/// The provider emulator in the test process, approving every consent by itself.
pub async fn start_emulator() -> tidepost_emulator::Emulator {
    tidepost_emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        tidepost_emulator::EmulatorConfig {
            auto_approve: true,
            ..Default::default()
        },
    )
    .await
    .expect("start the emulator")
}

/// The environment of a tidepost process on `db_url` with a fresh keyring, its data below
/// `dir`, TikTok at the emulator `emu`, warnings only in the log, plus `extra`.
pub fn tidepost_env(
    db_url: &str,
    dir: &Path,
    emu: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    use tidepost_vault::secrecy::ExposeSecret;
    let keys = tidepost_vault::Keyring::generate_key_text();
    let base = [
        ("TIDEPOST_DATABASE_URL", db_url.to_string()),
        ("TIDEPOST_KEYS", keys.expose_secret().to_string()),
        ("TIDEPOST_ALLOW_HTTP", "true".into()),
        ("TIDEPOST_DATA_DIR", dir.join("data").display().to_string()),
        (
            "TIDEPOST_TIKTOK_CLIENT_KEY",
            "sandbox-tiktok-client-key".into(),
        ),
        (
            "TIDEPOST_TIKTOK_CLIENT_SECRET",
            "sandbox-tiktok-client-secret".into(),
        ),
        ("TIDEPOST_TIKTOK_AUTH_BASE_URL", format!("{emu}/tiktok/www")),
        ("TIDEPOST_TIKTOK_API_BASE_URL", format!("{emu}/tiktok/open")),
        ("TIDEPOST_LOG", "warn".into()),
    ];
    base.into_iter()
        .chain(extra.iter().map(|&(k, v)| (k, v.to_string())))
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The built binary with a clean tidepost environment plus `env` and `extra`, its output
/// appended to `dir/NAME.log`. Killed when dropped.
pub fn spawn_tidepost(
    dir: &Path,
    name: &str,
    args: &[&str],
    env: &[(String, String)],
    extra: &[(&str, &str)],
) -> Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidepost"));
    command.current_dir(dir).kill_on_drop(true);
    for (var, _) in std::env::vars() {
        if var.starts_with("TIDEPOST_") || var == "DATABASE_URL" || var == "RUST_LOG" {
            command.env_remove(var);
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("a log file");
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log));
    command.spawn().expect("start tidepost")
}

/// Waits (30 s at most) until `base/healthz` answers 200.
pub async fn wait_healthy(base: &str, dir: &Path) {
    let http = bare_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = http.get(format!("{base}/healthz")).send().await
            && answer.status() == StatusCode::OK
        {
            return;
        }
        if Instant::now() > deadline {
            let mut logs = String::new();
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
            panic!("{base} never became healthy:\n{logs}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `lines` lines of every process log in `dir`, for failure messages.
pub fn log_tails(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("== {}\n", path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Adds the creator `username` to the emulator and connects it to tidepost at `server` through
/// the real OAuth flow (started with the API key `key`); returns the callback URL TikTok sent
/// the browser to.
pub async fn connect_creator(
    http: &reqwest::Client,
    server: &str,
    emu: &str,
    key: &str,
    username: &str,
) -> String {
    let added = http
        .post(format!("{emu}/_emulator/tiktok/creators"))
        .json(&json!({"username": username}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let started = http
        .post(format!("{server}/api/v1/connect/tiktok"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.unwrap();
    let authorize = started["authorize_url"].as_str().unwrap();
    let approved = http
        .get(format!("{authorize}&emulator_creator={username}"))
        .send()
        .await
        .unwrap();
    assert!(approved.status().is_redirection(), "{}", approved.status());
    let callback = location(&approved);
    let landed = http.get(&callback).send().await.unwrap();
    assert!(
        landed.status().is_success() || landed.status().is_redirection(),
        "callback: {}",
        landed.status()
    );
    callback
}

/// Waits (60 s at most) until every webhook the emulator at `emu` sent has got through (it
/// retries a refused one) and every TikTok event in `db` is applied, then checks that each
/// delivered event was stored exactly once. Returns how many events were stored.
pub async fn wait_webhooks_stored_once(emu: &str, db: &tidepost_store::Db) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempts: Value = emulator_json(emu, "/_emulator/webhooks").await;
        let attempts = attempts["attempts"].as_array().unwrap();
        let sent: HashSet<&str> = attempts
            .iter()
            .map(|a| a["body"].as_str().unwrap())
            .collect();
        let delivered: HashSet<&str> = attempts
            .iter()
            .filter(|a| a["status"] == 200)
            .map(|a| a["body"].as_str().unwrap())
            .collect();
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT body, applied_at FROM inbound_events WHERE provider = 'tiktok'")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let stored: HashSet<&str> = rows.iter().map(|(b, _)| b.as_str()).collect();
        let applied = rows.iter().filter(|(_, at)| at.is_some()).count();
        if delivered.len() == sent.len() && applied == rows.len() {
            assert_eq!(rows.len(), stored.len(), "an event stored twice");
            assert_eq!(
                stored, delivered,
                "stored events differ from delivered ones"
            );
            return rows.len();
        }
        assert!(
            Instant::now() < deadline,
            "webhooks: {} sent, {} delivered, {} stored, {} applied",
            sent.len(),
            delivered.len(),
            rows.len(),
            applied
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
