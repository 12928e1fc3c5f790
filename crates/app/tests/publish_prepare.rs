//! What happens before TikTok's init is sent: a usable token, the quota, a posting slot. These
//! may wait (for another instance's token refresh, for the rate window), and a worker may die
//! while they do. None of it records the init step's intent, so a run killed while waiting is
//! simply run again: the post is published once, never failed as "outcome unknown".

mod publish_support;

use std::time::Duration;

use publish_support::*;
use tidepost_app::tiktok::limits;
use tidepost_store::accounts;
use tidepost_store::limits::Admission;

async fn steps(h: &Harness) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("SELECT name, state, outcome FROM job_steps ORDER BY name")
        .fetch_all(h.app.db.pool())
        .await
        .unwrap()
}

on_both!(
    killed_while_waiting_for_a_token_refresh,
    |backend| async move {
        let h = harness(backend).await;
        let (view, sha) = h.submit_private(1_000_000).await;
        let target_id = view.targets[0].id.clone();
        let db = &h.app.db;

        // The access token falls due while another instance holds the account's refresh lease:
        // the run waits for that instance's new tokens, and is killed meanwhile.
        let now = tidepost_domain::now_ms();
        sqlx::query("UPDATE accounts SET access_expires_at = $1 WHERE id = $2")
            .bind(now + 1_000)
            .bind(&h.account.id)
            .execute(db.pool())
            .await
            .unwrap();
        assert!(
            accounts::try_lease_refresh(db, &h.account.id, "other-instance", now, 90_000)
                .await
                .unwrap()
        );
        let killed = tokio::time::timeout(Duration::from_millis(1_500), h.drain()).await;
        assert!(killed.is_err(), "the run was still waiting for the refresh");
        assert!(h.publishes().await.is_empty());
        assert_eq!(steps(&h).await, [], "no intent while waiting");

        // The other instance died too (its lease is given up); the killed run's lease expires.
        accounts::release_refresh(db, &h.account.id, "other-instance")
            .await
            .unwrap();
        h.advance(120).await;
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        let publishes = h.publishes().await;
        assert_eq!(publishes.len(), 1, "{publishes:?}");
        assert_eq!(publishes[0]["sha256"], sha);
        let steps = steps(&h).await;
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(
            (steps[0].0.as_str(), steps[0].1.as_str()),
            ("init-0", "done")
        );
        assert!(steps[0].2.as_deref().unwrap().contains("publish_id"));
    }
);

on_both!(
    a_wait_for_the_posting_slot_records_no_intent,
    |backend| async move {
        let h = harness(backend).await;
        // Six inits of this creator in the current minute already (another instance's).
        let now = h.clock.now_ms();
        for _ in 0..6 {
            assert_eq!(
                limits::posting_slot(&h.app, &h.account.id, now)
                    .await
                    .unwrap(),
                Admission::Admitted
            );
        }
        let (view, _) = h.submit_private(1_000_000).await;
        let target_id = view.targets[0].id.clone();
        let report = h.drain().await;
        // Waiting for the slot is a wait, not a failure.
        assert_eq!((report.waiting, report.retrying), (1, 0), "{report:?}");
        assert_eq!(steps(&h).await, [], "waiting for a slot records nothing");
        let waiting = h.target(&target_id).await;
        assert_eq!(waiting.init_at, None, "a waiting post holds no quota");

        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        assert_eq!(h.publishes().await.len(), 1);
        // One step: the init that was sent, in the generation after the wait.
        let steps = steps(&h).await;
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(
            (steps[0].0.as_str(), steps[0].1.as_str()),
            ("init-1", "done")
        );
    }
);
