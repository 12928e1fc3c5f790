//! Every list under `/api/v1` pages the same way (see `crates/http/src/api/paging.rs`): walked
//! with `limit=1` and `next_cursor` passed back as `after`, it gives each of the workspace's
//! items exactly once (none of another workspace's), ending with `next_cursor: null`; and
//! `limit=0` or `limit=1000` is the same 422 problem on every one of them.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::Db;

use crate::support::*;

both_backends!(every_list_pages_alike,);

/// Rows of the kinds the API lists, in `workspace_id`, `n` of each; returns the ids per list
/// path (relative to `/api/v1`).
async fn seed(app: &TestApp, db: &Db, workspace_id: &str, key: &str, n: usize) -> Seeded {
    let now = tidepost_domain::now_ms();
    let mut s = Seeded::default();
    // API keys (the caller's own is one of them).
    s.keys.insert(app.key_id(key).await);
    for i in 0..n {
        let secret = app.api_key(workspace_id, &format!("key {i}"), &[]).await;
        s.keys.insert(app.key_id(&secret).await);
    }
    for i in 0..n {
        s.accounts.insert(
            fixture_account(
                db,
                workspace_id,
                "tiktok",
                &format!("{workspace_id}-{i}"),
                "C",
            )
            .await,
        );
    }
    for i in 0..n {
        let m = tidepost_store::media::Media {
            id: tidepost_domain::new_id(),
            workspace_id: workspace_id.into(),
            sha256: format!("{:064x}", i),
            size_bytes: 10,
            content_type: "image/jpeg".into(),
            kind: "image".into(),
            storage_path: format!("media/{i}"),
            original_name: Some(format!("{i}.jpg")),
            created_at: now,
            info: None,
            probe_error: Some("not probed in this test".into()),
            container: None,
            width: None,
            height: None,
            duration_ms: None,
            last_used_at: None,
        };
        s.media.insert(
            tidepost_store::media::insert_or_get(db, &m)
                .await
                .unwrap()
                .id,
        );
    }
    for i in 0..n {
        let id = tidepost_domain::new_id();
        sqlx::query(
            "INSERT INTO posts (id, workspace_id, caption, kind, options, created_at, updated_at) \
             VALUES ($1, $2, $3, 'video', '{}', $4, $4)",
        )
        .bind(&id)
        .bind(workspace_id)
        .bind(format!("post {i}"))
        .bind(now)
        .execute(db.pool())
        .await
        .unwrap();
        s.posts.insert(id);
    }
    for i in 0..n {
        let id = tidepost_domain::new_id();
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, workspace_id, state, run_at, created_at, updated_at, finished_at) \
             VALUES ($1, 'test.listed', '{}', $2, 'succeeded', $3, $3, $3, $3)",
        )
        .bind(&id)
        .bind(workspace_id)
        .bind(now - i as i64)
        .execute(db.pool())
        .await
        .unwrap();
        s.jobs.insert(id);
    }
    for i in 0..n {
        let r = bare_client()
            .post(app.url("/api/v1/webhook-endpoints"))
            .bearer_auth(key)
            .json(&json!({"url": format!("http://127.0.0.1:9/hook/{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        s.endpoints.insert(body["id"].as_str().unwrap().to_string());
    }
    for i in 0..n {
        s.creators.insert(
            tidepost_store::crm::creators::create(db, workspace_id, &format!("Creator {i}"), "")
                .await
                .unwrap()
                .id,
        );
    }
    s
}

#[derive(Default)]
struct Seeded {
    keys: BTreeSet<String>,
    accounts: BTreeSet<String>,
    media: BTreeSet<String>,
    posts: BTreeSet<String>,
    jobs: BTreeSet<String>,
    endpoints: BTreeSet<String>,
    creators: BTreeSet<String>,
}

/// Follows `next_cursor` from the first page of `path` with `limit=1`; the ids in order.
async fn walk(app: &TestApp, key: &str, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let url = match &after {
            None => format!("{path}{sep}limit=1"),
            Some(a) => format!("{path}{sep}limit=1&after={a}"),
        };
        let r = app.api_get(key, &url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let body: Value = r.json().await.unwrap();
        let data = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{url}: {body}"));
        assert!(data.len() <= 1, "{url}: {body}");
        ids.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        assert!(
            body.as_object().unwrap().contains_key("next_cursor"),
            "{url}: a paginated list always says whether a page follows: {body}"
        );
        match body["next_cursor"].as_str() {
            None => return ids,
            Some(next) => {
                assert_eq!(
                    data.len(),
                    1,
                    "{url}: a page with a successor is full: {body}"
                );
                after = Some(next.to_string());
            }
        }
    }
    panic!("{path}: more than 100 pages");
}

async fn every_list_pages_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let (_, other) = app.create_user("bob@example.com", "other").await;
    let key = app.api_key(&ws.id, "lister", &["api"]).await;
    let other_key = app.api_key(&other.id, "other", &["api"]).await;
    let db = app.db.clone();
    let mine = seed(&app, &db, &ws.id, &key, 3).await;
    // Another workspace's rows, interleaved in id order, must never show.
    let theirs = seed(&app, &db, &other.id, &other_key, 2).await;
    let endpoint = mine.endpoints.iter().next().unwrap().clone();
    let creator = mine.creators.iter().next().unwrap().clone();

    // (path, the ids it must list exactly once; None: whatever the list holds, each once)
    let lists: Vec<(String, Option<&BTreeSet<String>>)> = vec![
        ("/api/v1/api-keys".into(), Some(&mine.keys)),
        ("/api/v1/accounts".into(), Some(&mine.accounts)),
        ("/api/v1/media".into(), Some(&mine.media)),
        ("/api/v1/posts".into(), Some(&mine.posts)),
        ("/api/v1/jobs?kind=test.listed".into(), Some(&mine.jobs)),
        ("/api/v1/webhook-endpoints".into(), Some(&mine.endpoints)),
        ("/api/v1/creators".into(), None),
        (
            format!("/api/v1/webhook-endpoints/{endpoint}/deliveries"),
            None,
        ),
        (format!("/api/v1/creators/{creator}/timeline"), None),
        ("/api/v1/contacts".into(), None),
        ("/api/v1/interactions".into(), None),
    ];
    let foreign: BTreeSet<&String> = [
        &theirs.keys,
        &theirs.accounts,
        &theirs.media,
        &theirs.posts,
        &theirs.jobs,
        &theirs.endpoints,
        &theirs.creators,
    ]
    .into_iter()
    .flatten()
    .collect();
    for (path, expected) in &lists {
        let ids = walk(&app, &key, path).await;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "{path}: an item repeats: {ids:?}");
        assert!(
            ids.iter().all(|id| !foreign.contains(id)),
            "{path}: another workspace's item: {ids:?}"
        );
        if let Some(expected) = expected {
            assert_eq!(&unique, *expected, "{path}: every item once");
        }
        if path == "/api/v1/creators" {
            assert!(mine.creators.is_subset(&unique), "{path}: {ids:?}");
        }
    }

    // One rule for the page size, one problem shape for breaking it.
    for (path, _) in &lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        for bad in [0, 1000] {
            let r = app.api_get(&key, &format!("{path}{sep}limit={bad}")).await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
            assert_eq!(
                p["detail"],
                format!("limit: expected 1 to 200, got {bad}"),
                "{path}: {p}"
            );
            assert_eq!(p["field"], "limit", "{path}: {p}");
        }
        let r = app.api_get(&key, &format!("{path}{sep}limit=200")).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}: 200 is allowed");
    }

    // The media list's old `cursor` parameter still works, as `after`.
    let first: Value = app
        .api_get(&key, "/api/v1/media?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let by_after: Value = app
        .api_get(&key, &format!("/api/v1/media?limit=1&after={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let by_cursor: Value = app
        .api_get(&key, &format!("/api/v1/media?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_after, by_cursor);
    assert_ne!(by_after["data"], first["data"]);
}
