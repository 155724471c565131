//! Per-customer facts at an instant, computed from the record and its decoded history in
//! one pass: sums for every period length, the preferred channel and category, BG/NBD
//! P(alive), and the next day on which a window expiry changes any of them. The fold
//! ([`Facts::compute`]) serves outputs at any instant; evaluations use [`Running`]
//! (`facts/running.rs`), which reaches later instants without folding again.

use super::bgnbd;
use super::days::{self, Counts};
use super::rules::{DayAnchor, Metric, WindowMetric};
use super::scores;
use super::settings::Settings;
use super::store::{unpack, Interner, Record, NO_DAY, NO_NPS};
use super::time::{day_of, Day, Ts};

mod running;
pub use running::Running;

/// Sums over one period: the day counters added up.
pub type Sums = Counts;

/// Most distinct period lengths (windows plus score periods) a rule set may use.
pub const MAX_LENGTHS: usize = 8;

/// A customer's facts at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Evaluation instant.
    pub now: Ts,
    /// Its day.
    pub today: Day,
    /// Sums per period length (indexed like `Settings::lengths`).
    pub sums: [Sums; MAX_LENGTHS],
    /// Lifetime orders.
    pub lifetime_orders: u32,
    /// Lifetime value, cents.
    pub lifetime_value: i64,
    /// Distinct purchase days.
    pub purchase_days: u32,
    /// Open complaints.
    pub open_complaints: u16,
    /// Last NPS answer.
    pub last_nps: Option<u8>,
    /// First day seen.
    pub first_seen_day: Day,
    /// First order day.
    pub first_order_day: Option<Day>,
    /// Last order day.
    pub last_order_day: Option<Day>,
    /// Day of the last event of any kind: the newest day of the history (every applied
    /// event leaves its id there), else, beyond the retained history, the latest of the
    /// first-seen and last order days.
    pub last_interaction_day: Day,
    /// BG/NBD P(alive), if enabled and the customer ordered (computed when a rule uses
    /// it, or by [`Facts::with_extras`] for outputs).
    pub p_alive: Option<f64>,
    /// Earliest day after `today` on which a day leaves a period in a way some rule can
    /// see (it carries a field a rule reads over that period).
    pub next_expiry: Option<Day>,
}

/// One history day's counters, decoded (what [`Facts::compute_over`] reads).
#[derive(Debug, Clone, Copy)]
pub struct DayCounts {
    /// Day number.
    pub day: Day,
    /// Which fields are non-zero (see `days::field`).
    pub mask: u8,
    /// The day's counters.
    pub counts: Counts,
}

/// Customer lifetime value over the horizon: expected purchases × expected order value.
/// Takes both (outputs show all three, and expected purchases sums a series: computing
/// it once per output, not twice).
pub fn clv_of(expected_purchases: Option<f64>, expected_order_value: Option<f64>) -> Option<f64> {
    let v = expected_purchases? * expected_order_value?;
    v.is_finite().then_some(v)
}

fn opt_day(d: Day) -> Option<Day> {
    (d != NO_DAY).then_some(d)
}

impl Facts {
    /// Computes the facts rules need for `rec` with encoded history `history` at `now`:
    /// one pass over the history. P(alive) only if a rule uses it.
    pub fn compute(history: &[u8], rec: &Record, s: &Settings, now: Ts) -> Facts {
        Self::compute_over(
            days::iter(history).map(|e| DayCounts {
                day: e.day,
                mask: e.mask,
                counts: e.counts,
            }),
            rec,
            s,
            now,
        )
    }

    /// [`Facts::compute`] over already decoded history entries (ascending days), so
    /// evaluating one history at several instants decodes it once.
    pub fn compute_over(
        entries: impl Iterator<Item = DayCounts>,
        rec: &Record,
        s: &Settings,
        now: Ts,
    ) -> Facts {
        let today = day_of(now);
        let n = s.lengths.len();
        let mut sums = [Sums::default(); MAX_LENGTHS];
        let mut next_expiry: Option<Day> = None;
        let mut entered = 0u16; // bit i: the oldest rule-relevant day of length i was seen
        let mut newest: Option<Day> = None;
        for d in entries {
            newest = Some(d.day);
            let age = (today - d.day).max(0);
            let first = s.lengths.partition_point(|&l| (l as i32) <= age);
            for (i, sum) in sums.iter_mut().enumerate().take(n).skip(first) {
                sum.add(&d.counts);
                if entered & (1 << i) == 0 && d.mask & s.rule_fields[i] != 0 {
                    entered |= 1 << i;
                    let exp = d.day + s.lengths[i] as i32;
                    if exp > today {
                        next_expiry = Some(next_expiry.map_or(exp, |e: Day| e.min(exp)));
                    }
                }
            }
        }
        let mut f = Facts::of_record(rec, now, newest);
        f.sums = sums;
        f.next_expiry = next_expiry;
        if s.daily {
            f.p_alive = f.bgnbd_p_alive(s);
        }
        f
    }

    /// The facts that do not depend on the period sums: the record's, at `now`, with
    /// `newest` the newest history day (sums zero, no expiry, no P(alive)).
    fn of_record(rec: &Record, now: Ts, newest: Option<Day>) -> Facts {
        Facts {
            now,
            today: day_of(now),
            sums: [Sums::default(); MAX_LENGTHS],
            lifetime_orders: rec.lifetime_orders,
            lifetime_value: rec.lifetime_value,
            purchase_days: rec.purchase_days,
            open_complaints: rec.open_complaints,
            last_nps: (rec.last_nps != NO_NPS).then_some(rec.last_nps),
            first_seen_day: unpack(rec.first_seen_day),
            first_order_day: opt_day(unpack(rec.first_order_day)),
            last_order_day: opt_day(unpack(rec.last_order_day)),
            last_interaction_day: newest
                .unwrap_or(NO_DAY)
                .max(unpack(rec.first_seen_day))
                .max(unpack(rec.last_order_day)),
            p_alive: None,
            next_expiry: None,
        }
    }

    fn bgnbd_p_alive(&self, s: &Settings) -> Option<f64> {
        let p = s.bgnbd?;
        let (f, l) = (self.first_order_day?, self.last_order_day?);
        let x = self.purchase_days.saturating_sub(1) as f64;
        let t_x = (l - f) as f64 / s.unit_days;
        let big_t = ((self.today - f).max(l - f)) as f64 / s.unit_days;
        Some(bgnbd::p_alive(&p, x, t_x, big_t))
    }

    /// Computes P(alive) if no rule needed it (alerts show it).
    pub fn ensure_p_alive(&mut self, s: &Settings) {
        if self.p_alive.is_none() {
            self.p_alive = self.bgnbd_p_alive(s);
        }
    }

    /// What outputs show beyond the rules' needs: P(alive) and the preferred channel and
    /// category (most frequent in the longest window; ties go to the alphabetically first
    /// label so the choice does not depend on interning order, which differs between
    /// instances). Returns (channel id, category id); 0 = none.
    pub fn with_extras(&mut self, history: &[u8], s: &Settings, labels: &Interner) -> (u32, u32) {
        self.ensure_p_alive(s);
        let longest_window = *s.windows.last().unwrap_or(&0) as i32;
        let mut tags: smallvec::SmallVec<[(u32, u32); 8]> = smallvec::SmallVec::new();
        for d in days::iter(history) {
            if (self.today - d.day).max(0) < longest_window {
                for (k, c) in d.tags() {
                    match tags.iter_mut().find(|(x, _)| *x == k) {
                        Some((_, m)) => *m += c,
                        None => tags.push((k, c)),
                    }
                }
            }
        }
        let pick = |kind: u32| -> u32 {
            let mut best: Option<(u32, u32)> = None;
            for &(k, c) in tags.iter().filter(|(k, _)| k & 1 == kind) {
                let id = k >> 1;
                best = match best {
                    None => Some((id, c)),
                    Some((bid, bc)) => {
                        let better = c > bc || (c == bc && labels.name(id) < labels.name(bid));
                        Some(if better { (id, c) } else { (bid, bc) })
                    }
                };
            }
            best.map_or(0, |(id, _)| id)
        };
        (pick(0), pick(1))
    }

    /// Sums of window `i` of `Settings::windows`.
    #[inline]
    pub fn window(&self, s: &Settings, i: usize) -> &Sums {
        &self.sums[s.window_len[i]]
    }

    /// The day a day-counter metric counts from.
    pub fn anchor(&self, a: DayAnchor) -> Option<Day> {
        match a {
            DayAnchor::LastOrder => self.last_order_day,
            DayAnchor::LastOrderOrFirstSeen => {
                Some(self.last_order_day.unwrap_or(self.first_seen_day))
            }
            DayAnchor::FirstOrder => self.first_order_day,
            DayAnchor::FirstSeen => Some(self.first_seen_day),
            DayAnchor::LastInteraction => Some(self.last_interaction_day),
        }
    }

    fn days_since(&self, a: DayAnchor) -> Option<f64> {
        self.anchor(a).map(|d| (self.today - d).max(0) as f64)
    }

    /// Churn risk index over the configured risk periods.
    pub fn churn_risk_index(&self, s: &Settings) -> f64 {
        let recent = &self.sums[s.risk_len.0];
        let both = &self.sums[s.risk_len.1];
        scores::churn_risk_index(
            recent.orders,
            both.orders.saturating_sub(recent.orders),
            recent.complaints,
        )
    }

    /// Activity score over the activity window.
    pub fn activity_score(&self, s: &Settings) -> f64 {
        let w = &self.sums[s.activity_len];
        scores::activity_score(w.visits, w.participations.saturating_add(w.conversions))
    }

    /// Visits in the baseline period before the recent visit window.
    pub fn visits_baseline(&self, s: &Settings) -> u32 {
        self.sums[s.visit_len.1]
            .visits
            .saturating_sub(self.sums[s.visit_len.0].visits)
    }

    /// Visit drop in percent.
    pub fn visit_drop_pct(&self, s: &Settings) -> Option<f64> {
        let recent = self.sums[s.visit_len.0].visits;
        let recent_days = s.lengths[s.visit_len.0];
        scores::visit_drop_pct(
            recent,
            self.visits_baseline(s),
            recent_days,
            s.visit_baseline_days,
        )
    }

    /// BG/NBD expected purchases over the configured horizon.
    pub fn expected_purchases(&self, s: &Settings) -> Option<f64> {
        let p = s.bgnbd?;
        let (f, l) = (self.first_order_day?, self.last_order_day?);
        let x = self.purchase_days.saturating_sub(1) as f64;
        let t_x = (l - f) as f64 / s.unit_days;
        let big_t = ((self.today - f).max(l - f)) as f64 / s.unit_days;
        let v = bgnbd::expected_purchases(&p, s.horizon_days as f64 / s.unit_days, x, t_x, big_t);
        v.is_finite().then_some(v)
    }

    /// Gamma-Gamma expected order value (currency units), as lifetimes'
    /// `conditional_expected_average_profit`: p(v + x·m)/(p·x + q − 1) with x the repeat
    /// purchase days and m the customer's mean order value. Our m is the lifetime net value
    /// per order (the first purchase included, refunds subtracted), because the record keeps
    /// no per-order amounts; with one order, x = 0 gives the population mean p·v/(q − 1).
    pub fn expected_order_value(&self, s: &Settings) -> Option<f64> {
        let g = s.spend_model?;
        if self.lifetime_orders == 0 {
            return None;
        }
        let x = self.purchase_days.saturating_sub(1) as f64;
        let m = (self.lifetime_value as f64 / 100.0 / self.lifetime_orders as f64).max(0.0);
        let v = bgnbd::expected_order_value(&g, x, m);
        v.is_finite().then_some(v)
    }

    /// A metric's value (`None` when undefined for this customer).
    pub fn get(&self, m: Metric, s: &Settings) -> Option<f64> {
        Some(match m {
            Metric::RecencyDays => return self.days_since(DayAnchor::LastOrder),
            Metric::DaysWithoutOrder => return self.days_since(DayAnchor::LastOrderOrFirstSeen),
            Metric::DaysSinceFirstOrder => return self.days_since(DayAnchor::FirstOrder),
            Metric::TenureDays => return self.days_since(DayAnchor::FirstSeen),
            Metric::DaysSinceLastInteraction => return self.days_since(DayAnchor::LastInteraction),
            Metric::Window(wm, i) => {
                let w = self.window(s, i as usize);
                match wm {
                    WindowMetric::Orders => w.orders as f64,
                    WindowMetric::Monetary => w.amount as f64 / 100.0,
                    WindowMetric::Aov if w.orders > 0 => w.amount as f64 / 100.0 / w.orders as f64,
                    WindowMetric::Aov => return None,
                    WindowMetric::Visits => w.visits as f64,
                    WindowMetric::Complaints => w.complaints as f64,
                    WindowMetric::Satisfaction if w.surveys > 0 => {
                        w.sat_tenths as f64 / 10.0 / w.surveys as f64
                    }
                    WindowMetric::Satisfaction => return None,
                    WindowMetric::Touches => w.touches as f64,
                    WindowMetric::Conversions => w.conversions as f64,
                    WindowMetric::Participations => w.participations as f64,
                }
            }
            Metric::LifetimeOrders => self.lifetime_orders as f64,
            Metric::LifetimeValue => self.lifetime_value as f64 / 100.0,
            Metric::PurchaseDays => self.purchase_days as f64,
            Metric::OpenComplaints => self.open_complaints as f64,
            Metric::LastNps => return self.last_nps.map(|v| v as f64),
            Metric::ActivityScore => self.activity_score(s),
            Metric::ChurnRiskIndex => self.churn_risk_index(s),
            Metric::VisitDropPct => return self.visit_drop_pct(s),
            Metric::VisitsBaseline => self.visits_baseline(s) as f64,
            Metric::PAlive => return self.p_alive,
            Metric::ExpectedPurchases => return self.expected_purchases(s),
            Metric::ExpectedOrderValue => return self.expected_order_value(s),
            Metric::Clv => return clv_of(self.expected_purchases(s), self.expected_order_value(s)),
            // Ranked among the population: the processor's `Subject` answers it.
            Metric::ValueScore => return None,
        })
    }

    /// The next day on which time alone can change a fact or a rule outcome: a window
    /// expiry, a day-counter threshold of some rule, or tomorrow if a rule uses a
    /// continuously changing metric.
    pub fn next_deadline(&self, s: &Settings) -> Option<Day> {
        let mut best = self.next_expiry;
        let mut consider = |d: Day| {
            if d > self.today {
                best = Some(best.map_or(d, |b| b.min(d)));
            }
        };
        for &(anchor, threshold) in &s.day_thresholds {
            if let Some(a) = self.anchor(anchor) {
                let t = threshold.floor().clamp(-1e6, 1e6) as i32;
                consider(a.saturating_add(t));
                consider(a.saturating_add(t).saturating_add(1));
            }
        }
        if s.daily && self.first_order_day.is_some() {
            consider(self.today + 1);
        }
        best
    }
}
