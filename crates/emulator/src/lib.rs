//! A stateful emulator of the documented TikTok, Meta (Facebook Login, Instagram Login and
//! Graph) and Threads APIs.
//!
//! One HTTP server stands in for every provider host. Each real host maps to a path prefix, so a
//! client configured with base URLs talks to the emulator unchanged:
//!
//! | real host                     | emulator prefix        |
//! |-------------------------------|------------------------|
//! | `https://www.tiktok.com`      | `/tiktok/www`          |
//! | `https://open.tiktokapis.com` | `/tiktok/open`         |
//! | TikTok upload URLs            | `/tiktok/upload`       |
//! | `https://www.facebook.com`    | `/meta/www`            |
//! | `https://graph.facebook.com`  | `/meta/graph`          |
//! | `https://www.instagram.com`   | `/meta/instagram`      |
//! | `https://api.instagram.com`   | `/meta/ig-api`         |
//! | `https://graph.instagram.com` | `/meta/ig-graph`       |
//! | `https://rupload.facebook.com`| `/meta/rupload`        |
//! | `https://threads.net`         | `/threads/www`         |
//! | `https://graph.threads.net`   | `/threads/graph`       |
//!
//! The admin API under `/_emulator` sets fault knobs, moves the clock, mints credentials and
//! shows what was received. The bare root (`GET /`) answers an index of the hosts, their base
//! URLs and the settings a tidepost `serve` needs to talk to this emulator ([`settings`]),
//! which `tidepost emulator` also prints when it starts.

pub mod admin;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod faults;
pub mod meta;
pub mod threads;
pub mod tiktok;
pub mod webhook;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::EmulatorConfig;
pub use ctx::Ctx;

/// A running emulator: its address, and a handle to stop it.
pub struct Emulator {
    addr: SocketAddr,
    ctx: Ctx,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free port) and serves the emulator until [`Emulator::stop`].
    pub async fn start(listen: SocketAddr, config: EmulatorConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let ctx = Ctx::new(config, format!("http://{addr}"))?;
        let app = router(ctx.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(err) = serve.await {
                tracing::error!(%err, "emulator server stopped");
            }
        });
        Ok(Self {
            addr,
            ctx,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the root of every prefix listed in the crate docs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A provider host the emulator stands in for, as a client configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// The environment variable of tidepost's setting that names the host's base URL.
    pub setting: &'static str,
    /// The real host.
    pub real: &'static str,
    /// The emulator's path prefix standing in for it.
    pub prefix: &'static str,
    /// A route of the provider under the prefix, and the method it takes (what a client
    /// calls first there): `GET` answers a page or the provider's error, `POST` the provider's
    /// JSON error for a request without credentials. Never a 404.
    pub probe: (&'static str, &'static str),
}

/// The hosts a client is configured with. (TikTok's and Meta's upload hosts are not configured:
/// their URLs come in the API's answers.)
pub const HOSTS: [Host; 9] = [
    Host {
        setting: "TIDEPOST_TIKTOK_AUTH_BASE_URL",
        real: "https://www.tiktok.com",
        prefix: "/tiktok/www",
        probe: ("GET", "/v2/auth/authorize/"),
    },
    Host {
        setting: "TIDEPOST_TIKTOK_API_BASE_URL",
        real: "https://open.tiktokapis.com",
        prefix: "/tiktok/open",
        probe: ("POST", "/v2/oauth/token/"),
    },
    Host {
        setting: "TIDEPOST_FACEBOOK_WWW_BASE_URL",
        real: "https://www.facebook.com",
        prefix: "/meta/www",
        probe: ("GET", "/dialog/oauth"),
    },
    Host {
        setting: "TIDEPOST_FACEBOOK_GRAPH_BASE_URL",
        real: "https://graph.facebook.com",
        prefix: "/meta/graph",
        probe: ("GET", "/v22.0/me"),
    },
    Host {
        setting: "TIDEPOST_INSTAGRAM_WWW_BASE_URL",
        real: "https://www.instagram.com",
        prefix: "/meta/instagram",
        probe: ("GET", "/oauth/authorize"),
    },
    Host {
        setting: "TIDEPOST_INSTAGRAM_API_BASE_URL",
        real: "https://api.instagram.com",
        prefix: "/meta/ig-api",
        probe: ("POST", "/oauth/access_token"),
    },
    Host {
        setting: "TIDEPOST_INSTAGRAM_GRAPH_BASE_URL",
        real: "https://graph.instagram.com",
        prefix: "/meta/ig-graph",
        probe: ("GET", "/v22.0/me"),
    },
    Host {
        setting: "TIDEPOST_THREADS_WWW_BASE_URL",
        real: "https://threads.net",
        prefix: "/threads/www",
        probe: ("GET", "/oauth/authorize"),
    },
    Host {
        setting: "TIDEPOST_THREADS_GRAPH_BASE_URL",
        real: "https://graph.threads.net",
        prefix: "/threads/graph",
        probe: ("GET", "/v1.0/me"),
    },
];

/// The settings (environment variable, value) that point a tidepost `serve` run without
/// `--sandbox` at the emulator whose root is `base`: every host's base URL, and the app
/// credentials the emulator was started with. They are the emulator's own test credentials,
/// not secrets.
pub fn settings(base: &str, config: &EmulatorConfig) -> Vec<(&'static str, String)> {
    let base = base.trim_end_matches('/');
    let mut lines: Vec<(&'static str, String)> = HOSTS
        .iter()
        .map(|h| (h.setting, format!("{base}{}", h.prefix)))
        .collect();
    lines.extend([
        (
            "TIDEPOST_TIKTOK_CLIENT_KEY",
            config.tiktok.client_key.clone(),
        ),
        (
            "TIDEPOST_TIKTOK_CLIENT_SECRET",
            config.tiktok.client_secret.clone(),
        ),
        ("TIDEPOST_FACEBOOK_APP_ID", config.meta.app_id.clone()),
        (
            "TIDEPOST_FACEBOOK_APP_SECRET",
            config.meta.app_secret.clone(),
        ),
        (
            "TIDEPOST_INSTAGRAM_APP_ID",
            config.meta.instagram_app_id.clone(),
        ),
        (
            "TIDEPOST_INSTAGRAM_APP_SECRET",
            config.meta.instagram_app_secret.clone(),
        ),
        (
            "TIDEPOST_INSTAGRAM_VERIFY_TOKEN",
            config.meta.webhook_verify_token.clone(),
        ),
        ("TIDEPOST_THREADS_APP_ID", config.threads.app_id.clone()),
        (
            "TIDEPOST_THREADS_APP_SECRET",
            config.threads.app_secret.clone(),
        ),
    ]);
    lines
}

/// [`settings`] as lines an operator can paste into a shell or an environment file.
pub fn settings_text(base: &str, config: &EmulatorConfig) -> String {
    settings(base, config)
        .into_iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect()
}

/// `GET /`: what this server is and how to point tidepost at it.
async fn index(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
) -> axum::Json<serde_json::Value> {
    let base = ctx.base_url.clone();
    let config = &ctx.config;
    axum::Json(serde_json::json!({
        "emulator": "tidepost provider emulator (TikTok, Meta and Threads)",
        "hosts": HOSTS.iter().map(|h| serde_json::json!({
            "real": h.real,
            "base_url": format!("{base}{}", h.prefix),
            "setting": h.setting,
        })).collect::<Vec<_>>(),
        "settings": settings(&base, config)
            .into_iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::String(value)))
            .collect::<serde_json::Map<_, _>>(),
        "webhooks": "tell the emulator where tidepost receives webhooks: PUT /_emulator/tiktok/settings {\"webhook_url\": \"<tidepost>/webhooks/tiktok\"} and PUT /_emulator/meta/settings {\"webhook_url\": \"<tidepost>/webhooks/instagram\"}",
        "admin": "/_emulator",
    }))
}

/// The whole emulator as one router: TikTok hosts, Meta hosts, the admin API and the index.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", axum::routing::get(index).with_state(ctx.clone()))
        .merge(tiktok::router(ctx.clone()))
        .merge(meta::router(ctx.clone()))
        .merge(threads::router(ctx.clone()))
        .merge(admin::router(ctx.clone()))
        .layer(axum::middleware::from_fn_with_state(
            ctx,
            ctx::record_request,
        ))
}
