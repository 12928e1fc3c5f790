//! The CRM records on both backends.

use super::contacts::{self, Sighting};
use super::interactions::{self, Filter, Observed};
use super::metrics::{self, Sample, Track};
use super::{Cursor, creators, timeline};
use crate::accounts::{self, Account};
use crate::{Db, both_backends, events, workspaces};

async fn workspace(db: &Db, slug: &str) -> String {
    workspaces::create(db, slug, slug).await.unwrap().id
}

async fn account(db: &Db, ws: &str, platform: &str, user: &str, name: &str) -> String {
    let now = tidepost_domain::now_ms();
    let a = Account {
        id: tidepost_domain::new_id(),
        workspace_id: ws.into(),
        platform: platform.parse().expect("a platform name"),
        provider_user_id: user.into(),
        display_name: name.into(),
        username: Some(name.to_lowercase()),
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: String::new(),
        access_token: "sealed".into(),
        refresh_token: None,
        access_expires_at: None,
        refresh_expires_at: None,
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(db, &a).await.unwrap();
    a.id
}

/// A published TikTok target, written with raw SQL so these tests do not follow every change
/// of the publishing structs.
async fn published_target(db: &Db, ws: &str, account_id: &str, caption: &str, at: i64) -> String {
    let post_id = tidepost_domain::new_id();
    let target_id = tidepost_domain::new_id();
    sqlx::query(
        "INSERT INTO posts (id, workspace_id, caption, kind, options, created_at, updated_at) \
         VALUES ($1, $2, $3, 'video', '{}', $4, $4)",
    )
    .bind(&post_id)
    .bind(ws)
    .bind(caption)
    .bind(at)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO post_targets (id, workspace_id, post_id, account_id, platform, mode, source, state, bytes_total, \
         bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, provider_post_ids, error_retryable, \
         finished_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'tiktok', 'direct', 'file_upload', 'published', 0, 0, 0, 0, 0, 0, $5, 0, $6, $6, $6)",
    )
    .bind(&target_id)
    .bind(ws)
    .bind(&post_id)
    .bind(account_id)
    .bind(format!("[\"v{}\"]", &target_id[30..]))
    .bind(at)
    .execute(db.pool())
    .await
    .unwrap();
    target_id
}

fn comment<'a>(
    account_id: &'a str,
    id: &'a str,
    user: &'a str,
    handle: &'a str,
    at: i64,
) -> Observed<'a> {
    Observed {
        platform: tidepost_domain::Platform::Instagram,
        kind: "comment",
        direction: "inbound",
        provider_id: id,
        parent_provider_id: None,
        author: Some(Sighting {
            platform: tidepost_domain::Platform::Instagram,
            platform_user_id: user,
            handle: Some(handle),
            name: None,
            at,
        }),
        account_id,
        provider_media_id: Some("m1"),
        text: "nice one",
        occurred_at: at,
    }
}

both_backends!(
    creators_own_accounts_and_none_is_orphaned,
    |db: Db| async move {
        let ws = workspace(&db, "acme").await;
        let a = account(&db, &ws, "tiktok", "u1", "Sam Tok").await;
        let b = account(&db, &ws, "instagram", "u2", "Sam Gram").await;
        let sam = creators::ensure_for_account(&db, &ws, &a)
            .await
            .unwrap()
            .unwrap();
        // Twice gives the same creator.
        assert_eq!(
            creators::ensure_for_account(&db, &ws, &a)
                .await
                .unwrap()
                .unwrap(),
            sam
        );
        assert_eq!(
            creators::get(&db, &ws, &sam).await.unwrap().unwrap().name,
            "Sam Tok"
        );
        let other = creators::ensure_for_account(&db, &ws, &b)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(other, sam);
        assert!(creators::attach(&db, &ws, &sam, &b).await.unwrap());
        let owned = creators::accounts_of(&db, &ws, &sam).await.unwrap();
        assert_eq!(owned.len(), 2);
        // A creator that owns accounts cannot be deleted; an empty one can.
        assert!(
            creators::delete(&db, &ws, &sam)
                .await
                .unwrap_err()
                .is_unique_violation()
        );
        assert!(creators::delete(&db, &ws, &other).await.unwrap());
        // Detaching gives the account a creator of its own.
        let own = creators::detach(&db, &ws, &sam, &b).await.unwrap().unwrap();
        assert_eq!(own.name, "Sam Gram");
        assert_eq!(
            creators::accounts_of(&db, &ws, &own.id)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            creators::detach(&db, &ws, &sam, &b)
                .await
                .unwrap()
                .is_none()
        );
        // Another workspace sees none of it.
        let ws2 = workspace(&db, "other").await;
        assert!(creators::get(&db, &ws2, &sam).await.unwrap().is_none());
        assert!(!creators::attach(&db, &ws2, &sam, &a).await.unwrap());
        assert!(
            creators::accounts_of(&db, &ws2, &sam)
                .await
                .unwrap()
                .is_empty()
        );
        // Paging and search.
        for i in 0..5 {
            creators::create(&db, &ws, &format!("Brand {i}"), "")
                .await
                .unwrap();
        }
        let first = creators::list(&db, &ws, None, None, &Cursor::start(), 4)
            .await
            .unwrap();
        assert_eq!(first.items.len(), 4);
        let rest = creators::list(&db, &ws, None, None, first.next.as_ref().unwrap(), 4)
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 3);
        assert!(rest.next.is_none());
        let found = creators::list(&db, &ws, Some("BRAND 3"), None, &Cursor::start(), 10)
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1);
        let none = creators::list(&db, &ws, Some("%"), None, &Cursor::start(), 10)
            .await
            .unwrap();
        assert!(none.items.is_empty(), "a % is searched literally");
    }
);

both_backends!(
    interactions_are_recorded_once_per_provider_id,
    |db: Db| async move {
        let ws = workspace(&db, "acme").await;
        let a = account(&db, &ws, "instagram", "ig1", "Gram").await;
        let creator = creators::ensure_for_account(&db, &ws, &a).await.unwrap();
        let first = interactions::record(&db, &ws, &comment(&a, "c1", "fan1", "old.handle", 1_000))
            .await
            .unwrap()
            .expect("new");
        assert_eq!(first.creator_id, creator);
        assert!(
            interactions::record(&db, &ws, &comment(&a, "c1", "fan1", "old.handle", 1_000))
                .await
                .unwrap()
                .is_none()
        );
        interactions::record(&db, &ws, &comment(&a, "c2", "fan1", "new.handle", 3_000))
            .await
            .unwrap()
            .unwrap();
        // An older sighting does not take the handle back.
        interactions::record(&db, &ws, &comment(&a, "c3", "fan1", "older.handle", 500))
            .await
            .unwrap()
            .unwrap();
        interactions::record(&db, &ws, &comment(&a, "c4", "fan2", "someone", 2_000))
            .await
            .unwrap()
            .unwrap();
        let fans = contacts::list(&db, &ws, None, None, &Cursor::start(), 10)
            .await
            .unwrap()
            .items;
        assert_eq!(fans.len(), 2);
        let fan1 = fans.iter().find(|c| c.platform_user_id == "fan1").unwrap();
        assert_eq!(fan1.handle.as_deref(), Some("new.handle"));
        assert_eq!(
            (fan1.first_seen_at, fan1.last_seen_at, fan1.interactions),
            (500, 3_000, 3)
        );
        assert_eq!(fans[0].platform_user_id, "fan1", "most recently seen first");
        let found = contacts::list(&db, &ws, Some("@NEW.h"), None, &Cursor::start(), 10)
            .await
            .unwrap();
        assert_eq!(found.items.len(), 1);
        assert!(
            contacts::list(&db, &ws, Some("nobody"), None, &Cursor::start(), 10)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let of_fan = interactions::list(
            &db,
            &ws,
            &Filter {
                contact_id: Some(&fan1.id),
                ..Filter::default()
            },
            &Cursor::start(),
            2,
        )
        .await
        .unwrap();
        assert_eq!(
            of_fan
                .items
                .iter()
                .map(|i| i.provider_id.as_str())
                .collect::<Vec<_>>(),
            ["c2", "c1"]
        );
        let more = interactions::list(
            &db,
            &ws,
            &Filter {
                contact_id: Some(&fan1.id),
                ..Filter::default()
            },
            of_fan.next.as_ref().unwrap(),
            2,
        )
        .await
        .unwrap();
        assert_eq!(more.items.len(), 1);
        assert!(more.next.is_none());
        // The same provider id in another workspace is another interaction; ours stay invisible there.
        let ws2 = workspace(&db, "other").await;
        let b = account(&db, &ws2, "instagram", "ig1", "Gram").await;
        assert!(
            interactions::record(&db, &ws2, &comment(&b, "c1", "fan1", "x", 1_000))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            interactions::get(&db, &ws2, &first.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(contacts::get(&db, &ws2, &fan1.id).await.unwrap().is_none());
    }
);

both_backends!(
    metrics_slots_are_sampled_once_with_milestones,
    |db: Db| async move {
        let ws = workspace(&db, "acme").await;
        let a = account(&db, &ws, "tiktok", "tt1", "Tok").await;
        let target = published_target(&db, &ws, &a, "hello", 10_000).await;
        let found = metrics::untracked(&db, 10).await.unwrap();
        assert_eq!(found.len(), 1);
        let track = Track {
            target_id: target.clone(),
            workspace_id: ws.clone(),
            account_id: a.clone(),
            platform: tidepost_domain::Platform::Tiktok,
            provider_media_id: "v1".into(),
            media_type: None,
            published_at: 10_000,
            next_sample_at: Some(10_000),
            last_sample_at: None,
            samples: 0,
            last_error: None,
            created_at: 10_000,
        };
        assert!(metrics::insert_track(&db, &track).await.unwrap());
        assert!(!metrics::insert_track(&db, &track).await.unwrap());
        assert!(metrics::untracked(&db, 10).await.unwrap().is_empty());
        assert_eq!(
            metrics::due_accounts(&db, 10_000, 10).await.unwrap(),
            vec![(ws.clone(), a.clone())]
        );
        assert!(
            metrics::due_accounts(&db, 9_999, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let sample = Sample {
            sampled_at: 10_000,
            views: Some(1_500),
            likes: Some(10),
            ..Sample::default()
        };
        let crossed = metrics::record_sample(&db, &track, 10_000, &sample, Some(20_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            crossed.iter().map(|m| m.threshold).collect::<Vec<_>>(),
            [1_000]
        );
        // The same slot again: someone else sampled it.
        assert!(
            metrics::record_sample(&db, &track, 10_000, &sample, Some(20_000))
                .await
                .unwrap()
                .is_none()
        );
        let later = Sample {
            sampled_at: 20_000,
            views: Some(12_000),
            ..Sample::default()
        };
        let crossed = metrics::record_sample(&db, &track, 20_000, &later, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            crossed.iter().map(|m| m.threshold).collect::<Vec<_>>(),
            [10_000]
        );
        let series = metrics::series(&db, &ws, &target, 100).await.unwrap();
        assert_eq!(
            series.iter().map(|s| s.views).collect::<Vec<_>>(),
            [Some(1_500), Some(12_000)]
        );
        let stopped = metrics::track(&db, &ws, &target).await.unwrap().unwrap();
        assert_eq!((stopped.samples, stopped.next_sample_at), (2, None));
        let mut conn = db.pool().acquire().await.unwrap();
        assert_eq!(
            metrics::target_of_media(&mut conn, &ws, tidepost_domain::Platform::Tiktok, "v1")
                .await
                .unwrap(),
            Some(target.clone())
        );
        drop(conn);
        let ws2 = workspace(&db, "other").await;
        assert!(
            metrics::series(&db, &ws2, &target, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(metrics::track(&db, &ws2, &target).await.unwrap().is_none());
    }
);

both_backends!(timelines_merge_newest_first, |db: Db| async move {
    let ws = workspace(&db, "acme").await;
    let a = account(&db, &ws, "tiktok", "tt1", "Tok").await;
    let creator = creators::ensure_for_account(&db, &ws, &a)
        .await
        .unwrap()
        .unwrap();
    let target = published_target(&db, &ws, &a, "the post", 2_000).await;
    let mut c = comment(&a, "c1", "fan", "fan", 3_000);
    c.platform = tidepost_domain::Platform::Tiktok;
    c.provider_media_id = None;
    if let Some(author) = c.author.as_mut() {
        author.platform = tidepost_domain::Platform::Tiktok;
    }
    interactions::record(&db, &ws, &c).await.unwrap().unwrap();
    let event = events::record(
        &db,
        &ws,
        "account.connected",
        Some(&a),
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    let track = Track {
        target_id: target.clone(),
        workspace_id: ws.clone(),
        account_id: a.clone(),
        platform: tidepost_domain::Platform::Tiktok,
        provider_media_id: "v1".into(),
        media_type: None,
        published_at: 2_000,
        next_sample_at: Some(2_500),
        last_sample_at: None,
        samples: 0,
        last_error: None,
        created_at: 2_000,
    };
    metrics::insert_track(&db, &track).await.unwrap();
    let sample = Sample {
        sampled_at: 4_000,
        views: Some(1_000),
        ..Sample::default()
    };
    metrics::record_sample(&db, &track, 2_500, &sample, None)
        .await
        .unwrap()
        .unwrap();
    // Events not about the creator's accounts stay out.
    events::record(&db, &ws, "post.published", Some(&a), &serde_json::json!({}))
        .await
        .unwrap();
    let all = timeline::of_creator(&db, &ws, &creator, &Cursor::start(), 10)
        .await
        .unwrap();
    let kinds: Vec<&str> = all.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["account_event", "milestone", "interaction", "post"],
        "{:?}",
        all.items
    );
    assert_eq!(all.items[0].at, event.created_at);
    assert_eq!(all.items[1].detail, "1000");
    assert_eq!(all.items[3].title, "the post");
    // Two at a time gives the same order.
    let first = timeline::of_creator(&db, &ws, &creator, &Cursor::start(), 2)
        .await
        .unwrap();
    let second = timeline::of_creator(&db, &ws, &creator, first.next.as_ref().unwrap(), 2)
        .await
        .unwrap();
    let paged: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        paged,
        all.items.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    assert!(second.next.is_none());
    let fan = contacts::list(&db, &ws, None, None, &Cursor::start(), 1)
        .await
        .unwrap()
        .items
        .remove(0);
    let theirs = timeline::of_contact(&db, &ws, &fan.id, &Cursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    let ws2 = workspace(&db, "other").await;
    assert!(
        timeline::of_creator(&db, &ws2, &creator, &Cursor::start(), 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        timeline::of_contact(&db, &ws2, &fan.id, &Cursor::start(), 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
});
