//! Binding, TLS and graceful shutdown.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tidepost_app::App;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::{HttpState, SetupToken};
use crate::{api, assets, oauth, ops, ui};

/// Requests larger than this are refused with 413, except on routes that set their own limit.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The process-wide Prometheus recorder (installed once, even with several servers in a test).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness): keep ours readable anyway.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Every route tidepost serves, with its middleware.
pub fn router(state: HttpState) -> Router {
    let https = state.app.config.https();
    let mut router = Router::new()
        .merge(ui::router())
        .merge(oauth::router())
        .merge(crate::instagram::router())
        .merge(crate::connect_links::router())
        .merge(crate::widget::router())
        .nest(
            "/api/v1",
            api::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::idempotency::layer,
            )),
        )
        .merge(ops::router())
        .merge(crate::webhooks::router())
        .merge(assets::router())
        // After every route is in: each route's role rule (`roles.rs`), once the route is known.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::roles::layer,
        ))
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn(crate::bodies::refuse_nul))
        // Outside the body check, so that its refusals of a page's form keep the layout too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::error_chrome::layer,
        ))
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(axum::extract::DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(ops::panic_response))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob: http: https:; media-src 'self' blob:; style-src 'self'; script-src 'self'; \
                 form-action 'self' http: https:; frame-ancestors 'none'",
            ),
        ));
    if https {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router.with_state(state)
}

/// The span every request is logged in. Its path only: query strings carry OAuth codes and
/// states, and the setup token, and a signed media path and a connect link's path carry their
/// tokens, none of which may reach a log (even at debug level).
fn request_span(request: &axum::extract::Request) -> tracing::Span {
    let path = request.uri().path();
    let path = if let Some(rest) = path.strip_prefix("/media/") {
        format!("/media/{}/…", rest.split('/').next().unwrap_or_default())
    } else if path.starts_with("/connect/link/") {
        "/connect/link/…".to_string()
    } else if let Some(rest) = path.strip_prefix("/widget/") {
        format!("/widget/{}/…", rest.split('/').next().unwrap_or_default())
    } else {
        path.to_string()
    };
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %path,
        version = ?request.version(),
    )
}

/// A bound HTTP server, not yet serving.
pub struct Server {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    app: App,
    router: Router,
}

impl Server {
    /// Binds the configured address (port 0 picks a free one) and builds the router.
    pub fn build(app: App, setup: SetupToken) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(app.config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", app.config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = HttpState {
            app: app.clone(),
            setup,
            metrics: metrics_handle(),
        };
        Ok(Self {
            listener,
            addr,
            router: router(state),
            app,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight finish (up to 10 s).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        match &self.app.config.tls {
            Some(tls) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!("cannot load the TLS certificate or key: {e}")
                        })?;
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    shutdown.cancelled().await;
                    stopper.graceful_shutdown(Some(Duration::from_secs(10)));
                });
                axum_server::from_tcp_rustls(self.listener, config)?
                    .handle(handle)
                    .serve(service)
                    .await?;
            }
            None => {
                let listener = tokio::net::TcpListener::from_std(self.listener)?;
                axum::serve(listener, service)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await?;
            }
        }
        Ok(())
    }
}
