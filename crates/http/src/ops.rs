//! Operational routes: `/healthz` (the process is up), `/readyz` (the database answers and its
//! schema is current; ffprobe's presence and the media storage are reported beside it), `/metrics` (Prometheus text),
//! and the request-metrics middleware.

use std::any::Any;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness. The database decides it: without a current schema nothing works, so the answer
/// is 503 and a load balancer sends no traffic here.
///
/// ffprobe is reported but does not make the instance unready: without it only video uploads
/// fail (with a 503 naming the fix), while the API, images, OAuth, webhooks and publishing of
/// media already stored keep working, and taking every instance out of rotation for a missing
/// tool would turn a partial outage into a full one. So a missing ffprobe answers **200** with
/// `"status": "degraded"` and `"ffprobe": {"available": false, "error": …}`, which monitoring
/// can alert on. (`ffprobe -version` runs on each request; it takes milliseconds.)
async fn readyz(State(state): State<HttpState>) -> Response {
    let db = &state.app.db;
    let result = match db.ping().await {
        Ok(()) => db.ensure_current().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let (status, ffprobe) = match tidepost_app::media::prober(&state.app).check().await {
                Ok(version) => ("ready", json!({"available": true, "version": version})),
                Err(err) => {
                    tracing::warn!(error = %err, "ffprobe is unavailable: video uploads will fail");
                    (
                        "degraded",
                        json!({
                            "available": false,
                            "error": err.to_string(),
                        }),
                    )
                }
            };
            let (status, storage) = storage_readiness(&state, status).await;
            axum::Json(json!({
                "status": status,
                "database": db.dialect().name(),
                "ffprobe": ffprobe,
                "storage": storage,
            }))
            .into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Not ready",
                err.to_string(),
            );
            p = p.with("database", db.dialect().name());
            p.into_response()
        }
    }
}

/// Whether the media storage answers: a `HEAD` of an object no content has (the answer must be
/// "not found"; refused credentials, a missing bucket or an unreachable endpoint say otherwise).
/// Like ffprobe it degrades rather than fails readiness: without the storage, uploads and sends
/// of stored media fail with the reason, while the rest keeps working.
async fn storage_readiness(
    state: &HttpState,
    status: &'static str,
) -> (&'static str, serde_json::Value) {
    let storage = tidepost_app::media::storage(&state.app);
    match tidepost_app::media::storage_problem(&state.app).await {
        None => (status, json!({"at": storage.describe(), "available": true})),
        Some(err) => {
            tracing::warn!(error = %err, "the media storage is unavailable");
            (
                "degraded",
                json!({"at": storage.describe(), "available": false, "error": err}),
            )
        }
    }
}

async fn metrics_text(State(state): State<HttpState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Counts requests and measures their latency by route template (never by raw path, which
/// would carry ids).
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("tidepost_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("tidepost_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A handler that panicked answers 500 without its message (which may hold anything).
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    Problem::internal(format!("handler panicked: {message}")).into_response()
}
