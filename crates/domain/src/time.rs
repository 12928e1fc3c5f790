//! Time as stored: milliseconds since the Unix epoch in a 64-bit integer, the same on SQLite and
//! PostgreSQL. Conversions to calendar time (time zones, display) go through `jiff`.

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Formats a stored timestamp as RFC 3339 in UTC (`2026-11-25T00:36:00Z`).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| ms.to_string())
}
