//! Failure paths of the publish pipeline: a connection dropped mid-chunk resumes from the next
//! chunk; an init whose answer was lost is reconciled and never sent twice; 429s back off.

mod publish_support;

use publish_support::*;
use tidepost_app::tiktok::Mode;
use tidepost_jobs::Clock;

async fn publish_job_state(h: &Harness) -> (String, i64, Option<String>) {
    sqlx::query_as("SELECT state, run_at, last_error FROM jobs WHERE kind = 'tiktok.publish' ORDER BY id DESC LIMIT 1")
        .fetch_one(h.app.db.pool())
        .await
        .unwrap()
}

on_both!(
    dropped_connection_resumes_from_next_chunk,
    |backend| async move {
        let h = harness(backend).await;
        // Two chunks: 10 MB, then 15 MB (the remainder rides in the last chunk). The fault drops
        // any upload request after 12 MB of its body: chunk 0 passes, chunk 1 is cut.
        let (media, sha) = h.media(25_000_000).await;
        h.set_faults(serde_json::json!({"drop_upload_after_bytes": 12_000_000}))
            .await;
        let view = h
            .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
            .await
            .unwrap();
        let target_id = view.targets[0].id.clone();
        let report = h.drain().await;
        assert_eq!(report.retrying, 1, "{report:?}");
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "uploading");
        assert_eq!(
            (target.chunks_acked, target.chunks_total),
            (1, 2),
            "{target:?}"
        );
        assert_eq!(target.bytes_sent, 10_000_000);
        assert_eq!(
            target.error_code.as_deref(),
            Some("transport"),
            "{target:?}"
        );

        h.clear_faults().await;
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 1, "one publish: {publishes:?}");
        assert_eq!(publishes[0]["sha256"], sha);
        // The resumed run did not send chunk 0 again.
        assert_eq!(publishes[0]["chunks_received"], 2, "{publishes:?}");
    }
);

on_both!(
    lost_init_answer_is_reconciled_never_resent,
    |backend| async move {
        let h = harness(backend).await;
        let (view, sha) = h.submit_private(1_000_000).await;
        let target_id = view.targets[0].id.clone();
        // First run: init succeeds and its publish id is stored, but the process "dies" before the
        // step's outcome is recorded. Simulated by running the job once, then erasing the outcome.
        h.set_faults(serde_json::json!({"drop_upload_after_bytes": 10}))
            .await;
        h.drain().await;
        let target = h.target(&target_id).await;
        assert!(target.publish_id.is_some());
        sqlx::query("UPDATE job_steps SET state = 'intent', outcome = NULL")
            .execute(h.app.db.pool())
            .await
            .unwrap();
        h.clear_faults().await;
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 1, "never a second init: {publishes:?}");
        assert_eq!(publishes[0]["sha256"], sha);
        // The stored publish id is the proof the init happened: no new init step was opened.
        let steps: Vec<String> = sqlx::query_scalar("SELECT name FROM job_steps")
            .fetch_all(h.app.db.pool())
            .await
            .unwrap();
        assert_eq!(steps, ["init-0"]);
    }
);

on_both!(unknown_init_outcome_fails_safe, |backend| async move {
    let h = harness(backend).await;
    let (view, _) = h.submit_private(1_000_000).await;
    let target_id = view.targets[0].id.clone();
    // A crash after the intent was recorded and before anything came back: claim the job,
    // record the intent as the handler would, and "crash" (the lease expires).
    let clock = Clock::system();
    let queue = tidepost_jobs::Queue::with_clock(h.app.db.clone(), clock.clone());
    let crashing = tidepost_jobs::Registry::new().register(
        "tiktok.publish",
        tidepost_jobs::handler_fn(
            |ctx: tidepost_jobs::JobContext, _: serde_json::Value| async move {
                match ctx.step("init-0").await? {
                    tidepost_jobs::StepState::New(intent) => {
                        std::mem::forget(intent);
                        Err(tidepost_jobs::JobError::retryable("crashed mid-call"))
                    }
                    tidepost_jobs::StepState::Done(_)
                    | tidepost_jobs::StepState::OutcomeUnknown(_) => unreachable!(),
                }
            },
        ),
    );
    tidepost_jobs::drain_due(&queue, &crashing, None, 1)
        .await
        .unwrap();
    let target = h.run_to_final(&target_id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    assert_eq!(target.error_code.as_deref(), Some("init_outcome_unknown"));
    assert!(
        target
            .error_message
            .unwrap()
            .contains("does not send it again")
    );
    assert!(h.publishes().await.is_empty(), "no blind second init");
});

on_both!(rate_limited_init_backs_off, |backend| async move {
    let h = harness(backend).await;
    let (media, _) = h.media(1_000_000).await;
    h.set_faults(serde_json::json!({"rate_limit_share": 1.0, "retry_after_secs": 7}))
        .await;
    let view = h
        .submit_file(&media.id, Mode::Inbox, Default::default())
        .await;
    // creator_info is not needed for inbox posts, so the post is accepted.
    let view = view.unwrap();
    let target_id = view.targets[0].id.clone();
    let before = h.clock.now_ms();
    let report = h.drain().await;
    assert_eq!(report.retrying, 1, "{report:?}");
    let (state, run_at, error) = publish_job_state(&h).await;
    assert_eq!(state, "failed", "{error:?}");
    assert!(
        run_at >= before + 7_000 && run_at < before + 20_000,
        "Retry-After honoured: {}",
        run_at - before
    );
    let target = h.target(&target_id).await;
    assert_eq!(target.error_code.as_deref(), Some("rate_limit_exceeded"));
    assert!(target.publish_id.is_none());
    h.clear_faults().await;
    let target = h.run_to_final(&target_id).await;
    assert_eq!(target.state, "published", "{target:?}");
    assert_eq!(h.publishes().await.len(), 1);
});

on_both!(
    revoked_access_token_mid_publish_refreshes_once_and_goes_on,
    |backend| async move {
        let h = harness(backend).await;
        let (view, sha) = h.submit_private(12_000_000).await;
        // TikTok now refuses every access token issued so far (refresh tokens still work): the
        // job's init gets a 401, refreshes once under the lease, and carries on.
        h.set_faults(serde_json::json!({"revoke_all_tokens": true}))
            .await;
        let target = h.run_to_final(&view.targets[0].id).await;
        assert_eq!(target.state, "published", "{target:?}");
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 1, "{publishes:?}");
        assert_eq!(publishes[0]["sha256"], sha);
        let account = tidepost_store::accounts::get(&h.app.db, &h.ws, &h.account.id)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(account.access_token, h.account.access_token, "refreshed");
        assert_eq!(account.status, "active");
    }
);
