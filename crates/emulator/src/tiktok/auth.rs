//! The gate in front of every v2 endpoint: injected faults (latency, 5xx, 429), the bearer
//! token check, the scope check and the per-token sliding-window rate limit. Also the JSON body
//! extractor that turns malformed bodies into TikTok's `invalid_param`.

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::App;
use super::errors::ApiError;
use super::state::Endpoint;
use crate::faults::{FaultSet, Provider};

/// The caller behind a valid access token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub open_id: String,
    pub scopes: Vec<String>,
}

impl Session {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn require_scope(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::scope_not_authorized(&[scope]))
        }
    }
}

impl App {
    /// The current TikTok fault knobs, with the added latency already waited out.
    pub async fn faults(&self) -> FaultSet {
        let faults = self.ctx.faults.get(Provider::Tiktok);
        if faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        self.store().apply_revoke_all(faults.revoke_all_tokens);
        faults
    }

    /// Checks faults, token, scope and rate limit for one call of `endpoint`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        endpoint: Endpoint,
    ) -> Result<Session, ApiError> {
        let faults = self.faults().await;
        if faults.roll_server_error() {
            return Err(ApiError::internal());
        }
        if faults.roll_rate_limit() {
            return Err(ApiError::rate_limited(faults.retry_after_secs));
        }
        let token = bearer(headers).ok_or_else(ApiError::token_invalid)?;
        let now = self.now_ms();
        let mut store = self.store();
        let session = match store.access_tokens.get(token) {
            Some(t) if !t.revoked && now < t.expires_at_ms => Session {
                open_id: t.open_id.clone(),
                scopes: t.scopes.clone(),
            },
            _ => return Err(ApiError::token_invalid()),
        };
        let needed = endpoint.scopes();
        if !needed.is_empty() && !needed.iter().any(|s| session.has_scope(s)) {
            return Err(ApiError::scope_not_authorized(needed));
        }
        if !store.admit(token, endpoint, now) {
            return Err(ApiError::rate_limited(None));
        }
        Ok(session)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A JSON request body; anything malformed becomes `invalid_param`. An empty body reads as `{}`.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::invalid_param(format!(
                "The request body could not be read: {}",
                e.body_text()
            ))
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid_param(format!("The request body is not valid: {e}")))
    }
}
