//! One post to several accounts and scheduling through `/api/v1/posts`, end to end:
//!
//! - a post scheduled on one server goes out once, at or after its time, from another server
//!   started later on the same database (the first one stopped before the time);
//! - the API's rules: every problem of every target at once, a schedule refused by a creator's
//!   limit with the next free slot (409) and that slot taken with `schedule: next_free_slot`,
//!   time zones, PATCH before the start, DELETE (cancel) and its 409, the list's filters.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::Db;
use tidepost_store::testing::Backend;

use crate::support::*;

/// The emulator's fixture creator every emulator starts with (deterministic open_id).
const CREATOR_OPEN_ID: &str = "act.sandboxCreatorEmulator0000000000";
const CREATOR_USERNAME: &str = "tidepost.sandbox";

async fn post_json(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn send(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = bare_client()
        .request(method, app.url(path))
        .bearer_auth(key);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

fn rfc3339(ms: i64) -> String {
    tidepost_domain::time::rfc3339(ms)
}

both_backends!(scheduled_post_survives_a_restart);

async fn scheduled_post_survives_a_restart(backend: Backend) {
    let (url, _dir) = unmigrated_db(backend).await;
    Db::connect(&url).await.unwrap().migrate().await.unwrap();
    let first = spawn_app_with(
        backend,
        Options {
            database_url: Some(url.clone()),
            ..Options::default()
        },
    )
    .await;
    let me = first.signed_in("restart").await;
    let key = first.api_key(&me.workspace.id, "restart", &[]).await;
    let account_id = fixture_account(
        &first.db,
        &me.workspace.id,
        "tiktok",
        CREATOR_OPEN_ID,
        "Sandbox",
    )
    .await;
    // Whole seconds: the API shows times to the second.
    let due = (tidepost_domain::now_ms() / 1000 + 8) * 1000;
    // A small video uploaded with the post (multipart: the same fields as text parts).
    let mut video = b"\0\0\0\x18ftypmp42".to_vec();
    video.resize(64 * 1024, 7);
    let targets = json!([{"account_id": account_id, "tiktok": {"mode": "inbox"}}]);
    let form = reqwest::multipart::Form::new()
        .text("caption", "restart once")
        .text("targets", targets.to_string())
        .text("scheduled_at", rfc3339(due))
        .part(
            "file",
            reqwest::multipart::Part::bytes(video)
                .file_name("restart.mp4")
                .mime_str("video/mp4")
                .unwrap(),
        );
    let accepted = bare_client()
        .post(first.url("/api/v1/posts"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let post: Value = accepted.json().await.unwrap();
    let post_id = post["id"].as_str().unwrap().to_string();
    assert_eq!(post["summary"], "pending");
    assert_eq!(post["targets"][0]["state"], "scheduled");
    assert_eq!(post["scheduled_at"], rfc3339(due));
    // The first server stops before the time (it never ran workers).
    drop(first);

    let second = spawn_app_with(
        backend,
        Options {
            database_url: Some(url.clone()),
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let key = second.api_key(&me.workspace.id, "restart-2", &[]).await;
    // Connecting again gives the same account this server's tokens.
    let again = connect_tiktok_via_api(&second, &key, CREATOR_USERNAME).await;
    assert_eq!(again, account_id);
    let deadline = Instant::now() + Duration::from_secs(90);
    let shown = loop {
        let shown: Value = second
            .api_get(&key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        if shown["summary"] == "published" {
            break shown;
        }
        assert!(Instant::now() < deadline, "never published: {shown}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(shown["targets"][0]["progress"], 1.0);
    let target_id = shown["targets"][0]["id"].as_str().unwrap();
    let target = tidepost_store::posts::target(&second.db, &me.workspace.id, target_id)
        .await
        .unwrap()
        .unwrap();
    let init_at = target.init_at.expect("sent to TikTok");
    assert!(init_at >= due, "sent at {init_at}, before its time {due}");
    // Once: one publish on the emulator.
    let emulator = second.emulator.clone().unwrap();
    let publishes: Value = bare_client()
        .get(format!("{emulator}/_emulator/tiktok/publishes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = publishes["publishes"].as_array().unwrap().len();
    assert_eq!(sent, 1, "{publishes}");
}

both_backends!(api_rules);

async fn api_rules(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            // One pending inbox draft per creator per day: the limit is reached at once.
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("compose").await;
    let key = app.api_key(&me.workspace.id, "compose", &[]).await;
    let ws = me.workspace.id.clone();
    let a = fixture_account(&app.db, &ws, "tiktok", "act.composeA", "Creator A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.composeB", "Creator B").await;
    let inbox = |id: &str| json!({"account_id": id, "tiktok": {"mode": "inbox"}});
    let media = json!([{"url": "https://media.tidepost.example/clip.mp4"}]);

    // Every problem at once, each naming its target, nothing stored.
    let refused = post_json(
        &app,
        &key,
        json!({
            "caption": "x",
            "media": media,
            "targets": [inbox(&a), inbox(&a), {"account_id": "nope"}, {"account_id": b, "instagram": {}}],
        }),
    )
    .await;
    let refusal = problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    let errors: Vec<(u64, &str)> = refusal["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["target"].as_u64().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![(1, "duplicate"), (2, "not_found"), (3, "wrong_platform")],
        "{refusal}"
    );
    assert_eq!(refusal["errors"][2]["platform"], "tiktok");
    let list: Value = app
        .api_get(&key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    // A bad zone and a local time without one are named.
    let zone = post_json(
        &app,
        &key,
        json!({"media": media, "targets": [inbox(&a)], "scheduled_at": "2030-01-01T09:00", "time_zone": "Mars/Olympus"}),
    )
    .await;
    let zone = problem(zone, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    assert_eq!(zone["field"], "time_zone");

    // Scheduled in a zone: stored in UTC, shown back in the zone.
    let at = tidepost_domain::now_ms() / 1000 * 1000 + 3_600_000;
    let local = tidepost_app::compose::schedule::show(at, Some("America/New_York"));
    let local_naive = &local[..19];
    let first = post_json(
        &app,
        &key,
        json!({
            "caption": "first",
            "media": media,
            "targets": [inbox(&a)],
            "scheduled_at": local_naive,
            "time_zone": "America/New_York",
        }),
    )
    .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["scheduled_at"], rfc3339(at));
    assert_eq!(first["scheduled_at_local"], local);
    assert_eq!(first["time_zone"], "America/New_York");

    // A second draft for A an hour later breaks the limit: 409 with the next slot; B is fine.
    let second_body = json!({
        "caption": "second",
        "media": media,
        "targets": [inbox(&b), inbox(&a)],
        "scheduled_at": rfc3339(at + 3_600_000),
    });
    let limited = post_json(&app, &key, second_body.clone()).await;
    let limited = problem(limited, StatusCode::CONFLICT, "schedule-limit").await;
    assert_eq!(limited["next_slot_at"], rfc3339(at + 86_400_000));
    assert_eq!(limited["errors"][0]["target"], 1);
    assert_eq!(limited["errors"][0]["rule"], "quota");
    assert_eq!(limited["errors"][0]["account_id"], a.as_str());
    // Asked for, the next free slot is taken (for A only).
    let mut body = second_body;
    body["schedule"] = json!("next_free_slot");
    let taken = post_json(&app, &key, body).await;
    assert_eq!(taken.status(), StatusCode::ACCEPTED);
    let taken: Value = taken.json().await.unwrap();
    let slot_of = |post: &Value, account: &str| {
        post["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["account_id"] == account)
            .unwrap()["scheduled_at"]
            .clone()
    };
    assert_eq!(slot_of(&taken, &a), json!(rfc3339(at + 86_400_000)));
    assert_eq!(slot_of(&taken, &b), json!(rfc3339(at + 3_600_000)));

    // Filters.
    let by_b: Value = app
        .api_get(&key, &format!("/api/v1/posts?account_id={b}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_b["data"].as_array().unwrap().len(), 1);
    let scheduled: Value = app
        .api_get(&key, "/api/v1/posts?when=scheduled&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scheduled["data"].as_array().unwrap().len(), 1);
    let next = scheduled["next_cursor"].as_str().unwrap();
    let page2: Value = app
        .api_get(
            &key,
            &format!("/api/v1/posts?when=scheduled&limit=1&after={next}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["data"][0]["id"], first_id.as_str());
    let bad = app.api_get(&key, "/api/v1/posts?state=bogus").await;
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;

    // PATCH before the start: caption and time (ten minutes earlier fits: the post's own
    // target does not count against itself, and A's next draft is more than 24 h later).
    let patched = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &format!("/api/v1/posts/{first_id}"),
        Some(json!({"caption": "first, reworded", "scheduled_at": rfc3339(at - 600_000)})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["caption"], "first, reworded");
    assert_eq!(patched["targets"][0]["scheduled_at"], rfc3339(at - 600_000));
    // Ten minutes later would put two of A's drafts in one day: refused with the slot.
    let clash = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &format!("/api/v1/posts/{first_id}"),
        Some(json!({"scheduled_at": rfc3339(at + 600_000)})),
    )
    .await;
    problem(clash, StatusCode::CONFLICT, "schedule-limit").await;
    assert_eq!(patched["time_zone"], Value::Null);
    let empty = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &format!("/api/v1/posts/{first_id}"),
        Some(json!({})),
    )
    .await;
    problem(empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;

    // DELETE cancels what has not started; then there is nothing left: 409, and a cancelled
    // post cannot be changed.
    let cancelled = send(
        &app,
        &key,
        reqwest::Method::DELETE,
        &format!("/api/v1/posts/{first_id}"),
        None,
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["summary"], "cancelled");
    let again = send(
        &app,
        &key,
        reqwest::Method::DELETE,
        &format!("/api/v1/posts/{first_id}"),
        None,
    )
    .await;
    problem(again, StatusCode::CONFLICT, "conflict").await;
    let late = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &format!("/api/v1/posts/{first_id}"),
        Some(json!({"caption": "too late"})),
    )
    .await;
    problem(late, StatusCode::CONFLICT, "conflict").await;
}
