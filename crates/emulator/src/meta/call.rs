//! One entry point for every Graph request on both hosts: read the parameters (query string,
//! urlencoded or multipart form, or JSON body, as Meta accepts), apply the fault knobs, dispatch
//! to the node handlers, and answer with Graph's JSON plus the usage headers.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::{self, GraphError, GraphResult, Host};
use super::fields::{self, FieldSpec};
use super::graph::{self, Node};
use super::state::{Meta, Token};
use super::{engagement, oauth, publishing};
use crate::faults::FaultSet;

const MAX_BODY: usize = 4 * 1024 * 1024;

/// Request parameters from the query string and the body, in order (query first).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn push_query(&mut self, query: &str) {
        self.0
            .extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    }

    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name` (repeated form fields).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `name`, or Meta's "The parameter … is required".
    pub fn require(&self, name: &str) -> GraphResult<&str> {
        self.get(name).ok_or_else(|| errors::missing_param(name))
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`), or a code-100 error.
    pub fn flag(&self, name: &str) -> GraphResult<Option<bool>> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(errors::invalid_param(format!(
                "Param {name} must be a boolean, got {other:?}"
            ))),
        }
    }

    /// Every pair except the named ones (for paging URLs).
    pub fn without(&self, names: &[&str]) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !names.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    fn push_json(&mut self, body: &[u8]) -> GraphResult<()> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| errors::invalid_param("The request body is not valid JSON"))?;
        let Value::Object(map) = value else {
            return Err(errors::invalid_param(
                "The request body must be a JSON object",
            ));
        };
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s,
                Value::Array(items) if items.iter().all(|i| i.is_string() || i.is_number()) => {
                    items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| i.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                }
                Value::Null => continue,
                other => other.to_string(),
            };
            self.0.push((key, text));
        }
        Ok(())
    }

    async fn push_multipart(&mut self, content_type: &str, body: bytes::Bytes) -> GraphResult<()> {
        let bad = || errors::invalid_param("Malformed multipart body");
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .map_err(|_| bad())?;
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|_| bad())?;
        while let Some(field) = multipart.next_field().await.map_err(|_| bad())? {
            let name = field.name().unwrap_or_default().to_string();
            let text = field.text().await.map_err(|_| bad())?;
            self.0.push((name, text));
        }
        Ok(())
    }
}

/// A request as the handlers see it.
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub params: Params,
}

impl Incoming {
    /// Reads query and body parameters; a malformed body is a code-100 error.
    pub async fn read(req: Request) -> GraphResult<Self> {
        let (parts, body) = req.into_parts();
        let mut params = Params::default();
        if let Some(query) = parts.uri.query() {
            params.push_query(query);
        }
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            errors::invalid_param("The request body is too large or was interrupted")
        })?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !body.is_empty() {
            match mime.as_str() {
                "application/json" => params.push_json(&body)?,
                "multipart/form-data" => params.push_multipart(content_type, body).await?,
                "application/x-www-form-urlencoded" | "" | "text/plain" => {
                    params.push_query(std::str::from_utf8(&body).unwrap_or(""))
                }
                _ => {}
            }
        }
        Ok(Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            params,
        })
    }
}

/// The one token extractor: `Authorization: Bearer|OAuth <token>` or the `access_token` parameter.
pub fn access_token(headers: &HeaderMap, params: &Params) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
                .then(|| token.trim().to_string())
        });
    from_header.or_else(|| params.get("access_token").map(str::to_string))
}

/// A Graph request being answered.
pub struct Call {
    pub meta: Meta,
    pub host: Host,
    pub method: Method,
    pub version: Option<String>,
    pub segments: Vec<String>,
    pub params: Params,
    pub headers: HeaderMap,
}

impl Call {
    fn new(meta: Meta, host: Host, incoming: Incoming) -> Self {
        let rest = incoming.path.strip_prefix(host.prefix()).unwrap_or("");
        let mut segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let version = segments.first().filter(|s| is_version(s)).cloned();
        if version.is_some() {
            segments.remove(0);
        }
        Self {
            meta,
            host,
            method: incoming.method,
            version,
            segments,
            params: incoming.params,
            headers: incoming.headers,
        }
    }

    pub fn token_value(&self) -> Option<String> {
        access_token(&self.headers, &self.params)
    }

    /// The caller's token, valid on this host, or the documented 104/190 error.
    pub fn auth(&self) -> GraphResult<Token> {
        self.meta
            .authenticate(self.token_value().as_deref(), self.host)
    }

    /// The `fields` parameter, or `defaults` when absent.
    pub fn fields(&self, defaults: &[&str]) -> Vec<FieldSpec> {
        fields::requested(self.params.get("fields"), defaults)
    }

    /// This request's URL with `extra` parameters replacing paging ones (for `paging.next`).
    pub fn url_with(&self, extra: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.params.without(&["after", "before"]) {
            query.append_pair(&k, &v);
        }
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        let version = self
            .version
            .as_deref()
            .map(|v| format!("/{v}"))
            .unwrap_or_default();
        format!(
            "{}{}{}/{}?{}",
            self.meta.ctx.base_url,
            self.host.prefix(),
            version,
            self.segments.join("/"),
            query.finish()
        )
    }
}

fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let major_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let minor_ok = parts
        .next()
        .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    major_ok && minor_ok && parts.next().is_none()
}

pub async fn facebook_graph(State(meta): State<Meta>, req: Request) -> Response {
    handle(meta, Host::Facebook, req).await
}

pub async fn instagram_graph(State(meta): State<Meta>, req: Request) -> Response {
    handle(meta, Host::Instagram, req).await
}

/// Sleeps for the injected latency, if any.
pub async fn apply_latency(faults: &FaultSet) {
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
}

async fn handle(meta: Meta, host: Host, req: Request) -> Response {
    let faults = meta.faults();
    apply_latency(&faults).await;
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(err) => return err.render(host),
    };
    let call = Call::new(meta, host, incoming);
    let budget = call.meta.settings().hourly_call_budget;
    let now = call.meta.now_ms();
    let mut usage = call.meta.store(|s| s.record_call(now, budget));
    let result = match injected_fault(&faults, &call) {
        Some(err) => Err(err),
        None => dispatch(&call).await,
    };
    let mut response = match result {
        Ok(value) => Json(value).into_response(),
        Err(err) => {
            if err.is_usage_exhausted() {
                usage = 100;
            }
            err.render(host)
        }
    };
    add_usage_headers(&call, &mut response, usage);
    response
}

fn injected_fault(faults: &FaultSet, call: &Call) -> Option<GraphError> {
    if faults.roll_server_error() {
        return Some(errors::server_error());
    }
    if faults.roll_rate_limit() {
        let app_token = call.token_value().is_none_or(|t| t.contains('|'));
        return Some(errors::rate_limited(!app_token));
    }
    None
}

/// `X-App-Usage` always; `X-Business-Use-Case-Usage` keyed by the Instagram account in play.
fn add_usage_headers(call: &Call, response: &mut Response, usage: u64) {
    let app = json!({"call_count": usage, "total_time": usage / 2, "total_cputime": usage / 3});
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&app.to_string()) {
        headers.insert("x-app-usage", value);
    }
    if let Some(version) = call
        .version
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert("facebook-api-version", version);
    }
    let Some(owner) = buc_owner(call) else { return };
    let regain = if usage >= 100 {
        call.meta
            .faults()
            .retry_after_secs
            .unwrap_or(60)
            .div_ceil(60)
            .max(1)
    } else {
        0
    };
    let buc = json!({ owner: [{
        "type": "instagram",
        "call_count": usage,
        "total_cputime": usage / 3,
        "total_time": usage / 2,
        "estimated_time_to_regain_access": regain,
    }]});
    if let Ok(value) = HeaderValue::from_str(&buc.to_string()) {
        headers.insert("x-business-use-case-usage", value);
    }
}

fn buc_owner(call: &Call) -> Option<String> {
    let first = call.segments.first()?;
    let token = call.token_value();
    call.meta.store(|s| {
        if s.ig_account(first).is_some() {
            return Some(first.clone());
        }
        let token = s.tokens.get(token.as_deref()?)?;
        s.token_ig_user(token)
    })
}

async fn dispatch(call: &Call) -> GraphResult {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match (call.host, segments.as_slice()) {
        (Host::Facebook, ["oauth", "access_token"]) => oauth::fb_access_token(call),
        (Host::Facebook, ["debug_token"]) => graph::debug_token(call),
        (Host::Instagram, ["access_token"]) => oauth::ig_exchange_token(call),
        (Host::Instagram, ["refresh_access_token"]) => oauth::ig_refresh_token(call),
        (_, [id]) => node_request(call, id, None).await,
        (_, [id, edge]) => node_request(call, id, Some(edge)).await,
        _ => Err(errors::unknown_path()),
    }
}

async fn node_request(call: &Call, id: &str, edge: Option<&str>) -> GraphResult {
    let token = call.auth()?;
    let method = call.method.as_str();
    let node = call
        .meta
        .store(|s| graph::resolve(s, &token, id))
        .ok_or_else(|| errors::unknown_object(id, method))?;
    if let (Node::IgUser(ig), Some(_)) = (&node, edge) {
        graph::require_professional(call, ig)?;
    }
    let get = call.method == Method::GET;
    let post = call.method == Method::POST;
    match (&node, edge) {
        (Node::FbUser, None) if get => graph::fb_user(call),
        (Node::FbUser, Some("permissions")) if get => graph::permissions(call, &token),
        (Node::FbUser, Some("permissions")) if call.method == Method::DELETE => {
            graph::revoke_permissions(call, &token)
        }
        (Node::FbUser, Some("accounts")) if get => graph::accounts(call, &token),
        (Node::Page(page), None) if get => graph::page(call, &token, page),
        (Node::Page(_) | Node::IgUser(_), Some("subscribed_apps")) => graph::subscribed_apps(call),
        (Node::IgUser(ig), None) if get => graph::ig_user(call, ig),
        (Node::IgUser(ig), Some("media")) if get => publishing::list_media(call, ig, false),
        (Node::IgUser(ig), Some("stories")) if get => publishing::list_media(call, ig, true),
        (Node::IgUser(ig), Some("media")) if post => {
            publishing::create_container(call, &token, ig).await
        }
        (Node::IgUser(ig), Some("media_publish")) if post => publishing::publish(call, &token, ig),
        (Node::IgUser(ig), Some("content_publishing_limit")) if get => {
            publishing::publishing_limit(call, ig)
        }
        (Node::IgUser(ig), Some("insights")) if get => {
            engagement::account_insights(call, &token, ig)
        }
        (Node::Container(id), None) if get => publishing::container(call, id),
        (Node::Media(id), None) if get => publishing::media(call, id),
        (Node::Media(id), Some("children")) if get => publishing::children(call, id),
        (Node::Media(id), Some("insights")) if get => engagement::insights(call, &token, id),
        (Node::Media(id), Some("comments")) if get => engagement::list_comments(call, &token, id),
        (Node::Media(id), Some("comments")) if post => {
            engagement::add_comment(call, &token, id, None)
        }
        (Node::Comment(id), None) if get => engagement::comment(call, id),
        (Node::Comment(id), Some("replies")) if get => engagement::list_replies(call, &token, id),
        (Node::Comment(id), Some("replies")) if post => {
            engagement::add_comment(call, &token, id, Some(id))
        }
        (_, None) => Err(errors::unknown_object(id, method)),
        (_, Some(edge)) if node.edges().contains(&edge) => Err(errors::unsupported_method(method)),
        (_, Some(edge)) => Err(errors::nonexisting_field(edge, node.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::is_version;

    #[test]
    fn recognises_versions() {
        assert!(is_version("v21.0"));
        assert!(is_version("v25.0"));
        assert!(is_version("v3"));
        assert!(!is_version("me"));
        assert!(!is_version("v21."));
        assert!(!is_version("v21.0.1"));
    }
}
