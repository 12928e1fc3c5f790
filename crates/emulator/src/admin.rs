//! The provider-independent admin API under `/_emulator`: fault knobs, the clock, the request
//! log and webhook deliveries. Provider-specific admin routes (minting credentials, inspecting
//! uploads and publishes) live in each provider's module under `/_emulator/tiktok` and
//! `/_emulator/meta`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::ctx::Ctx;
use crate::faults::{FaultSet, Provider};

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route(
            "/_emulator/faults/{provider}",
            put(set_faults).get(get_faults).delete(clear_faults),
        )
        .route("/_emulator/clock", get(get_clock))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/requests", get(requests).delete(clear_requests))
        .route("/_emulator/webhooks", get(webhooks))
        .route("/_emulator/webhooks/flush", post(flush_webhooks))
        .with_state(ctx)
}

fn parse_provider(name: &str) -> Result<Provider, Box<Response>> {
    match name {
        "tiktok" => Ok(Provider::Tiktok),
        "meta" | "instagram" => Ok(Provider::Meta),
        "threads" => Ok(Provider::Threads),
        other => Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("unknown provider {other:?}")})),
            )
                .into_response(),
        )),
    }
}

async fn set_faults(
    State(ctx): State<Ctx>,
    Path(provider): Path<String>,
    body: Result<Json<FaultSet>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let provider = match parse_provider(&provider) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match body {
        Ok(Json(set)) => {
            ctx.faults.set(provider, set.clone());
            Json(set).into_response()
        }
        Err(rejection) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": rejection.body_text()})),
        )
            .into_response(),
    }
}

async fn get_faults(State(ctx): State<Ctx>, Path(provider): Path<String>) -> Response {
    match parse_provider(&provider) {
        Ok(p) => Json(ctx.faults.get(p)).into_response(),
        Err(r) => *r,
    }
}

async fn clear_faults(State(ctx): State<Ctx>, Path(provider): Path<String>) -> Response {
    match parse_provider(&provider) {
        Ok(p) => {
            ctx.faults.set(p, FaultSet::default());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => *r,
    }
}

async fn get_clock(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    Json(json!({"now_ms": ctx.clock.now_ms(), "offset_ms": ctx.clock.offset_ms()}))
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(
    State(ctx): State<Ctx>,
    Json(advance): Json<Advance>,
) -> Json<serde_json::Value> {
    ctx.clock.advance(Duration::from_secs(advance.seconds));
    Json(json!({"now_ms": ctx.clock.now_ms(), "offset_ms": ctx.clock.offset_ms()}))
}

async fn requests(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    let log = ctx.requests.lock().expect("request log lock").clone();
    Json(json!({ "requests": log }))
}

async fn clear_requests(State(ctx): State<Ctx>) -> StatusCode {
    ctx.requests.lock().expect("request log lock").clear();
    StatusCode::NO_CONTENT
}

async fn webhooks(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    Json(json!({ "attempts": ctx.webhooks.attempts() }))
}

async fn flush_webhooks(State(ctx): State<Ctx>) -> StatusCode {
    ctx.webhooks.flush_held();
    StatusCode::NO_CONTENT
}
