//! A post as the API shows it: one shape whatever the request's, with each target's state,
//! progress and what its platform recorded.

use std::collections::HashMap;

use serde_json::{Value, json};
use tidepost_app::compose;
use tidepost_app::pipeline::PostView;
use tidepost_domain::{Platform, PostSummary, TargetState};
use tidepost_store::instagram::InstagramMedia;
use tidepost_store::threads::ThreadsMedia;

use crate::error::Problem;
use crate::state::HttpState;

/// One post as the API shows it, with what is recorded of its Instagram media.
pub async fn render(state: &HttpState, view: &PostView) -> Result<Value, Problem> {
    let mut instagram = HashMap::new();
    let mut comments = HashMap::new();
    let mut threads = HashMap::new();
    for t in &view.targets {
        if t.platform == Platform::Threads
            && let Some(m) =
                tidepost_store::threads::get(&state.app.db, &t.workspace_id, &t.id).await?
        {
            threads.insert(t.id.clone(), m);
        }
        if t.platform == Platform::Instagram {
            if let Some(m) =
                tidepost_store::instagram::get(&state.app.db, &t.workspace_id, &t.id).await?
            {
                instagram.insert(t.id.clone(), m);
            }
            if let Some(c) =
                tidepost_store::instagram::first_comment(&state.app.db, &t.workspace_id, &t.id)
                    .await?
            {
                comments.insert(t.id.clone(), c);
            }
        }
    }
    let mut json = post_json(view, &instagram, &threads);
    // Each Instagram target's first comment: its own state (pending, posted, failed), the
    // comment's id once posted, the last error.
    let first_comments = view.targets.iter().map(|t| {
        comments.get(&t.id).map(|c| {
            json!({
                "state": c.state,
                "comment_id": c.comment_id,
                "error": c.error,
                "attempts": c.attempts,
            })
        })
    });
    if let Some(targets) = json["targets"].as_array_mut() {
        for (target, comment) in targets.iter_mut().zip(first_comments) {
            target["first_comment"] = comment.unwrap_or(Value::Null);
        }
    }
    Ok(json)
}

/// One post as the API shows it; `threads` holds the recorded posts of its Threads targets;
/// `instagram` holds the recorded media of its Instagram
/// targets, by target id.
pub fn post_json(
    view: &PostView,
    instagram: &HashMap<String, InstagramMedia>,
    threads: &HashMap<String, ThreadsMedia>,
) -> Value {
    let states: Vec<TargetState> = view
        .targets
        .iter()
        .map(|t| TargetState::parse(&t.state).unwrap_or(TargetState::Failed))
        .collect();
    let options: Value = serde_json::from_str(&view.post.options).unwrap_or(Value::Null);
    json!({
        "id": view.post.id,
        "kind": view.post.kind,
        "caption": view.post.caption,
        "media_id": view.post.media_id,
        "media_url": view.post.media_url,
        "options": options,
        "summary": PostSummary::of(&states).as_str(),
        "created_at": tidepost_domain::time::rfc3339(view.post.created_at),
        "scheduled_at": view.post.scheduled_at.map(tidepost_domain::time::rfc3339),
        "time_zone": view.post.time_zone,
        "version": view.post.version,
        "scheduled_at_local": view.post.scheduled_at.map(|at| {
            compose::schedule::show(at, view.post.time_zone.as_deref())
        }),
        "targets": view.targets.iter().map(|t| {
            let post_ids = t.post_ids();
            let ig = instagram.get(&t.id);
            let post_url = match t.platform {
                Platform::Tiktok => post_ids.first().map(|id| tidepost_app::tiktok::post_url(id)),
                Platform::Instagram => ig.and_then(|m| m.permalink.clone()),
                Platform::Threads => threads.get(&t.id).and_then(|m| m.permalink.clone()),
            };
            json!({
                "id": t.id,
                "account_id": t.account_id,
                "platform": t.platform,
                "mode": t.mode,
                "source": t.source,
                "state": t.state,
                "bytes_total": t.bytes_total,
                "bytes_sent": t.bytes_sent,
                "chunks_total": t.chunks_total,
                "chunks_acked": t.chunks_acked,
                "progress": progress(t),
                "scheduled_at": t.scheduled_at.map(tidepost_domain::time::rfc3339),
                "publish_id": t.publish_id,
                "provider_status": t.provider_status,
                "post_ids": post_ids,
                "post_url": post_url,
                "instagram": ig.map(|m| json!({
                    "media_id": m.media_id,
                    "permalink": m.permalink,
                    "media_type": m.media_type,
                })),
                "threads": threads.get(&t.id).map(|m| json!({
                    "media_id": m.media_id,
                    "permalink": m.permalink,
                    "media_type": m.media_type,
                })),
                "error": t.error_code.as_ref().map(|code| json!({
                    "code": code,
                    "message": t.error_message,
                    "retryable": t.error_retryable == 1,
                })),
                "updated_at": tidepost_domain::time::rfc3339(t.updated_at),
                "finished_at": t.finished_at.map(tidepost_domain::time::rfc3339),
            })
        }).collect::<Vec<_>>(),
    })
}

/// How far a target is, from 0 to 1: the bytes sent while uploading, then 1 once published.
fn progress(t: &tidepost_store::posts::Target) -> f64 {
    match TargetState::parse(&t.state) {
        Some(TargetState::Published) => 1.0,
        Some(TargetState::Processing) => 0.9,
        Some(TargetState::Uploading) if t.bytes_total > 0 => {
            0.8 * (t.bytes_sent as f64 / t.bytes_total as f64).clamp(0.0, 1.0)
        }
        _ => 0.0,
    }
}
