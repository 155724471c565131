//! Day-resolution history of one customer, kept as a compact byte string.
//!
//! Only days with activity are stored, ascending. Each entry is self-contained: varint
//! absolute day, a field mask, varints of the non-zero sums, the day's channel/category
//! tag counts, and 32-bit fingerprints of the event ids applied that day (duplicate
//! detection across the whole retention period). A typical active day costs 6–14 bytes,
//! which keeps a customer within the memory budget without losing window exactness.
//!
//! Reading is allocation-free ([`iter`]); a change re-encodes only the touched day and
//! copies the other entries' bytes verbatim ([`update`]), because per-event decoding of
//! the whole history into structs was measured to cost 80 % of replay time.

use smallvec::SmallVec;

use super::time::Day;

/// Distinct channel/category tags kept per day (the rest count as "other").
pub const MAX_TAGS_PER_DAY: usize = 8;

/// The counters kept per day; summed over days they are a window's facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
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
    /// Campaign participations (`participated` actions; conversions are counted apart).
    pub participations: u32,
}

impl Counts {
    /// Adds another day's counters (saturating: sums never wrap, whatever the input).
    #[inline]
    pub fn add(&mut self, o: &Counts) {
        self.orders = self.orders.saturating_add(o.orders);
        self.amount = self.amount.saturating_add(o.amount);
        self.visits = self.visits.saturating_add(o.visits);
        self.complaints = self.complaints.saturating_add(o.complaints);
        self.surveys = self.surveys.saturating_add(o.surveys);
        self.sat_tenths = self.sat_tenths.saturating_add(o.sat_tenths);
        self.touches = self.touches.saturating_add(o.touches);
        self.conversions = self.conversions.saturating_add(o.conversions);
        self.participations = self.participations.saturating_add(o.participations);
    }
}

/// One active day, decoded (only for the day an event changes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayData {
    /// Day number.
    pub day: Day,
    /// The day's counters.
    pub counts: Counts,
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

    /// Adds one to a tag's count. A day keeps at most [`MAX_TAGS_PER_DAY`] distinct tags;
    /// further ones count as "other" (label id 1) so one customer cannot grow a day
    /// without bound.
    pub fn tag(&mut self, key: u32) {
        let key =
            if self.tags.len() >= MAX_TAGS_PER_DAY && !self.tags.iter().any(|(k, _)| *k == key) {
                (1 << 1) | (key & 1)
            } else {
                key
            };
        match self.tags.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.tags.push((key, 1)),
        }
    }

    /// Remembers an event id's fingerprint, forgetting the day's oldest one beyond `cap`.
    pub fn remember(&mut self, fp: u32, cap: u32) {
        if self.fps.len() >= cap.max(1) as usize {
            self.fps.remove(0);
        }
        self.fps.push(fp);
    }

    /// Appends this day's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put(out, self.day.max(0) as u64);
        let c = &self.counts;
        let mut mask = 0u8;
        for (flag, on) in [
            (F_ORDERS, c.orders != 0),
            (F_AMOUNT, c.amount != 0),
            (F_VISITS, c.visits != 0),
            (F_COMPLAINTS, c.complaints != 0),
            (F_SURVEYS, c.surveys != 0),
            (F_TOUCHES, c.touches != 0),
            (F_CONVERSIONS, c.conversions != 0 || c.participations != 0),
            (F_TAGS, !self.tags.is_empty()),
        ] {
            if on {
                mask |= flag;
            }
        }
        out.push(mask);
        if c.orders != 0 {
            put(out, c.orders as u64);
        }
        if c.amount != 0 {
            put(out, zigzag(c.amount));
        }
        if c.visits != 0 {
            put(out, c.visits as u64);
        }
        if c.complaints != 0 {
            put(out, c.complaints as u64);
        }
        if c.surveys != 0 {
            put(out, c.surveys as u64);
            put(out, c.sat_tenths as u64);
        }
        if c.touches != 0 {
            put(out, c.touches as u64);
        }
        if c.conversions != 0 || c.participations != 0 {
            put(out, c.conversions as u64);
            put(out, c.participations as u64);
        }
        if !self.tags.is_empty() {
            put(out, self.tags.len() as u64);
            for (k, n) in &self.tags {
                put(out, *k as u64);
                put(out, *n as u64);
            }
        }
        put(out, self.fps.len() as u64);
        for fp in &self.fps {
            out.extend_from_slice(&fp.to_le_bytes());
        }
    }
}

/// Field bits of an entry's mask.
pub mod field {
    /// Orders.
    pub const ORDERS: u8 = 1;
    /// Amount.
    pub const AMOUNT: u8 = 2;
    /// Visits.
    pub const VISITS: u8 = 4;
    /// Complaints.
    pub const COMPLAINTS: u8 = 8;
    /// Surveys.
    pub const SURVEYS: u8 = 16;
    /// Campaign touches.
    pub const TOUCHES: u8 = 32;
    /// Campaign conversions and participations (two varints since history format 2;
    /// format 1 had conversions only: see [`super::decode_all_v1`]).
    pub const CONVERSIONS: u8 = 64;
    /// Channel/category tags.
    pub const TAGS: u8 = 128;
}
use field::{
    AMOUNT as F_AMOUNT, COMPLAINTS as F_COMPLAINTS, CONVERSIONS as F_CONVERSIONS,
    ORDERS as F_ORDERS, SURVEYS as F_SURVEYS, TAGS as F_TAGS, TOUCHES as F_TOUCHES,
    VISITS as F_VISITS,
};

#[inline]
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline(always)]
fn get(b: &[u8], i: &mut usize) -> Option<u64> {
    // Most values fit in one byte (counts, day masks): take that path without a loop.
    let first = *b.get(*i)?;
    if first < 0x80 {
        *i += 1;
        return Some(first as u64);
    }
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
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
fn get32(b: &[u8], i: &mut usize) -> Option<u32> {
    get(b, i).and_then(|v| u32::try_from(v).ok())
}

/// One entry, read in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<'a> {
    /// Day number.
    pub day: Day,
    /// Which fields are non-zero (`F_*` bits; see [`field`]).
    pub mask: u8,
    /// The day's counters.
    pub counts: Counts,
    ntags: u32,
    tags: &'a [u8],
    fps: &'a [u8],
    /// The entry's encoded bytes.
    pub bytes: &'a [u8],
}

impl<'a> Entry<'a> {
    /// (tag key, count) pairs.
    pub fn tags(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let b = self.tags;
        let mut i = 0usize;
        (0..self.ntags).map_while(move |_| Some((get32(b, &mut i)?, get32(b, &mut i)?)))
    }

    /// Whether a fingerprint was applied on this day.
    pub fn has_fp(&self, fp: u32) -> bool {
        let want = fp.to_le_bytes();
        self.fps.chunks_exact(4).any(|c| c == want)
    }

    /// Fully decoded form.
    pub fn to_data(&self) -> DayData {
        DayData {
            day: self.day,
            counts: self.counts,
            tags: self.tags().collect(),
            fps: self
                .fps
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        }
    }
}

#[inline(always)]
fn read_entry(b: &[u8], start: usize) -> Option<(Entry<'_>, usize)> {
    read_entry_format::<false>(b, start)
}

/// Reads one entry; `V1`: the format before participations were kept (snapshots before
/// version 4), whose conversion field is one varint.
#[inline(always)]
fn read_entry_format<const V1: bool>(b: &[u8], start: usize) -> Option<(Entry<'_>, usize)> {
    let mut i = start;
    let day = i32::try_from(get(b, &mut i)?).ok()?;
    let mask = *b.get(i)?;
    i += 1;
    let mut e = Entry {
        day,
        mask,
        ..Default::default()
    };
    if mask & F_ORDERS != 0 {
        e.counts.orders = get32(b, &mut i)?;
    }
    if mask & F_AMOUNT != 0 {
        e.counts.amount = unzigzag(get(b, &mut i)?);
    }
    if mask & F_VISITS != 0 {
        e.counts.visits = get32(b, &mut i)?;
    }
    if mask & F_COMPLAINTS != 0 {
        e.counts.complaints = get32(b, &mut i)?;
    }
    if mask & F_SURVEYS != 0 {
        e.counts.surveys = get32(b, &mut i)?;
        e.counts.sat_tenths = get32(b, &mut i)?;
    }
    if mask & F_TOUCHES != 0 {
        e.counts.touches = get32(b, &mut i)?;
    }
    if mask & F_CONVERSIONS != 0 {
        e.counts.conversions = get32(b, &mut i)?;
        if !V1 {
            e.counts.participations = get32(b, &mut i)?;
        }
    }
    if mask & F_TAGS != 0 {
        e.ntags = get32(b, &mut i)?;
        let t0 = i;
        for _ in 0..e.ntags {
            get(b, &mut i)?;
            get(b, &mut i)?;
        }
        e.tags = &b[t0..i];
    }
    let nfps = usize::try_from(get(b, &mut i)?).ok()?;
    let end = i.checked_add(nfps.checked_mul(4)?)?;
    e.fps = b.get(i..end)?;
    e.bytes = &b[start..end];
    Some((e, end))
}

/// Allocation-free iterator over a history's entries. Stops at the first malformed byte
/// (only a bug or a corrupted restore could produce one).
pub struct Iter<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;
    #[inline]
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.i >= self.b.len() {
            return None;
        }
        match read_entry(self.b, self.i) {
            Some((e, next)) => {
                self.i = next;
                Some(e)
            }
            None => {
                self.i = self.b.len();
                None
            }
        }
    }
}

/// Entries of an encoded history.
#[inline]
pub fn iter(blob: &[u8]) -> Iter<'_> {
    Iter { b: blob, i: 0 }
}

/// Whether `fp` was applied on `day`.
pub fn contains(blob: &[u8], day: Day, fp: u32) -> bool {
    iter(blob)
        .find(|e| e.day >= day)
        .is_some_and(|e| e.day == day && e.has_fp(fp))
}

/// Writes to `out` the history without days before `keep_from`, with `day` changed by
/// `f` (created if absent, unless `day` is before `keep_from`). Returns `false` if `day`
/// was not retained (and so `f` was not called).
pub fn update(
    blob: &[u8],
    keep_from: Day,
    day: Day,
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut DayData),
) -> bool {
    out.clear();
    let mut f = Some(f);
    let mut apply = |d: &mut DayData, out: &mut Vec<u8>| {
        if let Some(f) = f.take() {
            f(d);
        }
        d.encode(out);
    };
    let retained = day >= keep_from;
    let mut done = !retained;
    for e in iter(blob) {
        if e.day < keep_from {
            continue;
        }
        if !done && e.day >= day {
            done = true;
            if e.day == day {
                let mut d = e.to_data();
                apply(&mut d, out);
                continue;
            }
            apply(&mut DayData::new(day), out);
        }
        out.extend_from_slice(e.bytes);
    }
    if !done {
        apply(&mut DayData::new(day), out);
    }
    retained
}

/// Writes to `out` the history without days before `keep_from`; `false` (and `out`
/// untouched) when nothing would be dropped.
pub fn prune(blob: &[u8], keep_from: Day, out: &mut Vec<u8>) -> bool {
    let mut it = iter(blob);
    match it.next() {
        Some(e) if e.day < keep_from => {}
        _ => return false,
    }
    out.clear();
    for e in iter(blob).filter(|e| e.day >= keep_from) {
        out.extend_from_slice(e.bytes);
    }
    true
}

/// Decodes every entry (tests and diagnostics).
pub fn decode_all(blob: &[u8]) -> Vec<DayData> {
    iter(blob).map(|e| e.to_data()).collect()
}

/// Decodes a whole history written in format 1 (before participations were kept), or
/// `None` if any byte is left over: what restoring an older snapshot needs.
pub fn decode_all_v1(blob: &[u8]) -> Option<Vec<DayData>> {
    let mut days = Vec::new();
    let mut i = 0;
    while i < blob.len() {
        let (e, next) = read_entry_format::<true>(blob, i)?;
        days.push(e.to_data());
        i = next;
    }
    Some(days)
}

/// Copies a history to `out` with every tag key replaced by `map(key)`, the rest of each
/// entry verbatim: the same bytes as decoding every day, mapping its tags and encoding it
/// again, without building a [`DayData`] per day (a snapshot of every changed customer is
/// written per commit interval; the decode-and-encode form was ~8 % of that loop).
pub fn copy_mapping_tags(blob: &[u8], out: &mut Vec<u8>, mut map: impl FnMut(u32) -> u32) {
    for e in iter(blob) {
        if e.mask & F_TAGS == 0 {
            out.extend_from_slice(e.bytes);
            continue;
        }
        // `e.tags` is a sub-slice of `e.bytes`: split the entry around it.
        let at = e.tags.as_ptr() as usize - e.bytes.as_ptr() as usize;
        out.extend_from_slice(&e.bytes[..at]);
        for (k, n) in e.tags() {
            put(out, map(k) as u64);
            put(out, n as u64);
        }
        out.extend_from_slice(&e.bytes[at + e.tags.len()..]);
    }
}

/// Encodes days (ascending, distinct).
pub fn encode_all(days: &[DayData], out: &mut Vec<u8>) {
    for d in days {
        d.encode(out);
    }
}

#[cfg(test)]
mod tests;
