//! The REST API under `/api/v1`: API keys as `Authorization: Bearer`, the browser's session with
//! `X-CSRF-Token`, and problem+json for every failure.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::*;

both_backends!(
    refuses_missing_malformed_unknown_and_revoked_keys,
    api_key_lifecycle,
    bad_bodies_are_problems,
    unknown_routes_are_problems,
    session_callers_need_the_csrf_header,
    scopes_are_enforced,
);

async fn refuses_missing_malformed_unknown_and_revoked_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let http = bare_client();

    let response = http.get(app.url("/api/v1/me")).send().await.unwrap();
    let body = problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let unknown = format!("tp_{}", tidepost_app::access::random_token());
    let cases: [(&str, &str); 5] = [
        ("Basic YWRhOnB3", "use `Authorization: Bearer <API key>`"),
        ("Bearer tp_short", "the API key is malformed"),
        (
            "Bearer sk_0123456789012345678901234567890123456789012",
            "the API key is malformed",
        ),
        (
            &format!("Bearer {}", &unknown[..45]),
            "the API key is malformed",
        ),
        (&format!("Bearer {unknown}"), "the API key is not known"),
    ];
    for (header, detail) in cases {
        let response = http
            .get(app.url("/api/v1/me"))
            .header(AUTHORIZATION, header)
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{header}: {body}"
        );
    }

    let key = app.api_key(&ws.id, "ci", &[]).await;
    let response = app.api_get(&key, "/api/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["workspace"]["slug"], "acme");
    assert_eq!(
        me["credential"],
        json!({"kind": "api_key", "scopes": ["api"], "role": "admin"})
    );

    let id = app.key_id(&key).await;
    assert!(
        tidepost_store::api_keys::revoke(&app.db, &ws.id, &id, tidepost_domain::now_ms())
            .await
            .unwrap()
    );
    let body = problem(
        app.api_get(&key, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(body["detail"], "the API key was revoked");
}

async fn api_key_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let admin = app.api_key(&ws.id, "admin", &[]).await;
    let http = bare_client();

    let response = http
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "crm-production", "scopes": ["api", "worker"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 46);
    assert!(secret.starts_with("tp_"));
    assert_eq!(created["prefix"], &secret[..12]);
    assert_eq!(created["name"], "crm-production");
    assert_eq!(created["scopes"], json!(["api", "worker"]));
    assert_eq!(created["revoked_at"], Value::Null);
    let id = created["id"].as_str().unwrap().to_string();

    // The new key works; the secret is never shown again.
    assert_eq!(
        app.api_get(&secret, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    let list: Value = app
        .api_get(&admin, "/api/v1/api-keys")
        .await
        .json()
        .await
        .unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(data.iter().any(|k| k["id"] == id.as_str()));
    assert!(!list.to_string().contains(&secret));
    assert!(data.iter().all(|k| k.get("secret").is_none()));
    let response = app.api_get(&admin, &format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let shown: Value = response.json().await.unwrap();
    assert_eq!(shown["name"], "crm-production");
    assert!(shown.get("secret").is_none());
    assert!(
        shown["last_used_at"].is_string(),
        "use is recorded: {shown}"
    );

    // Revoke it: gone for good.
    let response = http
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let body = problem(
        app.api_get(&secret, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(body["detail"], "the API key was revoked");
    let shown: Value = app
        .api_get(&admin, &format!("/api/v1/api-keys/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(shown["revoked_at"].is_string(), "{shown}");
    // Revoking again, or an id that never existed: 404.
    for missing in [id.as_str(), "0190a4c2-0000-7000-8000-000000000000"] {
        let response = http
            .delete(app.url(&format!("/api/v1/api-keys/{missing}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::NOT_FOUND, "not-found").await;
    }
    problem(
        app.api_get(&admin, "/api/v1/api-keys/nope").await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
}

async fn bad_bodies_are_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let admin = app.api_key(&ws.id, "admin", &[]).await;
    let http = bare_client();
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = http
            .post(app.url("/api/v1/api-keys"))
            .bearer_auth(&admin)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        request.send()
    };
    let json = Some("application/json");
    problem(
        post("{\"name\": ", json).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    problem(
        post("{\"name\": \"x\"}", None).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    problem(
        post("{\"name\": \"x\"}", Some("text/plain")).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let body = problem(
        post("{\"nme\": \"x\"}", json).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("nme"), "{body}");
    problem(
        post("{\"name\": 7}", json).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad-request",
    )
    .await;
    let body = problem(
        post("{\"name\": \"  \"}", json).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
    let body = problem(
        post("{\"name\": \"x\", \"scopes\": [\"root\"]}", json)
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("root"), "{body}");
    // Nothing was created by any of these.
    let list: Value = app
        .api_get(&admin, "/api/v1/api-keys")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

async fn unknown_routes_are_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let key = app.api_key(&ws.id, "ci", &[]).await;
    for path in [
        "/api/v1/nope",
        "/api/v1/api-keys/x/y",
        "/api/v1/",
        "/api/v1",
        "/api",
        "/api/v2/me",
    ] {
        let body = problem(
            app.api_get(&key, path).await,
            StatusCode::NOT_FOUND,
            "unknown-route",
        )
        .await;
        assert_eq!(body["detail"], "no such API route");
    }
    // Without a key as well (nothing to learn from it).
    let response = bare_client()
        .get(app.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND, "unknown-route").await;
    // A known route with a method it does not take.
    let response = bare_client()
        .put(app.url("/api/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    )
    .await;
}

async fn session_callers_need_the_csrf_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    // Reading needs no token.
    let response = me.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["credential"]["kind"], "session");
    assert_eq!(body["workspace"]["slug"], "acme");
    // Changing state does.
    let create = || {
        me.client
            .post(app.url("/api/v1/api-keys"))
            .json(&json!({"name": "from the browser"}))
    };
    for token in [None, Some("forged"), Some("")] {
        let mut request = create();
        if let Some(token) = token {
            request = request.header("X-CSRF-Token", token);
        }
        let body = problem(
            request.send().await.unwrap(),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains("X-CSRF-Token"));
    }
    let response = create()
        .header("X-CSRF-Token", &me.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let response = me
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = me
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .header("X-CSRF-Token", &me.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn scopes_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, ws) = app.create_user("ada@example.com", "acme").await;
    let worker = app.api_key(&ws.id, "worker only", &["worker"]).await;
    let body = problem(
        app.api_get(&worker, "/api/v1/api-keys").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(body["detail"], "this API key lacks the `api` scope");
    let me: Value = app
        .api_get(&worker, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"]["scopes"], json!(["worker"]));
}
