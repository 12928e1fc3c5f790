//! When a post goes out: the schedule as given (RFC 3339 with an offset, or a local time with
//! an IANA zone), and the rolling 24-hour limits checked at that time.
//!
//! Zones go through `jiff` (already tidepost's calendar library): it reads the system's tz
//! database and handles DST gaps and folds explicitly.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// A day in milliseconds: the window of TikTok's daily caps and Instagram's publishing limit.
pub use crate::pipeline::quota::DAY_MS;

/// A schedule that parsed: the instant (UTC ms) and the zone to show it back in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    pub at_ms: i64,
    /// The IANA zone name it was given in, when one was given.
    pub time_zone: Option<String>,
}

/// Why a schedule does not parse, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// `scheduled_at` or `time_zone`.
    pub field: &'static str,
    pub message: String,
    /// The local time happens twice in its zone (the clocks go back): a form can ask which
    /// ([`Repeated`]).
    pub repeated: bool,
}

fn bad(field: &'static str, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field,
        message: message.into(),
        repeated: false,
    }
}

/// Which of a local time that happens twice (the hour repeated when the clocks go back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeated {
    First,
    Second,
}

impl Repeated {
    /// A form's value: `first` or `second`; anything else is no choice.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "first" => Some(Self::First),
            "second" => Some(Self::Second),
            _ => None,
        }
    }
}

/// Parses `scheduled_at`: an RFC 3339 instant with an offset (`2026-12-01T09:00:00+01:00`,
/// `…Z`), or a local date and time without offset (`2026-12-01T09:00`) read in `time_zone`
/// (an IANA name such as `Europe/Paris`). A local time that does not exist in the zone (the
/// hour skipped when clocks go forward) is refused with the change named; one that happens
/// twice (clocks go back) is refused with both instants named, to be given with an offset
/// (or chosen with [`parse_choosing`]).
pub fn parse(scheduled_at: &str, time_zone: Option<&str>) -> Result<When, ScheduleError> {
    parse_choosing(scheduled_at, time_zone, None)
}

/// [`parse`], with the choice a form made of a local time that happens twice.
pub fn parse_choosing(
    scheduled_at: &str,
    time_zone: Option<&str>,
    repeated: Option<Repeated>,
) -> Result<When, ScheduleError> {
    let text = scheduled_at.trim();
    let zone = match time_zone.map(str::trim).filter(|z| !z.is_empty()) {
        Some(name) => Some((
            name.to_string(),
            TimeZone::get(name).map_err(|_| {
                bad(
                    "time_zone",
                    format!(
                        "{name:?} is not a known IANA time zone (for example Europe/Paris or America/New_York)"
                    ),
                )
            })?,
        )),
        None => None,
    };
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(When {
            at_ms: ts.as_millisecond(),
            time_zone: zone.map(|(name, _)| name),
        });
    }
    let civil: DateTime = text.parse().map_err(|_| {
        bad(
            "scheduled_at",
            format!(
                "{text:?} is not a date and time: give RFC 3339 with an offset (2026-12-01T09:00:00+01:00) or a local time (2026-12-01T09:00) with a time_zone"
            ),
        )
    })?;
    let Some((name, tz)) = zone else {
        return Err(bad(
            "time_zone",
            format!(
                "{text:?} has no UTC offset: say which time zone it is in (time_zone, an IANA name such as Europe/Paris)"
            ),
        ));
    };
    let ambiguous = tz.to_ambiguous_zoned_datetime(civil);
    let day_time = civil.strftime("%a %-d %b %Y, %H:%M");
    let zoned = match ambiguous.offset() {
        jiff::tz::AmbiguousOffset::Unambiguous { .. } => ambiguous.compatible(),
        jiff::tz::AmbiguousOffset::Gap { before, after } => {
            return Err(bad(
                "scheduled_at",
                format!(
                    "{day_time} does not exist in {name}: that night the clocks go forward from UTC{before} to UTC{after}, skipping it; choose another time"
                ),
            ));
        }
        jiff::tz::AmbiguousOffset::Fold { before, after } => match repeated {
            Some(Repeated::First) => ambiguous.earlier(),
            Some(Repeated::Second) => ambiguous.later(),
            None => {
                let stamp = civil.strftime("%Y-%m-%dT%H:%M");
                return Err(ScheduleError {
                    field: "scheduled_at",
                    message: format!(
                        "{day_time} happens twice in {name}: that night the clocks go back from UTC{before} to UTC{after}; say which, {stamp}{before} (the first) or {stamp}{after} (the second)"
                    ),
                    repeated: true,
                });
            }
        },
    }
    .map_err(|e| bad("scheduled_at", e.to_string()))?;
    Ok(When {
        at_ms: zoned.timestamp().as_millisecond(),
        time_zone: Some(name),
    })
}

/// `at_ms` shown in `time_zone` (RFC 3339 with that zone's offset), or in UTC.
pub fn show(at_ms: i64, time_zone: Option<&str>) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return at_ms.to_string();
    };
    match time_zone.and_then(|name| TimeZone::get(name).ok()) {
        Some(tz) => ts
            .to_zoned_datetime(tz)
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        None => tidepost_domain::time::rfc3339(at_ms),
    }
}

/// `at_ms` as a form's date-and-time field holds it (`2026-12-01T09:30`), in `time_zone` when
/// it is a known zone, else in UTC: what [`parse`] reads back with the same zone.
pub fn local_input(at_ms: i64, time_zone: Option<&str>) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return String::new();
    };
    let zone = time_zone
        .and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC);
    ts.to_zoned_datetime(zone)
        .strftime("%Y-%m-%dT%H:%M")
        .to_string()
}

/// `at_ms` as a person reads it: `Tue 1 Dec 2026, 09:30 (America/New_York)`, in `time_zone`
/// when it is a known zone, else `… 14:30 UTC`.
pub fn spoken(at_ms: i64, time_zone: Option<&str>) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(at_ms) else {
        return at_ms.to_string();
    };
    match time_zone.and_then(|name| TimeZone::get(name).ok().map(|tz| (name, tz))) {
        Some((name, tz)) => format!(
            "{} ({name})",
            ts.to_zoned_datetime(tz).strftime("%a %-d %b %Y, %H:%M")
        ),
        None => format!(
            "{} UTC",
            ts.to_zoned_datetime(TimeZone::UTC)
                .strftime("%a %-d %b %Y, %H:%M")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_zones() {
        let w = parse("2026-12-01T09:00:00+01:00", None).unwrap();
        assert_eq!(
            tidepost_domain::time::rfc3339(w.at_ms),
            "2026-12-01T08:00:00Z"
        );
        assert_eq!(w.time_zone, None);
        let w = parse("2026-12-01T09:00", Some("Europe/Paris")).unwrap();
        assert_eq!(
            tidepost_domain::time::rfc3339(w.at_ms),
            "2026-12-01T08:00:00Z"
        );
        assert_eq!(w.time_zone.as_deref(), Some("Europe/Paris"));
        // Summer time in Paris is UTC+2.
        let w = parse("2026-07-01T09:00:00", Some("Europe/Paris")).unwrap();
        assert_eq!(
            tidepost_domain::time::rfc3339(w.at_ms),
            "2026-07-01T07:00:00Z"
        );
        assert_eq!(
            show(w.at_ms, Some("Europe/Paris")),
            "2026-07-01T09:00:00+02:00"
        );
        assert_eq!(show(w.at_ms, None), "2026-07-01T07:00:00Z");
        assert_eq!(
            spoken(w.at_ms, Some("Europe/Paris")),
            "Wed 1 Jul 2026, 09:00 (Europe/Paris)"
        );
        assert_eq!(spoken(w.at_ms, None), "Wed 1 Jul 2026, 07:00 UTC");
        assert_eq!(
            spoken(w.at_ms, Some("Not/AZone")),
            "Wed 1 Jul 2026, 07:00 UTC"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            parse("2026-12-01T09:00", None).unwrap_err().field,
            "time_zone"
        );
        assert_eq!(parse("tomorrow", None).unwrap_err().field, "scheduled_at");
        assert_eq!(
            parse("2026-12-01T09:00", Some("Mars/Olympus"))
                .unwrap_err()
                .field,
            "time_zone"
        );
        // 02:30 on the last Sunday of March does not exist in Paris.
        let gap = parse("2026-03-29T02:30", Some("Europe/Paris")).unwrap_err();
        assert_eq!(gap.field, "scheduled_at");
        assert!(gap.message.contains("skip"), "{}", gap.message);
        assert!(!gap.repeated);
        // 02:30 on the last Sunday of October happens twice: the person says which.
        let fold = parse("2026-10-25T02:30", Some("Europe/Paris")).unwrap_err();
        assert_eq!(fold.field, "scheduled_at");
        assert!(fold.repeated);
        assert!(
            fold.message.contains("happens twice in Europe/Paris"),
            "{}",
            fold.message
        );
        let first = parse_choosing(
            "2026-10-25T02:30",
            Some("Europe/Paris"),
            Some(Repeated::First),
        );
        assert_eq!(
            tidepost_domain::time::rfc3339(first.unwrap().at_ms),
            "2026-10-25T00:30:00Z"
        );
        let second = parse_choosing(
            "2026-10-25T02:30",
            Some("Europe/Paris"),
            Some(Repeated::Second),
        );
        assert_eq!(
            tidepost_domain::time::rfc3339(second.unwrap().at_ms),
            "2026-10-25T01:30:00Z"
        );
        // Each of the two instants the refusal names is accepted as it is written there.
        for (written, utc) in [
            ("2026-10-25T02:30+02", "2026-10-25T00:30:00Z"),
            ("2026-10-25T02:30+01", "2026-10-25T01:30:00Z"),
        ] {
            assert!(
                fold.message.contains(written),
                "{written} in {}",
                fold.message
            );
            let w = parse(written, Some("Europe/Paris")).unwrap();
            assert_eq!(tidepost_domain::time::rfc3339(w.at_ms), utc);
        }
    }

    #[test]
    fn new_york_skips_and_repeats_an_hour() {
        // 8 March 2026: 02:00 EST becomes 03:00 EDT.
        let gap = parse("2026-03-08T02:30", Some("America/New_York")).unwrap_err();
        assert!(
            gap.message.contains("does not exist in America/New_York")
                && gap.message.contains("UTC-05")
                && gap.message.contains("UTC-04"),
            "{}",
            gap.message
        );
        // 1 November 2026: 01:00–02:00 happens twice.
        let fold = parse("2026-11-01T01:30", Some("America/New_York")).unwrap_err();
        assert!(fold.repeated, "{}", fold.message);
        // An hour away from either change is one instant.
        let plain = parse("2026-11-01T03:30", Some("America/New_York")).unwrap();
        assert_eq!(
            tidepost_domain::time::rfc3339(plain.at_ms),
            "2026-11-01T08:30:00Z"
        );
    }
}
