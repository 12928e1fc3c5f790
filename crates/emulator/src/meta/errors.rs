//! Graph API errors: one type, rendered in Graph's envelope
//! `{"error":{message,type,code,error_subcode,error_user_title,error_user_msg,is_transient,fbtrace_id}}`
//! with `type` = `OAuthException` (or `GraphMethodException`) on graph.facebook.com and
//! `IGApiException` on graph.instagram.com. The api.instagram.com token endpoint uses the legacy
//! flat shape, see [`legacy_error`].

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::time::http_date;

/// Which Graph host answers: decides the error `type` and which tokens are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// graph.facebook.com (Facebook Login tokens).
    Facebook,
    /// graph.instagram.com (Instagram Login tokens).
    Instagram,
}

impl Host {
    /// The emulator path prefix standing for this host.
    pub fn prefix(self) -> &'static str {
        match self {
            Host::Facebook => "/meta/graph",
            Host::Instagram => "/meta/ig-graph",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OAuth,
    GraphMethod,
}

/// A Graph API error, built with the constructors below and rendered per host (boxed: it
/// travels in every `Result`).
#[derive(Debug, Clone)]
pub struct GraphError(Box<Fields>);

#[derive(Debug, Clone)]
struct Fields {
    status: StatusCode,
    kind: Kind,
    code: i64,
    subcode: Option<i64>,
    message: String,
    user_title: Option<String>,
    user_msg: Option<String>,
    is_transient: Option<bool>,
    www_authenticate: Option<String>,
    usage_exhausted: bool,
}

pub type GraphResult<T = Value> = Result<T, GraphError>;

impl GraphError {
    /// A 400 `OAuthException` with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self(Box::new(Fields {
            status: StatusCode::BAD_REQUEST,
            kind: Kind::OAuth,
            code,
            subcode: None,
            message: message.into(),
            user_title: None,
            user_msg: None,
            is_transient: None,
            www_authenticate: None,
            usage_exhausted: false,
        }))
    }

    pub fn subcode(mut self, subcode: i64) -> Self {
        self.0.subcode = Some(subcode);
        self
    }

    pub fn user(mut self, title: impl Into<String>, msg: impl Into<String>) -> Self {
        self.0.user_title = Some(title.into());
        self.0.user_msg = Some(msg.into());
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    pub fn transient(mut self, transient: bool) -> Self {
        self.0.is_transient = Some(transient);
        self
    }

    fn method_exception(mut self) -> Self {
        self.0.kind = Kind::GraphMethod;
        self
    }

    fn token_error(mut self, detail: &str) -> Self {
        self.0.www_authenticate = Some(format!(
            "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
            detail.replace('"', "'")
        ));
        self
    }

    /// Marks a rate-limit error: the usage headers then report 100 %.
    pub fn usage_exhausted(mut self) -> Self {
        self.0.usage_exhausted = true;
        self
    }

    pub fn is_usage_exhausted(&self) -> bool {
        self.0.usage_exhausted
    }

    pub fn code(&self) -> i64 {
        self.0.code
    }

    /// `{code, message, subcode?}`, as `debug_token` reports an invalid token.
    pub fn describe(&self) -> Value {
        let mut out = json!({"code": self.0.code, "message": self.0.message});
        if let Some(subcode) = self.0.subcode {
            out["subcode"] = json!(subcode);
        }
        out
    }

    /// The response for `host`, with a fresh `fbtrace_id`.
    pub fn render(&self, host: Host) -> Response {
        let kind = match (host, self.0.kind) {
            (Host::Instagram, _) => "IGApiException",
            (Host::Facebook, Kind::OAuth) => "OAuthException",
            (Host::Facebook, Kind::GraphMethod) => "GraphMethodException",
        };
        let trace = trace_id();
        let mut error = Map::new();
        error.insert("message".into(), json!(self.0.message));
        error.insert("type".into(), json!(kind));
        error.insert("code".into(), json!(self.0.code));
        if let Some(subcode) = self.0.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        if let Some(transient) = self.0.is_transient {
            error.insert("is_transient".into(), json!(transient));
        }
        if let Some(title) = &self.0.user_title {
            error.insert("error_user_title".into(), json!(title));
        }
        if let Some(msg) = &self.0.user_msg {
            error.insert("error_user_msg".into(), json!(msg));
        }
        error.insert("fbtrace_id".into(), json!(trace));
        let mut response = (self.0.status, Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        if let Some(value) = self
            .0
            .www_authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert("www-authenticate", value);
        }
        if let Ok(value) = HeaderValue::from_str(&trace) {
            headers.insert("x-fb-trace-id", value);
        }
        response
    }
}

/// A random `fbtrace_id`-like string.
pub fn trace_id() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(11)
        .map(char::from)
        .collect()
}

/// The legacy api.instagram.com error: `{"error_type":"OAuthException","code":400,"error_message":..}`.
pub fn legacy_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error_type": "OAuthException", "code": 400, "error_message": message})),
    )
        .into_response()
}

// ---- the errors Meta documents, one constructor each ----

pub fn missing_param(name: &str) -> GraphError {
    GraphError::new(100, format!("The parameter {name} is required"))
}

pub fn invalid_param(message: impl Into<String>) -> GraphError {
    GraphError::new(100, format!("(#100) {}", message.into()))
}

pub fn token_required() -> GraphError {
    GraphError::new(104, "An access token is required to request this resource.")
}

pub fn invalid_token() -> GraphError {
    let message = "Invalid OAuth access token - Cannot parse access token";
    GraphError::new(190, message).token_error(message)
}

pub fn token_expired(expired_ms: i64, now_ms: i64) -> GraphError {
    let message = format!(
        "Error validating access token: Session has expired on {}. The current time is {}.",
        http_date(expired_ms / 1000),
        http_date(now_ms / 1000)
    );
    GraphError::new(190, &message)
        .subcode(463)
        .token_error(&message)
}

pub fn token_revoked(app_id: &str) -> GraphError {
    let message =
        format!("Error validating access token: The user has not authorized application {app_id}.");
    GraphError::new(190, &message)
        .subcode(458)
        .token_error(&message)
}

pub fn password_changed() -> GraphError {
    let message = "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.";
    GraphError::new(190, message)
        .subcode(460)
        .token_error(message)
}

pub fn permission_missing(code: i64, scope: &str) -> GraphError {
    let message = if code == 10 {
        "(#10) Application does not have permission for this action".to_string()
    } else {
        format!("(#{code}) Requires {scope} permission to manage the object")
    };
    GraphError::new(code, message).user(
        "Missing permission",
        format!("The permission {scope} was not granted."),
    )
}

pub fn unknown_object(id: &str, method: &str) -> GraphError {
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    if numeric || id == "me" {
        GraphError::new(
            100,
            format!(
                "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                method.to_ascii_lowercase()
            ),
        )
        .subcode(33)
        .method_exception()
    } else {
        GraphError::new(
            803,
            format!("(#803) Some of the aliases you requested do not exist: {id}"),
        )
    }
}

pub fn unsupported_method(method: &str) -> GraphError {
    GraphError::new(
        100,
        format!(
            "Unsupported request - method type: {}",
            method.to_ascii_lowercase()
        ),
    )
}

pub fn nonexisting_field(field: &str, node_type: &str) -> GraphError {
    GraphError::new(
        100,
        format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"),
    )
}

pub fn unknown_path() -> GraphError {
    GraphError::new(2500, "Unknown path components").status(StatusCode::BAD_REQUEST)
}

pub fn server_error() -> GraphError {
    GraphError::new(
        2,
        "An unexpected error has occurred. Please retry your request later.",
    )
    .status(StatusCode::INTERNAL_SERVER_ERROR)
    .transient(true)
}

pub fn rate_limited(user_token: bool) -> GraphError {
    let error = if user_token {
        GraphError::new(17, "(#17) User request limit reached")
    } else {
        GraphError::new(4, "(#4) Application request limit reached")
    };
    error.transient(true).usage_exhausted()
}

pub fn client_secret_invalid() -> GraphError {
    GraphError::new(1, "Error validating client secret.")
}

pub fn app_invalid() -> GraphError {
    GraphError::new(101, "Error validating application. Invalid application ID.")
}
