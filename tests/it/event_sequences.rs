//! The class "outbound events that contradict each other": for every path that ends a target,
//! the sequence of `post.*` deliveries a receiver gets for one attempt at a target never goes
//! from a failure to published. A publish whose answer was lost is `post.outcome_unknown`
//! (it may still turn out published), never `post.failed`. The tests that drive the ending
//! paths (`unknown_outcome.rs`, `faults.rs`) subscribe an endpoint with [`subscribe`] and end
//! with [`assert_no_failure_reverses`], which reads the recorded deliveries.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::Db;

use crate::support::*;

/// A receiver on loopback that answers 200, subscribed to every event of the key's workspace;
/// the dispatch sweep is scheduled, so a server without workers delivers on `run-due` too.
pub async fn subscribe(app: &TestApp, key: &str) {
    tidepost_jobs::schedule::ensure(
        &tidepost_jobs::Queue::new(app.db.clone()),
        &tidepost_jobs::schedule::Schedule::every(
            tidepost_app::outbound::dispatch::DISPATCH,
            Duration::from_secs(1),
            tidepost_app::outbound::dispatch::DISPATCH,
            json!({}),
        ),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(|| async { "thanks" });
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let created = bare_client()
        .post(app.url("/api/v1/webhook-endpoints"))
        .bearer_auth(key)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    let status = created.status();
    let text = created.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
}

/// The `post.*` deliveries of the workspace, per (target, attempt), in the order of their events.
async fn post_deliveries(db: &Db, workspace_id: &str) -> BTreeMap<(String, i64), Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, body FROM webhook_deliveries \
         WHERE workspace_id = $1 AND event_type LIKE 'post.%' ORDER BY event_created_at, event_id",
    )
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut by_target: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    for (kind, body) in rows {
        let body: Value = serde_json::from_str(&body).unwrap();
        let data = &body["data"];
        let target = data["target_id"].as_str().unwrap_or_default().to_string();
        let attempt = data["attempt"].as_i64().unwrap_or_default();
        by_target.entry((target, attempt)).or_default().push(kind);
    }
    by_target
}

/// Waits for the dispatcher to catch up with the `post.*` events recorded so far, then asserts
/// that no target's attempt was announced failed and later published.
pub async fn assert_no_failure_reverses(db: &Db, workspace_id: &str) {
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type LIKE 'post.%'",
    )
    .bind(workspace_id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = post_deliveries(db, workspace_id)
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>();
        if delivered as i64 >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        delivered as i64, events,
        "every post event becomes a delivery"
    );
    for ((target, attempt), kinds) in post_deliveries(db, workspace_id).await {
        if let Some(failed) = kinds.iter().position(|k| k == "post.failed") {
            assert!(
                !kinds[failed..].iter().any(|k| k == "post.published"),
                "target {target} (attempt {attempt}) was announced failed, then published: {kinds:?}"
            );
        }
    }
}
