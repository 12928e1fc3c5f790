//! Instagram publishing against the emulator, on SQLite and PostgreSQL: each media type (image
//! by URL, carousel of uploads served from tidepost's signed URLs plus a video by URL, reel with
//! cover, story), container ERROR and EXPIRED, the publishing limit, a rate limit answered after
//! `media_publish` went through (reconciled, published once), and the media rules.

mod instagram_support;

use instagram_support::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidepost_app::compose::{ComposeError, Issue};
use tidepost_app::instagram::options::{InstagramPost, MediaType, NewInstagramPost};
use tidepost_app::pipeline::PostView;
use tidepost_app::pipeline::media::Item;
use tidepost_store::accounts::Account;
use tidepost_store::testing::Backend;

fn url_item(url: String) -> Item {
    Item {
        url: Some(url),
        ..Item::default()
    }
}

fn stored_item(id: &str) -> Item {
    Item {
        media_id: Some(id.into()),
        ..Item::default()
    }
}

async fn submit(
    h: &Harness,
    account: &Account,
    post: InstagramPost,
) -> Result<PostView, ComposeError> {
    tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        NewInstagramPost {
            account_id: account.id.clone(),
            post,
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
}

/// The one issue of a refused post.
fn only_issue(err: &ComposeError) -> &Issue {
    let ComposeError::Invalid(issues) = err else {
        panic!("expected one issue, got {err:?}")
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    &issues[0]
}

fn post(media_type: MediaType, caption: &str, items: Vec<Item>) -> InstagramPost {
    InstagramPost {
        media_type,
        caption: caption.into(),
        items,
        cover_url: None,
        share_to_feed: None,
        ..Default::default()
    }
}

async fn upload(h: &Harness, bytes: &[u8], ct: &str, name: &str) -> (String, String) {
    let media = tidepost_app::pipeline::media::store(&h.app, &h.ws, bytes, ct, Some(name))
        .await
        .unwrap();
    (media.id, hex::encode(Sha256::digest(bytes)))
}

fn published(emu: &Value) -> Vec<Value> {
    emu["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["is_carousel_child"] == json!(false))
        .cloned()
        .collect()
}

async fn each_media_type(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;

    // A single image by URL.
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "hello #tidepost",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let ids = target.post_ids();
    assert_eq!(ids.len(), 1);
    let recorded = tidepost_store::instagram::get(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.media_id.as_deref(), Some(ids[0].as_str()));
    assert!(
        recorded
            .permalink
            .as_deref()
            .unwrap()
            .starts_with("https://www.instagram.com/p/")
    );

    // A carousel: two uploads (served from signed URLs) and a video by URL.
    let (a, sha_a) = upload(&h, &jpeg(1080, 1080, 6000), "image/jpeg", "a.jpg").await;
    let (b, sha_b) = upload(&h, &jpeg(1080, 1350, 7000), "image/jpeg", "b.jpg").await;
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Carousel,
            "three in one",
            vec![
                stored_item(&a),
                stored_item(&b),
                url_item(h.file_url("clip.mp4")),
            ],
        ),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let emu = h.emulator_media().await;
    let containers = emu["containers"].as_array().unwrap();
    for sha in [&sha_a, &sha_b] {
        let c = containers
            .iter()
            .find(|c| c["sha256"] == json!(sha))
            .unwrap_or_else(|| panic!("no container fetched {sha}: {emu:#}"));
        assert!(c["url"].as_str().unwrap().contains("/media/"), "{c}");
        assert_eq!(c["is_carousel_item"], json!(true));
    }
    let album = published(&emu)
        .into_iter()
        .find(|m| m["id"] == json!(target.post_ids()[0]))
        .unwrap();
    assert_eq!(album["media_type"], json!("CAROUSEL_ALBUM"));
    assert_eq!(album["children"].as_array().unwrap().len(), 3);

    // A reel with a cover, shared to the feed.
    let mut reel = post(
        MediaType::Reel,
        "watch",
        vec![url_item(h.file_url("clip.mp4"))],
    );
    reel.cover_url = Some(h.file_url("cover.jpg"));
    reel.share_to_feed = Some(true);
    let view = submit(&h, &account, reel).await.unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let emu = h.emulator_media().await;
    let media = published(&emu)
        .into_iter()
        .find(|m| m["id"] == json!(target.post_ids()[0]))
        .unwrap();
    assert_eq!(media["media_product_type"], json!("REELS"));

    // A story from an upload.
    let (s, sha_s) = upload(&h, &jpeg(1080, 1920, 5000), "image/jpeg", "s.jpg").await;
    let view = submit(
        &h,
        &account,
        post(MediaType::Story, "", vec![stored_item(&s)]),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let emu = h.emulator_media().await;
    assert!(
        emu["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["sha256"] == json!(sha_s))
    );
    let media = published(&emu)
        .into_iter()
        .find(|m| m["id"] == json!(target.post_ids()[0]))
        .unwrap();
    assert_eq!(media["media_product_type"], json!("STORY"));
    assert_eq!(published(&emu).len(), 4, "each post published once");
}
on_both!(publishes_each_media_type, each_media_type);

async fn container_error_and_expired(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    // ERROR: Instagram could not process the media.
    h.set_faults(json!({"fail_processing": true})).await;
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "x",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    let message = target.error_message.clone().unwrap();
    assert!(message.contains(&view.post.id), "names the post: {message}");
    assert!(message.contains("media"), "{message}");
    h.clear_faults().await;
    assert!(published(&h.emulator_media().await).is_empty());

    // EXPIRED: a reel still processing when its 24 hours run out.
    h.set_meta(json!({"video_processing_ms": 30 * 3_600_000u64}))
        .await;
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Reel,
            "slow",
            vec![url_item(h.file_url("clip.mp4"))],
        ),
    )
    .await
    .unwrap();
    h.drain().await;
    let target = h.target(&view.targets[0].id).await;
    assert_eq!(target.state, "processing", "{target:?}");
    h.advance(25 * 3600).await;
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    let message = target.error_message.unwrap();
    assert!(message.contains("expired"), "{message}");
}
on_both!(
    container_error_and_expired_are_reported,
    container_error_and_expired
);

async fn fetch_failure_names_the_media(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    // The second item's URL does not exist: Meta cannot fetch it.
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Carousel,
            "c",
            vec![
                url_item(h.file_url("photo.jpg")),
                url_item(h.file_url("missing.jpg")),
            ],
        ),
    )
    .await;
    match view {
        Err(e) => panic!("{e}"),
        Ok(view) => {
            let target = h.run_to_final(&view.targets[0].id).await;
            assert_eq!(target.state, "failed", "{target:?}");
            let message = target.error_message.unwrap();
            assert!(message.contains("media 2 of 2"), "{message}");
            assert!(message.contains(&view.post.id), "{message}");
        }
    }
}
on_both!(fetch_failure_is_named, fetch_failure_names_the_media);

async fn publishing_limit(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    h.set_meta(json!({"publishing_limit": 1})).await;
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "one",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap();
    assert_eq!(h.run_to_final(&view.targets[0].id).await.state, "published");
    let err = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "two",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap_err();
    let issue = only_issue(&err);
    assert_eq!(issue.rule, "quota", "{issue:?}");
    assert!(issue.message.contains("publishing limit"), "{issue:?}");
    assert!(issue.next_slot_ms.unwrap() > tidepost_domain::now_ms());
}
on_both!(publishing_limit_refuses_with_the_time, publishing_limit);

async fn rate_limit_after_publish(backend: Backend) {
    let h = harness_with(
        backend,
        Options {
            rate_limit_after_publish: true,
            ..Options::default()
        },
    )
    .await;
    let account = h.business_account().await;
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "once",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(
        target.state, "published",
        "a live post is never marked failed: {target:?}"
    );
    let emu = h.emulator_media().await;
    assert_eq!(published(&emu).len(), 1, "published once: {emu:#}");
}
on_both!(
    rate_limit_after_media_publish_is_reconciled,
    rate_limit_after_publish
);

async fn media_rules(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    let refuse = |p: InstagramPost| {
        let h = &h;
        let account = &account;
        async move {
            only_issue(&submit(h, account, p).await.unwrap_err())
                .message
                .clone()
        }
    };
    let png = tidepost_app::media::testing::png(1080, 1080);
    let (png, _) = upload(&h, &png, "image/png", "x.png").await;
    assert!(
        refuse(post(MediaType::Image, "", vec![stored_item(&png)]))
            .await
            .contains("JPEG")
    );
    let (wide, _) = upload(&h, &jpeg(2000, 500, 100), "image/jpeg", "w.jpg").await;
    assert!(
        refuse(post(MediaType::Image, "", vec![stored_item(&wide)]))
            .await
            .contains("aspect ratio")
    );
    let one = vec![url_item(h.file_url("photo.jpg"))];
    assert!(
        refuse(post(MediaType::Carousel, "", one.clone()))
            .await
            .contains("2 to 10")
    );
    let mut long = url_item(h.file_url("clip.mp4"));
    long.duration_sec = Some(1000.0);
    assert!(
        refuse(post(MediaType::Reel, "", vec![long]))
            .await
            .contains("15 minutes")
    );
    assert!(
        refuse(post(MediaType::Story, "caption", one.clone()))
            .await
            .contains("stories")
    );
    let caption = "#a ".repeat(31);
    assert!(
        refuse(post(MediaType::Image, &caption, one))
            .await
            .contains("30 hashtags")
    );
}
on_both!(media_rules_name_the_rule, media_rules);

/// When Meta reports the call budget nearly spent, the publish job waits instead of calling
/// (further calls would extend the block); the job stays queued for a later attempt.
async fn usage_headers_slow_calls_down(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    // Every call now uses a tenth of a tiny hourly budget: the usage header climbs past 80 %.
    h.set_meta(json!({"hourly_call_budget": 10})).await;
    let client = h.app.providers.meta().unwrap().clone();
    let token =
        tidepost_app::tokens::open(&h.app, &account, tidepost_app::tokens::ACCESS_TOKEN).unwrap();
    for _ in 0..9 {
        let _ = client.me(&token).await;
    }
    assert!(
        h.app
            .providers
            .meta_usage()
            .wait_for(&account.provider_user_id)
            .is_some()
    );
    let view = submit(
        &h,
        &account,
        post(
            MediaType::Image,
            "patience",
            vec![url_item(h.file_url("photo.jpg"))],
        ),
    )
    .await
    .unwrap();
    h.drain().await;
    let target = h.target(&view.targets[0].id).await;
    assert_ne!(
        target.state, "published",
        "no container was created while the budget was spent"
    );
    assert!(
        h.emulator_media().await["containers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Waiting for the budget is not a failure: the job is queued for later, with no error.
    let job = tidepost_jobs::admin::list(
        &h.app.db,
        tidepost_jobs::admin::Scope::Workspace(&h.ws),
        &tidepost_jobs::admin::Filter {
            state: Some(tidepost_jobs::JobState::Queued),
            kind: Some("instagram.publish".into()),
        },
        &tidepost_jobs::admin::Page::default(),
    )
    .await
    .unwrap();
    assert_eq!(job.len(), 1, "{job:?}");
    assert_eq!(job[0].last_error, None, "{job:?}");
    assert!(job[0].run_at > tidepost_domain::now_ms(), "{job:?}");
    assert!(target.error_code.is_none(), "{target:?}");
}
on_both!(
    usage_headers_slow_calls_down_before_meta_blocks,
    usage_headers_slow_calls_down
);
