//! `POST /v2/video/query/?fields=…` (Display API, scope `video.list`): the creator's own
//! published public videos by id (at most 20), with only the requested fields. The counts grow
//! with emulated time since the post completed (fast the first day, then levelling off), so a
//! client sampling them over emulated days sees a series.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::JsonBody;
use super::errors::{ApiError, respond};
use super::state::{Endpoint, Publish};
use super::{App, video_fields};

const MAX_IDS: usize = 20;

/// 0 at completion, ~0.63 after a day, approaching 1.
fn growth(done_ms: i64, now_ms: i64) -> f64 {
    let hours = (now_ms - done_ms).max(0) as f64 / 3_600_000.0;
    1.0 - (-hours / 24.0).exp()
}

/// The views a video levels off at: 3,000 to 8,000, fixed per video.
fn ceiling(id: u64) -> f64 {
    (3_000 + id % 5_000) as f64
}

fn counts(id: u64, done_ms: i64, now_ms: i64) -> (u64, u64, u64, u64) {
    let views = (ceiling(id) * growth(done_ms, now_ms)).round() as u64;
    (views, views / 12, views / 150, views / 200)
}

fn field(publish: &Publish, id: u64, name: &str, now_ms: i64) -> Value {
    if let Some(value) = video_fields::fixed(id, name) {
        return value;
    }
    let done = publish.completed_ms.unwrap_or(publish.created_ms);
    let (views, likes, comments, shares) = counts(id, done, now_ms);
    let title = publish
        .post_info
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match name {
        "title" | "video_description" => json!(title),
        "create_time" => json!(done / 1000),
        "like_count" => json!(likes),
        "comment_count" => json!(comments),
        "share_count" => json!(shares),
        "view_count" => json!(views),
        _ => Value::Null,
    }
}

pub(crate) async fn query(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let result = async {
        let session = app.authorize(&headers, Endpoint::VideoQuery).await?;
        let JsonBody(body) = body?;
        let fields = video_fields::requested(raw.as_deref())?;
        let ids: Vec<String> = body
            .pointer("/filters/video_ids")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::invalid_params("filters.video_ids is required."))?
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid_params("filters.video_ids must be a list of video ids.")
            })?;
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ApiError::invalid_params(format!(
                "filters.video_ids must hold 1 to {MAX_IDS} ids."
            )));
        }
        let now = app.now_ms();
        let store = app.store();
        let mut videos = Vec::new();
        for wanted in &ids {
            let Ok(id) = wanted.parse::<u64>() else {
                continue;
            };
            let Some(publish) = store.publishes.iter().find(|p| {
                p.open_id == session.open_id && p.is_public() && p.post_ids.contains(&id)
            }) else {
                continue;
            };
            videos.push(video_fields::video(&fields, |name| {
                field(publish, id, name, now)
            }));
        }
        Ok(json!({ "videos": videos }))
    }
    .await;
    respond(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_grow_and_level_off() {
        let hour = 3_600_000;
        let (v1, ..) = counts(42, 0, hour);
        let (v24, likes, ..) = counts(42, 0, 24 * hour);
        let (v30d, ..) = counts(42, 0, 30 * 24 * hour);
        assert!(v1 < v24 && v24 < v30d, "{v1} {v24} {v30d}");
        assert!(v30d <= ceiling(42) as u64);
        assert!(v24 >= 1_000, "a day is enough for the first milestone");
        assert_eq!(likes, v24 / 12);
        assert_eq!(counts(42, 0, 0).0, 0);
    }
}
