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

both_backends!(the_composer_saves_reopens_and_publishes_a_draft);

/// The composer's "Save draft": an unfinished post kept (nothing checked), listed on `/drafts`,
/// opened again with every choice as it was, changed, scheduled through the form in a zone and
/// published as one post; the draft then opens its post; a stale form is refused, not applied.
async fn the_composer_saves_reopens_and_publishes_a_draft(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("composer-drafts").await;
    let key = app.api_key(&me.workspace.id, "composer-drafts", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let field = |name: &str| format!("{name}:{account}");

    // Unfinished: no media, no privacy. Saved as it is.
    let first = vec![
        ("csrf".to_string(), me.csrf.clone()),
        ("caption".to_string(), "half done #plan".to_string()),
        ("targets".to_string(), account.clone()),
        ("when".to_string(), "at".to_string()),
        ("scheduled_at".to_string(), "2031-03-04T09:30".to_string()),
        ("time_zone".to_string(), "America/New_York".to_string()),
        (field("mode"), "direct".to_string()),
        (field("allow_comment"), "on".to_string()),
        (field("is_aigc"), "on".to_string()),
        ("intent".to_string(), "draft".to_string()),
    ];
    let saved = me
        .client
        .post(app.url("/compose"))
        .form(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let reopen = location(&saved);
    assert!(reopen.starts_with("/compose?draft="), "{reopen}");
    let draft_id = reopen
        .trim_start_matches("/compose?draft=")
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let (_, posts) = call(&app, &key, Method::GET, "/api/v1/posts", None).await;
    assert_eq!(posts["data"], json!([]), "a draft is no post");

    // Listed, and opened again as it was typed.
    let list = app.page_text(&me.client, "/drafts").await;
    assert!(list.contains("half done #plan"), "{list}");
    let html = app.page_text(&me.client, &reopen).await;
    assert!(html.contains("Draft saved"), "{html}");
    assert!(html.contains("Edit a draft"), "{html}");
    assert!(html.contains("half done #plan"), "{html}");
    assert!(html.contains(r#"value="2031-03-04T09:30""#), "{html}");
    assert!(html.contains(r#"value="America/New_York""#), "{html}");
    let tag = |name: &str| {
        html.split('<')
            .find(|t| t.contains(&format!(r#"name="{name}:{account}""#)))
            .unwrap_or_else(|| panic!("no {name} field"))
            .to_string()
    };
    assert!(tag("allow_comment").contains("checked"));
    assert!(tag("is_aigc").contains("checked"));
    assert!(!tag("allow_duet").contains("checked"));

    // Finished and published from the composer: one post, at the time in its zone.
    let media = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(tidepost_app::media::testing::video(
                    64 * 1024,
                    "draft",
                ))
                .file_name("draft.mp4")
                .mime_str("video/mp4")
                .unwrap(),
            ),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let media_id = media["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{media}"))
        .to_string();
    let mut finished: Vec<(String, String)> = first
        .iter()
        .filter(|(k, _)| k != "intent")
        .cloned()
        .collect();
    finished.extend([
        ("draft".to_string(), draft_id.clone()),
        ("draft_version".to_string(), "1".to_string()),
        ("media".to_string(), media_id),
        (field("privacy"), "SELF_ONLY".to_string()),
        ("intent".to_string(), "publish".to_string()),
    ]);
    // A form made on an older version than the draft's is refused, the draft unchanged.
    let (_, bumped) = call_with(
        &app,
        &key,
        Method::PUT,
        &format!("/api/v1/drafts/{draft_id}"),
        Some(json!({"caption": "changed elsewhere"})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(bumped["version"], 2, "{bumped:#}");
    let stale = me
        .client
        .post(app.url("/compose"))
        .form(&finished)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = stale.text().await.unwrap();
    assert!(page.contains("changed meanwhile"), "{page}");
    let (_, kept) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/drafts/{draft_id}"),
        None,
    )
    .await;
    assert_eq!(kept["caption"], "changed elsewhere");
    assert_eq!(kept["post_id"], Value::Null);

    for (k, v) in finished.iter_mut() {
        if k == "draft_version" {
            *v = "2".into();
        }
    }
    let published = me
        .client
        .post(app.url("/compose"))
        .form(&finished)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::SEE_OTHER);
    let post_path = location(&published);
    assert!(post_path.starts_with("/posts/"), "{post_path}");
    let post_id = post_path.trim_start_matches("/posts/").to_string();
    let (_, post) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/posts/{post_id}"),
        None,
    )
    .await;
    assert_eq!(post["caption"], "half done #plan", "{post:#}");
    // 09:30 in New York on 4 March 2031 (EST, UTC-5).
    assert_eq!(post["scheduled_at"], "2031-03-04T14:30:00Z", "{post:#}");
    assert_eq!(post["targets"][0]["state"], "scheduled");
    let (_, posts) = call(&app, &key, Method::GET, "/api/v1/posts", None).await;
    assert_eq!(posts["data"].as_array().unwrap().len(), 1);

    // The draft now opens its post, and leaves the list.
    let again = me.client.get(app.url(&reopen)).send().await.unwrap();
    assert_eq!(location(&again), post_path);
    let list = app.page_text(&me.client, "/drafts").await;
    assert!(!list.contains("half done #plan"), "{list}");

    // Another draft, deleted from the list.
    let mut other = first.clone();
    other[1].1 = "to delete".into();
    let saved = me
        .client
        .post(app.url("/compose"))
        .form(&other)
        .send()
        .await
        .unwrap();
    let other_id = location(&saved)
        .trim_start_matches("/compose?draft=")
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let deleted = me
        .client
        .post(app.url(&format!("/drafts/{other_id}/delete")))
        .form(&[("csrf", me.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&deleted), "/drafts");
    let list = app.page_text(&me.client, "/drafts").await;
    assert!(!list.contains("to delete"), "{list}");
    assert!(list.contains("No drafts"), "{list}");
}
