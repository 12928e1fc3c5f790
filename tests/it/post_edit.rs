//! Editing a post that has not been sent (`PATCH /api/v1/posts/{id}`) and its history
//! (`GET /api/v1/posts/{id}/history`):
//!
//! - each part of a scheduled post to several accounts changes (caption, media, a target's
//!   options, an account added, a target removed, the time), each change in the history;
//! - a target already sending keeps what it had and is refused with its reason while the
//!   others change; a change only it could take is a 409 naming it;
//! - the limits are checked again at the new time (409 with the next free slot);
//! - `If-Match` with a stale version is a 412, and another workspace's post is not found;
//! - bad bodies are problem+json naming what is wrong;
//! - an edit racing with a publish job's claim of the target: exactly one wins, and what the
//!   job read is what is stored when it wins (nothing is sent with half an edit).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidepost_store::posts;
use tidepost_store::testing::Backend;

use crate::support::*;

const HOUR_MS: i64 = 3_600_000;

async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut request = bare_client()
        .request(method, app.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(version) = if_match {
        request = request.header("if-match", version);
    }
    request.send().await.unwrap()
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body:#}");
    body
}

fn rfc3339(ms: i64) -> String {
    tidepost_domain::time::rfc3339(ms)
}

fn inbox(account: &str) -> Value {
    json!({"account_id": account, "tiktok": {"mode": "inbox"}})
}

/// A post to `accounts` (TikTok inbox) at `at`, made through the API.
async fn scheduled_post(app: &TestApp, key: &str, accounts: &[&str], at: i64) -> Value {
    let targets: Vec<Value> = accounts.iter().map(|a| inbox(a)).collect();
    let made = call(
        app,
        key,
        Method::POST,
        "/api/v1/posts",
        Some(json!({
            "caption": "as first written",
            "media": [{"url": "https://media.tidepost.example/clip.mp4"}],
            "targets": targets,
            "scheduled_at": rfc3339(at),
        })),
        None,
    )
    .await;
    json_of(made, StatusCode::ACCEPTED).await
}

fn target_of<'a>(post: &'a Value, account: &str) -> &'a Value {
    post["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["account_id"] == account && t["state"] != "cancelled")
        .unwrap_or_else(|| panic!("a live target on {account}: {post:#}"))
}

/// What the publish job of `account`'s target would read: its options' caption.
async fn sent_caption(app: &TestApp, ws: &str, post: &Value, account: &str) -> String {
    let id = target_of(post, account)["id"].as_str().unwrap();
    let target = posts::target(&app.db, ws, id).await.unwrap().unwrap();
    let stored = posts::get(&app.db, ws, &target.post_id)
        .await
        .unwrap()
        .unwrap();
    let options: tidepost_app::tiktok::PostOptions =
        serde_json::from_str(target.options_or(&stored)).unwrap();
    options.caption
}

async fn publish_jobs(app: &TestApp, target_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'tiktok.publish' AND payload LIKE $1",
    )
    .bind(format!("%{target_id}%"))
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

both_backends!(each_part_of_a_scheduled_post_changes);

async fn each_part_of_a_scheduled_post_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("edit").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "edit", &[]).await;
    let key_id = app.key_id(&key).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.editA", "A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.editB", "B").await;
    let c = fixture_account(&app.db, &ws, "tiktok", "act.editC", "C").await;
    let at = tidepost_domain::now_ms() / 1000 * 1000 + 2 * HOUR_MS;
    let post = scheduled_post(&app, &key, &[&a, &b], at).await;
    let id = post["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/posts/{id}");
    assert_eq!(post["version"], 1);

    // The shared caption: every target's job reads it.
    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "reworded"})),
        None,
    )
    .await;
    assert_eq!(edited.headers()["etag"], "\"2\"");
    let edited = json_of(edited, StatusCode::OK).await;
    assert_eq!(edited["caption"], "reworded");
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["refused"], json!([]));
    for account in [&a, &b] {
        assert_eq!(sent_caption(&app, &ws, &edited, account).await, "reworded");
        assert_eq!(target_of(&edited, account)["state"], "scheduled");
    }

    // The media.
    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"media": [{"url": "https://media.tidepost.example/other.mp4"}]})),
        None,
    )
    .await;
    let edited = json_of(edited, StatusCode::OK).await;
    assert_eq!(
        edited["media_url"], "https://media.tidepost.example/other.mp4",
        "{edited:#}"
    );

    // One target's own caption and options; the other keeps the shared caption.
    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(
            json!({"targets": {b.clone(): {"caption": "for B only", "tiktok": {"mode": "inbox"}}}}),
        ),
        None,
    )
    .await;
    let edited = json_of(edited, StatusCode::OK).await;
    assert_eq!(sent_caption(&app, &ws, &edited, &b).await, "for B only");
    assert_eq!(sent_caption(&app, &ws, &edited, &a).await, "reworded");

    // An account added (at the post's time, with its job) and a target removed, at once.
    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"targets": {c.clone(): {"tiktok": {"mode": "inbox"}}, a.clone(): null}})),
        None,
    )
    .await;
    let edited = json_of(edited, StatusCode::OK).await;
    let added = target_of(&edited, &c);
    assert_eq!(added["state"], "scheduled", "{edited:#}");
    assert_eq!(added["scheduled_at"], rfc3339(at));
    assert_eq!(
        publish_jobs(&app, added["id"].as_str().unwrap()).await,
        1,
        "the added target has its job"
    );
    assert_eq!(sent_caption(&app, &ws, &edited, &c).await, "reworded");
    let removed = edited["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["account_id"] == a.as_str())
        .unwrap();
    assert_eq!(removed["state"], "cancelled", "{edited:#}");

    // The time: every target moves, each with a job at the new time.
    let later = at + HOUR_MS;
    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"scheduled_at": rfc3339(later)})),
        None,
    )
    .await;
    let edited = json_of(edited, StatusCode::OK).await;
    assert_eq!(edited["scheduled_at"], rfc3339(later));
    for account in [&b, &c] {
        let target = target_of(&edited, account);
        assert_eq!(target["scheduled_at"], rfc3339(later), "{edited:#}");
        assert_eq!(publish_jobs(&app, target["id"].as_str().unwrap()).await, 2);
    }
    assert_eq!(edited["version"], 6);

    // The history: who, what, when, newest first, cursor-paged.
    let page = call(
        &app,
        &key,
        Method::GET,
        &format!("{path}/history?limit=4"),
        None,
        None,
    )
    .await;
    let page = json_of(page, StatusCode::OK).await;
    let entries = page["data"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{page:#}");
    assert_eq!(entries[0]["action"], "moved");
    assert_eq!(entries[0]["actor"], format!("api_key:{key_id}"));
    assert_eq!(entries[0]["changes"][0]["field"], "scheduled_at");
    assert_eq!(entries[0]["changes"][0]["before"], rfc3339(at));
    assert_eq!(entries[0]["changes"][0]["after"], rfc3339(later));
    let fields = |entry: &Value| -> Vec<(String, Option<String>)> {
        entry["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap().to_string(),
                    c["account_id"].as_str().map(str::to_string),
                )
            })
            .collect()
    };
    let added_removed = fields(&entries[1]);
    assert!(
        added_removed.contains(&("target".into(), Some(c.clone())))
            && added_removed.contains(&("target".into(), Some(a.clone()))),
        "{page:#}"
    );
    assert_eq!(
        entries[1]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ch| ch["account_id"] == a.as_str())
            .unwrap()["after"],
        Value::Null
    );
    assert_eq!(fields(&entries[2]), [("options".into(), Some(b.clone()))]);
    assert_eq!(entries[2]["changes"][0]["after"]["caption"], "for B only");
    assert_eq!(fields(&entries[3]), [("media".into(), None)]);
    let next = page["next_cursor"].as_str().expect("a second page");
    let rest = call(
        &app,
        &key,
        Method::GET,
        &format!("{path}/history?after={next}"),
        None,
        None,
    )
    .await;
    let rest = json_of(rest, StatusCode::OK).await;
    let rest = rest["data"].as_array().unwrap();
    assert_eq!(rest.len(), 2, "{rest:#?}");
    assert_eq!(rest[0]["action"], "edited");
    assert_eq!(rest[0]["changes"][0]["field"], "caption");
    assert_eq!(rest[0]["changes"][0]["before"], "as first written");
    assert_eq!(rest[0]["changes"][0]["after"], "reworded");
    assert_eq!(rest[1]["action"], "created");

    // Cancelled: recorded too.
    let cancelled = call(
        &app,
        &key,
        Method::POST,
        &format!("{path}/cancel"),
        None,
        None,
    )
    .await;
    json_of(cancelled, StatusCode::OK).await;
    let page = call(
        &app,
        &key,
        Method::GET,
        &format!("{path}/history?limit=1"),
        None,
        None,
    )
    .await;
    let page = json_of(page, StatusCode::OK).await;
    assert_eq!(page["data"][0]["action"], "cancelled", "{page:#}");
    assert_eq!(page["data"][0]["changes"].as_array().unwrap().len(), 2);
}

both_backends!(a_target_already_sending_is_refused_while_the_others_change);

async fn a_target_already_sending_is_refused_while_the_others_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("sending").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "sending", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.sendA", "A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.sendB", "B").await;
    let at = tidepost_domain::now_ms() + 2 * HOUR_MS;
    let post = scheduled_post(&app, &key, &[&a, &b], at).await;
    let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());
    // A's job has started sending it.
    let sending = target_of(&post, &a)["id"].as_str().unwrap().to_string();
    assert!(
        posts::set_state(
            &app.db,
            &ws,
            &sending,
            "scheduled",
            "uploading",
            false,
            tidepost_domain::now_ms()
        )
        .await
        .unwrap()
    );

    let edited = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "changed while A is sending"})),
        None,
    )
    .await;
    let edited = json_of(edited, StatusCode::OK).await;
    let refused = edited["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{edited:#}");
    assert_eq!(refused[0]["target_id"], sending.as_str());
    assert_eq!(refused[0]["account_id"], a.as_str());
    assert_eq!(refused[0]["state"], "uploading");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("already sending to TikTok"),
        "{edited:#}"
    );
    assert_eq!(
        sent_caption(&app, &ws, &edited, &b).await,
        "changed while A is sending"
    );
    assert_eq!(
        sent_caption(&app, &ws, &edited, &a).await,
        "as first written"
    );

    // A change only A could take: 409, naming A and why.
    let only_a = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"targets": {a.clone(): null}})),
        None,
    )
    .await;
    let body = problem(only_a, StatusCode::CONFLICT, "targets-started").await;
    assert_eq!(body["refused"][0]["account_id"], a.as_str(), "{body:#}");

    // Every target started: nothing to edit.
    let b_id = target_of(&edited, &b)["id"].as_str().unwrap().to_string();
    assert!(
        posts::set_state(
            &app.db,
            &ws,
            &b_id,
            "scheduled",
            "processing",
            false,
            tidepost_domain::now_ms()
        )
        .await
        .unwrap()
    );
    let late = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "too late"})),
        None,
    )
    .await;
    let body = problem(late, StatusCode::CONFLICT, "targets-started").await;
    assert_eq!(body["refused"].as_array().unwrap().len(), 2, "{body:#}");
}

both_backends!(limits_are_checked_again_at_the_new_time);

async fn limits_are_checked_again_at_the_new_time(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            // One pending inbox post per creator per day.
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("limits").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "limits", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.limitA", "A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.limitB", "B").await;
    let at = tidepost_domain::now_ms() / 1000 * 1000 + 2 * HOUR_MS;
    scheduled_post(&app, &key, &[&a], at).await;
    let later = scheduled_post(&app, &key, &[&b], at + 48 * HOUR_MS).await;
    let path = format!("/api/v1/posts/{}", later["id"].as_str().unwrap());

    // Moved by itself within its own day: its own target does not count against it.
    let moved = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"scheduled_at": rfc3339(at + 47 * HOUR_MS)})),
        None,
    )
    .await;
    json_of(moved, StatusCode::OK).await;

    // Adding A at this time is fine (A's other post is two days away)...
    let added = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"targets": {a.clone(): {"tiktok": {"mode": "inbox"}}}})),
        None,
    )
    .await;
    json_of(added, StatusCode::OK).await;
    // ...but moving the post next to A's other post breaks A's limit: refused with the next
    // free slot, as at creation, and nothing changes.
    let refused = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"scheduled_at": rfc3339(at + HOUR_MS)})),
        None,
    )
    .await;
    let body = problem(refused, StatusCode::CONFLICT, "schedule-limit").await;
    let slot = body["next_slot_at"].as_str().expect("the next free slot");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body:#}");
    assert_eq!(errors[0]["account_id"], a.as_str());
    assert_eq!(errors[0]["rule"], "quota");
    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    let shown = json_of(shown, StatusCode::OK).await;
    assert_eq!(shown["scheduled_at"], rfc3339(at + 47 * HOUR_MS));
    // The slot it names is taken.
    let taken = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"scheduled_at": slot})),
        None,
    )
    .await;
    let taken = json_of(taken, StatusCode::OK).await;
    assert_eq!(taken["scheduled_at"], slot);
    // And `next_free_slot` takes it in one go.
    let next = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"scheduled_at": rfc3339(at), "schedule": "next_free_slot"})),
        None,
    )
    .await;
    let next = json_of(next, StatusCode::OK).await;
    assert_ne!(
        target_of(&next, &a)["scheduled_at"],
        rfc3339(at),
        "{next:#}"
    );
}

both_backends!(a_stale_version_and_another_workspace_are_refused);

async fn a_stale_version_and_another_workspace_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("stale").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "stale", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.staleA", "A").await;
    let post = scheduled_post(&app, &key, &[&a], tidepost_domain::now_ms() + HOUR_MS).await;
    let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());

    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    assert_eq!(shown.headers()["etag"], "\"1\"");
    let first = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "first"})),
        Some("\"1\""),
    )
    .await;
    json_of(first, StatusCode::OK).await;
    let stale = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "made on version 1"})),
        Some("\"1\""),
    )
    .await;
    let body = problem(stale, StatusCode::PRECONDITION_FAILED, "post-changed").await;
    assert_eq!(body["version"], 2);
    let bad = call(
        &app,
        &key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "x"})),
        Some("yesterday"),
    )
    .await;
    problem(bad, StatusCode::BAD_REQUEST, "bad-request").await;
    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    let shown = json_of(shown, StatusCode::OK).await;
    assert_eq!(shown["caption"], "first");

    // Another workspace: not found, whatever the body; nothing changes; no history shown.
    let other = app.signed_in("stale-other").await;
    let other_key = app.api_key(&other.workspace.id, "other", &[]).await;
    let theirs = call(
        &app,
        &other_key,
        Method::PATCH,
        &path,
        Some(json!({"caption": "not mine"})),
        None,
    )
    .await;
    problem(theirs, StatusCode::NOT_FOUND, "not-found").await;
    let history = call(
        &app,
        &other_key,
        Method::GET,
        &format!("{path}/history"),
        None,
        None,
    )
    .await;
    problem(history, StatusCode::NOT_FOUND, "not-found").await;
    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    assert_eq!(json_of(shown, StatusCode::OK).await["caption"], "first");

    // Nor through the composer's edit mode: opening it, or saving it with the post's id.
    let post_id = post["id"].as_str().unwrap();
    let opened = other
        .client
        .get(app.url(&format!("/compose?post={post_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::NOT_FOUND);
    let saved = other
        .client
        .post(app.url("/compose"))
        .form(&[
            ("csrf", other.csrf.as_str()),
            ("post", post_id),
            ("post_version", "2"),
            ("caption", "not mine either"),
            ("media_url", "https://media.tidepost.example/clip.mp4"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::NOT_FOUND);
    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    assert_eq!(json_of(shown, StatusCode::OK).await["caption"], "first");
}

both_backends!(bad_edits_are_clear_problems);

async fn bad_edits_are_clear_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("badedit").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "badedit", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.badA", "A").await;
    let post = scheduled_post(&app, &key, &[&a], tidepost_domain::now_ms() + HOUR_MS).await;
    let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());
    let patch = |body: Value| call(&app, &key, Method::PATCH, &path, Some(body), None);

    // Not a JSON object: 400.
    for raw in ["caption=x", "[1, 2]", "\"text\""] {
        let answer = bare_client()
            .patch(app.url(&path))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        problem(answer, StatusCode::BAD_REQUEST, "bad-request").await;
    }
    // Wrong types and unknown fields: 422, naming the field.
    for (body, field) in [
        (json!({"caption": 5}), Some("caption")),
        (json!({"media": "clip.mp4"}), Some("media")),
        (json!({"targets": [a.clone()]}), Some("targets")),
        (
            json!({"targets": {a.clone(): {"tiktok": {"mode": 3}}}}),
            Some(format!("targets.{a}.tiktok.mode")).as_deref(),
        ),
        (json!({"colour": "blue"}), None),
    ] {
        let answer = problem(
            patch(body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        match field {
            Some(field) => assert_eq!(answer["field"], field, "{body}: {answer:#}"),
            None => assert!(
                answer["detail"].as_str().unwrap().contains("colour"),
                "{answer:#}"
            ),
        }
    }
    // Nothing to change; a time zone without a time.
    problem(
        patch(json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let body = problem(
        patch(json!({"time_zone": "Europe/Paris"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(body["field"], "scheduled_at");
    // An account that is not the workspace's; removing an account that is no target.
    let body = problem(
        patch(json!({"targets": {"no-such-account": {"tiktok": {"mode": "inbox"}}}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(
        body["errors"][0]["field"], "targets.no-such-account.account_id",
        "{body:#}"
    );
    assert_eq!(body["errors"][0]["rule"], "not_found");
    let body = problem(
        patch(json!({"targets": {"no-such-account": null}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "targets.no-such-account");
    // What the platform refuses, as at creation: a caption over TikTok's length; no media.
    let body = problem(
        patch(json!({"caption": "x".repeat(2201)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(
        body["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with(&format!("targets.{a}")),
        "{body:#}"
    );
    let body = problem(
        patch(json!({"media": []})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "media");
    // Removing the only account left: cancel instead.
    let body = problem(
        patch(json!({"targets": {a.clone(): null}})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("cancel"),
        "{body:#}"
    );
    // A time in the past.
    problem(
        patch(json!({"scheduled_at": "2020-01-01T00:00:00Z"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    // None of it changed anything.
    let shown = call(&app, &key, Method::GET, &path, None, None).await;
    let shown = json_of(shown, StatusCode::OK).await;
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["caption"], "as first written");
}

both_backends!(an_edit_racing_with_the_claim_has_one_winner);

/// The job's side of the race as the publish jobs run it: read the target (its version), then
/// what it sends, then claim the target at that version (`posts::claim`, what
/// `halt::claim` calls right before the first request to the platform). Run against PATCHes
/// of the same post many times: exactly one of the two wins each time; when the claim wins,
/// what the job read is what is stored, on every target (the edit changed nothing at all).
async fn an_edit_racing_with_the_claim_has_one_winner(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            // Thirty posts to each account within a day: the inbox limit is not the subject.
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "100".into())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("race").await;
    let ws = me.workspace.id.clone();
    let key = app.api_key(&ws, "race", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.raceA", "A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.raceB", "B").await;
    let (mut edits_won, mut claims_won, mut edits_refused_whole, mut in_turn) = (0, 0, 0, 0);
    for round in 0..30 {
        let post = scheduled_post(
            &app,
            &key,
            &[&a, &b],
            tidepost_domain::now_ms() + (2 + round) * HOUR_MS,
        )
        .await;
        let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());
        let target_id = target_of(&post, &a)["id"].as_str().unwrap().to_string();

        let job = {
            let (db, ws, target_id) = (app.db.clone(), ws.clone(), target_id.clone());
            // Staggered so that the claim lands before, during and after the edit's
            // transaction across the rounds.
            let (before, between) = ((round * 7) % 13, round % 4);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(before as u64)).await;
                let target = posts::target(&db, &ws, &target_id).await.unwrap().unwrap();
                let stored = posts::get(&db, &ws, &target.post_id)
                    .await
                    .unwrap()
                    .unwrap();
                let read = target.options_or(&stored).to_string();
                tokio::time::sleep(std::time::Duration::from_millis(between as u64)).await;
                let won = posts::claim(
                    &db,
                    &ws,
                    &target_id,
                    target.version,
                    tidepost_domain::now_ms(),
                )
                .await
                .unwrap();
                (won, read)
            })
        };
        let edit = call(
            &app,
            &key,
            Method::PATCH,
            &path,
            Some(json!({"caption": format!("edit {round}")})),
            None,
        );
        let (edit, job) = tokio::join!(edit, job);
        let (claimed, read) = job.unwrap();
        let status = edit.status();
        let body: Value = edit.json().await.unwrap();
        let now = posts::target(&app.db, &ws, &target_id)
            .await
            .unwrap()
            .unwrap();
        let stored = posts::get(&app.db, &ws, &now.post_id)
            .await
            .unwrap()
            .unwrap();
        let other = posts::targets_of(&app.db, &ws, &now.post_id)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.account_id == b)
            .unwrap();
        let other_caption =
            serde_json::from_str::<tidepost_app::tiktok::PostOptions>(other.options_or(&stored))
                .unwrap()
                .caption;
        let edit_applied_to_a = status == StatusCode::OK && body["refused"] == json!([]);
        let edited = format!("edit {round}");
        // One of the two always gets its way.
        assert!(
            claimed || edit_applied_to_a,
            "round {round}: neither won (edit {status} {body:#})"
        );
        if claimed {
            assert_eq!(now.state, "uploading");
            // What the job read is what is stored: nothing is sent with half an edit, nor
            // without an edit that was accepted.
            assert_eq!(now.options_or(&stored), read, "round {round}");
        }
        match (claimed, edit_applied_to_a) {
            // The edit committed before the job read the target: one after the other, and
            // the job sends the edited post.
            (true, true) => {
                in_turn += 1;
                assert!(read.contains(&edited), "round {round}: {read}");
            }
            // The claim won: the edit's answer says so, clearly.
            (true, false) => {
                claims_won += 1;
                assert!(!read.contains(&edited), "round {round}: {read}");
                assert!(
                    status == StatusCode::CONFLICT
                        || (status == StatusCode::OK
                            && body["refused"][0]["account_id"] == a.as_str()),
                    "round {round}: {status} {body:#}"
                );
                if status == StatusCode::CONFLICT {
                    edits_refused_whole += 1;
                    // Refused whole: the other target did not change either.
                    assert_eq!(other_caption, "as first written", "round {round}");
                    assert!(
                        body["detail"]
                            .as_str()
                            .unwrap()
                            .contains("nothing was changed"),
                        "{body:#}"
                    );
                }
            }
            // The edit won: the job's claim at the version it read was refused (it reads the
            // post again), and the target waits with the edit.
            (false, true) => {
                edits_won += 1;
                assert_eq!(now.state, "scheduled");
                assert!(now.options_or(&stored).contains(&edited), "round {round}");
                assert_eq!(other_caption, edited);
            }
            (false, false) => unreachable!(),
        }
    }
    eprintln!(
        "edits won {edits_won}, claims won {claims_won} (the edit refused whole in {edits_refused_whole}), one after the other {in_turn}"
    );
}
