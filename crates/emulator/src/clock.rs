//! The emulator's clock: real time plus an offset that tests move forward through the admin API,
//! so token expiry, rolling 24-hour caps and container expiry can be tested without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, emulated.
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        real.as_millis() as i64 + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Seconds since the Unix epoch, emulated.
    pub fn now_secs(&self) -> i64 {
        self.now_ms() / 1000
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}
