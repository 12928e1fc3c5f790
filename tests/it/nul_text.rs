//! NUL in text: a NUL character (U+0000) in any string field of any request body is refused
//! with 400 naming the field, before it can reach the database (PostgreSQL refuses it, SQLite
//! would store it and hand it to the pages). Every string field of every JSON request body the
//! OpenAPI document describes (nested objects and arrays included), the multipart text parts of
//! `POST /posts`, every form the pages post to, the webhooks, and the tus metadata.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};

use crate::support::*;

/// Every string field of `schema`: its path (`targets[0].tiktok.caption`) and the JSON body
/// holding `text` there and nothing else.
fn string_fields(doc: &Value, schema: &Value, path: &str, depth: usize) -> Vec<String> {
    if depth > 8 {
        return Vec::new();
    }
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap();
        return string_fields(doc, &doc["components"]["schemas"][name], path, depth + 1);
    }
    let mut out = Vec::new();
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            out.extend(string_fields(doc, part, path, depth + 1));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"string") && !path.is_empty() {
        out.push(path.to_string());
    }
    if let Some(items) = schema.get("items") {
        out.extend(string_fields(doc, items, &format!("{path}[0]"), depth + 1));
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, prop) in props {
            let at = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            out.extend(string_fields(doc, prop, &at, depth + 1));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The JSON body with `value` at `path` (`a[0].b`).
fn body_at(path: &str, value: Value) -> Value {
    let (head, rest) = match path.find(['.', '[']) {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let inner = if let Some(after) = rest.strip_prefix("[0]") {
        let after = after.strip_prefix('.').unwrap_or(after);
        let item = if after.is_empty() {
            value
        } else {
            body_at(after, value)
        };
        Value::Array(vec![item])
    } else if let Some(after) = rest.strip_prefix('.') {
        body_at(after, value)
    } else {
        value
    };
    let mut map = Map::new();
    map.insert(head.to_string(), inner);
    Value::Object(map)
}

/// Asserts a 400 whose `field` (or page text) names `field`.
async fn refused(answer: reqwest::Response, field: &str, what: &str) {
    let status = answer.status();
    let is_problem = answer
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or_default() == "application/problem+json");
    let text = answer.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {text}");
    if is_problem {
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["field"], field, "{what}: {body}");
        assert_eq!(
            body["type"], "urn:tidepost:problem:invalid-text",
            "{what}: {body}"
        );
    } else {
        assert!(
            text.to_lowercase()
                .contains(&format!("{field}: the text holds a nul")),
            "{what}: {text}"
        );
    }
}

both_backends!(nul_in_any_text_field_is_refused_naming_it);

async fn nul_in_any_text_field_is_refused_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("nul").await;
    let key = app.api_key(&me.workspace.id, "nul", &[]).await;
    let http = bare_client();
    let doc: Value = app
        .api_get(&key, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let nul = "before\u{0}after";
    let mut tried = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op["requestBody"]["content"]
                .get("application/json")
                .map(|c| &c["schema"])
            else {
                continue;
            };
            let path = crate::bad_bodies::concrete(template, "nosuchupload");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let fields = string_fields(&doc, schema, "", 0);
            for field in fields {
                let answer = http
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(&key)
                    .json(&body_at(&field, json!(nul)))
                    .send()
                    .await
                    .unwrap();
                refused(answer, &field, &format!("{method} {template} {field}")).await;
                tried += 1;
            }
        }
    }
    assert!(tried > 30, "only {tried} fields in the OpenAPI document");
    // The same JSON under another label (`curl -d` says form; some say text/plain or nothing):
    // routes that read any body that is not multipart as JSON must not take the NUL either.
    for (template, method, field) in [
        ("/api/v1/posts", "POST", "caption"),
        ("/api/v1/posts/validate", "POST", "caption"),
        ("/api/v1/posts/{id}", "PATCH", "caption"),
        ("/api/v1/creators", "POST", "name"),
    ] {
        let path = crate::bad_bodies::concrete(template, "nosuchupload");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for label in [
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            Some("application/octet-stream"),
            None,
        ] {
            let mut request = http
                .request(method.clone(), app.url(&path))
                .bearer_auth(&key)
                .body(json!({ field: nul }).to_string());
            if let Some(label) = label {
                request = request.header(CONTENT_TYPE, label);
            }
            let answer = request.send().await.unwrap();
            refused(answer, field, &format!("{method} {template} as {label:?}")).await;
        }
    }
    // The same fields arrive as multipart text parts on POST /posts and /posts/validate.
    for path in ["/api/v1/posts", "/api/v1/posts/validate"] {
        for field in [
            "caption",
            "account_id",
            "privacy_level",
            "media_url",
            "scheduled_at",
        ] {
            let form = reqwest::multipart::Form::new()
                .text("account_id", "a")
                .text(field, nul);
            let answer = http
                .post(app.url(path))
                .bearer_auth(&key)
                .multipart(form)
                .send()
                .await
                .unwrap();
            refused(answer, field, &format!("multipart {path} {field}")).await;
        }
        let form =
            reqwest::multipart::Form::new().text("targets", r#"[{"account_id": "a\u0000"}]"#);
        let answer = http
            .post(app.url(path))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        refused(answer, "targets[0].account_id", "multipart targets").await;
    }
    // Every form the pages post to, signed in.
    let forms: Vec<Route> = registered_routes()
        .into_iter()
        .filter(|r| r.method == "POST" && !r.template.starts_with("/api/"))
        .collect();
    assert!(forms.iter().any(|r| r.template == "/creators"), "{forms:?}");
    for route in forms {
        let path = crate::bad_bodies::concrete(&route.template, "nosuchupload");
        for field in ["name", "caption"] {
            let answer = me
                .client
                .post(app.url(&path))
                .form(&[("csrf", "x"), (field, nul)])
                .send()
                .await
                .unwrap();
            refused(answer, field, &format!("form {path} {field}")).await;
        }
    }
    // tus: a file name in Upload-Metadata.
    let answer = http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header("upload-metadata", "filename YQBi")
        .send()
        .await
        .unwrap();
    let body = problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    assert_eq!(body["field"], "Upload-Metadata", "{body}");
    // Nothing was stored: the creators page lists none, the one place a name would show.
    let page = app.page_text(&me.client, "/creators").await;
    assert!(!page.contains("before"), "a refused name was stored");
}
