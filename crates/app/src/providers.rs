//! The provider clients tidepost acts through, built from the configuration. In sandbox mode
//! they point at the in-process emulator, with the emulator's app credentials when none are
//! configured.

use secrecy::SecretString;
use tidepost_providers::tiktok::{TikTokClient, TikTokEndpoints};

use crate::Config;

/// The emulator's default TikTok app (see the emulator's `tiktok::Config`).
const SANDBOX_TIKTOK_KEY: &str = "sandbox-tiktok-client-key";
const SANDBOX_TIKTOK_SECRET: &str = "sandbox-tiktok-client-secret";

#[derive(Clone, Debug)]
pub struct Providers {
    tiktok: Option<TikTokClient>,
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
        Self { tiktok }
    }

    pub fn tiktok(&self) -> Result<&TikTokClient, NotConfigured> {
        self.tiktok.as_ref().ok_or(NotConfigured(
            "TikTok is not configured: set TIDEPOST_TIKTOK_CLIENT_KEY and TIDEPOST_TIKTOK_CLIENT_SECRET (or run with --sandbox)",
        ))
    }
}
