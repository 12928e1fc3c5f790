//! The contract of `/api/v1`: an OpenAPI 3.1 document generated from the code with utoipa,
//! served at `GET /api/v1/openapi.json` (no credential needed) and rendered for people at
//! `/docs/api`. `tests/it/openapi.rs` fails when a route the router serves is missing from the
//! document (or the document lists one the router does not serve), and `tests/it/contract.rs`
//! runs schemathesis against a live server with it.
//!
//! # Adding a route to the document (do this for every route under `/api/v1`)
//!
//! 1. Derive `utoipa::ToSchema` on the handler's request and response types, beside their
//!    `Serialize`/`Deserialize` (doc comments become descriptions; `#[schema(example = …)]`
//!    gives examples). A handler that answers a `json!(…)` value declares a schema-only struct
//!    that mirrors it, next to the function that builds the JSON, so the two are read together
//!    (see `KeyDoc` in `api/keys.rs`). Query strings derive `utoipa::IntoParams` with
//!    `#[into_params(parameter_in = Query)]`.
//! 2. Put `#[utoipa::path]` on the handler, with the **full** path (including `/api/v1`) exactly
//!    as axum spells it (`{id}`):
//!
//!    ```ignore
//!    #[utoipa::path(
//!        post, path = "/api/v1/widgets", tag = "widgets",
//!        request_body = CreateWidget,
//!        responses(
//!            (status = 201, description = "The new widget", body = Widget),
//!            (status = 404, description = "No such account in this workspace", body = Problem),
//!            (status = 422, description = "A field is invalid (named in `detail`)", body = Problem),
//!        ),
//!    )]
//!    async fn create(…) -> Result<(StatusCode, Json<Widget>), Problem> { … }
//!    ```
//!
//!    Path parameters: `params(("id" = String, Path, description = "The widget's id"))`.
//!    Error bodies are `crate::error::Problem` (it implements `ToSchema` here); such responses
//!    are published as `application/problem+json` automatically. Do not list 400, 401, 403 and
//!    500: [`Conventions`] adds them to every operation, and adds the `Idempotency-Key` header
//!    with its 409 and 422 answers to every `POST`. Mark a route that needs no credential with
//!    `security(())`.
//! 3. Add **one line** to the `paths(…)` list of [`ApiDoc`] below, in the block of your file:
//!    `crate::api::widgets::create,` (the handler can stay private: utoipa generates a public
//!    `__path_create` beside it). Schemas used by `body = …` and `request_body = …` are
//!    collected by themselves; a new tag may get a line in `tags(…)` with a description.
//!
//! Check with `cargo test --all-features --test it openapi`.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, RefOr, ResponseBuilder, Schema, Type};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::Problem;

/// The document. Add one line per handler to `paths(…)` (see the module's doc).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidepost API",
        version = "1",
        description = "The REST API of a tidepost instance: connected TikTok and Instagram \
accounts, publishing, background jobs and API keys. Authenticate with `Authorization: Bearer \
<API key>` (create keys under Settings or with `tidepost apikey create`). Errors are \
`application/problem+json` (RFC 9457) with a stable `type` URI per kind of problem. Lists \
answer `{\"data\": [...]}`; paginated lists add `next_cursor`, which you pass back as `after`. \
Send `Idempotency-Key` on a POST to make retries safe: the first answer is stored for 24 hours \
and replayed with `Idempotent-Replayed: true`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        // The document itself.
        openapi_json,
        // api/mod.rs
        crate::api::me,
        // api/keys.rs
        crate::api::keys::list,
        crate::api::keys::create,
        crate::api::keys::show,
        crate::api::keys::revoke,
        // api/accounts.rs
        crate::api::accounts::connect_tiktok,
        crate::api::accounts::list,
        crate::api::accounts::show,
        crate::api::accounts::disconnect,
        // instagram.rs
        crate::instagram::api_connect,
        // connect_links.rs
        crate::connect_links::create_connect_link,
        crate::connect_links::api_origins,
        crate::connect_links::api_set_origins,
        // widget.rs
        crate::widget::create_widget_link,
        crate::widget::create_creator_widget_links,
        // api/posts/
        crate::api::posts::create,
        crate::api::posts::list,
        crate::api::posts::show,
        crate::api::posts::update,
        crate::api::posts::history,
        crate::api::posts::remove,
        crate::api::posts::cancel,
        crate::api::posts::retry,
        crate::api::posts::mark_published,
        crate::api::posts::send_again,
        crate::api::posts::validate,
        crate::api::posts::drafts::create,
        crate::api::posts::drafts::list,
        crate::api::posts::drafts::show,
        crate::api::posts::drafts::replace,
        crate::api::posts::drafts::remove,
        crate::api::posts::drafts::publish,
        crate::api::posts::comments::list,
        crate::api::posts::comments::create,
        // api/media.rs
        crate::api::media::list,
        crate::api::media::upload,
        crate::api::media::show,
        crate::api::media::frame,
        crate::api::media::content,
        crate::api::media::remove,
        // api/uploads.rs
        crate::api::uploads::create,
        crate::api::uploads::show,
        crate::api::uploads::patch,
        crate::api::uploads::terminate,
        // api/jobs.rs
        crate::api::jobs::list,
        crate::api::jobs::counts,
        crate::api::jobs::run_due,
        crate::api::jobs::show,
        crate::api::jobs::retry,
        crate::api::jobs::cancel,
        // api/crm.rs
        crate::api::crm::list_creators,
        crate::api::crm::create_creator,
        crate::api::crm::show_creator,
        crate::api::crm::update_creator,
        crate::api::crm::delete_creator,
        crate::api::crm::attach_account,
        crate::api::crm::detach_account,
        crate::api::crm::creator_timeline,
        crate::api::crm::list_contacts,
        crate::api::crm::show_contact,
        crate::api::crm::contact_timeline,
        crate::api::crm::list_interactions,
        crate::api::crm::show_interaction,
        crate::api::crm::reply,
        crate::api::crm::target_metrics,
        // api/webhook_endpoints.rs
        crate::api::webhook_endpoints::list,
        crate::api::webhook_endpoints::create,
        crate::api::webhook_endpoints::show,
        crate::api::webhook_endpoints::update,
        crate::api::webhook_endpoints::remove,
        crate::api::webhook_endpoints::rotate_secret,
        crate::api::webhook_endpoints::deliveries,
        crate::api::webhook_endpoints::delivery,
        crate::api::webhook_endpoints::resend,
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    security(("api_key" = [])),
    tags(
        (name = "workspace", description = "Who is calling"),
        (name = "api-keys", description = "API keys of the workspace (the secret is shown once, when created)"),
        (name = "accounts", description = "Connected TikTok and Instagram accounts, and how to connect more"),
        (name = "posts", description = "Publishing to connected accounts, each target tracked to its final state"),
        (name = "drafts", description = "Posts saved without being sent or scheduled, published later through every check of a new post"),
        (name = "jobs", description = "The workspace's background jobs"),
        (name = "media", description = "The media library: files stored once per workspace by content, probed, checked against each target's rules"),
        (name = "uploads", description = "Resumable uploads (tus 1.0.0 core, creation, termination) that end in a media item"),
        (name = "webhooks", description = "Outbound webhooks (Standard Webhooks): endpoints, their deliveries and every attempt"),
        (name = "crm", description = "Creators and their accounts, contacts, interactions (with replies to Instagram comments), timelines and post metrics"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The document as served (built once).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of `/api/v1`", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// `application/problem+json` (RFC 9457), as [`Problem`] writes it.
impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "An error (RFC 9457). `type` is stable per kind of problem \
                 (`urn:tidepost:problem:<code>`); `detail` says what to change. Some problems add \
                 members, such as `field` for the invalid field.",
            ))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples([serde_json::json!("urn:tidepost:problem:not-found")]),
            )
            .required("type")
            .property(
                "title",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples([serde_json::json!("Not found")]),
            )
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599))
                    .examples([serde_json::json!(404)]),
            )
            .required("status")
            .property(
                "detail",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples([serde_json::json!("no such API key in this workspace")]),
            )
            .required("detail")
            .into()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}

/// What every operation shares, added once here rather than on each handler: the API-key
/// security scheme, the problem responses any route can give, `Idempotency-Key` on POSTs, and
/// `application/problem+json` as the media type of every `Problem` body.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tidepost API key")
                    .description(Some(
                        "An API key of the workspace (`Authorization: Bearer <key>`). Keys have \
                         scopes: `api` for everything below, `worker` for `POST /api/v1/jobs/run-due`.",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (false, &mut item.get),
                (false, &mut item.put),
                (true, &mut item.post),
                (false, &mut item.delete),
                (false, &mut item.patch),
            ];
            for (is_post, operation) in operations {
                if let Some(operation) = operation.as_mut() {
                    conventions(operation, is_post);
                    // utoipa names an operation after its handler, and several files have a
                    // `list` or a `show`: the tag makes the id unique and readable.
                    if let (Some(id), Some(tag)) = (
                        operation.operation_id.as_mut(),
                        operation.tags.as_ref().and_then(|t| t.first()),
                    ) {
                        let prefix = format!("{}_", tag.replace('-', "_"));
                        if !id.starts_with(&prefix) {
                            *id = format!("{prefix}{id}");
                        }
                    }
                }
            }
        }
    }
}

fn conventions(operation: &mut Operation, is_post: bool) {
    // `security(())` marks a public route: an empty requirement list entry.
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
    let mut common = vec![
        (
            "400",
            "The request is malformed (a query parameter, the JSON body)",
        ),
        (
            "500",
            "Something failed on the server (the log has the details)",
        ),
    ];
    if !public {
        common.push(("401", "No valid credential was sent"));
        common.push(("403", "The credential lacks the scope this route needs"));
    }
    let has_body = operation.request_body.is_some();
    let has_query = operation.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path))
    });
    if has_body {
        common.push(("413", "The body is larger than this route accepts"));
        common.push((
            "415",
            "The body is not in a media type this route takes (send `Content-Type: application/json`)",
        ));
    }
    if (has_body || has_query) && !is_post {
        common.push((
            "422",
            "A parameter or field is invalid (the detail says which)",
        ));
    }
    if is_post && !public {
        common.push((
            "409",
            "A request with the same Idempotency-Key is still running, or the request conflicts with the current state",
        ));
        common.push((
            "422",
            "The request is invalid (the detail says which field), or its Idempotency-Key was used for a different request",
        ));
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        if !parameters.iter().any(|p| p.name == "Idempotency-Key") {
            parameters.push(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .description(Some(
                        "A key of your choosing (1 to 255 visible ASCII characters) that makes \
                         this POST safe to retry: the first answer is stored for 24 hours and \
                         replayed, with `Idempotent-Replayed: true`, to any request with the same \
                         key, method, path and body.",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255)),
                    ))
                    .build(),
            );
        }
    }
    for (status, description) in common {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(description).into());
    }
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if let Some(content) = response.content.shift_remove("application/json") {
            let is_problem = matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
            let media_type = if is_problem {
                "application/problem+json"
            } else {
                "application/json"
            };
            response.content.insert(media_type.to_string(), content);
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                ))))
                .build(),
        )
        .build()
}

/// Every error under `/api/v1` is problem+json, including the ones axum's own extractors and
/// layers answer in plain text (a query string that does not parse, a body over the size
/// limit): their text becomes the problem's `detail`.
pub(crate) async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, title) = match status {
        StatusCode::BAD_REQUEST => ("bad-request", "Bad request"),
        // The same type as an upload over `max_upload_bytes` (posts.rs): one code for 413.
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid-request", "Invalid request"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("error", "Error"),
    };
    let detail = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string()
    } else {
        text
    };
    let mut problem = Problem::new(status, code, title, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_conventions() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["components"]["schemas"]["Problem"]["type"], "object");
        let me = &doc["paths"]["/api/v1/me"]["get"];
        assert_eq!(
            me["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        let public = &doc["paths"]["/api/v1/openapi.json"]["get"];
        assert!(public["responses"].get("401").is_none(), "{public}");
    }
}
