//! Limits shared by every instance (state in the database): the 7th posting request in a
//! minute waits for the window; each quota refuses with the time its next slot opens.

mod publish_support;

use publish_support::*;
use tidepost_app::tiktok::{self as publish, Mode};
use tidepost_store::limits::{self, Admission};

on_both!(sliding_window_is_shared, |backend| async move {
    let h = harness(backend).await;
    // Two "instances" share one database: the window is the same row set.
    let db = &h.app.db;
    let t0 = 1_000_000;
    for i in 0..6 {
        assert_eq!(
            limits::admit(db, "k", 6, 60_000, t0 + i * 1000)
                .await
                .unwrap(),
            Admission::Admitted
        );
    }
    assert_eq!(
        limits::admit(db, "k", 6, 60_000, t0 + 10_000)
            .await
            .unwrap(),
        Admission::WaitUntil(t0 + 60_000)
    );
    assert_eq!(
        limits::admit(db, "other", 6, 60_000, t0 + 10_000)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        limits::admit(db, "k", 6, 60_000, t0 + 60_000)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // Concurrent admissions never exceed the limit.
    let mut joins = Vec::new();
    for _ in 0..12 {
        let db = db.clone();
        joins.push(tokio::spawn(async move {
            limits::admit(&db, "burst", 6, 60_000, 5_000_000)
                .await
                .unwrap()
        }));
    }
    let mut admitted = 0;
    for j in joins {
        if j.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 6);
});

on_both!(
    seventh_posting_request_waits_for_the_window,
    |backend| async move {
        let h = harness(backend).await;
        let mut targets = Vec::new();
        for i in 0..7 {
            let (media, _) = h.media(200_000 + i).await;
            let view = h
                .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
                .await
                .unwrap();
            targets.push(view.targets[0].id.clone());
        }
        let start = h.clock.now_ms();
        h.drain().await;
        let mut started = 0;
        let mut waiting = Vec::new();
        for id in &targets {
            let t = h.target(id).await;
            if t.publish_id.is_some() {
                started += 1;
            } else {
                waiting.push(t);
            }
        }
        assert_eq!(started, 6, "six inits in the first minute");
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            waiting[0].state, "queued",
            "the 7th waits, it does not fail: {:?}",
            waiting[0]
        );
        let (state, run_at, error): (String, i64, Option<String>) = sqlx::query_as(
        "SELECT state, run_at, last_error FROM jobs WHERE kind = 'tiktok.publish' AND payload LIKE $1",
    )
    .bind(format!("%{}%", waiting[0].id))
    .fetch_one(h.app.db.pool())
    .await
    .unwrap();
        // Waiting for TikTok's posting window is a wait, not a failure: queued for its next
        // look, with no error recorded.
        assert_eq!(state, "queued");
        assert_eq!(error, None);
        assert!(
            run_at > start + 50_000
                && run_at
                    <= start + 61_000 + tidepost_app::tiktok::limits::POSTING_WINDOW_MARGIN_MS,
            "waits for the window: {}",
            run_at - start
        );
        assert_eq!(h.publishes().await.len(), 6);
        // Nothing happens before the window opens…
        h.drain().await;
        assert!(h.target(&waiting[0].id).await.publish_id.is_none());
        // …and then it goes.
        let target = h.run_to_final(&waiting[0].id).await;
        assert_eq!(target.state, "published", "{target:?}");
        assert_eq!(h.publishes().await.len(), 7);
    }
);

on_both!(quotas_refuse_with_the_next_slot, |backend| async move {
    let h = harness_with(
        backend,
        &[
            ("tiktok_direct_post_daily_cap", "2"),
            ("tiktok_pending_inbox_cap", "1"),
        ],
        |_| {},
    )
    .await;
    let (media, _) = h.media(100_000).await;
    let mut first_init = None;
    for _ in 0..2 {
        let view = h
            .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
            .await
            .unwrap();
        let t = h.run_to_final(&view.targets[0].id).await;
        assert_eq!(t.state, "published");
        first_init.get_or_insert(t.init_at.unwrap());
    }
    let err = h
        .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
        .await
        .unwrap_err();
    let issue = only_issue(&err);
    assert_eq!(issue.rule, "quota", "{issue:?}");
    let (message, next_slot_ms) = (issue.message.clone(), issue.next_slot_ms.unwrap());
    // The slot a refusal names is the whole second at or after the one that frees.
    assert_eq!(
        next_slot_ms,
        on_the_second(first_init.unwrap() + 86_400_000)
    );
    assert!(message.contains("daily cap of 2 direct"), "{message}");
    assert!(message.contains("the next free slot is"), "{message}");

    // Pending inbox drafts.
    let view = h
        .submit_file(&media.id, Mode::Inbox, Default::default())
        .await
        .unwrap();
    let t = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(t.provider_status.as_deref(), Some("SEND_TO_USER_INBOX"));
    let err = h
        .submit_file(&media.id, Mode::Inbox, Default::default())
        .await
        .unwrap_err();
    let issue = only_issue(&err);
    assert_eq!(issue.rule, "quota", "{issue:?}");
    let (message, next_slot_ms) = (issue.message.clone(), issue.next_slot_ms.unwrap());
    assert_eq!(next_slot_ms, on_the_second(t.init_at.unwrap() + 86_400_000));
    assert!(message.contains("inbox"), "{message}");
});

// Posts accepted but not sent yet hold their slots: with a daily cap of 2, two posts waiting
// for a worker leave no room for a third, and of several requests racing for the last slot
// exactly one is accepted.
on_both!(
    waiting_posts_count_against_the_daily_cap,
    |backend| async move {
        let h = harness_with(backend, &[("tiktok_direct_post_daily_cap", "2")], |_| {}).await;
        let (media, _) = h.media(100_000).await;
        let before = tidepost_domain::now_ms();
        h.submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
            .await
            .unwrap();
        let race = || h.submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"));
        let (a, b, c, d) = tokio::join!(race(), race(), race(), race());
        let results = [a, b, c, d];
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "{results:?}");
        for refused in results.into_iter().filter_map(Result::err) {
            let issue = only_issue(&refused);
            assert_eq!(issue.rule, "quota", "{issue:?}");
            let (message, next_slot_ms) = (issue.message.clone(), issue.next_slot_ms.unwrap());
            assert!(message.contains("daily cap of 2 direct"), "{message}");
            assert!(next_slot_ms >= before + 86_400_000, "{next_slot_ms}");
        }
        // Nothing was sent: both accepted posts are still waiting for a worker.
        assert!(h.publishes().await.is_empty());
    }
);

on_both!(unaudited_app_rules, |backend| async move {
    let h = harness_with(
        backend,
        &[
            ("tiktok_unaudited", "true"),
            ("tiktok_unaudited_user_cap", "1"),
        ],
        |_| {},
    )
    .await;
    let (media, _) = h.media(100_000).await;
    let err = h
        .submit_file(
            &media.id,
            Mode::Direct,
            h.direct_options("PUBLIC_TO_EVERYONE"),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("only accepts private posts"),
        "{err}"
    );
    let view = h
        .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
        .await
        .unwrap();
    assert_eq!(h.run_to_final(&view.targets[0].id).await.state, "published");
    // A second creator is beyond the unaudited app's cap of one.
    let other = h.connect(Some("tidepost.private")).await;
    let err = tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        publish::NewPost {
            account_id: other.id.clone(),
            mode: Mode::Direct,
            options: h.direct_options("SELF_ONLY"),
            media: publish::MediaSource::Stored(media.id.clone()),
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
    .unwrap_err();
    let issue = only_issue(&err);
    assert_eq!(issue.rule, "quota", "{issue:?}");
    let message = &issue.message;
    assert!(message.contains("not audited"), "{message}");
});

/// `ms` moved up to a whole second, as a refusal names a slot.
fn on_the_second(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000) * 1000
}
