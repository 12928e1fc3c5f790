//! One post to several accounts (`tidepost_app::compose`) against the emulator, on SQLite and
//! PostgreSQL: 2 TikTok + 2 Instagram targets where one fails for good and the others ride out
//! a transient outage; a scheduled post that waits for its time; a schedule refused by the
//! publishing limit with the next free slot, and that slot taken on request; changing and
//! cancelling before the start, refused after it; a single-account Instagram post changed
//! the same way.

mod instagram_support;

use instagram_support::*;
use secrecy::SecretString;
use serde_json::json;
use tidepost_app::compose::{
    self, ComposeError, NewComposite, Schedule, TargetSpec, TikTokOptions, Update, When,
};
use tidepost_app::pipeline::PostView;
use tidepost_app::pipeline::media::Item;
use tidepost_app::tiktok::{self as publish};
use tidepost_app::{instagram, tokens};
use tidepost_domain::PostSummary;
use tidepost_jobs::Registry;
use tidepost_store::accounts::{self, Account};
use tidepost_store::testing::Backend;

const HOUR_MS: i64 = 3_600_000;

/// The Instagram harness with the TikTok jobs registered too.
async fn both(backend: Backend) -> Harness {
    let mut h = harness(backend).await;
    let app = h.driver.app.clone();
    h.driver.registry = publish::register(instagram::register(Registry::new(), &app), &app);
    h
}

/// A new emulated TikTok creator, connected.
async fn tiktok_account(h: &Harness, username: &str) -> Account {
    h.admin(
        reqwest::Method::POST,
        "/_emulator/tiktok/creators",
        Some(json!({"username": username})),
    )
    .await;
    let minted = h
        .admin(
            reqwest::Method::POST,
            "/_emulator/tiktok/token",
            Some(json!({"creator": username})),
        )
        .await;
    let id = tidepost_domain::new_id();
    let now = tidepost_domain::now_ms();
    let access = SecretString::from(minted["access_token"].as_str().unwrap().to_string());
    let refresh = SecretString::from(minted["refresh_token"].as_str().unwrap().to_string());
    let account = Account {
        id: id.clone(),
        workspace_id: h.ws.clone(),
        platform: tidepost_domain::Platform::Tiktok,
        provider_user_id: minted["open_id"].as_str().unwrap().into(),
        display_name: username.into(),
        username: None,
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: "user.info.basic,video.publish,video.upload".into(),
        access_token: tokens::seal(&h.app, &id, tokens::ACCESS_TOKEN, &access),
        refresh_token: Some(tokens::seal(&h.app, &id, tokens::REFRESH_TOKEN, &refresh)),
        access_expires_at: Some(now + 86_400_000),
        refresh_expires_at: Some(now + 365 * 86_400_000),
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(&h.app.db, &account).await.unwrap();
    accounts::get(&h.app.db, &h.ws, &id).await.unwrap().unwrap()
}

async fn video(h: &Harness) -> Item {
    let media = tidepost_app::pipeline::media::store(
        &h.app,
        &h.ws,
        &mp4(40_000)[..],
        "video/mp4",
        Some("clip.mp4"),
    )
    .await
    .unwrap();
    Item {
        media_id: Some(media.id),
        ..Item::default()
    }
}

fn tiktok_target(account: &Account) -> TargetSpec {
    TargetSpec {
        account_id: account.id.clone(),
        tiktok: Some(TikTokOptions {
            privacy_level: Some("SELF_ONLY".into()),
            ..TikTokOptions::default()
        }),
        ..TargetSpec::default()
    }
}

fn plain_target(account: &Account) -> TargetSpec {
    TargetSpec {
        account_id: account.id.clone(),
        ..TargetSpec::default()
    }
}

async fn run_all(h: &Harness, view: &PostView) -> PostView {
    for t in &view.targets {
        h.run_to_final(&t.id).await;
    }
    tidepost_app::pipeline::get(&h.app, &h.ws, &view.post.id)
        .await
        .unwrap()
}

fn state_of<'a>(view: &'a PostView, account: &Account) -> &'a str {
    &view
        .targets
        .iter()
        .find(|t| t.account_id == account.id)
        .unwrap()
        .state
}

async fn fan_out_with_failures(backend: Backend) {
    let h = both(backend).await;
    let ig = h.connect_facebook(&[BUSINESS_PAGE, CREATOR_PAGE]).await;
    let tt = [
        tiktok_account(&h, "alice").await,
        tiktok_account(&h, "bob").await,
    ];
    let media = vec![video(&h).await];

    // Everything wrong at once, each named: a duplicate, an unknown account, TikTok options on
    // an Instagram account, a missing privacy level.
    let err = compose::submit(
        &h.app,
        &h.ws,
        NewComposite {
            caption: "launch".into(),
            media: media.clone(),
            targets: vec![
                tiktok_target(&tt[0]),
                tiktok_target(&tt[0]),
                plain_target(&tt[1]),
                TargetSpec {
                    account_id: "nope".into(),
                    ..TargetSpec::default()
                },
                TargetSpec {
                    tiktok: Some(TikTokOptions::default()),
                    ..plain_target(&ig[0])
                },
            ],
            ..NewComposite::default()
        },
    )
    .await
    .unwrap_err();
    let ComposeError::Invalid(issues) = err else {
        panic!("{err:?}")
    };
    let rules: Vec<(Option<usize>, &str, &str)> = issues
        .iter()
        .map(|i| (i.target, i.rule.as_str(), i.field.as_str()))
        .collect();
    assert_eq!(
        rules,
        vec![
            (Some(1), "duplicate", "targets[1].account_id"),
            (Some(2), "privacy_level", "targets[2].tiktok.privacy_level"),
            (Some(3), "not_found", "targets[3].account_id"),
            (Some(4), "wrong_platform", "targets[4].tiktok"),
        ],
        "{issues:#?}"
    );
    assert_eq!(issues[1].platform, Some(tidepost_domain::Platform::Tiktok));
    assert_eq!(issues[1].account_id.as_deref(), Some(tt[1].id.as_str()));
    // Nothing was stored.
    assert!(
        tidepost_store::posts::list(&h.app.db, &h.ws, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let view = compose::submit(
        &h.app,
        &h.ws,
        NewComposite {
            caption: "launch #tidepost".into(),
            media,
            targets: vec![
                tiktok_target(&tt[0]),
                TargetSpec {
                    caption: Some("bob's own words".into()),
                    ..tiktok_target(&tt[1])
                },
                plain_target(&ig[0]),
                plain_target(&ig[1]),
            ],
            idempotency_key: Some("launch-1".into()),
            ..NewComposite::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(view.targets.len(), 4);
    assert_eq!(compose::summary(&view), PostSummary::Pending);
    // The same key is the same post.
    let again = compose::submit(
        &h.app,
        &h.ws,
        NewComposite {
            idempotency_key: Some("launch-1".into()),
            targets: vec![plain_target(&ig[0])],
            ..NewComposite::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.post.id, view.post.id);

    // bob removes the app on TikTok (a permanent failure); Meta answers 5xx for a while (a
    // transient one).
    h.admin(
        reqwest::Method::POST,
        "/_emulator/tiktok/revoke",
        Some(json!({"creator": "bob"})),
    )
    .await;
    h.set_faults(json!({"server_error_share": 1.0})).await;
    h.drain().await;
    let during = tidepost_app::pipeline::get(&h.app, &h.ws, &view.post.id)
        .await
        .unwrap();
    assert!(
        during
            .targets
            .iter()
            .filter(|t| t.platform == tidepost_domain::Platform::Instagram)
            .all(|t| t.state != "published" && t.state != "failed"),
        "{:?}",
        during.targets
    );
    h.clear_faults().await;
    let done = run_all(&h, &view).await;
    assert_eq!(state_of(&done, &tt[0]), "published");
    assert_eq!(state_of(&done, &tt[1]), "failed");
    assert_eq!(state_of(&done, &ig[0]), "published");
    assert_eq!(state_of(&done, &ig[1]), "published");
    assert_eq!(compose::summary(&done), PostSummary::PartlyFailed);
    let failed = done
        .targets
        .iter()
        .find(|t| t.account_id == tt[1].id)
        .unwrap();
    assert!(failed.error_code.is_some(), "{failed:?}");
    // Each target published with its own caption.
    let publishes = h
        .admin(reqwest::Method::GET, "/_emulator/tiktok/publishes", None)
        .await;
    let titles: Vec<String> = publishes["publishes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["post_info"]["title"].as_str().map(str::to_string))
        .collect();
    assert!(
        titles.contains(&"launch #tidepost".to_string()),
        "{titles:?}"
    );
    // Published targets are not retried; the failed one may be (alone).
    let published = done
        .targets
        .iter()
        .find(|t| t.account_id == tt[0].id)
        .unwrap();
    assert!(
        tidepost_app::pipeline::retry(&h.app, &h.ws, &view.post.id, &published.id)
            .await
            .is_err()
    );
    let retried = tidepost_app::pipeline::retry(&h.app, &h.ws, &view.post.id, &failed.id)
        .await
        .unwrap();
    assert_eq!(state_of(&retried, &tt[1]), "queued");
    assert_eq!(state_of(&retried, &tt[0]), "published");
    // A change reaches only the retried target, queued again, and is checked like a new post:
    // its account must be connected again first.
    let change = compose::update(
        &h.app,
        &h.ws,
        &view.post.id,
        Update {
            caption: Some("late, for the one not sent".into()),
            ..Update::default()
        },
    )
    .await;
    assert!(
        matches!(&change, Err(ComposeError::Invalid(issues))
            if issues.iter().all(|i| i.rule == "needs_reauth" && i.account_id.as_deref() == Some(tt[1].id.as_str()))),
        "{change:?}"
    );
    // A change that only the published target could take is refused whole.
    let only = compose::update(
        &h.app,
        &h.ws,
        &view.post.id,
        Update {
            targets: vec![(tt[0].id.clone(), None)],
            ..Update::default()
        },
    )
    .await;
    assert!(
        matches!(&only, Err(ComposeError::Started(r)) if r.len() == 1),
        "{only:?}"
    );
}
on_both!(fan_out_with_failures, fan_out_with_failures);

async fn scheduling(backend: Backend) {
    let h = both(backend).await;
    let ig = h.business_account().await;
    let tt = tiktok_account(&h, "carol").await;
    let media = vec![video(&h).await];
    // Two posts a day on Instagram, so the limit is reached quickly.
    h.set_meta(json!({"publishing_limit": 2})).await;
    let at = tidepost_domain::now_ms() + 2 * HOUR_MS;
    let new = |offset_h: i64, targets: Vec<TargetSpec>, next_free: bool| NewComposite {
        caption: "later".into(),
        media: media.clone(),
        targets,
        schedule: Schedule {
            at: Some(When {
                at_ms: at + offset_h * HOUR_MS,
                time_zone: Some("Europe/Paris".into()),
            }),
            next_free_slot: next_free,
        },
        ..NewComposite::default()
    };
    let first = compose::submit(
        &h.app,
        &h.ws,
        new(0, vec![plain_target(&ig), tiktok_target(&tt)], false),
    )
    .await
    .unwrap();
    assert!(first.targets.iter().all(|t| t.state == "scheduled"));
    assert_eq!(first.post.time_zone.as_deref(), Some("Europe/Paris"));
    compose::submit(&h.app, &h.ws, new(1, vec![plain_target(&ig)], false))
        .await
        .unwrap();
    // Moved half an hour later (and reworded): the job of the old time does nothing.
    let moved = compose::update(
        &h.app,
        &h.ws,
        &first.post.id,
        Update {
            caption: Some("later, reworded".into()),
            schedule: Some(Schedule {
                at: Some(When {
                    at_ms: at + 30 * 60_000,
                    time_zone: None,
                }),
                next_free_slot: false,
            }),
            ..Update::default()
        },
    )
    .await
    .unwrap()
    .view;
    assert_eq!(moved.post.caption, "later, reworded");
    assert!(
        moved
            .targets
            .iter()
            .all(|t| t.scheduled_at == Some(at + 30 * 60_000))
    );
    // A third within 24 hours is refused, naming the slot the (moved) first one frees.
    let err = compose::submit(&h.app, &h.ws, new(3, vec![plain_target(&ig)], false))
        .await
        .unwrap_err();
    assert!(err.only_quota(), "{err:?}");
    let ComposeError::Invalid(issues) = err else {
        unreachable!()
    };
    // On the whole second at or after the slot that frees.
    let slot = (at + 30 * 60_000 + 24 * HOUR_MS + 999).div_euclid(1000) * 1000;
    assert_eq!(issues[0].next_slot_ms, Some(slot));
    assert_eq!(
        issues[0].platform,
        Some(tidepost_domain::Platform::Instagram)
    );
    assert!(
        issues[0].message.contains("next free slot"),
        "{}",
        issues[0].message
    );
    // A person reads times in the zone they scheduled in, named; never a bare UTC stamp.
    let spoken = compose::schedule::spoken(slot, Some("Europe/Paris"));
    assert!(spoken.ends_with("(Europe/Paris)"), "{spoken}");
    assert!(issues[0].message.contains(&spoken), "{}", issues[0].message);
    assert!(!issues[0].message.contains('Z'), "{}", issues[0].message);
    // So does a time in the past, without naming the API's field.
    let past = NewComposite {
        schedule: Schedule {
            at: Some(When {
                at_ms: tidepost_domain::now_ms() - 2 * HOUR_MS,
                time_zone: Some("America/New_York".into()),
            }),
            next_free_slot: false,
        },
        ..new(0, vec![plain_target(&ig)], false)
    };
    let ComposeError::Invalid(issues) = compose::submit(&h.app, &h.ws, past).await.unwrap_err()
    else {
        panic!("a time in the past is an invalid post")
    };
    let in_past = issues
        .iter()
        .find(|i| i.rule == "in_past")
        .expect("in_past");
    assert_eq!(in_past.field, "scheduled_at");
    assert!(
        in_past.message.contains("(America/New_York)") && in_past.message.contains("in the past"),
        "{}",
        in_past.message
    );
    assert!(
        !in_past.message.contains("scheduled_at"),
        "{}",
        in_past.message
    );
    // Asked for, the next free slot is taken.
    let third = compose::submit(&h.app, &h.ws, new(3, vec![plain_target(&ig)], true))
        .await
        .unwrap();
    assert_eq!(
        third.targets[0].scheduled_at,
        Some(at + 30 * 60_000 + 24 * HOUR_MS)
    );

    // Nothing goes out before its time, nor at the time it was moved away from.
    h.advance(2 * 3600 + 60).await;
    h.drain().await;
    let view = tidepost_app::pipeline::get(&h.app, &h.ws, &first.post.id)
        .await
        .unwrap();
    assert!(
        view.targets.iter().all(|t| t.state == "scheduled"),
        "{:?}",
        view.targets
    );
    h.advance(30 * 60).await;
    let done = run_all(&h, &first).await;
    assert_eq!(
        compose::summary(&done),
        PostSummary::Published,
        "{:?}",
        done.targets
    );
    let media = h.emulator_media().await;
    let captions: Vec<&str> = media["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["caption"].as_str())
        .collect();
    assert_eq!(
        captions.iter().filter(|c| **c == "later, reworded").count(),
        1,
        "{captions:?}"
    );

    // Cancelled before its time: every target cancelled, nothing sent; a second cancel is a
    // conflict, and so is cancelling a published post.
    let cancelled = tidepost_app::pipeline::cancel(&h.app, &h.ws, &third.post.id)
        .await
        .unwrap();
    assert_eq!(compose::summary(&cancelled), PostSummary::Cancelled);
    assert!(
        tidepost_app::pipeline::cancel(&h.app, &h.ws, &third.post.id)
            .await
            .is_err()
    );
    assert!(
        tidepost_app::pipeline::cancel(&h.app, &h.ws, &first.post.id)
            .await
            .is_err()
    );
}
on_both!(scheduling, scheduling);

/// A post made for one Instagram account (the single-account shape, a one-target composite)
/// changes like any other before it is sent: reworded and moved to a later time, it goes out
/// once, at that time, with the new caption and its media and type unchanged.
async fn single_instagram_post_changed(backend: Backend) {
    let h = both(backend).await;
    let ig = h.business_account().await;
    let made = tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        instagram::options::NewInstagramPost {
            account_id: ig.id.clone(),
            post: instagram::options::InstagramPost {
                media_type: instagram::options::MediaType::Image,
                caption: "as first written".into(),
                items: vec![Item {
                    url: Some(h.file_url("photo.jpg")),
                    ..Item::default()
                }],
                cover_url: None,
                share_to_feed: None,
                ..Default::default()
            },
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
    .unwrap();
    let at = tidepost_domain::now_ms() + HOUR_MS;
    let moved = compose::update(
        &h.app,
        &h.ws,
        &made.post.id,
        Update {
            caption: Some("reworded".into()),
            schedule: Some(Schedule {
                at: Some(When {
                    at_ms: at,
                    time_zone: None,
                }),
                next_free_slot: false,
            }),
            ..Update::default()
        },
    )
    .await
    .unwrap()
    .view;
    assert_eq!(moved.post.caption, "reworded");
    assert_eq!(moved.targets[0].state, "scheduled");
    assert_eq!(moved.targets[0].scheduled_at, Some(at));
    // The post keeps its options, reworded.
    let kept: compose::StoredComposite = serde_json::from_str(&moved.post.options).unwrap();
    assert_eq!(kept.caption, "reworded");
    assert_eq!(
        kept.targets[0].instagram.as_ref().unwrap().media_type,
        Some(instagram::options::MediaType::Image)
    );

    // Not before its time (the job enqueued when it was made finds it moved), then once.
    h.drain().await;
    let waiting = tidepost_app::pipeline::get(&h.app, &h.ws, &made.post.id)
        .await
        .unwrap();
    assert_eq!(waiting.targets[0].state, "scheduled");
    h.advance(HOUR_MS as u64 / 1000 + 60).await;
    let done = run_all(&h, &waiting).await;
    assert_eq!(compose::summary(&done), PostSummary::Published);
    let media = h.emulator_media().await;
    let captions: Vec<&str> = media["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["caption"].as_str())
        .collect();
    assert_eq!(captions, vec!["reworded"], "{media}");
}
on_both!(single_instagram_post_changed, single_instagram_post_changed);
