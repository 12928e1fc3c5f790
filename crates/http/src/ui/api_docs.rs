//! `/docs/api`: the API's OpenAPI document rendered on the server for people — operations
//! grouped by tag, with their parameters, request and response schemas and generated examples,
//! then every schema. No script and nothing from another site: it is the same document as
//! `/api/v1/openapi.json`, read through [`crate::api::openapi::document`], so it cannot drift
//! from what the API serves. Open to anyone who can reach the instance, like the document.

use std::collections::BTreeSet;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::Chrome;
use crate::auth::MaybeViewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/docs/api", get(page))
}

#[derive(Template, WebTemplate)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    chrome: Chrome,
    title: String,
    version: String,
    description: Vec<Rich>,
    tags: Vec<TagSection>,
    schemas: Vec<SchemaSection>,
}

struct TagSection {
    name: String,
    anchor: String,
    description: String,
    operations: Vec<OperationView>,
}

struct OperationView {
    anchor: String,
    method: String,
    /// `ok` / `warn` / `bad`: the badge colour of the method.
    method_class: &'static str,
    path: String,
    summary: Rich,
    description: Vec<Rich>,
    public: bool,
    parameters: Vec<ParameterView>,
    request: Option<BodyView>,
    responses: Vec<ResponseView>,
}

struct ParameterView {
    name: String,
    location: String,
    required: bool,
    kind: String,
    description: Rich,
}

struct BodyView {
    content_type: String,
    required: bool,
    description: String,
    fields: Vec<FieldView>,
    /// The schema's name when it is a component (linked to its section).
    schema: Option<String>,
    kind: String,
    example: String,
}

struct ResponseView {
    status: String,
    status_class: &'static str,
    description: Rich,
    body: Option<BodyView>,
}

struct SchemaSection {
    name: String,
    description: String,
    fields: Vec<FieldView>,
    example: String,
}

struct FieldView {
    name: String,
    kind: String,
    /// The component the field refers to, for a link.
    link: Option<String>,
    required: bool,
    description: Rich,
}

/// Text with its `code` spans marked, as the document's descriptions write them.
type Rich = Vec<Span>;

struct Span {
    code: bool,
    text: String,
}

fn rich(text: &str) -> Rich {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| Span {
            code: i % 2 == 1,
            text: part.to_string(),
        })
        .collect()
}

async fn page(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<ApiDocsPage, PageError> {
    // The reference has no entry in the navigation (the footer and Settings link to it), so
    // none is highlighted: "Settings" lit up here read as if the docs were a settings page.
    let chrome = match &viewer {
        Some(viewer) => Chrome::for_viewer(&state, viewer, ""),
        None => Chrome::anonymous(&state),
    };
    let doc = serde_json::to_value(crate::api::openapi::document()).map_err(PageError::internal)?;
    Ok(render(chrome, &doc))
}

fn render(chrome: Chrome, doc: &Value) -> ApiDocsPage {
    let docs = Docs { doc };
    let mut tags: Vec<TagSection> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| TagSection {
            name: text(&t["name"]),
            anchor: format!("tag-{}", slug(&text(&t["name"]))),
            description: text(&t["description"]),
            operations: Vec::new(),
        })
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
            let view = docs.operation(method, path, op);
            match tags.iter_mut().find(|t| t.name == tag) {
                Some(section) => section.operations.push(view),
                None => tags.push(TagSection {
                    anchor: format!("tag-{}", slug(&tag)),
                    name: tag,
                    description: String::new(),
                    operations: vec![view],
                }),
            }
        }
    }
    tags.retain(|t| !t.operations.is_empty());
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| SchemaSection {
            name: name.clone(),
            description: text(&schema["description"]),
            fields: docs.fields(schema),
            example: pretty(&docs.example(schema, &mut BTreeSet::new())),
        })
        .collect();
    ApiDocsPage {
        chrome,
        title: text(&doc["info"]["title"]),
        version: text(&doc["info"]["version"]),
        description: paragraphs(&text(&doc["info"]["description"])),
        tags,
        schemas,
    }
}

/// Reads the document, resolving `$ref`s to its components.
struct Docs<'a> {
    doc: &'a Value,
}

impl Docs<'_> {
    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match ref_name(schema) {
            Some(name) => &self.doc["components"]["schemas"][name],
            None => schema,
        }
    }

    fn operation(&self, method: &str, path: &str, op: &Value) -> OperationView {
        let parameters = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| ParameterView {
                name: text(&p["name"]),
                location: text(&p["in"]),
                required: p["required"].as_bool().unwrap_or(false),
                kind: self.kind(&p["schema"]),
                description: rich(&text(&p["description"])),
            })
            .collect();
        let request = op.get("requestBody").map(|body| {
            let mut view = self.body(&body["content"]);
            view.required = body["required"].as_bool().unwrap_or(false);
            view.description = text(&body["description"]);
            view
        });
        let responses = op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, response)| ResponseView {
                status_class: match status.as_bytes().first() {
                    Some(b'2') => "ok",
                    Some(b'4') => "warn",
                    Some(b'5') => "bad",
                    _ => "",
                },
                status: status.clone(),
                description: rich(&text(&response["description"])),
                body: response
                    .get("content")
                    .filter(|c| c.as_object().is_some_and(|c| !c.is_empty()))
                    .map(|c| self.body(c)),
            })
            .collect();
        let description = text(&op["description"]);
        OperationView {
            anchor: text(&op["operationId"]),
            method: method.to_uppercase(),
            method_class: match method {
                "get" => "ok",
                "delete" => "bad",
                _ => "warn",
            },
            path: path.to_string(),
            summary: rich(&text(&op["summary"])),
            description: paragraphs(&description),
            public: op["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(Map::is_empty))),
            parameters,
            request,
            responses,
        }
    }

    /// The first media type of a `content` map.
    fn body(&self, content: &Value) -> BodyView {
        let (content_type, media) = content
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(t, m)| (t.clone(), m.clone()))
            .unwrap_or_default();
        let schema = &media["schema"];
        let example = media
            .get("example")
            .cloned()
            .unwrap_or_else(|| self.example(schema, &mut BTreeSet::new()));
        BodyView {
            content_type,
            required: false,
            description: String::new(),
            fields: self.fields(self.resolve(schema)),
            schema: ref_name(schema).map(str::to_string),
            kind: self.kind(schema),
            example: pretty(&example),
        }
    }

    /// The properties of an object schema (its `allOf` parts merged).
    fn fields(&self, schema: &Value) -> Vec<FieldView> {
        let mut out = Vec::new();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            out.extend(self.fields(self.resolve(part)));
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            let link = ref_name(property)
                .or_else(|| ref_name(&property["items"]))
                .or_else(|| {
                    property["oneOf"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find_map(ref_name)
                })
                .map(str::to_string);
            out.push(FieldView {
                name: name.clone(),
                kind: self.kind(property),
                link,
                required: required.contains(&name.as_str()),
                description: rich(&text(&property["description"])),
            });
        }
        out
    }

    /// A short type name: `string`, `integer | null`, `array of Job`, `Account`.
    fn kind(&self, schema: &Value) -> String {
        if let Some(name) = ref_name(schema) {
            return name.to_string();
        }
        if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
            return options
                .iter()
                .map(|o| self.kind(o))
                .collect::<Vec<_>>()
                .join(" | ");
        }
        let base = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(types) => types
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_)
                if schema.get("allOf").is_some() =>
            {
                "object".to_string()
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => "any".to_string(),
        };
        if base.starts_with("array") {
            return base.replacen(
                "array",
                &format!("array of {}", self.kind(&schema["items"])),
                1,
            );
        }
        match schema["format"].as_str() {
            Some(format) => format!("{base} ({format})"),
            None => base,
        }
    }

    /// An example value built from the schema's own examples, else placeholders by type.
    fn example(&self, schema: &Value, seen: &mut BTreeSet<String>) -> Value {
        if let Some(name) = ref_name(schema) {
            if !seen.insert(name.to_string()) {
                return json!({});
            }
            let value = self.example(self.resolve(schema), seen);
            seen.remove(name);
            return value;
        }
        if let Some(example) = schema.get("example").or_else(|| schema["examples"].get(0)) {
            return example.clone();
        }
        if let Some(first) = schema["oneOf"]
            .as_array()
            .or(schema["anyOf"].as_array())
            .and_then(|options| {
                options
                    .iter()
                    .find(|o| o["type"] != "null")
                    .or(options.first())
            })
        {
            return self.example(first, seen);
        }
        if let Some(parts) = schema["allOf"].as_array() {
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(map) = self.example(part, seen) {
                    merged.extend(map);
                }
            }
            if schema.get("properties").is_none() {
                return Value::Object(merged);
            }
            if let Value::Object(own) = self.example(&strip_all_of(schema), seen) {
                merged.extend(own);
            }
            return Value::Object(merged);
        }
        let kind = match &schema["type"] {
            Value::String(t) => t.as_str(),
            Value::Array(types) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_)
                if schema.get("properties").is_some() =>
            {
                "object"
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => "any",
        };
        match kind {
            "object" => Value::Object(
                schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, property)| (name.clone(), self.example(property, seen)))
                    .collect(),
            ),
            "array" => json!([self.example(&schema["items"], seen)]),
            "string" => match schema["format"].as_str() {
                Some("date-time") => json!("2026-01-01T12:00:00Z"),
                Some("uri") => json!("https://example.com/"),
                _ => json!("string"),
            },
            "integer" => schema.get("minimum").cloned().unwrap_or(json!(0)),
            "number" => json!(0.0),
            "boolean" => json!(true),
            "null" => Value::Null,
            _ => json!({}),
        }
    }
}

fn strip_all_of(schema: &Value) -> Value {
    let mut copy = schema.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("allOf");
        map.insert("type".into(), json!("object"));
    }
    copy
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn paragraphs(text: &str) -> Vec<Rich> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(rich)
        .collect()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs_page() -> ApiDocsPage {
        let chrome = Chrome {
            user_email: None,
            workspace: String::new(),
            csrf: String::new(),
            sandbox: false,
            active: "",
            version: "test",
            zone: "UTC".into(),
            role: None,
        };
        let doc = serde_json::to_value(crate::api::openapi::document()).unwrap();
        render(chrome, &doc)
    }

    #[test]
    fn every_operation_is_on_the_page_under_its_tag() {
        let page = docs_page();
        let doc = serde_json::to_value(crate::api::openapi::document()).unwrap();
        let count: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(
            page.tags.iter().map(|t| t.operations.len()).sum::<usize>(),
            count
        );
        let keys = page.tags.iter().find(|t| t.name == "api-keys").unwrap();
        let create = keys
            .operations
            .iter()
            .find(|o| o.method == "POST" && o.path == "/api/v1/api-keys")
            .unwrap();
        let request = create.request.as_ref().unwrap();
        assert!(
            request
                .fields
                .iter()
                .any(|f| f.name == "name" && f.required)
        );
        assert!(request.example.contains("CRM sync"), "{}", request.example);
        assert!(
            create
                .parameters
                .iter()
                .any(|p| p.name == "Idempotency-Key" && p.location == "header")
        );
        let created = create.responses.iter().find(|r| r.status == "201").unwrap();
        let body = created.body.as_ref().unwrap();
        assert!(
            body.fields.iter().any(|f| f.name == "secret"),
            "the flattened key and its secret"
        );
        assert!(body.fields.iter().any(|f| f.name == "prefix"));
        let unauthorized = create.responses.iter().find(|r| r.status == "401").unwrap();
        let problem = unauthorized.body.as_ref().unwrap();
        assert_eq!(problem.content_type, "application/problem+json");
        assert_eq!(problem.schema.as_deref(), Some("Problem"));
        let html = page.render().unwrap();
        assert!(html.contains("/api/v1/jobs/{id}/retry"));
        assert!(
            !html.contains("<script src=\"http"),
            "nothing from another site"
        );
    }

    #[test]
    fn examples_follow_the_schema() {
        let doc = json!({"components": {"schemas": {
            "Inner": {"type": "object", "properties": {"n": {"type": ["integer", "null"], "minimum": 1}}},
            "Outer": {"type": "object", "properties": {
                "id": {"type": "string", "examples": ["abc"]},
                "inner": {"$ref": "#/components/schemas/Inner"},
                "list": {"type": "array", "items": {"$ref": "#/components/schemas/Outer"}},
            }},
        }}});
        let docs = Docs { doc: &doc };
        let example = docs.example(
            &json!({"$ref": "#/components/schemas/Outer"}),
            &mut BTreeSet::new(),
        );
        assert_eq!(
            example,
            json!({"id": "abc", "inner": {"n": 1}, "list": [{}]})
        );
        assert_eq!(
            docs.kind(&doc["components"]["schemas"]["Outer"]["properties"]["list"]),
            "array of Outer"
        );
        assert_eq!(
            docs.kind(&json!({"type": ["string", "null"]})),
            "string | null"
        );
        let spans = rich("send `Idempotency-Key` on a `POST`");
        let marked: Vec<(bool, &str)> = spans.iter().map(|s| (s.code, s.text.as_str())).collect();
        assert_eq!(
            marked,
            vec![
                (false, "send "),
                (true, "Idempotency-Key"),
                (false, " on a "),
                (true, "POST")
            ]
        );
    }
}
