//! The engine's clock: the system time plus an offset that tests move, or a frozen instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// Now, in milliseconds since the epoch, as the engine sees it. Cheap to clone; clones share
/// their offset, so advancing one advances all.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Added to the system time, or the whole time when frozen.
    offset_ms: AtomicI64,
    frozen: AtomicBool,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands still at `ms` until advanced.
    pub fn frozen_at(ms: i64) -> Self {
        let clock = Self::default();
        clock.inner.offset_ms.store(ms, Ordering::SeqCst);
        clock.inner.frozen.store(true, Ordering::SeqCst);
        clock
    }

    pub fn now_ms(&self) -> i64 {
        let offset = self.inner.offset_ms.load(Ordering::SeqCst);
        if self.inner.frozen.load(Ordering::SeqCst) {
            offset
        } else {
            tidepost_domain::now_ms() + offset
        }
    }

    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, by: Duration) {
        self.inner.offset_ms.fetch_add(millis(by), Ordering::SeqCst);
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_and_advanced() {
        let clock = Clock::frozen_at(1_000);
        let twin = clock.clone();
        twin.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);

        let system = Clock::system();
        let before = system.now_ms();
        system.advance(Duration::from_secs(3600));
        assert!(system.now_ms() >= before + 3_600_000);
    }
}
