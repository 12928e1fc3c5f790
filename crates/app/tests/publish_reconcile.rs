//! Posts whose outcome is unknown (the init reached TikTok, or may have, and its answer was
//! lost): `tiktok.reconcile` finds exactly one matching public video and marks the target
//! published; none, two, or a private post leave it unknown with the reason; a person can mark
//! it published or, confirming, send it again — the generic retry refuses it.

mod publish_support;

use publish_support::*;
use serde_json::{Value, json};
use tidepost_app::pipeline::PublishError;
use tidepost_app::tiktok::{MediaSource, Mode, NewPost, reconcile};
use tidepost_jobs::{JobContext, JobError, Registry, StepState, drain_due, handler_fn};

/// A public PULL_FROM_URL post of `caption` (the video served locally, its prefix verified).
async fn submit_pull(h: &Harness, caption: &str, privacy: &str) -> (String, String, String) {
    let base = serve_files(vec![("/media/clip.mp4", vec![5u8; 4096])]).await;
    h.set_tiktok(json!({"verified_url_prefixes": [format!("{base}/media/")]}))
        .await;
    let mut options = h.direct_options(privacy);
    options.caption = caption.into();
    let view = tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        NewPost {
            account_id: h.account.id.clone(),
            mode: Mode::Direct,
            options,
            media: MediaSource::VideoUrl(format!("{base}/media/clip.mp4")),
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
    .unwrap();
    let url = format!("{base}/media/clip.mp4");
    (view.post.id.clone(), view.targets[0].id.clone(), url)
}

/// Sends a direct PULL_FROM_URL init of `caption` to the emulator as the harness's creator
/// (what a worker's request, or the creator's own app, does).
async fn init_on_tiktok(h: &Harness, caption: &str, privacy: &str, url: &str) {
    let minted = h
        .admin(
            reqwest::Method::POST,
            "/_emulator/tiktok/token",
            Some(json!({})),
        )
        .await;
    let token = minted["access_token"].as_str().unwrap();
    let answer: Value = h
        .http
        .post(h.emu_url("/tiktok/open/v2/post/publish/video/init/"))
        .bearer_auth(token)
        .json(&json!({
            "post_info": {"title": caption, "privacy_level": privacy, "brand_content_toggle": false},
            "source_info": {"source": "PULL_FROM_URL", "video_url": url},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"]["code"], "ok", "{answer}");
}

/// The first run of the target's publish job records the init intent, sends the init when
/// `sent` (PULL_FROM_URL, public or not), and dies before storing the answer.
async fn lose_init_answer(h: &Harness, target_id: &str, sent: Option<(&str, &str, &str)>) {
    sqlx::query("UPDATE post_targets SET init_at = $1 WHERE id = $2")
        .bind(h.clock.now_ms())
        .bind(target_id)
        .execute(h.app.db.pool())
        .await
        .unwrap();
    let sent = sent.map(|(c, p, u)| (c.to_string(), p.to_string(), u.to_string()));
    let emu = h.emu_url("/tiktok/open/v2/post/publish/video/init/");
    let token = h
        .admin(
            reqwest::Method::POST,
            "/_emulator/tiktok/token",
            Some(json!({})),
        )
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let crashing = Registry::new().register(
        "tiktok.publish",
        handler_fn(move |ctx: JobContext, _: Value| {
            let (sent, emu, token) = (sent.clone(), emu.clone(), token.clone());
            async move {
                match ctx.step("init-0").await? {
                    StepState::New(intent) => {
                        if let Some((caption, privacy, url)) = sent {
                            reqwest::Client::new()
                                .post(emu)
                                .bearer_auth(token)
                                .json(&json!({
                                    "post_info": {"title": caption, "privacy_level": privacy, "brand_content_toggle": false},
                                    "source_info": {"source": "PULL_FROM_URL", "video_url": url},
                                }))
                                .send()
                                .await
                                .unwrap();
                        }
                        std::mem::forget(intent);
                        Err(JobError::retryable("crashed before the answer was stored"))
                    }
                    StepState::Done(_) | StepState::OutcomeUnknown(_) => unreachable!(),
                }
            }
        }),
    );
    drain_due(&h.queue, &crashing, None, 1).await.unwrap();
}

/// Grants `video.list`, as accounts connected through tidepost's OAuth do.
async fn grant_video_list(h: &Harness) {
    sqlx::query("UPDATE accounts SET scopes = 'user.info.basic,video.list,video.publish,video.upload' WHERE id = $1")
        .bind(&h.account.id)
        .execute(h.app.db.pool())
        .await
        .unwrap();
}

/// Runs jobs, moving the clocks on, until no reconcile job is left to run (or `minutes` pass).
async fn settle_reconcile(h: &Harness, minutes: u64) {
    for _ in 0..minutes * 2 {
        h.drain().await;
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'tiktok.reconcile' AND state NOT IN ('succeeded', 'dead', 'cancelled')",
        )
        .fetch_one(h.app.db.pool())
        .await
        .unwrap();
        let any: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tiktok.reconcile'")
                .fetch_one(h.app.db.pool())
                .await
                .unwrap();
        if any > 0 && open == 0 {
            return;
        }
        h.advance(30).await;
    }
}

/// Waits until the emulator holds `n` publishes, all complete (its pulls run in the background).
async fn all_complete(h: &Harness, n: usize) {
    for _ in 0..200 {
        let publishes = h.publishes().await;
        if publishes.len() == n && publishes.iter().all(|p| p["status"] == "PUBLISH_COMPLETE") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("publishes never completed: {:?}", h.publishes().await);
}

async fn video_list_calls(h: &Harness) -> usize {
    let requests = h
        .admin(reqwest::Method::GET, "/_emulator/requests", None)
        .await;
    requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/video/list/")
        })
        .count()
}

on_both!(
    one_matching_public_video_is_reconciled,
    |backend| async move {
        let h = harness(backend).await;
        grant_video_list(&h).await;
        let (post_id, target_id, url) = submit_pull(&h, "sunset #tide", "PUBLIC_TO_EVERYONE").await;
        // An older video with the same caption, before this post was sent, is not it.
        init_on_tiktok(&h, "sunset #tide", "PUBLIC_TO_EVERYONE", &url).await;
        all_complete(&h, 1).await;
        h.advance(600).await;
        lose_init_answer(
            &h,
            &target_id,
            Some(("sunset #tide", "PUBLIC_TO_EVERYONE", &url)),
        )
        .await;
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "failed");
        assert_eq!(target.error_code.as_deref(), Some("init_outcome_unknown"));
        let message = target.error_message.unwrap();
        assert!(message.contains("looking for it"), "{message}");

        settle_reconcile(&h, 40).await;
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        assert_eq!(target.error_code, None);
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 2, "never sent again: {publishes:?}");
        let newest = publishes
            .iter()
            .max_by_key(|p| p["created_ms"].as_i64().unwrap())
            .unwrap();
        assert_eq!(
            target.post_ids(),
            [newest["post_ids"][0].to_string()],
            "{newest}"
        );
        let events = tidepost_store::events::recent(&h.app.db, &h.ws, Some(&post_id), 10)
            .await
            .unwrap();
        let published: Vec<Value> = events
            .iter()
            .filter(|e| e.r#type == "post.published")
            .map(|e| serde_json::from_str(&e.payload).unwrap())
            .collect();
        assert_eq!(published.len(), 1, "{events:?}");
        assert_eq!(published[0]["resolved"], "reconciled");
        assert_eq!(published[0]["target_id"], target_id.as_str());
    }
);

on_both!(
    nothing_found_in_the_window_stays_unknown,
    |backend| async move {
        let h = harness(backend).await;
        grant_video_list(&h).await;
        let (_, target_id, _) = submit_pull(&h, "never arrived", "PUBLIC_TO_EVERYONE").await;
        // The worker died right after recording the intent: nothing reached TikTok.
        lose_init_answer(&h, &target_id, None).await;
        h.run_to_final(&target_id).await;
        settle_reconcile(&h, 45).await;
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "failed");
        assert_eq!(target.error_code.as_deref(), Some("init_outcome_unknown"));
        let message = target.error_message.unwrap();
        assert!(message.contains("did not find it"), "{message}");
        assert!(message.contains("send again"), "{message}");
        assert!(video_list_calls(&h).await >= 3, "looked several times");
        assert!(h.publishes().await.is_empty());
    }
);

on_both!(two_matching_videos_are_not_guessed, |backend| async move {
    let h = harness(backend).await;
    grant_video_list(&h).await;
    let (_, target_id, url) = submit_pull(&h, "twice the same", "PUBLIC_TO_EVERYONE").await;
    lose_init_answer(
        &h,
        &target_id,
        Some(("twice the same", "PUBLIC_TO_EVERYONE", &url)),
    )
    .await;
    // The creator posted the same caption from the TikTok app meanwhile.
    init_on_tiktok(&h, "twice the same", "PUBLIC_TO_EVERYONE", &url).await;
    all_complete(&h, 2).await;
    h.run_to_final(&target_id).await;
    settle_reconcile(&h, 40).await;
    let target = h.target(&target_id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    assert!(target.post_ids().is_empty());
    let message = target.error_message.unwrap();
    assert!(message.contains("2 videos with this caption"), "{message}");
});

on_both!(
    a_private_post_cannot_be_looked_up_and_says_so,
    |backend| async move {
        let h = harness(backend).await;
        grant_video_list(&h).await;
        let (_, target_id, url) = submit_pull(&h, "only for me", "SELF_ONLY").await;
        lose_init_answer(&h, &target_id, Some(("only for me", "SELF_ONLY", &url))).await;
        let target = h.run_to_final(&target_id).await;
        let message = target.error_message.unwrap();
        assert!(message.contains("not a public post"), "{message}");
        settle_reconcile(&h, 40).await;
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "failed");
        assert_eq!(target.error_code.as_deref(), Some("init_outcome_unknown"));
        assert_eq!(video_list_calls(&h).await, 0, "nothing to look at");
        // TikTok has it (privately): the person marks it published with its link.
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 1);
        let view = reconcile::mark_published(
            &h.app,
            &h.ws,
            &target.post_id,
            &target_id,
            Some("https://www.tiktok.com/@tidepost.sandbox/video/7300000000000000001"),
        )
        .await
        .unwrap();
        assert_eq!(view.targets[0].state, "published");
        assert_eq!(view.targets[0].post_ids(), ["7300000000000000001"]);
        // Settled: neither action applies any more.
        let again = reconcile::send_again(&h.app, &h.ws, &target.post_id, &target_id, true).await;
        assert!(matches!(again, Err(PublishError::Conflict(_))), "{again:?}");
    }
);

on_both!(
    send_again_needs_confirmation_and_retry_refuses,
    |backend| async move {
        let h = harness(backend).await;
        let (view, _) = h.submit_private(1_000_000).await;
        let (post_id, target_id) = (view.post.id.clone(), view.targets[0].id.clone());
        lose_init_answer(&h, &target_id, None).await;
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.error_code.as_deref(), Some("init_outcome_unknown"));
        let message = target.error_message.unwrap();
        assert!(
            message.contains("No part of the video was uploaded"),
            "{message}"
        );

        let retried = tidepost_app::pipeline::retry(&h.app, &h.ws, &post_id, &target_id).await;
        assert!(
            matches!(retried, Err(PublishError::Conflict(_))),
            "{retried:?}"
        );
        let unconfirmed = reconcile::send_again(&h.app, &h.ws, &post_id, &target_id, false).await;
        assert!(
            matches!(
                unconfirmed,
                Err(PublishError::Invalid {
                    field: "confirm",
                    ..
                })
            ),
            "{unconfirmed:?}"
        );
        let bad_link =
            reconcile::mark_published(&h.app, &h.ws, &post_id, &target_id, Some("not a link"))
                .await;
        assert!(
            matches!(bad_link, Err(PublishError::Invalid { .. })),
            "{bad_link:?}"
        );
        assert_eq!(h.target(&target_id).await.state, "failed");

        reconcile::send_again(&h.app, &h.ws, &post_id, &target_id, true)
            .await
            .unwrap();
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        assert_eq!(target.init_generation, 1);
        assert_eq!(h.publishes().await.len(), 1);
        // A run of the first attempt that stalled and answers only now stores nothing over
        // the publish sent again.
        let late = tidepost_store::posts::set_publish(
            &h.app.db,
            &h.ws,
            &target_id,
            0,
            "v_pub_late",
            None,
            None,
            tidepost_domain::now_ms(),
        )
        .await
        .unwrap();
        assert!(
            !late,
            "a late answer of generation 0 was stored over generation 1"
        );
        assert_eq!(h.target(&target_id).await.publish_id, target.publish_id);
        // Another workspace cannot see it.
        let other =
            reconcile::mark_published(&h.app, "another-workspace", &post_id, &target_id, None)
                .await;
        assert!(matches!(other, Err(PublishError::NotFound(_))), "{other:?}");
    }
);
