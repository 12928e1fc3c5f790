//! Date formats Meta uses: ISO-8601 with `+0000` offsets for objects, and the
//! `Saturday, 30-Mar-24 16:00:00 UTC` style inside token-expiry messages.

const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: usize,
}

/// Howard Hinnant's days-to-civil conversion.
fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        weekday: days.rem_euclid(7) as usize,
    }
}

/// `2024-05-01T12:00:00+0000`, as Graph writes object timestamps.
pub fn iso(secs: i64) -> String {
    let c = civil(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `Saturday, 30-Mar-24 16:00:00 UTC`, as in "Session has expired on …".
pub fn http_date(secs: i64) -> String {
    let c = civil(secs);
    format!(
        "{}, {:02}-{}-{:02} {:02}:{:02}:{:02} UTC",
        DAYS[c.weekday],
        c.day,
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.year.rem_euclid(100),
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso(0), "1970-01-01T00:00:00+0000");
        assert_eq!(iso(1_714_564_800), "2024-05-01T12:00:00+0000");
        assert_eq!(http_date(1_711_814_400), "Saturday, 30-Mar-24 16:00:00 UTC");
    }
}
