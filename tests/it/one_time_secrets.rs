//! A secret shown once is never shown again (issue 18, item 14). Class: every API route that
//! answers with a secret, replayed with its `Idempotency-Key`.
//!
//! [`SECRET_ROUTES`] lists them; `every_route_answering_a_secret_is_listed` reads the OpenAPI
//! document and fails when a POST answers a schema with a `secret` (or a link carrying a
//! single-use state, `authorize_url`) that the list lacks.
//!
//! - An API key or a webhook signing secret: the replay has the object's metadata, a `note`
//!   that the secret was shown once, and not the secret; nothing is created twice.
//! - A connect link: not replayed at all; the retry gets a fresh link (its OAuth state is single
//!   use, and making another changes nothing).

use serde_json::{Value, json};

use crate::support::*;

/// `(path, field holding the secret, replayed)`: `replayed` is false for the routes that make a
/// fresh secret on a retry instead.
const SECRET_ROUTES: &[(&str, &str, bool)] = &[
    ("/api/v1/api-keys", "secret", true),
    ("/api/v1/webhook-endpoints", "secret", true),
    (
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "secret",
        true,
    ),
    ("/api/v1/connect/tiktok", "authorize_url", false),
    ("/api/v1/connect/instagram", "authorize_url", false),
];

both_backends!(a_replay_never_shows_a_secret_again);

async fn post_with_key(
    app: &TestApp,
    key: &str,
    path: &str,
    body: &Value,
    idem: &str,
) -> reqwest::Response {
    bare_client()
        .post(app.url(path))
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn a_replay_never_shows_a_secret_again(backend: Backend) {
    // The emulator stands in for TikTok and Meta, so that the connect links can be made.
    let app = spawn_app_with(backend, Options::emulated()).await;
    let me = app.signed_in("acme").await;
    let key = app.api_key(&me.workspace.id, "ci", &[]).await;
    let endpoint: Value = post_with_key(
        &app,
        &key,
        "/api/v1/webhook-endpoints",
        &json!({"url": "http://127.0.0.1:9/hook"}),
        "setup-endpoint",
    )
    .await
    .json()
    .await
    .unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    for (template, field, replayed) in SECRET_ROUTES {
        let path = template.replace("{id}", &endpoint_id);
        let body = match *template {
            "/api/v1/api-keys" => json!({"name": "replayed"}),
            "/api/v1/webhook-endpoints" => json!({"url": "http://127.0.0.1:9/other"}),
            _ => json!({}),
        };
        let idem = format!("replay-{}", tidepost_domain::new_id());
        let first = post_with_key(&app, &key, &path, &body, &idem).await;
        assert!(first.status().is_success(), "{path}: {}", first.status());
        let first_status = first.status();
        let first: Value = first.json().await.unwrap();
        let secret = first[field]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {first}"));
        assert!(!secret.is_empty());

        let again = post_with_key(&app, &key, &path, &body, &idem).await;
        assert_eq!(again.status(), first_status, "{path}");
        let is_replay = again.headers().get("idempotent-replayed").is_some();
        let text = again.text().await.unwrap();
        assert!(
            !text.contains(secret),
            "{path} showed its secret again: {text}"
        );
        let again: Value = serde_json::from_str(&text).unwrap();
        if *replayed {
            assert!(is_replay, "{path}");
            assert!(again.get(*field).is_none(), "{path}: {again}");
            assert!(
                again["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("shown once")),
                "{path}: {again}"
            );
            // The metadata is the first answer's, so nothing was made twice.
            assert_eq!(again["id"], first["id"], "{path}");
        } else {
            assert!(!is_replay, "{path} must not be replayed");
            let fresh = again[field].as_str().unwrap();
            assert_ne!(fresh, secret, "{path}");
        }
    }
    // One key named "replayed", one endpoint at /other: the replays made nothing.
    let keys: Value = app
        .api_get(&key, "/api/v1/api-keys")
        .await
        .json()
        .await
        .unwrap();
    let named = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "replayed")
        .count();
    assert_eq!(named, 1);
    let endpoints: Value = app
        .api_get(&key, "/api/v1/webhook-endpoints")
        .await
        .json()
        .await
        .unwrap();
    let other = endpoints["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["url"] == "http://127.0.0.1:9/other")
        .count();
    assert_eq!(other, 1);
}

/// The class, read from the OpenAPI document: every POST whose answer has a `secret` or an
/// `authorize_url` property is in [`SECRET_ROUTES`].
#[tokio::test]
async fn every_route_answering_a_secret_is_listed() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = bare_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(responses) = item["post"]["responses"].as_object() else {
            continue;
        };
        for response in responses.values() {
            let schema = resolve(&response["content"]["application/json"]["schema"]);
            let text = serde_json::to_string(&schema).unwrap();
            for field in ["\"secret\"", "\"authorize_url\""] {
                if text.contains(field) {
                    found.push(path.clone());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    let mut listed: Vec<String> = SECRET_ROUTES
        .iter()
        .map(|(p, _, _)| p.to_string())
        .collect();
    listed.sort();
    assert_eq!(found, listed, "routes answering a secret vs SECRET_ROUTES");
}
