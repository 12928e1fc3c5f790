//! A real PostgreSQL restart during work. The shared test server must keep serving the other
//! tests, so this test starts a PostgreSQL cluster of its own (`initdb` into a temporary folder,
//! the binaries found with `pg_config --bindir`, a free port), runs the built binary as
//! `serve --no-workers` and `worker` on it with the emulator in the test process, puts posts in
//! flight, and stops the cluster (`pg_ctl stop -m fast`) for several seconds. Meanwhile the
//! server must keep answering: `/healthz` alive, `/readyz` a 503 saying the database is down,
//! the API a problem+json 503, pages a readable 503. Then `pg_ctl start`: `/readyz` recovers by
//! itself, every post is published exactly once on the emulator, no job is given up, and every
//! webhook the emulator delivered is stored and applied once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::processes::*;
use crate::support::*;

/// Accounts and posts per account (under TikTok's 15 direct posts a day).
const ACCOUNTS: usize = 2;
const POSTS_PER_ACCOUNT: usize = 6;
/// How long the database stays down, at least.
const OUTAGE: Duration = Duration::from_secs(5);

/// A PostgreSQL cluster of this test alone, stopped and deleted when dropped (also when the
/// test panics).
struct PrivatePg {
    bin: PathBuf,
    /// Holds the data folder, the socket and the server log; deleted last.
    dir: tempfile::TempDir,
    port: u16,
    /// The OS user the server runs as, when the test runs as root (PostgreSQL refuses root).
    run_as: Option<&'static str>,
}

impl PrivatePg {
    /// `initdb` (trust auth for user `postgres`) and `pg_ctl start` on a free port of 127.0.0.1.
    fn start() -> PrivatePg {
        let bin = server_bindir();
        let root = output_of(Command::new("id").arg("-u")).trim() == "0";
        let run_as = if root {
            let known = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                known,
                "this test runs as root, and PostgreSQL refuses to run as root: it needs the \
                 `postgres` OS user (made by the Debian package postgresql) to run its own cluster"
            );
            Some("postgres")
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("tidepost-pg-")
            .tempdir()
            .expect("a temporary folder");
        if let Some(user) = run_as {
            let chowned = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(chowned.success(), "chown {user} {}", dir.path().display());
        }
        let pg = PrivatePg {
            bin,
            dir,
            port: free_port(),
            run_as,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        pg.ctl_start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A PostgreSQL program, run as the server's OS user when there is one.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        command.current_dir(self.dir.path());
        command
    }

    /// Runs `program args`, failing the test with its output and the server log if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("server.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: clients are disconnected and the server shuts down cleanly.
    fn ctl_stop_fast(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        // Immediate: nothing of this cluster is kept. The folder goes with `dir` afterwards.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

/// The folder of `initdb` and `pg_ctl`: `pg_config --bindir`, or `TIDEPOST_TEST_PG_BINDIR`.
fn server_bindir() -> PathBuf {
    let bin = match std::env::var_os("TIDEPOST_TEST_PG_BINDIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let output = Command::new("pg_config").arg("--bindir").output();
            let output = match output {
                Ok(o) if o.status.success() => o,
                _ => panic!(
                    "this test starts a PostgreSQL cluster of its own and finds initdb and pg_ctl \
                     with `pg_config --bindir`, but pg_config does not run: install PostgreSQL's \
                     server (Debian: postgresql) or set TIDEPOST_TEST_PG_BINDIR to the folder of \
                     initdb and pg_ctl"
                ),
            };
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    for program in ["initdb", "pg_ctl", "postgres"] {
        assert!(
            bin.join(program).is_file(),
            "{program} is not in {} (from `pg_config --bindir`): install PostgreSQL's server \
             (Debian: postgresql) or set TIDEPOST_TEST_PG_BINDIR to the folder of initdb and pg_ctl",
            bin.display()
        );
    }
    bin
}

fn output_of(command: &mut Command) -> String {
    let output = command.output().expect("run a command");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The processes' logs, for failure messages.
fn logs(dir: &Path) -> String {
    log_tails(dir, 20)
}

async fn get_json(url: &str, key: &str) -> Value {
    let answer = bare_client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Connects the emulator creator `username` through the real OAuth flow; returns the account id.
async fn connect(server: &str, emu: &str, key: &str, username: &str) -> String {
    connect_creator(&bare_client(), server, emu, key, username).await;
    let accounts = get_json(&format!("{server}/api/v1/accounts"), key).await;
    accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == username)
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("{username} is not connected: {accounts}"))
        .to_string()
}

/// `POST /api/v1/posts` with a small distinct video; returns the post id.
async fn submit(server: &str, key: &str, account_id: &str, caption: &str, n: usize) -> String {
    let video = tidepost_app::media::testing::video(16 * 1024, &n.to_string());
    let form = tiktok_video_form(account_id, caption, "SELF_ONLY", video)
        .text("idempotency_key", caption.to_string());
    let answer = bare_client()
        .post(format!("{server}/api/v1/posts"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::ACCEPTED, "{caption}: {body}");
    body["id"].as_str().unwrap().to_string()
}

/// Signs in through the form; returns the client holding the session.
async fn sign_in(server: &str, email: &str) -> reqwest::Client {
    let http = client();
    let form = http
        .get(format!("{server}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_input(&form, "csrf").expect("the sign-in form's CSRF token");
    let signed = http
        .post(format!("{server}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert!(signed.status().is_redirection(), "{}", signed.status());
    http
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_during_work() {
    install_crypto();
    let pg = PrivatePg::start();
    let emulator = start_emulator().await;
    let emu = emulator.base_url();
    let dir = tempfile::tempdir().expect("temporary folder");
    let env = tidepost_env(&pg.url(), dir.path(), &emu, &[]);
    let migrated = spawn_tidepost(dir.path(), "migrate", &["migrate"], &env, &[])
        .wait()
        .await
        .expect("run tidepost migrate");
    assert!(
        migrated.success(),
        "tidepost migrate:\n{}",
        logs(dir.path())
    );
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    let _serve = spawn_tidepost(
        dir.path(),
        "serve",
        &[
            "serve",
            "--no-workers",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &env,
        &[("TIDEPOST_PUBLIC_URL", server.as_str())],
    );
    wait_healthy(&server, dir.path()).await;
    let _worker = spawn_tidepost(dir.path(), "worker", &["worker"], &env, &[]);

    // TikTok processes each video for 2 s, so posts are still in flight when the database stops.
    let settings = bare_client()
        .put(format!("{emu}/_emulator/tiktok/settings"))
        .json(&json!({
            "processing_delay_ms": 2000,
            "moderation_delay_ms": 300,
            "webhook_url": format!("{server}/webhooks/tiktok"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), StatusCode::OK);

    let db = tidepost_store::Db::connect(&pg.url())
        .await
        .expect("connect");
    let email = "ops@restart.example";
    let (_, workspace) = tidepost_app::access::create_user(&db, email, PASSWORD, "restart")
        .await
        .expect("a user");
    let key = tidepost_app::access::create_api_key(&db, &workspace.id, "restart", &[])
        .await
        .expect("an API key")
        .secret;
    let browser = sign_in(&server, email).await;

    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        accounts.push(connect(&server, &emu, &key, &format!("restart.creator{i}")).await);
    }
    let mut posts = Vec::new();
    let mut captions = Vec::new();
    for n in 0..ACCOUNTS * POSTS_PER_ACCOUNT {
        let caption = format!("restart post {n:02}");
        posts.push(submit(&server, &key, &accounts[n % ACCOUNTS], &caption, n).await);
        captions.push(caption);
    }
    // In flight: the worker has started sending them to TikTok, and not all are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let requests = emulator_json(&emu, "/_emulator/requests").await;
        let inits = requests["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/video/init/"))
            .count();
        if inits > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no post reached TikTok:\n{}",
            logs(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published = emulator_json(&emu, "/_emulator/tiktok/publishes").await;
    let complete_before = published["publishes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "PUBLISH_COMPLETE")
        .count();
    assert!(
        complete_before < posts.len(),
        "every post was published before the database stopped"
    );

    // The database stops.
    pg.ctl_stop_fast();
    let stopped_at = Instant::now();
    // Liveness is probed all through the outage, beside the slower checks.
    let probing = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (probing, probes, server) = (probing.clone(), probes.clone(), server.clone());
        tokio::spawn(async move {
            while probing.load(Ordering::SeqCst) {
                let health = bare_client()
                    .get(format!("{server}/healthz"))
                    .send()
                    .await
                    .expect("/healthz answers while the database is down");
                assert_eq!(health.status(), StatusCode::OK, "/healthz");
                probes.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let mut rounds = 0;
    while rounds == 0 || stopped_at.elapsed() < OUTAGE {
        rounds += 1;
        let (ready, listed, page) = tokio::join!(
            bare_client().get(format!("{server}/readyz")).send(),
            bare_client()
                .get(format!("{server}/api/v1/posts"))
                .bearer_auth(&key)
                .send(),
            browser.get(format!("{server}/posts")).send(),
        );
        let ready = problem(
            ready.expect("/readyz answers while the database is down"),
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
        )
        .await;
        assert_eq!(ready["database"], "PostgreSQL", "{ready}");
        assert!(
            ready["detail"].as_str().unwrap().contains("database"),
            "{ready}"
        );
        let listed = listed.expect("the API answers while the database is down");
        assert!(
            listed.headers().contains_key(reqwest::header::RETRY_AFTER),
            "{:?}",
            listed.headers()
        );
        let body = problem(
            listed,
            StatusCode::SERVICE_UNAVAILABLE,
            "database-unavailable",
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains("try again"),
            "{body}"
        );
        let page = page.expect("pages answer while the database is down");
        let html = page_error(
            page,
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable",
        )
        .await;
        assert!(html.contains("try again"), "{html}");
    }
    probing.store(false, Ordering::SeqCst);
    prober.await.expect("/healthz stayed alive");
    assert!(probes.load(Ordering::SeqCst) > 0);
    eprintln!(
        "faults_pg_restart: database down {:.1} s, {rounds} rounds of checks, {} liveness probes",
        stopped_at.elapsed().as_secs_f64(),
        probes.load(Ordering::SeqCst)
    );

    // The database starts again; tidepost recovers by itself.
    pg.ctl_start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = bare_client()
            .get(format!("{server}/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not recover:\n{}",
            logs(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = get_json(&format!("{server}/api/v1/posts?limit=200"), &key).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), posts.len());

    // Every post published, as the API tells it.
    let deadline = Instant::now() + Duration::from_secs(180);
    for id in &posts {
        loop {
            let post = get_json(&format!("{server}/api/v1/posts/{id}"), &key).await;
            let state = post["targets"][0]["state"].as_str().unwrap_or_default();
            if state == "published" {
                break;
            }
            assert!(
                !matches!(state, "failed" | "cancelled"),
                "a post did not survive the restart: {post:#}\n{}",
                logs(dir.path())
            );
            assert!(
                Instant::now() < deadline,
                "not published 3 minutes after the restart: {post:#}\n{}",
                logs(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // Exactly once on TikTok, under the right creator.
    let creators = emulator_json(&emu, "/_emulator/tiktok/creators").await;
    let open_ids: HashMap<&str, &str> = creators["creators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["open_id"].as_str().unwrap(),
                c["username"].as_str().unwrap(),
            )
        })
        .collect();
    let publishes = emulator_json(&emu, "/_emulator/tiktok/publishes").await;
    let publishes = publishes["publishes"].as_array().unwrap();
    for (n, caption) in captions.iter().enumerate() {
        let found: Vec<&Value> = publishes
            .iter()
            .filter(|p| p["post_info"]["title"] == caption.as_str())
            .collect();
        assert_eq!(found.len(), 1, "publishes of {caption:?}: {found:?}");
        assert_eq!(found[0]["status"], "PUBLISH_COMPLETE", "{}", found[0]);
        let owner = open_ids[found[0]["open_id"].as_str().unwrap()];
        assert_eq!(owner, format!("restart.creator{}", n % ACCOUNTS));
    }
    assert_eq!(publishes.len(), posts.len(), "{publishes:?}");

    // No job given up over the outage; retries it caused all succeed.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let waiting: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT kind, state, last_error FROM jobs WHERE state IN ('failed', 'dead')",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert!(
            waiting.iter().all(|(_, state, _)| state != "dead"),
            "a job failed for good over the outage: {waiting:?}"
        );
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a retry after the outage never succeeded: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every webhook the emulator sent was stored once and applied (it retries a refused one).
    wait_webhooks_stored_once(&emu, &db).await;
    db.close().await;
}
