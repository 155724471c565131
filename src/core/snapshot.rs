//! Portable snapshots of one customer's state: the changelog payload that lets a
//! partition's state survive a crash and follow the partition to another instance.
//!
//! A record refers to labels by processor-local interned ids (including the channel and
//! category tags inside its day history), so a snapshot carries the label strings and
//! restoring interns them again. The tier is stored by name, so a restore under changed
//! rules re-evaluates instead of trusting a stale index. Versioned; malformed input is an
//! error, never a panic.

use super::campaign::Link;
use super::care::{Care, NEVER};
use super::days::{self, DayData};
use super::store::{Interner, Record, NO_TIER};
use smallvec::SmallVec;

/// Snapshot format version written by this build.
pub const VERSION: u8 = 4;

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Truncated or malformed.
    #[error("customer snapshot is truncated or malformed at byte {0}")]
    Malformed(usize),
    /// Written by an incompatible build.
    #[error("customer snapshot version {0} is not supported (this build reads versions 1 to {VERSION}); restore with the build that wrote it or rebuild state from the input topic")]
    Version(u8),
}

/// A decoded snapshot, with labels as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The record (labels and tags not yet interned: see `labels`, `tag_names`).
    pub record: Record,
    /// Tier name ("" = none yet).
    pub tier: String,
    /// Profile labels.
    pub labels: [String; 4],
    /// The customer's latest campaign ("" = none).
    pub campaign: String,
    /// The best tier ever held ("" = none or unknown).
    pub peak_tier: String,
    /// The tier before the current one ("" = none or unknown).
    pub previous_tier: String,
    /// Label strings the day history's tags refer to (by index).
    pub tag_names: Vec<String>,
    /// Day history with tag keys = tag_names index << 1 | kind.
    pub days: Vec<DayData>,
    /// The latest warning's task (labels not yet interned: see `task_labels`).
    pub care: Option<Care>,
    /// The task's owner, actor, outcome and rule name ("" = none).
    pub task_labels: [String; 4],
    /// Campaign links by campaign name (the links' `campaign` slots are not yet set).
    pub links: Vec<(String, Link)>,
}

/// The names a record refers to by processor-local index, to write (`None`: none).
pub struct Names<'a> {
    /// Current tier.
    pub tier: Option<&'a str>,
    /// Best tier ever held.
    pub peak_tier: Option<&'a str>,
    /// Tier held before the current one.
    pub previous_tier: Option<&'a str>,
    /// Latest campaign taken part in.
    pub campaign: Option<&'a str>,
}

/// What a customer keeps outside its record (the store's side tables), to write.
pub struct Side<'a> {
    /// The latest warning's task, if any.
    pub task: Option<TaskOut<'a>>,
    /// Campaign links with their campaign names.
    pub links: &'a [(&'a str, Link)],
}

/// A task state to write, with its labels as strings.
pub struct TaskOut<'a> {
    /// The state (label ids are ignored).
    pub care: &'a Care,
    /// Owner, actor, outcome, rule name.
    pub labels: [&'a str; 4],
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_s(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn u(&mut self) -> Result<u64, SnapshotError> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.b.get(self.i).ok_or(SnapshotError::Malformed(self.i))?;
            self.i += 1;
            if shift > 63 {
                return Err(SnapshotError::Malformed(self.i));
            }
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }
    fn n<T: TryFrom<u64>>(&mut self) -> Result<T, SnapshotError> {
        let at = self.i;
        T::try_from(self.u()?).map_err(|_| SnapshotError::Malformed(at))
    }
    fn i(&mut self) -> Result<i64, SnapshotError> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn s(&mut self) -> Result<String, SnapshotError> {
        let len: usize = self.n()?;
        let end = self
            .i
            .checked_add(len)
            .ok_or(SnapshotError::Malformed(self.i))?;
        let bytes = self
            .b
            .get(self.i..end)
            .ok_or(SnapshotError::Malformed(self.i))?;
        let s = std::str::from_utf8(bytes).map_err(|_| SnapshotError::Malformed(self.i))?;
        self.i = end;
        Ok(s.to_string())
    }
}

/// Appends the snapshot of `rec` (with the names of its tier, best and previous tier)
/// to `out`.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    rec: &Record,
    names: Names<'_>,
    side: Side<'_>,
    labels: &Interner,
    out: &mut Vec<u8>,
) {
    let Names {
        tier,
        peak_tier,
        previous_tier,
        campaign,
    } = names;
    let Side { task, links } = side;
    out.push(VERSION);
    put_s(out, &rec.id);
    put_i(out, rec.last_offset);
    put_i(out, rec.clock);
    put_i(out, rec.lifetime_value);
    for d in [
        rec.first_seen_day,
        rec.first_order_day,
        rec.last_order_day,
        rec.timer_day,
    ] {
        put(out, d as u64);
    }
    put(out, rec.lifetime_orders as u64);
    put(out, rec.purchase_days as u64);
    put_i(out, rec.burst_minute as i64);
    put(out, rec.burst_count as u64);
    put(out, rec.open_complaints as u64);
    put(out, rec.last_nps as u64);
    put(out, rec.level as u64);
    put_s(out, tier.unwrap_or(""));
    for l in rec.labels {
        put_s(out, labels.name(l as u32).unwrap_or(""));
    }
    put_s(out, campaign.unwrap_or(""));
    put(out, rec.tier_since as u64);
    put_s(out, peak_tier.unwrap_or(""));
    // Tags: processor-local ids → a local string table, in order of first use.
    let mut names: SmallVec<[u32; 8]> = SmallVec::new();
    let mut hist = Vec::with_capacity(rec.days.len() + 8);
    days::copy_mapping_tags(&rec.days, &mut hist, |k| {
        let id = k >> 1;
        let idx = match names.iter().position(|n| *n == id) {
            Some(i) => i,
            None => {
                names.push(id);
                names.len() - 1
            }
        };
        ((idx as u32) << 1) | (k & 1)
    });
    put(out, names.len() as u64);
    for id in names {
        put_s(out, labels.name(id).unwrap_or("other"));
    }
    put(out, hist.len() as u64);
    out.extend_from_slice(&hist);
    // Version 3: the latest warning's task.
    match task {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            let c = t.care;
            out.extend_from_slice(&c.id);
            for v in [c.raised, c.due, c.first_acted, c.acted] {
                put_i(out, v);
            }
            for v in [c.status, c.level, c.flags] {
                put(out, v as u64);
            }
            for l in t.labels {
                put_s(out, l);
            }
        }
    }
    // Version 4: the previous tier.
    put_s(out, previous_tier.unwrap_or(""));
    // Version 4: campaign links.
    put(out, links.len() as u64);
    for (name, l) in links {
        put_s(out, name);
        put(out, l.stage as u64);
        put_i(out, l.converted_day as i64);
        put_i(out, l.revenue_cents);
    }
}

/// Reads a snapshot.
pub fn decode(b: &[u8]) -> Result<Decoded, SnapshotError> {
    let version = *b.first().ok_or(SnapshotError::Malformed(0))?;
    // Version 1 had no campaign (it reads as "none"); versions before 3 kept neither the
    // tier's start, the best tier nor the latest warning's task (they read as unknown/none);
    // versions before 4 had no previous tier (unknown), no campaign links (none) and day
    // history format 1.
    if !(1..=VERSION).contains(&version) {
        return Err(SnapshotError::Version(version));
    }
    let mut r = Reader { b, i: 1 };
    let id = r.s()?;
    let mut rec = Record::new(&id, 0);
    rec.last_offset = r.i()?;
    rec.clock = r.i()?;
    rec.lifetime_value = r.i()?;
    rec.first_seen_day = r.n()?;
    rec.first_order_day = r.n()?;
    rec.last_order_day = r.n()?;
    rec.timer_day = r.n()?;
    rec.lifetime_orders = r.n()?;
    rec.purchase_days = r.n()?;
    rec.burst_minute = i32::try_from(r.i()?).map_err(|_| SnapshotError::Malformed(r.i))?;
    rec.burst_count = r.n()?;
    rec.open_complaints = r.n()?;
    rec.last_nps = r.n()?;
    rec.level = r.n::<u8>()?.min(2);
    rec.tier = NO_TIER;
    let tier = r.s()?;
    let labels = [r.s()?, r.s()?, r.s()?, r.s()?];
    let campaign = if version >= 2 { r.s()? } else { String::new() };
    let peak_tier = if version >= 3 {
        rec.tier_since = r.n()?;
        r.s()?
    } else {
        String::new()
    };
    let n: usize = r.n()?;
    let mut tag_names = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        tag_names.push(r.s()?);
    }
    let len: usize = r.n()?;
    let end = r.i.checked_add(len).ok_or(SnapshotError::Malformed(r.i))?;
    let hist = b.get(r.i..end).ok_or(SnapshotError::Malformed(r.i))?;
    let days = if version >= 4 {
        let days = days::decode_all(hist);
        let mut check = Vec::new();
        days::encode_all(&days, &mut check);
        if check != hist {
            return Err(SnapshotError::Malformed(r.i));
        }
        days
    } else {
        // History format 1: conversions without participations; read whole, or refused.
        days::decode_all_v1(hist).ok_or(SnapshotError::Malformed(r.i))?
    };
    r.i = end;
    let mut care = None;
    let mut task_labels: [String; 4] = Default::default();
    if version >= 3 {
        let has = *b.get(r.i).ok_or(SnapshotError::Malformed(r.i))?;
        r.i += 1;
        if has == 1 {
            let id: [u8; 16] = b
                .get(r.i..r.i + 16)
                .and_then(|s| s.try_into().ok())
                .ok_or(SnapshotError::Malformed(r.i))?;
            r.i += 16;
            let (raised, due, first_acted, acted) = (r.i()?, r.i()?, r.i()?, r.i()?);
            if raised == NEVER {
                // The store's mark of "no task": never a raised warning's instant.
                return Err(SnapshotError::Malformed(r.i));
            }
            let (status, level, flags) = (r.n::<u8>()?, r.n::<u8>()?, r.n::<u8>()?);
            task_labels = [r.s()?, r.s()?, r.s()?, r.s()?];
            care = Some(Care {
                id,
                raised,
                due,
                first_acted,
                acted,
                owner: 0,
                actor: 0,
                outcome: 0,
                status: status.min(4),
                level: level.min(2),
                rule: 0,
                flags,
            });
        } else if has != 0 {
            return Err(SnapshotError::Malformed(r.i));
        }
    }
    let previous_tier = if version >= 4 { r.s()? } else { String::new() };
    let mut links = Vec::new();
    if version >= 4 {
        let n: usize = r.n()?;
        for _ in 0..n.min(u16::MAX as usize + 1) {
            let name = r.s()?;
            let stage = r.n::<u8>()?;
            let at = r.i;
            let converted_day = i32::try_from(r.i()?).map_err(|_| SnapshotError::Malformed(at))?;
            let revenue_cents = r.i()?;
            if !(1..=3).contains(&stage) {
                return Err(SnapshotError::Malformed(at));
            }
            links.push((
                name,
                Link {
                    campaign: 0,
                    stage,
                    converted_day,
                    revenue_cents,
                },
            ));
        }
    }
    if r.i != b.len() {
        return Err(SnapshotError::Malformed(r.i));
    }
    if days
        .iter()
        .flat_map(|d| d.tags.iter())
        .any(|(k, _)| (*k >> 1) as usize >= tag_names.len())
    {
        return Err(SnapshotError::Malformed(r.i));
    }
    Ok(Decoded {
        record: rec,
        tier,
        labels,
        campaign,
        peak_tier,
        previous_tier,
        tag_names,
        days,
        care,
        task_labels,
        links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b);
            let mut v = vec![VERSION];
            v.extend_from_slice(&b);
            let _ = decode(&v);
        }
    }

    #[test]
    fn version_3_reads_without_links_and_links_round_trip() {
        let mut rec = Record::new("C1", 0);
        let mut d = DayData::new(20_000);
        d.counts.orders = 1;
        d.counts.amount = 500;
        let mut hist = Vec::new();
        d.encode(&mut hist);
        rec.days = hist.into_boxed_slice();
        let labels = Interner::new(16);
        let link = Link {
            campaign: 1,
            stage: 3,
            converted_day: 20_000,
            revenue_cents: 500,
        };
        let mut v4 = Vec::new();
        let links = [("spring", link)];
        let side = |links| Side { task: None, links };
        const NONE: Names<'static> = Names {
            tier: None,
            peak_tier: None,
            previous_tier: None,
            campaign: None,
        };
        encode(&rec, NONE, side(&links), &labels, &mut v4);
        let got = decode(&v4).unwrap();
        assert_eq!(
            got.links,
            vec![(
                "spring".to_string(),
                Link {
                    campaign: 0,
                    ..link
                }
            )]
        );
        // The same customer as version 3 wrote it: no previous tier, no link count.
        let mut v3 = Vec::new();
        encode(&rec, NONE, side(&[]), &labels, &mut v3);
        assert_eq!((v3.pop(), v3.pop()), (Some(0), Some(0)));
        v3[0] = 3;
        let old = decode(&v3).unwrap();
        assert_eq!((old.days, old.links), (vec![d], vec![]));
    }

    #[test]
    fn versions_are_checked() {
        assert_eq!(decode(&[9, 0]), Err(SnapshotError::Version(9)));
        assert_eq!(decode(&[]), Err(SnapshotError::Malformed(0)));
    }
}
