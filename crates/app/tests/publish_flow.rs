//! Publishing end to end against the emulator: direct FILE_UPLOAD in several chunks, inbox
//! upload, PULL_FROM_URL (success and the URL-ownership error), photo posts, status polling to
//! the 19-digit public post id, option checks against creator_info.

mod publish_support;

use publish_support::*;
use tidepost_app::tiktok::{MediaSource, Mode, NewPost, PostOptions};

on_both!(direct_multi_chunk_upload, |backend| async move {
    let h = harness(backend).await;
    let (media, sha) = h.media(25_000_123).await;
    let view = h
        .submit_file(
            &media.id,
            Mode::Direct,
            h.direct_options("PUBLIC_TO_EVERYONE"),
        )
        .await
        .unwrap();
    let target_id = view.targets[0].id.clone();
    assert_eq!(view.targets[0].state, "queued");
    let target = h.run_to_final(&target_id).await;
    assert_eq!(target.state, "published", "{target:?}");
    assert!(target.chunks_total >= 2, "multi-chunk: {target:?}");
    assert_eq!(target.chunks_acked, target.chunks_total);
    assert_eq!(target.bytes_sent, 25_000_123);
    let publishes = h.publishes().await;
    assert_eq!(publishes.len(), 1, "exactly one publish: {publishes:?}");
    assert_eq!(publishes[0]["sha256"], sha);
    assert_eq!(
        publishes[0]["publish_id"],
        target.publish_id.clone().unwrap().as_str()
    );
    // The public post id (19 digits, a string) arrives after moderation.
    let ids = target.post_ids();
    assert_eq!(ids.len(), 1, "{target:?}");
    assert_eq!(ids[0].len(), 19, "{ids:?}");
    assert!(ids[0].chars().all(|c| c.is_ascii_digit()));
    let events = tidepost_store::events::recent(&h.app.db, &h.ws, Some(&view.post.id), 10)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.r#type == "post.published")
            .count(),
        1
    );
    // The stored file is content-addressed.
    assert!(h.data_dir().join("media").join(&sha).exists());
});

on_both!(inbox_upload, |backend| async move {
    let h = harness(backend).await;
    let (media, sha) = h.media(1_500_000).await;
    let view = h
        .submit_file(&media.id, Mode::Inbox, PostOptions::default())
        .await
        .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    assert_eq!(
        target.provider_status.as_deref(),
        Some("SEND_TO_USER_INBOX")
    );
    let publishes = h.publishes().await;
    assert_eq!(publishes.len(), 1);
    assert_eq!(publishes[0]["sha256"], sha);
    assert_eq!(publishes[0]["mode"], "inbox");
});

on_both!(pull_from_url_and_ownership_error, |backend| async move {
    let h = harness(backend).await;
    let video: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let base = serve_files(vec![("/media/clip.mp4", video)]).await;
    h.set_tiktok(serde_json::json!({"verified_url_prefixes": [format!("{base}/media/")]}))
        .await;
    let submit = |url: String| {
        tidepost_app::compose::submit(
            &h.app,
            &h.ws,
            NewPost {
                account_id: h.account.id.clone(),
                mode: Mode::Direct,
                options: h.direct_options("SELF_ONLY"),
                media: MediaSource::VideoUrl(url),
                idempotency_key: None,
                created_by: None,
            }
            .into(),
        )
    };
    let ok = submit(format!("{base}/media/clip.mp4")).await.unwrap();
    let target = h.run_to_final(&ok.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");

    // Not http(s): refused before anything is sent.
    let err = submit("ftp://example.com/a.mp4".into()).await.unwrap_err();
    assert!(only_issue(&err).rule == "media_url", "{err}");

    // An unverified host: TikTok's refusal, explained with what to verify.
    let bad = submit("https://cdn.unverified.example/videos/a.mp4?sig=SECRET".into())
        .await
        .unwrap();
    let target = h.run_to_final(&bad.targets[0].id).await;
    assert_eq!(target.state, "failed");
    assert_eq!(
        target.error_code.as_deref(),
        Some("url_ownership_unverified")
    );
    let message = target.error_message.unwrap();
    assert!(message.contains("cdn.unverified.example"), "{message}");
    assert!(
        message.contains("https://cdn.unverified.example/videos/"),
        "{message}"
    );
    assert!(!message.contains("SECRET"));
    assert_eq!(h.publishes().await.len(), 1);
});

on_both!(photo_post, |backend| async move {
    let h = harness(backend).await;
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend(std::iter::repeat_n(7u8, 50_000));
    jpeg.extend([0xFF, 0xD9]);
    let base = serve_files(vec![("/p/1.jpg", jpeg.clone()), ("/p/2.jpg", jpeg)]).await;
    h.set_tiktok(serde_json::json!({"verified_url_prefixes": [format!("{base}/p/")]}))
        .await;
    let view = tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        NewPost {
            account_id: h.account.id.clone(),
            mode: Mode::Direct,
            options: {
                let mut options = h.direct_options("SELF_ONLY");
                options.photo_urls = vec![format!("{base}/p/1.jpg"), format!("{base}/p/2.jpg")];
                options.options.photo_cover_index = 1;
                options
            },
            media: MediaSource::Photos,
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
    .unwrap();
    assert_eq!(view.post.kind, "photo");
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let publishes = h.publishes().await;
    assert_eq!(publishes.len(), 1);
});

on_both!(
    options_are_checked_against_creator_info,
    |backend| async move {
        let h = harness(backend).await;
        let (media, _) = h.media(100_000).await;
        // No privacy level: never defaulted.
        let err = h
            .submit_file(&media.id, Mode::Direct, PostOptions::default())
            .await
            .unwrap_err();
        assert!(only_issue(&err).rule == "privacy_level", "{err}");
        // Not one of the creator's options (a public account has no FOLLOWER_OF_CREATOR).
        let err = h
            .submit_file(
                &media.id,
                Mode::Direct,
                h.direct_options("FOLLOWER_OF_CREATOR"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("privacy_level"), "{err}");
        // Longer than the creator may post.
        let mut long = h.direct_options("SELF_ONLY");
        long.options.duration_sec = Some(10_000);
        let err = h
            .submit_file(&media.id, Mode::Direct, long)
            .await
            .unwrap_err();
        assert!(only_issue(&err).rule == "duration_sec", "{err}");
        // Branded content cannot be private.
        let mut branded = h.direct_options("SELF_ONLY");
        branded.options.brand_content_toggle = true;
        let err = h
            .submit_file(&media.id, Mode::Direct, branded)
            .await
            .unwrap_err();
        assert!(only_issue(&err).rule == "brand_content_toggle", "{err}");
        // Nothing was stored or sent.
        assert!(
            tidepost_store::posts::list(&h.app.db, &h.ws, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(h.publishes().await.is_empty());
    }
);

on_both!(cancel_and_retry, |backend| async move {
    let h = harness(backend).await;
    let (media, _) = h.media(100_000).await;
    let view = h
        .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
        .await
        .unwrap();
    let cancelled = tidepost_app::pipeline::cancel(&h.app, &h.ws, &view.post.id)
        .await
        .unwrap();
    assert_eq!(cancelled.targets[0].state, "cancelled");
    h.drain().await;
    assert!(
        h.publishes().await.is_empty(),
        "a cancelled post is never sent"
    );
    assert!(
        tidepost_app::pipeline::retry(&h.app, &h.ws, &view.post.id, &view.targets[0].id)
            .await
            .is_err()
    );

    // A failed target can be retried: the emulator fails processing once.
    h.set_faults(serde_json::json!({"fail_processing": true}))
        .await;
    let view = h
        .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
        .await
        .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    assert!(target.error_message.is_some());
    h.clear_faults().await;
    tidepost_app::pipeline::retry(&h.app, &h.ws, &view.post.id, &target.id)
        .await
        .unwrap();
    let target = h.run_to_final(&target.id).await;
    assert_eq!(target.state, "published", "{target:?}");
    assert_eq!(target.init_generation, 1);
});
