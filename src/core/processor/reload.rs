//! Changing a processor's rules while it holds customers: [`Processor::reconfigure`]
//! (apply: re-evaluate every customer under the new rules and emit the changes) and
//! [`Processor::rules_diff`] (the dry run: what applying would change, emitting nothing).
//!
//! Both start from [`Processor::rebuilt`]: the state rebuilt under the new rules from
//! every customer's changelog snapshot, exactly as a restart with the new rule file
//! restores it (tiers, warning rules and owners by name), so a reload and a restart
//! cannot disagree about what the state means. Then every customer is evaluated at the
//! watermark, in customer-id order, with the `rules` trigger.
//!
//! What a reload may change: tiers, warnings, SLAs, owners, scores, models, analytics,
//! limits. What it may not: the `[facts]` periods, because the state keeps day history
//! only as far back as the longest of them ([`check_reload`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Ctx, Processor, Trigger};
use crate::core::facts::Facts;
use crate::core::output::Output;
use crate::core::settings::{Level, Settings};
use crate::core::store::{DIRTY, NO_TIER, STANDING};
use crate::core::subject::{Held, Subject};
use crate::core::time::{day_of, day_start, format_rfc3339, Day, Ts};

/// Why a rule set cannot replace the running one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The `[facts]` periods differ: the state keeps day history for the old ones only.
    #[error(
        "the [facts] periods differ (running: {running:?} days, new: {new:?} days); the state \
         keeps each customer's day history only for the running periods, so facts over other \
         periods would be wrong. A reload may change tiers, warnings, SLAs, owners, scores and \
         models; keep [facts] as it is, or change it with a restart (facts over longer periods \
         are then short until that much history has come in again)"
    )]
    Periods {
        /// Period lengths (days) of the running rules.
        running: Vec<u16>,
        /// Period lengths (days) of the new rules.
        new: Vec<u16>,
    },
}

/// Whether `new` may replace `running` in a processor that holds state.
pub fn check_reload(running: &Settings, new: &Settings) -> Result<(), ReloadError> {
    if running.lengths != new.lengths || running.retention_days != new.retention_days {
        return Err(ReloadError::Periods {
            running: running.lengths.clone(),
            new: new.lengths.clone(),
        });
    }
    Ok(())
}

/// What applying new rules did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reloaded {
    /// Version of the rules replaced.
    pub from_version: String,
    /// Version now running.
    pub to_version: String,
    /// Customers re-evaluated.
    pub customers: u64,
    /// Customers whose tier or warning level changed.
    pub changed: u64,
}

/// Customers moving from one tier (or warning level) to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Tier or level before (`none`: no tier, or a tier the new rules do not have).
    pub from: String,
    /// Tier or level after.
    pub to: String,
    /// How many customers.
    pub customers: u64,
    /// Some of their ids, smallest first.
    pub sample: Vec<String>,
}

/// How often one rule matches, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDelta {
    /// `tier` or `warning`.
    pub kind: String,
    /// The rule's name (a tier's name for tier rules).
    pub rule: String,
    /// Customers it matches under the running rules (0 if it is new).
    pub before: u64,
    /// Customers it matches under the new rules (0 if it is gone).
    pub after: u64,
    /// Customers it starts matching.
    pub started: u64,
    /// Customers it stops matching.
    pub stopped: u64,
}

/// What applying a rule set would change (the dry run): nothing is emitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesDiff {
    /// Version of the running rules.
    pub from_version: String,
    /// Version of the new rules.
    pub to_version: String,
    /// The time the customers are evaluated at (the latest watermark), RFC 3339.
    pub as_of: Option<String>,
    /// Customers compared.
    pub customers: u64,
    /// Tier changes, from → to, most customers first.
    pub tiers: Vec<Move>,
    /// Warning-level changes, from → to, most customers first.
    pub levels: Vec<Move>,
    /// Rules that start or stop matching some customer (rules whose matches do not change
    /// are left out), by kind and name.
    pub rules: Vec<RuleDelta>,
}

impl RulesDiff {
    /// Adds another partition's diff; `samples` bounds each move's sample.
    pub fn merge(&mut self, o: RulesDiff, samples: usize) {
        if self.from_version.is_empty() {
            self.from_version = o.from_version;
            self.to_version = o.to_version;
        }
        self.as_of = self.as_of.take().max(o.as_of);
        self.customers += o.customers;
        merge_moves(&mut self.tiers, o.tiers, samples);
        merge_moves(&mut self.levels, o.levels, samples);
        for r in o.rules {
            match self
                .rules
                .iter_mut()
                .find(|x| x.kind == r.kind && x.rule == r.rule)
            {
                Some(x) => {
                    x.before += r.before;
                    x.after += r.after;
                    x.started += r.started;
                    x.stopped += r.stopped;
                }
                None => self.rules.push(r),
            }
        }
        self.rules
            .sort_by(|a, b| (&a.kind, &a.rule).cmp(&(&b.kind, &b.rule)));
    }

    /// Customers whose tier would change.
    pub fn tier_changes(&self) -> u64 {
        self.tiers.iter().map(|m| m.customers).sum()
    }

    /// Customers whose warning level would change.
    pub fn level_changes(&self) -> u64 {
        self.levels.iter().map(|m| m.customers).sum()
    }
}

fn merge_moves(into: &mut Vec<Move>, from: Vec<Move>, samples: usize) {
    for m in from {
        match into.iter_mut().find(|x| x.from == m.from && x.to == m.to) {
            Some(x) => {
                x.customers += m.customers;
                x.sample.extend(m.sample);
                x.sample.sort();
                x.sample.truncate(samples);
            }
            None => into.push(m),
        }
    }
    sort_moves(into);
}

fn sort_moves(v: &mut [Move]) {
    v.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
}

/// Per-rule counts while a diff is built: (before, after, started, stopped).
type Counts = BTreeMap<(&'static str, String), [u64; 4]>;

impl Processor {
    /// This processor's state rebuilt under `settings` from every customer's snapshot (as
    /// a restart with those rules restores it), with the same stream time, watermark,
    /// campaign figures, counters and pending changes. Nothing is re-evaluated yet.
    pub fn rebuilt(&self, settings: Arc<Settings>) -> Result<Processor, ReloadError> {
        check_reload(&self.s, &settings)?;
        let mut p = Processor::new(Arc::clone(&settings));
        p.lookahead = self.lookahead;
        for (slot, _) in self.store.iter() {
            // A snapshot this processor wrote always decodes; if one ever did not, the
            // customer would be rebuilt from its next events, as after a restart.
            let _ = p.restore(&self.snapshot_of(slot));
        }
        p.restore_time(self.max_ts, self.watermark);
        p.restore_campaigns(&self.campaign_lines(), self.campaigns_from);
        p.first_day = match (p.first_day, self.first_day) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        p.stats = remap_stats(&self.stats, &self.s, &settings);
        // Customers changed since the last drain stay changed: their snapshot and profile
        // are still owed to the changelog and the profiles topic.
        for &slot in &self.dirty {
            if !self.store.is_live(slot) || self.store.rec(slot).flags & DIRTY == 0 {
                continue;
            }
            let standing = self.store.rec(slot).flags & STANDING;
            if let Some(n) = p.store.get(&self.store.rec(slot).id) {
                p.store.rec_mut(n).flags |= standing;
                p.mark_dirty(n);
            }
        }
        Ok(p)
    }

    /// Replaces the rules with `settings` and re-evaluates every customer at the
    /// watermark: tier changes, warnings and clearances go to `out` as ordinary alerts
    /// (trigger `rules`, the new `rules_version`), and the customers that changed are
    /// marked for the changelog. On error nothing changed.
    pub fn reconfigure(
        &mut self,
        settings: Arc<Settings>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) -> Result<Reloaded, ReloadError> {
        let mut p = self.rebuilt(settings)?;
        let from_version = self.s.rules_version.clone();
        let (customers, changed) = p.reevaluate_all(ctx, out);
        *self = p;
        Ok(Reloaded {
            from_version,
            to_version: self.s.rules_version.clone(),
            customers,
            changed: changed.len() as u64,
        })
    }

    /// What [`Processor::reconfigure`] with `settings` would change, without changing
    /// anything: tier and level moves (with up to `samples` ids each) and the rules that
    /// start or stop matching, at the watermark.
    pub fn rules_diff(
        &self,
        settings: Arc<Settings>,
        samples: usize,
    ) -> Result<RulesDiff, ReloadError> {
        let mut p = self.rebuilt(Arc::clone(&settings))?;
        let now = self.watermark;
        let mut counts = Counts::new();
        if let Some(now) = now {
            for (slot, rec) in self.store.iter() {
                let before = self.matching(slot, now);
                let after = p.store.get(&rec.id).map(|n| p.matching(n, now));
                let after = after.unwrap_or_default();
                for key in before.union(&after) {
                    let (b, a) = (before.contains(key), after.contains(key));
                    let c = counts.entry(key.clone()).or_default();
                    c[0] += b as u64;
                    c[1] += a as u64;
                    c[2] += (a && !b) as u64;
                    c[3] += (b && !a) as u64;
                }
            }
        }
        let mut sink = Vec::new();
        let ctx = Ctx::default();
        let (customers, _) = p.reevaluate_all(&ctx, &mut sink);
        let mut tiers: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut levels: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (_, rec) in self.store.iter() {
            let Some(n) = p.store.get(&rec.id) else {
                continue;
            };
            let new = p.store.rec(n);
            let (from, to) = (tier_name(&self.s, rec.tier), tier_name(&p.s, new.tier));
            if from != to {
                tiers
                    .entry((from, to))
                    .or_default()
                    .push(rec.id.to_string());
            }
            let (from, to) = (Level::from_u8(rec.level), Level::from_u8(new.level));
            if from != to {
                let key = (from.name().to_string(), to.name().to_string());
                levels.entry(key).or_default().push(rec.id.to_string());
            }
        }
        let moves = |m: BTreeMap<(String, String), Vec<String>>| {
            let mut v: Vec<Move> = m
                .into_iter()
                .map(|((from, to), mut ids)| {
                    ids.sort();
                    let customers = ids.len() as u64;
                    ids.truncate(samples);
                    Move {
                        from,
                        to,
                        customers,
                        sample: ids,
                    }
                })
                .collect();
            sort_moves(&mut v);
            v
        };
        Ok(RulesDiff {
            from_version: self.s.rules_version.clone(),
            to_version: settings.rules_version.clone(),
            as_of: now.map(|t| format_rfc3339(t).to_string()),
            customers,
            tiers: moves(tiers),
            levels: moves(levels),
            rules: counts
                .into_iter()
                .filter(|(_, c)| c[2] + c[3] > 0)
                .map(|((kind, rule), c)| RuleDelta {
                    kind: kind.into(),
                    rule,
                    before: c[0],
                    after: c[1],
                    started: c[2],
                    stopped: c[3],
                })
                .collect(),
        })
    }

    /// Evaluates every customer at the watermark's day, in customer-id order. Returns
    /// how many were evaluated and the slots whose tier or warning level changed.
    fn reevaluate_all(&mut self, ctx: &Ctx, out: &mut Vec<Output>) -> (u64, Vec<u32>) {
        let Some(now) = self.watermark else {
            return (0, Vec::new());
        };
        let day = day_of(now);
        let mut slots: Vec<(String, u32)> = self
            .store
            .iter()
            .map(|(s, r)| (r.id.to_string(), s))
            .collect();
        slots.sort_unstable();
        let mut changed = Vec::new();
        for (_, slot) in &slots {
            if self.reevaluate(*slot, day, ctx, out) {
                changed.push(*slot);
            }
        }
        (slots.len() as u64, changed)
    }

    /// Evaluates one customer at the start of `day` (or its clock, if later) under the
    /// current rules; returns whether its tier or warning level changed (a changed next
    /// deadline alone is also written to the changelog, silently).
    fn reevaluate(&mut self, slot: u32, day: Day, ctx: &Ctx, out: &mut Vec<Output>) -> bool {
        let rec = self.store.rec_mut(slot);
        let was = (rec.tier, rec.level, rec.timer_day);
        rec.clock = rec.clock.max(day_start(day));
        let today = day_of(rec.clock);
        self.work.clear();
        self.work.extend_from_slice(&self.store.rec(slot).days);
        self.prune(today);
        let before = self.static_of(slot);
        self.evaluate(slot, Trigger::Rules { day }, ctx, out);
        let after = self.static_of(slot);
        if after != before {
            self.live.apply_static(&before, -1);
            self.live.apply_static(&after, 1);
        }
        let rec = self.store.rec(slot);
        let now = (rec.tier, rec.level, rec.timer_day);
        if was != now {
            // Owed to the changelog: a restart must find the new outcome and deadline.
            self.store_days(slot);
        }
        (was.0, was.1) != (now.0, now.1)
    }

    /// The tier and warning rules that match the customer at `now` (or its clock, if
    /// later), reading the tiers it holds.
    fn matching(&self, slot: u32, now: Ts) -> BTreeSet<(&'static str, String)> {
        let rec = self.store.rec(slot);
        let at = rec.clock.max(day_start(day_of(now)));
        let mut facts = Facts::compute(&rec.days, rec, &self.s, at);
        facts.ensure_p_alive(&self.s);
        let x = Subject::new(
            &facts,
            &self.s,
            &self.labels,
            Held::of(rec),
            self.pop.as_ref(),
        );
        let mut m = BTreeSet::new();
        for t in &self.s.tiers {
            if t.rule.as_ref().is_some_and(|r| r.matches(&x)) {
                m.insert(("tier", t.name.clone()));
            }
        }
        for w in &self.s.warnings {
            if w.rule.matches(&x) {
                m.insert(("warning", w.rule.name.clone()));
            }
        }
        m
    }

    fn mark_dirty(&mut self, slot: u32) {
        let rec = self.store.rec_mut(slot);
        if rec.flags & DIRTY == 0 {
            rec.flags |= DIRTY;
            self.dirty.push(slot);
        }
    }
}

fn tier_name(s: &Settings, t: u8) -> String {
    if t == NO_TIER {
        return "none".into();
    }
    s.tiers
        .get(t as usize)
        .map_or_else(|| "none".into(), |t| t.name.clone())
}

impl super::Stats {
    /// These counters under new rules (see [`remap_stats`]).
    pub fn under(&self, from: &Settings, to: &Settings) -> super::Stats {
        remap_stats(self, from, to)
    }
}

/// The counters under new rules: tier transitions are indexed by tier, so they are
/// carried over by tier name (pairs whose tier is gone are dropped); the other counters
/// are kept as they are, so the metrics stay monotonic.
fn remap_stats(old: &super::Stats, from: &Settings, to: &Settings) -> super::Stats {
    let mut st = old.clone();
    let (n, m) = (from.tiers.len(), to.tiers.len());
    let index = |i: usize| -> Option<usize> {
        if i == n {
            return Some(m);
        }
        let name = &from.tiers.get(i)?.name;
        to.tiers.iter().position(|t| &t.name == name)
    };
    let mut tr = vec![0u64; (m + 1) * m];
    for (i, v) in old.transitions.iter().enumerate() {
        if let (Some(f), Some(t)) = (index(i / n.max(1)), index(i % n.max(1))) {
            if t < m {
                tr[f * m + t] += v;
            }
        }
    }
    st.transitions = tr;
    st
}
