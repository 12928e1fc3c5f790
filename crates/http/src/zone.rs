//! The time zone a person sees times in: the one they chose in their settings, else their
//! browser's (the `tp_tz` cookie `assets/app.js` keeps), else UTC. Every time a page shows goes
//! through [`Zone`], named, never a bare UTC stamp.

use jiff::tz::TimeZone;

/// The cookie in which the browser's own zone comes (set by `assets/app.js`).
pub const BROWSER_ZONE_COOKIE: &str = "tp_tz";

/// Where a viewer's zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// Chosen in the person's settings.
    Chosen,
    /// The browser's zone, because they chose none.
    Browser,
    /// Neither: UTC.
    Default,
}

/// A known IANA zone with its name.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
    source: ZoneSource,
}

impl Zone {
    /// UTC, for people and pages without a zone of their own.
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            tz: TimeZone::UTC,
            source: ZoneSource::Default,
        }
    }

    /// The zone named `name` when it is a known IANA zone.
    pub fn named(name: &str, source: ZoneSource) -> Option<Self> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return None;
        }
        TimeZone::get(name).ok().map(|tz| Self {
            name: name.to_string(),
            tz,
            source,
        })
    }

    /// The person's chosen zone, else the browser's, else UTC. An unknown name (a zone removed
    /// from the system's database, a forged cookie) falls through to the next.
    pub fn pick(chosen: Option<&str>, browser: Option<&str>) -> Self {
        chosen
            .and_then(|name| Self::named(name, ZoneSource::Chosen))
            .or_else(|| browser.and_then(|name| Self::named(name, ZoneSource::Browser)))
            .unwrap_or_else(Self::utc)
    }

    /// For a page seen without a session (the embedded widget): the browser's zone when its
    /// cookie came, else UTC.
    pub fn of_browser(headers: &axum::http::HeaderMap) -> Self {
        let jar = axum_extra::extract::CookieJar::from_headers(headers);
        Self::pick(None, jar.get(BROWSER_ZONE_COOKIE).map(|c| c.value()))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    pub fn source(&self) -> ZoneSource {
        self.source
    }

    /// `ms` in this zone.
    pub fn zoned(&self, ms: i64) -> Option<jiff::ZonedDateTime> {
        jiff::Timestamp::from_millisecond(ms)
            .ok()
            .map(|ts| ts.to_zoned_datetime(self.tz.clone()))
    }

    /// A stored timestamp for a table cell: `2026-12-07 09:30 EST`, the zone's abbreviation
    /// at that instant naming it (`never` for none).
    pub fn when(&self, ms: Option<i64>) -> String {
        match ms.and_then(|ms| self.zoned(ms)) {
            Some(local) => local.strftime("%Y-%m-%d %H:%M %Z").to_string(),
            None => "never".to_string(),
        }
    }

    /// A time as a person reads it in a sentence: `Mon 7 Dec 2026, 09:30 (America/New_York)`.
    pub fn spoken(&self, ms: i64) -> String {
        tidepost_app::compose::schedule::spoken(ms, Some(&self.name))
    }

    /// `ms` as a form's date-and-time field holds it in this zone (`2026-12-07T09:30`).
    pub fn local_input(&self, ms: i64) -> String {
        tidepost_app::compose::schedule::local_input(ms, Some(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_then_browser_then_utc() {
        let z = Zone::pick(Some("Asia/Tokyo"), Some("America/New_York"));
        assert_eq!((z.name(), z.source()), ("Asia/Tokyo", ZoneSource::Chosen));
        let z = Zone::pick(None, Some("America/New_York"));
        assert_eq!(
            (z.name(), z.source()),
            ("America/New_York", ZoneSource::Browser)
        );
        let z = Zone::pick(Some("Mars/Olympus"), Some("not a zone"));
        assert_eq!((z.name(), z.source()), ("UTC", ZoneSource::Default));
    }

    #[test]
    fn a_cell_names_the_zone_at_that_instant() {
        let ny = Zone::pick(Some("America/New_York"), None);
        // 2026-12-07T14:30Z is 09:30 EST; 2026-07-01T13:30Z is 09:30 EDT.
        assert_eq!(ny.when(Some(1_796_653_800_000)), "2026-12-07 09:30 EST");
        assert_eq!(ny.when(Some(1_782_912_600_000)), "2026-07-01 09:30 EDT");
        assert_eq!(ny.when(None), "never");
        let tokyo = Zone::pick(Some("Asia/Tokyo"), None);
        assert_eq!(tokyo.when(Some(1_796_653_800_000)), "2026-12-07 23:30 JST");
        assert_eq!(
            Zone::utc().when(Some(1_796_653_800_000)),
            "2026-12-07 14:30 UTC"
        );
    }
}
