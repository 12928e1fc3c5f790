//! Fault knobs, one set per provider, changed through `PUT /_emulator/faults/{provider}`
//! (a JSON object whose fields replace the current ones) and `DELETE` (back to no faults).

use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSet {
    /// Share (0.0..=1.0) of API calls answered with the provider's rate-limit error.
    pub rate_limit_share: f64,
    /// `Retry-After` seconds sent with injected rate-limit errors where the provider sends one.
    pub retry_after_secs: Option<u64>,
    /// Share of API calls answered with a 5xx.
    pub server_error_share: f64,
    /// Added latency on every API call, in milliseconds.
    pub latency_ms: u64,
    /// Drop the connection of an upload after this many bytes of its body were read.
    pub drop_upload_after_bytes: Option<u64>,
    /// Every access token issued so far is revoked provider-side (the next call gets the
    /// provider's invalid-token error).
    pub revoke_all_tokens: bool,
    /// Refresh grants are refused as if the refresh token were revoked.
    pub refuse_refresh: bool,
    /// Media containers (Meta) and publishes (TikTok) end in an error state.
    pub fail_processing: bool,
    /// Every webhook is delivered twice.
    pub duplicate_webhooks: bool,
    /// Webhooks are held and sent in reverse order of creation, in batches of this size.
    pub reorder_webhooks: Option<usize>,
    /// Webhooks wait this long before their first delivery attempt, in milliseconds.
    pub webhook_delay_ms: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    pub tiktok: Mutex<FaultSet>,
    pub meta: Mutex<FaultSet>,
    pub threads: Mutex<FaultSet>,
}

/// Which provider a knob or a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Tiktok,
    Meta,
    Threads,
}

impl Faults {
    pub fn get(&self, provider: Provider) -> FaultSet {
        self.slot(provider).lock().expect("faults lock").clone()
    }

    pub fn set(&self, provider: Provider, set: FaultSet) {
        *self.slot(provider).lock().expect("faults lock") = set;
    }

    fn slot(&self, provider: Provider) -> &Mutex<FaultSet> {
        match provider {
            Provider::Tiktok => &self.tiktok,
            Provider::Meta => &self.meta,
            Provider::Threads => &self.threads,
        }
    }
}

impl FaultSet {
    /// Rolls the dice for the injected rate-limit share.
    pub fn roll_rate_limit(&self) -> bool {
        roll(self.rate_limit_share)
    }

    /// Rolls the dice for the injected 5xx share.
    pub fn roll_server_error(&self) -> bool {
        roll(self.server_error_share)
    }
}

fn roll(share: f64) -> bool {
    share > 0.0 && rand::rng().random::<f64>() < share
}
