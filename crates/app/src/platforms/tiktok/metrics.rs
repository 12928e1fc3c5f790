//! TikTok's side of the CRM metrics (`crm.metrics`, driven by `crate::crm::sync`): which id
//! a published target's videos are tracked by, and samples of up to 20 videos per
//! `POST /v2/video/query/` call within a per-account budget shared by every instance.

use tidepost_jobs::JobError;
use tidepost_providers::tiktok::video_query::MAX_IDS_PER_QUERY;
use tidepost_store::accounts::Account;
use tidepost_store::crm::metrics::{Sample, Track};
use tidepost_store::limits::{self, Admission};

use crate::App;
use crate::crm::sync::{
    DAY_MS, MINUTE_MS, defer, failed, next_sample_at, store_sample, wait_until,
};
use crate::tokens;

/// Video queries per account per minute. TikTok's figure for the Display API is unconfirmed;
/// this stays far below any figure seen.
pub const QUERIES_PER_MINUTE: u32 = 20;

/// The video a published target is tracked by: the first of the post ids TikTok gave (a
/// JSON array in the target's `provider_post_ids`).
pub fn media_id(stored: &str) -> Option<String> {
    serde_json::from_str::<Vec<String>>(stored)
        .ok()
        .and_then(|ids| ids.into_iter().next())
}

/// Samples the account's due tracks, 20 videos per call.
pub async fn sample(app: &App, account: &Account, due: &[Track], now: i64) -> Result<(), JobError> {
    for batch in due.chunks(MAX_IDS_PER_QUERY) {
        take_slot(app, account, now).await?;
        sample_batch(app, account, batch, now).await?;
    }
    Ok(())
}

/// Takes a slot of the account's query budget, or says how long to wait.
async fn take_slot(app: &App, account: &Account, now: i64) -> Result<(), JobError> {
    let key = format!("tiktok:crm:{}", account.id);
    match limits::admit(&app.db, &key, QUERIES_PER_MINUTE, MINUTE_MS, now).await? {
        Admission::Admitted => Ok(()),
        Admission::WaitUntil(at) => Err(wait_until(at, now, "TikTok video query limit")),
    }
}

async fn sample_batch(
    app: &App,
    account: &Account,
    batch: &[Track],
    now: i64,
) -> Result<(), JobError> {
    let client = app
        .tiktok()
        .map_err(|e| JobError::permanent(e.to_string()))?
        .clone();
    let ids: Vec<String> = batch.iter().map(|t| t.provider_media_id.clone()).collect();
    let result = tokens::with_token(app, account, |token| {
        let (client, ids) = (client.clone(), ids.clone());
        async move { client.query_videos(&token, &ids).await }
    })
    .await;
    let videos = match result {
        Ok(videos) => videos,
        Err(err) => return failed(app, batch, now, err).await,
    };
    for track in batch {
        match videos.iter().find(|v| v.id == track.provider_media_id) {
            Some(video) => {
                let sample = Sample {
                    sampled_at: now,
                    views: video.view_count,
                    likes: video.like_count,
                    comments: video.comment_count,
                    shares: video.share_count,
                    saves: None,
                    reach: None,
                };
                store_sample(app, track, &sample, now).await?;
            }
            None => {
                let next = next_sample_at(track.published_at, now).unwrap_or(now + DAY_MS);
                defer(
                    app,
                    track,
                    now,
                    next,
                    "TikTok did not return this video (deleted, private or not yet public)",
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_post_id_is_tracked() {
        assert_eq!(media_id(r#"["v1","v2"]"#), Some("v1".into()));
        assert_eq!(media_id("[]"), None);
        assert_eq!(media_id("not json"), None);
    }
}
