//! The API's contract: the OpenAPI document lists exactly the routes the API router serves
//! (both ways), the server serves it at `/api/v1/openapi.json` without a credential and every
//! route it lists answers, and `Idempotency-Key` replays, refuses and serializes as documented.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidepost_store::idempotency::{self, Claim};

use crate::support::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (METHOD, full path) of every route `tidepost_http::api::router()` serves, nested under
/// `/api/v1`. axum has no public route listing, so this reads the router's `Debug` form (its
/// path table and each route's method slots); the sanity checks below fail loudly if that form
/// changes rather than letting the comparison pass on an empty list.
fn served_routes() -> BTreeSet<(String, String)> {
    let debug = format!("{:?}", tidepost_http::api::router());
    let main = debug
        .split("fallback_router")
        .next()
        .expect("a Router's Debug names its fallback router");
    let (routes, node) = main
        .split_once("node: Node")
        .expect("a PathRouter's Debug shows its node");
    // RouteId(n) → path.
    let mut paths = std::collections::BTreeMap::new();
    for piece in node.split("RouteId(").skip(1) {
        let (id, rest) = piece.split_once(')').expect("RouteId(n)");
        let path = rest
            .split('"')
            .nth(1)
            .expect("a quoted path after RouteId(n):");
        paths.insert(id.to_string(), path.to_string());
    }
    let mut served = BTreeSet::new();
    for piece in routes.split("RouteId(").skip(1) {
        let (id, endpoint) = piece.split_once(')').expect("RouteId(n)");
        assert!(
            endpoint.contains("MethodRouter"),
            "route {id} is not a method router (a nested service?): {endpoint}"
        );
        let path = paths.get(id).expect("every route id has a path");
        for method in METHODS {
            let slot = endpoint
                .split_once(&format!(" {method}: "))
                .map(|(_, rest)| rest)
                .unwrap_or_else(|| panic!("no `{method}` slot in {endpoint}"));
            if !slot.starts_with("None") {
                served.insert((method.to_uppercase(), format!("/api/v1{path}")));
            }
        }
    }
    assert!(
        served.contains(&("GET".into(), "/api/v1/me".into()))
            && served.contains(&("POST".into(), "/api/v1/api-keys".into()))
            && !served.contains(&("DELETE".into(), "/api/v1/me".into())),
        "the router scan is wrong (axum's Debug output changed?): {served:?}"
    );
    served
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented
}

fn document() -> Value {
    serde_json::to_value(tidepost_http::api::openapi::document()).unwrap()
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let served = served_routes();
    let documented = documented_routes(&document());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes served under /api/v1 but missing from the OpenAPI document (annotate the handler \
         with #[utoipa::path] and list it in crates/http/src/api/openapi.rs): {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "routes in the OpenAPI document that the router does not serve: {unserved:?}"
    );
}

#[test]
fn every_operation_is_described_and_answers_problems_on_error() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let what = format!("{method} {path}");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{what} has no tag"
            );
            assert!(
                op["operationId"]
                    .as_str()
                    .is_some_and(|id| ids.insert(id.to_string())),
                "{what} has no unique operationId"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what} documents no success"
            );
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{what} {status} has no description"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{what} {status} is not problem+json: {response}"
                    );
                }
            }
            // Path parameters are declared.
            for segment in path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    assert!(
                        op["parameters"].as_array().is_some_and(|ps| ps
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path")),
                        "{what} does not declare its path parameter {name}"
                    );
                }
            }
            if method == "post" && path != "/api/v1/openapi.json" {
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")),
                    "{what} does not document Idempotency-Key"
                );
            }
        }
    }
}

both_backends!(the_document_is_served_and_every_route_in_it_answers);

async fn the_document_is_served_and_every_route_in_it_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = bare_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, document());
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));

    // Every documented operation reaches its handler: without a credential it is refused
    // (401), never "no such route" (404 unknown-route) or 405.
    for (method, path) in documented_routes(&served) {
        let url = app.url(&path.replace('{', "x").replace('}', ""));
        let response = bare_client()
            .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("unknown-route"),
            "{method} {path}: {status} {body}"
        );
        if path != "/api/v1/openapi.json" {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        }
    }
}

/// `POST /api/v1/api-keys` with an Idempotency-Key.
async fn create_key(
    app: &TestApp,
    secret: &str,
    idempotency_key: &str,
    body: &Value,
) -> reqwest::Response {
    bare_client()
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(secret)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn key_names(app: &TestApp, secret: &str) -> Vec<String> {
    let list: Value = app
        .api_get(secret, "/api/v1/api-keys")
        .await
        .json()
        .await
        .unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect()
}

both_backends!(an_idempotency_key_replays_the_first_answer);

async fn an_idempotency_key_replays_the_first_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.signed_in("idem-a").await;
    let b = app.signed_in("idem-b").await;
    let key_a = app.api_key(&a.workspace.id, "main", &[]).await;
    let key_b = app.api_key(&b.workspace.id, "main", &[]).await;

    let first = create_key(&app, &key_a, "create-crm-key", &json!({"name": "crm"})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.unwrap();

    let again = create_key(&app, &key_a, "create-crm-key", &json!({"name": "crm"})).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert!(
        again.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let again_body: Value = again.json().await.unwrap();
    // The replay is the first answer without the secret shown once, and with a note saying so
    // (tests/it/one_time_secrets.rs covers every such route).
    let mut expected = first_body.clone();
    let expected_map = expected.as_object_mut().unwrap();
    expected_map.remove("secret");
    expected_map.insert("note".into(), again_body["note"].clone());
    assert_eq!(again_body, expected, "the replay is the first answer");
    assert!(
        again_body["note"]
            .as_str()
            .is_some_and(|n| n.contains("shown once")),
        "{again_body}"
    );
    assert_eq!(
        key_names(&app, &key_a)
            .await
            .iter()
            .filter(|n| *n == "crm")
            .count(),
        1,
        "the replay created nothing"
    );

    // The stored answer is sealed, and the new key's secret is not in it.
    let (sealed,): (Vec<u8>,) = sqlx::query_as(
        "SELECT body FROM idempotency_keys WHERE workspace_id = $1 AND idem_key = $2",
    )
    .bind(&a.workspace.id)
    .bind("create-crm-key")
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let secret = first_body["secret"].as_str().unwrap();
    assert!(secret.len() > 20);
    assert!(
        !String::from_utf8_lossy(&sealed).contains(secret),
        "the secret is stored in clear"
    );

    // The same key for another request: refused, and nothing created.
    let other = create_key(&app, &key_a, "create-crm-key", &json!({"name": "billing"})).await;
    problem(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    )
    .await;
    assert!(
        !key_names(&app, &key_a)
            .await
            .contains(&"billing".to_string())
    );

    // Keys belong to a workspace: B's identical key is B's own request.
    let in_b = create_key(&app, &key_b, "create-crm-key", &json!({"name": "crm"})).await;
    assert_eq!(in_b.status(), StatusCode::CREATED);
    assert!(in_b.headers().get("idempotent-replayed").is_none());
    let in_b: Value = in_b.json().await.unwrap();
    assert_ne!(in_b["id"], first_body["id"]);

    // A refusal of the request itself is an answer too, replayed as such.
    let invalid = create_key(&app, &key_a, "empty-name", &json!({"name": ""})).await;
    let first_problem = problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    let invalid = create_key(&app, &key_a, "empty-name", &json!({"name": ""})).await;
    assert_eq!(invalid.headers()["idempotent-replayed"], "true");
    assert_eq!(
        problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await,
        first_problem
    );

    // An answer that says "try again" keeps nothing: after a 401 the key is still free.
    let refused = create_key(&app, "tp_not_a_key", "after-401", &json!({"name": "late"})).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let later = create_key(&app, &key_a, "after-401", &json!({"name": "late"})).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get("idempotent-replayed").is_none());

    // A malformed key is refused before anything runs.
    let long = "k".repeat(256);
    problem(
        create_key(&app, &key_a, &long, &json!({"name": "long"})).await,
        StatusCode::BAD_REQUEST,
        "invalid-idempotency-key",
    )
    .await;
    assert!(!key_names(&app, &key_a).await.contains(&"long".to_string()));

    // A request still running with the key (claimed here as a request in flight would): 409.
    let now = tidepost_domain::now_ms();
    assert_eq!(
        idempotency::claim(&app.db, &a.workspace.id, "in-flight", now, 60_000)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let busy = create_key(&app, &key_a, "in-flight", &json!({"name": "dup"})).await;
    assert!(busy.headers().get("retry-after").is_some());
    problem(busy, StatusCode::CONFLICT, "idempotency-key-in-use").await;
    assert!(!key_names(&app, &key_a).await.contains(&"dup".to_string()));
}

both_backends!(concurrent_duplicates_create_one_object);

async fn concurrent_duplicates_create_one_object(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.signed_in("idem-race").await;
    let key = app.api_key(&a.workspace.id, "main", &[]).await;
    let body = json!({"name": "raced"});
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, key, body) = (app.url("/api/v1/api-keys"), key.clone(), body.clone());
        racers.spawn(async move {
            bare_client()
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "raced-key")
                .json(&body)
                .send()
                .await
                .unwrap()
        });
    }
    let attempts = racers.join_all().await;
    let mut created = Vec::new();
    for response in attempts {
        let status = response.status();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => created.push((replayed, body["id"].clone())),
            StatusCode::CONFLICT => {
                assert_eq!(body["type"], "urn:tidepost:problem:idempotency-key-in-use")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        created.iter().filter(|(replayed, _)| !replayed).count(),
        1,
        "exactly one request ran: {created:?}"
    );
    assert!(created.windows(2).all(|w| w[0].1 == w[1].1), "{created:?}");
    assert_eq!(
        key_names(&app, &key)
            .await
            .iter()
            .filter(|n| *n == "raced")
            .count(),
        1
    );
}

/// Every schema a request body can hold is typed: no object without properties (an "anything"
/// map described in prose), no schema that says nothing. The per-platform options are typed
/// schemas (`TikTokOptions`, `InstagramOptions`) with enums as enums, so a client generated
/// from the document can build a valid post.
#[test]
fn request_bodies_have_no_untyped_object() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut untyped = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(body) = item.get(method).and_then(|op| op.get("requestBody")) else {
                continue;
            };
            for (media_type, content) in body["content"].as_object().expect("content") {
                walk(
                    &content["schema"],
                    &format!("{method} {path} ({media_type})"),
                    schemas,
                    &mut seen,
                    &mut untyped,
                );
            }
        }
    }
    assert!(
        seen.contains("CreatePost") && seen.contains("TikTokOptions"),
        "the walk did not reach the post body's schemas: {seen:?}"
    );
    assert!(
        untyped.is_empty(),
        "untyped schemas in request bodies (give them a type with its fields):\n{}",
        untyped.join("\n")
    );

    fn walk(
        schema: &Value,
        at: &str,
        schemas: &serde_json::Map<String, Value>,
        seen: &mut BTreeSet<String>,
        untyped: &mut Vec<String>,
    ) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            if seen.insert(name.to_string()) {
                let target = schemas
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}: dangling {reference}"));
                walk(target, name, schemas, seen, untyped);
            }
            return;
        }
        let object = schema.as_object().expect("a schema is an object");
        let composed: Vec<&Value> = ["oneOf", "anyOf", "allOf"]
            .iter()
            .filter_map(|k| schema[*k].as_array())
            .flatten()
            .collect();
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let properties = schema["properties"].as_object();
        if composed.is_empty() && types.is_empty() && !object.contains_key("enum") {
            untyped.push(format!("{at}: a schema with no type: {schema}"));
        }
        if types.contains(&"object")
            && properties.is_none_or(|p| p.is_empty())
            && !schema["additionalProperties"].is_object()
        {
            untyped.push(format!("{at}: an object with no properties: {schema}"));
        }
        for (name, property) in properties.into_iter().flatten() {
            walk(property, &format!("{at}.{name}"), schemas, seen, untyped);
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{at}[]"), schemas, seen, untyped);
        }
        if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            walk(extra, &format!("{at}{{}}"), schemas, seen, untyped);
        }
        for (i, part) in composed.into_iter().enumerate() {
            walk(part, &format!("{at}<{i}>"), schemas, seen, untyped);
        }
    }
}
