//! Instagram's `media_publish` step: the token and the publishing limit (itself a Graph call)
//! are checked before the step's intent is recorded, so a refusal (or a worker killed while
//! checking) leaves no intent behind.

mod instagram_support;

use instagram_support::*;
use serde_json::json;
use tidepost_app::instagram::options::{InstagramPost, MediaType, NewInstagramPost};
use tidepost_app::pipeline::PostView;
use tidepost_app::pipeline::media::Item;
use tidepost_store::accounts::Account;
use tidepost_store::testing::Backend;

async fn submit(h: &Harness, account: &Account, caption: &str) -> PostView {
    let post = InstagramPost {
        media_type: MediaType::Image,
        caption: caption.into(),
        items: vec![Item {
            url: Some(h.file_url("photo.jpg")),
            ..Item::default()
        }],
        cover_url: None,
        share_to_feed: None,
        ..Default::default()
    };
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
    .unwrap()
}

async fn limit_refused_before_the_intent(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    h.set_meta(json!({"publishing_limit": 1})).await;
    let first = submit(&h, &account, "one").await;
    assert_eq!(
        h.run_to_final(&first.targets[0].id).await.state,
        "published"
    );
    // The second is accepted while the limit allows two, then runs when it allows one.
    h.set_meta(json!({"publishing_limit": 2})).await;
    let second = submit(&h, &account, "two").await;
    h.set_meta(json!({"publishing_limit": 1})).await;
    let target = h.run_to_final(&second.targets[0].id).await;
    assert_eq!(target.state, "failed", "{target:?}");
    assert_eq!(target.error_code.as_deref(), Some("publishing_limit"));

    // Only the publish that was sent has a step.
    let steps: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT name, state, outcome FROM job_steps WHERE name LIKE 'publish-%' ORDER BY created_at",
    )
    .fetch_all(h.app.db.pool())
    .await
    .unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].1, "done");
    assert!(
        steps[0].2.as_deref().unwrap().contains("media_id"),
        "{steps:?}"
    );
}
on_both!(
    publishing_limit_refusal_records_no_intent,
    limit_refused_before_the_intent
);
