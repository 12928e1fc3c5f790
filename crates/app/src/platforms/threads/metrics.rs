//! Threads' side of the CRM metrics (`crm.metrics`, driven by `crate::crm::sync`): each
//! published post's lifetime insights (`views`, `likes`, `replies`, `reposts`, `quotes`),
//! within a per-account hourly budget shared by every instance.

use tidepost_jobs::JobError;
use tidepost_store::accounts::Account;
use tidepost_store::crm::metrics::{Sample, Track};
use tidepost_store::limits::{self, Admission};

use crate::App;
use crate::crm::sync::{HOUR_MS, failed, store_sample, wait_until};
use crate::tokens;

/// Insights calls per Threads account per hour taken by the CRM (Threads allows 4800 calls
/// per impression-day; the CRM keeps to a small share).
pub const CALLS_PER_HOUR: u32 = 50;

/// The media a published target is tracked by: Threads keeps one post id per target.
pub fn media_id(stored: &str) -> Option<String> {
    Some(stored.to_string())
}

/// Samples the account's due tracks, one insights call each.
pub async fn sample(app: &App, account: &Account, due: &[Track], now: i64) -> Result<(), JobError> {
    let client = app
        .providers
        .threads()
        .map_err(|e| JobError::permanent(e.to_string()))?
        .clone();
    for track in due {
        let hourly = format!("threads:crm:hour:{}", account.id);
        if let Admission::WaitUntil(at) =
            limits::admit(&app.db, &hourly, CALLS_PER_HOUR, HOUR_MS, now).await?
        {
            return Err(wait_until(at, now, "Threads hourly CRM budget"));
        }
        let media = track.provider_media_id.clone();
        let result = tokens::with_token(app, account, |token| {
            let (client, media) = (client.clone(), media.clone());
            async move { client.insights(&token, &media).await }
        })
        .await;
        let insights = match result {
            Ok(insights) => insights,
            Err(err) => return failed(app, std::slice::from_ref(track), now, err).await,
        };
        let value = |name: &str| insights.iter().find(|i| i.name == name).map(|i| i.value);
        let shares = match (value("reposts"), value("quotes")) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        let sample = Sample {
            sampled_at: now,
            views: value("views"),
            likes: value("likes"),
            comments: value("replies"),
            shares,
            saves: None,
            reach: None,
        };
        store_sample(app, track, &sample, now).await?;
    }
    Ok(())
}
