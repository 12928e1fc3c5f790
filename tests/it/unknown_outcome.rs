//! TikTok posts whose outcome is unknown, end to end: a worker dies after its publish request
//! reached TikTok and before the answer was stored (the job step machinery, driven here), the
//! server fails the target as `init_outcome_unknown`, the post page explains it with the two
//! actions instead of Retry, and `tiktok.reconcile` finds the one public video and marks the
//! target published. Then the people's ways out: send again (confirmed, in the UI) and mark
//! published (API), each refused with problem+json in a bad state.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_jobs::{
    Clock, JobContext, JobError, Queue, Registry, StepState, drain_due, handler_fn,
};

use crate::support::*;

both_backends!(an_unknown_outcome_is_reconciled_or_settled_by_a_person);

/// Serves a small video on a free local port; returns its URL.
async fn video_server() -> String {
    let router = axum::Router::new().route(
        "/media/clip.mp4",
        axum::routing::get(|| async { tidepost_app::media::testing::video(4096, "clip") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/media/clip.mp4")
}

struct Scene {
    app: TestApp,
    emulator: String,
    key: String,
    worker: String,
    account: String,
    video: String,
}

impl Scene {
    async fn post(&self, caption: &str) -> (String, String) {
        let answer = bare_client()
            .post(self.app.url("/api/v1/posts"))
            .bearer_auth(&self.key)
            .json(&json!({
                "account_id": self.account, "caption": caption, "media_url": self.video,
                "privacy_level": "PUBLIC_TO_EVERYONE", "mode": "direct",
            }))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "{status} {body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["targets"][0]["id"].as_str().unwrap().to_string(),
        )
    }

    /// The publish job's first run records the init intent, sends the init to TikTok when
    /// `send`, and dies before the answer is stored; its retry is then made due.
    async fn die_after_init(&self, target_id: &str, caption: &str, send: bool) {
        sqlx::query("UPDATE post_targets SET init_at = $1 WHERE id = $2")
            .bind(tidepost_domain::now_ms())
            .bind(target_id)
            .execute(self.app.db.pool())
            .await
            .unwrap();
        let minted: Value = bare_client()
            .post(format!("{}/_emulator/tiktok/token", self.emulator))
            .json(&json!({"creator": "tidepost.sandbox"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = minted["access_token"].as_str().unwrap().to_string();
        let init = format!("{}/tiktok/open/v2/post/publish/video/init/", self.emulator);
        let body = json!({
            "post_info": {"title": caption, "privacy_level": "PUBLIC_TO_EVERYONE", "brand_content_toggle": false},
            "source_info": {"source": "PULL_FROM_URL", "video_url": self.video},
        });
        let dying = Registry::new().register(
            "tiktok.publish",
            handler_fn(move |ctx: JobContext, _: Value| {
                let (token, init, body) = (token.clone(), init.clone(), body.clone());
                async move {
                    let StepState::New(intent) = ctx.step("init-0").await? else {
                        panic!("the first run records the intent");
                    };
                    if send {
                        let sent = bare_client()
                            .post(init)
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(sent.status(), StatusCode::OK);
                    }
                    std::mem::forget(intent);
                    Err(JobError::retryable("the worker died"))
                }
            }),
        );
        let queue = Queue::with_clock(self.app.db.clone(), Clock::system());
        let report = drain_due(&queue, &dying, Some(&["tiktok.publish".to_string()]), 1)
            .await
            .unwrap();
        assert_eq!(report.claimed, 1, "{report:?}");
        self.make_due("tiktok.publish").await;
    }

    async fn make_due(&self, kind: &str) {
        sqlx::query("UPDATE jobs SET run_at = 0 WHERE kind = $1 AND state IN ('queued', 'failed')")
            .bind(kind)
            .execute(self.app.db.pool())
            .await
            .unwrap();
    }

    async fn run_due(&self) -> Value {
        let answer = bare_client()
            .post(self.app.url("/api/v1/jobs/run-due"))
            .bearer_auth(&self.worker)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.unwrap()
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

    async fn publishes(&self) -> Vec<Value> {
        let all = emulator_json(&self.emulator, "/_emulator/tiktok/publishes").await;
        all["publishes"].as_array().unwrap().clone()
    }

    async fn action(
        &self,
        post: &str,
        target: &str,
        action: &str,
        body: Value,
    ) -> reqwest::Response {
        bare_client()
            .post(
                self.app
                    .url(&format!("/api/v1/posts/{post}/targets/{target}/{action}")),
            )
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

async fn an_unknown_outcome_is_reconciled_or_settled_by_a_person(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Default::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().unwrap();
    let me = app.signed_in("unknown-outcome").await;
    let key = app.api_key(&me.workspace.id, "api", &["api"]).await;
    let worker = app.api_key(&me.workspace.id, "cron", &["worker"]).await;
    crate::event_sequences::subscribe(&app, &key).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let video = video_server().await;
    let prefix = video.trim_end_matches("clip.mp4").to_string();
    let set = bare_client()
        .put(format!("{emulator}/_emulator/tiktok/settings"))
        .json(&json!({"verified_url_prefixes": [prefix], "processing_delay_ms": 0, "moderation_delay_ms": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let s = Scene {
        app,
        emulator,
        key,
        worker,
        account,
        video,
    };

    // 1. The request reached TikTok; the answer was lost.
    let (post_a, target_a) = s.post("harbour at dawn").await;
    s.die_after_init(&target_a, "harbour at dawn", true).await;
    s.run_due().await;
    let target = s.target(&post_a).await;
    assert_eq!(target["state"], "failed", "{target}");
    assert_eq!(target["error"]["code"], "init_outcome_unknown", "{target}");

    // The page says what happened and offers the two actions, not Retry.
    let page = s
        .app
        .page_text(&me.client, &format!("/posts/{post_a}"))
        .await;
    assert!(page.contains("Did this post reach TikTok?"), "{page}");
    assert!(page.contains("It is on TikTok — mark published"));
    assert!(page.contains("It is not on TikTok — send again"));
    assert!(
        page.contains("private posts"),
        "the public-only listing is said"
    );
    assert!(!page.contains(">Retry<"), "{page}");
    // The generic retry refuses it.
    let retried = bare_client()
        .post(
            s.app
                .url(&format!("/api/v1/posts/{post_a}/targets/{target_a}/retry")),
        )
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    problem(retried, StatusCode::CONFLICT, "conflict").await;

    // TikTok finishes the post it received; the reconcile job finds it and only it.
    for _ in 0..200 {
        let publishes = s.publishes().await;
        if publishes
            .iter()
            .any(|p| !p["post_ids"].as_array().unwrap().is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    s.make_due("tiktok.reconcile").await;
    s.run_due().await;
    let target = s.target(&post_a).await;
    assert_eq!(target["state"], "published", "{target}");
    let publishes = s.publishes().await;
    assert_eq!(publishes.len(), 1, "never sent twice: {publishes:?}");
    let video_id = publishes[0]["post_ids"][0].to_string();
    assert_eq!(
        target["post_ids"],
        json!([video_id.trim_matches('"')]),
        "{target}"
    );
    // Settled: the actions now answer 409.
    let again = s
        .action(&post_a, &target_a, "send-again", json!({"confirm": true}))
        .await;
    problem(again, StatusCode::CONFLICT, "conflict").await;

    // 2. Nothing reached TikTok: the person sends it again, confirming, in the UI.
    let (post_b, target_b) = s.post("lighthouse at noon").await;
    s.die_after_init(&target_b, "lighthouse at noon", false)
        .await;
    s.run_due().await;
    assert_eq!(
        s.target(&post_b).await["error"]["code"],
        "init_outcome_unknown"
    );
    let unconfirmed = s.action(&post_b, &target_b, "send-again", json!({})).await;
    problem(
        unconfirmed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let url = s
        .app
        .url(&format!("/posts/{post_b}/targets/{target_b}/send-again"));
    let no_box = me
        .client
        .post(&url)
        .form(&[("csrf", me.csrf.as_str())])
        .send()
        .await
        .unwrap();
    page_error(
        no_box,
        StatusCode::CONFLICT,
        "confirm that the post is not on TikTok",
    )
    .await;
    let no_csrf = me
        .client
        .post(&url)
        .form(&[("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let sent = me
        .client
        .post(&url)
        .form(&[("csrf", me.csrf.as_str()), ("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_redirection(), "{}", sent.status());
    let target = s.target(&post_b).await;
    assert_eq!(target["state"], "queued", "{target}");
    assert!(target["error"].is_null(), "{target}");
    // Its new publish goes out (a new init generation, not the lost one).
    s.run_due().await;
    let publishes = s.publishes().await;
    assert_eq!(publishes.len(), 2, "{publishes:?}");
    assert_ne!(s.target(&post_b).await["state"], "failed");

    // 3. The person saw it on TikTok: marked published through the API with its link.
    let (post_c, target_c) = s.post("gulls at dusk").await;
    s.die_after_init(&target_c, "gulls at dusk", false).await;
    s.run_due().await;
    let bad = s
        .action(
            &post_c,
            &target_c,
            "mark-published",
            json!({"video": "not a link"}),
        )
        .await;
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    let marked = s
        .action(
            &post_c,
            &target_c,
            "mark-published",
            json!({"video": "https://www.tiktok.com/@tidepost.sandbox/video/7311111111111111111"}),
        )
        .await;
    assert_eq!(marked.status(), StatusCode::OK);
    let marked: Value = marked.json().await.unwrap();
    assert_eq!(marked["targets"][0]["state"], "published", "{marked}");
    assert_eq!(
        marked["targets"][0]["post_ids"],
        json!(["7311111111111111111"])
    );

    // The lost answers were announced as unknown, never as failures, and every target that
    // turned out published was announced published after that.
    s.run_due().await;
    s.run_due().await;
    crate::event_sequences::assert_no_failure_reverses(&s.app.db, &me.workspace.id).await;
    for target in [&target_a, &target_c] {
        let kinds: Vec<String> = sqlx::query_scalar(
            "SELECT type FROM events WHERE workspace_id = $1 AND type LIKE 'post.%' \
             AND payload LIKE $2 ORDER BY created_at, id",
        )
        .bind(&me.workspace.id)
        .bind(format!("%{target}%"))
        .fetch_all(s.app.db.pool())
        .await
        .unwrap();
        assert_eq!(
            kinds.first().map(String::as_str),
            Some("post.outcome_unknown"),
            "{target}: {kinds:?}"
        );
        assert!(!kinds.iter().any(|k| k == "post.failed"), "{kinds:?}");
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("post.published"),
            "{kinds:?}"
        );
    }
}
