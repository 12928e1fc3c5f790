//! TikTok's `creator_info` for the composer, kept [`CREATOR_INFO_TTL`] per account.
//!
//! The composer shows every TikTok account of the workspace with its creator's choices
//! (privacy levels, disabled interactions, longest video), which is one `creator_info` call per
//! account per page load. Reloading the page, or coming back to it after a refused submit,
//! would spend the account's provider rate limit on answers that have not changed, so the
//! answer is kept for a minute. It is kept in this process, per database (`Db::shared`), and
//! only for the token it was fetched with: reconnecting the account or refreshing its token
//! stores a new token envelope, and the next load asks TikTok again. Errors are not kept.
//!
//! Only showing the page reads it: a post's own check (`publish::prepare`, on submit) still
//! asks TikTok, so a creator who changed their settings within the minute is still checked
//! against what TikTok says now.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidepost_providers::tiktok::CreatorInfo;
use tidepost_store::accounts::Account;

use crate::App;
use crate::pipeline::PublishError;
use crate::platforms::tiktok as publish;

/// How long a creator's answer is shown again without asking TikTok.
pub const CREATOR_INFO_TTL: Duration = Duration::from_secs(60);

/// The answers, one slot per account. A slot's lock is held while its answer is fetched, so
/// two loads at once make one call.
#[derive(Default)]
struct Cache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

struct Entry {
    /// A hash of the token envelope the answer was fetched with (never the envelope).
    token: u64,
    fetched: Instant,
    info: CreatorInfo,
}

fn token_fingerprint(account: &Account) -> u64 {
    let mut hasher = DefaultHasher::new();
    account.provider_user_id.hash(&mut hasher);
    account.access_token.hash(&mut hasher);
    hasher.finish()
}

/// `publish::creator_info`, answered from the last minute's answer for the same account and
/// token when there is one.
pub async fn creator_info(app: &App, account: &Account) -> Result<CreatorInfo, PublishError> {
    let cache = app.db.shared::<Cache>();
    let slot = {
        let mut slots = cache.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(account.id.clone()).or_default())
    };
    let mut entry = slot.lock().await;
    let token = token_fingerprint(account);
    if let Some(kept) = entry.as_ref()
        && kept.token == token
        && kept.fetched.elapsed() < CREATOR_INFO_TTL
    {
        return Ok(kept.info.clone());
    }
    let info = publish::creator_info(app, account).await?;
    *entry = Some(Entry {
        token,
        fetched: Instant::now(),
        info: info.clone(),
    });
    Ok(info)
}
