//! What leaves and enters a processor besides alerts: profiles (look-ups, the compacted
//! topic's drain under `outputs.profile_publish`), changelog snapshots and their restore,
//! and forgetting a customer.

use super::{sketch_keys, sketch_values, sync_sketch, Processor};
use crate::core::campaign::{Link, Links};
use crate::core::days;
use crate::core::facts::Facts;
use crate::core::output::{Output, Profile};
use crate::core::settings::ProfilePublish;
use crate::core::store::{unpack, Record, DIRTY, NO_DAY, NO_TIER, SKETCHED, STANDING};
use crate::core::time::Ts;
use smallvec::SmallVec;

impl Processor {
    /// The current profile of a customer, if known, with its facts as of the watermark
    /// (or the customer's clock, if later): what a look-up should show now. Its tier and
    /// warning are the record's, which hold until the customer's next deadline, and every
    /// deadline up to the watermark has fired. The profile outputs instead are as of the
    /// customer's clock, so that they are the same however the stream is cut into commit
    /// intervals.
    pub fn profile(&mut self, customer_id: &str) -> Option<Profile> {
        let slot = self.store.get(customer_id)?;
        Some(self.profile_at(slot, self.look_up_instant(slot, self.watermark)))
    }

    /// The instant a look-up evaluates a customer at: `now`, or the customer's clock if
    /// that is later (or if there is no `now`).
    fn look_up_instant(&self, slot: u32, now: Option<Ts>) -> Ts {
        let clock = self.store.rec(slot).clock;
        now.map_or(clock, |n| n.max(clock))
    }

    /// The input offset the customer's state reflects (−1 if none).
    pub fn last_offset(&self, customer_id: &str) -> Option<i64> {
        self.store
            .get(customer_id)
            .map(|s| self.store.rec(s).last_offset)
    }

    /// A customer's record (its encoded day history included), read-only: for checks
    /// that recompute what the processor derives from it (the property tests fold the
    /// history and compare with [`crate::core::facts::Running`]).
    pub fn record(&self, customer_id: &str) -> Option<&Record> {
        self.store.get(customer_id).map(|s| self.store.rec(s))
    }

    pub(super) fn profile_of(&self, slot: u32) -> Profile {
        self.profile_at(slot, self.store.rec(slot).clock)
    }

    /// The portable snapshot of a customer's state (the changelog record), or `None` if
    /// the customer is unknown (erased: the changelog gets a tombstone).
    pub fn snapshot(&self, customer_id: &str) -> Option<Vec<u8>> {
        let slot = self.store.get(customer_id)?;
        Some(self.snapshot_of(slot))
    }

    pub(super) fn snapshot_of(&self, slot: u32) -> Vec<u8> {
        let rec = self.store.rec(slot);
        let name = |t: u8| (t != NO_TIER).then(|| self.s.tiers[t as usize].name.as_str());
        let (tier, peak) = (name(rec.tier), name(rec.peak_tier));
        let previous = name(rec.previous_tier);
        let mut out = Vec::with_capacity(64 + rec.days.len());
        let campaign = self.book.as_ref().and_then(|b| b.name(rec.campaign));
        let task = self.store.care(slot).map(|c| {
            let name = |id: u16| self.labels.name(id as u32).unwrap_or("");
            crate::core::snapshot::TaskOut {
                care: c,
                labels: [
                    name(c.owner),
                    name(c.actor),
                    name(c.outcome),
                    self.s
                        .warnings
                        .get(c.rule as usize)
                        .map_or("", |w| w.rule.name.as_str()),
                ],
            }
        });
        let links: SmallVec<[(&str, Link); 2]> = match (self.book.as_ref(), self.store.links(slot))
        {
            (Some(b), Some(ls)) => ls
                .iter()
                .filter_map(|l| Some((b.name(l.campaign)?, *l)))
                .collect(),
            _ => SmallVec::new(),
        };
        crate::core::snapshot::encode(
            rec,
            crate::core::snapshot::Names {
                tier,
                peak_tier: peak,
                previous_tier: previous,
                campaign,
            },
            crate::core::snapshot::Side {
                task,
                links: &links,
            },
            &self.labels,
            &mut out,
        );
        out
    }

    /// Restores a customer from a snapshot, replacing any state held for it. The restored
    /// customer is not marked changed: its state is already durable.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), crate::core::snapshot::SnapshotError> {
        let mut d = crate::core::snapshot::decode(bytes)?;
        let ids: Vec<u32> = d.tag_names.iter().map(|n| self.labels.intern(n)).collect();
        for day in &mut d.days {
            for (k, _) in day.tags.iter_mut() {
                *k = (ids[(*k >> 1) as usize] << 1) | (*k & 1);
            }
        }
        let mut blob = Vec::new();
        days::encode_all(&d.days, &mut blob);
        let mut rec = d.record;
        for (i, l) in d.labels.iter().enumerate() {
            rec.labels[i] = self.labels.intern(l) as u16;
        }
        rec.campaign = match self.book.as_mut() {
            Some(b) if !d.campaign.is_empty() => b.slot(&d.campaign),
            _ => 0,
        };
        // By name: under changed rules an unknown tier is re-evaluated, not trusted.
        let index = |name: &str| {
            self.s
                .tiers
                .iter()
                .position(|t| t.name == name)
                .map_or(NO_TIER, |i| i as u8)
        };
        rec.tier = index(&d.tier);
        // A snapshot from before the best tier was kept: the current tier is the best known.
        rec.peak_tier = match index(&d.peak_tier) {
            NO_TIER => rec.tier,
            p => p,
        };
        rec.previous_tier = index(&d.previous_tier);
        if let Some(old) = self.store.get(&rec.id) {
            self.remove_slot(old);
        }
        let (slot, _) = self.store.get_or_insert(&rec.id.clone(), rec.clock);
        if rec.tier != NO_TIER {
            self.tier_counts[rec.tier as usize] += 1;
        }
        self.level_counts[rec.level as usize] += 1;
        let timer = unpack(rec.timer_day);
        rec.flags = crate::core::store::LIVE;
        rec.days = Box::new([]);
        *self.store.rec_mut(slot) = rec;
        self.store.set_days(slot, &blob);
        let st = self.static_of(slot);
        self.live.apply_static(&st, 1);
        let rec = self.store.rec(slot);
        let (last, first) = (rec.last_order_day, unpack(rec.first_seen_day));
        self.timeline_apply(Some(slot), last, 1);
        self.first_day = Some(self.first_day.map_or(first, |d| d.min(first)));
        if let Some(pop) = self.pop.as_mut() {
            // The values of its latest evaluation, which happened at its clock.
            let rec = self.store.rec(slot);
            let f = Facts::compute(&rec.days, rec, &self.s, rec.clock);
            let (spend, activity) = sketch_values(&f, &self.s);
            sync_sketch(pop, self.store.rec_mut(slot), spend, activity);
        }
        if timer != NO_DAY {
            self.timers.push(timer, slot);
        }
        if let Some(book) = self.book.as_mut() {
            let mut links = Links::new();
            for (name, mut l) in std::mem::take(&mut d.links) {
                l.campaign = book.slot(&name);
                // Two names beyond the tracked limit both land in `other`: keep the
                // furthest stage, as a customer counts once per campaign.
                match links.iter_mut().find(|x| x.campaign == l.campaign) {
                    Some(x) if x.stage >= l.stage => {}
                    Some(x) => *x = l,
                    None => links.push(l),
                }
            }
            for l in &links {
                book.apply(l, 1);
            }
            self.store.set_links(slot, links);
        }
        if let Some(mut c) = d.care {
            let [owner, actor, outcome, rule] = &d.task_labels;
            // The owner is never empty; a snapshot without one gets the default queue.
            let owner = if owner.is_empty() {
                self.s.interventions.default_queue.as_str()
            } else {
                owner.as_str()
            };
            c.owner = self.labels.intern(owner) as u16;
            c.actor = self.labels.intern(actor) as u16;
            c.outcome = self.labels.intern(outcome) as u16;
            // By name, like the tier: under changed rules an unknown rule counts under
            // the first.
            c.rule = self
                .s
                .warnings
                .iter()
                .position(|w| w.rule.name == *rule)
                .unwrap_or(0)
                .min(u8::MAX as usize) as u8;
            self.saved.apply(&c, 1);
            if c.escalation_pending() {
                self.overdue.insert((c.due, slot));
            }
            self.store.set_care(slot, c);
        }
        Ok(())
    }

    /// Restores the partition's stream time and watermark (from its checkpoint).
    pub fn restore_time(&mut self, stream_time: Option<Ts>, watermark: Option<Ts>) {
        self.max_ts = stream_time;
        self.watermark = watermark;
    }

    /// Profiles of customers changed since the last call (for the compacted topic).
    pub fn drain_dirty(&mut self, out: &mut Vec<Output>) {
        self.drain_changes(out, |_, _| {});
    }

    /// Profiles and snapshots of customers changed since the last call: each changed
    /// customer's profile goes to `out` (with `outputs.profile_publish =
    /// "on_standing_change"`, only if its standing changed since its last profile), and
    /// `changed(customer_id, snapshot)` receives its changelog record. Erased customers
    /// are not included (their tombstone output says so).
    pub fn drain_changes(&mut self, out: &mut Vec<Output>, mut changed: impl FnMut(&str, Vec<u8>)) {
        let dirty = std::mem::take(&mut self.dirty);
        let every = self.s.profile_publish == ProfilePublish::EveryChange;
        for slot in dirty {
            if !self.store.is_live(slot) || self.store.rec(slot).flags & DIRTY == 0 {
                continue;
            }
            let rec = self.store.rec_mut(slot);
            let publish = every || rec.flags & STANDING != 0;
            rec.flags &= !(DIRTY | STANDING);
            if publish {
                let p = self.profile_of(slot);
                self.emit(out, Output::Profile(Box::new(p)));
            }
            // By slot: the customer is at hand, a second hash look-up by id is not needed.
            changed(&self.store.rec(slot).id, self.snapshot_of(slot));
        }
    }

    /// Number of customers changed since the last drain.
    pub fn pending_changes(&self) -> usize {
        self.dirty.len()
    }

    /// Drops a customer's state without any output (a changelog tombstone read during a
    /// restore). Returns whether the customer was held.
    pub fn forget(&mut self, customer_id: &str) -> bool {
        match self.store.get(customer_id) {
            Some(slot) => {
                self.remove_slot(slot);
                true
            }
            None => false,
        }
    }

    pub(super) fn remove_slot(&mut self, slot: u32) {
        let rec = self.store.rec(slot);
        if rec.tier != NO_TIER {
            self.tier_counts[rec.tier as usize] -= 1;
        }
        self.level_counts[rec.level as usize] -= 1;
        if rec.flags & SKETCHED != 0 {
            if let Some(pop) = self.pop.as_mut() {
                pop.remove(sketch_keys(rec));
            }
        }
        let st = self.static_of(slot);
        self.live.apply_static(&st, -1);
        let last = self.store.rec(slot).last_order_day;
        self.timeline_apply(Some(slot), last, -1);
        if let Some(c) = self.store.care(slot) {
            let c = c.clone();
            self.saved.apply(&c, -1);
        }
        if let (Some(book), Some(links)) = (self.book.as_mut(), self.store.links(slot)) {
            for l in links {
                book.apply(l, -1);
            }
        }
        self.store.remove(slot);
    }

    /// Every customer's profile as last published, sorted by customer id: as of the
    /// customer's clock (its last event or fired deadline), like the records of the
    /// compacted profiles topic.
    pub fn profiles_sorted(&mut self) -> Vec<Profile> {
        self.sorted_slots()
            .into_iter()
            .map(|s| self.profile_of(s))
            .collect()
    }

    /// Every customer's profile as a look-up at `now` shows it, sorted by customer id:
    /// facts, P(alive) and CLV as of `now` (or the customer's clock, if later; the clock
    /// when `now` is `None`). With `now` = the watermark each is what [`Processor::profile`]
    /// returns. Tiers and warnings are the records': call it once every deadline up to
    /// `now` has fired ([`Processor::advance_to`]), or they may be stale.
    pub fn profiles_as_of(&self, now: Option<Ts>) -> Vec<Profile> {
        self.sorted_slots()
            .into_iter()
            .map(|s| self.profile_at(s, self.look_up_instant(s, now)))
            .collect()
    }

    fn sorted_slots(&self) -> Vec<u32> {
        let mut slots: Vec<(&str, u32)> =
            self.store.iter().map(|(s, r)| (r.id.as_str(), s)).collect();
        slots.sort_unstable();
        slots.into_iter().map(|(_, s)| s).collect()
    }
}
