//! Money tests: exact number parsing, half-even rounding, rates by time, config errors.

use super::*;

fn dec(s: &str) -> Decimal {
    parse_json_number(s).unwrap()
}

fn cur(s: &str) -> Currency {
    Currency::parse(s).unwrap()
}

#[test]
fn json_numbers_are_read_exactly() {
    assert_eq!(
        dec("18750.00"),
        Decimal {
            digits: 1875,
            scale: -1
        }
    );
    assert_eq!(
        dec("0.1"),
        Decimal {
            digits: 1,
            scale: 1
        }
    );
    assert_eq!(
        dec("1000"),
        Decimal {
            digits: 1,
            scale: -3
        }
    );
    assert_eq!(
        dec("1.5e3"),
        Decimal {
            digits: 15,
            scale: -2
        }
    );
    assert_eq!(
        dec("25E-1"),
        Decimal {
            digits: 25,
            scale: 1
        }
    );
    assert_eq!(
        dec("0.000"),
        Decimal {
            digits: 0,
            scale: 0
        }
    );
    assert_eq!(
        dec("-0"),
        Decimal {
            digits: 0,
            scale: 0
        }
    );
    assert_eq!(
        dec("1e-999"),
        Decimal {
            digits: 0,
            scale: 0
        }
    );
    // 0.1 + 0.2 as a float prints 17 digits: still exact.
    assert_eq!(
        dec("0.30000000000000004"),
        Decimal {
            digits: 30_000_000_000_000_004,
            scale: 17
        }
    );
    assert_eq!(
        dec("9999999999999999999"),
        Decimal {
            digits: 9_999_999_999_999_999_999,
            scale: 0
        }
    );
    assert_eq!(
        parse_json_number("99999999999999999999"),
        Err(NumberError::OutOfRange)
    );
    assert_eq!(parse_json_number("1e999"), Err(NumberError::OutOfRange));
    assert_eq!(parse_json_number("-5"), Err(NumberError::Negative));
    for bad in [
        "\"12\"", "", "-", "01", "1.", ".5", "1e", "1e+", "[1]", "true", "1 ", "+1", "1.2.3",
    ] {
        assert_eq!(
            parse_json_number(bad),
            Err(NumberError::NotANumber),
            "{bad}"
        );
    }
}

#[test]
fn conversion_rounds_once_half_even() {
    let c = |a: &str, r: &str, e: u32| convert(dec(a), parse_rate(r).unwrap(), e).unwrap();
    assert_eq!(c("100.00", "7.1234", 2), 71_234);
    assert_eq!(c("1000", "0.04831", 2), 4_831);
    // 500 JPY × 0.04831 = 24.155 CNY: a half cent, to the even 2416.
    assert_eq!(c("500", "0.04831", 2), 2_416);
    // 1500 JPY × 0.04831 = 72.465 CNY: a half cent, to the even 7246.
    assert_eq!(c("1500", "0.04831", 2), 7_246);
    // Same currency (rate 1): half-even on the amount's own text.
    assert_eq!(c("0.125", "1", 2), 12);
    assert_eq!(c("0.135", "1", 2), 14);
    assert_eq!(c("0.1251", "1", 2), 13);
    // A reporting currency without decimals (JPY) rounds to whole units, kept in hundredths.
    assert_eq!(c("12.345", "7.1234", 0), 8_800);
    assert_eq!(c("1", "0.5", 0), 0);
    assert_eq!(c("3", "0.5", 0), 200);
    // KWD has three decimals: 1.234 KWD × 21.5678 = 26.6146652.
    assert_eq!(c("1.234", "21.5678", 2), 2_661);
    // Exponents in the amount and tiny values.
    assert_eq!(c("1.5e3", "1", 2), 150_000);
    assert_eq!(c("1e-30", "7.1234", 2), 0);
    // Too large for 63 bits of hundredths.
    assert_eq!(
        convert(dec("9999999999999999999"), dec("9999999999999999999"), 2),
        None
    );
    assert_eq!(convert(dec("1e30"), Decimal::ONE, 2), None);
}

#[test]
fn exponents_follow_iso_4217() {
    for (c, e) in [
        ("JPY", 0),
        ("KRW", 0),
        ("CNY", 2),
        ("USD", 2),
        ("EUR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
        ("ZZZ", 2),
    ] {
        assert_eq!(cur(c).exponent(), e, "{c}");
    }
    for bad in ["usd", "US", "USDX", "U$D", "", "ÜSD"] {
        assert_eq!(Currency::parse(bad), None, "{bad}");
    }
}

fn rates(list: &[(&str, &str, Option<&str>)]) -> Vec<(String, String, Option<String>)> {
    list.iter()
        .map(|(c, r, f)| (c.to_string(), r.to_string(), f.map(str::to_string)))
        .collect()
}

#[test]
fn a_rate_applies_from_its_instant_until_the_next() {
    let m = Money::compile(
        "CNY",
        "reporting",
        &rates(&[
            ("USD", "7.2", Some("2026-06-01T00:00:00Z")),
            ("USD", "7.1234", Some("2026-01-01T00:00:00Z")),
            ("JPY", "0.04831", None),
        ]),
    )
    .unwrap();
    let t = |s: &str| parse_rfc3339(s).unwrap();
    let usd = cur("USD");
    assert_eq!(m.rate_at(usd, t("2025-12-31T23:59:59.999Z")), None);
    assert_eq!(
        m.rate_at(usd, t("2026-01-01T00:00:00Z")),
        parse_rate("7.1234")
    );
    assert_eq!(
        m.rate_at(usd, t("2026-05-31T23:59:59Z")),
        parse_rate("7.1234")
    );
    assert_eq!(m.rate_at(usd, t("2026-06-01T00:00:00Z")), parse_rate("7.2"));
    assert_eq!(m.rate_at(cur("JPY"), 0), parse_rate("0.04831"));
    assert_eq!(m.rate_at(cur("CNY"), 0), Some(Decimal::ONE));
    assert_eq!(
        m.to_cents(dec("100"), usd, t("2026-07-01T00:00:00Z")),
        Ok(72_000)
    );
    assert_eq!(
        m.to_cents(dec("100"), cur("EUR"), 0),
        Err(ConvertError::NoRate)
    );
}

#[test]
fn config_errors_say_what_to_write() {
    let e = |c: &str, m: &str, r: &[(&str, &str, Option<&str>)]| {
        Money::compile(c, m, &rates(r)).unwrap_err()
    };
    assert!(e("cny", "reporting", &[]).contains("ISO 4217"));
    assert!(e("KWD", "reporting", &[]).contains("more than 2 decimals"));
    assert!(e("CNY", "assume", &[]).contains("\"reject\""));
    assert!(
        e("CNY", "reporting", &[("US", "7", None)]).contains("money.rates[0]: currency = \"US\"")
    );
    assert!(e("CNY", "reporting", &[("USD", "0", None)]).contains("positive decimal"));
    assert!(e("CNY", "reporting", &[("USD", "-7", None)]).contains("positive decimal"));
    assert!(e("CNY", "reporting", &[("USD", "7,1", None)]).contains("positive decimal"));
    assert!(e("CNY", "reporting", &[("CNY", "1", None)]).contains("needs no rate"));
    assert!(e("CNY", "reporting", &[("USD", "7", Some("2026-13-01"))]).contains("RFC 3339"));
    let dup = e(
        "CNY",
        "reporting",
        &[
            ("USD", "7", Some("2026-01-01T00:00:00Z")),
            ("USD", "7.1", Some("2026-01-01T00:00:00+00:00")),
        ],
    );
    assert!(
        dup.contains("USD has two rates from the same instant"),
        "{dup}"
    );
    assert_eq!(
        parse_rate("007.50"),
        Some(Decimal {
            digits: 75,
            scale: 1
        })
    );
    assert_eq!(parse_rate("0.0"), None);
    assert_eq!(parse_rate("1e3"), None);
}
