//! The fast path of [`super::decode`]: a single pass over the bytes of a flat event
//! object into the same [`Wire`] that serde_json would produce.
//!
//! Why: serde_json's derive walks a generic visitor per key and value; on the generated
//! mix that was ~30 % of applying an event. Events are flat objects of short strings and
//! plain numbers, so a scanner specialised to that shape does the same in one pass.
//!
//! It only accepts what it can decode exactly as serde_json does, and answers `None` for
//! everything else: strings with escapes or control characters, nested values, numbers
//! with an exponent, a sign, leading zeros or more than 15 significant digits, duplicate
//! fields, wrong types, trailing bytes, invalid UTF-8. The caller then runs serde_json,
//! which decodes or classifies the rejection as before. A property test in `super`
//! checks that both give the same result on valid, mutated and arbitrary messages.

use std::borrow::Cow;

use super::{NumText, Wire};

/// Decodes `bytes` if it is a flat JSON object this scanner handles exactly.
pub(super) fn scan(bytes: &[u8]) -> Option<Wire<'_>> {
    let mut s = Scanner { b: bytes, i: 0 };
    let mut w = Wire::default();
    let mut seen = 0u32;
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        loop {
            let key = s.raw_str()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            match FIELDS.iter().position(|name| *name == key) {
                // serde_json rejects a key that is not UTF-8 (known keys are ASCII).
                None if std::str::from_utf8(key).is_err() => return None,
                None => s.skip_scalar()?,
                // A known field twice is an error for serde's derive: leave it to serde.
                Some(f) if seen & (1 << f) != 0 => return None,
                Some(f) => {
                    seen |= 1 << f;
                    match f {
                        0 => w.event_id = s.opt_str()?,
                        1 => w.customer_id = s.opt_str()?,
                        2 => w.kind = s.opt_str()?,
                        3 => w.ts = s.opt_str()?,
                        4 => w.amount = s.opt_num_text()?,
                        5 => w.channel = s.opt_str()?,
                        6 => w.category = s.opt_str()?,
                        7 => w.satisfaction = s.opt_num()?,
                        8 => w.nps = s.opt_num()?,
                        9 => w.campaign_id = s.opt_str()?,
                        10 => w.action = s.opt_str()?,
                        11 => w.cost = s.opt_num_text()?,
                        12 => w.account_manager = s.opt_str()?,
                        13 => w.industry = s.opt_str()?,
                        14 => w.region = s.opt_str()?,
                        15 => w.segment = s.opt_str()?,
                        16 => w.currency = s.opt_str()?,
                        17 => w.warning_id = s.opt_str()?,
                        18 => w.status = s.opt_str()?,
                        19 => w.outcome = s.opt_str()?,
                        _ => w.actor = s.opt_str()?,
                    }
                }
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == bytes.len()).then_some(w)
}

/// The fields of [`Wire`] by their JSON names, in the order of the `match` above.
const FIELDS: [&[u8]; 21] = [
    b"event_id",
    b"customer_id",
    b"type",
    b"ts",
    b"amount",
    b"channel",
    b"category",
    b"satisfaction",
    b"nps",
    b"campaign_id",
    b"action",
    b"cost",
    b"account_manager",
    b"industry",
    b"region",
    b"segment",
    b"currency",
    b"warning_id",
    b"status",
    b"outcome",
    b"actor",
];

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Exact powers of ten as f64 (10^22 is the largest that is exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters: its bytes between the quotes.
    #[inline]
    fn raw_str(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return Some(&self.b[start..self.i - 1]),
                b'\\' | 0..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// A string as UTF-8 text, borrowed from the input.
    #[inline]
    fn text(&mut self) -> Option<&'a str> {
        let raw = self.raw_str()?;
        std::str::from_utf8(raw).ok()
    }

    /// `"…"` or `null`.
    #[inline]
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => Some(Some(Cow::Borrowed(self.text()?))),
            b'n' => self.literal(b"null").map(|_| None),
            _ => None,
        }
    }

    /// A number or `null`.
    #[inline]
    fn opt_num(&mut self) -> Option<Option<f64>> {
        match self.peek()? {
            b'0'..=b'9' => self.number().map(Some),
            b'n' => self.literal(b"null").map(|_| None),
            _ => None,
        }
    }

    /// A number's text (amounts are read exactly from it) or `null`.
    #[inline]
    fn opt_num_text(&mut self) -> Option<Option<NumText<'a>>> {
        match self.peek()? {
            b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                // Digits and a point: ASCII.
                let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                Some(Some(NumText(text)))
            }
            b'n' => self.literal(b"null").map(|_| None),
            _ => None,
        }
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A non-negative number `int[.frac]` with at most 15 significant digits, computed as
    /// serde_json does (without its `float_roundtrip` feature, and then also correctly
    /// rounded): the digits as an exact integer divided once by an exact power of ten.
    fn number(&mut self) -> Option<f64> {
        let mut digits = 0u32;
        let mut sig = 0u64;
        let first = self.next()?;
        sig += (first - b'0') as u64;
        if first == b'0' {
            // JSON allows no leading zeros: "01" is not a number.
            if let Some(b'0'..=b'9') = self.peek() {
                return None;
            }
        } else {
            digits += 1;
        }
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.i += 1;
            sig = sig * 10 + (c - b'0') as u64;
            digits += 1;
            if digits > 15 {
                return None;
            }
        }
        let mut frac = 0usize;
        if self.peek() == Some(b'.') {
            self.i += 1;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                self.i += 1;
                sig = sig * 10 + (c - b'0') as u64;
                frac += 1;
                if sig != 0 {
                    digits += 1;
                }
                if digits > 15 || frac >= POW10.len() {
                    return None;
                }
            }
            if frac == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            return None;
        }
        Some(sig as f64 / POW10[frac])
    }

    /// The value of a field the event does not use: a plain string, number, `true`,
    /// `false` or `null` (anything else goes to serde_json).
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.text().map(|_| ()),
            b'0'..=b'9' => self.number().map(|_| ()),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            _ => None,
        }
    }
}
