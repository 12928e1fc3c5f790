//! Instagram's side of the CRM metrics (`crm.metrics`, driven by `crate::crm::sync`): media
//! insights per published media, within a per-account hourly budget shared by every instance
//! and Meta's own usage figures (at 80 % the job waits).

use tidepost_jobs::JobError;
use tidepost_providers::meta::Insight;
use tidepost_store::accounts::Account;
use tidepost_store::crm::metrics::{Sample, Track};
use tidepost_store::limits::{self, Admission};

use crate::App;
use crate::crm::sync::{DAY_MS, HOUR_MS, defer_stop, failed, store_sample, wait_until};
use crate::tokens;

/// Graph calls (insights and comment pages) per Instagram account per hour: Meta allows about
/// 200 per account per hour, shared with publishing, so the CRM takes at most a quarter.
pub const CALLS_PER_HOUR: u32 = 50;

/// The media a published target is tracked by: Instagram keeps one media id per target.
pub fn media_id(stored: &str) -> Option<String> {
    Some(stored.to_string())
}

/// Samples the account's due tracks, one insights call each; stories stop after a day.
pub async fn sample(app: &App, account: &Account, due: &[Track], now: i64) -> Result<(), JobError> {
    for track in due {
        if stops_early(track, now) {
            defer_stop(app, track, "stories have no insights after a day").await?;
            continue;
        }
        take_slot(app, account, now).await?;
        sample_one(app, account, track, now).await?;
    }
    Ok(())
}

/// Instagram stories disappear after a day: their insights stop with them.
fn stops_early(track: &Track, now: i64) -> bool {
    track.media_type.as_deref() == Some("story") && now - track.published_at > DAY_MS
}

/// Takes a slot of the account's hourly CRM budget, or says how long to wait (also when Meta
/// reports the app's call budget nearly spent).
pub(crate) async fn take_slot(app: &App, account: &Account, now: i64) -> Result<(), JobError> {
    if let Some((percent, wait)) = app
        .providers
        .meta_usage()
        .wait_for(&account.provider_user_id)
    {
        return Err(JobError::wait(
            format!("Meta reports {percent} % of the call budget used; waiting"),
            wait,
        ));
    }
    let hourly = format!("instagram:crm:hour:{}", account.id);
    match limits::admit(&app.db, &hourly, CALLS_PER_HOUR, HOUR_MS, now).await? {
        Admission::Admitted => Ok(()),
        Admission::WaitUntil(at) => Err(wait_until(at, now, "Instagram hourly CRM budget")),
    }
}

/// The insights asked for by media type (Meta refuses a metric the type does not have).
fn wanted(media_type: Option<&str>) -> &'static [&'static str] {
    match media_type {
        Some("story") => &["reach", "views", "shares"],
        _ => &["reach", "views", "likes", "comments", "shares", "saved"],
    }
}

async fn sample_one(app: &App, account: &Account, track: &Track, now: i64) -> Result<(), JobError> {
    let (client, host) = super::graph_for_job(app, account)?;
    let wanted = wanted(track.media_type.as_deref());
    let media = track.provider_media_id.clone();
    let result = tokens::with_token(app, account, |token| {
        let (client, media) = (client.clone(), media.clone());
        async move { client.insights(host, &token, &media, wanted).await }
    })
    .await;
    let insights = match result {
        Ok(insights) => insights,
        Err(err) => return failed(app, std::slice::from_ref(track), now, err).await,
    };
    let value = |name: &str| -> Option<i64> {
        insights
            .iter()
            .find(|i: &&Insight| i.name == name)
            .and_then(|i| i.value)
    };
    let sample = Sample {
        sampled_at: now,
        views: value("views"),
        likes: value("likes"),
        comments: value("comments"),
        shares: value("shares"),
        saves: value("saved"),
        reach: value("reach"),
    };
    store_sample(app, track, &sample, now).await?;
    Ok(())
}
