//! The Meta half of the emulator: Facebook Login, Instagram Login, the Graph API for Instagram
//! publishing (on both graph.facebook.com and graph.instagram.com), engagement and webhooks.
//!
//! Layout:
//! - [`oauth`]: both consent dialogs and every token endpoint;
//! - [`call`]: one entry for every Graph request (parameters, token, faults, usage headers)
//!   and the dispatch to node handlers, shared by both Graph hosts;
//! - [`graph`]: identity nodes (Facebook user, Pages, Instagram users, `debug_token`);
//! - [`publishing`]: containers (fetching `image_url` / `video_url` for real), publish, limit,
//!   published media, rupload;
//! - [`engagement`]: insights and comments;
//! - [`webhooks`]: signed deliveries and the verification handshake;
//! - [`admin`]: the `/_emulator/meta/...` routes;
//! - [`state`], [`errors`], [`fields`], [`time`]: the store, the error envelope, field
//!   selection and paging, date formats.

pub mod admin;
pub mod call;
pub mod engagement;
pub mod errors;
pub mod fields;
pub mod graph;
pub mod oauth;
pub mod publishing;
pub mod state;
pub mod time;
pub mod webhooks;

use axum::Router;
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use state::Meta;

/// Start-up configuration of the Meta half.
#[derive(Debug, Clone)]
pub struct Config {
    /// Facebook App ID (`client_id` of Facebook Login).
    pub app_id: String,
    pub app_secret: String,
    /// Shown on the consent page and in `debug_token`.
    pub app_name: String,
    /// Instagram App ID (`client_id` of Instagram Login; differs from the Facebook one).
    pub instagram_app_id: String,
    pub instagram_app_secret: String,
    /// Valid OAuth redirect URIs; empty accepts any.
    pub redirect_uris: Vec<String>,
    /// Token Meta sends as `hub.verify_token` in the webhook handshake.
    pub webhook_verify_token: String,
    /// Where webhooks go (also settable at run time).
    pub webhook_url: Option<String>,
    /// Lifetime of long-lived tokens (Meta answers `expires_in: 5183944`, ~60 days).
    pub long_lived_secs: i64,
    /// Lifetime of short-lived tokens (1 hour).
    pub short_lived_secs: i64,
    /// The Facebook code exchange answers with a long-lived token at once (as some clients observe).
    pub code_exchange_long_lived: bool,
    /// How long video containers stay `IN_PROGRESS` (emulated clock), after their bytes arrived.
    pub video_processing_ms: u64,
    /// Posts per rolling 24 h per account (`content_publishing_limit.quota_total`).
    pub publishing_limit: u32,
    /// Graph calls per hour counted as 100 % in `X-App-Usage`.
    pub hourly_call_budget: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_id: "1234567890123456".into(),
            app_secret: "emulator-facebook-app-secret".into(),
            app_name: "Tidepost (emulated)".into(),
            instagram_app_id: "9876543210987654".into(),
            instagram_app_secret: "emulator-instagram-app-secret".into(),
            redirect_uris: Vec::new(),
            webhook_verify_token: "emulator-verify-token".into(),
            webhook_url: None,
            long_lived_secs: 5_183_944,
            short_lived_secs: 3600,
            code_exchange_long_lived: false,
            video_processing_ms: 1000,
            publishing_limit: 100,
            hourly_call_budget: 4800,
        }
    }
}

/// The settings tests change at run time through `PUT /_emulator/meta/settings`.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub webhook_url: Option<String>,
    pub webhook_verify_token: String,
    pub long_lived_secs: i64,
    pub short_lived_secs: i64,
    pub code_exchange_long_lived: bool,
    pub video_processing_ms: u64,
    pub publishing_limit: u32,
    pub hourly_call_budget: u64,
    /// The next this many `POST /{ig-media-id}/comments` are refused with a transient error
    /// (code 2) and post nothing.
    pub fail_comments: u32,
    /// The next this many `POST /{ig-media-id}/comments` post the comment, then answer with a
    /// 500 as if the answer were lost.
    pub lose_comment_answers: u32,
    /// The next this many `POST /{ig-media-id}/comments` are refused for good (code 100, the
    /// media's comments are turned off) and post nothing.
    pub refuse_comments: u32,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            webhook_url: c.webhook_url.clone(),
            webhook_verify_token: c.webhook_verify_token.clone(),
            long_lived_secs: c.long_lived_secs,
            short_lived_secs: c.short_lived_secs,
            code_exchange_long_lived: c.code_exchange_long_lived,
            video_processing_ms: c.video_processing_ms,
            publishing_limit: c.publishing_limit,
            hourly_call_budget: c.hourly_call_budget,
            fail_comments: 0,
            lose_comment_answers: 0,
            refuse_comments: 0,
        }
    }
}

/// A partial update of [`Settings`]; `"webhook_url": ""` clears the URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsPatch {
    pub webhook_url: Option<String>,
    pub webhook_verify_token: Option<String>,
    pub long_lived_secs: Option<i64>,
    pub short_lived_secs: Option<i64>,
    pub code_exchange_long_lived: Option<bool>,
    pub video_processing_ms: Option<u64>,
    pub publishing_limit: Option<u32>,
    pub hourly_call_budget: Option<u64>,
    pub fail_comments: Option<u32>,
    pub lose_comment_answers: Option<u32>,
    pub refuse_comments: Option<u32>,
}

impl Settings {
    pub fn apply(&mut self, patch: SettingsPatch) {
        if let Some(url) = patch.webhook_url {
            self.webhook_url = Some(url).filter(|u| !u.is_empty());
        }
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = patch.$field { self.$field = v; } )* };
        }
        take!(
            webhook_verify_token,
            long_lived_secs,
            short_lived_secs,
            code_exchange_long_lived,
            video_processing_ms,
            publishing_limit,
            hourly_call_budget,
            fail_comments,
            lose_comment_answers,
            refuse_comments
        );
    }
}

/// Every Meta host prefix plus the `/_emulator/meta` admin routes.
pub fn router(ctx: Ctx) -> Router {
    let meta = Meta::new(ctx);
    Router::new()
        .route(
            "/meta/www/dialog/oauth",
            get(oauth::fb_dialog).post(oauth::fb_dialog_submit),
        )
        .route(
            "/meta/www/{version}/dialog/oauth",
            get(oauth::fb_dialog).post(oauth::fb_dialog_submit),
        )
        .route(
            "/meta/instagram/oauth/authorize",
            get(oauth::ig_dialog).post(oauth::ig_dialog_submit),
        )
        .route(
            "/meta/ig-api/oauth/access_token",
            any(oauth::ig_code_exchange),
        )
        .route("/meta/graph/{*path}", any(call::facebook_graph))
        .route("/meta/ig-graph/{*path}", any(call::instagram_graph))
        .route(
            "/meta/rupload/ig-api-upload/{version}/{id}",
            post(publishing::rupload),
        )
        .route("/meta/cdn/{file}", get(graph::cdn_picture))
        .merge(admin::routes())
        .with_state(meta)
}
