//! TikTok's `creator_info`, kept [`CREATOR_INFO_TTL`] per account: the one way the composer
//! page, `POST /posts/validate` and `POST /posts` (every direct TikTok target, through
//! [`prepare`](super::prepare)) read it.
//!
//! TikTok allows 20 `creator_info` calls a minute per token. Without a cache every page load,
//! every validation and every post spends one, and a person who reloads the composer, validates
//! and then submits spends three on an answer that has not changed. So the answer is kept for
//! [`CREATOR_INFO_TTL`]:
//!
//! - **Per account and workspace**: the key is `(workspace_id, account_id)`, so an answer is
//!   only ever given back to the workspace that owns the account.
//! - **Per token**: only for the token it was fetched with. Reconnecting the account or
//!   refreshing its token stores a new token envelope, and the next read asks TikTok again.
//! - **One call at a time**: a slot's lock is held while its answer is fetched, so concurrent
//!   reads of one account (a page's panels, a burst of API posts) make one call.
//! - **Trouble is remembered too, briefly**: when TikTok answers with its rate limit or a 5xx,
//!   the error is kept until its `Retry-After` (TikTok's rate limit says a minute when it
//!   gives none; a 5xx without one is kept [`BACKOFF_DEFAULT`]; never more than
//!   [`BACKOFF_MAX`]), and reads meanwhile get the same error with the time left, instead of
//!   spending more of the budget on a call that will be refused. Other errors are not kept.
//!
//! A creator who changes their settings on TikTok within the TTL is checked against the answer
//! kept; TikTok itself refuses a publish whose options its creator no longer allows, and the
//! target fails with TikTok's reason.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidepost_providers::ProviderError;
use tidepost_providers::tiktok::CreatorInfo;
use tidepost_store::accounts::Account;

use crate::App;
use crate::pipeline::PublishError;
use crate::platforms::tiktok as publish;

/// How long a creator's answer is used again without asking TikTok.
pub const CREATOR_INFO_TTL: Duration = Duration::from_secs(60);

/// How long a failing `creator_info` whose answer named no wait is not asked again.
pub const BACKOFF_DEFAULT: Duration = Duration::from_secs(2);

/// The longest a failing `creator_info` is not asked again (TikTok's rate-limit window is a
/// minute).
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One account's kept answer, locked while it is fetched (so concurrent reads make one call).
type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// The answers, one slot per (workspace, account).
#[derive(Default)]
struct Cache {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

struct Entry {
    /// A hash of the token envelope the answer was fetched with (never the envelope).
    token: u64,
    at: Instant,
    kept: Kept,
}

enum Kept {
    Answer(CreatorInfo),
    /// TikTok's rate limit or 5xx, not asked again before `until`.
    Trouble {
        error: ProviderError,
        until: Instant,
    },
}

fn token_fingerprint(account: &Account) -> u64 {
    let mut hasher = DefaultHasher::new();
    account.provider_user_id.hash(&mut hasher);
    account.access_token.hash(&mut hasher);
    hasher.finish()
}

/// How long to leave `error` alone: its `Retry-After`, else [`BACKOFF_DEFAULT`]; one second
/// to [`BACKOFF_MAX`].
fn backoff(error: &ProviderError) -> Duration {
    error
        .retry_after
        .unwrap_or(BACKOFF_DEFAULT)
        .clamp(Duration::from_secs(1), BACKOFF_MAX)
}

/// The creator's current posting options: the answer kept for the same workspace, account and
/// token when it is younger than [`CREATOR_INFO_TTL`], else TikTok's (one call however many
/// ask at once). While TikTok's rate limit or a 5xx is being waited out, the kept error with
/// the time left as its `retry_after`.
pub async fn creator_info(app: &App, account: &Account) -> Result<CreatorInfo, PublishError> {
    let cache = app.db.shared::<Cache>();
    let slot = {
        let mut slots = cache.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            slots
                .entry((account.workspace_id.clone(), account.id.clone()))
                .or_default(),
        )
    };
    let mut entry = slot.lock().await;
    let token = token_fingerprint(account);
    if let Some(kept) = entry.as_ref()
        && kept.token == token
    {
        match &kept.kept {
            Kept::Answer(info) if kept.at.elapsed() < CREATOR_INFO_TTL => return Ok(info.clone()),
            Kept::Trouble { error, until } => {
                let left = until.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    let mut error = error.clone();
                    // Whole seconds, rounded up: a client told 0 would ask again at once.
                    error.retry_after = Some(Duration::from_secs(left.as_secs() + 1));
                    return Err(PublishError::Provider(error));
                }
            }
            Kept::Answer(_) => {}
        }
    }
    match publish::creator_info(app, account).await {
        Ok(info) => {
            *entry = Some(Entry {
                token,
                at: Instant::now(),
                kept: Kept::Answer(info.clone()),
            });
            Ok(info)
        }
        Err(PublishError::Provider(mut e)) if e.is_retryable() => {
            // The first reader is told the same wait as those that come while it runs.
            let wait = backoff(&e);
            e.retry_after = Some(wait);
            *entry = Some(Entry {
                token,
                at: Instant::now(),
                kept: Kept::Trouble {
                    error: e.clone(),
                    until: Instant::now() + wait,
                },
            });
            Err(PublishError::Provider(e))
        }
        Err(err) => {
            // A refusal of another kind (a revoked token, …) is not kept, and neither is an
            // older answer: the next read asks again.
            *entry = None;
            Err(err)
        }
    }
}
