//! Time as plain values: milliseconds since the Unix epoch (UTC) and day numbers.
//!
//! The core never reads a clock; adapters pass instants in. Day numbers are what the
//! rolling windows and timers work in, so every rule is exact at day resolution.

use chrono::{DateTime, SecondsFormat, Utc};
use compact_str::CompactString;

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
///
/// The common UTC forms (`…:SSZ` and `…:SS.mmmZ`) take a direct path; anything else
/// (offsets, other precisions, leap seconds, lower-case separators) goes to chrono. Both
/// give the same answer: a property test compares them.
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    match parse_utc_fast(s.as_bytes()) {
        Some(ts) => Some(ts),
        None => parse_rfc3339_chrono(s),
    }
}

fn parse_rfc3339_chrono(s: &str) -> Option<Ts> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp_millis())
}

/// `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` means "not this form,
/// ask chrono" (never "invalid").
fn parse_utc_fast(b: &[u8]) -> Option<Ts> {
    let ms = match b.len() {
        20 if b[19] == b'Z' => 0,
        24 if b[19] == b'.' && b[23] == b'Z' => digits(&b[20..23])?,
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, sec) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 59 {
        return None; // a leap second: chrono's rules apply
    }
    let day = days_from_civil(y, mo, d);
    Some(day * DAY_MS + ((h * 60 + mi) * 60 + sec) * 1000 + ms)
}

#[inline]
fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes `v % 100` as two ASCII digits at `b[i..i + 2]`.
#[inline]
fn put2(b: &mut [u8], i: usize, v: u32) {
    b[i] = b'0' + (v / 10 % 10) as u8;
    b[i + 1] = b'0' + (v % 10) as u8;
}

/// Writes `YYYY-MM-DD` (a year in 0..10000) at `b[..10]`.
#[inline]
fn put_date(b: &mut [u8], day: i64) {
    let (y, m, d) = civil_from_days(day);
    put2(b, 0, (y / 100) as u32);
    put2(b, 2, (y % 100) as u32);
    b[4] = b'-';
    put2(b, 5, m);
    b[7] = b'-';
    put2(b, 8, d);
}

/// An inline string from ASCII digits and separators written by `put_*`.
#[inline]
fn inline_ascii(b: &[u8]) -> CompactString {
    // Every byte written is ASCII; the fallback cannot be reached and only avoids `unsafe`.
    std::str::from_utf8(b)
        .map(CompactString::new)
        .unwrap_or_default()
}

/// Formats milliseconds as RFC 3339 UTC with millisecond precision only when needed,
/// so outputs are stable byte for byte.
///
/// Instants in 1970..2099 (every accepted event time) are formatted directly, the rest by
/// chrono; chrono's `to_rfc3339_opts(AutoSi)` was ~2 % of replay. A property test checks
/// that both agree.
///
/// The result is a [`CompactString`]: at most 24 bytes, so it is built inline, without
/// an allocation (outputs carry several instants each). The digits are written into a
/// stack buffer first: pushing them one by one onto the string was ~10 % of replay
/// (a capacity and inline/heap check per character).
pub fn format_rfc3339(ts: Ts) -> CompactString {
    if !(MIN_TS..MAX_TS).contains(&ts) {
        return format_rfc3339_chrono(ts).into();
    }
    let mut b = [0u8; 24];
    put_date(&mut b, ts.div_euclid(DAY_MS));
    let ms_of_day = ts.rem_euclid(DAY_MS);
    let secs = (ms_of_day / 1000) as u32;
    b[10] = b'T';
    put2(&mut b, 11, secs / 3600);
    b[13] = b':';
    put2(&mut b, 14, secs / 60 % 60);
    b[16] = b':';
    put2(&mut b, 17, secs % 60);
    let ms = (ms_of_day % 1000) as u32;
    let len = if ms != 0 {
        b[19] = b'.';
        b[20] = b'0' + (ms / 100) as u8;
        put2(&mut b, 21, ms % 100);
        23
    } else {
        19
    };
    b[len] = b'Z';
    inline_ascii(&b[..=len])
}

fn format_rfc3339_chrono(ts: Ts) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ts) {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ts.to_string(),
    }
}

/// The calendar date (`YYYY-MM-DD`) of a day number (inline, like [`format_rfc3339`]).
pub fn format_date(day: Day) -> CompactString {
    if !(0..day_of(MAX_TS)).contains(&day) {
        let s = format_rfc3339_chrono(day_start(day));
        return s.get(..10).unwrap_or(&s).into();
    }
    let mut b = [0u8; 10];
    put_date(&mut b, day as i64);
    inline_ascii(&b)
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
    fn direct_paths_agree_with_chrono() {
        // Every day of the accepted range, at instants with and without milliseconds.
        for day in 0..day_of(MAX_TS) {
            let date = format_date(day);
            for ts in [
                day_start(day),
                day_start(day) + 45_296_007,
                day_start(day) + DAY_MS - 1,
            ] {
                let text = format_rfc3339(ts);
                assert_eq!(text, format_rfc3339_chrono(ts));
                assert_eq!(&text[..10], date);
                assert_eq!(parse_utc_fast(text.as_bytes()), Some(ts), "{text}");
            }
        }
        assert_eq!(format_rfc3339(-1), format_rfc3339_chrono(-1));
        assert_eq!(
            format_rfc3339(MAX_TS + 7),
            format_rfc3339_chrono(MAX_TS + 7)
        );
        assert_eq!(format_date(-3), "1969-12-29");
        // Not the direct path's form, or not a date: chrono decides.
        for s in [
            "2026-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-01-01t00:00:00z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T00:00:00.123456Z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:0aZ",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.1-3Z",
        ] {
            assert_eq!(
                parse_rfc3339(s),
                parse_rfc3339_chrono(s),
                "{s}: direct path and chrono disagree"
            );
        }
    }

    proptest::proptest! {
        /// Arbitrary strings of the direct path's shape parse as chrono parses them.
        #[test]
        fn parse_matches_chrono(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,4})?[Zz]"
        ) {
            proptest::prop_assert_eq!(parse_rfc3339(&s), parse_rfc3339_chrono(&s));
        }
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
