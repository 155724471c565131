//! A warning as a task (DOMAIN.md §6): opening it when the warning is raised (owner by
//! `[interventions]` routing, due by the level's SLA), applying `intervention` events,
//! noticing recovery (an order within the recovery period), and escalating it as
//! `churn_warning_overdue` when its due time passes — by time alone, at the due instant.
//!
//! Determinism: an escalation is a deadline of its customer at the due instant, fired
//! like the day deadlines: by the watermark, or before the customer's next event at or
//! after the due time ([`Processor::catch_up`]), each customer's deadlines in time order.
//! So it fires once and at the same point of the customer's outputs however the stream
//! is interleaved, cut into intervals or restored; its id hashes the warning's id.

use std::sync::Arc;

use super::{Ctx, Processor};
use crate::core::care::{Care, CLEARED, NEVER, OVERDUE, RECOVERED};
use crate::core::event::{Event, InterventionStatus, Payload};
use crate::core::facts::Facts;
use crate::core::output::{schema, stable_id, Output, TaskState, Text, WarningOverdue};
use crate::core::settings::Level;
use crate::core::store::{label, DIRTY, STANDING};
use crate::core::time::{format_rfc3339, Ts};

impl Processor {
    /// Replaces a customer's task state, keeping the saved-customer sums and the overdue
    /// index right, and marks the customer changed.
    pub(super) fn set_care(&mut self, slot: u32, c: Care) {
        self.saved.apply(&c, 1);
        if c.escalation_pending() {
            self.overdue.insert((c.due, slot));
        }
        if let Some(old) = self.store.set_care(slot, c) {
            self.saved.apply(&old, -1);
        }
        let rec = self.store.rec_mut(slot);
        rec.flags |= STANDING;
        if rec.flags & DIRTY == 0 {
            rec.flags |= DIRTY;
            self.dirty.push(slot);
        }
    }

    /// The owner of a task about the customer in `slot` at `tier` and `level` (a warning
    /// decided by warning rule `rule`, if given).
    pub(super) fn owner_of(
        &self,
        slot: u32,
        tier: usize,
        level: Level,
        rule: Option<&str>,
    ) -> Text {
        let rec = self.store.rec(slot);
        let segment = self.labels.name(rec.labels[label::SEGMENT] as u32);
        let am = self.labels.name(rec.labels[label::ACCOUNT_MANAGER] as u32);
        Text::from(
            self.s
                .interventions
                .owner_by_rule(tier, level, segment, am, rule),
        )
    }

    /// Opens the task of a warning just raised (replacing the customer's previous one).
    pub(super) fn open_task(
        &mut self,
        slot: u32,
        warning_id: &str,
        raised: Ts,
        level: Level,
        rule: usize,
        owner: &str,
    ) {
        let id = crate::core::event::parse_warning_id(warning_id).unwrap_or_default();
        let c = Care {
            id,
            raised,
            due: raised.saturating_add(self.s.warning_sla_ms(rule, level)),
            first_acted: NEVER,
            acted: NEVER,
            owner: self.labels.intern(owner) as u16,
            actor: 0,
            outcome: 0,
            status: InterventionStatus::Open as u8,
            level: level as u8,
            rule: rule.min(u8::MAX as usize) as u8,
            flags: 0,
        };
        self.set_care(slot, c);
    }

    /// The customer's warning was cleared: no escalation is due any more.
    pub(super) fn clear_task(&mut self, slot: u32) {
        if let Some(c) = self.store.care(slot) {
            if c.flags & CLEARED == 0 {
                let mut c = c.clone();
                c.flags |= CLEARED;
                self.set_care(slot, c);
            }
        }
    }

    /// The task part of an event: an intervention updates the task it names (or the
    /// open one); an order within the recovery period marks the customer recovered.
    pub(super) fn apply_task(&mut self, slot: u32, ev: &Event<'_>) {
        match &ev.payload {
            Payload::Intervention {
                warning_id,
                status,
                outcome,
                actor,
            } => {
                let current = self
                    .store
                    .care(slot)
                    .filter(|c| warning_id.is_none_or(|w| w == c.id) && !c.status().is_closed());
                let Some(c) = current else {
                    self.stats.interventions_unmatched += 1;
                    return;
                };
                let mut c = c.clone();
                self.stats.interventions[*status as usize] += 1;
                c.status = *status as u8;
                if c.first_acted == NEVER {
                    c.first_acted = ev.ts;
                }
                c.acted = c.acted.max(ev.ts);
                if let Some(a) = actor {
                    c.actor = self.labels.intern(a) as u16;
                }
                if let Some(o) = outcome {
                    c.outcome = self.labels.intern(o) as u16;
                }
                self.set_care(slot, c);
            }
            Payload::Order { .. } => {
                let period = self.s.interventions.recovery_ms;
                if let Some(c) = self.store.care(slot) {
                    if c.flags & RECOVERED == 0
                        && ev.ts > c.raised
                        && ev.ts <= c.raised.saturating_add(period)
                    {
                        let mut c = c.clone();
                        c.flags |= RECOVERED;
                        self.stats.recovered[c.level.min(2) as usize] += 1;
                        self.set_care(slot, c);
                    }
                }
            }
            _ => {}
        }
    }

    /// When the customer's escalation is due, if one is pending.
    pub(super) fn escalation_due(&self, slot: u32) -> Option<Ts> {
        self.store
            .care(slot)
            .filter(|c| c.escalation_pending())
            .map(|c| c.due)
    }

    /// Emits the customer's overdue escalation (its due time has come).
    pub(super) fn escalate(&mut self, slot: u32, ctx: &Ctx, out: &mut Vec<Output>) {
        let Some(c) = self.store.care(slot).filter(|c| c.escalation_pending()) else {
            return;
        };
        let mut c = c.clone();
        let s = Arc::clone(&self.s);
        let level = Level::from_u8(c.level);
        let rec = self.store.rec(slot);
        let mut facts = Facts::compute(&rec.days, rec, &s, c.due.max(rec.clock));
        facts.ensure_p_alive(&s);
        let tier = if rec.tier == crate::core::store::NO_TIER {
            s.fallback_tier()
        } else {
            rec.tier as usize
        };
        let warning_id = c.id_hex();
        let cid = Text::from(rec.id.as_str());
        let o = WarningOverdue {
            schema: schema::CHURN_WARNING_OVERDUE,
            event_id: stable_id(&["churn_warning_overdue", &cid, &warning_id]),
            customer_id: cid,
            warning_id: Text::from(warning_id),
            level: level.name(),
            rule: Text::from(
                s.warnings
                    .get(c.rule as usize)
                    .map_or("", |w| w.rule.name.as_str()),
            ),
            owner: Text::from(s.interventions.escalation[level as usize].as_str()),
            task_owner: Text::from(self.labels.name(c.owner as u32).unwrap_or("")),
            status: c.status().name(),
            raised_at: format_rfc3339(c.raised),
            due: format_rfc3339(c.due),
            trigger: "time",
            event_time: format_rfc3339(c.due),
            emitted_at: self.emitted_at(ctx, c.due),
            rules_version: Text::from(s.rules_version.as_str()),
            facts: super::emit::headline(&facts, &s, &s.tiers[tier].name),
        };
        self.stats.overdue[level as usize] += 1;
        c.flags |= OVERDUE;
        self.set_care(slot, c);
        self.emit(out, Output::Overdue(Box::new(o)));
    }

    /// Fires the escalations due at the earliest due instant in the index, if it is at
    /// or before the watermark `wm`, in customer-id order. Returns false when none is.
    pub(super) fn fire_overdue_at_first(
        &mut self,
        wm: Ts,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(&(t, _)) = self.overdue.first() else {
            return false;
        };
        if t > wm {
            return false;
        }
        let mut slots = Vec::new();
        while let Some(&(u, slot)) = self.overdue.first() {
            if u != t {
                break;
            }
            self.overdue.pop_first();
            if self.store.is_live(slot) && self.escalation_due(slot) == Some(t) {
                slots.push(slot);
            }
        }
        slots.sort_by(|a, b| self.store.rec(*a).id.cmp(&self.store.rec(*b).id));
        for slot in slots {
            self.escalate(slot, ctx, out);
        }
        true
    }

    /// The task state a profile shows.
    pub(super) fn task_state(&self, slot: u32) -> TaskState {
        let Some(c) = self.store.care(slot) else {
            return TaskState::default();
        };
        let name = |id: u16| self.labels.name(id as u32).map(Text::from);
        let at = |t: Ts| (t != NEVER).then(|| format_rfc3339(t));
        TaskState {
            warning_id: Some(Text::from(c.id_hex())),
            level: Some(Level::from_u8(c.level).name()),
            status: Some(c.status().name()),
            owner: name(c.owner),
            actor: name(c.actor),
            outcome: name(c.outcome),
            raised_at: at(c.raised),
            acted_at: at(c.acted),
            due: at(c.due),
            overdue: c.flags & OVERDUE != 0,
            cleared: c.flags & CLEARED != 0,
            recovered: c.flags & RECOVERED != 0,
        }
    }
}
