//! The per-partition processor: applies events to customer records, evaluates tiers and
//! warnings, fires time-driven deadlines and produces outputs. Pure: time comes in as
//! event times and explicit `advance_to` calls, outputs go into a caller's vector.
//!
//! Determinism: each customer is evaluated at its own clock (the latest of its event
//! times and fired deadlines), and before an event is applied the customer's own due
//! deadlines up to the event's day are fired first. So a customer's outputs depend only on
//! its own events (in order) and how far time was advanced — not on how other customers'
//! events interleave, nor on how customers are partitioned. The watermark only decides
//! *when* a silent customer's deadlines fire.

use std::sync::Arc;

use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64;

use super::analytics::{Keys, Population};
use super::campaign::CampaignBook;
use super::days;
use super::event::{decode, Event, EventKind, RejectReason};
use super::facts::{DayCounts, Facts, Running};
use super::output::{schema, stable_id, Output, SourceRef, Text, Tombstone};
use super::settings::{Level, Settings};
use super::store::{
    pack, unpack, Interner, Record, Store, DIRTY, NO_DAY, NO_TIER, SKETCHED, STANDING,
};
use super::time::{day_of, format_rfc3339, Day, Ts};
use super::timers::Timers;

mod changes;
mod deadlines;
mod emit;
mod evaluate;
mod mutate;
mod population;
mod reject;
use reject::serialize_for_dead_letter;
mod reload;
mod stats;
mod tasks;

pub use reload::{check_reload, Move, ReloadError, Reloaded, RuleDelta, RulesDiff};
pub use stats::Stats;

use super::subject::{outcome, Held};
use deadlines::{next_change, LOOKAHEAD};

/// Where an input record came from. `offset` must grow within one processor; replay uses
/// the line index.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Topic name (or `file:NAME`).
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Source<'_> {
    fn to_ref(self) -> SourceRef {
        SourceRef {
            topic: self.topic.into(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Clock values the adapter knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx {
    /// The current time for the future-skew check (wall clock in the service, `--until`
    /// in replay); `None` disables the check.
    pub now: Option<Ts>,
    /// Value of `emitted_at` on outputs; `None` uses the stream time (deterministic).
    pub emitted_at: Option<Ts>,
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to the customer's state.
    Applied,
    /// The customer was erased.
    Erased,
    /// The same event id was already applied for this customer: nothing changed.
    Duplicate,
    /// The offset is at or below the customer's last applied offset (re-consumption after
    /// a restore): nothing changed.
    AlreadyApplied,
    /// Rejected; a dead letter was produced.
    Rejected(RejectReason),
}

/// Estimated bytes per part of the state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Record slab (capacity).
    pub records: usize,
    /// History blobs and long ids, with allocator overhead.
    pub histories: usize,
    /// Id → slot table.
    pub table: usize,
    /// Deadline index.
    pub timers: usize,
    /// Deadline index entries (including superseded ones).
    pub timer_entries: usize,
    /// Label interner.
    pub labels: usize,
    /// Task states of warned customers and the overdue index.
    pub tasks: usize,
    /// Campaign links of customers reached by a campaign.
    pub campaign_links: usize,
}

enum Trigger<'a> {
    Event {
        event_id: &'a str,
        ts: Ts,
        source: Source<'a>,
    },
    Time {
        day: Day,
    },
    /// A rule reload re-evaluated the customer at the start of `day`.
    Rules {
        day: Day,
    },
}

/// The per-partition processor.
pub struct Processor {
    s: Arc<Settings>,
    store: Store,
    labels: Interner,
    timers: Timers,
    /// Overdue escalations to come: (due time, slot). Entries whose customer's task no
    /// longer has that due time pending are skipped when reached (like `timers`).
    overdue: std::collections::BTreeSet<(Ts, u32)>,
    /// Saved-customer figures over each customer's latest warning, kept live.
    saved: super::care::SavedSums,
    max_ts: Option<Ts>,
    watermark: Option<Ts>,
    /// Working copy of the current customer's encoded history.
    work: Vec<u8>,
    /// Second buffer for copy-on-change updates of `work`.
    scratch: Vec<u8>,
    dirty: Vec<u32>,
    stats: Stats,
    tier_counts: Vec<i64>,
    level_counts: [i64; 3],
    /// Population sketches (analytics enabled).
    pop: Option<Population>,
    /// Campaign figures (analytics enabled).
    book: Option<CampaignBook>,
    /// Input offset from which events skipped as already applied to a customer still
    /// count in the campaign figures: the figures were restored as of this offset, the
    /// customers' state may be newer (see [`Processor::restore_campaigns`]).
    campaigns_from: i64,
    /// The report's time-independent sums, kept live (see [`super::report`]).
    live: super::report::ReportSums,
    /// The report's time-dependent figures, kept live.
    timeline: super::report::Timeline,
    /// Scratch for a customer's timeline contribution.
    contrib: Vec<(Day, [i64; super::report::TIMED])>,
    /// The earliest event day seen (the span of the transition counts).
    first_day: Option<Day>,
    /// Scratch for the deadlines of one day: (sort key, slot).
    due: Vec<(u64, u32)>,
    /// Candidate days a deadline search examines ([`LOOKAHEAD`]; 0 in a test gives the
    /// per-fact deadlines the search must reproduce).
    lookahead: usize,
}

/// Customers a report samples per partition for the value-tier counts.
pub const VALUE_TIER_SAMPLE: usize = 20_000;

/// Brings a customer's entry in the population sketches up to date.
fn sync_sketch(pop: &mut Population, rec: &mut Record, spend_cents: i64, activity: u32) {
    let k = pop.keys(spend_cents, activity, rec.first_seen_day);
    if rec.flags & SKETCHED != 0 {
        let old = sketch_keys(rec);
        if old == k {
            return;
        }
        pop.remove(old);
    }
    pop.add(k);
    rec.spend_bucket = k.spend;
    rec.activity = k.activity;
    rec.flags |= SKETCHED;
}

/// The keys a sketched record holds.
fn sketch_keys(rec: &Record) -> Keys {
    Keys {
        spend: rec.spend_bucket,
        activity: rec.activity,
        first_seen: rec.first_seen_day,
    }
}

/// (365-day spend in cents, activity count) from facts: what the sketches rank.
fn sketch_values(f: &Facts, s: &Settings) -> (i64, u32) {
    let spend = f.window(s, s.windows.len().saturating_sub(1)).amount;
    let a = &f.sums[s.activity_len];
    (
        spend,
        a.visits
            .saturating_add(a.participations)
            .saturating_add(a.conversions),
    )
}

/// 32-bit fingerprint of an event id for duplicate detection within a customer-day.
#[inline]
fn fingerprint(event_id: &str) -> u32 {
    let h = xxh3_64(event_id.as_bytes());
    (h ^ (h >> 32)) as u32
}

impl Processor {
    /// A processor with the given rules.
    pub fn new(settings: Arc<Settings>) -> Processor {
        let tiers = settings.tiers.len();
        let analytics = settings.analytics;
        let live = super::report::ReportSums::new(&settings, 0);
        let mut labels = Interner::new(settings.limits.max_distinct_labels);
        // Owner names first: a flood of other labels must not turn them into "other".
        for n in settings.interventions.names() {
            labels.intern(n);
        }
        Processor {
            labels,
            overdue: Default::default(),
            saved: super::care::SavedSums::new(settings.warnings.len()),
            s: settings,
            store: Store::default(),
            timers: Timers::default(),
            max_ts: None,
            watermark: None,
            work: Vec::with_capacity(1024),
            scratch: Vec::with_capacity(1024),
            dirty: Vec::new(),
            stats: Stats {
                transitions: vec![0; (tiers + 1) * tiers],
                ..Default::default()
            },
            tier_counts: vec![0; tiers],
            level_counts: [0; 3],
            pop: analytics.map(|a| Population::with_cuts(a.relative_accuracy, a.cuts)),
            book: analytics.map(|a| CampaignBook::new(a.max_campaigns as usize)),
            campaigns_from: i64::MAX,
            live,
            timeline: Default::default(),
            contrib: Vec::new(),
            first_day: None,
            due: Vec::new(),
            lookahead: LOOKAHEAD,
        }
    }

    /// The rules in use.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.s
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Customers held.
    pub fn customers(&self) -> usize {
        self.store.len()
    }

    /// Estimated bytes of each part of the state (for metrics and the memory example).
    pub fn memory(&self) -> Memory {
        Memory {
            records: self.store.records_bytes(),
            histories: self.store.heap_bytes(),
            table: self.store.table_bytes(),
            timers: self.timers.bytes(),
            timer_entries: self.timers.len(),
            labels: self.labels.bytes(),
            tasks: self.store.care_bytes() + self.overdue.len() * 24,
            campaign_links: self.store.links_bytes(),
        }
    }

    /// Estimated resident bytes of customer state.
    pub fn state_bytes(&self) -> usize {
        self.store.state_bytes() + self.timers.bytes() + self.overdue.len() * 24
    }

    /// Saved-customer figures (over each customer's latest warning) of this partition.
    pub fn saved(&self) -> &super::care::SavedSums {
        &self.saved
    }

    /// Customers per tier (indexed like `Settings::tiers`).
    pub fn tier_counts(&self) -> &[i64] {
        &self.tier_counts
    }

    /// Customers per warning level (low, medium, high).
    pub fn level_counts(&self) -> [i64; 3] {
        self.level_counts
    }

    /// The watermark, if any event was seen or time advanced.
    pub fn watermark(&self) -> Option<Ts> {
        self.watermark
    }

    /// The newest event time seen.
    pub fn stream_time(&self) -> Option<Ts> {
        self.max_ts
    }

    /// Decodes and applies one input message.
    pub fn process(
        &mut self,
        bytes: &[u8],
        src: Source<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) -> Outcome {
        match decode(bytes, &self.s.limits, ctx.now) {
            Ok(ev) => self.apply_with_raw(&ev, Some(bytes), src, ctx, out),
            Err(r) => {
                self.reject(bytes, src, ctx, r.kind, r.reason, r.detail, out);
                Outcome::Rejected(r.reason)
            }
        }
    }

    /// Advances time to `now` (idle partitions, end of replay): fires every deadline up to
    /// `now`'s day.
    pub fn advance_to(&mut self, now: Ts, ctx: &Ctx, out: &mut Vec<Output>) {
        if self.watermark.is_none_or(|w| now > w) {
            self.watermark = Some(now);
            self.fire_due(ctx, out);
        }
    }

    fn emit(&mut self, out: &mut Vec<Output>, o: Output) {
        self.stats.outputs[o.kind() as usize] += 1;
        out.push(o);
    }

    fn emitted_at(&self, ctx: &Ctx, event_time: Ts) -> Text {
        format_rfc3339(
            ctx.emitted_at
                .unwrap_or_else(|| self.max_ts.unwrap_or(event_time).max(event_time)),
        )
    }

    /// Applies a decoded event.
    pub fn apply(
        &mut self,
        ev: &Event<'_>,
        src: Source<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) -> Outcome {
        self.apply_with_raw(ev, None, src, ctx, out)
    }

    /// Applies a decoded event; `raw` is the original message, for dead letters raised
    /// after decoding (abnormal frequency).
    fn apply_with_raw(
        &mut self,
        ev: &Event<'_>,
        raw: Option<&[u8]>,
        src: Source<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) -> Outcome {
        let kind = ev.kind();
        let late = self.watermark.is_some_and(|w| ev.ts < w);
        if kind == EventKind::Erase {
            if let Some(slot) = self.store.get(&ev.customer_id) {
                if src.offset <= self.store.rec(slot).last_offset {
                    self.stats.already_applied += 1;
                    return Outcome::AlreadyApplied;
                }
                self.remove_slot(slot);
            }
            self.stats.consumed[kind.index()] += 1;
            self.stats.quality.valid(kind);
            let t = Tombstone {
                schema: schema::PROFILE_TOMBSTONE,
                event_id: stable_id(&["profile_tombstone", &ev.customer_id, &ev.event_id]),
                customer_id: Text::from(&*ev.customer_id),
                event_time: format_rfc3339(ev.ts),
                emitted_at: self.emitted_at(ctx, ev.ts),
                source: Some(src.to_ref()),
            };
            self.emit(out, Output::Tombstone(t));
            self.observe(ev.ts, ctx, out);
            return Outcome::Erased;
        }

        let (slot, is_new) = self.store.get_or_insert(&ev.customer_id, ev.ts);
        let fp = fingerprint(&ev.event_id);
        let ev_day = day_of(ev.ts);
        if is_new {
            self.work.clear();
            self.level_counts[0] += 1;
        } else {
            let rec = self.store.rec(slot);
            if src.offset <= rec.last_offset {
                self.stats.already_applied += 1;
                if src.offset >= self.campaigns_from {
                    self.count_campaign(slot, ev);
                }
                return Outcome::AlreadyApplied;
            }
            if days::contains(&rec.days, ev_day, fp) {
                self.stats.consumed[kind.index()] += 1;
                self.stats.duplicates += 1;
                self.stats.quality.valid(kind);
                self.stats.quality.types[kind.index()].duplicates += 1;
                return Outcome::Duplicate;
            }
            self.work.clear();
            self.work.extend_from_slice(&rec.days);
            if kind == EventKind::Order {
                let minute = (ev.ts / 60_000) as i32;
                if rec.burst_minute == minute
                    && rec.burst_count as u32 >= self.s.limits.max_orders_per_minute
                {
                    let detail = format!(
                        "more than {} orders from one customer within a minute (limits.max_orders_per_minute)",
                        self.s.limits.max_orders_per_minute
                    );
                    let bytes = match raw {
                        Some(b) => b.to_vec(),
                        None => serialize_for_dead_letter(ev),
                    };
                    self.reject(
                        &bytes,
                        src,
                        ctx,
                        Some(kind),
                        RejectReason::AbnormalFrequency,
                        detail,
                        out,
                    );
                    return Outcome::Rejected(RejectReason::AbnormalFrequency);
                }
            }
        }
        self.stats.consumed[kind.index()] += 1;
        self.stats.quality.valid(kind);
        if late {
            self.stats.late += 1;
            self.stats.quality.types[kind.index()].late += 1;
        }
        // Deadlines of this customer that fall before the event happen first, exactly as
        // they would have if the watermark had passed them before the event arrived.
        self.catch_up(slot, ev_day, ev.ts, ctx, out);
        self.first_day = Some(self.first_day.map_or(ev_day, |d| d.min(ev_day)));
        // The report's live sums: take the customer's part out, put the new one in.
        let timed = matches!(
            kind,
            EventKind::Order | EventKind::Complaint | EventKind::Survey
        );
        let before = (!is_new).then(|| self.static_of(slot));
        if timed && !is_new {
            let last = self.store.rec(slot).last_order_day;
            self.timeline_apply(None, last, -1);
        }
        self.mutate(slot, ev, fp);
        self.evaluate(
            slot,
            Trigger::Event {
                event_id: &ev.event_id,
                ts: ev.ts,
                source: src,
            },
            ctx,
            out,
        );
        if let Some(b) = before {
            self.live.apply_static(&b, -1);
        }
        let after = self.static_of(slot);
        self.live.apply_static(&after, 1);
        if timed {
            let last = self.store.rec(slot).last_order_day;
            self.timeline_apply(None, last, 1);
        }
        self.store_days(slot);
        self.store.rec_mut(slot).last_offset = src.offset;
        self.observe(ev.ts, ctx, out);
        Outcome::Applied
    }

    fn store_days(&mut self, slot: u32) {
        self.store.set_days(slot, &self.work);
        let rec = self.store.rec_mut(slot);
        if rec.flags & DIRTY == 0 {
            rec.flags |= DIRTY;
            self.dirty.push(slot);
        }
    }

    /// A customer's time-independent part of the report.
    fn static_of(&self, slot: u32) -> super::report::Static {
        let rec = self.store.rec(slot);
        super::report::Static {
            tier: if rec.tier == NO_TIER {
                self.s.fallback_tier()
            } else {
                rec.tier as usize
            },
            orders: rec.lifetime_orders,
            spend_cents: rec.lifetime_value,
            nps: (rec.last_nps != super::store::NO_NPS).then_some(rec.last_nps),
        }
    }

    /// Adds `sign` × the timeline contribution of a history (the record's, or the working
    /// copy's) and last order day.
    fn timeline_apply(&mut self, history_of: Option<u32>, last_order_day: u16, sign: i64) {
        let last = unpack(last_order_day);
        let last = (last != NO_DAY).then_some(last);
        let history = match history_of {
            Some(slot) => &self.store.rec(slot).days[..],
            None => &self.work[..],
        };
        super::report::contribution(&self.s, history, last, &mut self.contrib);
        self.timeline.apply(&self.contrib, sign);
    }

    /// Profiles of the customers whose warning is open (medium or high), as of the
    /// watermark like [`Processor::profile`]: the console's inbox. Facts are computed
    /// only for those customers; the others cost a glance at their record.
    pub fn open_warning_profiles(&self) -> Vec<super::output::Profile> {
        self.store
            .iter()
            .filter(|(_, r)| r.level > 0)
            .map(|(slot, r)| {
                let now = self.watermark.map_or(r.clock, |w| w.max(r.clock));
                self.profile_at(slot, now)
            })
            .collect()
    }

    /// A customer's active days within the retained history, ascending: (day, that
    /// day's counters). The console charts orders and visits from it.
    pub fn day_history(&self, customer_id: &str) -> Option<Vec<(Day, days::Counts)>> {
        let slot = self.store.get(customer_id)?;
        Some(
            days::iter(&self.store.rec(slot).days)
                .map(|e| (e.day, e.counts))
                .collect(),
        )
    }
}
