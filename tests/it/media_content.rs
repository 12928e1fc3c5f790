//! `GET /api/v1/media/{id}/content`, the route the previews read a library item's bytes from:
//! the workspace's own media comes back byte for byte with its probed content type (by key and
//! by a signed-in browser's session), another workspace's media and a missing id are both a
//! 404 problem, an item whose file is gone from the storage is a 410 saying so, and nobody
//! signed out reads anything. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::Value;

use crate::media::jpeg;
use crate::support::*;

both_backends!(a_media_items_bytes_are_read_only_by_its_workspace);

async fn a_media_items_bytes_are_read_only_by_its_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("content").await;
    let key = app.api_key(&me.workspace.id, "content", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg(dir.path(), 320, 400);
    let answer = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let item: Value = answer.json().await.unwrap();
    let id = item["id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/media/{id}/content"));

    // Its own workspace: the bytes, typed as probed, never sniffed.
    let answer = bare_client()
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "image/jpeg");
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        answer.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(answer.bytes().await.unwrap().to_vec(), bytes);
    // A signed-in browser reads it with its session (the composer's preview does).
    let answer = me.client.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.bytes().await.unwrap().to_vec(), bytes);

    // Another workspace: no such media, by key or by session.
    let other = app.signed_in("other-content").await;
    let other_key = app.api_key(&other.workspace.id, "other", &[]).await;
    let p = problem(
        bare_client()
            .get(&url)
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert!(
        !p.to_string().contains(&me.workspace.id),
        "nothing of the owner leaks: {p}"
    );
    let answer = other.client.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);

    // A missing id is the same 404.
    problem(
        bare_client()
            .get(app.url("/api/v1/media/med_missing/content"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;

    // The workspace's item whose file is gone from the storage: 410, said so.
    let now = tidepost_domain::now_ms();
    let lost = tidepost_store::media::Media {
        id: tidepost_domain::new_id(),
        workspace_id: me.workspace.id.clone(),
        sha256: "0".repeat(64),
        size_bytes: 10,
        content_type: "image/jpeg".into(),
        kind: "image".into(),
        storage_path: format!("media/{}", "0".repeat(64)),
        original_name: Some("lost.jpg".into()),
        created_at: now,
        info: None,
        probe_error: None,
        container: None,
        width: None,
        height: None,
        duration_ms: None,
        last_used_at: None,
    };
    let lost = tidepost_store::media::insert_or_get(&app.db, &lost)
        .await
        .unwrap();
    let p = problem(
        bare_client()
            .get(app.url(&format!("/api/v1/media/{}/content", lost.id)))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::GONE,
        "media-file-missing",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("missing"), "{p}");

    // Signed out: nothing.
    let answer = bare_client().get(&url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}
