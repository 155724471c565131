//! Time in the processor: the watermark, firing due deadlines (in customer-id order),
//! catching a customer up before its next event, and the search for a customer's next
//! deadline — the first day on which time alone changes its tier or warning level.

use super::{Ctx, Processor, Trigger};
use crate::core::analytics::Population;
use crate::core::days;
use crate::core::facts::Running;
use crate::core::output::Output;
use crate::core::settings::{Level, Settings};
use crate::core::store::{unpack, Interner, NO_DAY};
use crate::core::subject::{outcome, Held};
use crate::core::time::{day_of, day_start, Day, Ts};

impl Processor {
    /// New stream time: move the watermark and fire what is due.
    pub(super) fn observe(&mut self, ts: Ts, ctx: &Ctx, out: &mut Vec<Output>) {
        let max = self.max_ts.map_or(ts, |m| m.max(ts));
        self.max_ts = Some(max);
        let wm = max.saturating_sub(self.s.allowed_lateness_ms);
        if self.watermark.is_none_or(|w| wm > w) {
            self.watermark = Some(wm);
            self.fire_due(ctx, out);
        }
    }

    pub(super) fn fire_due(&mut self, ctx: &Ctx, out: &mut Vec<Output>) {
        let Some(wm) = self.watermark else { return };
        let today = day_of(wm);
        // Day deadlines (at the start of their day) and overdue escalations (at their
        // due instant) fire in time order, the day first at a tie, so each customer's
        // deadlines come in the same order as `catch_up` fires them.
        loop {
            let day = self.timers.first_day().filter(|d| *d <= today);
            let esc = self.overdue.first().map(|e| e.0).filter(|t| *t <= wm);
            match (day, esc) {
                (None, None) => return,
                (Some(d), e) if e.is_none_or(|t| day_start(d) <= t) => {
                    self.fire_day(today, ctx, out)
                }
                _ => {
                    self.fire_overdue_at_first(wm, ctx, out);
                }
            }
        }
    }

    /// Fires the earliest day's deadlines (that day is at or before `today`).
    fn fire_day(&mut self, today: Day, ctx: &Ctx, out: &mut Vec<Output>) {
        // Firing may schedule new deadlines that are also due; they land in later days'
        // entries, which the loop of `fire_due` reaches in turn.
        if let Some((day, slots)) = self.timers.pop_due(today) {
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

    /// Fires the customer's deadlines that come before an event at `ts` (on day `upto`):
    /// day deadlines up to that day and an escalation due at or before `ts`, in time
    /// order (the history is in `self.work`).
    pub(super) fn catch_up(
        &mut self,
        slot: u32,
        upto: Day,
        ts: Ts,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) {
        loop {
            let td = unpack(self.store.rec(slot).timer_day);
            let day = (td != NO_DAY && td <= upto).then_some(td);
            let esc = self.escalation_due(slot).filter(|t| *t <= ts);
            match (day, esc) {
                (None, None) => return,
                (Some(d), e) if e.is_none_or(|t| day_start(d) <= t) => self.fire(slot, d, ctx, out),
                _ => self.escalate(slot, ctx, out),
            }
        }
    }

    /// Evaluates a customer at the start of `day` (history already in `self.work`).
    pub(super) fn fire(&mut self, slot: u32, day: Day, ctx: &Ctx, out: &mut Vec<Output>) {
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

    pub(super) fn keep_from(&self, today: Day) -> Day {
        today - self.s.retention_days as i32 + 1
    }

    pub(super) fn prune(&mut self, today: Day) {
        if days::prune(&self.work, self.keep_from(today), &mut self.scratch) {
            std::mem::swap(&mut self.work, &mut self.scratch);
        }
    }
}

/// Candidate days one look-ahead examines before it settles for a deadline that only
/// continues the search (bounds the work of rules that change daily).
pub(super) const LOOKAHEAD: usize = 16;

/// The first day after `running`'s day on which time alone changes the customer's tier
/// or warning level (`now` = that outcome), if no event comes first.
///
/// Why: a deadline for every day on which some fact a rule reads changes (a window
/// expiry, a day-counter threshold) fired ~2 times per event on the generated mix, and
/// most of those fires changed nothing; each one missed the caches on the record and its
/// history at 1 M customers. The candidate days are the same ones those fires visited
/// (each candidate's facts give the next), evaluated here while the history is in cache,
/// so the outputs are the ones the per-fact deadlines produced. Candidates are bounded by
/// [`LOOKAHEAD`]; past it the deadline is the next candidate, whose fire searches on.
///
/// `held` is what the customer holds after this evaluation (the tier `now` gave); label
/// conditions do not create deadlines (labels change only with events), but they take
/// part in each candidate's outcome.
///
/// The search moves one [`Running`] forward from candidate to candidate: each step takes
/// out the days that left a period since the previous one, instead of folding the whole
/// history per candidate.
pub(super) fn next_change(
    running: &mut Running<'_>,
    s: &Settings,
    now: (usize, Level),
    lookahead: usize,
    names: &Interner,
    held: Held,
    pop: Option<&Population>,
) -> Option<Day> {
    let mut day = running.facts().next_deadline(s)?;
    for _ in 0..lookahead {
        running.advance_to(day_start(day));
        let f = running.facts();
        if outcome(f, s, names, held, pop) != now {
            return Some(day);
        }
        day = f.next_deadline(s)?;
    }
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::processor::Source;
    use crate::core::settings::{CoreConfig, WarningRuleConfig};
    use crate::gen::{GenOptions, Generator};
    use std::sync::Arc;

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
            segments: Default::default(),
            sla: None,
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
