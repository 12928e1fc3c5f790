//! Background jobs through the API and the UI: workspace-scoped visibility, retry and cancel,
//! and `POST /api/v1/jobs/run-due` for keys with the `worker` scope.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_jobs::{NewJob, Queue};

use crate::support::*;

both_backends!(
    run_due_needs_the_worker_scope,
    jobs_are_workspace_scoped,
    jobs_page_shows_failures
);

async fn enqueue(app: &TestApp, workspace_id: &str, kind: &str) -> String {
    Queue::new(app.db.clone())
        .enqueue(NewJob::new(kind, &json!({})).workspace(workspace_id))
        .await
        .expect("enqueue")
        .id
}

async fn run_due_needs_the_worker_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let plain = app.api_key(&ws.id, "api only", &["api"]).await;
    let worker = app.api_key(&ws.id, "cron", &["worker"]).await;
    let http = bare_client();
    let response = http
        .post(app.url("/api/v1/jobs/run-due"))
        .bearer_auth(&plain)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::FORBIDDEN, "forbidden").await;

    enqueue(&app, &ws.id, "housekeeping.prune").await;
    let response = http
        .post(app.url("/api/v1/jobs/run-due"))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["report"]["succeeded"].as_u64().unwrap() >= 1, "{body}");
    assert_eq!(body["all_ok"], true);

    let response = http
        .post(app.url("/api/v1/jobs/run-due"))
        .bearer_auth(&worker)
        .json(&json!({"kinds": ["no.such.kind"]}))
        .send()
        .await
        .unwrap();
    problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let response = http
        .post(app.url("/api/v1/jobs/run-due"))
        .bearer_auth(&worker)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST, "bad-request").await;
}

async fn jobs_are_workspace_scoped(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, a) = app.create_user("ada@example.com", "acme").await;
    let (_, b) = app.create_user("bob@example.com", "other").await;
    let key_a = app.api_key(&a.id, "a", &[]).await;
    let key_b = app.api_key(&b.id, "b", &[]).await;
    let job = enqueue(&app, &a.id, "housekeeping.prune").await;
    let http = bare_client();

    let list: Value = app
        .api_get(&key_a, "/api/v1/jobs?state=queued")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], job.as_str());
    let list: Value = app
        .api_get(&key_b, "/api/v1/jobs?state=queued")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    for path in [format!("/api/v1/jobs/{job}")] {
        problem(
            app.api_get(&key_b, &path).await,
            StatusCode::NOT_FOUND,
            "not-found",
        )
        .await;
    }
    for action in ["cancel", "retry"] {
        let response = http
            .post(app.url(&format!("/api/v1/jobs/{job}/{action}")))
            .bearer_auth(&key_b)
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::NOT_FOUND, "not-found").await;
    }
    let shown: Value = app
        .api_get(&key_a, &format!("/api/v1/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["kind"].as_str(), shown["state"].as_str()),
        (Some("housekeeping.prune"), Some("queued"))
    );

    let cancelled: Value = http
        .post(app.url(&format!("/api/v1/jobs/{job}/cancel")))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    let response = http
        .post(app.url(&format!("/api/v1/jobs/{job}/cancel")))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("this one is cancelled"),
        "{body}"
    );
    problem(
        app.api_get(&key_a, "/api/v1/jobs?state=sleeping").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let counts: Value = app
        .api_get(&key_a, "/api/v1/jobs/counts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counts["data"][0]["state"], "cancelled");
}

async fn jobs_page_shows_failures(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.signed_in("acme").await;
    // An unknown kind fails permanently with a clear error, which the page shows with a retry.
    enqueue(&app, &user.workspace.id, "no.such.kind").await;
    let worker = app.api_key(&user.workspace.id, "cron", &["worker"]).await;
    let ran: Value = bare_client()
        .post(app.url("/api/v1/jobs/run-due"))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ran["all_ok"], false, "{ran}");
    let page = user.client.get(app.url("/jobs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("no.such.kind") && html.contains("dead"),
        "{html}"
    );
    assert!(html.contains("/retry"));
    // Retrying without the CSRF token is refused.
    let id = html
        .split("/jobs/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_string();
    let refused = user
        .client
        .post(app.url(&format!("/jobs/{id}/retry")))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let retried = user
        .client
        .post(app.url(&format!("/jobs/{id}/retry")))
        .form(&[("csrf", user.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
}
