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

use base64::Engine;
use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64;

use super::analytics::{CampaignBook, CampaignSums, Keys, Population, Standing};
use super::days;
use super::event::{decode, CampaignAction, Event, EventKind, Payload, RejectReason};
use super::facts::{DayCounts, Facts};
use super::output::{
    schema, stable_id, ChurnWarning, ConditionValue, DeadLetter, FactsOut, Output, Profile, Reason,
    SourceRef, Text, TierChanged, Tombstone, WarningCleared, WarningState, WindowOut,
};
use super::settings::{Level, Settings};
use super::store::{
    label, pack, unpack, Interner, Record, Store, DIRTY, NO_DAY, NO_TIER, SKETCHED,
};
use super::time::{day_of, day_start, format_rfc3339, Day, Ts};
use super::timers::Timers;

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

/// Counters for metrics. The core only counts; the metrics adapter exports.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Valid events by [`EventKind::index`] (duplicates included).
    pub consumed: [u64; 9],
    /// Rejections by [`RejectReason::index`].
    pub rejected: [u64; 14],
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Re-consumed events skipped by offset.
    pub already_applied: u64,
    /// Events older than the watermark.
    pub late: u64,
    /// Events older than the retained history (counted in lifetime totals only).
    pub beyond_retention: u64,
    /// Outputs by [`OutputKind`].
    pub outputs: [u64; 6],
    /// Tier transitions: `from * tiers + to`, with `from = tiers` for "no tier yet".
    pub transitions: Vec<u64>,
    /// Warnings raised by level.
    pub warnings_raised: [u64; 3],
    /// Warnings cleared.
    pub warnings_cleared: u64,
    /// Deadlines fired.
    pub timers_fired: u64,
}

impl Stats {
    /// Adds `o`'s counts to these (totals over partitions, including ones given up).
    pub fn add(&mut self, o: &Stats) {
        fn add_all(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        add_all(&mut self.consumed, &o.consumed);
        add_all(&mut self.rejected, &o.rejected);
        add_all(&mut self.outputs, &o.outputs);
        add_all(&mut self.warnings_raised, &o.warnings_raised);
        if self.transitions.len() < o.transitions.len() {
            self.transitions.resize(o.transitions.len(), 0);
        }
        add_all(&mut self.transitions, &o.transitions);
        self.duplicates += o.duplicates;
        self.already_applied += o.already_applied;
        self.late += o.late;
        self.beyond_retention += o.beyond_retention;
        self.warnings_cleared += o.warnings_cleared;
        self.timers_fired += o.timers_fired;
    }
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
}

/// The per-partition processor.
pub struct Processor {
    s: Arc<Settings>,
    store: Store,
    labels: Interner,
    timers: Timers,
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
    (spend, a.visits.saturating_add(a.conversions))
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
        Processor {
            labels: Interner::new(settings.limits.max_distinct_labels),
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
            pop: analytics.map(|a| Population::new(a.relative_accuracy)),
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
        }
    }

    /// Estimated resident bytes of customer state.
    pub fn state_bytes(&self) -> usize {
        self.store.state_bytes() + self.timers.bytes()
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
                self.reject(bytes, src, ctx, r.reason, r.detail, out);
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

    /// Dead-letters a message the adapter did not read whole because it is larger than
    /// `limits.max_message_bytes`: `prefix` is what was read, `total_len` its real size.
    pub fn reject_too_large(
        &mut self,
        prefix: &[u8],
        total_len: usize,
        src: Source<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) {
        let detail = format!(
            "message is {total_len} bytes; the limit (limits.max_message_bytes) is {}",
            self.s.limits.max_message_bytes
        );
        self.reject_sized(
            prefix,
            total_len,
            src,
            ctx,
            RejectReason::TooLarge,
            detail,
            out,
        );
    }

    fn reject(
        &mut self,
        bytes: &[u8],
        src: Source<'_>,
        ctx: &Ctx,
        reason: RejectReason,
        detail: String,
        out: &mut Vec<Output>,
    ) {
        self.reject_sized(bytes, bytes.len(), src, ctx, reason, detail, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn reject_sized(
        &mut self,
        bytes: &[u8],
        total_len: usize,
        src: Source<'_>,
        ctx: &Ctx,
        reason: RejectReason,
        detail: String,
        out: &mut Vec<Output>,
    ) {
        self.stats.rejected[reason.index()] += 1;
        let cut = bytes.len().min(self.s.limits.max_message_bytes);
        let dl = DeadLetter {
            schema: schema::DEAD_LETTER,
            event_id: stable_id(&[
                "dead_letter",
                src.topic,
                &src.partition.to_string(),
                &src.offset.to_string(),
            ]),
            reason: reason.code(),
            detail,
            original: base64::engine::general_purpose::STANDARD.encode(&bytes[..cut]),
            original_bytes: total_len,
            truncated: cut < total_len,
            source: src.to_ref(),
            emitted_at: format_rfc3339(ctx.emitted_at.or(self.max_ts).unwrap_or(0)),
        };
        self.emit(out, Output::DeadLetter(Box::new(dl)));
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
                        RejectReason::AbnormalFrequency,
                        detail,
                        out,
                    );
                    return Outcome::Rejected(RejectReason::AbnormalFrequency);
                }
            }
        }
        self.stats.consumed[kind.index()] += 1;
        if late {
            self.stats.late += 1;
        }
        // Deadlines of this customer that fall before the event happen first, exactly as
        // they would have if the watermark had passed them before the event arrived.
        self.catch_up(slot, ev_day, ctx, out);
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

    /// New stream time: move the watermark and fire what is due.
    fn observe(&mut self, ts: Ts, ctx: &Ctx, out: &mut Vec<Output>) {
        let max = self.max_ts.map_or(ts, |m| m.max(ts));
        self.max_ts = Some(max);
        let wm = max.saturating_sub(self.s.allowed_lateness_ms);
        if self.watermark.is_none_or(|w| wm > w) {
            self.watermark = Some(wm);
            self.fire_due(ctx, out);
        }
    }

    fn fire_due(&mut self, ctx: &Ctx, out: &mut Vec<Output>) {
        let Some(wm) = self.watermark else { return };
        let today = day_of(wm);
        // Firing may schedule new deadlines that are also due; they land in later days'
        // entries, which the loop reaches in turn.
        while let Some((day, slots)) = self.timers.pop_due(today) {
            // Superseded deadlines are skipped; the rest fire in customer-id order, so the
            // output order does not depend on slot numbers (which differ after a restore).
            // Each record is read once to build a sort key (its id's first 8 bytes, big
            // endian, so integer order is byte order): comparing ids in the records
            // themselves missed the cache twice per comparison (~7 % of replay).
            let store = &self.store;
            let mut keyed = std::mem::take(&mut self.due);
            keyed.clear();
            keyed.extend(slots.iter().filter_map(|&slot| {
                let rec = store.rec(slot);
                (store.is_live(slot) && unpack(rec.timer_day) == day).then(|| {
                    let id = rec.id.as_bytes();
                    let mut k = [0u8; 8];
                    let n = id.len().min(8);
                    k[..n].copy_from_slice(&id[..n]);
                    (u64::from_be_bytes(k), slot)
                })
            }));
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| store.rec(a.1).id.cmp(&store.rec(b.1).id))
            });
            keyed.dedup_by_key(|k| k.1);
            for &(_, slot) in &keyed {
                self.work.clear();
                self.work.extend_from_slice(&self.store.rec(slot).days);
                self.fire(slot, day, ctx, out);
                self.store_days(slot);
            }
            self.due = keyed;
        }
    }

    fn catch_up(&mut self, slot: u32, upto: Day, ctx: &Ctx, out: &mut Vec<Output>) {
        loop {
            let td = unpack(self.store.rec(slot).timer_day);
            if td == NO_DAY || td > upto {
                return;
            }
            self.fire(slot, td, ctx, out);
        }
    }

    /// Evaluates a customer at the start of `day` (history already in `self.work`).
    fn fire(&mut self, slot: u32, day: Day, ctx: &Ctx, out: &mut Vec<Output>) {
        self.stats.timers_fired += 1;
        let rec = self.store.rec_mut(slot);
        rec.clock = rec.clock.max(day_start(day));
        let today = day_of(rec.clock);
        self.prune(today);
        let before = self.static_of(slot);
        self.evaluate(slot, Trigger::Time { day }, ctx, out);
        let after = self.static_of(slot);
        if after != before {
            self.live.apply_static(&before, -1);
            self.live.apply_static(&after, 1);
        }
    }

    fn keep_from(&self, today: Day) -> Day {
        today - self.s.retention_days as i32 + 1
    }

    fn prune(&mut self, today: Day) {
        if days::prune(&self.work, self.keep_from(today), &mut self.scratch) {
            std::mem::swap(&mut self.work, &mut self.scratch);
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

    /// The campaign figures' part of an event: touches, conversions and cost count for
    /// their campaign (which becomes the customer's latest), satisfaction answers for the
    /// customer's latest campaign.
    fn count_campaign(&mut self, slot: u32, ev: &Event<'_>) {
        let Some(book) = self.book.as_mut() else {
            return;
        };
        let rec = self.store.rec_mut(slot);
        match &ev.payload {
            Payload::Campaign {
                campaign_id,
                action,
                cost_cents,
            } => {
                let c = book.slot(campaign_id);
                book.record(c, *action == CampaignAction::Converted, *cost_cents);
                rec.campaign = c;
            }
            Payload::Survey {
                satisfaction_tenths: Some(sat),
                ..
            } if rec.campaign != 0 => book.satisfaction(rec.campaign, *sat),
            _ => {}
        }
    }

    fn mutate(&mut self, slot: u32, ev: &Event<'_>, fp: u32) {
        let ev_day = day_of(ev.ts);
        // Labels first: the interner and the record are separate borrows.
        let mut tag_keys: [Option<u32>; 2] = [None, None];
        let mut profile: [Option<u32>; 4] = [None; 4];
        match &ev.payload {
            Payload::Order {
                channel, category, ..
            } => {
                tag_keys[0] = channel.as_deref().map(|c| self.labels.intern(c) << 1);
                tag_keys[1] = category
                    .as_deref()
                    .map(|c| (self.labels.intern(c) << 1) | 1);
            }
            Payload::Visit { channel } => {
                tag_keys[0] = channel.as_deref().map(|c| self.labels.intern(c) << 1);
            }
            Payload::Profile {
                account_manager,
                industry,
                region,
                segment,
            } => {
                for (i, v) in [account_manager, industry, region, segment]
                    .into_iter()
                    .enumerate()
                {
                    profile[i] = v.as_deref().map(|s| self.labels.intern(s));
                }
            }
            _ => {}
        }
        self.count_campaign(slot, ev);
        let rec = self.store.rec_mut(slot);
        rec.clock = rec.clock.max(ev.ts);
        let today = day_of(rec.clock);
        let first_seen = pack(unpack(rec.first_seen_day).min(ev_day));
        if first_seen != rec.first_seen_day && rec.flags & SKETCHED != 0 {
            // An earlier event arrived late: leave the sketches; `evaluate` re-adds.
            if let Some(pop) = self.pop.as_mut() {
                pop.remove(sketch_keys(rec));
            }
            rec.flags &= !SKETCHED;
        }
        rec.first_seen_day = first_seen;
        let keep_from = today - self.s.retention_days as i32 + 1;
        // Was `ev_day` already a purchase day? Known exactly inside the retained history.
        let mut had_orders: Option<bool> = None;
        let payload = &ev.payload;
        let id_cap = self.s.limits.max_ids_per_customer_day;
        let retained = days::update(&self.work, keep_from, ev_day, &mut self.scratch, |d| {
            had_orders = Some(d.counts.orders > 0);
            let c = &mut d.counts;
            match payload {
                Payload::Order { amount_cents, .. } => {
                    c.orders = c.orders.saturating_add(1);
                    c.amount = c.amount.saturating_add(*amount_cents);
                }
                Payload::Refund { amount_cents } => {
                    c.amount = c.amount.saturating_sub(*amount_cents)
                }
                Payload::Visit { .. } => c.visits = c.visits.saturating_add(1),
                Payload::Complaint => c.complaints = c.complaints.saturating_add(1),
                Payload::Survey {
                    satisfaction_tenths: Some(sat),
                    ..
                } => {
                    c.surveys = c.surveys.saturating_add(1);
                    c.sat_tenths = c.sat_tenths.saturating_add(*sat);
                }
                Payload::Campaign { action, .. } => match action {
                    CampaignAction::Touched => c.touches = c.touches.saturating_add(1),
                    CampaignAction::Converted => c.conversions = c.conversions.saturating_add(1),
                },
                _ => {}
            }
            for k in tag_keys.into_iter().flatten() {
                d.tag(k);
            }
            d.remember(fp, id_cap);
        });
        std::mem::swap(&mut self.work, &mut self.scratch);
        if !retained {
            self.stats.beyond_retention += 1;
        }
        match payload {
            Payload::Order { amount_cents, .. } => {
                let new_day = match had_orders {
                    Some(had) => !had,
                    None => {
                        ev_day != unpack(rec.first_order_day)
                            && ev_day != unpack(rec.last_order_day)
                    }
                };
                rec.lifetime_orders = rec.lifetime_orders.saturating_add(1);
                rec.lifetime_value = rec.lifetime_value.saturating_add(*amount_cents);
                if new_day {
                    rec.purchase_days = rec.purchase_days.saturating_add(1);
                }
                let first = unpack(rec.first_order_day);
                rec.first_order_day = pack(if first == NO_DAY {
                    ev_day
                } else {
                    first.min(ev_day)
                });
                rec.last_order_day = pack(unpack(rec.last_order_day).max(ev_day));
                let minute = (ev.ts / 60_000) as i32;
                if minute > rec.burst_minute {
                    rec.burst_minute = minute;
                    rec.burst_count = 1;
                } else if minute == rec.burst_minute {
                    rec.burst_count = rec.burst_count.saturating_add(1);
                }
            }
            Payload::Refund { amount_cents } => {
                rec.lifetime_value = rec.lifetime_value.saturating_sub(*amount_cents);
            }
            Payload::Complaint => rec.open_complaints = rec.open_complaints.saturating_add(1),
            Payload::ComplaintResolved => {
                rec.open_complaints = rec.open_complaints.saturating_sub(1)
            }
            Payload::Survey { nps: Some(n), .. } => rec.last_nps = *n,
            Payload::Profile { .. } => {
                for (i, v) in profile.iter().enumerate() {
                    if let Some(id) = v {
                        rec.labels[i] = *id as u16;
                    }
                }
            }
            _ => {}
        }
    }

    /// Evaluates rules at the customer's clock and emits transitions.
    fn evaluate(&mut self, slot: u32, trigger: Trigger<'_>, ctx: &Ctx, out: &mut Vec<Output>) {
        let s = Arc::clone(&self.s);
        let rec = self.store.rec(slot);
        let decoded: SmallVec<[DayCounts; 16]> = days::iter(&self.work)
            .map(|e| DayCounts {
                day: e.day,
                mask: e.mask,
                counts: e.counts,
            })
            .collect();
        let mut facts = Facts::compute_over(decoded.iter().copied(), rec, &s, rec.clock);
        let (tier, level) = outcome(&facts, &s);
        let old_tier = rec.tier;
        let old_level = Level::from_u8(rec.level);
        let deadline = next_change(&decoded, rec, &s, &facts, (tier, level), self.lookahead);
        let tier_changed = tier as u8 != old_tier;
        let raised = level > old_level;
        let cleared = level == Level::Low && old_level > Level::Low;

        if tier_changed || raised || cleared {
            let (event_time, cause, source) = match &trigger {
                Trigger::Event {
                    event_id,
                    ts,
                    source,
                } => (*ts, event_id.to_string(), Some(source.to_ref())),
                Trigger::Time { day } => (day_start(*day), format!("t{day}"), None),
            };
            let trig = if source.is_some() { "event" } else { "time" };
            let emitted_at = self.emitted_at(ctx, event_time);
            let tags = facts.with_extras(&self.work, &s, &self.labels);
            let get = |m| facts.get(m, &s);
            let facts_out = Arc::new(facts_out(&facts, tags, rec, &s, &self.labels));
            let cid = Text::from(rec.id.as_str());
            let tier_name = Text::from(s.tiers[tier].name.as_str());
            let owner = self
                .labels
                .name(rec.labels[label::ACCOUNT_MANAGER] as u32)
                .map(Text::from);
            let mut outs = Vec::new();
            if tier_changed {
                let from = (old_tier != NO_TIER)
                    .then(|| Text::from(s.tiers[old_tier as usize].name.as_str()));
                let t = &s.tiers[tier];
                outs.push(Output::TierChanged(Box::new(TierChanged {
                    schema: schema::TIER_CHANGED,
                    event_id: stable_id(&[
                        "tier_changed",
                        &cid,
                        &cause,
                        from.as_deref().unwrap_or(""),
                        &t.name,
                    ]),
                    customer_id: cid.clone(),
                    from,
                    to: Text::from(t.name.as_str()),
                    rule: if t.rule.is_some() {
                        Text::from(t.name.as_str())
                    } else {
                        "fallback".into()
                    },
                    rule_text: t.rule_text.clone(),
                    action: t.action.clone(),
                    trigger: trig,
                    event_time: format_rfc3339(event_time),
                    emitted_at: emitted_at.clone(),
                    source: source.clone(),
                    facts: facts_out.clone(),
                })));
            }
            if raised {
                outs.push(Output::Warning(Box::new(ChurnWarning {
                    schema: schema::CHURN_WARNING,
                    event_id: stable_id(&["churn_warning", &cid, &cause, level.name()]),
                    customer_id: cid.clone(),
                    level: level.name(),
                    previous_level: old_level.name(),
                    reasons: reasons(&s, &get),
                    risk_index: facts_out.churn_risk_index,
                    p_alive: facts_out.p_alive,
                    expected_purchases: facts_out.expected_purchases,
                    owner: owner.clone(),
                    due: format_rfc3339(event_time.saturating_add(s.sla_ms[level as usize])),
                    action: s.level_action[level as usize].clone(),
                    tier: tier_name.clone(),
                    trigger: trig,
                    event_time: format_rfc3339(event_time),
                    emitted_at: emitted_at.clone(),
                    source: source.clone(),
                    facts: facts_out.clone(),
                })));
            } else if cleared {
                outs.push(Output::Cleared(Box::new(WarningCleared {
                    schema: schema::CHURN_WARNING_CLEARED,
                    event_id: stable_id(&["churn_warning_cleared", &cid, &cause]),
                    customer_id: cid,
                    previous_level: old_level.name(),
                    owner,
                    tier: tier_name,
                    trigger: trig,
                    event_time: format_rfc3339(event_time),
                    emitted_at,
                    source,
                    facts: facts_out,
                })));
            }
            for o in outs {
                self.emit(out, o);
            }
        }

        let ntiers = s.tiers.len();
        if tier_changed {
            let from = if old_tier == NO_TIER {
                ntiers
            } else {
                old_tier as usize
            };
            self.stats.transitions[from * ntiers + tier] += 1;
            if old_tier != NO_TIER {
                self.tier_counts[old_tier as usize] -= 1;
            }
            self.tier_counts[tier] += 1;
        }
        if level != old_level {
            self.level_counts[old_level as usize] -= 1;
            self.level_counts[level as usize] += 1;
            if raised {
                self.stats.warnings_raised[level as usize] += 1;
            } else if cleared {
                self.stats.warnings_cleared += 1;
            }
        }
        let (spend, activity) = sketch_values(&facts, &s);
        let rec = self.store.rec_mut(slot);
        rec.tier = tier as u8;
        rec.level = level as u8;
        if let Some(pop) = self.pop.as_mut() {
            sync_sketch(pop, rec, spend, activity);
        }
        let new_deadline = unpack(pack(deadline.unwrap_or(NO_DAY)));
        if new_deadline != unpack(rec.timer_day) {
            rec.timer_day = pack(new_deadline);
            if new_deadline != NO_DAY {
                self.timers.push(new_deadline, slot);
            }
        }
    }

    /// The current profile of a customer, if known, with its facts as of the watermark
    /// (or the customer's clock, if later): what a look-up should show now. Its tier and
    /// warning are the record's, which hold until the customer's next deadline, and every
    /// deadline up to the watermark has fired. The profile outputs instead are as of the
    /// customer's clock, so that they are the same however the stream is cut into commit
    /// intervals.
    pub fn profile(&mut self, customer_id: &str) -> Option<Profile> {
        let slot = self.store.get(customer_id)?;
        let clock = self.store.rec(slot).clock;
        let now = self.watermark.map_or(clock, |w| w.max(clock));
        Some(self.profile_at(slot, now))
    }

    /// The input offset the customer's state reflects (−1 if none).
    pub fn last_offset(&self, customer_id: &str) -> Option<i64> {
        self.store
            .get(customer_id)
            .map(|s| self.store.rec(s).last_offset)
    }

    fn profile_of(&self, slot: u32) -> Profile {
        self.profile_at(slot, self.store.rec(slot).clock)
    }

    fn profile_at(&self, slot: u32, now: Ts) -> Profile {
        let s = Arc::clone(&self.s);
        let rec = self.store.rec(slot);
        let mut facts = Facts::compute(&rec.days, rec, &s, now);
        let tags = facts.with_extras(&rec.days, &s, &self.labels);
        let get = |m| facts.get(m, &s);
        let tier = if rec.tier == NO_TIER {
            s.fallback_tier()
        } else {
            rec.tier as usize
        };
        let level = Level::from_u8(rec.level);
        Profile {
            schema: schema::PROFILE,
            customer_id: Text::from(rec.id.as_str()),
            tier: Text::from(s.tiers[tier].name.as_str()),
            action: s.tiers[tier].action.clone(),
            warning: WarningState {
                level: level.name(),
                reasons: if level > Level::Low {
                    reasons(&s, &get)
                } else {
                    Vec::new()
                },
            },
            facts: facts_out(&facts, tags, rec, &s, &self.labels),
        }
    }

    /// The portable snapshot of a customer's state (the changelog record), or `None` if
    /// the customer is unknown (erased: the changelog gets a tombstone).
    pub fn snapshot(&self, customer_id: &str) -> Option<Vec<u8>> {
        let slot = self.store.get(customer_id)?;
        Some(self.snapshot_of(slot))
    }

    fn snapshot_of(&self, slot: u32) -> Vec<u8> {
        let rec = self.store.rec(slot);
        let tier = (rec.tier != NO_TIER).then(|| self.s.tiers[rec.tier as usize].name.as_str());
        let mut out = Vec::with_capacity(64 + rec.days.len());
        let campaign = self.book.as_ref().and_then(|b| b.name(rec.campaign));
        super::snapshot::encode(rec, tier, campaign, &self.labels, &mut out);
        out
    }

    /// Restores a customer from a snapshot, replacing any state held for it. The restored
    /// customer is not marked changed: its state is already durable.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), super::snapshot::SnapshotError> {
        let mut d = super::snapshot::decode(bytes)?;
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
        rec.tier = self
            .s
            .tiers
            .iter()
            .position(|t| t.name == d.tier)
            .map_or(NO_TIER, |i| i as u8);
        if let Some(old) = self.store.get(&rec.id) {
            self.remove_slot(old);
        }
        let (slot, _) = self.store.get_or_insert(&rec.id.clone(), rec.clock);
        if rec.tier != NO_TIER {
            self.tier_counts[rec.tier as usize] += 1;
        }
        self.level_counts[rec.level as usize] += 1;
        let timer = unpack(rec.timer_day);
        rec.flags = super::store::LIVE;
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
        Ok(())
    }

    /// Restores the partition's stream time and watermark (from its checkpoint).
    pub fn restore_time(&mut self, stream_time: Option<Ts>, watermark: Option<Ts>) {
        self.max_ts = stream_time;
        self.watermark = watermark;
    }

    /// Estimated distribution of P(alive) as of `now` over customers who ordered:
    /// `buckets[i]` is the number with P(alive) in [i/10, (i+1)/10) (1.0 counts in the
    /// last). Computed from the record alone (no history scan) on an even stride sample
    /// of at most `max_samples` customers, scaled to all, so a scrape stays cheap at
    /// millions of customers. `None` when churn probability is disabled.
    pub fn p_alive_histogram(&self, now: Ts, max_samples: usize) -> Option<[f64; 10]> {
        let p = self.s.bgnbd?;
        let today = day_of(now);
        let n = self.store.len();
        let stride = n.div_ceil(max_samples.max(1)).max(1);
        let mut buckets = [0f64; 10];
        let mut sampled = 0usize;
        for (i, (_, rec)) in self.store.iter().enumerate() {
            if i % stride != 0 {
                continue;
            }
            sampled += 1;
            let (f, l) = (unpack(rec.first_order_day), unpack(rec.last_order_day));
            if f == NO_DAY || l == NO_DAY {
                continue;
            }
            let x = rec.purchase_days.saturating_sub(1) as f64;
            let t_x = (l - f) as f64 / self.s.unit_days;
            let big_t = ((today - f).max(l - f)) as f64 / self.s.unit_days;
            let pa = super::bgnbd::p_alive(&p, x, t_x, big_t);
            buckets[((pa * 10.0) as usize).min(9)] += 1.0;
        }
        if sampled > 0 {
            let scale = n as f64 / sampled as f64;
            for b in &mut buckets {
                *b *= scale;
            }
        }
        Some(buckets)
    }

    /// The sums of the population report (see [`super::report`]) as of `as_of`.
    pub fn report(&self, as_of: Ts) -> super::report::ReportSums {
        self.report_among(as_of, None)
    }

    /// Like [`Processor::report`], ranking customers among `among` (several partitions'
    /// sketches merged) instead of this partition's own.
    ///
    /// No pass over the customers: the sums and the timeline are kept live, ABC classes
    /// and core customers come from the spend sketch, and value tiers (which need each
    /// customer's three ranks together) are counted on an even sample of at most
    /// [`VALUE_TIER_SAMPLE`] customers, scaled to all (exact below that size).
    pub fn report_among(&self, as_of: Ts, among: Option<&Population>) -> super::report::ReportSums {
        let today = day_of(as_of);
        let mut r = self.live.clone();
        r.as_of_day = today;
        r.set_timed(self.timeline.at(today));
        for (w, n) in r.warnings.iter_mut().zip(self.level_counts) {
            *w = n.max(0) as u64;
        }
        r.transitions.clone_from(&self.stats.transitions);
        r.span_days = (today - self.first_day.unwrap_or(today) + 1).max(1) as u64;
        if let Some(own) = &self.pop {
            let pop = among.unwrap_or(own);
            r.analytics = true;
            let (abc, core) = own.classes(pop);
            r.abc = abc;
            r.core = core;
            r.spend_365_cents = own.spend.total_cents();
            let n = self.store.len();
            let stride = n.div_ceil(VALUE_TIER_SAMPLE).max(1);
            let mut tiers = [0u64; 4];
            let mut sampled = 0u64;
            for (i, (_, rec)) in self.store.iter().enumerate() {
                if i % stride != 0 {
                    continue;
                }
                sampled += 1;
                let f = Facts::compute(&rec.days, rec, &self.s, rec.clock);
                let keys = if rec.flags & SKETCHED != 0 {
                    sketch_keys(rec)
                } else {
                    let (spend, activity) = sketch_values(&f, &self.s);
                    pop.keys(spend, activity, rec.first_seen_day)
                };
                let t = match pop.standing(keys, f.churn_risk_index(&self.s)).value_tier {
                    "A" => 0,
                    "B" => 1,
                    "C" => 2,
                    _ => 3,
                };
                tiers[t] += 1;
            }
            if sampled > 0 {
                for (out, c) in r.value_tiers.iter_mut().zip(tiers) {
                    *out = (c as f64 * n as f64 / sampled as f64).round() as u64;
                }
            }
            r.campaigns = self.campaign_lines();
        }
        r
    }

    /// The report's sums without analytics from one pass over every customer's record and
    /// history: the reference the live sums are tested against (such a pass takes ~0.36 s
    /// per million customers; the live report 25 ms).
    #[doc(hidden)]
    pub fn report_by_scan(&self, as_of: Ts) -> super::report::ReportSums {
        let today = day_of(as_of);
        let mut r = super::report::ReportSums::new(&self.s, today);
        let fallback = self.s.fallback_tier();
        for (_, rec) in self.store.iter() {
            let tier = if rec.tier == NO_TIER {
                fallback
            } else {
                rec.tier as usize
            };
            let last_order = unpack(rec.last_order_day);
            r.add_customer(
                &self.s,
                tier,
                rec.lifetime_orders,
                rec.lifetime_value,
                (rec.last_nps != super::store::NO_NPS).then_some(rec.last_nps),
                rec.level,
                (last_order != NO_DAY).then_some(last_order),
                &rec.days,
            );
        }
        r.transitions.clone_from(&self.stats.transitions);
        r.span_days = (today - self.first_day.unwrap_or(today) + 1).max(1) as u64;
        r
    }

    /// Where a customer stands in this partition's population (value score, value tier,
    /// ABC class, core customer), as of its latest evaluation. `None` for an unknown
    /// customer or with analytics disabled.
    /// `among` ranks in other sketches (several partitions merged), else in this one's.
    pub fn standing(&self, customer_id: &str, among: Option<&Population>) -> Option<Standing> {
        let own = self.pop.as_ref()?;
        let pop = among.unwrap_or(own);
        let slot = self.store.get(customer_id)?;
        let rec = self.store.rec(slot);
        let f = Facts::compute(&rec.days, rec, &self.s, rec.clock);
        let keys = if rec.flags & SKETCHED != 0 {
            sketch_keys(rec)
        } else {
            let (spend, activity) = sketch_values(&f, &self.s);
            pop.keys(spend, activity, rec.first_seen_day)
        };
        Some(pop.standing(keys, f.churn_risk_index(&self.s)))
    }

    /// The population sketches (analytics enabled).
    pub fn population(&self) -> Option<&Population> {
        self.pop.as_ref()
    }

    /// The campaign figures, tracked campaigns in first-seen order, then `other`.
    pub fn campaign_lines(&self) -> Vec<CampaignSums> {
        self.book.as_ref().map(|b| b.lines()).unwrap_or_default()
    }

    /// Restores the campaign figures persisted with a checkpoint whose next offset is
    /// `next_offset`. Customers' state may be newer than the checkpoint (their changelog
    /// records of a crashed interval were written): events from `next_offset` on that are
    /// skipped as already applied still count here, so the figures lose nothing.
    pub fn restore_campaigns(&mut self, lines: &[CampaignSums], next_offset: i64) {
        if let Some(b) = self.book.as_mut() {
            b.restore(lines);
        }
        self.campaigns_from = next_offset;
    }

    /// Ids of all customers held.
    pub fn customer_ids(&self) -> Vec<String> {
        self.store.iter().map(|(_, r)| r.id.to_string()).collect()
    }

    /// Profiles of customers changed since the last call (for the compacted topic).
    pub fn drain_dirty(&mut self, out: &mut Vec<Output>) {
        self.drain_changes(out, |_, _| {});
    }

    /// Profiles and snapshots of customers changed since the last call: each changed
    /// customer's profile goes to `out`, and `changed(customer_id, snapshot)` receives its
    /// changelog record. Erased customers are not included (their tombstone output says so).
    pub fn drain_changes(&mut self, out: &mut Vec<Output>, mut changed: impl FnMut(&str, Vec<u8>)) {
        let dirty = std::mem::take(&mut self.dirty);
        for slot in dirty {
            if !self.store.is_live(slot) || self.store.rec(slot).flags & DIRTY == 0 {
                continue;
            }
            self.store.rec_mut(slot).flags &= !DIRTY;
            let p = self.profile_of(slot);
            self.emit(out, Output::Profile(Box::new(p)));
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

    fn remove_slot(&mut self, slot: u32) {
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
        self.store.remove(slot);
    }

    /// Every customer's profile, sorted by customer id.
    pub fn profiles_sorted(&mut self) -> Vec<Profile> {
        let mut slots: Vec<(String, u32)> = self
            .store
            .iter()
            .map(|(s, r)| (r.id.to_string(), s))
            .collect();
        slots.sort();
        slots.into_iter().map(|(_, s)| self.profile_of(s)).collect()
    }

    /// Profiles of the customers whose warning is open (medium or high), as of the
    /// watermark like [`Processor::profile`]: the console's inbox. Facts are computed
    /// only for those customers; the others cost a glance at their record.
    pub fn open_warning_profiles(&self) -> Vec<Profile> {
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

/// The tier and warning level the rules give for `facts`.
fn outcome(facts: &Facts, s: &Settings) -> (usize, Level) {
    let get = |m| facts.get(m, s);
    let tier = s
        .tiers
        .iter()
        .position(|t| t.rule.as_ref().is_none_or(|r| r.matches(&get)))
        .unwrap_or(s.fallback_tier());
    let mut level = Level::Low;
    for w in &s.warnings {
        if w.level > level && w.rule.matches(&get) {
            level = w.level;
        }
    }
    (tier, level)
}

/// Candidate days one look-ahead examines before it settles for a deadline that only
/// continues the search (bounds the work of rules that change daily).
const LOOKAHEAD: usize = 16;

/// The first day after `facts.today` on which time alone changes the customer's tier or
/// warning level (`now` = that outcome), if no event comes first.
///
/// Why: a deadline for every day on which some fact a rule reads changes (a window
/// expiry, a day-counter threshold) fired ~2 times per event on the generated mix, and
/// most of those fires changed nothing; each one missed the caches on the record and its
/// history at 1 M customers. The candidate days are the same ones those fires visited
/// (each candidate's facts give the next), evaluated here while the history is in cache,
/// so the outputs are the ones the per-fact deadlines produced. Candidates are bounded by
/// [`LOOKAHEAD`]; past it the deadline is the next candidate, whose fire searches on.
fn next_change(
    history: &[DayCounts],
    rec: &Record,
    s: &Settings,
    facts: &Facts,
    now: (usize, Level),
    lookahead: usize,
) -> Option<Day> {
    let mut day = facts.next_deadline(s)?;
    for _ in 0..lookahead {
        let f = Facts::compute_over(history.iter().copied(), rec, s, day_start(day));
        if outcome(&f, s) != now {
            return Some(day);
        }
        day = f.next_deadline(s)?;
    }
    Some(day)
}

fn reasons(s: &Settings, get: &impl Fn(super::rules::Metric) -> Option<f64>) -> Vec<Reason> {
    s.warnings
        .iter()
        .filter(|w| w.rule.matches(get))
        .map(|w| Reason {
            rule: Text::from(w.rule.name.as_str()),
            level: w.level.name(),
            conditions: w
                .rule
                .conditions()
                .map(|c| ConditionValue {
                    condition: Text::from(c.text.as_str()),
                    value: get(c.metric),
                })
                .collect(),
        })
        .collect()
}

fn date(day: Day) -> Text {
    super::time::format_date(day)
}

fn facts_out(
    f: &Facts,
    (channel, category): (u32, u32),
    rec: &super::store::Record,
    s: &Settings,
    labels: &Interner,
) -> FactsOut {
    use super::rules::{DayAnchor, Metric};
    let name = |id: u32| labels.name(id).map(Text::from);
    let since = |a| f.anchor(a).map(|d| (f.today - d).max(0) as i64);
    let tenure = since(DayAnchor::FirstSeen).unwrap_or(0);
    // Once each: CLV is their product, and expected purchases sums a series.
    let expected_purchases = f.expected_purchases(s);
    let expected_order_value = f.expected_order_value(s);
    FactsOut {
        as_of: format_rfc3339(f.now),
        recency_days: since(DayAnchor::LastOrder),
        days_without_order: since(DayAnchor::LastOrderOrFirstSeen).unwrap_or(0),
        tenure_days: tenure,
        lifecycle: if tenure < s.new_customer_days as i64 {
            "new"
        } else {
            "existing"
        },
        first_seen: date(f.first_seen_day),
        first_order: f.first_order_day.map(date),
        last_order: f.last_order_day.map(date),
        lifetime_orders: f.lifetime_orders,
        lifetime_value: f.lifetime_value as f64 / 100.0,
        purchase_days: f.purchase_days,
        open_complaints: f.open_complaints,
        last_nps: f.last_nps,
        windows: s
            .windows
            .iter()
            .enumerate()
            .map(|(i, &days)| {
                let w = f.window(s, i);
                WindowOut {
                    days,
                    orders: w.orders,
                    monetary: w.amount as f64 / 100.0,
                    aov: f.get(Metric::Window(super::rules::WindowMetric::Aov, i as u8), s),
                    visits: w.visits,
                    complaints: w.complaints,
                    surveys: w.surveys,
                    satisfaction: f.get(
                        Metric::Window(super::rules::WindowMetric::Satisfaction, i as u8),
                        s,
                    ),
                    campaign_touches: w.touches,
                    campaign_conversions: w.conversions,
                }
            })
            .collect(),
        activity_score: f.activity_score(s),
        churn_risk_index: f.churn_risk_index(s),
        visit_drop_pct: f.visit_drop_pct(s),
        visits_baseline: f.visits_baseline(s),
        p_alive: f.p_alive,
        expected_purchases,
        expected_order_value,
        clv: super::facts::clv_of(expected_purchases, expected_order_value),
        horizon_days: s.horizon_days,
        preferred_channel: name(channel),
        preferred_category: name(category),
        account_manager: name(rec.labels[label::ACCOUNT_MANAGER] as u32),
        industry: name(rec.labels[label::INDUSTRY] as u32),
        region: name(rec.labels[label::REGION] as u32),
        segment: name(rec.labels[label::SEGMENT] as u32),
    }
}

/// A decoded event re-encoded for a dead letter raised after decoding, when the caller
/// applied an already-decoded event and so the original bytes are not at hand.
fn serialize_for_dead_letter(ev: &Event<'_>) -> Vec<u8> {
    let amount = match ev.payload {
        Payload::Order { amount_cents, .. } => amount_cents as f64 / 100.0,
        _ => 0.0,
    };
    serde_json::to_vec(&serde_json::json!({
        "event_id": ev.event_id,
        "customer_id": ev.customer_id,
        "type": ev.kind().name(),
        "ts": format_rfc3339(ev.ts),
        "amount": amount,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::{CoreConfig, WarningRuleConfig};
    use crate::gen::{GenOptions, Generator};

    /// Replays a generated stream and returns every output's JSON, in order, and the
    /// number of deadlines that fired.
    fn replay(s: &Arc<Settings>, lookahead: usize, seed: u64) -> (Vec<u8>, u64) {
        let mut p = Processor::new(s.clone());
        p.lookahead = lookahead;
        let mut g = Generator::new(GenOptions {
            customers: 400,
            events: 20_000,
            seed,
            ..Default::default()
        });
        let (mut line, mut outs, mut json) = (Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0;
        while g.next_line(&mut line) {
            let src = Source {
                topic: "t",
                partition: 0,
                offset,
            };
            offset += 1;
            p.process(&line, src, &Ctx::default(), &mut outs);
        }
        let end = p.stream_time().unwrap_or(0) + 400 * 86_400_000;
        p.advance_to(end, &Ctx::default(), &mut outs);
        for o in outs.drain(..) {
            o.write_json(&mut json);
            json.push(b'\n');
        }
        (json, p.stats().timers_fired)
    }

    fn equivalent(s: Settings) {
        let s = Arc::new(s);
        for seed in [1, 2, 3] {
            let (searched, fired) = replay(&s, LOOKAHEAD, seed);
            let (per_fact, fired_per_fact) = replay(&s, 0, seed);
            assert!(searched.len() > 100_000, "the stream produces alerts");
            assert!(
                searched == per_fact,
                "seed {seed}: the searched deadlines change the outputs"
            );
            assert!(
                fired < fired_per_fact,
                "seed {seed}: {fired} vs {fired_per_fact} deadlines fired"
            );
        }
    }

    /// The outcome-deadline search gives byte-identical outputs to firing at every day a
    /// rule-visible fact changes, with fewer fires.
    #[test]
    fn searched_deadlines_give_the_per_fact_outputs() {
        equivalent(Settings::defaults());
    }

    /// The same with a continuously changing metric (P(alive)): the search then stops
    /// after [`LOOKAHEAD`] days and its deadline continues it.
    #[test]
    fn searched_deadlines_with_a_daily_rule() {
        let mut c = CoreConfig::defaults();
        c.warnings.rules.push(WarningRuleConfig {
            name: "fading".into(),
            level: "high".into(),
            all: vec!["p_alive < 0.5".into(), "lifetime_orders >= 2".into()],
            any: vec![],
        });
        let s = Settings::compile(&c).unwrap();
        assert!(s.daily);
        equivalent(s);
    }
}
