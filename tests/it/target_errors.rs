//! The class "state that misleads", for a post's targets and their events: a target that
//! failed transiently and then published shows no error (the API's `error` is null, the post
//! page shows no error notice), while the attempt history stays on the jobs; and a TikTok post
//! whose public id arrives after moderation is announced `post.published` (without ids), then
//! `post.updated` with `post_ids` and `post_url`.
//!
//! Jobs run on `POST /api/v1/jobs/run-due` (no workers), so each fault hits the step it is
//! meant for.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

both_backends!(
    a_published_target_keeps_no_error_of_earlier_attempts,
    post_updated_carries_the_ids_that_arrive_after_published
);

struct Scene {
    app: TestApp,
    me: SignedIn,
    emu: String,
    key: String,
    worker: String,
    account: String,
}

impl Scene {
    async fn start(backend: Backend, creator: &str, settings: Value) -> Scene {
        let app = spawn_app_with(backend, Options::emulated()).await;
        let emu = app.emulator.clone().unwrap();
        set_emulator(&app, "tiktok", settings).await;
        let me = app.signed_in("target-errors").await;
        let key = app.api_key(&me.workspace.id, "api", &["api"]).await;
        let worker = app.api_key(&me.workspace.id, "cron", &["worker"]).await;
        crate::event_sequences::subscribe(&app, &key).await;
        let account = connect_new_creator(&app, &key, json!({"username": creator})).await;
        Scene {
            app,
            me,
            emu,
            key,
            worker,
            account,
        }
    }

    /// A direct post of a small video through the API; (post id, target id).
    async fn post(&self, caption: &str) -> (String, String) {
        let answer =
            post_tiktok_video(&self.app, &self.key, &self.account, caption, 32 * 1024).await;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["targets"][0]["id"].as_str().unwrap().to_string(),
        )
    }

    async fn faults(&self, set: Option<Value>) {
        emulator_faults(&self.emu, "tiktok", set).await;
    }

    /// Makes every waiting job due and runs what is due once.
    async fn run_due(&self) {
        sqlx::query("UPDATE jobs SET run_at = 0 WHERE state IN ('queued', 'failed')")
            .execute(self.app.db.pool())
            .await
            .unwrap();
        let answer = bare_client()
            .post(self.app.url("/api/v1/jobs/run-due"))
            .bearer_auth(&self.worker)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    async fn target(&self, post_id: &str) -> Value {
        let post: Value = self
            .app
            .api_get(&self.key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        post["targets"][0].clone()
    }

    /// Runs due jobs until `done` holds for the post's target (30 s at most); the target.
    async fn until(&self, post_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.run_due().await;
            let target = self.target(post_id).await;
            if done(&target) {
                return target;
            }
            assert_ne!(target["state"], "failed", "{what}: {target}");
            assert!(Instant::now() < deadline, "{what}: never: {target}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The `post.*` deliveries recorded for `target_id`, in the order of their events, once the
    /// dispatcher has made one of each recorded event: (type, data).
    async fn deliveries(&self, target_id: &str) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.run_due().await;
            let events: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type LIKE 'post.%' \
                 AND payload LIKE $2",
            )
            .bind(&self.me.workspace.id)
            .bind(format!("%{target_id}%"))
            .fetch_one(self.app.db.pool())
            .await
            .unwrap();
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT event_type, body FROM webhook_deliveries WHERE workspace_id = $1 \
                 AND event_type LIKE 'post.%' ORDER BY event_created_at, event_id",
            )
            .bind(&self.me.workspace.id)
            .fetch_all(self.app.db.pool())
            .await
            .unwrap();
            let mine: Vec<(String, Value)> = rows
                .into_iter()
                .map(|(kind, body)| {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    (kind, body["data"].clone())
                })
                .filter(|(_, data)| data["target_id"] == target_id)
                .collect();
            if events > 0 && mine.len() as i64 == events {
                return mine;
            }
            assert!(
                Instant::now() < deadline,
                "{events} events, deliveries: {mine:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// A 429 storm at TikTok makes the first attempt fail (its error shown while the target keeps
/// trying); once it ends, the target publishes and shows no error in the API or on the post's
/// page, while the publish job keeps the earlier attempt's error (shown as such on /jobs).
async fn a_published_target_keeps_no_error_of_earlier_attempts(backend: Backend) {
    let s = Scene::start(
        backend,
        "errors.storm",
        json!({"processing_delay_ms": 0, "moderation_delay_ms": 0}),
    )
    .await;
    let (post_id, target_id) = s.post("after the storm").await;

    s.faults(Some(
        json!({"rate_limit_share": 1.0, "retry_after_secs": 1}),
    ))
    .await;
    s.run_due().await;
    let trying = s.target(&post_id).await;
    assert_ne!(trying["state"], "failed", "{trying}");
    assert_ne!(trying["state"], "published", "{trying}");
    assert!(
        trying["error"]["code"].is_string(),
        "the storm's error is shown while the target keeps trying: {trying}"
    );

    s.faults(None).await;
    let published = s
        .until(&post_id, "published", |t| t["state"] == "published")
        .await;
    assert_eq!(published["error"], Value::Null, "{published}");
    let page = s
        .app
        .page_text(&s.me.client, &format!("/posts/{post_id}"))
        .await;
    assert!(
        !page.contains("class=\"notice error"),
        "the post page shows an earlier attempt's error: {page}"
    );
    assert!(
        page.contains("published"),
        "the post page says it is published: {page}"
    );

    // The history stays on the job: it succeeded after an attempt that failed.
    let jobs: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT state, last_error, payload FROM jobs WHERE kind = 'tiktok.publish'")
            .fetch_all(s.app.db.pool())
            .await
            .unwrap();
    let job = jobs
        .iter()
        .find(|(_, _, payload)| payload.contains(&target_id))
        .unwrap_or_else(|| panic!("no publish job of the target: {jobs:?}"));
    assert_eq!(job.0, "succeeded", "{job:?}");
    assert!(
        job.1.is_some(),
        "the earlier attempt's error is kept on the job: {job:?}"
    );
    let jobs_page = s.app.page_text(&s.me.client, "/jobs?state=succeeded").await;
    assert!(
        jobs_page.contains("Earlier attempt: "),
        "the jobs page shows the earlier attempt's error as such"
    );
    crate::event_sequences::assert_no_failure_reverses(&s.app.db, &s.me.workspace.id).await;
}

/// TikTok answers PUBLISH_COMPLETE before moderation gives the public post id: the target is
/// announced published without ids, then `post.updated` carries the ids and the post's URL, the
/// ones the API shows; exactly one `post.updated` although the status poll and TikTok's webhook
/// may both report the id.
async fn post_updated_carries_the_ids_that_arrive_after_published(backend: Backend) {
    let s = Scene::start(
        backend,
        "errors.moderated",
        json!({"processing_delay_ms": 0, "moderation_delay_ms": 2500}),
    )
    .await;
    let (post_id, target_id) = s.post("moderated later").await;
    let published = s
        .until(&post_id, "published", |t| t["state"] == "published")
        .await;
    assert_eq!(
        published["post_ids"],
        json!([]),
        "moderation is not over yet, so TikTok has not given the id: {published}"
    );
    let with_ids = s
        .until(&post_id, "the public post id", |t| {
            t["post_ids"].as_array().is_some_and(|ids| !ids.is_empty())
        })
        .await;
    let id = with_ids["post_ids"][0].as_str().unwrap().to_string();

    let deliveries = s.deliveries(&target_id).await;
    let kinds: Vec<&str> = deliveries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["post.published", "post.updated"], "{deliveries:?}");
    let (_, first) = &deliveries[0];
    assert_eq!(first["post_ids"], json!([]), "{first}");
    assert_eq!(first["post_url"], Value::Null, "{first}");
    assert_eq!(first["state"], "published", "{first}");
    let (_, updated) = &deliveries[1];
    assert_eq!(updated["post_id"], post_id.as_str(), "{updated}");
    assert_eq!(updated["state"], "published", "{updated}");
    assert_eq!(updated["post_ids"], json!([id]), "{updated}");
    let url = updated["post_url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("https://www.tiktok.com/") && url.ends_with(&id),
        "{updated}"
    );
    assert_eq!(updated["error"], Value::Null, "{updated}");
    assert_eq!(updated["attempt"], first["attempt"], "{updated}");
}
