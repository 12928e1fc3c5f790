//! `POST /v2/video/list/?fields=…` (Display API, scope `video.list`): the creator's own public
//! videos, newest first, `max_count` (1 to 20, default 20) at a time, with only the requested
//! fields. A video is a public publish that finished moderation (it has a public post id):
//! private (`SELF_ONLY`, followers, friends) posts and inbox drafts are not listed, as on TikTok.
//!
//! The `cursor` is a time in milliseconds: a page lists the videos created before it, and the
//! answer's `cursor` is the creation time of the page's last video. A page never ends inside a
//! group of videos created in the same millisecond (it stops before the group instead), so the
//! next page, which starts strictly before the cursor, skips none of them.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::JsonBody;
use super::errors::{ApiError, respond};
use super::state::{Endpoint, Publish};
use super::{App, video_fields};

/// TikTok's documented maximum (and the default) of videos per page.
pub(crate) const MAX_COUNT: i64 = 20;

/// When the video was created on TikTok: when its publish completed.
fn created_ms(publish: &Publish) -> i64 {
    publish.completed_ms.unwrap_or(publish.created_ms)
}

fn text(publish: &Publish, key: &str) -> Option<String> {
    publish
        .post_info
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn field(publish: &Publish, id: u64, name: &str) -> Value {
    if let Some(value) = video_fields::fixed(id, name) {
        return value;
    }
    // A video's title is its caption; a photo post's caption is its description.
    let title = text(publish, "title");
    let description = text(publish, "description");
    match name {
        "title" => json!(title.clone().or(description.clone()).unwrap_or_default()),
        "video_description" => json!(description.or(title).unwrap_or_default()),
        "create_time" => json!(created_ms(publish) / 1000),
        // The counts are the query endpoint's business; the list reports them as zero.
        "like_count" | "comment_count" | "share_count" | "view_count" => json!(0),
        _ => Value::Null,
    }
}

/// One page of `videos` (newest first, as `(created ms, id)`): the indexes it holds, the next
/// cursor and whether more follow.
pub(crate) fn page(videos: &[(i64, u64)], cursor: Option<i64>, max: usize) -> (Vec<usize>, bool) {
    let start: Vec<usize> = (0..videos.len())
        .filter(|&i| cursor.is_none_or(|c| videos[i].0 < c))
        .collect();
    let mut taken: Vec<usize> = start.iter().copied().take(max).collect();
    let has_more = start.len() > taken.len();
    if has_more && let Some(&last) = taken.last() {
        let next = start[taken.len()];
        if videos[next].0 == videos[last].0 {
            // Do not split a millisecond: the next page would skip the rest of it.
            let cut = videos[last].0;
            let kept: Vec<usize> = taken
                .iter()
                .copied()
                .filter(|&i| videos[i].0 != cut)
                .collect();
            if !kept.is_empty() {
                taken = kept;
            }
        }
    }
    (taken, has_more)
}

pub(crate) async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let result = async {
        let session = app.authorize(&headers, Endpoint::VideoList).await?;
        let JsonBody(body) = body?;
        let fields = video_fields::requested(raw.as_deref())?;
        let max_count = match body.get("max_count") {
            None | Some(Value::Null) => MAX_COUNT,
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=MAX_COUNT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_params(format!(
                        "max_count must be a whole number from 1 to {MAX_COUNT}."
                    ))
                })?,
        };
        let cursor = match body.get("cursor") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| ApiError::invalid_params("cursor must be an int64 (ms)."))?,
            ),
        };
        // Like a status read, a list sees every change the clock allows.
        app.tick();
        let store = app.store();
        let mut public: Vec<(&Publish, u64)> = store
            .publishes
            .iter()
            .filter(|p| p.open_id == session.open_id && p.is_public())
            .flat_map(|p| p.post_ids.iter().map(move |id| (p, *id)))
            .collect();
        public.sort_by_key(|&(p, id)| std::cmp::Reverse((created_ms(p), id)));
        let keys: Vec<(i64, u64)> = public.iter().map(|(p, id)| (created_ms(p), *id)).collect();
        let (taken, has_more) = page(&keys, cursor, max_count as usize);
        let videos: Vec<Value> = taken
            .iter()
            .map(|&i| {
                let (publish, id) = public[i];
                video_fields::video(&fields, |name| field(publish, id, name))
            })
            .collect();
        let next = taken
            .last()
            .map(|&i| keys[i].0)
            .or(cursor)
            .unwrap_or_else(|| app.now_ms());
        Ok(json!({ "videos": videos, "cursor": next, "has_more": has_more }))
    }
    .await;
    respond(result)
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages_walk_everything_once_newest_first() {
        // Newest first; three videos share the millisecond 50.
        let videos = [(90, 1), (80, 2), (50, 3), (50, 4), (50, 5), (20, 6)];
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (taken, more) = page(&videos, cursor, 3);
            assert!(taken.len() <= 3 && !taken.is_empty());
            seen.extend(taken.iter().map(|&i| videos[i].1));
            cursor = Some(videos[*taken.last().unwrap()].0);
            if !more {
                break;
            }
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
        let (first, more) = page(&videos, None, 3);
        assert_eq!((first, more), (vec![0, 1], true), "stops before the tie");
        assert_eq!(page(&videos, Some(10), 3), (vec![], false));
    }
}
