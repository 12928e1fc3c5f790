//! What every handler can reach.

use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusHandle;
use tidepost_app::App;
use tidepost_app::access::secrets_equal;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct HttpState {
    pub app: App,
    pub setup: SetupToken,
    pub metrics: PrometheusHandle,
}

/// The one-time token of the first-run setup link, kept in this process only. It is never enough
/// on its own: the link works only while the database holds no user (checked again, atomically,
/// when the first account is created), and it is dropped as soon as one is seen.
#[derive(Clone, Default)]
pub struct SetupToken(Arc<Mutex<Option<String>>>);

impl SetupToken {
    pub fn new(token: Option<String>) -> Self {
        Self(Arc::new(Mutex::new(token)))
    }

    /// True when `candidate` is the live token (compared in constant time).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0
            .lock()
            .expect("setup token lock")
            .as_deref()
            .is_some_and(|t| secrets_equal(t, candidate))
    }

    /// Drops the token: a user exists, so the link is dead for good.
    pub fn kill(&self) {
        *self.0.lock().expect("setup token lock") = None;
    }

    /// The token itself, to print the setup link.
    pub fn peek(&self) -> Option<String> {
        self.0.lock().expect("setup token lock").clone()
    }

    pub fn is_live(&self) -> bool {
        self.0.lock().expect("setup token lock").is_some()
    }
}
