//! One post to several accounts and scheduling through `/api/v1/posts`, end to end:
//!
//! - a post scheduled on one server goes out once, at or after its time, from another server
//!   started later on the same database (the first one stopped before the time);
//! - the API's rules: every problem of every target at once, a schedule refused by a creator's
//!   limit with the next free slot (409) and that slot taken with `schedule: next_free_slot`,
//!   time zones, PATCH before the start, DELETE (cancel) and its 409, the list's filters;
//! - concurrent requests for an account's last free slot: exactly one is accepted;
//! - PATCH of a post made for one account (caption, time, 409 naming the target once started);
//! - the composer's `creator_info` kept a minute per account and token;
//! - the composer as the one posting form: the old `/posts/new` address opens it with the
//!   account chosen, and its TikTok panel's fields reach `compose::submit` as the one options
//!   type (an unticked "Allow …" box is the interaction disabled).

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
    let video = tidepost_app::media::testing::video(64 * 1024, "restart");
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

both_backends!(concurrent_requests_share_the_last_slot);

/// Several requests at once for an account's last free slot: the limit is checked again under
/// the account's lock when the post is stored, so exactly one is accepted and every other is
/// refused with the next free slot, and the account never goes over its cap.
async fn concurrent_requests_share_the_last_slot(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "2".into())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("race").await;
    let key = app.api_key(&me.workspace.id, "race", &[]).await;
    let account = fixture_account(&app.db, &me.workspace.id, "tiktok", "act.race", "Racer").await;
    let at = tidepost_domain::now_ms() / 1000 * 1000 + 3_600_000;
    let body = |caption: &str| {
        json!({
            "caption": caption,
            "media": [{"url": "https://media.tidepost.example/clip.mp4"}],
            "targets": [{"account_id": account, "tiktok": {"mode": "inbox"}}],
            "scheduled_at": rfc3339(at),
        })
    };
    // One of the two slots of the day is taken.
    let first = post_json(&app, &key, body("first")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);

    const RACERS: usize = 6;
    let url = app.url("/api/v1/posts");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..RACERS {
        let (url, key, body, start) = (
            url.clone(),
            key.clone(),
            body(&format!("racer {n}")),
            start.clone(),
        );
        racers.spawn(async move {
            let client = bare_client();
            start.wait().await;
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let mut accepted = 0;
    let mut refused = 0;
    while let Some(outcome) = racers.join_next().await {
        let (status, body) = outcome.unwrap();
        match status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::CONFLICT => {
                assert_eq!(
                    body["type"], "urn:tidepost:problem:schedule-limit",
                    "{body}"
                );
                assert_eq!(body["next_slot_at"], rfc3339(at + 86_400_000), "{body}");
                assert_eq!(body["errors"][0]["rule"], "quota", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((accepted, refused), (1, RACERS - 1));
    // What is stored agrees: two of the account's posts at that time, no more.
    let mut conn = app.db.pool().acquire().await.unwrap();
    let counted = tidepost_store::posts::limit_events_in(
        &mut conn,
        &account,
        None,
        at - 86_400_000,
        at + 86_400_000,
        None,
    )
    .await
    .unwrap();
    assert_eq!(counted, vec![at, at]);
}

both_backends!(single_account_post_can_be_changed);

/// A post made for one account (no `targets`, no schedule) changes like a composite one while
/// it has not been sent: its caption (the post and the options its job reads) and its time;
/// once it has started, 409.
async fn single_account_post_can_be_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("single").await;
    let key = app.api_key(&me.workspace.id, "single", &[]).await;
    let ws = me.workspace.id.clone();
    let account = fixture_account(&app.db, &ws, "tiktok", "act.single", "Single").await;
    // No workers run: the post stays queued.
    let made = post_json(
        &app,
        &key,
        json!({
            "account_id": account,
            "mode": "inbox",
            "caption": "as first written",
            "media_url": "https://media.tidepost.example/clip.mp4",
        }),
    )
    .await;
    assert_eq!(made.status(), StatusCode::ACCEPTED);
    let made: Value = made.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["targets"][0]["state"], "queued");
    let path = format!("/api/v1/posts/{id}");

    let patched = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"caption": "reworded"})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["caption"], "reworded");
    assert_eq!(patched["targets"][0]["state"], "queued");
    // What the job reads (the target's options, else the post's) says the new caption, and
    // the post keeps its single-account options.
    let target_id = patched["targets"][0]["id"].as_str().unwrap().to_string();
    let target = tidepost_store::posts::target(&app.db, &ws, &target_id)
        .await
        .unwrap()
        .unwrap();
    let post = tidepost_store::posts::get(&app.db, &ws, &id)
        .await
        .unwrap()
        .unwrap();
    let options: tidepost_app::tiktok::PostOptions =
        serde_json::from_str(target.options_or(&post)).unwrap();
    assert_eq!(options.caption, "reworded");
    let kept: tidepost_app::tiktok::PostOptions = serde_json::from_str(&post.options).unwrap();
    assert_eq!(kept.caption, "reworded");
    assert_eq!(target.mode, "inbox");

    // Moved to a time: scheduled there, then back to now.
    let at = tidepost_domain::now_ms() / 1000 * 1000 + 7_200_000;
    let moved = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"scheduled_at": rfc3339(at)})),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["scheduled_at"], rfc3339(at));
    assert_eq!(moved["targets"][0]["state"], "scheduled");
    assert_eq!(moved["targets"][0]["scheduled_at"], rfc3339(at));
    assert_eq!(moved["caption"], "reworded");
    let now = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"scheduled_at": null})),
    )
    .await;
    assert_eq!(now.status(), StatusCode::OK);
    let now: Value = now.json().await.unwrap();
    assert_eq!(now["targets"][0]["state"], "queued");
    assert_eq!(now["targets"][0]["scheduled_at"], Value::Null);

    // Once it has started, it cannot be changed.
    assert!(
        tidepost_store::posts::set_state(
            &app.db,
            &ws,
            &target_id,
            "queued",
            "uploading",
            false,
            tidepost_domain::now_ms(),
        )
        .await
        .unwrap()
    );
    let late = send(
        &app,
        &key,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"caption": "too late"})),
    )
    .await;
    let refused = problem(late, StatusCode::CONFLICT, "targets-started").await;
    assert_eq!(refused["refused"][0]["target_id"], target_id.as_str());
}

both_backends!(composer_keeps_creator_info_a_minute);

/// The composer asks TikTok for a creator's `creator_info` once per account and minute: a
/// second load within the minute makes no call; reconnecting the account (a new token) asks
/// again.
async fn composer_keeps_creator_info_a_minute(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("creatorinfo").await;
    let key = app.api_key(&me.workspace.id, "creatorinfo", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, CREATOR_USERNAME).await;
    let emulator = app.emulator.clone().unwrap();
    let calls = || async {
        let log: Value = bare_client()
            .get(format!("{emulator}/_emulator/requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().contains("/creator_info/"))
            .count()
    };
    let before = calls().await;
    let load = || async {
        let page = me.client.get(app.url("/compose")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        // The creator's own choices are on the page, read from the answer.
        assert!(html.contains("PUBLIC_TO_EVERYONE"), "{html}");
    };
    load().await;
    assert_eq!(calls().await, before + 1, "the first load asks TikTok");
    load().await;
    assert_eq!(
        calls().await,
        before + 1,
        "a reload within the minute does not"
    );

    // Connecting the account again gives it a new token: the next load asks again.
    let token_before = tidepost_store::accounts::get(&app.db, &me.workspace.id, &account)
        .await
        .unwrap()
        .unwrap()
        .access_token;
    assert_eq!(
        connect_tiktok_via_api(&app, &key, CREATOR_USERNAME).await,
        account
    );
    let token_after = tidepost_store::accounts::get(&app.db, &me.workspace.id, &account)
        .await
        .unwrap()
        .unwrap()
        .access_token;
    assert_ne!(token_before, token_after);
    load().await;
    assert_eq!(calls().await, before + 2, "a new token asks again");
    load().await;
    assert_eq!(calls().await, before + 2);
}

both_backends!(composer_form_is_the_one_posting_form);

/// The single-account form's old address opens the composer with the account chosen, and the
/// composer's form reaches `compose::submit` with the TikTok panel's fields as the one options
/// type: "Allow …" boxes left unticked are the interactions disabled, the disclosure's kinds
/// and the AI label as chosen; a disclosure that does not say whose is refused beside the
/// account, with what was typed kept.
async fn composer_form_is_the_one_posting_form(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("oneform").await;
    let key = app.api_key(&me.workspace.id, "oneform", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, CREATOR_USERNAME).await;

    // Old links.
    let old = me
        .client
        .get(app.url(&format!("/posts/new?account={account}")))
        .send()
        .await
        .unwrap();
    assert!(old.status().is_redirection(), "{}", old.status());
    assert_eq!(location(&old), format!("/compose?account={account}"));
    let bare = me.client.get(app.url("/posts/new")).send().await.unwrap();
    assert_eq!(location(&bare), "/compose");
    let page = app
        .page_text(&me.client, &format!("/compose?account={account}"))
        .await;
    assert!(
        page.contains(&format!(r#"name="targets" value="{account}" checked"#)),
        "the account is chosen: {page}"
    );
    for box_name in [
        "allow_comment",
        "allow_duet",
        "allow_stitch",
        "is_aigc",
        "disclose",
    ] {
        let tag = page
            .split('<')
            .find(|t| t.contains(&format!(r#"name="{box_name}:{account}""#)))
            .unwrap_or_else(|| panic!("the {box_name} box: {page}"));
        assert!(!tag.contains("checked"), "{box_name} starts off: {tag}");
    }
    assert!(
        page.contains("Music Usage Confirmation"),
        "the consent line: {page}"
    );

    // A video in the library.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=duration=4:size=360x640:rate=30",
            "-f",
            "lavfi",
        ])
        .args(["-i", "sine=frequency=440:duration=4", "-c:v", "libx264"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg; .ci/run installs it)");
    assert!(status.success());
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&path).unwrap())
            .file_name("clip.mp4")
            .mime_str("video/mp4")
            .unwrap(),
    );
    let media: Value = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_id = media["id"].as_str().unwrap_or_else(|| panic!("{media}"));

    let field = |name: &str| format!("{name}:{account}");
    let base = vec![
        ("csrf".to_string(), me.csrf.clone()),
        ("caption".to_string(), "one form".to_string()),
        ("targets".to_string(), account.clone()),
        ("media".to_string(), media_id.to_string()),
        ("when".to_string(), "now".to_string()),
        (field("mode"), "direct".to_string()),
        (field("privacy"), "PUBLIC_TO_EVERYONE".to_string()),
    ];

    // Disclosed without saying whose: refused beside the account, the choices kept.
    let mut fields = base.clone();
    fields.push((field("disclose"), "on".into()));
    fields.push((field("allow_comment"), "on".into()));
    let refused = me
        .client
        .post(app.url("/compose"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains(
            "You need to indicate if your content promotes yourself, a third party, or both"
        ),
        "{html}"
    );
    let tag = html
        .split('<')
        .find(|t| t.contains(&format!(r#"name="allow_comment:{account}""#)))
        .unwrap();
    assert!(tag.contains("checked"), "what was ticked stays: {tag}");
    assert!(
        html.contains(r#"value="PUBLIC_TO_EVERYONE" selected"#),
        "{html}"
    );

    // Comments allowed, duets and stitches left off, the creator's own brand, the AI label.
    let mut fields = base.clone();
    fields.push((field("allow_comment"), "on".into()));
    fields.push((field("disclose"), "on".into()));
    fields.push((field("brand_organic"), "on".into()));
    fields.push((field("is_aigc"), "on".into()));
    let accepted = me
        .client
        .post(app.url("/compose"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(accepted.status().is_redirection(), "{}", accepted.status());
    let post_id = location(&accepted)
        .trim_start_matches("/posts/")
        .to_string();
    let post = tidepost_store::posts::get(&app.db, &me.workspace.id, &post_id)
        .await
        .unwrap()
        .expect("the post is stored");
    let stored: Value = serde_json::from_str(&post.options).unwrap();
    let tiktok = &stored["targets"][0]["tiktok"];
    assert_eq!(
        stored["composite"], true,
        "through compose::submit: {stored}"
    );
    assert_eq!(tiktok["privacy_level"], "PUBLIC_TO_EVERYONE", "{stored}");
    assert_eq!(tiktok["disable_comment"], false, "{stored}");
    assert_eq!(tiktok["disable_duet"], true, "{stored}");
    assert_eq!(tiktok["disable_stitch"], true, "{stored}");
    assert_eq!(tiktok["brand_organic_toggle"], true, "{stored}");
    assert_eq!(tiktok["brand_content_toggle"], false, "{stored}");
    assert_eq!(tiktok["is_aigc"], true, "{stored}");
}
