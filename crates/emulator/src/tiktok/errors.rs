//! TikTok's two answer shapes: the v2 envelope `{"data": …, "error": {"code","message","log_id"}}`
//! and the flat OAuth error `{"error","error_description","log_id"}`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// An error in the v2 envelope.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// Content Posting spelling (singular).
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_param", message)
    }

    /// Generic / Display API spelling (plural).
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_params", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn token_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        )
    }

    pub fn scope_not_authorized(scopes: &[&str]) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "scope_not_authorized",
            format!(
                "The user did not authorize the scope required for completing this request: {}.",
                scopes.join(" or ")
            ),
        )
    }

    pub fn rate_limited(retry_after_secs: Option<u64>) -> Self {
        Self {
            retry_after_secs,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "The API rate limit was exceeded. Please try again later.",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong. Please try again later.",
        )
    }

    /// The same error answered with HTTP 200 (creator_info's documented cap errors).
    pub fn with_http_200(self) -> Self {
        Self {
            status: StatusCode::OK,
            ..self
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "data": {},
            "error": {"code": self.code, "message": self.message, "log_id": log_id()},
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A success in the v2 envelope.
pub(crate) fn ok(data: impl Serialize) -> Response {
    Json(json!({"data": data, "error": ok_error()})).into_response()
}

/// The envelope for a handler's result.
pub(crate) fn respond<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(data) => ok(data),
        Err(error) => error.into_response(),
    }
}

/// A success with no `data` (cancel).
pub(crate) fn ok_without_data() -> Response {
    Json(json!({"error": ok_error()})).into_response()
}

fn ok_error() -> serde_json::Value {
    json!({"code": "ok", "message": "", "log_id": log_id()})
}

/// Answer for a documented path called with the wrong method.
pub(crate) async fn method_not_allowed() -> Response {
    let mut error = ApiError::invalid_param("The HTTP method is not supported by this endpoint.");
    error.status = StatusCode::METHOD_NOT_ALLOWED;
    error.into_response()
}

/// A flat OAuth error (token and revoke endpoints).
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub error: &'static str,
    pub description: String,
    /// Answer with HTTP 200, as TikTok was seen doing.
    pub http_200: bool,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            http_200: false,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match (self.http_200, self.error) {
            (true, _) => StatusCode::OK,
            (false, "invalid_client") => StatusCode::UNAUTHORIZED,
            (false, "server_error") => StatusCode::INTERNAL_SERVER_ERROR,
            (false, _) => StatusCode::BAD_REQUEST,
        };
        let body =
            json!({"error": self.error, "error_description": self.description, "log_id": log_id()});
        (status, Json(body)).into_response()
    }
}

/// A log id like TikTok's: UTC `YYYYMMDDHHMMSS` followed by 20 uppercase hex digits.
pub(crate) fn log_id() -> String {
    use rand::Rng;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let suffix: [u8; 10] = rand::rng().random();
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}{}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        hex::encode_upper(suffix)
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_358), (2023, 1, 1));
        assert_eq!(log_id().len(), 34);
    }
}
