//! The provider clients tidepost acts through, built from the configuration. In sandbox mode
//! they point at the in-process emulator, with the emulator's app credentials when none are
//! configured.

use secrecy::SecretString;
use tidepost_providers::meta::{MetaClient, MetaEndpoints};
use tidepost_providers::threads::{ThreadsClient, ThreadsEndpoints};
use tidepost_providers::tiktok::{TikTokClient, TikTokEndpoints};

use crate::Config;

/// The emulator's default TikTok app (see the emulator's `tiktok::Config`).
const SANDBOX_TIKTOK_KEY: &str = "sandbox-tiktok-client-key";
const SANDBOX_TIKTOK_SECRET: &str = "sandbox-tiktok-client-secret";

/// The emulator's default Meta apps and webhook verify token (see the emulator's `meta::Config`).
const SANDBOX_FACEBOOK_APP_ID: &str = "1234567890123456";
const SANDBOX_FACEBOOK_APP_SECRET: &str = "emulator-facebook-app-secret";
const SANDBOX_INSTAGRAM_APP_ID: &str = "9876543210987654";
const SANDBOX_INSTAGRAM_APP_SECRET: &str = "emulator-instagram-app-secret";
const SANDBOX_VERIFY_TOKEN: &str = "emulator-verify-token";

/// The emulator's default Threads app (see the emulator's `threads::Config`).
const SANDBOX_THREADS_APP_ID: &str = "1122334455667788";
const SANDBOX_THREADS_APP_SECRET: &str = "emulator-threads-app-secret";

#[derive(Clone, Debug)]
pub struct Providers {
    tiktok: Option<TikTokClient>,
    meta: Option<MetaClient>,
    threads: Option<ThreadsClient>,
    /// Keys `X-Hub-Signature-256` may be made with (the configured webhook secret or the
    /// Facebook app secret, and the Instagram app secret for Instagram Login deliveries).
    meta_webhook_secrets: Vec<SecretString>,
    meta_verify_token: Option<SecretString>,
    /// Meta's latest call-budget figures, fed by every Meta answer.
    meta_usage: crate::usage::UsageBoard,
}

/// A provider is not configured; the message says which settings to give.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotConfigured(pub &'static str);

impl Providers {
    /// `emulator` is the emulator's base URL in sandbox mode.
    pub fn from_config(config: &Config, emulator: Option<&str>) -> Self {
        let http = tidepost_providers::http_client();
        let t = &config.tiktok;
        let tiktok = match (emulator, &t.client_key, &t.client_secret) {
            (Some(base), key, secret) => Some(TikTokClient::new(
                http.clone(),
                TikTokEndpoints::emulator(base),
                key.clone()
                    .unwrap_or_else(|| SANDBOX_TIKTOK_KEY.to_string()),
                secret
                    .clone()
                    .unwrap_or_else(|| SecretString::from(SANDBOX_TIKTOK_SECRET)),
            )),
            (None, Some(key), Some(secret)) => Some(TikTokClient::new(
                http.clone(),
                TikTokEndpoints {
                    auth_base: t.auth_base_url.clone(),
                    api_base: t.api_base_url.clone(),
                },
                key.clone(),
                secret.clone(),
            )),
            _ => None,
        };
        let meta_usage = crate::usage::UsageBoard::default();
        let (meta, meta_webhook_secrets, meta_verify_token) = meta_from_config(config, emulator);
        let meta = meta.map(|client| client.with_usage_sink(meta_usage.sink()));
        let th = &config.threads;
        let threads = match (emulator, &th.app_id, &th.app_secret) {
            (Some(base), Some(id), Some(secret)) => Some(ThreadsClient::new(
                http.clone(),
                ThreadsEndpoints::emulator(base),
                id.clone(),
                secret.clone(),
            )),
            (Some(base), _, _) => Some(ThreadsClient::new(
                http.clone(),
                ThreadsEndpoints::emulator(base),
                SANDBOX_THREADS_APP_ID,
                SecretString::from(SANDBOX_THREADS_APP_SECRET),
            )),
            (None, Some(id), Some(secret)) => Some(ThreadsClient::new(
                http.clone(),
                ThreadsEndpoints {
                    www: th.www_base_url.clone(),
                    graph: th.graph_base_url.clone(),
                    version: "v1.0".into(),
                },
                id.clone(),
                secret.clone(),
            )),
            (None, _, _) => None,
        };
        Self {
            meta_usage,
            tiktok,
            meta,
            threads,
            meta_webhook_secrets,
            meta_verify_token,
        }
    }

    pub fn meta(&self) -> Result<&MetaClient, NotConfigured> {
        self.meta.as_ref().ok_or(NotConfigured(
            "Instagram is not configured: set TIDEPOST_FACEBOOK_APP_ID and TIDEPOST_FACEBOOK_APP_SECRET (or run with --sandbox)",
        ))
    }

    /// The keys an Instagram webhook signature may be made with (empty when not configured).
    /// Meta's call-budget figures as last reported.
    pub fn meta_usage(&self) -> &crate::usage::UsageBoard {
        &self.meta_usage
    }

    pub fn meta_webhook_secrets(&self) -> &[SecretString] {
        &self.meta_webhook_secrets
    }

    /// The token Meta must echo in the webhook handshake, when configured.
    pub fn meta_verify_token(&self) -> Option<&SecretString> {
        self.meta_verify_token.as_ref()
    }

    pub fn threads(&self) -> Result<&ThreadsClient, NotConfigured> {
        self.threads.as_ref().ok_or(NotConfigured(
            "Threads is not configured: set TIDEPOST_THREADS_APP_ID and TIDEPOST_THREADS_APP_SECRET (or run with --sandbox)",
        ))
    }

    pub fn tiktok(&self) -> Result<&TikTokClient, NotConfigured> {
        self.tiktok.as_ref().ok_or(NotConfigured(
            "TikTok is not configured: set TIDEPOST_TIKTOK_CLIENT_KEY and TIDEPOST_TIKTOK_CLIENT_SECRET (or run with --sandbox)",
        ))
    }
}

type MetaParts = (Option<MetaClient>, Vec<SecretString>, Option<SecretString>);

fn meta_from_config(config: &Config, emulator: Option<&str>) -> MetaParts {
    let m = &config.meta;
    let (endpoints, fb_id, fb_secret, ig_id, ig_secret, verify) = match emulator {
        Some(base) => {
            let mut endpoints = MetaEndpoints::emulator(base);
            endpoints.graph_version = m.graph_version.clone();
            let fb_id = m
                .facebook_app_id
                .clone()
                .unwrap_or_else(|| SANDBOX_FACEBOOK_APP_ID.into());
            let fb_secret = m
                .facebook_app_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(SANDBOX_FACEBOOK_APP_SECRET));
            let (ig_id, ig_secret) = match (&m.instagram_app_id, &m.instagram_app_secret) {
                (Some(id), Some(secret)) => (id.clone(), secret.clone()),
                _ => (
                    SANDBOX_INSTAGRAM_APP_ID.to_string(),
                    SecretString::from(SANDBOX_INSTAGRAM_APP_SECRET),
                ),
            };
            let verify = m
                .verify_token
                .clone()
                .or_else(|| Some(SecretString::from(SANDBOX_VERIFY_TOKEN)));
            (endpoints, fb_id, fb_secret, ig_id, ig_secret, verify)
        }
        None => {
            let (Some(fb_id), Some(fb_secret)) = (&m.facebook_app_id, &m.facebook_app_secret)
            else {
                return (None, Vec::new(), m.verify_token.clone());
            };
            let endpoints = MetaEndpoints {
                facebook_www: m.facebook_www_base_url.clone(),
                graph: m.facebook_graph_base_url.clone(),
                instagram_www: m.instagram_www_base_url.clone(),
                instagram_api: m.instagram_api_base_url.clone(),
                instagram_graph: m.instagram_graph_base_url.clone(),
                graph_version: m.graph_version.clone(),
            };
            let ig_id = m.instagram_app_id.clone().unwrap_or_else(|| fb_id.clone());
            let ig_secret = m
                .instagram_app_secret
                .clone()
                .unwrap_or_else(|| fb_secret.clone());
            (
                endpoints,
                fb_id.clone(),
                fb_secret.clone(),
                ig_id,
                ig_secret,
                m.verify_token.clone(),
            )
        }
    };
    let mut secrets = vec![
        m.webhook_secret
            .clone()
            .unwrap_or_else(|| fb_secret.clone()),
    ];
    secrets.push(ig_secret.clone());
    let client = MetaClient::new(
        tidepost_providers::http_client(),
        endpoints,
        fb_id,
        fb_secret,
    )
    .with_instagram_app(ig_id, ig_secret);
    (Some(client), secrets, verify)
}
