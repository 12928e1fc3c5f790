//! The `tidepost` binary as operators run it: a subprocess in a temporary folder, with none of
//! the test environment's `TIDEPOST_*` or `DATABASE_URL` variables. Exit codes: 0 ok, 2
//! configuration or usage, 1 anything else, always with one `tidepost: error: …` line.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tidepost_vault::Keyring;
use tidepost_vault::secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

/// The built binary, run in `dir` with a clean tidepost environment.
fn tidepost(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidepost"));
    command.current_dir(dir).kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("TIDEPOST_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts exit `code` with exactly one error line on stderr that contains `needle`.
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got: {}", self.stderr);
        assert!(lines[0].starts_with("tidepost: error: "), "{}", lines[0]);
        assert!(
            lines[0].contains(needle),
            "expected {needle:?} in {}",
            lines[0]
        );
    }

    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `tidepost ARGS` to completion (60 s at most), with `stdin` as standard input.
async fn run_with(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = tidepost(dir);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run the tidepost binary");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tidepost {args:?} did not finish within 60 s"))
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, &[], None).await
}

fn new_keys() -> String {
    Keyring::generate_key_text().expose_secret().to_string()
}

/// `args` followed by `--database URL`.
fn with_database<'a>(args: &[&'a str], url: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--database", url]);
    all
}

both_backends!(
    user_unlock_lifts_a_sign_in_lock,
    user_create_on_a_fresh_database,
    migrate_user_create_and_apikey_create,
    user_invite_prints_the_link_once,
    commands_refuse_a_database_from_a_newer_tidepost,
    serve_sandbox_prints_a_setup_link_and_stops_on_sigterm,
);

/// `user unlock` lifts the sign-in limits of an account (here the wait of the address that
/// guessed), and refuses an email no user has.
async fn user_unlock_lifts_a_sign_in_lock(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    run_with(
        dir.path(),
        &with_database(
            &[
                "user",
                "create",
                "--email",
                "ada@example.com",
                "--workspace",
                "acme",
                "--password-stdin",
            ],
            &url,
        ),
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await
    .ok();
    let app = spawn_app_with(
        backend,
        Options {
            database_url: Some(url.clone()),
            ..Options::default()
        },
    )
    .await;
    for _ in 0..tidepost_app::access::PAIR_FREE_ATTEMPTS {
        let response = app
            .sign_in(&app.client, "ada@example.com", "a wrong guess", "/")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    let unlocked = run(
        dir.path(),
        &with_database(&["user", "unlock", "--email", "Ada@Example.com"], &url),
    )
    .await;
    unlocked.ok();
    assert_eq!(
        unlocked.stdout.trim(),
        "Unlocked ada@example.com: lifted 1 sign-in limit."
    );
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    run(
        dir.path(),
        &with_database(&["user", "unlock", "--email", "nobody@example.com"], &url),
    )
    .await
    .fails(2, "no user has the email nobody@example.com");
}

/// `user create` on a database nobody migrated yet migrates it first (the README's way to a
/// first user), and the user can sign in.
async fn user_create_on_a_fresh_database(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    let created = run_with(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--workspace",
            "acme",
            "--password-stdin",
            "--database",
            &url,
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    created.ok();
    let app = spawn_app_with(
        backend,
        Options {
            database_url: Some(url.clone()),
            ..Options::default()
        },
    )
    .await;
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

/// `user invite` prints the one-time link alone on standard output (only its hash is stored),
/// says on standard error that no mail went, and refuses bad input with one line and exit 2.
async fn user_invite_prints_the_link_once(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    let url = url.as_str();
    let with_db = |args: &[&'static str]| with_database(args, url);
    run_with(
        dir.path(),
        &with_db(&[
            "user",
            "create",
            "--email",
            "owner@example.com",
            "--workspace",
            "acme",
            "--password-stdin",
        ]),
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await
    .ok();
    let invited = run(
        dir.path(),
        &with_db(&[
            "user",
            "invite",
            "--workspace",
            "acme",
            "--email",
            "New@Example.com",
            "--role",
            "editor",
        ]),
    )
    .await;
    invited.ok();
    let link = invited.stdout.trim();
    assert_eq!(invited.stdout.lines().count(), 1, "{}", invited.stdout);
    let token = link
        .strip_prefix("http://127.0.0.1:8080/invite/")
        .unwrap_or_else(|| panic!("a link to the invite page: {link}"));
    assert_eq!(token.len(), 43, "{link}");
    assert!(
        invited
            .stderr
            .contains("Invited new@example.com to acme as editor")
            && invited
                .stderr
                .contains("not mailed: no SMTP server is configured"),
        "{}",
        invited.stderr
    );
    let db = tidepost_store::Db::connect(url).await.unwrap();
    let ws = tidepost_store::workspaces::by_slug(&db, "acme")
        .await
        .unwrap()
        .unwrap();
    let pending = tidepost_store::invites::pending(&db, &ws.id, tidepost_domain::now_ms())
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].email.as_str(), pending[0].role),
        ("new@example.com", tidepost_domain::Role::Editor)
    );
    assert_eq!(
        pending[0].token_hash,
        tidepost_app::access::sha256_hex(token),
        "only the token's hash is kept"
    );
    assert!(!format!("{pending:?}").contains(token));

    for (args, needle) in [
        (
            [
                "--workspace",
                "acme",
                "--email",
                "x@example.com",
                "--role",
                "boss",
            ],
            "\"boss\" is not a role: use owner, admin, editor or viewer",
        ),
        (
            [
                "--workspace",
                "nope",
                "--email",
                "x@example.com",
                "--role",
                "viewer",
            ],
            "unknown workspace \"nope\"",
        ),
        (
            [
                "--workspace",
                "acme",
                "--email",
                "not-an-email",
                "--role",
                "viewer",
            ],
            "\"not-an-email\" is not a valid email address",
        ),
        (
            [
                "--workspace",
                "acme",
                "--email",
                "owner@example.com",
                "--role",
                "viewer",
            ],
            "owner@example.com is already a member of this workspace",
        ),
    ] {
        let all = with_db(&[&["user", "invite"][..], &args[..]].concat());
        run(dir.path(), &all).await.fails(2, needle);
    }
}

async fn migrate_user_create_and_apikey_create(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    let url = url.as_str();
    let create_user = [
        "user",
        "create",
        "--email",
        "Ada@Example.com",
        "--workspace",
        "acme",
    ];
    let with_db = |args: &[&'static str]| with_database(args, url);

    let migrated = run(dir.path(), &with_db(&["migrate"])).await;
    migrated.ok();
    assert!(
        migrated.stdout.contains("schema is up to date"),
        "{}",
        migrated.stdout
    );
    // Migrating again changes nothing.
    run(dir.path(), &with_db(&["migrate"])).await.ok();

    let created = run_with(
        dir.path(),
        &with_db(&[&create_user[..], &["--password-stdin"]].concat()),
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    created.ok();
    assert_eq!(
        created.stdout.trim(),
        "Created ada@example.com as owner of workspace acme."
    );
    // The password on stdin never shows.
    assert!(!created.stdout.contains(PASSWORD) && !created.stderr.contains(PASSWORD));

    let again = run_with(
        dir.path(),
        &with_db(&[&create_user[..], &["--password-stdin"]].concat()),
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    again.fails(2, "a user with the email ada@example.com already exists");
    let weak = run_with(
        dir.path(),
        &with_db(&[
            "user",
            "create",
            "--email",
            "bo@example.com",
            "--workspace",
            "acme",
            "--password-stdin",
        ]),
        &[],
        Some("short\n"),
    )
    .await;
    weak.fails(2, "at least 10 characters");
    let bad_ws = run_with(
        dir.path(),
        &with_db(&[
            "user",
            "create",
            "--email",
            "bo@example.com",
            "--workspace",
            "Not Valid",
            "--password-stdin",
        ]),
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    bad_ws.fails(2, "is not a valid workspace name");

    let key = run(
        dir.path(),
        &with_db(&["apikey", "create", "--workspace", "acme", "--name", "crm"]),
    )
    .await;
    key.ok();
    let secret = key.stdout.trim().to_string();
    assert_eq!(
        key.stdout.lines().count(),
        1,
        "only the key on stdout: {}",
        key.stdout
    );
    assert!(secret.starts_with("tp_") && secret.len() == 46, "{secret}");
    assert!(key.stderr.contains("shown only once"), "{}", key.stderr);

    let unknown = run(
        dir.path(),
        &with_db(&["apikey", "create", "--workspace", "nope", "--name", "crm"]),
    )
    .await;
    unknown.fails(2, "unknown workspace \"nope\"");
    let bad_scope = run(
        dir.path(),
        &with_db(&[
            "apikey",
            "create",
            "--workspace",
            "acme",
            "--name",
            "x",
            "--scope",
            "root",
        ]),
    )
    .await;
    bad_scope.fails(2, "unknown scope \"root\"");

    // A server on that database: the user signs in, the key works.
    let app = spawn_app_with(
        backend,
        Options {
            database_url: Some(url.to_string()),
            ..Options::default()
        },
    )
    .await;
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let response = app.api_get(&secret, "/api/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["workspace"]["slug"], "acme");
}

async fn commands_refuse_a_database_from_a_newer_tidepost(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    let db = tidepost_store::Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from a newer tidepost', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(db.pool())
    .await
    .unwrap();
    db.close().await;
    let message = "has migration 99999 which this tidepost binary does not know";
    run(dir.path(), &["migrate", "--database", &url])
        .await
        .fails(1, message);
    run_with(
        dir.path(),
        &[
            "user",
            "create",
            "--email",
            "a@example.com",
            "--workspace",
            "w",
            "--password-stdin",
            "--database",
            &url,
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await
    .fails(1, message);
    run(
        dir.path(),
        &[
            "apikey",
            "create",
            "--workspace",
            "w",
            "--name",
            "n",
            "--database",
            &url,
        ],
    )
    .await
    .fails(1, message);
    // `serve` logs to stderr too, so only its last line is the error.
    let served = run(
        dir.path(),
        &[
            "serve",
            "--sandbox",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &url,
        ],
    )
    .await;
    assert_eq!(served.code, Some(1), "{}", served.stderr);
    let last = served.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tidepost: error: ") && last.contains(message),
        "{}",
        served.stderr
    );
}

#[tokio::test]
async fn unreachable_databases_are_one_line_runtime_errors() {
    let dir = TempDir::new().unwrap();
    let started = Instant::now();
    let run = run(
        dir.path(),
        &[
            "migrate",
            "--database",
            "postgres://nobody:hunter2@127.0.0.1:1/x",
        ],
    )
    .await;
    run.fails(1, "cannot reach the database (PostgreSQL)");
    assert!(
        !run.stderr.contains("hunter2"),
        "the password leaked: {}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let url = format!("sqlite://{}/sub/x.db", blocker.display());
    crate::cli::run(dir.path(), &["migrate", "--database", &url])
        .await
        .fails(1, "cannot reach the database (SQLite)");
}

#[tokio::test]
async fn configuration_errors_name_the_setting() {
    let dir = TempDir::new().unwrap();
    run_with(
        dir.path(),
        &["serve", "--sandbox"],
        &[("TIDEPOST_LISTEN", "nowhere")],
        None,
    )
    .await
    .fails(2, "invalid listen (from environment TIDEPOST_LISTEN)");
    run(dir.path(), &["serve", "--sandbox", "--listen", "nowhere:x"])
        .await
        .fails(2, "invalid listen (from flag --listen)");
    run_with(
        dir.path(),
        &["migrate"],
        &[("DATABASE_URL", "mysql://db/x")],
        None,
    )
    .await
    .fails(2, "invalid database_url (from environment DATABASE_URL)");
    run_with(
        dir.path(),
        &["serve", "--sandbox", "--listen", "127.0.0.1:0"],
        &[("TIDEPOST_SESSION_HOURS", "forever")],
        None,
    )
    .await
    .fails(2, "invalid session_hours");
    run_with(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[("TIDEPOST_KEYS", "k1:short")],
        None,
    )
    .await
    .fails(2, "is not https");
    std::fs::write(
        dir.path().join("tidepost.toml"),
        "lisen = \"127.0.0.1:9\"\n",
    )
    .unwrap();
    run(dir.path(), &["migrate"])
        .await
        .fails(2, "unknown setting \"lisen\" in tidepost.toml");
    // An unknown command or flag is a usage error too (clap's own message, exit 2).
    let unknown = run(dir.path(), &["serve", "--no-such-flag"]).await;
    assert_eq!(unknown.code, Some(2));
}

#[tokio::test]
async fn serve_outside_sandbox_needs_https() {
    let dir = TempDir::new().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let keys = new_keys();
    for public_url in [None, Some("http://posts.example.com")] {
        let mut env = vec![("TIDEPOST_KEYS", keys.as_str())];
        if let Some(url) = public_url {
            env.push(("TIDEPOST_PUBLIC_URL", url));
        }
        run_with(
            dir.path(),
            &["serve", "--listen", "127.0.0.1:0", "--database", &db],
            &env,
            None,
        )
        .await
        .fails(2, "is not https: set TIDEPOST_PUBLIC_URL=https://");
    }
    // Outside sandbox mode a keyring is required.
    run_with(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0", "--database", &db],
        &[("TIDEPOST_PUBLIC_URL", "https://posts.example.com")],
        None,
    )
    .await
    .fails(2, "keys is required");
}

#[tokio::test]
async fn config_check_masks_secrets() {
    let dir = TempDir::new().unwrap();
    let keys = new_keys();
    let key_material = keys.split_once(':').unwrap().1.to_string();
    let run = run_with(
        dir.path(),
        &["config", "check"],
        &[
            ("TIDEPOST_KEYS", keys.as_str()),
            ("DATABASE_URL", "postgres://tp:hunter2@db.example/tp"),
            ("TIDEPOST_PUBLIC_URL", "https://posts.example.com"),
        ],
        None,
    )
    .await;
    run.ok();
    let out = &run.stdout;
    assert!(!out.contains(&key_material), "the keyring leaked:\n{out}");
    assert!(
        !out.contains("hunter2"),
        "the database password leaked:\n{out}"
    );
    assert!(out.contains("postgres://tp:****@db.example/tp"), "{out}");
    let keys_line = out
        .lines()
        .find(|l| l.starts_with("keys "))
        .expect("a keys line");
    assert!(keys_line.contains("********") && keys_line.contains("environment TIDEPOST_KEYS"));
    assert!(out.contains("listen"), "{out}");
    assert!(out.contains("(default)"), "{out}");
    assert!(out.contains("valid for `tidepost serve`"), "{out}");
}

#[tokio::test]
async fn config_reference_matches_the_docs() {
    let dir = TempDir::new().unwrap();
    let run = run(dir.path(), &["config", "reference"]).await;
    run.ok();
    assert_eq!(run.stdout, tidepost_app::config::reference_markdown());
}

#[tokio::test]
async fn keys_generate_prints_a_keyring_entry() {
    let dir = TempDir::new().unwrap();
    let first = run(dir.path(), &["keys", "generate"]).await;
    first.ok();
    let second = run(dir.path(), &["keys", "generate"]).await;
    let entry = first.stdout.trim();
    assert_eq!(first.stdout.lines().count(), 1, "{}", first.stdout);
    let keyring = Keyring::parse(entry).expect("a valid keyring entry");
    assert_eq!(keyring.key_ids().count(), 1);
    assert_ne!(entry, second.stdout.trim(), "each key is new");
    assert!(first.stderr.contains("TIDEPOST_KEYS"), "{}", first.stderr);
    // The entry works as the server's keyring.
    let both = format!("{},{entry}", second.stdout.trim());
    Keyring::parse(&both).expect("entries combine, newest first");
}

/// A `tidepost serve` subprocess, its announced address and what it printed.
struct Served {
    child: Child,
    stdout: Vec<String>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Served {
    /// Starts `tidepost ARGS` and reads its standard output until `until` appears in a line.
    async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], until: &str) -> Served {
        let mut child = tidepost(dir)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tidepost serve");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let done = line.contains(until);
                stdout.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        if found != Ok(true) {
            let _ = child.start_kill();
            let err = stderr.await.unwrap_or_default();
            panic!("tidepost never printed {until:?}; stdout: {stdout:?}\nstderr: {err}");
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Served {
            child,
            stdout,
            stderr,
        }
    }

    /// The base URL from `tidepost is listening on URL (…)`.
    fn base(&self) -> String {
        let line = self
            .stdout
            .iter()
            .find(|l| l.starts_with("tidepost is listening on "))
            .expect("the listening line");
        line["tidepost is listening on ".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    /// Sends SIGTERM and waits (15 s at most) for the process to exit.
    async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("tidepost stops within 15 s of SIGTERM")
            .unwrap();
        let stderr = self.stderr.await.unwrap();
        (status, stderr)
    }
}

async fn serve_sandbox_prints_a_setup_link_and_stops_on_sigterm(backend: Backend) {
    let dir = TempDir::new().unwrap();
    let (url, _db_dir) = unmigrated_db(backend).await;
    let started = Instant::now();
    let served = Served::start(
        dir.path(),
        &[
            "serve",
            "--sandbox",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &url,
        ],
        &[],
        "/setup?token=",
    )
    .await;
    let startup = started.elapsed();
    assert!(startup < Duration::from_secs(10), "started in {startup:?}");
    let base = served.base();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let link = served
        .stdout
        .iter()
        .find(|l| l.contains("/setup?token="))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        link.starts_with(&format!("{base}/setup?token=")),
        "the link points at the server: {link} (server {base})"
    );
    // The link opens the setup form; the key file for sandbox mode was made in the data folder.
    let http = client();
    let response = http.get(&link).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Welcome to tidepost")
    );
    assert!(dir.path().join("data/sandbox.keys").exists());
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let (status, stderr) = served.terminate().await;
    assert_eq!(
        status.code(),
        Some(0),
        "graceful exit on SIGTERM; stderr: {stderr}"
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn serve_terminates_tls_with_hsts() {
    let dir = TempDir::new().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let keys = new_keys();
    let cert_arg = cert.display().to_string();
    let key_arg = key.display().to_string();
    let served = Served::start(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ],
        &[("TIDEPOST_KEYS", keys.as_str())],
        "tidepost is listening on",
    )
    .await;
    let base = served.base();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    install_crypto();
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = https.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .expect("HSTS over HTTPS")
        .to_str()
        .unwrap()
        .to_string();
    assert!(hsts.starts_with("max-age="), "{hsts}");
    let login = https.get(format!("{base}/login")).send().await.unwrap();
    let cookie = set_cookie(login.headers(), "tidepost_login_csrf").unwrap();
    assert!(
        cookie.contains("Secure"),
        "cookies are Secure over HTTPS: {cookie}"
    );
    // Plain HTTP on the TLS port gets no page.
    let plain = bare_client()
        .get(base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.map(|r| r.status() != StatusCode::OK).unwrap_or(true));

    let (status, stderr) = served.terminate().await;
    assert_eq!(
        status.code(),
        Some(0),
        "graceful exit on SIGTERM; stderr: {stderr}"
    );
}

/// `tidepost emulator` alone prints the settings that point a `serve` without `--sandbox` at
/// it (base URLs with their host prefixes, the emulator's app credentials), as lines to paste;
/// each base URL answers its provider's first route (not a 404), the bare root answers an
/// index naming them, and `config check` takes the printed lines as a valid configuration.
#[tokio::test]
async fn emulator_prints_the_settings_to_point_serve_at_it() {
    let dir = TempDir::new().unwrap();
    let served = Served::start(
        dir.path(),
        &["emulator", "--listen", "127.0.0.1:0"],
        &[],
        "TIDEPOST_INSTAGRAM_VERIFY_TOKEN=",
    )
    .await;
    let root = served
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("tidepost emulator listening on "))
        .expect("the listening line")
        .trim()
        .to_string();
    let settings: Vec<(String, String)> = served
        .stdout
        .iter()
        .filter_map(|l| l.split_once('='))
        .filter(|(name, _)| name.starts_with("TIDEPOST_"))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let reference = tidepost_app::config::reference_markdown();
    let http = bare_client();
    // The printed base URLs are those `--sandbox` points the clients at (which the sandbox
    // tests drive end to end), under this emulator's root.
    let tiktok = tidepost_providers::tiktok::TikTokEndpoints::emulator(&root);
    let meta = tidepost_providers::meta::MetaEndpoints::emulator(&root);
    for (name, sandbox) in [
        ("TIDEPOST_TIKTOK_AUTH_BASE_URL", &tiktok.auth_base),
        ("TIDEPOST_TIKTOK_API_BASE_URL", &tiktok.api_base),
        ("TIDEPOST_FACEBOOK_WWW_BASE_URL", &meta.facebook_www),
        ("TIDEPOST_FACEBOOK_GRAPH_BASE_URL", &meta.graph),
        ("TIDEPOST_INSTAGRAM_WWW_BASE_URL", &meta.instagram_www),
        ("TIDEPOST_INSTAGRAM_API_BASE_URL", &meta.instagram_api),
        ("TIDEPOST_INSTAGRAM_GRAPH_BASE_URL", &meta.instagram_graph),
    ] {
        assert!(
            settings.iter().any(|(n, v)| n == name && v == sandbox),
            "{name} is not printed as {sandbox}: {settings:?}"
        );
    }
    for host in tidepost_emulator::HOSTS {
        let (_, value) = settings
            .iter()
            .find(|(name, _)| name == host.setting)
            .unwrap_or_else(|| panic!("{} is not printed: {:?}", host.setting, served.stdout));
        assert_eq!(value, &format!("{root}{}", host.prefix));
        assert!(
            reference.contains(host.setting),
            "{} is no setting",
            host.setting
        );
        assert!(
            reference.contains(&format!("`http://127.0.0.1:9000{}`", host.prefix)),
            "docs/configuration.md does not give the prefix of {}",
            host.setting
        );
        let (method, path) = host.probe;
        let url = format!("{value}{path}");
        let answer = match method {
            "POST" => http.post(&url).form(&[("x", "y")]).send().await.unwrap(),
            _ => http.get(&url).send().await.unwrap(),
        };
        assert_ne!(answer.status(), StatusCode::NOT_FOUND, "{method} {url}");
        assert!(
            answer.status().as_u16() < 500,
            "{method} {url}: {}",
            answer.status()
        );
        // The same path on the bare root (the mistake the docs warn of) is not the provider.
        let bare = http.get(format!("{root}{path}")).send().await.unwrap();
        assert_eq!(bare.status(), StatusCode::NOT_FOUND, "{root}{path}");
    }
    for name in [
        "TIDEPOST_TIKTOK_CLIENT_KEY",
        "TIDEPOST_TIKTOK_CLIENT_SECRET",
        "TIDEPOST_FACEBOOK_APP_ID",
        "TIDEPOST_FACEBOOK_APP_SECRET",
    ] {
        assert!(
            settings.iter().any(|(n, v)| n == name && !v.is_empty()),
            "{name}"
        );
        assert!(reference.contains(name), "{name} is no setting");
    }
    // The bare root names every base URL.
    let index: Value = http
        .get(format!("{root}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (name, value) in &settings {
        assert_eq!(
            index["settings"][name],
            Value::String(value.clone()),
            "{index}"
        );
    }
    assert_eq!(
        index["hosts"].as_array().map(Vec::len),
        Some(tidepost_emulator::HOSTS.len())
    );
    // tidepost takes the printed lines as they are.
    let keys = new_keys();
    let mut env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    env.push(("TIDEPOST_KEYS", keys.as_str()));
    env.push(("TIDEPOST_PUBLIC_URL", "https://posts.example.com"));
    let check = run_with(dir.path(), &["config", "check"], &env, None).await;
    check.ok();
    assert!(
        check.stdout.contains(&format!("{root}/tiktok/open")),
        "{}",
        check.stdout
    );
    let (status, stderr) = served.terminate().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// `storage check`, `storage migrate`, `config check` and `serve` with media on S3 (moto): the
/// check says what it tried; a bucket that does not exist is one line naming `s3_bucket`, for
/// the check (exit 1) and for `serve`, which refuses to start; the secret key is masked; a
/// local media folder is copied into the bucket, verified, and a second run copies nothing.
#[tokio::test]
async fn storage_commands_on_s3() {
    use sha2::Digest;
    let server = tokio::task::spawn_blocking(tidepost_app::media::s3_server::S3Server::start)
        .await
        .unwrap();
    let settings = server.env().await;
    let bucket = settings
        .iter()
        .find(|(n, _)| *n == "TIDEPOST_S3_BUCKET")
        .unwrap()
        .1
        .clone();
    let env: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let dir = TempDir::new().unwrap();

    let check = run_with(dir.path(), &["storage", "check"], &env, None).await;
    check.ok();
    assert!(
        check.stdout.contains(&format!(
            "s3://{bucket}/media: reachable; list, write, read and delete allowed"
        )),
        "{}",
        check.stdout
    );

    let mut missing = env.clone();
    missing.retain(|(n, _)| *n != "TIDEPOST_S3_BUCKET");
    missing.push(("TIDEPOST_S3_BUCKET", "no-such-bucket"));
    run_with(dir.path(), &["storage", "check"], &missing, None)
        .await
        .fails(1, "check s3_bucket: the bucket does not exist");
    let keys = new_keys();
    let mut serve_env = missing.clone();
    serve_env.push(("TIDEPOST_KEYS", keys.as_str()));
    run_with(
        dir.path(),
        &[
            "serve",
            "--sandbox",
            "--listen",
            "127.0.0.1:0",
            "--no-workers",
        ],
        &serve_env,
        None,
    )
    .await
    .fails(2, "s3_bucket");

    let shown = run_with(dir.path(), &["config", "check"], &env, None).await;
    shown.ok();
    assert!(
        !shown
            .stdout
            .contains(tidepost_app::media::s3_server::SECRET_ACCESS_KEY),
        "the S3 secret leaked:\n{}",
        shown.stdout
    );

    let folder = dir.path().join("old-media");
    std::fs::create_dir_all(&folder).unwrap();
    for body in [&b"one"[..], &b"two"[..]] {
        std::fs::write(folder.join(hex::encode(sha2::Sha256::digest(body))), body).unwrap();
    }
    let from = folder.display().to_string();
    let first = run_with(
        dir.path(),
        &["storage", "migrate", "--from", &from],
        &env,
        None,
    )
    .await;
    first.ok();
    assert!(
        first.stdout.contains(&format!(
            "2 copied, 0 already in s3://{bucket}/media, 0 failed"
        )),
        "{}",
        first.stdout
    );
    let again = run_with(
        dir.path(),
        &["storage", "migrate", "--from", &from],
        &env,
        None,
    )
    .await;
    again.ok();
    assert!(
        again.stdout.contains("0 copied, 2 already in"),
        "{}",
        again.stdout
    );
}
