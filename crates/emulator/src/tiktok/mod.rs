//! The TikTok half of the emulator: Login Kit v2 OAuth, user info, the Content Posting API
//! (direct post, upload to inbox, photo posts, chunked uploads, status fetch, cancel), webhooks
//! and the TikTok admin routes under `/_emulator/tiktok`.
//!
//! Hosts map to prefixes (see the crate docs): `www.tiktok.com` → `/tiktok/www`,
//! `open.tiktokapis.com` → `/tiktok/open`, upload URLs → `/tiktok/upload`.
//!
//! Module map:
//! - [`config`]: start-up configuration, also changeable at run time (`PUT /_emulator/tiktok/settings`).
//! - [`state`]: fixture creators, codes, tokens, publishes and rate-limit windows.
//! - [`errors`]: the `{"data","error"}` envelope and the flat OAuth error shape.
//! - [`auth`]: bearer-token check, scopes, rate limits and injected API faults.
//! - [`oauth`], [`user`], [`posting`], [`upload`], [`pull`], [`status`], [`video_query`],
//!   [`video_list`]: the provider endpoints.
//! - [`lifecycle`]: how a publish moves from processing to its final state, on the emulated clock.
//! - [`webhooks`]: signed event delivery.
//! - [`admin`]: the `/_emulator/tiktok/...` routes.

// Handlers return ready-made axum responses as their early-exit errors.
#![allow(clippy::result_large_err)]

mod admin;
mod auth;
mod config;
mod errors;
mod lifecycle;
mod oauth;
mod posting;
mod pull;
mod state;
mod status;
mod upload;
mod user;
mod video_fields;
mod video_list;
mod video_query;
mod webhooks;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, get, post, put};

pub use config::Config;

use crate::ctx::Ctx;
use state::Store;

/// Everything the TikTok handlers share: the emulator context, the run-time settings and the
/// provider state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct App(Arc<AppInner>);

pub(crate) struct AppInner {
    pub ctx: Ctx,
    settings: Mutex<Config>,
    store: Mutex<Store>,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    fn new(ctx: Ctx) -> Self {
        let settings = ctx.config.tiktok.clone();
        Self(Arc::new(AppInner {
            ctx,
            settings: Mutex::new(settings),
            store: Mutex::new(Store::new()),
        }))
    }

    /// A snapshot of the current settings.
    pub fn settings(&self) -> Config {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace_settings(&self, settings: Config) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// The provider state. Never hold the guard across an `.await`.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_ms(&self) -> i64 {
        self.ctx.clock.now_ms()
    }
}

/// All TikTok routes: the three provider hosts and the TikTok admin API.
pub fn router(ctx: Ctx) -> Router {
    let app = App::new(ctx);
    lifecycle::spawn_ticker(&app);
    Router::new()
        .route(
            "/tiktok/www/v2/auth/authorize/",
            get(oauth::authorize_page).post(oauth::authorize_decision),
        )
        .route("/tiktok/open/v2/oauth/token/", only_post(oauth::token))
        .route("/tiktok/open/v2/oauth/revoke/", only_post(oauth::revoke))
        .route(
            "/tiktok/open/v2/user/info/",
            on_methods(get(user::user_info)),
        )
        .route(
            "/tiktok/open/v2/post/publish/creator_info/query/",
            only_post(user::creator_info),
        )
        .route(
            "/tiktok/open/v2/post/publish/video/init/",
            only_post(posting::direct_video_init),
        )
        .route(
            "/tiktok/open/v2/post/publish/inbox/video/init/",
            only_post(posting::inbox_video_init),
        )
        .route(
            "/tiktok/open/v2/post/publish/content/init/",
            only_post(posting::content_init),
        )
        .route(
            "/tiktok/open/v2/post/publish/cancel/",
            only_post(posting::cancel),
        )
        .route(
            "/tiktok/open/v2/post/publish/status/fetch/",
            only_post(status::fetch),
        )
        .route(
            "/tiktok/open/v2/video/query/",
            only_post(video_query::query),
        )
        .route("/tiktok/open/v2/video/list/", only_post(video_list::list))
        .route("/tiktok/upload/video/", on_methods(put(upload::put_chunk)))
        .merge(admin::routes())
        .with_state(app)
}

/// A POST-only route whose other methods get TikTok's JSON error instead of an empty 405.
fn only_post<H, T>(handler: H) -> MethodRouter<App>
where
    H: Handler<T, App>,
    T: 'static,
{
    on_methods(post(handler))
}

fn on_methods(route: MethodRouter<App>) -> MethodRouter<App> {
    route.fallback(errors::method_not_allowed)
}
