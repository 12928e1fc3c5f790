//! Meta's usage headers: `X-App-Usage` (platform limits, percent of the hourly budget) and
//! `X-Business-Use-Case-Usage` (Instagram BUC limits per business object, percent of the
//! rolling 24 h budget, with `estimated_time_to_regain_access` in minutes). Both are JSON in a
//! header; absence means low usage.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;

/// The share at which callers should slow down.
pub const BACK_OFF_PERCENT: u32 = 80;

/// The usage figures of one answer (success or error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// `X-App-Usage`.
    pub app: Option<UsageFigures>,
    /// `X-Business-Use-Case-Usage`, one entry per business object and type.
    pub business: Vec<BusinessUsage>,
}

/// Percentages of a budget used (100 = throttled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UsageFigures {
    pub call_count: u32,
    pub total_time: u32,
    pub total_cputime: u32,
}

impl UsageFigures {
    pub fn max_percent(&self) -> u32 {
        self.call_count.max(self.total_time).max(self.total_cputime)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessUsage {
    /// The business object (an Instagram account or Page id).
    pub object_id: String,
    /// `instagram`, `pages`, …
    pub kind: String,
    pub figures: UsageFigures,
    /// How long until calls are allowed again (0 when not throttled).
    pub regain_access_after: Duration,
}

#[derive(Deserialize)]
struct RawBusiness {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(flatten)]
    figures: UsageFigures,
    #[serde(default)]
    estimated_time_to_regain_access: u64,
}

impl Usage {
    /// Reads both headers; `None` when neither is present or readable.
    pub fn from_headers(headers: &HeaderMap) -> Option<Usage> {
        let json = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let app = json("x-app-usage").and_then(|v| serde_json::from_str::<UsageFigures>(v).ok());
        let business = json("x-business-use-case-usage")
            .and_then(|v| serde_json::from_str::<BTreeMap<String, Vec<RawBusiness>>>(v).ok())
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(object_id, entries)| {
                entries.into_iter().map(move |raw| BusinessUsage {
                    object_id: object_id.clone(),
                    kind: raw.kind,
                    figures: raw.figures,
                    regain_access_after: Duration::from_secs(
                        raw.estimated_time_to_regain_access.saturating_mul(60),
                    ),
                })
            })
            .collect::<Vec<_>>();
        (app.is_some() || !business.is_empty()).then_some(Usage { app, business })
    }

    /// The highest percentage of any budget.
    pub fn max_percent(&self) -> u32 {
        let business = self.business.iter().map(|b| b.figures.max_percent());
        self.app
            .iter()
            .map(UsageFigures::max_percent)
            .chain(business)
            .max()
            .unwrap_or(0)
    }

    /// Above [`BACK_OFF_PERCENT`] of any budget: spread the next calls out.
    pub fn should_back_off(&self) -> bool {
        self.max_percent() >= BACK_OFF_PERCENT
    }

    /// The longest `estimated_time_to_regain_access`, if any is set.
    pub fn regain_access_after(&self) -> Option<Duration> {
        self.business
            .iter()
            .map(|b| b.regain_access_after)
            .max()
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-app-usage",
            r#"{"call_count":28,"total_time":25,"total_cputime":25}"#
                .parse()
                .unwrap(),
        );
        headers.insert(
            "x-business-use-case-usage",
            r#"{"1784":[{"type":"instagram","call_count":85,"total_cputime":1,"total_time":2,"estimated_time_to_regain_access":3}]}"#
                .parse()
                .unwrap(),
        );
        let usage = Usage::from_headers(&headers).unwrap();
        assert_eq!(usage.app.unwrap().call_count, 28);
        assert_eq!(usage.business[0].object_id, "1784");
        assert_eq!(usage.max_percent(), 85);
        assert!(usage.should_back_off());
        assert_eq!(usage.regain_access_after(), Some(Duration::from_secs(180)));
        assert_eq!(Usage::from_headers(&HeaderMap::new()), None);
    }
}
