//! Provider trouble while a post is checked: TikTok's rate limit or a 5xx while its
//! `creator_info` is read (by the composer page, `POST /posts/validate` and `POST /posts`) is
//! 503 with `Retry-After` in every body shape, never a 502 refusal of the post; and the three
//! share one short per-account cache, so page loads, validations and posts do not spend the
//! creator's 20-a-minute budget, nor keep calling during a storm.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

struct Rig {
    app: TestApp,
    emu: String,
    me: SignedIn,
    key: String,
}

impl Rig {
    async fn start(backend: Backend) -> Rig {
        let app = spawn_app_with(backend, Options::emulated()).await;
        let emu = app.emulator.clone().unwrap();
        let me = app.signed_in("trouble").await;
        let key = app.api_key(&me.workspace.id, "trouble", &[]).await;
        Rig { app, emu, me, key }
    }

    async fn tiktok(&self, username: &str) -> String {
        connect_new_creator(&self.app, &self.key, json!({"username": username})).await
    }

    async fn faults(&self, provider: &str, set: Value) {
        emulator_faults(&self.emu, provider, Some(set)).await;
    }

    async fn no_faults(&self, provider: &str) {
        emulator_faults(&self.emu, provider, None).await;
    }

    async fn clear_log(&self) {
        emulator_clear_log(&self.emu).await;
    }

    /// How many `creator_info` calls the emulator received since the log was cleared.
    async fn creator_info_calls(&self) -> usize {
        let log = emulator_json(&self.emu, "/_emulator/requests").await;
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/post/publish/creator_info/query/"))
            })
            .count()
    }

    async fn api_post(&self, path: &str, body: &Value) -> reqwest::Response {
        bare_client()
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn compose_page(&self, account: &str) -> String {
        let page = self
            .me
            .client
            .get(self.app.url(&format!("/compose?account={account}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        page.text().await.unwrap()
    }
}

fn single(account: &str, caption: &str) -> Value {
    json!({
        "account_id": account,
        "caption": caption,
        "privacy_level": "SELF_ONLY",
        "media_url": "https://media.tidepost.example/clip.mp4",
    })
}

fn composite(account: &str, caption: &str) -> Value {
    json!({
        "caption": caption,
        "media": [{"url": "https://media.tidepost.example/clip.mp4", "kind": "video"}],
        "targets": [{"account_id": account, "tiktok": {"privacy_level": "SELF_ONLY"}}],
    })
}

/// A 503 problem with `Retry-After` of at least one second, saying to come back; its body.
async fn unavailable(answer: reqwest::Response, what: &str) -> Value {
    let retry_after = answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "{what}: Retry-After {retry_after:?}"
    );
    assert_eq!(
        body["type"], "urn:tidepost:problem:provider-unavailable",
        "{what}: {body}"
    );
    assert_eq!(body["retryable"], true, "{what}: {body}");
    body
}

both_backends!(provider_trouble_at_creation_is_503_with_retry_after);

/// TikTok rate-limits (then fails with 5xx) every call: each way to make or check a post answers
/// 503 with `Retry-After`; nothing is stored; the composer says TikTok did not answer; the storm
/// is not fed (one `creator_info` call for all of them while its `Retry-After` runs). Once it
/// ends, the same post is accepted.
async fn provider_trouble_at_creation_is_503_with_retry_after(backend: Backend) {
    let rig = Rig::start(backend).await;
    for (round, faults) in [
        (
            "storm",
            json!({"rate_limit_share": 1.0, "retry_after_secs": 30}),
        ),
        ("burst", json!({"server_error_share": 1.0})),
    ] {
        rig.no_faults("tiktok").await;
        let account = rig.tiktok(&format!("trouble.{round}")).await;
        rig.faults("tiktok", faults).await;
        rig.clear_log().await;
        let made = rig
            .api_post("/api/v1/posts", &single(&account, round))
            .await;
        let body = unavailable(made, &format!("{round}: POST /posts (one account)")).await;
        assert_eq!(body["errors"][0]["rule"], "provider_unavailable", "{body}");
        assert_eq!(body["errors"][0]["field"], "account_id", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("TikTok is not answering right now") && message.contains("try again"),
            "{round}: {message}"
        );
        let made = rig
            .api_post("/api/v1/posts", &composite(&account, round))
            .await;
        let body = unavailable(made, &format!("{round}: POST /posts (targets)")).await;
        assert_eq!(
            body["errors"][0]["field"], "targets[0].account_id",
            "{body}"
        );
        let checked = rig
            .api_post("/api/v1/posts/validate", &single(&account, round))
            .await;
        unavailable(checked, &format!("{round}: POST /posts/validate")).await;
        let html = rig.compose_page(&account).await;
        assert!(
            html.contains("TikTok did not say what this account may post right now")
                && html.contains("Try again in "),
            "{round}: the composer does not say TikTok failed and when to try again"
        );
        // The composer's submit: 503 with Retry-After, the form as typed, and when to try again.
        let caption = format!("typed during the {round}");
        let page = rig
            .me
            .client
            .post(rig.app.url("/compose"))
            .form(&[
                ("csrf", rig.me.csrf.as_str()),
                ("caption", caption.as_str()),
                ("targets", account.as_str()),
                ("media_url", "https://media.tidepost.example/clip.mp4"),
                ("media_url_kind", "video"),
                ("when", "now"),
                (&format!("privacy:{account}"), "SELF_ONLY"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{round}: composer submit"
        );
        assert!(
            page.headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|s| s >= 1),
            "{round}: composer submit without Retry-After"
        );
        let html = page.text().await.unwrap();
        assert!(html.contains(&caption), "{round}: the caption was lost");
        assert!(
            html.contains("TikTok is not answering right now") && html.contains("try again in "),
            "{round}: the composer's refusal does not say when to try again"
        );
        if round == "storm" {
            // Retry-After 30: TikTok was asked once, by the first request.
            assert_eq!(
                rig.creator_info_calls().await,
                1,
                "{round}: the storm was fed"
            );
        }
        let listed: Value = rig
            .app
            .api_get(&rig.key, "/api/v1/posts")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
    }
    // The 5xx burst ends; its wait (two seconds, TikTok named none) runs out.
    rig.no_faults("tiktok").await;
    let account = rig.tiktok("trouble.after").await;
    rig.faults("tiktok", json!({"server_error_share": 1.0}))
        .await;
    let made = rig
        .api_post("/api/v1/posts", &single(&account, "after"))
        .await;
    unavailable(made, "after: during the burst").await;
    rig.no_faults("tiktok").await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let made = rig
        .api_post("/api/v1/posts", &single(&account, "after"))
        .await;
    let status = made.status();
    let body: Value = made.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

both_backends!(creator_info_is_read_once_per_account_within_its_ttl);

/// Ten validations and a page load of one account at once, then page loads, a validation and a
/// post within a minute, read `creator_info` once; another account, and another workspace's
/// account of the same creator, are asked for themselves.
async fn creator_info_is_read_once_per_account_within_its_ttl(backend: Backend) {
    let rig = Rig::start(backend).await;
    let account = rig.tiktok("cached.one").await;
    rig.clear_log().await;
    // At once, before anything was kept: one call for all of them.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let url = rig.app.url("/api/v1/posts/validate");
        let key = rig.key.clone();
        let body = single(&account, "at once");
        burst.spawn(async move {
            let answer = bare_client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            answer.status()
        });
    }
    let page = rig
        .me
        .client
        .get(rig.app.url(&format!("/compose?account={account}")))
        .send();
    let (statuses, page) = tokio::join!(burst.join_all(), page);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(page.unwrap().status(), StatusCode::OK);
    assert_eq!(rig.creator_info_calls().await, 1, "concurrent reads");
    // Then one after another.
    for _ in 0..3 {
        rig.compose_page(&account).await;
    }
    let checked = rig
        .api_post("/api/v1/posts/validate", &single(&account, "cached"))
        .await;
    assert_eq!(checked.status(), StatusCode::OK);
    let verdict: Value = checked.json().await.unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    let made = rig
        .api_post("/api/v1/posts", &single(&account, "cached"))
        .await;
    assert_eq!(made.status(), StatusCode::ACCEPTED);
    assert_eq!(rig.creator_info_calls().await, 1, "one call within the TTL");

    // Another account of the workspace is asked for itself.
    let other = rig.tiktok("cached.two").await;
    rig.clear_log().await;
    rig.compose_page(&other).await;
    rig.compose_page(&other).await;
    // The page shows every TikTok account: `cached.one` is still answered from the cache.
    assert_eq!(
        rig.creator_info_calls().await,
        1,
        "one call for the new account"
    );

    // Another workspace connecting the same creator gets no answer kept for this one.
    let them = rig.app.signed_in("elsewhere").await;
    let their_key = rig.app.api_key(&them.workspace.id, "elsewhere", &[]).await;
    let theirs = connect_tiktok_via_api(&rig.app, &their_key, "cached.one").await;
    rig.clear_log().await;
    let checked = bare_client()
        .post(rig.app.url("/api/v1/posts/validate"))
        .bearer_auth(&their_key)
        .json(&single(&theirs, "theirs"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), StatusCode::OK);
    assert_eq!(
        rig.creator_info_calls().await,
        1,
        "the other workspace's account"
    );
}
