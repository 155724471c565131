//! Evaluating a customer's rules at its clock: the facts, the tier and warning decided
//! by the rule set, and the transitions (tier change, warning, clearance) that follow.

use super::*;

impl Processor {
    /// Evaluates rules at the customer's clock and emits transitions.
    pub(super) fn evaluate(
        &mut self,
        slot: u32,
        trigger: Trigger<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) {
        let s = Arc::clone(&self.s);
        let rec = self.store.rec(slot);
        let decoded: SmallVec<[DayCounts; 16]> = days::iter(&self.work)
            .map(|e| DayCounts {
                day: e.day,
                mask: e.mask,
                counts: e.counts,
            })
            .collect();
        // One pass over the history gives the facts at the clock; the deadline search
        // then moves the same running sums forward instead of folding at each candidate.
        let mut running = Running::new(&decoded, rec, &s, rec.clock);
        let mut facts = running.facts().clone();
        let held = Held::of(rec);
        let pop = self.pop.as_ref();
        let (tier, level) = outcome(&facts, &s, &self.labels, held, pop);
        let after = held.after(tier, &s);
        let old_tier = rec.tier;
        let old_level = Level::from_u8(rec.level);
        let deadline = next_change(
            &mut running,
            &s,
            (tier, level),
            self.lookahead,
            &self.labels,
            after,
            pop,
        );
        let tier_changed = tier as u8 != old_tier;
        let raised = level > old_level;
        let cleared = level == Level::Low && old_level > Level::Low;
        // A first appearance in the fallback tier is no news to act on: the profile
        // records it (contract v2).
        let tier_alert = tier_changed && !(old_tier == NO_TIER && tier == s.fallback_tier());
        if tier_alert || raised || cleared {
            let change = emit::Change {
                held,
                old_tier,
                tier,
                tier_alert,
                old_level,
                level,
                raised,
                cleared,
            };
            self.emit_alerts(slot, &trigger, ctx, &mut facts, &change, out);
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
        if tier_changed {
            rec.tier_since = pack(day_of(rec.clock));
            rec.peak_tier = after.peak;
            rec.previous_tier = after.previous;
        }
        rec.tier = tier as u8;
        rec.level = level as u8;
        if tier_changed || level != old_level {
            rec.flags |= STANDING;
        }
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
}
