//! Time as plain values: milliseconds since the Unix epoch (UTC) and day numbers.
//!
//! The core never reads a clock; adapters pass instants in. Day numbers are what the
//! rolling windows and timers work in, so every rule is exact at day resolution.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Ts = i64;

/// Days since 1970-01-01 (UTC calendar days).
pub type Day = i32;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Earliest accepted event time (1970-01-01): day numbers stay non-negative.
pub const MIN_TS: Ts = 0;
/// First instant that is no longer accepted (2100-01-01T00:00:00Z).
pub const MAX_TS: Ts = 4_102_444_800_000;

/// The UTC calendar day an instant falls on.
#[inline]
pub fn day_of(ts: Ts) -> Day {
    ts.div_euclid(DAY_MS) as Day
}

/// The first instant of a day.
#[inline]
pub fn day_start(day: Day) -> Ts {
    day as i64 * DAY_MS
}

/// Parses an RFC 3339 timestamp (`2026-03-15T09:30:00Z`, offsets allowed) to milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp_millis())
}

/// Formats milliseconds as RFC 3339 UTC with millisecond precision only when needed,
/// so outputs are stable byte for byte.
pub fn format_rfc3339(ts: Ts) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ts) {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ts.to_string(),
    }
}

/// Parses a duration such as `90s`, `5m`, `24h`, `7d` or `250ms` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_instants_round_trip() {
        let ts = parse_rfc3339("2026-03-15T09:30:00Z").unwrap();
        assert_eq!(format_rfc3339(ts), "2026-03-15T09:30:00Z");
        assert_eq!(
            day_start(day_of(ts)),
            parse_rfc3339("2026-03-15T00:00:00Z").unwrap()
        );
        assert_eq!(day_of(day_start(20_000)), 20_000);
        assert_eq!(
            parse_rfc3339("2026-03-15T10:30:00+01:00"),
            Some(ts),
            "offsets are normalised to UTC"
        );
        assert_eq!(format_rfc3339(ts + 5), "2026-03-15T09:30:00.005Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("24h"), Some(86_400_000));
        assert_eq!(parse_duration_ms("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5 m"), Some(300_000));
        assert_eq!(parse_duration_ms("m"), None);
        assert_eq!(parse_duration_ms("5y"), None);
        assert_eq!(parse_duration_ms("99999999999999999999s"), None);
    }
}
