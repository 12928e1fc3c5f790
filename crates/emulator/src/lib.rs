//! A stateful emulator of the documented TikTok and Meta (Facebook Login, Instagram Login and
//! Graph) APIs.
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
//!
//! The admin API under `/_emulator` sets fault knobs, moves the clock, mints credentials and
//! shows what was received.

pub mod admin;
pub mod clock;
pub mod config;
pub mod ctx;
pub mod faults;
pub mod meta;
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

/// The whole emulator as one router: TikTok hosts, Meta hosts and the admin API.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .merge(tiktok::router(ctx.clone()))
        .merge(meta::router(ctx.clone()))
        .merge(admin::router(ctx.clone()))
        .layer(axum::middleware::from_fn_with_state(
            ctx,
            ctx::record_request,
        ))
}
