//! The Threads part of the emulator (`graph.threads.net`, the `threads.net` consent dialog),
//! faithful to `../shared/providers/threads.md`:
//!
//! - OAuth: the authorize dialog (`302 redirect_uri?code=..&state=..#_`, or
//!   `error=access_denied`), the code exchange (`GET` with a query or `POST` with a form;
//!   `user_id` a JSON **number**), `th_exchange_token` (short → 60-day long-lived; a token
//!   that is already long-lived is refused with 452 / 4279019), `th_refresh_token` (long-lived
//!   tokens at least 24 hours old and not expired; a younger one is refused and stays valid);
//! - `/me`, containers (`TEXT`, `IMAGE`, `VIDEO`, `CAROUSEL` with 2–20 finished children),
//!   their `status` (`IN_PROGRESS` → `FINISHED` / `ERROR` with `error_message`, `EXPIRED`
//!   after 24 hours, `PUBLISHED`), `threads_publish` (a container not visible yet is "Media
//!   Not Found", 24 / 4279009), the publishing limit (250 posts in a rolling 24 hours on the
//!   emulated clock), media read back with its permalink, media insights;
//! - errors in Graph's envelope, `type: OAuthException`, HTTP 400;
//! - the fault knobs of `/_emulator/faults/threads` and the admin routes of [`admin`].
//!
//! Every data path takes the `v1.0` prefix or none (Meta's sample app treats it as optional).
//! A media URL ending in `#fail=REASON` makes its container end in `ERROR` with that reason.

pub mod admin;
mod graph;
mod oauth;
pub mod state;

use axum::Router;
use axum::routing::{any, get};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
pub use state::{Threads, USER_ID, USERNAME};

/// Start-up configuration of the Threads part.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Threads App ID (not the Facebook one).
    pub app_id: String,
    pub app_secret: String,
    pub app_name: String,
    /// Valid redirect URIs; empty accepts any.
    pub redirect_uris: Vec<String>,
    /// Short-lived tokens (1 hour).
    pub short_lived_secs: i64,
    /// Long-lived tokens (`expires_in: 5183944`, ~60 days).
    pub long_lived_secs: i64,
    /// How long video containers stay `IN_PROGRESS` (emulated clock).
    pub video_processing_ms: u64,
    /// Posts per rolling 24 hours (`config.quota_total`).
    pub publishing_limit: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_id: "1122334455667788".into(),
            app_secret: "emulator-threads-app-secret".into(),
            app_name: "Tidepost (emulated)".into(),
            redirect_uris: Vec::new(),
            short_lived_secs: 3600,
            long_lived_secs: 5_183_944,
            video_processing_ms: 1000,
            publishing_limit: 250,
        }
    }
}

/// The settings tests change at run time through `PUT /_emulator/threads/settings`.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub short_lived_secs: i64,
    pub long_lived_secs: i64,
    pub video_processing_ms: u64,
    pub publishing_limit: u32,
    /// The next this many `threads_publish` calls on a FINISHED container answer "Media Not
    /// Found" (24 / 4279009) and publish nothing, as Threads does right after FINISHED.
    pub media_not_found: u32,
    /// The next this many `threads_publish` calls publish, then answer a 500 as if the answer
    /// were lost.
    pub lose_publish_answers: u32,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            short_lived_secs: c.short_lived_secs,
            long_lived_secs: c.long_lived_secs,
            video_processing_ms: c.video_processing_ms,
            publishing_limit: c.publishing_limit,
            media_not_found: 0,
            lose_publish_answers: 0,
        }
    }
}

/// A partial update of [`Settings`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsPatch {
    pub short_lived_secs: Option<i64>,
    pub long_lived_secs: Option<i64>,
    pub video_processing_ms: Option<u64>,
    pub publishing_limit: Option<u32>,
    pub media_not_found: Option<u32>,
    pub lose_publish_answers: Option<u32>,
}

impl Settings {
    pub fn apply(&mut self, patch: SettingsPatch) {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = patch.$field { self.$field = v; } )* };
        }
        take!(
            short_lived_secs,
            long_lived_secs,
            video_processing_ms,
            publishing_limit,
            media_not_found,
            lose_publish_answers
        );
    }
}

/// The Threads hosts plus the `/_emulator/threads` admin routes.
pub fn router(ctx: Ctx) -> Router {
    let threads = Threads::new(ctx);
    Router::new()
        .route(
            "/threads/www/oauth/authorize",
            get(oauth::dialog).post(oauth::dialog_submit),
        )
        .route("/threads/graph/{*path}", any(graph::handle))
        .merge(admin::routes())
        .with_state(threads)
}
