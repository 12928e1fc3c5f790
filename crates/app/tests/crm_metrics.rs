//! The CRM metrics sync against the emulator, on SQLite and PostgreSQL: a public TikTok video
//! is published, the sweep starts tracking it, and the `crm.metrics` job samples
//! `/v2/video/query/` as emulated time passes — a growing series, `metrics.updated` per sample,
//! a views milestone, and a schedule that slows as the post ages (15 minutes, then hourly, then
//! daily) and stops at 30 days.

mod publish_support;

use publish_support::*;
use tidepost_app::crm;
use tidepost_app::tiktok::Mode;
use tidepost_jobs::{Registry, drain_due};
use tidepost_store::crm::{creators, metrics, timeline};
use tidepost_store::testing::Backend;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// One sweep and the CRM jobs it enqueued, at the job clock's now.
async fn sync(h: &Harness) {
    let now = h.clock.now_ms();
    crm::sync::sweep(&h.app, now).await.unwrap();
    let registry = crm::register(Registry::new(), &h.app);
    let kinds = vec![crm::sync::METRICS.to_string()];
    let report = drain_due(&h.queue, &registry, Some(&kinds), 100)
        .await
        .unwrap();
    assert!(report.all_ok(), "{report:?}");
}

async fn metrics_series(backend: Backend) {
    let h = harness(backend).await;
    let (media, _) = h.media(2_000_000).await;
    let view = h
        .submit_file(
            &media.id,
            Mode::Direct,
            h.direct_options("PUBLIC_TO_EVERYONE"),
        )
        .await
        .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let video_id = target.post_ids().remove(0);

    // The first sample is taken at once; then every 15 minutes on the first day.
    sync(&h).await;
    let track = metrics::track(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap()
        .expect("the sweep tracks the published target");
    assert_eq!(track.provider_media_id, video_id);
    assert_eq!(track.samples, 1, "{track:?}");
    let first_gap = track.next_sample_at.unwrap() - track.last_sample_at.unwrap();
    assert_eq!(first_gap, 15 * MINUTE);
    // Nothing is due before the slot: another sweep samples nothing.
    sync(&h).await;
    assert_eq!(
        metrics::track(&h.app.db, &h.ws, &target.id)
            .await
            .unwrap()
            .unwrap()
            .samples,
        1
    );
    for _ in 0..6 {
        h.advance(15 * 60).await;
        sync(&h).await;
    }
    let series = metrics::series(&h.app.db, &h.ws, &target.id, 100)
        .await
        .unwrap();
    assert_eq!(series.len(), 7, "{series:?}");
    let views: Vec<i64> = series.iter().map(|s| s.views.unwrap()).collect();
    assert!(
        views.windows(2).all(|w| w[0] < w[1]),
        "views grow: {views:?}"
    );
    assert!(
        series
            .iter()
            .all(|s| s.likes.is_some() && s.shares.is_some() && s.saves.is_none())
    );

    // A day later the schedule is hourly, and the first views milestone has been crossed.
    h.advance(24 * 3600).await;
    sync(&h).await;
    let track = metrics::track(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        track.next_sample_at.unwrap() - track.last_sample_at.unwrap(),
        HOUR
    );
    let milestones = metrics::milestones_of(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap();
    assert_eq!(
        milestones.iter().map(|m| m.threshold).collect::<Vec<_>>(),
        [1_000]
    );
    // After a week, daily.
    h.advance(7 * 24 * 3600).await;
    sync(&h).await;
    let track = metrics::track(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        track.next_sample_at.unwrap() - track.last_sample_at.unwrap(),
        DAY
    );
    // After 30 days, sampling stops.
    h.advance(23 * 24 * 3600).await;
    sync(&h).await;
    let track = metrics::track(&h.app.db, &h.ws, &target.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(track.next_sample_at, None, "{track:?}");
    let samples = track.samples;
    h.advance(2 * 24 * 3600).await;
    sync(&h).await;
    assert_eq!(
        metrics::track(&h.app.db, &h.ws, &target.id)
            .await
            .unwrap()
            .unwrap()
            .samples,
        samples
    );
    assert_eq!(samples, 10);

    // One metrics.updated per sample, naming the post.
    let events = tidepost_store::events::recent(&h.app.db, &h.ws, None, 200)
        .await
        .unwrap();
    let updated: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == "metrics.updated")
        .collect();
    assert_eq!(updated.len() as i64, samples);
    assert_eq!(
        updated[0].subject_id.as_deref(),
        Some(target.post_id.as_str())
    );
    assert!(
        updated[0].payload.contains("\"views\""),
        "{}",
        updated[0].payload
    );

    // The sweep gave the account a creator, whose timeline shows the post and the milestone.
    let creator = creators::ensure_for_account(&h.app.db, &h.ws, &h.account.id)
        .await
        .unwrap()
        .unwrap();
    let entries = timeline::of_creator(
        &h.app.db,
        &h.ws,
        &creator,
        &tidepost_store::crm::Cursor::start(),
        50,
    )
    .await
    .unwrap()
    .items;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"post") && kinds.contains(&"milestone"),
        "{kinds:?}"
    );
}

on_both!(metrics_follow_an_emulated_series, metrics_series);
