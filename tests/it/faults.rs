//! Faults end to end: a real server with its workers and the provider emulator, whose knobs
//! inject 429 storms, 5xx bursts, latency, provider-side revocation and duplicated, reordered
//! webhooks; the test itself cuts the app's PostgreSQL connections mid-work and fills the media
//! disk. For each: tidepost keeps serving, shows the problem in the API (and on the post's page),
//! loses no post and no event, and recovers by itself once the fault ends.
//!
//! What the app tests already prove is not repeated here: resumed uploads after a dropped
//! connection (crates/app/tests/publish_resume.rs), a refused refresh marking the account
//! (connect_tokens.rs), out-of-order and duplicated webhook bodies at the service level
//! (publish_webhooks.rs).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

/// A server with workers and the emulator, a signed-in owner, an API key of their workspace.
struct Rig {
    app: TestApp,
    emu: String,
    me: SignedIn,
    key: String,
}

impl Rig {
    async fn start(backend: Backend, options: Options) -> Rig {
        let app = spawn_app_with(
            backend,
            Options {
                emulator: true,
                workers: true,
                ..options
            },
        )
        .await;
        let emu = app.emulator.clone().unwrap();
        // Short processing, so each round is about the fault and not the wait.
        set_emulator(
            &app,
            "tiktok",
            json!({"processing_delay_ms": 200, "moderation_delay_ms": 100}),
        )
        .await;
        let me = app.signed_in("faults").await;
        let key = app.api_key(&me.workspace.id, "faults", &[]).await;
        // Every post event is delivered, so each path can be checked for contradictions.
        crate::event_sequences::subscribe(&app, &key).await;
        Rig { app, emu, me, key }
    }

    /// A new public creator on the emulator, connected through the API; its account id.
    async fn account(&self, username: &str) -> String {
        connect_new_creator(&self.app, &self.key, json!({"username": username})).await
    }

    async fn faults(&self, set: Value) {
        emulator_faults(&self.emu, "tiktok", Some(set)).await;
    }

    async fn no_faults(&self) {
        emulator_faults(&self.emu, "tiktok", None).await;
    }

    /// A direct post of a small video (distinct for each caption) through the API; its id.
    async fn post(&self, account_id: &str, caption: &str, bytes: usize) -> reqwest::Response {
        post_tiktok_video(&self.app, &self.key, account_id, caption, bytes).await
    }

    async fn post_ok(&self, account_id: &str, caption: &str) -> String {
        let answer = self.post(account_id, caption, 32 * 1024).await;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::ACCEPTED, "{caption}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn show(&self, post_id: &str) -> Value {
        let answer = self
            .app
            .api_get(&self.key, &format!("/api/v1/posts/{post_id}"))
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.unwrap()
    }

    /// Waits until every post's target is published (`secs` at most).
    async fn all_published(&self, posts: &[String], secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        for id in posts {
            loop {
                let post = self.show(id).await;
                let state = post["targets"][0]["state"].as_str().unwrap().to_string();
                if state == "published" {
                    break;
                }
                assert_ne!(state, "failed", "a post was lost to the fault: {post}");
                assert!(Instant::now() < deadline, "never published: {post}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// The server answers its liveness probe and the API at once (under 2 s each).
    async fn serving(&self) {
        let started = Instant::now();
        let health = bare_client()
            .get(self.app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let list = self.app.api_get(&self.key, "/api/v1/posts").await;
        assert_eq!(list.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "slow to answer during a fault: {:?}",
            started.elapsed()
        );
    }

    /// Each caption was published exactly once on the emulator.
    async fn published_once(&self, captions: &[String]) {
        // Whatever path ended each target, no attempt was announced failed, then published.
        crate::event_sequences::assert_no_failure_reverses(&self.app.db, &self.me.workspace.id)
            .await;
        let publishes = emulator_json(&self.emu, "/_emulator/tiktok/publishes").await;
        let mut count: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in publishes["publishes"].as_array().unwrap() {
            count
                .entry(p["post_info"]["title"].as_str().unwrap_or_default())
                .or_default()
                .push(p);
        }
        for caption in captions {
            let found = count.get(caption.as_str()).cloned().unwrap_or_default();
            assert_eq!(found.len(), 1, "publishes of {caption:?}: {found:?}");
            assert_eq!(found[0]["status"], "PUBLISH_COMPLETE", "{}", found[0]);
        }
    }
}

both_backends!(provider_storms_and_latency);

/// A 429 storm, a 5xx burst and slow answers, one account each. Posts already at TikTok (long
/// processing, so they are mid-flight when the fault starts) are not failed by it; a post
/// submitted during the fault, its creator's options read within the minute, is accepted
/// without asking TikTok (and the post form shows the options kept); meanwhile the server
/// answers at once. Once the fault ends every post is published, each exactly once.
async fn provider_storms_and_latency(backend: Backend) {
    let rig = Rig::start(backend, Options::default()).await;
    let slow_processing = bare_client()
        .put(format!("{}/_emulator/tiktok/settings", rig.emu))
        .json(&json!({"processing_delay_ms": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow_processing.status(), StatusCode::OK);
    let rounds = [
        (
            "storm",
            json!({"rate_limit_share": 1.0, "retry_after_secs": 1}),
            true,
        ),
        ("burst", json!({"server_error_share": 1.0}), true),
        ("slow", json!({"latency_ms": 1500}), false),
    ];
    let mut captions = Vec::new();
    for (name, faults, broken) in rounds {
        let account = rig.account(&format!("faults.{name}")).await;
        let mut posts = Vec::new();
        for i in 0..2 {
            let caption = format!("{name} {i}");
            posts.push(rig.post_ok(&account, &caption).await);
            captions.push(caption);
        }
        // Both at TikTok, processing.
        let deadline = Instant::now() + Duration::from_secs(30);
        for id in &posts {
            loop {
                let post = rig.show(id).await;
                if post["targets"][0]["publish_id"].is_string()
                    && post["targets"][0]["state"] != "uploading"
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{name}: not at TikTok: {post}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        rig.faults(faults).await;
        let late = format!("{name} late");
        if broken {
            // The creator's options were read seconds ago (the two posts above), within the
            // creator_info cache's minute: a post submitted during the fault is accepted without
            // asking TikTok, and sent once TikTok answers again (checked below). A post whose
            // reading is not recent is refused with 503 and Retry-After, and the composer says
            // so: tests/it/provider_trouble.rs.
            posts.push(rig.post_ok(&account, &late).await);
            let form = rig
                .me
                .client
                .get(rig.app.url(&format!("/compose?account={account}")))
                .send()
                .await
                .unwrap();
            // The page answers (it shows every TikTok account, so the accounts of the earlier
            // rounds, read more than a minute ago, may say TikTok did not answer).
            assert_eq!(form.status(), StatusCode::OK, "{name}: the composer");
        }
        for _ in 0..8 {
            rig.serving().await;
            for id in &posts {
                let post = rig.show(id).await;
                assert_ne!(post["targets"][0]["state"], "failed", "{name}: {post}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if broken {
            rig.no_faults().await;
        } else {
            // Slow, not broken: the post submitted meanwhile is accepted.
            posts.push(rig.post_ok(&account, &late).await);
            rig.no_faults().await;
        }
        captions.push(late);
        rig.all_published(&posts, 120).await;
    }
    rig.published_once(&captions).await;
}

#[tokio::test]
async fn revoked_by_the_creator_then_reconnected() {
    let rig = Rig::start(Backend::Postgres, Options::default()).await;
    let account = rig.account("faults.revoked").await;
    // The creator removes the app on TikTok: every token of theirs stops working, and TikTok
    // sends authorization.removed.
    let revoked = bare_client()
        .post(format!("{}/_emulator/tiktok/revoke", rig.emu))
        .json(&json!({"creator": "faults.revoked", "reason": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);

    // tidepost learns it (from the webhook or the next call) and says so in the API.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut post_id = None;
    loop {
        rig.serving().await;
        let shown: Value = rig
            .app
            .api_get(&rig.key, &format!("/api/v1/accounts/{account}"))
            .await
            .json()
            .await
            .unwrap();
        if shown["reconnect_required"] == true {
            break;
        }
        if post_id.is_none() {
            // A post tried meanwhile finds out through TikTok's 401.
            let answer = rig.post(&account, "revoked 0", 32 * 1024).await;
            if answer.status() == StatusCode::ACCEPTED {
                let body: Value = answer.json().await.unwrap();
                post_id = Some(body["id"].as_str().unwrap().to_string());
            } else {
                problem(answer, StatusCode::CONFLICT, "needs-reauth").await;
            }
        }
        assert!(Instant::now() < deadline, "never marked: {shown}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A new post is refused with a clear problem; the accounts page offers Reconnect.
    let refused = rig.post(&account, "revoked 1", 32 * 1024).await;
    let body = problem(refused, StatusCode::CONFLICT, "needs-reauth").await;
    assert!(
        body["detail"].as_str().unwrap().contains("connect"),
        "{body}"
    );
    let page = rig
        .me
        .client
        .get(rig.app.url("/accounts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Reconnect"), "{page}");

    // The creator connects again: the same account comes back, and a post goes out.
    let again = connect_tiktok_via_api(&rig.app, &rig.key, "faults.revoked").await;
    assert_eq!(again, account);
    let shown: Value = rig
        .app
        .api_get(&rig.key, &format!("/api/v1/accounts/{account}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["reconnect_required"], false, "{shown}");
    let mut posts = vec![rig.post_ok(&account, "revoked 2").await];
    let mut captions = vec!["revoked 2".to_string()];
    // A post that failed on the revoked token is retried and goes out too.
    if let Some(id) = post_id {
        let post = loop {
            let post = rig.show(&id).await;
            if post["targets"][0]["state"] == "failed" || post["targets"][0]["state"] == "published"
            {
                break post;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if post["targets"][0]["state"] == "failed" {
            let target = post["targets"][0]["id"].as_str().unwrap();
            let retried = bare_client()
                .post(
                    rig.app
                        .url(&format!("/api/v1/posts/{id}/targets/{target}/retry")),
                )
                .bearer_auth(&rig.key)
                .send()
                .await
                .unwrap();
            assert!(retried.status().is_success(), "{}", retried.status());
        }
        posts.push(id);
        captions.push("revoked 0".into());
    }
    rig.all_published(&posts, 60).await;
    rig.published_once(&captions).await;
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_apply_once() {
    let rig = Rig::start(Backend::Postgres, Options::default()).await;
    let account = rig.account("faults.hooks").await;
    rig.faults(json!({"duplicate_webhooks": true, "reorder_webhooks": 3}))
        .await;
    let mut posts = Vec::new();
    let mut captions = Vec::new();
    for i in 0..3 {
        let caption = format!("hooks {i}");
        posts.push(rig.post_ok(&account, &caption).await);
        captions.push(caption);
    }
    rig.all_published(&posts, 90).await;
    // Send whatever is still held back, then every body sent must be stored and applied once.
    let flushed = bare_client()
        .post(format!("{}/_emulator/webhooks/flush", rig.emu))
        .send()
        .await
        .unwrap();
    assert_eq!(flushed.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempts: Value = emulator_json(&rig.emu, "/_emulator/webhooks").await;
        let attempts = attempts["attempts"].as_array().unwrap();
        let bodies: HashSet<&str> = attempts
            .iter()
            .filter(|a| a["status"] == 200)
            .map(|a| a["body"].as_str().unwrap())
            .collect();
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT body, applied_at FROM inbound_events WHERE provider = 'tiktok'")
                .fetch_all(rig.app.db.pool())
                .await
                .unwrap();
        let stored: HashSet<&str> = rows.iter().map(|(b, _)| b.as_str()).collect();
        let applied = rows.iter().all(|(_, at)| at.is_some());
        if attempts.len() > bodies.len() && stored == bodies && applied {
            assert_eq!(rows.len(), bodies.len(), "an event stored twice");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} attempts, {} bodies, {} stored, applied: {applied}",
            attempts.len(),
            bodies.len(),
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    rig.no_faults().await;
    for id in &posts {
        let post = rig.show(id).await;
        assert_eq!(post["targets"][0]["state"], "published", "{post}");
        assert!(
            !post["targets"][0]["post_ids"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{post}"
        );
    }
    rig.published_once(&captions).await;
}

/// The app's own PostgreSQL connections, by the `application_name` its URL gives them.
async fn terminate_backends(application_name: &str) -> i64 {
    let base = std::env::var("TIDEPOST_TEST_DATABASE_URL")
        .unwrap_or_else(|_| tidepost_store::testing::DEFAULT_TEST_PG_URL.to_string());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(application_name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let _ = admin.close().await;
    killed.into_iter().filter(|k| *k).count() as i64
}

/// The database goes away under the app (its connections terminated, again and again for a
/// few seconds, as a PostgreSQL restart does): the process keeps answering its liveness probe,
/// the API answers with a problem rather than hanging, and once the database is back every post
/// is published exactly once without anyone touching anything.
#[tokio::test]
async fn database_connections_cut_during_work() {
    let name = format!("tpfaults{:08x}", rand_u32());
    let url = format!(
        "{}&application_name={name}",
        tidepost_store::testing::TestDb::postgres_schema_url().await
    );
    let db = tidepost_store::Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let rig = Rig::start(
        Backend::Postgres,
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    let account = rig.account("faults.db").await;
    let mut posts = Vec::new();
    let mut captions = Vec::new();
    for i in 0..4 {
        let caption = format!("db {i}");
        posts.push(rig.post_ok(&account, &caption).await);
        captions.push(caption);
    }
    let mut killed = 0;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        killed += terminate_backends(&name).await;
        let health = bare_client()
            .get(rig.app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let list = rig.app.api_get(&rig.key, "/api/v1/posts").await;
        assert!(
            list.status() == StatusCode::OK || list.status().is_server_error(),
            "{}",
            list.status()
        );
        if list.status().is_server_error() {
            let kind = list
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(kind.as_deref(), Some("application/problem+json"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(killed > 0, "no connection of the app was cut");
    // Back by itself: ready again, every post out once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = bare_client()
            .get(rig.app.url("/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rig.all_published(&posts, 120).await;
    rig.published_once(&captions).await;
    // A job the outage made fail waits for its retry (`failed`, with a later run_at): every
    // such retry succeeds once the database is back, and none is given up (`dead`).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let waiting: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT kind, last_error FROM jobs WHERE state IN ('failed', 'dead')")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'dead'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            dead, 0,
            "a job failed for good over the outage: {waiting:?}"
        );
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a job failed for good over the outage (its retry never succeeded): {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where mounting is not allowed (not root, or no tmpfs): the test says so.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// The media folder on a 2 MiB disk that fills up: an upload is refused with a problem that
/// says the storage is full (507), no partial file is left behind, the server keeps serving,
/// and once space is freed the same upload is accepted and published.
#[tokio::test]
async fn media_disk_full() {
    let Some(disk) = SmallDisk::mount("2m") else {
        eprintln!("media_disk_full: skipped, this machine cannot mount a tmpfs (needs root)");
        return;
    };
    let rig = Rig::start(
        Backend::Sqlite,
        Options {
            env: vec![("TIDEPOST_DATA_DIR", disk.path.display().to_string())],
            ..Options::default()
        },
    )
    .await;
    let account = rig.account("faults.disk").await;
    let filler = disk.path.join("filler");
    std::fs::write(&filler, vec![1u8; 1900 * 1024]).unwrap();
    let refused = rig.post(&account, "disk 0", 512 * 1024).await;
    let body = problem(
        refused,
        StatusCode::INSUFFICIENT_STORAGE,
        "insufficient-storage",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
    rig.serving().await;
    let leftovers: Vec<String> = std::fs::read_dir(disk.path.join("media"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let posts: Value = rig
        .app
        .api_get(&rig.key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(posts["data"].as_array().map(Vec::len), Some(0), "{posts}");

    std::fs::remove_file(&filler).unwrap();
    let answer = rig.post(&account, "disk 0", 512 * 1024).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let id = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.all_published(&[id], 60).await;
    rig.published_once(&["disk 0".to_string()]).await;
}

both_backends!(media_on_s3_publishes_and_survives_an_outage);

/// Media on S3 (moto): a video of three TikTok chunks is sent from ranged reads of the bucket
/// and published once; `/readyz` names the bucket. The S3 server stopped: `/readyz` says the
/// storage is unavailable (degraded, not down), an upload is refused with a 503 problem that
/// says so (never a 500), no post is made, the server keeps serving. Back: the same upload is
/// accepted and published exactly once.
async fn media_on_s3_publishes_and_survives_an_outage(backend: Backend) {
    let mut rig = Rig::start(
        backend,
        Options {
            s3: true,
            ..Options::default()
        },
    )
    .await;
    let account = rig.account("faults.s3").await;
    // The default chunk is 10 MB: 25 MB is three chunks, each a ranged GET of the bucket.
    let answer = rig.post(&account, "s3 0", 25 * 1024 * 1024).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let first = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.all_published(&[first], 120).await;
    rig.published_once(&["s3 0".to_string()]).await;
    let ready: Value = bare_client()
        .get(rig.app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["storage"]["available"], true, "{ready}");
    assert!(
        ready["storage"]["at"]
            .as_str()
            .unwrap()
            .starts_with("s3://tidepost-"),
        "{ready}"
    );

    rig.app.s3.as_mut().unwrap().stop();
    let ready = bare_client()
        .get(rig.app.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "degraded, not out of rotation"
    );
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["storage"]["available"], false, "{ready}");
    assert!(
        ready["storage"]["error"]
            .as_str()
            .unwrap()
            .contains("storage"),
        "{ready}"
    );
    let refused = rig.post(&account, "s3 1", 64 * 1024).await;
    let body = problem(refused, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("media storage"),
        "{body}"
    );
    rig.serving().await;
    let posts: Value = rig
        .app
        .api_get(&rig.key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(posts["data"].as_array().map(Vec::len), Some(1), "{posts}");

    rig.app.s3.as_mut().unwrap().restart().await;
    let answer = rig.post(&account, "s3 1", 64 * 1024).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let id = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.all_published(&[id], 60).await;
    rig.published_once(&["s3 0".to_string(), "s3 1".to_string()])
        .await;
}

/// A TCP proxy in front of the S3 server: stopping it is an outage that keeps the bucket's
/// state (moto keeps everything in memory, so stopping moto itself would forget the multipart
/// upload a resumed upload goes on with).
struct Proxy {
    port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        Proxy {
            port,
            target,
            task: Some(tokio::spawn(Self::serve(listener, target))),
        }
    }

    /// Refuses new connections and cuts the open ones.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Its listener and connections are closed once the task is.
            let _ = task.await;
        }
    }

    /// Answers every request as S3 does to credentials it no longer accepts (a revoked key).
    async fn refuse(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = inbound.read(&mut buf).await;
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
                    let answer = format!(
                        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = inbound.write_all(answer.as_bytes()).await;
                    let _ = inbound.shutdown().await;
                });
            }
        }));
    }

    async fn resume(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(Self::serve(listener, self.target)));
    }

    async fn serve(listener: tokio::net::TcpListener, target: u16) {
        // Dropped with the task: every connection is cut.
        let mut open = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            open.spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
            while open.try_join_next().is_some() {}
        }
    }
}

/// The S3 server unreachable in the middle of a resumable upload: the PATCH is a 503 problem
/// that names the media storage (never a 500), the offset stays where the bucket has every
/// byte (nothing half-kept), the server keeps serving; once the bucket answers again the
/// client resumes from the offset `HEAD` tells and the upload becomes the media, byte for byte,
/// with no multipart upload left behind.
#[tokio::test]
async fn s3_outage_during_a_resumable_upload() {
    let server = tokio::task::spawn_blocking(tidepost_app::media::s3_server::S3Server::start)
        .await
        .unwrap();
    let bucket = server.bucket().await;
    let moto_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut proxy = Proxy::start(moto_port).await;
    let mut env = server.env_of(&bucket);
    for (name, value) in &mut env {
        if *name == "TIDEPOST_S3_ENDPOINT" {
            *value = format!("http://127.0.0.1:{}", proxy.port);
        }
    }
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            env,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("s3-outage").await;
    let key = app.api_key(&me.workspace.id, "tus", &[]).await;
    let http = bare_client();
    let part = tidepost_app::media::s3::PART;
    let video = tidepost_app::media::testing::video(2 * part + 1000, "s3 outage");
    let created = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", video.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let url = app.url(created.headers()["location"].to_str().unwrap());
    let patch = |from: usize| {
        http.patch(&url)
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", from.to_string())
            .body(video[from..].to_vec())
            .send()
    };
    let head = || async {
        let r = http
            .head(&url)
            .bearer_auth(&key)
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let first = part + 5000;
    let r = http
        .patch(&url)
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(video[..first].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    proxy.stop().await;
    let refused = patch(first).await.unwrap();
    let body = problem(refused, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        body["detail"].as_str().unwrap().contains("media storage"),
        "{body}"
    );
    assert_eq!(head().await, first, "nothing half-kept");
    let ready: Value = bare_client()
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["storage"]["available"], false, "{ready}");

    proxy.resume().await;
    let offset = head().await;
    let r = patch(offset).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let media_id = r.headers()["tidepost-media-id"]
        .to_str()
        .unwrap()
        .to_string();
    let media: Value = app
        .api_get(&key, &format!("/api/v1/media/{media_id}"))
        .await
        .json()
        .await
        .unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&video));
    assert_eq!(media["sha256"], sha.as_str(), "{media}");
    assert_eq!(media["size_bytes"], video.len(), "{media}");
    assert!(server.multipart_uploads(&bucket).await.is_empty());
}

/// The S3 server unreachable while a worker sends a video's chunks to TikTok (each chunk a
/// ranged read of the bucket, TikTok slowed so the cut lands mid-send): the send fails, the
/// job is retried once the bucket answers, and the post is published exactly once.
#[tokio::test]
async fn s3_outage_during_a_tiktok_chunk_send() {
    let server = tokio::task::spawn_blocking(tidepost_app::media::s3_server::S3Server::start)
        .await
        .unwrap();
    let bucket = server.bucket().await;
    let moto_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut proxy = Proxy::start(moto_port).await;
    let mut env = server.env_of(&bucket);
    for (name, value) in &mut env {
        if *name == "TIDEPOST_S3_ENDPOINT" {
            *value = format!("http://127.0.0.1:{}", proxy.port);
        }
    }
    let rig = Rig::start(
        Backend::Sqlite,
        Options {
            env,
            ..Options::default()
        },
    )
    .await;
    let account = rig.account("faults.s3chunks").await;
    rig.faults(json!({"latency_ms": 1500})).await;
    // Three chunks of the default 10 MB.
    let answer = rig.post(&account, "s3 chunks", 25 * 1024 * 1024).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let id = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    loop {
        let acked: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(chunks_acked), 0) FROM post_targets WHERE post_id = $1",
        )
        .bind(&id)
        .fetch_one(rig.app.db.pool())
        .await
        .unwrap();
        if acked >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no chunk was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.resume().await;
    rig.no_faults().await;
    rig.all_published(std::slice::from_ref(&id), 180).await;
    rig.published_once(&["s3 chunks".to_string()]).await;
    // The outage cut a send: the publish job ran more than once.
    let attempts: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(attempts), 0) FROM jobs WHERE kind = 'tiktok.publish'",
    )
    .fetch_one(rig.app.db.pool())
    .await
    .unwrap();
    assert!(attempts >= 2, "the publish job ran {attempts} time(s)");
}

/// The S3 credentials revoked (every request answered 403 `InvalidAccessKeyId`): `/readyz`
/// reports the storage unavailable with S3's answer, and the media page says uploads fail and
/// what to check; once the bucket accepts tidepost again both are clear.
#[tokio::test]
async fn revoked_s3_credentials_show_in_readyz_and_on_the_media_page() {
    let server = tokio::task::spawn_blocking(tidepost_app::media::s3_server::S3Server::start)
        .await
        .unwrap();
    let bucket = server.bucket().await;
    let moto_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut proxy = Proxy::start(moto_port).await;
    let mut env = server.env_of(&bucket);
    for (name, value) in &mut env {
        if *name == "TIDEPOST_S3_ENDPOINT" {
            *value = format!("http://127.0.0.1:{}", proxy.port);
        }
    }
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            env,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("s3-revoked").await;
    let page = app.page_text(&me.client, "/media").await;
    assert!(!page.contains("data-storage-down"), "{page}");

    proxy.refuse().await;
    let ready: Value = bare_client()
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["storage"]["available"], false, "{ready}");
    let page = app.page_text(&me.client, "/media").await;
    assert!(page.contains("data-storage-down"), "{page}");
    assert!(
        page.contains("media storage does not answer or refuses tidepost"),
        "{page}"
    );
    assert!(page.contains(&format!("s3://{bucket}")), "{page}");
    assert!(
        !page.contains(tidepost_app::media::s3_server::SECRET_ACCESS_KEY),
        "no secret on the page"
    );

    proxy.resume().await;
    let page = app.page_text(&me.client, "/media").await;
    assert!(!page.contains("data-storage-down"), "{page}");
}
