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

/// The one-time token of the first-run setup link. It exists only while there is no user; the
/// first account created through it consumes it.
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

    /// Consumes the token if `candidate` matches it.
    pub fn take(&self, candidate: &str) -> bool {
        let mut slot = self.0.lock().expect("setup token lock");
        if slot.as_deref().is_some_and(|t| secrets_equal(t, candidate)) {
            *slot = None;
            true
        } else {
            false
        }
    }

    /// The token itself, to print the setup link.
    pub fn peek(&self) -> Option<String> {
        self.0.lock().expect("setup token lock").clone()
    }

    pub fn is_live(&self) -> bool {
        self.0.lock().expect("setup token lock").is_some()
    }
}
