//! Money in one currency (`[money]`): the reporting currency, the conversion rates to it
//! with the instant each takes effect, and the exact conversion of an input amount into
//! integer hundredths of the reporting currency (what the rest of the core calls cents).
//!
//! Why exact: an amount is read from the JSON number's text (never through `f64`), the
//! rate from a decimal string, and their product is rounded once, half-even, to the
//! reporting currency's minor unit. Summing converted amounts is then integer addition,
//! so any order of the same events gives the same totals to the cent.
//!
//! Why rates carry a `from` instant: a rate applies to events whose event time is at or
//! after it, until the next rate of that currency. A new rate in config changes the
//! conversion of later events only, and a replay of history converts every event with the
//! rate of its own time, so the same input gives the same facts whenever it is replayed.

use super::time::{parse_rfc3339, Ts, MAX_TS, MIN_TS};

/// An ISO 4217 currency code: three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes whose minor unit is not the hundredth (ISO 4217, the common ones). Every other
/// code is taken to have two decimals (README "Money" says so).
const EXPONENTS: [(&[u8; 3], u32); 26] = [
    (b"BIF", 0),
    (b"CLP", 0),
    (b"DJF", 0),
    (b"GNF", 0),
    (b"ISK", 0),
    (b"JPY", 0),
    (b"KMF", 0),
    (b"KRW", 0),
    (b"PYG", 0),
    (b"RWF", 0),
    (b"UGX", 0),
    (b"UYI", 0),
    (b"VND", 0),
    (b"VUV", 0),
    (b"XAF", 0),
    (b"XOF", 0),
    (b"XPF", 0),
    (b"BHD", 3),
    (b"IQD", 3),
    (b"JOD", 3),
    (b"KWD", 3),
    (b"LYD", 3),
    (b"OMR", 3),
    (b"TND", 3),
    (b"CLF", 4),
    (b"UYW", 4),
];

impl Currency {
    /// The code if `s` is three ASCII capital letters (lower case is malformed: ISO 4217
    /// codes are upper case, and accepting both would let one currency have two spellings).
    pub fn parse(s: &str) -> Option<Currency> {
        match s.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Some(Currency([a, b, c])),
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Three ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Decimal places of the currency's minor unit: 0 (JPY), 2 (CNY, USD; and any code
    /// not in the table), 3 (KWD, BHD) or 4 (CLF).
    pub fn exponent(self) -> u32 {
        EXPONENTS
            .iter()
            .find(|(c, _)| **c == self.0)
            .map_or(2, |(_, e)| *e)
    }
}

/// An exact non-negative decimal: `digits × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// Significant digits (at most 19).
    pub digits: u64,
    /// Decimal places (negative for trailing zeros moved out of `digits`).
    pub scale: i32,
}

impl Decimal {
    /// One: the rate of the reporting currency to itself.
    pub const ONE: Decimal = Decimal {
        digits: 1,
        scale: 0,
    };
}

/// Why a number's text is not an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Not a JSON number (a string, an array, `true`, …).
    NotANumber,
    /// Below zero.
    Negative,
    /// More than 19 significant digits, or at least 10^40: no amount is like that.
    OutOfRange,
}

/// Parses the text of a JSON number exactly (`12`, `18750.00`, `1.5e3`, `-0`).
pub fn parse_json_number(text: &str) -> Result<Decimal, NumberError> {
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let mut acc = Digits::default();
    let int_start = i;
    while let Some(c @ b'0'..=b'9') = b.get(i) {
        acc.push(c - b'0')?;
        i += 1;
    }
    // JSON: at least one integer digit, no leading zero before another digit.
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return Err(NumberError::NotANumber);
    }
    let mut frac_len: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            acc.push(c - b'0')?;
            frac_len += 1;
            i += 1;
        }
        if frac_len == 0 {
            return Err(NumberError::NotANumber);
        }
    }
    let mut exp: i64 = 0;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let minus = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            // Saturates: 1e999999 is out of range either way.
            exp = (exp * 10 + (c - b'0') as i64).min(1_000_000);
            i += 1;
        }
        if i == start {
            return Err(NumberError::NotANumber);
        }
        if minus {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(NumberError::NotANumber);
    }
    if acc.digits == 0 {
        return Ok(Decimal {
            digits: 0,
            scale: 0,
        });
    }
    if negative {
        return Err(NumberError::Negative);
    }
    let scale = frac_len - exp - acc.trailing_zeros;
    if scale < -40 {
        return Err(NumberError::OutOfRange);
    }
    if scale > 400 {
        // Below 10^-380: zero in any minor unit, whatever the rate.
        return Ok(Decimal {
            digits: 0,
            scale: 0,
        });
    }
    Ok(Decimal {
        digits: acc.digits,
        scale: scale as i32,
    })
}

/// Significant digits of a number being read: leading zeros dropped, trailing zeros
/// counted apart (so `18750.00` is 1875 with two decimals fewer, not a 7-digit number).
#[derive(Default)]
struct Digits {
    digits: u64,
    count: u32,
    trailing_zeros: i64,
}

impl Digits {
    fn push(&mut self, d: u8) -> Result<(), NumberError> {
        if d == 0 {
            if self.count > 0 {
                self.trailing_zeros += 1;
            }
            return Ok(());
        }
        // The zeros held back were not trailing after all.
        for _ in 0..=self.trailing_zeros {
            self.count += 1;
            if self.count > 19 {
                return Err(NumberError::OutOfRange);
            }
            self.digits = self.digits.wrapping_mul(10);
        }
        self.trailing_zeros = 0;
        self.digits += d as u64;
        Ok(())
    }
}

/// Parses a rate as written in config: digits with at most one decimal point
/// (`"7.1234"`, `"0.04831"`, `"1"`), above zero, at most 19 significant digits.
pub fn parse_rate(text: &str) -> Option<Decimal> {
    let ok = !text.is_empty()
        && text.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && text.bytes().filter(|c| *c == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    if !ok {
        return None;
    }
    // A plain decimal is a JSON number but for leading zeros ("07.5"), harmless here.
    let trimmed = text.trim_start_matches('0');
    let normal = if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    };
    parse_json_number(&normal).ok().filter(|d| d.digits > 0)
}

/// `amount × rate` in integer hundredths of the reporting currency: rounded once,
/// half-even, to the reporting currency's minor unit (`exponent` decimals, at most 2),
/// then written in hundredths. `None` if the result does not fit in 63 bits.
pub fn convert(amount: Decimal, rate: Decimal, exponent: u32) -> Option<i64> {
    let product = amount.digits as u128 * rate.digits as u128;
    if product == 0 {
        return Some(0);
    }
    let k = exponent as i64 - amount.scale as i64 - rate.scale as i64;
    let minor = if k >= 0 {
        product.checked_mul(10u128.checked_pow(u32::try_from(k).ok()?)?)?
    } else {
        let d = u32::try_from(-k).ok()?;
        if d > 38 {
            // product < 2^128 < 0.5 × 10^39: rounds to zero.
            0
        } else {
            let p = 10u128.pow(d);
            let (q, r) = (product / p, product % p);
            let half = p / 2;
            if r > half || (r == half && q % 2 == 1) {
                q + 1
            } else {
                q
            }
        }
    };
    let hundredths = minor.checked_mul(10u128.pow(2u32.checked_sub(exponent)?))?;
    i64::try_from(hundredths).ok()
}

/// What an event without a `currency` field means (`money.missing_currency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingCurrency {
    /// The amount is in the reporting currency (the default: feeds that predate the
    /// field keep working).
    Reporting,
    /// The event is rejected (`missing_field`).
    Reject,
}

/// One conversion rate: from `from` on, one unit of `currency` is `rate` units of the
/// reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The source currency.
    pub currency: Currency,
    /// First event time the rate applies to.
    pub from: Ts,
    /// Units of the reporting currency per unit of `currency`.
    pub rate: Decimal,
}

/// The compiled `[money]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// The currency every monetary fact, threshold and output is in.
    pub reporting: Currency,
    /// Rates sorted by (currency, from).
    pub rates: Vec<Rate>,
    /// What a missing `currency` means.
    pub missing: MissingCurrency,
}

impl Default for Money {
    fn default() -> Self {
        Money {
            reporting: Currency(*b"CNY"),
            rates: Vec::new(),
            missing: MissingCurrency::Reporting,
        }
    }
}

/// Why an amount could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertError {
    /// No rate for the currency at the event's time.
    NoRate,
    /// The converted amount does not fit in 63 bits of hundredths.
    TooLarge,
}

impl Money {
    /// Validates `[money]`: the reporting code, the `missing_currency` policy and every
    /// rate (code, positive decimal, instant; no currency twice with the same `from`).
    pub fn compile(
        currency: &str,
        missing_currency: &str,
        rates: &[(String, String, Option<String>)],
    ) -> Result<Money, String> {
        let reporting = Currency::parse(currency).ok_or_else(|| {
            format!("money.currency = \"{currency}\" is not an ISO 4217 code (three capital letters, e.g. \"CNY\")")
        })?;
        if reporting.exponent() > 2 {
            return Err(format!(
                "money.currency = \"{currency}\" has {} decimals; reporting currencies with more than 2 decimals are not supported (amounts are kept in hundredths)",
                reporting.exponent()
            ));
        }
        let missing = match missing_currency {
            "reporting" => MissingCurrency::Reporting,
            "reject" => MissingCurrency::Reject,
            other => {
                return Err(format!(
                    "money.missing_currency = \"{other}\": use \"reporting\" (the default: an event without `currency` is in money.currency) or \"reject\" (it is dead-lettered as missing_field)"
                ))
            }
        };
        let mut out = Vec::with_capacity(rates.len());
        for (i, (code, rate, from)) in rates.iter().enumerate() {
            let at = format!("money.rates[{i}]");
            let c = Currency::parse(code).ok_or_else(|| {
                format!("{at}: currency = \"{code}\" is not an ISO 4217 code (three capital letters, e.g. \"USD\")")
            })?;
            if c == reporting {
                return Err(format!(
                    "{at}: currency = \"{code}\" is the reporting currency (money.currency), which needs no rate"
                ));
            }
            let r = parse_rate(rate).ok_or_else(|| {
                format!("{at}: rate = \"{rate}\" must be a positive decimal written as a string, e.g. rate = \"7.1234\" ({code} in {currency}), at most 19 significant digits")
            })?;
            let from_ts = match from {
                None => MIN_TS,
                Some(f) => parse_rfc3339(f)
                    .filter(|t| (MIN_TS..MAX_TS).contains(t))
                    .ok_or_else(|| {
                        format!("{at}: from = \"{f}\" is not an RFC 3339 instant between 1970 and 2099, e.g. \"2026-01-01T00:00:00Z\"")
                    })?,
            };
            out.push(Rate {
                currency: c,
                from: from_ts,
                rate: r,
            });
        }
        out.sort_by_key(|r| (r.currency, r.from));
        for w in out.windows(2) {
            if w[0].currency == w[1].currency && w[0].from == w[1].from {
                return Err(format!(
                    "money.rates: {} has two rates from the same instant; keep one (a rate applies from its `from` until the next one of that currency)",
                    w[0].currency.as_str()
                ));
            }
        }
        Ok(Money {
            reporting,
            rates: out,
            missing,
        })
    }

    /// The rate of `c` for an event at `ts`: 1 for the reporting currency, else the
    /// latest rate of `c` whose `from` is at or before `ts`.
    pub fn rate_at(&self, c: Currency, ts: Ts) -> Option<Decimal> {
        if c == self.reporting {
            return Some(Decimal::ONE);
        }
        self.rates
            .iter()
            .rfind(|r| r.currency == c && r.from <= ts)
            .map(|r| r.rate)
    }

    /// `amount` of `c` at `ts` in hundredths of the reporting currency.
    pub fn to_cents(&self, amount: Decimal, c: Currency, ts: Ts) -> Result<i64, ConvertError> {
        let rate = self.rate_at(c, ts).ok_or(ConvertError::NoRate)?;
        convert(amount, rate, self.reporting.exponent()).ok_or(ConvertError::TooLarge)
    }
}

#[cfg(test)]
mod tests;
