//! Threads end to end against the emulator, on both backends: connecting a profile through
//! `/connect/threads` and `/oauth/threads/callback` (short-lived → long-lived token); text,
//! image, video and carousel posts through the API, published with the post id and permalink;
//! bad media refused before any call to Threads with Threads' rule named; the publishing limit
//! reached at send time leaving the target waiting with the time a slot frees, not failed; a
//! `threads_publish` whose answer was lost reconciled from the container's status (one post);
//! the token refreshed once a day old, and a dead token marking the account `needs_reauth`
//! with its event.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

both_backends!(
    connect_and_publish_every_kind,
    bad_media_is_refused_before_any_call,
    the_limit_reached_waits_not_fails,
    a_lost_publish_answer_is_one_post,
    tokens_refresh_and_die,
);

struct Scene {
    app: TestApp,
    key: String,
    account: String,
    me: SignedIn,
}

/// Connects the emulator's Threads profile over HTTP as a person does: `/connect/threads`,
/// "Allow" on the emulator's dialog, back to the callback.
async fn connect_threads_via_http(app: &TestApp, me: &SignedIn) -> String {
    let emulator = app
        .emulator
        .clone()
        .expect("the app runs with the emulator");
    let page = app.page_text(&me.client, "/connect/threads").await;
    assert!(page.contains("threads_content_publish"), "{page}");
    let csrf = hidden_input(&page, "csrf").expect("the connect form has a csrf field");
    let started = me
        .client
        .post(app.url("/connect/threads"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let dialog = location(&started);
    assert!(
        dialog.contains("/threads/www/oauth/authorize?client_id="),
        "{dialog}"
    );
    let callback = approve_facebook_dialog(&emulator, &dialog).await;
    assert!(
        callback.contains("/oauth/threads/callback?code="),
        "{callback}"
    );
    assert!(callback.ends_with("#_"), "Meta's fragment: {callback}");
    let landed = me.client.get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::SEE_OTHER, "the callback");
    let account = location(&landed);
    assert!(account.ends_with("?connected=1"), "{account}");
    account
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string()
}

async fn scene(backend: Backend) -> Scene {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("threads").await;
    let key = app.api_key(&me.workspace.id, "threads", &[]).await;
    let account = connect_threads_via_http(&app, &me).await;
    set_emulator(&app, "threads", json!({"video_processing_ms": 0})).await;
    Scene {
        app,
        key,
        account,
        me,
    }
}

impl Scene {
    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        let answer = bare_client()
            .post(self.app.url("/api/v1/posts"))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn body(&self, caption: &str, media: Vec<Value>, threads: Value) -> Value {
        json!({
            "caption": caption,
            "media": media,
            "targets": [{"account_id": self.account, "threads": threads}],
        })
    }

    async fn get(&self, path: &str) -> Value {
        self.app
            .api_get(&self.key, path)
            .await
            .json()
            .await
            .unwrap()
    }

    /// The post's only target once `done` says so (or after 30 s, failing with it).
    async fn target_when(&self, post_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let post = self.get(&format!("/api/v1/posts/{post_id}")).await;
            let target = post["targets"][0].clone();
            if done(&target) {
                return target;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the target never got there: {target}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn emulator(&self, path: &str) -> Value {
        emulator_json(self.app.emulator.as_deref().unwrap(), path).await
    }

    async fn threads_posts(&self) -> Vec<Value> {
        self.emulator("/_emulator/threads/posts").await["posts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn settled(t: &Value) -> bool {
    t["state"] == "published" || t["state"] == "failed"
}

async fn connect_and_publish_every_kind(backend: Backend) {
    let s = scene(backend).await;
    let account = s.get(&format!("/api/v1/accounts/{}", s.account)).await;
    assert_eq!(account["platform"], "threads", "{account}");
    assert_eq!(account["username"], "threads_tester");
    let image = json!({"url": "https://media.tidepost.example/bay.png", "kind": "image"});
    let video = json!({"url": "https://media.tidepost.example/clip.mp4", "kind": "video", "duration_sec": 12.0});
    let cases = [
        (
            "text",
            s.body(
                "Hello Threads 👋",
                vec![],
                json!({"reply_control": "mentioned_only", "link_attachment": "https://example.com/read"}),
            ),
            "TEXT_POST",
        ),
        (
            "image",
            s.body("an image", vec![image.clone()], json!({"alt_text": "a bay"})),
            "IMAGE",
        ),
        ("video", s.body("a video", vec![video.clone()], json!({})), "VIDEO"),
        (
            "carousel",
            s.body("two", vec![image, video], json!({"reply_control": "accounts_you_follow"})),
            "CAROUSEL_ALBUM",
        ),
    ];
    for (i, (kind, body, read_type)) in cases.into_iter().enumerate() {
        let (status, post) = s.post(&body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{kind}: {post}");
        let target = s.target_when(post["id"].as_str().unwrap(), settled).await;
        assert_eq!(target["state"], "published", "{kind}: {target}");
        assert_eq!(target["platform"], "threads");
        let media_id = target["post_ids"][0].as_str().unwrap().to_string();
        let permalink = target["post_url"].as_str().unwrap();
        assert!(
            permalink.starts_with("https://www.threads.com/@threads_tester/post/"),
            "{kind}: {target}"
        );
        assert_eq!(target["threads"]["media_id"], media_id.as_str());
        let posts = s.threads_posts().await;
        assert_eq!(posts.len(), i + 1, "one post each");
        let last = &posts[i];
        assert_eq!(last["id"], media_id.as_str());
        assert_eq!(last["media_type"], read_type, "{kind}");
        assert_eq!(last["permalink"], permalink);
        if kind == "text" {
            assert_eq!(last["reply_control"], "mentioned_only");
            assert_eq!(last["link_attachment"], "https://example.com/read");
        }
        if kind == "carousel" {
            assert_eq!(last["children"].as_array().unwrap().len(), 2);
        }
    }
    // The composer offers the account with its Threads panel.
    let page = s.app.page_text(&s.me.client, "/compose").await;
    assert!(
        page.contains("Threads post type") && page.contains("Who can reply"),
        "the panel"
    );
}

async fn bad_media_is_refused_before_any_call(backend: Backend) {
    let s = scene(backend).await;
    let emulator = s.app.emulator.clone().unwrap();
    emulator_clear_log(&emulator).await;
    let long = json!({"url": "https://media.tidepost.example/long.mp4", "kind": "video", "duration_sec": 301.0});
    let (status, problem) = s.post(&s.body("too long", vec![long], json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let text = problem.to_string();
    assert!(
        text.contains("Threads videos last at most 5 minutes"),
        "{text}"
    );
    let webp = json!({"url": "https://media.tidepost.example/a.webp", "kind": "image"});
    let (status, problem) = s.post(&s.body("webp", vec![webp], json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem
            .to_string()
            .contains("Threads takes JPEG or PNG images"),
        "{problem}"
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"url": format!("https://media.tidepost.example/{i}.jpg"), "kind": "image"}))
        .collect();
    let (status, problem) = s.post(&s.body("many", many, json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem.to_string().contains("2 to 20"), "{problem}");
    let over = "a".repeat(497) + "😀";
    let (status, problem) = s.post(&s.body(&over, vec![], json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem.to_string().contains("at most 500 characters"),
        "{problem}"
    );
    let (status, problem) = s
        .post(&s.body("x", vec![], json!({"reply_control": "friends"})))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown reply control: {problem}"
    );
    assert_eq!(problem["field"], "targets[0].threads.reply_control");
    // Nothing reached Threads' publishing endpoints.
    let log = s.emulator("/_emulator/requests").await;
    let calls: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or("");
            path.ends_with("/threads") || path.ends_with("/threads_publish")
        })
        .collect();
    assert!(calls.is_empty(), "{calls:?}");
    assert!(s.threads_posts().await.is_empty());
}

async fn the_limit_reached_waits_not_fails(backend: Backend) {
    let s = scene(backend).await;
    let due = tidepost_domain::now_ms() + 3_000;
    let mut body = s.body("later", vec![], json!({}));
    body["scheduled_at"] = json!(tidepost_domain::time::rfc3339(due));
    let (status, post) = s.post(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post}");
    // Spent before it is due (posts from other apps count too).
    set_emulator(&s.app, "threads", json!({"publishing_limit": 0})).await;
    let target = s
        .target_when(post["id"].as_str().unwrap(), |t| {
            t["error"]["code"] == "publishing_limit"
        })
        .await;
    assert_ne!(target["state"], "failed", "{target}");
    let message = target["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Threads' publishing limit is reached")
            && message.contains("at the latest"),
        "{message}"
    );
    assert_eq!(target["error"]["retryable"], true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = s
        .get(&format!("/api/v1/posts/{}", post["id"].as_str().unwrap()))
        .await;
    assert_ne!(again["targets"][0]["state"], "failed", "still waiting");
    assert!(s.threads_posts().await.is_empty());
}

async fn a_lost_publish_answer_is_one_post(backend: Backend) {
    let s = scene(backend).await;
    set_emulator(
        &s.app,
        "threads",
        json!({"lose_publish_answers": 1, "media_not_found": 1}),
    )
    .await;
    let (status, post) = s.post(&s.body("once", vec![], json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post}");
    let target = s.target_when(post["id"].as_str().unwrap(), settled).await;
    assert_eq!(target["state"], "published", "{target}");
    assert_eq!(s.threads_posts().await.len(), 1, "exactly one post");
}

async fn tokens_refresh_and_die(backend: Backend) {
    let s = scene(backend).await;
    let ws = s.me.workspace.id.clone();
    let before = tidepost_store::accounts::get(&s.app.db, &ws, &s.account)
        .await
        .unwrap()
        .unwrap();
    // Under a day old: Threads refuses, the token stays and the account stays active.
    let young = tidepost_app::tokens::refresh(&s.app.app, &ws, &s.account).await;
    assert!(young.is_err());
    let same = tidepost_store::accounts::get(&s.app.db, &ws, &s.account)
        .await
        .unwrap()
        .unwrap();
    assert!(!same.needs_reauth(), "a refusal of a young token keeps it");
    let emulator = s.app.emulator.clone().unwrap();
    let advance = |seconds: u64| {
        let emulator = emulator.clone();
        async move {
            bare_client()
                .post(format!("{emulator}/_emulator/clock/advance"))
                .json(&json!({"seconds": seconds}))
                .send()
                .await
                .unwrap();
        }
    };
    advance(86_400 + 60).await;
    let refreshed = tidepost_app::tokens::refresh(&s.app.app, &ws, &s.account)
        .await
        .expect("refreshed once a day old");
    assert_ne!(refreshed.access_token, before.access_token);
    assert!(!refreshed.needs_reauth());
    // 61 days later the token is dead: the next call marks the account and records the event.
    advance(61 * 86_400).await;
    let (status, post) = s.post(&s.body("after", vec![], json!({}))).await;
    assert!(!status.is_success() || post["targets"].is_array(), "{post}");
    let start = Instant::now();
    loop {
        let account = tidepost_store::accounts::get(&s.app.db, &ws, &s.account)
            .await
            .unwrap()
            .unwrap();
        if account.needs_reauth() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never marked");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let events = tidepost_store::events::recent(&s.app.db, &ws, Some(&s.account), 50)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.r#type == "account.needs_reauth"),
        "{events:?}"
    );
}
