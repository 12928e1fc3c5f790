//! What Meta last said about call budgets (`X-App-Usage`, `X-Business-Use-Case-Usage`), so
//! jobs slow down before Meta blocks them. Meta reports these figures on every answer, so each
//! instance keeps the latest it saw; the provider stays the source of truth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidepost_providers::meta::{Usage, UsageSink};

/// Above this share of any budget, calls wait.
pub const BACK_OFF_PERCENT: u32 = 80;
/// A reading older than this no longer holds calls back.
const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
/// The wait when Meta gives no estimate of when access returns.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Default, Debug)]
pub struct UsageBoard(Arc<Mutex<HashMap<String, Reading>>>);

#[derive(Clone, Copy, Debug)]
struct Reading {
    percent: u32,
    regain_after: Option<Duration>,
    at: Instant,
}

/// The key of the app-wide budget (`X-App-Usage`).
const APP: &str = "app";

impl UsageBoard {
    /// A sink for [`tidepost_providers::meta::MetaClient::with_usage_sink`].
    pub fn sink(&self) -> UsageSink {
        let board = self.clone();
        Arc::new(move |_call, usage| board.record(usage, Instant::now()))
    }

    fn record(&self, usage: &Usage, at: Instant) {
        let mut readings = self.0.lock().expect("usage board lock");
        if let Some(app) = &usage.app {
            readings.insert(
                APP.into(),
                Reading {
                    percent: app.max_percent(),
                    regain_after: None,
                    at,
                },
            );
        }
        for business in &usage.business {
            let regain_after = Some(business.regain_access_after).filter(|d| !d.is_zero());
            readings.insert(
                business.object_id.clone(),
                Reading {
                    percent: business.figures.max_percent(),
                    regain_after,
                    at,
                },
            );
        }
    }

    /// How long calls for `object_id` (an Instagram account id) should wait, if the app's or
    /// that account's budget was last seen at or above [`BACK_OFF_PERCENT`].
    pub fn wait_for(&self, object_id: &str) -> Option<(u32, Duration)> {
        self.wait_at(object_id, Instant::now())
    }

    fn wait_at(&self, object_id: &str, now: Instant) -> Option<(u32, Duration)> {
        let readings = self.0.lock().expect("usage board lock");
        [APP, object_id]
            .iter()
            .filter_map(|key| readings.get(*key))
            .filter(|r| now.duration_since(r.at) < FRESH_FOR && r.percent >= BACK_OFF_PERCENT)
            .map(|r| (r.percent, r.regain_after.unwrap_or(DEFAULT_WAIT)))
            .max_by_key(|(_, wait)| *wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn usage(app: &str, business: &str) -> Usage {
        let mut headers = HeaderMap::new();
        headers.insert("x-app-usage", app.parse().unwrap());
        headers.insert("x-business-use-case-usage", business.parse().unwrap());
        Usage::from_headers(&headers).unwrap()
    }

    #[test]
    fn waits_only_when_high_and_recent() {
        let board = UsageBoard::default();
        let now = Instant::now();
        board.record(&usage(r#"{"call_count":10,"total_time":5,"total_cputime":5}"#, r#"{"17841":[{"type":"instagram","call_count":95,"total_time":10,"total_cputime":10,"estimated_time_to_regain_access":3}]}"#), now);
        assert_eq!(
            board.wait_at("17841", now),
            Some((95, Duration::from_secs(180)))
        );
        assert_eq!(
            board.wait_at("other", now),
            None,
            "another account's budget is its own"
        );
        assert_eq!(
            board.wait_at("17841", now + FRESH_FOR),
            None,
            "old readings expire"
        );
        board.record(
            &usage(
                r#"{"call_count":85,"total_time":5,"total_cputime":5}"#,
                r#"{}"#,
            ),
            now,
        );
        assert_eq!(
            board.wait_at("other", now),
            Some((85, DEFAULT_WAIT)),
            "the app budget holds every account"
        );
    }
}
