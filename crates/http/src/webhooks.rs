//! Inbound provider webhooks. `POST /webhooks/tiktok`: the raw body is verified, then stored
//! and queued (the event and its job in one transaction, grouped with concurrent deliveries)
//! by `tidepost_app::publish::webhooks::receive` before the 200; a bad or missing
//! signature gets 401 and a stale timestamp 400, each counted in
//! `tidepost_webhooks_rejected_total{provider,reason}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tidepost_app::tiktok::webhooks;

use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/webhooks/tiktok", post(tiktok))
}

async fn tiktok(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("tiktok-signature")
        .and_then(|v| v.to_str().ok());
    let now_secs = tidepost_domain::now_ms() / 1000;
    match webhooks::receive(&state.app, signature, &body, now_secs).await {
        Ok(receipt) => {
            metrics::counter!("tidepost_webhooks_received_total", "provider" => "tiktok", "duplicate" => receipt.duplicate.to_string())
                .increment(1);
            (
                StatusCode::OK,
                axum::Json(json!({"received": true, "duplicate": receipt.duplicate})),
            )
                .into_response()
        }
        Err(err) => {
            metrics::counter!("tidepost_webhooks_rejected_total", "provider" => "tiktok", "reason" => err.reason()).increment(1);
            tracing::warn!(reason = err.reason(), "TikTok webhook refused: {err}");
            match err.reason() {
                "missing_signature" | "bad_signature" => {
                    Problem::unauthorized(err.to_string()).into_response()
                }
                "outside_window" => Problem::bad_request(err.to_string()).into_response(),
                "malformed" => Problem::bad_request(err.to_string()).into_response(),
                "not_configured" => Problem::not_found("webhook endpoint").into_response(),
                // The sender retries a 5xx: nothing is lost.
                _ => Problem::internal(err).into_response(),
            }
        }
    }
}
