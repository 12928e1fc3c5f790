//! Drafts through `/api/v1/drafts` (and `POST /api/v1/posts` with `"draft": true`):
//!
//! - a draft is saved as it is, unfinished too, with `issues` saying what stops it; it starts
//!   no job, is no post and counts against no limit;
//! - `PUT` replaces it, `If-Match` refuses a change made on an old version (412);
//! - publishing goes through every check of a new post (refused: 422 with every issue, the
//!   draft kept), at the draft's time or another; a draft becomes one post however often,
//!   and however concurrently, it is published; a published draft no longer changes;
//! - another workspace's drafts are not found, whatever the method.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidepost_store::testing::Backend;

use crate::support::*;

async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_with(app, key, method, path, body, None).await
}

async fn call_with(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = bare_client()
        .request(method, app.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn jobs(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind LIKE 'tiktok.%'")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

both_backends!(a_draft_is_saved_changed_and_published_once);

async fn a_draft_is_saved_changed_and_published_once(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            // One pending inbox post per creator per day: a limit the drafts must not touch.
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("drafts").await;
    let key = app.api_key(&me.workspace.id, "drafts", &[]).await;
    let account = fixture_account(&app.db, &me.workspace.id, "tiktok", "act.draftsA", "A").await;
    let media = json!([{"url": "https://media.tidepost.example/clip.mp4"}]);

    // Unfinished: no account yet. Saved, with what stops it.
    let (status, draft) = call(
        &app,
        &key,
        Method::POST,
        "/api/v1/posts",
        Some(json!({"draft": true, "caption": "plan", "media": media, "targets": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{draft:#}");
    let id = draft["id"].as_str().unwrap().to_string();
    assert_eq!(draft["version"], 1);
    assert_eq!(draft["post_id"], Value::Null);
    let issues = draft["issues"].as_array().unwrap();
    assert!(issues.iter().any(|i| i["field"] == "targets"), "{draft:#}");
    // No post, no job.
    let (_, posts) = call(&app, &key, Method::GET, "/api/v1/posts", None).await;
    assert_eq!(posts["data"], json!([]), "{posts:#}");
    assert_eq!(jobs(&app).await, 0);

    // Publishing it as it is: every issue, the draft kept as it was.
    let (status, refused) = call(
        &app,
        &key,
        Method::POST,
        &format!("/api/v1/drafts/{id}/publish"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:#}");
    assert!(
        refused["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{refused:#}"
    );
    let (_, kept) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts/{id}"),
        None,
    )
    .await;
    assert_eq!(kept["version"], 1);
    assert_eq!(kept["post_id"], Value::Null);

    // Two more drafts for the account whose limit is one post: drafts count for nothing.
    for n in 0..2 {
        let (status, other) = call(
            &app,
            &key,
            Method::POST,
            "/api/v1/drafts",
            Some(json!({
                "caption": format!("other {n}"), "media": media,
                "targets": [{"account_id": account, "tiktok": {"mode": "inbox"}}],
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{other:#}");
        assert_eq!(other["issues"], json!([]), "{other:#}");
    }
    let (_, listed) = call(&app, &key, Method::GET, "/api/v1/drafts?limit=2", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed:#}");
    let after = listed["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, rest) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts?after={after}"),
        None,
    )
    .await;
    let rest = rest["data"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], id.as_str(), "the oldest draft comes last");

    // Changed: the account chosen. A change made on version 1 again is refused.
    let finished = json!({
        "caption": "ready", "media": media,
        "targets": [{"account_id": account, "tiktok": {"mode": "inbox"}}],
    });
    let (status, changed) = call_with(
        &app,
        &key,
        Method::PUT,
        &format!("/api/v1/drafts/{id}"),
        Some(finished.clone()),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed:#}");
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["caption"], "ready");
    assert_eq!(changed["issues"], json!([]), "{changed:#}");
    let (status, stale) = call_with(
        &app,
        &key,
        Method::PUT,
        &format!("/api/v1/drafts/{id}"),
        Some(json!({"caption": "lost"})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{stale:#}");
    assert_eq!(stale["version"], 2);
    let (status, bad) = call_with(
        &app,
        &key,
        Method::PUT,
        &format!("/api/v1/drafts/{id}"),
        Some(finished.clone()),
        Some("yesterday"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:#}");

    // Published five times at once: one post, the same for every answer.
    let path = format!("/api/v1/drafts/{id}/publish");
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (url, key) = (app.url(&path), key.clone());
        racers.spawn(async move {
            let answer = bare_client()
                .post(url)
                .bearer_auth(key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap())
        });
    }
    let answers = racers.join_all().await;
    let mut post_ids = std::collections::HashSet::new();
    for (status, post) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{post:#}");
        assert_eq!(post["caption"], "ready");
        post_ids.insert(post["id"].as_str().unwrap().to_string());
    }
    assert_eq!(post_ids.len(), 1, "{answers:?}");
    let post_id = post_ids.into_iter().next().unwrap();
    let (_, posts) = call(&app, &key, Method::GET, "/api/v1/posts", None).await;
    assert_eq!(posts["data"].as_array().unwrap().len(), 1, "{posts:#}");
    assert_eq!(jobs(&app).await, 1);

    // Published: it says which post, leaves the list, no longer changes.
    let (_, published) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts/{id}"),
        None,
    )
    .await;
    assert_eq!(published["post_id"], post_id.as_str());
    assert!(published["published_at"].is_string());
    let (_, listed) = call(&app, &key, Method::GET, "/api/v1/drafts", None).await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["id"] != id.as_str()),
        "{listed:#}"
    );
    let (status, refused) = call(
        &app,
        &key,
        Method::PUT,
        &format!("/api/v1/drafts/{id}"),
        Some(finished.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused:#}");
    assert!(
        refused["detail"].as_str().unwrap().contains(&post_id),
        "{refused:#}"
    );

    // The other drafts now meet the limit the published one took: refused with the next slot,
    // kept; then published at that slot.
    let other = rest_first(&app, &key).await;
    let other_path = format!("/api/v1/drafts/{other}/publish");
    let (status, limited) = call(&app, &key, Method::POST, &other_path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{limited:#}");
    let slot = limited["next_slot_at"]
        .as_str()
        .expect("the next free slot")
        .to_string();
    let (status, later) = call(
        &app,
        &key,
        Method::POST,
        &other_path,
        Some(json!({"scheduled_at": slot})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{later:#}");
    assert_eq!(later["targets"][0]["state"], "scheduled", "{later:#}");

    // A time in the past, a time zone without a time, a body that is no object.
    let third = rest_first(&app, &key).await;
    let third_path = format!("/api/v1/drafts/{third}/publish");
    for (body, status) in [
        (
            json!({"scheduled_at": "2020-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"time_zone": "Europe/Paris"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"when": "now"}), StatusCode::BAD_REQUEST),
    ] {
        let (got, answer) = call(&app, &key, Method::POST, &third_path, Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer:#}");
    }
    let (_, still) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts/{third}"),
        None,
    )
    .await;
    assert_eq!(still["post_id"], Value::Null, "{still:#}");

    // Deleted: gone.
    let (status, _) = call(
        &app,
        &key,
        Method::DELETE,
        &format!("/api/v1/drafts/{third}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts/{third}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The oldest draft not yet published.
async fn rest_first(app: &TestApp, key: &str) -> String {
    let (_, listed) = call(app, key, Method::GET, "/api/v1/drafts", None).await;
    listed["data"]
        .as_array()
        .unwrap()
        .last()
        .expect("a draft left")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends!(another_workspaces_drafts_are_not_found);

async fn another_workspaces_drafts_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("drafts-mine").await;
    let key = app.api_key(&me.workspace.id, "mine", &[]).await;
    let them = app.signed_in("drafts-theirs").await;
    let their_key = app.api_key(&them.workspace.id, "theirs", &[]).await;
    let (_, draft) = call(
        &app,
        &key,
        Method::POST,
        "/api/v1/drafts",
        Some(json!({"caption": "mine"})),
    )
    .await;
    let id = draft["id"].as_str().unwrap();
    let path = format!("/api/v1/drafts/{id}");
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"caption": "theirs"})),
        ),
        (Method::POST, format!("{path}/publish"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, answer) = call(&app, &their_key, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer:#}");
    }
    let (_, theirs) = call(&app, &their_key, Method::GET, "/api/v1/drafts", None).await;
    assert_eq!(theirs["data"], json!([]));
    let (_, mine) = call(&app, &key, Method::GET, &path, None).await;
    assert_eq!(mine["caption"], "mine");
    assert_eq!(mine["version"], 1);
}
