//! What the processor's outputs say: the contract v2 alerts of one evaluation (tier
//! change, warning raised, warning cleared) and the profiles, built from a customer's
//! facts and record. The processor decides *when* to emit; this module only builds.

use std::sync::Arc;

use super::{Processor, Trigger};
use crate::core::facts::{clv_of, Facts};
use crate::core::output::{
    schema, stable_id, ChurnWarning, ConditionValue, FactsOut, Headline, Output, Profile, Reason,
    Text, TierChanged, WarningCleared, WarningState, WindowOut,
};
use crate::core::rules::{DayAnchor, Lookup, Metric, Rule, WindowMetric};
use crate::core::settings::{Level, Settings};
use crate::core::store::{label, Interner, Record, NO_TIER};
use crate::core::subject::{Held, Subject};
use crate::core::time::{day_start, format_date, format_rfc3339, Ts};

/// What one evaluation changed, as the alerts report it.
pub(super) struct Change {
    /// What the customer held before the evaluation (tier rules read it).
    pub held: Held,
    /// Tier before (`NO_TIER` for a new customer).
    pub old_tier: u8,
    /// Tier now.
    pub tier: usize,
    /// Announce the tier change (not for a first appearance in the fallback tier).
    pub tier_alert: bool,
    /// Level before.
    pub old_level: Level,
    /// Level now.
    pub level: Level,
    /// The level rose.
    pub raised: bool,
    /// The level fell back to low.
    pub cleared: bool,
}

impl Processor {
    /// The alerts of one evaluation of the customer in `slot` (whose facts are `facts`,
    /// at the customer's clock), appended to `out`.
    pub(super) fn emit_alerts(
        &mut self,
        slot: u32,
        trigger: &Trigger<'_>,
        ctx: &super::Ctx,
        facts: &mut Facts,
        c: &Change,
        out: &mut Vec<Output>,
    ) {
        let s = Arc::clone(&self.s);
        let (event_time, cause, source) = match trigger {
            Trigger::Event {
                event_id,
                ts,
                source,
            } => (*ts, event_id.to_string(), Some(source.to_ref())),
            Trigger::Time { day } => (day_start(*day), format!("t{day}"), None),
            // The version in the cause: switching back and forth between two rule sets
            // on one day gives each switch's alerts their own ids.
            Trigger::Rules { day } => {
                (day_start(*day), format!("r{}@{day}", s.rules_version), None)
            }
        };
        let trig = match trigger {
            Trigger::Event { .. } => "event",
            Trigger::Time { .. } => "time",
            Trigger::Rules { .. } => "rules",
        };
        let emitted_at = self.emitted_at(ctx, event_time);
        facts.ensure_p_alive(&s);
        let facts = &*facts;
        let pop = self.pop.as_ref();
        // Tier rules read what the customer held before, warning rules what it holds now.
        let before = Subject::new(facts, &s, &self.labels, c.held, pop);
        let get = Subject {
            held: c.held.after(c.tier, &s),
            standing: before.standing.clone(),
            ..Subject::new(facts, &s, &self.labels, c.held, None)
        };
        let rec = self.store.rec(slot);
        let headline = headline(facts, &s, &s.tiers[c.tier].name);
        let cid = Text::from(rec.id.as_str());
        // The warning rule that decides the level (the first matching one at it): its
        // owner routing and SLA apply.
        let rule = s
            .warnings
            .iter()
            .position(|w| w.level == c.level && w.rule.matches(&get))
            .unwrap_or(0);
        let rule_name = (c.level > Level::Low)
            .then(|| s.warnings.get(rule).map(|w| w.rule.name.as_str()))
            .flatten();
        // Owners by `[interventions]` routing: never empty (DOMAIN.md §6).
        let tier_owner = self.owner_of(slot, c.tier, c.level, None);
        let owner = self.owner_of(slot, c.tier, c.level, rule_name);
        // The cleared warning's task keeps the owner it had.
        let task_owner = self
            .store
            .care(slot)
            .and_then(|t| self.labels.name(t.owner as u32))
            .map_or_else(|| owner.clone(), Text::from);
        let mut task: Option<(String, Text)> = None;
        let version = Text::from(s.rules_version.as_str());
        let event_time_text = format_rfc3339(event_time);
        let mut outs: smallvec::SmallVec<[Output; 2]> = smallvec::SmallVec::new();
        if c.tier_alert {
            let from = (c.old_tier != NO_TIER)
                .then(|| Text::from(s.tiers[c.old_tier as usize].name.as_str()));
            let t = &s.tiers[c.tier];
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
                rule: match &t.rule {
                    Some(_) => Text::from(t.name.as_str()),
                    None => "fallback".into(),
                },
                reasons: t
                    .rule
                    .as_ref()
                    .map(|r| values(r, &before))
                    .unwrap_or_default(),
                action: t.action.clone(),
                owner: tier_owner,
                due: t
                    .sla_ms
                    .map(|ms| format_rfc3339(event_time.saturating_add(ms))),
                trigger: trig,
                event_time: event_time_text.clone(),
                emitted_at: emitted_at.clone(),
                source: source.clone(),
                rules_version: version.clone(),
                facts: headline.clone(),
            })));
        }
        if c.raised {
            let level = c.level;
            let event_id = stable_id(&["churn_warning", &cid, &cause, level.name()]);
            task = Some((event_id.clone(), owner.clone()));
            outs.push(Output::Warning(Box::new(ChurnWarning {
                schema: schema::CHURN_WARNING,
                event_id,
                customer_id: cid.clone(),
                level: level.name(),
                previous_level: c.old_level.name(),
                reasons: reasons(&s, &get),
                risk_index: facts.churn_risk_index(&s),
                owner,
                due: format_rfc3339(event_time.saturating_add(s.warning_sla_ms(rule, level))),
                action: s.level_action[level as usize].clone(),
                trigger: trig,
                event_time: event_time_text,
                emitted_at,
                source,
                rules_version: version,
                facts: headline,
            })));
        } else if c.cleared {
            outs.push(Output::Cleared(Box::new(WarningCleared {
                schema: schema::CHURN_WARNING_CLEARED,
                event_id: stable_id(&["churn_warning_cleared", &cid, &cause]),
                customer_id: cid,
                previous_level: c.old_level.name(),
                owner: task_owner,
                trigger: trig,
                event_time: event_time_text,
                emitted_at,
                source,
                rules_version: version,
                facts: headline,
            })));
        }
        for o in outs {
            self.emit(out, o);
        }
        if let Some((id, owner)) = task {
            self.open_task(slot, &id, event_time, c.level, rule, &owner);
        } else if c.cleared {
            self.clear_task(slot);
        }
    }

    pub(super) fn profile_at(&self, slot: u32, now: Ts) -> Profile {
        let s = Arc::clone(&self.s);
        let rec = self.store.rec(slot);
        let mut facts = Facts::compute(&rec.days, rec, &s, now);
        let tags = facts.with_extras(&rec.days, &s, &self.labels);
        let get = Subject::new(&facts, &s, &self.labels, Held::of(rec), self.pop.as_ref());
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
            tier_since: (crate::core::store::unpack(rec.tier_since) != crate::core::store::NO_DAY)
                .then(|| {
                    crate::core::time::format_date(crate::core::store::unpack(rec.tier_since))
                }),
            peak_tier: (rec.peak_tier != NO_TIER)
                .then(|| Text::from(s.tiers[rec.peak_tier as usize].name.as_str())),
            previous_tier: (rec.previous_tier != NO_TIER)
                .then(|| Text::from(s.tiers[rec.previous_tier as usize].name.as_str())),
            action: s.tiers[tier].action.clone(),
            warning: WarningState {
                level: level.name(),
                reasons: if level > Level::Low {
                    reasons(&s, &get)
                } else {
                    Vec::new()
                },
                task: self.task_state(slot),
            },
            rules_version: Text::from(s.rules_version.as_str()),
            facts: facts_out(&facts, tags, rec, &s, &self.labels),
        }
    }
}

/// The headline facts of an alert (P(alive) must already be in `f`).
pub(super) fn headline(f: &Facts, s: &Settings, tier: &str) -> Headline {
    let last = s.windows.len().saturating_sub(1);
    let w = f.window(s, last);
    Headline {
        recency_days: f
            .anchor(DayAnchor::LastOrder)
            .map(|d| (f.today - d).max(0) as i64),
        window_days: s.windows[last],
        orders: w.orders,
        monetary: w.amount as f64 / 100.0,
        currency: Text::from(s.limits.money.reporting.as_str()),
        p_alive: f.p_alive,
        clv: clv_of(f.expected_purchases(s), f.expected_order_value(s)),
        tier: Text::from(tier),
    }
}

/// The matched warning rules with each condition's value.
pub(super) fn reasons(s: &Settings, get: &impl Lookup) -> Vec<Reason> {
    s.warnings
        .iter()
        .filter(|w| w.rule.matches(get))
        .map(|w| Reason {
            rule: Text::from(w.rule.name.as_str()),
            level: w.level.name(),
            conditions: values(&w.rule, get),
        })
        .collect()
}

/// The conditions that decided a rule for this customer (its segment's, if the rule has
/// some), each with the metric's value (`null` for label conditions: the text says it).
fn values(r: &Rule, get: &impl Lookup) -> Vec<ConditionValue> {
    r.conditions_for(get)
        .map(|c| ConditionValue {
            condition: Text::from(c.text.as_str()),
            value: c.metric().and_then(|m| get.num(m)),
        })
        .collect()
}

/// The full facts of a profile.
fn facts_out(
    f: &Facts,
    (channel, category): (u32, u32),
    rec: &Record,
    s: &Settings,
    labels: &Interner,
) -> FactsOut {
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
        first_seen: format_date(f.first_seen_day),
        first_order: f.first_order_day.map(format_date),
        last_order: f.last_order_day.map(format_date),
        last_interaction: format_date(f.last_interaction_day),
        days_since_last_interaction: since(DayAnchor::LastInteraction).unwrap_or(0),
        lifetime_orders: f.lifetime_orders,
        lifetime_value: f.lifetime_value as f64 / 100.0,
        currency: Text::from(s.limits.money.reporting.as_str()),
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
                    aov: f.get(Metric::Window(WindowMetric::Aov, i as u8), s),
                    visits: w.visits,
                    complaints: w.complaints,
                    surveys: w.surveys,
                    satisfaction: f.get(Metric::Window(WindowMetric::Satisfaction, i as u8), s),
                    campaign_touches: w.touches,
                    campaign_conversions: w.conversions,
                    campaign_participations: w.participations,
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
        clv: clv_of(expected_purchases, expected_order_value),
        horizon_days: s.horizon_days,
        preferred_channel: name(channel),
        preferred_category: name(category),
        account_manager: name(rec.labels[label::ACCOUNT_MANAGER] as u32),
        industry: name(rec.labels[label::INDUSTRY] as u32),
        region: name(rec.labels[label::REGION] as u32),
        segment: name(rec.labels[label::SEGMENT] as u32),
    }
}
