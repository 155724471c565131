//! Day-resolution history of one customer, kept as a compact byte string.
//!
//! Only days with activity are stored, ascending, each as: varint day delta, a field mask,
//! varints of the non-zero sums, the day's channel/category tag counts, and 32-bit
//! fingerprints of the event ids applied that day (for duplicate detection across the
//! whole retention period). A typical active day costs 4–12 bytes, which is what keeps a
//! customer record within the memory budget without losing exactness of the windows.

use smallvec::SmallVec;

use super::time::Day;

/// One active day, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayData {
    /// Day number.
    pub day: Day,
    /// Orders.
    pub orders: u32,
    /// Order value minus refunds, in cents.
    pub amount: i64,
    /// Visits.
    pub visits: u32,
    /// Complaints opened.
    pub complaints: u32,
    /// Satisfaction answers.
    pub surveys: u32,
    /// Sum of satisfaction answers, in tenths.
    pub sat_tenths: u32,
    /// Campaign touches.
    pub touches: u32,
    /// Campaign conversions.
    pub conversions: u32,
    /// (tag key, count): key = label id << 1 | (0 channel, 1 category).
    pub tags: SmallVec<[(u32, u32); 2]>,
    /// Fingerprints of event ids applied on this day.
    pub fps: SmallVec<[u32; 4]>,
}

impl DayData {
    /// An empty day.
    pub fn new(day: Day) -> DayData {
        DayData {
            day,
            ..Default::default()
        }
    }

    /// Adds one to a tag's count.
    pub fn tag(&mut self, key: u32) {
        match self.tags.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.tags.push((key, 1)),
        }
    }
}

const F_ORDERS: u8 = 1;
const F_AMOUNT: u8 = 2;
const F_VISITS: u8 = 4;
const F_COMPLAINTS: u8 = 8;
const F_SURVEYS: u8 = 16;
const F_TOUCHES: u8 = 32;
const F_CONVERSIONS: u8 = 64;
const F_TAGS: u8 = 128;

#[inline]
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    #[inline]
    fn get(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            if shift > 63 {
                return None;
            }
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(v);
            }
            shift += 7;
        }
    }
    #[inline]
    fn get32(&mut self) -> Option<u32> {
        self.get().and_then(|v| u32::try_from(v).ok())
    }
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.i)?;
        self.i += 1;
        Some(v)
    }
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends the encoding of `days` (ascending, distinct) to `out`.
pub fn encode(days: &[DayData], out: &mut Vec<u8>) {
    let mut prev: i64 = 0;
    for d in days {
        put(out, (d.day as i64 - prev) as u64);
        prev = d.day as i64;
        let mut mask = 0u8;
        for (flag, on) in [
            (F_ORDERS, d.orders != 0),
            (F_AMOUNT, d.amount != 0),
            (F_VISITS, d.visits != 0),
            (F_COMPLAINTS, d.complaints != 0),
            (F_SURVEYS, d.surveys != 0),
            (F_TOUCHES, d.touches != 0),
            (F_CONVERSIONS, d.conversions != 0),
            (F_TAGS, !d.tags.is_empty()),
        ] {
            if on {
                mask |= flag;
            }
        }
        out.push(mask);
        if d.orders != 0 {
            put(out, d.orders as u64);
        }
        if d.amount != 0 {
            put(out, zigzag(d.amount));
        }
        if d.visits != 0 {
            put(out, d.visits as u64);
        }
        if d.complaints != 0 {
            put(out, d.complaints as u64);
        }
        if d.surveys != 0 {
            put(out, d.surveys as u64);
            put(out, d.sat_tenths as u64);
        }
        if d.touches != 0 {
            put(out, d.touches as u64);
        }
        if d.conversions != 0 {
            put(out, d.conversions as u64);
        }
        if !d.tags.is_empty() {
            put(out, d.tags.len() as u64);
            for (k, n) in &d.tags {
                put(out, *k as u64);
                put(out, *n as u64);
            }
        }
        put(out, d.fps.len() as u64);
        for fp in &d.fps {
            out.extend_from_slice(&fp.to_le_bytes());
        }
    }
}

/// Decodes `blob` into `out` (cleared first). A malformed blob (which only a bug or a
/// corrupted restore could produce) yields the days decoded so far and `false`.
pub fn decode(blob: &[u8], out: &mut Vec<DayData>) -> bool {
    out.clear();
    let mut r = Reader { b: blob, i: 0 };
    let mut prev: i64 = 0;
    while r.i < blob.len() {
        match decode_one(&mut r, prev) {
            Some(d) => {
                prev = d.day as i64;
                out.push(d);
            }
            None => return false,
        }
    }
    true
}

fn decode_one(r: &mut Reader<'_>, prev: i64) -> Option<DayData> {
    let day = i32::try_from(prev + r.get()? as i64).ok()?;
    let mask = r.byte()?;
    let mut d = DayData::new(day);
    if mask & F_ORDERS != 0 {
        d.orders = r.get32()?;
    }
    if mask & F_AMOUNT != 0 {
        d.amount = unzigzag(r.get()?);
    }
    if mask & F_VISITS != 0 {
        d.visits = r.get32()?;
    }
    if mask & F_COMPLAINTS != 0 {
        d.complaints = r.get32()?;
    }
    if mask & F_SURVEYS != 0 {
        d.surveys = r.get32()?;
        d.sat_tenths = r.get32()?;
    }
    if mask & F_TOUCHES != 0 {
        d.touches = r.get32()?;
    }
    if mask & F_CONVERSIONS != 0 {
        d.conversions = r.get32()?;
    }
    if mask & F_TAGS != 0 {
        let n = r.get()?;
        for _ in 0..n.min(1 << 16) {
            let k = r.get32()?;
            let c = r.get32()?;
            d.tags.push((k, c));
        }
    }
    let n = r.get()?;
    for _ in 0..n.min(1 << 20) {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = r.byte()?;
        }
        d.fps.push(u32::from_le_bytes(b));
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> impl Strategy<Value = DayData> {
        (
            0..40_000i32,
            (0..5u32, -1_000_000_000i64..1_000_000_000, 0..300u32, 0..3u32),
            (0..3u32, 0..200u32, 0..3u32, 0..3u32),
            proptest::collection::vec((0..1000u32, 1..5u32), 0..3),
            proptest::collection::vec(any::<u32>(), 0..6),
        )
            .prop_map(|(day, (o, a, v, c), (s, st, t, cv), tags, fps)| DayData {
                day,
                orders: o,
                amount: a,
                visits: v,
                complaints: c,
                surveys: s,
                sat_tenths: if s == 0 { 0 } else { st },
                touches: t,
                conversions: cv,
                tags: tags.into_iter().collect(),
                fps: fps.into_iter().collect(),
            })
    }

    proptest! {
        #[test]
        fn round_trips(mut days in proptest::collection::vec(day(), 0..12)) {
            days.sort_by_key(|d| d.day);
            days.dedup_by_key(|d| d.day);
            let mut blob = Vec::new();
            encode(&days, &mut blob);
            let mut back = Vec::new();
            prop_assert!(decode(&blob, &mut back));
            prop_assert_eq!(back, days);
        }

        #[test]
        fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = decode(&blob, &mut out);
        }
    }

    #[test]
    fn a_typical_day_is_small() {
        let mut d = DayData::new(20_500);
        d.visits = 1;
        d.tag(2);
        d.fps.push(7);
        let mut blob = Vec::new();
        encode(&[d], &mut blob);
        // 3 bytes of absolute day, mask, visits, one tag (3), fingerprint count and 4 bytes.
        assert!(blob.len() <= 13, "{} bytes", blob.len());
    }
}
