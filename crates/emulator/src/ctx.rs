//! State shared by every part of the emulator: configuration, clock, fault knobs, the request
//! log, the upload folder and the webhook sender. Each provider module keeps its own state.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::faults::Faults;
use crate::webhook::WebhookSender;

#[derive(Clone)]
pub struct Ctx(Arc<Inner>);

pub struct Inner {
    pub config: EmulatorConfig,
    /// `http://127.0.0.1:PORT`: used to build absolute URLs (upload URLs, redirects).
    pub base_url: String,
    pub clock: Clock,
    pub faults: Faults,
    pub requests: Mutex<Vec<LoggedRequest>>,
    pub webhooks: WebhookSender,
    pub http: reqwest::Client,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// One request as the admin API shows it (no bodies: they may carry secrets or be huge).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl std::ops::Deref for Ctx {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Ctx {
    pub fn new(config: EmulatorConfig, base_url: String) -> anyhow::Result<Self> {
        let (data_dir, temp) = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("tidepost-emulator-")
                    .tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        // reqwest is built without a bundled TLS provider; make sure one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Self(Arc::new(Inner {
            config,
            base_url,
            clock: Clock::default(),
            faults: Faults::default(),
            requests: Mutex::new(Vec::new()),
            webhooks: WebhookSender::new(http.clone()),
            http,
            data_dir,
            _temp: temp,
        })))
    }

    /// Where received upload bytes are written.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A random opaque identifier with a prefix, like the providers' ids.
    pub fn random_token(prefix: &str) -> String {
        use rand::Rng;
        let bytes: [u8; 24] = rand::rng().random();
        format!("{prefix}{}", hex::encode(bytes))
    }
}

/// Middleware that records every request (method, path, status) for the admin API.
pub async fn record_request(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    if !path.starts_with("/_emulator") {
        let entry = LoggedRequest {
            at_ms: ctx.clock.now_ms(),
            method,
            path,
            status: response.status().as_u16(),
        };
        let mut log = ctx.requests.lock().expect("request log lock");
        if log.len() >= 10_000 {
            log.drain(..1_000);
        }
        log.push(entry);
    }
    response
}
