//! The population report of DOMAIN.md §5: what the monthly report shows, kept live by
//! each partition's processor. Each partition's processor produces mergeable sums
//! ([`ReportSums`]); the adapter merges them and [`ReportSums::finish`]es the figures.
//!
//! Definitions (the source documents leave them open; these are ours):
//! - per tier: customers, share of all customers, average order value (lifetime net spend
//!   ÷ lifetime orders), average frequency (lifetime orders ÷ customers), total spend
//!   (lifetime, net of refunds); customers without a tier yet count in the fallback tier;
//! - the *period* is the churn-risk window (`facts.risk_window_days`, 90 days by default):
//!   retention is the share of customers who ordered in the period before the last one
//!   (days 91–180) and ordered again in the last one (days 1–90); the complaint rate is
//!   the share of customers with a complaint in the last period; mean satisfaction is
//!   over the survey answers of the last period;
//! - active customers ordered within the longest window (365 days by default);
//! - repurchase rate: the share of customers with at least two orders (lifetime);
//! - NPS: % promoters (9–10) − % detractors (0–6) over each customer's latest answer;
//! - tier transitions: counts since the processor started, and per day of event time;
//! - ABC classes and core customers: from the spend sketch ([`super::analytics`]), as of
//!   each customer's latest evaluation, spends within the sketch's accuracy; value tiers:
//!   counted on a sample of at most 20,000 customers per partition (exact below that);
//! - campaigns: the partition's running campaign figures, merged by campaign id.
//!
//! Kept live: each customer's change moves its own part of the sums (per-tier and overall
//! totals, repeat buyers, NPS) and of a day-indexed [`Timeline`] (retention, active
//! customers, complaint rate, satisfaction), so a report is a sum over days, never a pass
//! over the customers. Warnings open and transitions are the processor's live counts.

use serde::Serialize;

use super::campaign::{campaign_line, merge_campaigns, CampaignLine, CampaignSums};
use super::days;
use super::settings::Settings;
use super::time::{format_rfc3339, Day, DAY_MS};

/// Sums of one tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct TierSums {
    /// Customers.
    pub customers: u64,
    /// Lifetime orders.
    pub orders: u64,
    /// Lifetime net spend, cents.
    pub spend_cents: i64,
}

/// Mergeable sums behind the report (serializable: instances exchange them for a
/// group-wide report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ReportSums {
    /// Day the figures are computed at.
    pub as_of_day: Day,
    /// By tier (indexed like `Settings::tiers`).
    pub tiers: Vec<TierSums>,
    /// Customers.
    pub customers: u64,
    /// Customers with an order in the longest window.
    pub active: u64,
    /// Customers with at least two lifetime orders.
    pub repeat_buyers: u64,
    /// Customers who ordered in the previous period.
    pub previous_buyers: u64,
    /// …of whom ordered again in the last period.
    pub retained: u64,
    /// Lifetime orders.
    pub orders: u64,
    /// Lifetime net spend, cents.
    pub spend_cents: i64,
    /// Customers with a complaint in the last period.
    pub complainers: u64,
    /// Satisfaction answers in the last period and their sum in tenths.
    pub surveys: u64,
    /// Sum of satisfaction answers, tenths.
    pub sat_tenths: u64,
    /// Customers with an NPS answer, promoters (9–10), detractors (0–6).
    pub nps: [u64; 3],
    /// Customers by warning level (low, medium, high).
    pub warnings: [u64; 3],
    /// Tier transitions: `from * tiers + to`, `from = tiers` for new customers.
    pub transitions: Vec<u64>,
    /// Days of event time the transitions cover (first to last event day, at least 1).
    pub span_days: u64,
    /// Whether the analytics figures below were computed.
    pub analytics: bool,
    /// Customers by value tier A, B, C, D.
    pub value_tiers: [u64; 4],
    /// ABC classes A, B, C: customers and their 365-day spend (cents).
    pub abc: [(u64, i64); 3],
    /// Core customers and their 365-day spend (cents).
    pub core: (u64, i64),
    /// 365-day spend of all customers (cents).
    pub spend_365_cents: i64,
    /// Campaign figures (merged by name).
    pub campaigns: Vec<CampaignSums>,
    /// The input's data quality (the processors' counts, see [`super::quality`]).
    pub quality: super::quality::QualitySums,
    /// Saved-customer figures per warning rule (`super::care`).
    pub saved: super::care::SavedSums,
}

/// A group of customers and its share of customers and of 365-day spend.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShareLine {
    /// Customers.
    pub customers: u64,
    /// Share of all customers (0–1).
    pub share_of_customers: f64,
    /// Their 365-day net spend.
    pub spend_365: f64,
    /// Share of all customers' 365-day spend (0–1; `null` without spend).
    pub share_of_spend: Option<f64>,
}

/// Population analytics of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnalyticsReport {
    /// Customers by value tier (`A` ≥ 85, `B` 70–85, `C` < 70, `D` churn risk ≥ 50).
    pub value_tiers: std::collections::BTreeMap<&'static str, u64>,
    /// ABC classes by 365-day spend (A: top 70 % of spend, B: next 20 %, C: last 10 %).
    pub abc_classes: std::collections::BTreeMap<&'static str, ShareLine>,
    /// The top 10 % of customers by 365-day spend.
    pub core_customers: ShareLine,
    /// Campaign effect, by campaign id; `other` (beyond the tracked limit) last.
    pub campaigns: Vec<CampaignLine>,
}

/// One tier's line of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TierLine {
    /// Tier name.
    pub tier: String,
    /// Customers in the tier.
    pub customers: u64,
    /// Share of all customers (0–1).
    pub share: f64,
    /// Lifetime net spend ÷ lifetime orders (`null` without orders).
    pub average_order_value: Option<f64>,
    /// Lifetime orders ÷ customers.
    pub average_frequency: Option<f64>,
    /// Lifetime net spend.
    pub total_spend: f64,
}

/// A tier transition count.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransitionLine {
    /// Previous tier (`null` for new customers).
    pub from: Option<String>,
    /// New tier.
    pub to: String,
    /// How many.
    pub count: u64,
    /// Per day of event time covered.
    pub per_day: f64,
}

/// Warnings open by level.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenWarnings {
    /// Medium.
    pub medium: u64,
    /// High.
    pub high: u64,
}

/// The population-wide figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overall {
    /// Customers held.
    pub customers: u64,
    /// Customers with an order in the last `active_window_days`.
    pub active_customers: u64,
    /// Share with at least two lifetime orders.
    pub repurchase_rate: Option<f64>,
    /// Share of the previous period's buyers who bought again in the last period.
    pub retention: Option<f64>,
    /// Lifetime net spend ÷ lifetime orders.
    pub average_order_value: Option<f64>,
    /// Share of customers with a complaint in the last period.
    pub complaint_rate: Option<f64>,
    /// Mean satisfaction (1–5) of the last period's answers.
    pub mean_satisfaction: Option<f64>,
    /// % promoters − % detractors (−100 to 100) over latest answers.
    pub nps: Option<f64>,
    /// Warnings open.
    pub warnings_open: OpenWarnings,
}

/// `churnwatch.report.v2`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Schema name.
    pub schema: &'static str,
    /// The reporting currency (ISO 4217, `money.currency`) of every money figure below.
    pub currency: String,
    /// The instant the figures are for.
    pub as_of: String,
    /// The period of retention, complaint rate and satisfaction.
    pub period_days: u16,
    /// The window of "active".
    pub active_window_days: u16,
    /// Per tier, in rule order, the fallback last.
    pub tiers: Vec<TierLine>,
    /// Population-wide figures.
    pub overall: Overall,
    /// Tier transitions with a non-zero count.
    pub tier_transitions: Vec<TransitionLine>,
    /// Value tiers, ABC classes, core customers and campaigns (`null` with analytics off).
    pub analytics: Option<AnalyticsReport>,
    /// The input's data quality by event type.
    pub data_quality: super::quality::DataQuality,
    /// Saved customers per warning rule: warnings raised, acted on, done, overdue,
    /// recovered (over each customer's latest warning; README "Interventions").
    pub interventions: Vec<super::care::SavedLine>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The period used for retention, complaints and satisfaction (the churn-risk window).
pub fn period_days(s: &Settings) -> u16 {
    s.lengths[s.risk_len.0]
}

impl ReportSums {
    /// Empty sums for `s`'s tiers.
    pub fn new(s: &Settings, as_of_day: Day) -> ReportSums {
        let n = s.tiers.len();
        ReportSums {
            as_of_day,
            tiers: vec![TierSums::default(); n],
            transitions: vec![0; (n + 1) * n],
            saved: super::care::SavedSums::new(s.warnings.len()),
            ..Default::default()
        }
    }

    /// Adds one customer. `tier` is its tier index (fallback if none yet).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_customer(
        &mut self,
        s: &Settings,
        tier: usize,
        orders: u32,
        spend_cents: i64,
        last_nps: Option<u8>,
        level: u8,
        last_order_day: Option<Day>,
        history: &[u8],
    ) {
        let t = &mut self.tiers[tier];
        t.customers += 1;
        t.orders += orders as u64;
        t.spend_cents += spend_cents;
        self.customers += 1;
        self.orders += orders as u64;
        self.spend_cents += spend_cents;
        if orders >= 2 {
            self.repeat_buyers += 1;
        }
        let today = self.as_of_day;
        let longest = *s.windows.last().unwrap_or(&365) as i32;
        if last_order_day.is_some_and(|d| today - d < longest && d <= today) {
            self.active += 1;
        }
        if let Some(n) = last_nps {
            self.nps[0] += 1;
            if n >= 9 {
                self.nps[1] += 1;
            } else if n <= 6 {
                self.nps[2] += 1;
            }
        }
        self.warnings[(level as usize).min(2)] += 1;
        let period = period_days(s) as i32;
        let (mut last_orders, mut prev_orders, mut complaints) = (0u32, 0u32, 0u32);
        for e in days::iter(history) {
            let age = today - e.day;
            if !(0..2 * period).contains(&age) {
                continue;
            }
            if age < period {
                last_orders += e.counts.orders;
                complaints += e.counts.complaints;
                self.surveys += e.counts.surveys as u64;
                self.sat_tenths += e.counts.sat_tenths as u64;
            } else {
                prev_orders += e.counts.orders;
            }
        }
        if prev_orders > 0 {
            self.previous_buyers += 1;
            if last_orders > 0 {
                self.retained += 1;
            }
        }
        if complaints > 0 {
            self.complainers += 1;
        }
    }

    /// Adds another partition's sums.
    pub fn merge(&mut self, o: &ReportSums) {
        self.analytics |= o.analytics;
        for i in 0..4 {
            self.value_tiers[i] += o.value_tiers[i];
        }
        for i in 0..3 {
            self.abc[i].0 += o.abc[i].0;
            self.abc[i].1 += o.abc[i].1;
        }
        self.core.0 += o.core.0;
        self.core.1 += o.core.1;
        self.spend_365_cents += o.spend_365_cents;
        let mut all = std::mem::take(&mut self.campaigns);
        all.extend(o.campaigns.iter().cloned());
        self.campaigns = merge_campaigns(&all);
        self.saved.merge(&o.saved);
        self.as_of_day = self.as_of_day.max(o.as_of_day);
        for (a, b) in self.tiers.iter_mut().zip(&o.tiers) {
            a.customers += b.customers;
            a.orders += b.orders;
            a.spend_cents += b.spend_cents;
        }
        for (a, b) in self.transitions.iter_mut().zip(&o.transitions) {
            *a += b;
        }
        self.customers += o.customers;
        self.active += o.active;
        self.repeat_buyers += o.repeat_buyers;
        self.previous_buyers += o.previous_buyers;
        self.retained += o.retained;
        self.orders += o.orders;
        self.spend_cents += o.spend_cents;
        self.complainers += o.complainers;
        self.surveys += o.surveys;
        self.sat_tenths += o.sat_tenths;
        for i in 0..3 {
            self.nps[i] += o.nps[i];
            self.warnings[i] += o.warnings[i];
        }
        self.span_days = self.span_days.max(o.span_days);
        self.quality.merge(&o.quality);
    }

    /// The report's figures.
    pub fn finish(&self, s: &Settings) -> Report {
        let n = s.tiers.len();
        let total = self.customers as f64;
        let mut order: Vec<usize> = (0..n).filter(|&i| i != s.fallback_tier()).collect();
        order.push(s.fallback_tier());
        let tiers = order
            .into_iter()
            .map(|i| {
                let t = &self.tiers[i];
                TierLine {
                    tier: s.tiers[i].name.clone(),
                    customers: t.customers,
                    share: ratio(t.customers as f64, total).unwrap_or(0.0),
                    average_order_value: ratio(t.spend_cents as f64 / 100.0, t.orders as f64),
                    average_frequency: ratio(t.orders as f64, t.customers as f64),
                    total_spend: t.spend_cents as f64 / 100.0,
                }
            })
            .collect();
        let span = self.span_days.max(1) as f64;
        let mut tier_transitions = Vec::new();
        for (i, c) in self.transitions.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let (from, to) = (i / n, i % n);
            tier_transitions.push(TransitionLine {
                from: s.tiers.get(from).map(|t| t.name.clone()),
                to: s.tiers[to].name.clone(),
                count: *c,
                per_day: *c as f64 / span,
            });
        }
        Report {
            schema: "churnwatch.report.v2",
            currency: s.limits.money.reporting.as_str().to_string(),
            as_of: format_rfc3339(self.as_of_day as i64 * DAY_MS).into(),
            period_days: period_days(s),
            active_window_days: *s.windows.last().unwrap_or(&365),
            tiers,
            overall: Overall {
                customers: self.customers,
                active_customers: self.active,
                repurchase_rate: ratio(self.repeat_buyers as f64, total),
                retention: ratio(self.retained as f64, self.previous_buyers as f64),
                average_order_value: ratio(self.spend_cents as f64 / 100.0, self.orders as f64),
                complaint_rate: ratio(self.complainers as f64, total),
                mean_satisfaction: ratio(self.sat_tenths as f64 / 10.0, self.surveys as f64),
                nps: ratio(
                    (self.nps[1] as f64 - self.nps[2] as f64) * 100.0,
                    self.nps[0] as f64,
                ),
                warnings_open: OpenWarnings {
                    medium: self.warnings[1],
                    high: self.warnings[2],
                },
            },
            tier_transitions,
            analytics: self.analytics.then(|| {
                let share = |(n, cents): (u64, i64)| ShareLine {
                    customers: n,
                    share_of_customers: ratio(n as f64, total).unwrap_or(0.0),
                    spend_365: cents as f64 / 100.0,
                    share_of_spend: (self.spend_365_cents > 0)
                        .then(|| cents as f64 / self.spend_365_cents as f64),
                };
                AnalyticsReport {
                    value_tiers: ["A", "B", "C", "D"]
                        .into_iter()
                        .zip(self.value_tiers)
                        .collect(),
                    abc_classes: ["A", "B", "C"]
                        .into_iter()
                        .zip(self.abc.map(share))
                        .collect(),
                    core_customers: share(self.core),
                    campaigns: merge_campaigns(&self.campaigns)
                        .iter()
                        .map(campaign_line)
                        .collect(),
                }
            }),
            data_quality: self.quality.finish(),
            interventions: self.saved.lines(s),
        }
    }
}

mod timeline;
pub use timeline::*;

#[cfg(test)]
mod tests {
    use super::timeline::merge;
    use super::*;

    #[test]
    fn intervals_merge_and_intersect() {
        let mut v = vec![(5, 10), (1, 3), (2, 4), (10, 12)];
        merge(&mut v);
        assert_eq!(v, [(1, 4), (5, 12)]);
        let mut t = Timeline::default();
        let mut up = [0; TIMED];
        up[0] = 1;
        t.apply(&[(3, up), (7, up.map(|x| -x))], 1);
        assert_eq!(t.at(2)[0], 0);
        assert_eq!(t.at(3)[0], 1);
        assert_eq!(t.at(7)[0], 0);
        t.apply(&[(3, up), (7, up.map(|x| -x))], -1);
        assert!(
            t.is_empty(),
            "removing a contribution leaves nothing behind"
        );
    }
}
