//! Retry policies: how many attempts, and how long to wait between them.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter: before attempt `n + 1` wait `min(cap, base · 2^(n-1))`,
/// less a random share of up to `jitter` of it (so instances that failed together spread out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Between 0 (exact delays) and 1 (anywhere from 0 to the full delay).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// Ten attempts from 5 s up to an hour apart: about three and a half hours in all.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    pub fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Self {
            max_attempts,
            base,
            cap,
            ..Self::default()
        }
    }

    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The longest wait after failed attempt `attempt` (1-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.cap)
    }

    /// The wait after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let cut = rand::rng().random_range(0.0..=self.jitter.clamp(0.0, 1.0));
        ceiling.mul_f64(1.0 - cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let policy =
            RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(10)).with_jitter(0.0);
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(policy.ceiling(200), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let policy =
            RetryPolicy::new(5, Duration::from_secs(8), Duration::from_secs(60)).with_jitter(0.5);
        for _ in 0..200 {
            let d = policy.delay(1);
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }
}
