//! Per-partition customer state: a slab of compact [`Record`]s, a hash table from
//! customer id to slot that stores only 4-byte slot numbers (the id lives in the record),
//! and an interner for low-cardinality labels (channel, category, profile attributes).
//!
//! Measured choice: a `HashMap<String, Record>` costs ~2× the entry size per customer in
//! empty buckets; storing `u32` slots keeps that overhead near 10 bytes per customer.

use compact_str::CompactString;
use hashbrown::{HashMap, HashTable};
use xxhash_rust::xxh3::xxh3_64;

use super::campaign::{Link, Links};
use super::care::Care;
use super::time::{Day, Ts};

/// "No day" marker for optional day fields.
pub const NO_DAY: Day = i32::MIN;

/// Stored form of [`NO_DAY`].
const NO_DAY16: u16 = u16::MAX;

/// A day number as stored in a record: days since 1970 fit 16 bits until 2149, and input
/// is limited to 1970–2099. Out-of-range days (a deadline beyond 2149) mean "never".
#[inline]
pub fn pack(d: Day) -> u16 {
    if (0..NO_DAY16 as Day).contains(&d) {
        d as u16
    } else {
        NO_DAY16
    }
}

/// A stored day back as a [`Day`] ([`NO_DAY`] when unset).
#[inline]
pub fn unpack(v: u16) -> Day {
    if v == NO_DAY16 {
        NO_DAY
    } else {
        v as Day
    }
}

/// Most distinct labels a processor keeps (ids are 16 bits; 0 and 1 are reserved).
pub const MAX_LABELS: u32 = u16::MAX as u32 - 2;
/// "No tier yet" marker.
pub const NO_TIER: u8 = u8::MAX;
/// "No NPS answer" marker.
pub const NO_NPS: u8 = u8::MAX;

/// Record flag: changed since the last profile was taken.
pub const DIRTY: u8 = 1;
/// Record flag: slot holds a customer.
pub const LIVE: u8 = 2;
/// Record flag: the customer is counted in the population sketches under
/// (`spend_bucket`, `activity`, `first_seen_day`).
pub const SKETCHED: u8 = 4;

/// Record flag: the customer's standing (tier, warning level, profile labels) changed
/// since its last profile was taken (for `outputs.profile_publish = "on_standing_change"`).
/// Not persisted: a restored customer has no profile pending.
pub const STANDING: u8 = 8;

/// Index of each profile label in [`Record::labels`].
pub mod label {
    /// Account manager (warning owner).
    pub const ACCOUNT_MANAGER: usize = 0;
    /// Industry.
    pub const INDUSTRY: usize = 1;
    /// Region.
    pub const REGION: usize = 2;
    /// Segment.
    pub const SEGMENT: usize = 3;
}

/// One customer's state. Fixed-size fields plus the encoded day history (`days`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Customer id (inline up to 24 bytes).
    pub id: CompactString,
    /// Encoded day history (see `days.rs`).
    pub days: Box<[u8]>,
    /// Input offset of the last event applied (−1: none); events at or below are skipped.
    pub last_offset: i64,
    /// The customer's clock: the latest of its event times and fired deadlines. Facts are
    /// evaluated at this instant, which makes results independent of other customers.
    pub clock: Ts,
    /// Lifetime order value minus refunds, cents.
    pub lifetime_value: i64,
    /// First day seen ([`pack`]ed).
    pub first_seen_day: u16,
    /// First order day, [`pack`]ed ([`NO_DAY`] when none).
    pub first_order_day: u16,
    /// Last order day, [`pack`]ed.
    pub last_order_day: u16,
    /// Next deadline at which time alone can change a rule outcome, [`pack`]ed.
    pub timer_day: u16,
    /// Day the current tier began, [`pack`]ed ([`NO_DAY`] when unknown: no tier yet, or
    /// restored from a snapshot that did not keep it).
    pub tier_since: u16,
    /// Lifetime orders.
    pub lifetime_orders: u32,
    /// Distinct purchase days.
    pub purchase_days: u32,
    /// Minute of the latest order (for abnormal-frequency detection).
    pub burst_minute: i32,
    /// Profile labels (interned; 0 = unset).
    pub labels: [u16; 4],
    /// Open complaints.
    pub open_complaints: u16,
    /// Spend bucket this customer holds in the population sketch (if [`SKETCHED`]).
    pub spend_bucket: u16,
    /// Latest campaign that reached this customer (a processor-local campaign slot; 0 =
    /// none): satisfaction answers are attributed to it.
    pub campaign: u16,
    /// Activity value this customer holds in the population sketch (if [`SKETCHED`]).
    pub activity: u8,
    /// Orders applied in `burst_minute`.
    pub burst_count: u8,
    /// Last NPS answer or [`NO_NPS`].
    pub last_nps: u8,
    /// Current tier index or [`NO_TIER`].
    pub tier: u8,
    /// The best tier ever held (by `tiers.ranking`) or [`NO_TIER`].
    pub peak_tier: u8,
    /// The tier held before the current one or [`NO_TIER`].
    pub previous_tier: u8,
    /// Current warning level (0 low, 1 medium, 2 high).
    pub level: u8,
    /// [`DIRTY`] | [`LIVE`].
    pub flags: u8,
}

impl Record {
    /// A new customer first seen at `ts`.
    pub fn new(id: &str, ts: Ts) -> Record {
        Record {
            id: CompactString::new(id),
            days: Box::new([]),
            last_offset: -1,
            clock: ts,
            lifetime_value: 0,
            first_seen_day: pack(super::time::day_of(ts)),
            first_order_day: NO_DAY16,
            last_order_day: NO_DAY16,
            timer_day: NO_DAY16,
            tier_since: NO_DAY16,
            lifetime_orders: 0,
            purchase_days: 0,
            burst_minute: i32::MIN,
            labels: [0; 4],
            open_complaints: 0,
            spend_bucket: 0,
            campaign: 0,
            activity: 0,
            burst_count: 0,
            last_nps: NO_NPS,
            tier: NO_TIER,
            peak_tier: NO_TIER,
            previous_tier: NO_TIER,
            level: 0,
            flags: LIVE,
        }
    }

    /// Heap bytes owned by the record (beyond its fixed size).
    pub fn heap_bytes(&self) -> usize {
        self.days.len()
            + if self.id.is_heap_allocated() {
                self.id.len()
            } else {
                0
            }
    }
}

/// Slab + id table.
#[derive(Debug, Default)]
pub struct Store {
    records: Vec<Record>,
    table: HashTable<u32>,
    free: Vec<u32>,
    live: usize,
    heap: usize,
    /// The latest warning's task state by slot; [`Care::ABSENT`] where the customer never
    /// had a warning. Dense (a vector beside the slab, not a map): under the default rules
    /// nearly every customer is warned once it stops ordering (92 % of the 1 M customers of
    /// the memory benchmark carried a task), and a map entry cost ~146 bytes per warned
    /// customer (72-byte entry, control byte, load factor) against 64 bytes per slot here;
    /// the vector costs less as soon as more than ~44 % of the customers are warned.
    care: Vec<Care>,
    /// The campaigns each engaged customer was reached by (side table for the same
    /// reason: most customers are never in a campaign).
    links: HashMap<u32, Links>,
    /// Heap bytes of link vectors that outgrew their inline slot.
    links_heap: usize,
}

fn spilled_bytes(l: &Links) -> usize {
    if l.spilled() {
        l.capacity() * std::mem::size_of::<Link>()
    } else {
        0
    }
}

#[inline]
fn hash_id(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

impl Store {
    /// Slot of a customer.
    pub fn get(&self, id: &str) -> Option<u32> {
        let records = &self.records;
        self.table
            .find(hash_id(id), |&s| records[s as usize].id == id)
            .copied()
    }

    /// Slot of a customer, creating the record if absent; `true` when created.
    pub fn get_or_insert(&mut self, id: &str, ts: Ts) -> (u32, bool) {
        if let Some(s) = self.get(id) {
            return (s, false);
        }
        let rec = Record::new(id, ts);
        self.heap += rec.heap_bytes();
        let slot = match self.free.pop() {
            Some(s) => {
                self.records[s as usize] = rec;
                s
            }
            None => {
                self.records.push(rec);
                (self.records.len() - 1) as u32
            }
        };
        let records = &self.records;
        self.table
            .insert_unique(hash_id(id), slot, |&s| hash_id(&records[s as usize].id));
        self.live += 1;
        (slot, true)
    }

    /// Removes a customer's record.
    pub fn remove(&mut self, slot: u32) {
        let records = &self.records;
        let id = &records[slot as usize].id;
        if let Ok(entry) = self.table.find_entry(hash_id(id), |&s| s == slot) {
            entry.remove();
        }
        if let Some(c) = self.care.get_mut(slot as usize) {
            *c = Care::ABSENT;
        }
        self.take_links(slot);
        let rec = &mut self.records[slot as usize];
        self.heap -= rec.heap_bytes();
        *rec = Record::new("", 0);
        rec.flags = 0;
        self.free.push(slot);
        self.live -= 1;
    }

    /// The record in a slot.
    #[inline]
    pub fn rec(&self, slot: u32) -> &Record {
        &self.records[slot as usize]
    }

    /// The record in a slot, mutably. Use [`Store::set_days`] to replace its history.
    #[inline]
    pub fn rec_mut(&mut self, slot: u32) -> &mut Record {
        &mut self.records[slot as usize]
    }

    /// The customer's latest warning's task state, if it had a warning.
    #[inline]
    pub fn care(&self, slot: u32) -> Option<&Care> {
        self.care.get(slot as usize).filter(|c| !c.is_absent())
    }

    /// Sets a customer's task state, returning the previous one.
    pub fn set_care(&mut self, slot: u32, c: Care) -> Option<Care> {
        let i = slot as usize;
        if i >= self.care.len() {
            // Grow with the slab (same capacity steps), not by the vector's own doubling
            // from its current length.
            self.care
                .reserve_exact(self.records.capacity().saturating_sub(self.care.len()));
            self.care.resize(i + 1, Care::ABSENT);
        }
        let old = std::mem::replace(&mut self.care[i], c);
        (!old.is_absent()).then_some(old)
    }

    /// The customer's campaign links, if it was in any campaign.
    #[inline]
    pub fn links(&self, slot: u32) -> Option<&Links> {
        self.links.get(&slot)
    }

    /// Takes a customer's campaign links out (put them back with [`Store::set_links`]):
    /// the campaign book and the store are updated together without two borrows.
    pub fn take_links(&mut self, slot: u32) -> Links {
        let l = self.links.remove(&slot).unwrap_or_default();
        self.links_heap -= spilled_bytes(&l);
        l
    }

    /// Sets a customer's campaign links (none: removes the entry).
    pub fn set_links(&mut self, slot: u32, links: Links) {
        self.take_links(slot);
        if !links.is_empty() {
            self.links_heap += spilled_bytes(&links);
            self.links.insert(slot, links);
        }
    }

    /// Bytes of the campaign-link table (entries, control bytes, spilled link vectors).
    pub fn links_bytes(&self) -> usize {
        self.links.capacity() * (std::mem::size_of::<(u32, Links)>() + 1) + self.links_heap
    }

    /// Bytes of the task-state vector (its capacity).
    pub fn care_bytes(&self) -> usize {
        self.care.capacity() * std::mem::size_of::<Care>()
    }

    /// Replaces a record's encoded history, keeping the heap accounting right.
    pub fn set_days(&mut self, slot: u32, blob: &[u8]) {
        let rec = &mut self.records[slot as usize];
        if *rec.days != *blob {
            self.heap = self.heap + blob.len() - rec.days.len();
            rec.days = blob.into();
        }
    }

    /// Whether a slot holds a live record.
    #[inline]
    pub fn is_live(&self, slot: u32) -> bool {
        self.records
            .get(slot as usize)
            .is_some_and(|r| r.flags & LIVE != 0)
    }

    /// Live customers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// No customers.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Live records with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Record)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.flags & LIVE != 0)
            .map(|(i, r)| (i as u32, r))
    }

    /// Bytes of the record slab (its capacity).
    pub fn records_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<Record>()
    }

    /// Bytes of the id table (4-byte slots plus one control byte per bucket).
    pub fn table_bytes(&self) -> usize {
        self.table.capacity() * 5
    }

    /// Heap bytes of histories and long ids, with ~16 bytes of allocator overhead each.
    pub fn heap_bytes(&self) -> usize {
        self.heap + self.live * 16
    }

    /// Estimated resident bytes: slab capacity, table buckets and owned heap bytes.
    pub fn state_bytes(&self) -> usize {
        self.records_bytes()
            + self.table_bytes()
            + self.heap_bytes()
            + self.care_bytes()
            + self.links_bytes()
    }
}

/// Interns labels; id 0 is "unset", id 1 is "other" (used once the cap is reached so a
/// flood of distinct values cannot grow memory without bound).
#[derive(Debug)]
pub struct Interner {
    names: Vec<CompactString>,
    map: HashMap<CompactString, u32>,
    cap: u32,
}

impl Interner {
    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.names.capacity() * 24 + self.map.capacity() * 28
    }

    /// An interner holding at most `cap` distinct labels.
    pub fn new(cap: u32) -> Interner {
        Interner {
            names: vec![CompactString::new(""), CompactString::new("other")],
            map: HashMap::new(),
            cap: cap.min(MAX_LABELS),
        }
    }

    /// The id of a label (0 for the empty label).
    pub fn intern(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        if self.map.len() as u32 >= self.cap {
            return 1;
        }
        let id = self.names.len() as u32;
        let name = CompactString::new(s);
        self.names.push(name.clone());
        self.map.insert(name, id);
        id
    }

    /// The label of an id (`None` for 0 or unknown ids).
    pub fn name(&self, id: u32) -> Option<&str> {
        if id == 0 {
            return None;
        }
        self.names.get(id as usize).map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_reuse() {
        let mut s = Store::default();
        let (a, new) = s.get_or_insert("A", 0);
        assert!(new);
        let (b, _) = s.get_or_insert("B", 0);
        assert_eq!(s.get_or_insert("A", 5), (a, false));
        assert_eq!(s.len(), 2);
        s.set_days(a, &[1, 2, 3]);
        s.remove(a);
        assert_eq!(s.get("A"), None);
        assert_eq!(s.get("B"), Some(b));
        let (c, new) = s.get_or_insert("C", 0);
        assert!(new);
        assert_eq!(c, a, "freed slots are reused");
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn record_is_compact() {
        assert!(
            std::mem::size_of::<Record>() <= 112,
            "{}",
            std::mem::size_of::<Record>()
        );
    }

    #[test]
    fn days_pack_into_16_bits() {
        assert_eq!(unpack(pack(20_500)), 20_500);
        assert_eq!(unpack(pack(0)), 0);
        assert_eq!(unpack(pack(NO_DAY)), NO_DAY);
        assert_eq!(unpack(pack(70_000)), NO_DAY, "beyond 2149 is never");
        assert_eq!(unpack(pack(-1)), NO_DAY);
    }

    #[test]
    fn interner_caps() {
        let mut i = Interner::new(2);
        assert_eq!(i.intern(""), 0);
        let a = i.intern("web");
        assert_eq!(i.intern("web"), a);
        let b = i.intern("app");
        assert_ne!(a, b);
        assert_eq!(i.intern("store"), 1);
        assert_eq!(i.name(1), Some("other"));
        assert_eq!(i.name(a), Some("web"));
        assert_eq!(i.name(0), None);
    }
}
