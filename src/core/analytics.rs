//! Population analytics (DOMAIN.md §4–5): where a customer stands among all others (value
//! score, A/B/C/D value tier, ABC class, core customer); campaign effect is in
//! [`super::campaign`].
//!
//! Kept per partition and updated incrementally: a customer's spend (365 days),
//! activity and first-seen day sit in the [`Population`] sketches under the values of its
//! latest evaluation (an event, or a deadline firing), so no event scans other customers.
//! Ranks are estimates within the sketch's stated bound ([`super::sketch`]).
//!
//! Why value scores are not on profile records: a profile is a function of the customer's
//! own events, which keeps the compacted profile topic reproducible (`replay --profiles`
//! equals it). A percentile rank changes whenever anyone else buys, so it is served where
//! it is read: the customer look-up and the report.

use serde::{Deserialize, Serialize};

use super::scores::{Cuts, ValueTier};
use super::sketch::{RankSketch, RankWire, SpendSketch, SpendWire, WireError};

/// Activity values above this count in the top bucket (visits, participations and
/// conversions in the activity window; an activity score of 127.5 and above ranks as one).
pub const ACTIVITY_CAP: u32 = 255;

/// What a customer contributes to the sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    /// Spend bucket ([`SpendSketch::bucket`] of the 365-day net spend).
    pub spend: u16,
    /// Visits + participations + conversions in the activity window, capped at
    /// [`ACTIVITY_CAP`].
    pub activity: u8,
    /// First-seen day, packed.
    pub first_seen: u16,
}

/// Tenure bucket: later first-seen day → shorter tenure → lower bucket.
fn tenure_bucket(first_seen: u16) -> usize {
    (u16::MAX - first_seen) as usize
}

/// The per-partition sketches.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// 365-day spend.
    pub spend: SpendSketch,
    activity: RankSketch,
    tenure: RankSketch,
    /// The score cut-offs (`[analytics]`).
    cuts: Cuts,
}

/// A population's portable form (the sketches' non-zero tree cells).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopulationWire {
    /// Spend.
    pub spend: SpendWire,
    /// Activity.
    pub activity: RankWire,
    /// Tenure.
    pub tenure: RankWire,
}

/// Where one customer stands in the population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// 0.5 × spend + 0.3 × activity + 0.2 × tenure percentile (0–100).
    pub value_score: f64,
    /// `A` ≥ 85, `B` 70–85, `C` below 70; `D` when the churn risk index is ≥ 50.
    pub value_tier: &'static str,
    /// Percentile rank of the 365-day spend (0–100).
    pub spend_percentile: f64,
    /// Percentile rank of the activity score (0–100).
    pub activity_percentile: f64,
    /// Percentile rank of the tenure (0–100).
    pub tenure_percentile: f64,
    /// Pareto class by 365-day spend: `A` (top 70 % of spend), `B` (next 20 %), `C`.
    pub abc_class: &'static str,
    /// Among the top 10 % of customers by 365-day spend.
    pub core_customer: bool,
    /// Customers the ranks are taken among (this partition: a random sample).
    pub population: u64,
}

/// Value-tier name.
pub fn value_tier_name(t: ValueTier) -> &'static str {
    match t {
        ValueTier::A => "A",
        ValueTier::B => "B",
        ValueTier::C => "C",
        ValueTier::D => "D",
    }
}

impl Population {
    /// Empty sketches with relative accuracy `alpha` for spend.
    pub fn new(alpha: f64) -> Population {
        Population::with_cuts(alpha, Cuts::default())
    }

    /// Empty sketches that score with `cuts`.
    pub fn with_cuts(alpha: f64, cuts: Cuts) -> Population {
        Population {
            spend: SpendSketch::new(alpha),
            activity: RankSketch::new(ACTIVITY_CAP as usize + 1),
            tenure: RankSketch::new(u16::MAX as usize + 1),
            cuts,
        }
    }

    /// The keys of a customer with this 365-day spend (cents), activity count and packed
    /// first-seen day.
    pub fn keys(&self, spend_cents: i64, activity: u32, first_seen: u16) -> Keys {
        Keys {
            spend: self.spend.bucket(spend_cents),
            activity: activity.min(ACTIVITY_CAP) as u8,
            first_seen,
        }
    }

    /// Adds a customer.
    pub fn add(&mut self, k: Keys) {
        self.spend.add(k.spend);
        self.activity.add(k.activity as usize);
        self.tenure.add(tenure_bucket(k.first_seen));
    }

    /// Removes a customer added with `k`.
    pub fn remove(&mut self, k: Keys) {
        self.spend.remove(k.spend);
        self.activity.remove(k.activity as usize);
        self.tenure.remove(tenure_bucket(k.first_seen));
    }

    /// Customers held.
    pub fn len(&self) -> u64 {
        self.spend.len()
    }

    /// Whether no customer is held.
    pub fn is_empty(&self) -> bool {
        self.spend.is_empty()
    }

    /// The portable form: another instance merges it for a group-wide report.
    pub fn wire(&self) -> PopulationWire {
        PopulationWire {
            spend: self.spend.wire(),
            activity: self.activity.wire(),
            tenure: self.tenure.wire(),
        }
    }

    /// Adds another instance's population (same analytics settings).
    pub fn add_wire(&mut self, w: &PopulationWire) -> Result<(), WireError> {
        self.spend.add_wire(&w.spend)?;
        self.activity.add_wire(&w.activity)?;
        self.tenure.add_wire(&w.tenure)
    }

    /// Adds another partition's sketches.
    pub fn merge(&mut self, o: &Population) {
        self.spend.merge(&o.spend);
        self.activity.merge(&o.activity);
        self.tenure.merge(&o.tenure);
    }

    /// ABC class of a spend bucket: by the share of total spend made by customers who
    /// spend more (below 70 % → A, below 90 % → B, else C; no spend → C).
    pub fn abc(&self, spend: u16) -> &'static str {
        if spend == 0 {
            return "C";
        }
        match self.spend.share_above(spend) {
            Some(s) if s < self.cuts.abc_a => "A",
            Some(s) if s < self.cuts.abc_b => "B",
            _ => "C",
        }
    }

    /// Whether a spend bucket is in the top 10 % of customers by spend (and spends).
    pub fn is_core(&self, spend: u16) -> bool {
        // At bucket resolution the mid-rank decides: a bucket is core when its middle is
        // in the top 10 %.
        spend != 0
            && self
                .spend
                .percentile(spend)
                .is_some_and(|p| p >= self.cuts.core_from)
    }

    /// This population's customers by ABC class (A, B, C) and the core customers, each
    /// with their 365-day spend (cents, bucket representatives: within α), classified by
    /// the boundaries of `among` (all partitions merged, or this one).
    pub fn classes(&self, among: &Population) -> ([(u64, i64); 3], (u64, i64)) {
        let (a, b) = among.spend.abc_bounds(among.cuts.abc_a, among.cuts.abc_b);
        let n = self.spend.buckets();
        let class_a = self.spend.range(a, n);
        let class_b = self.spend.range(b, a.max(b));
        let class_c = self.spend.range(0, b.min(a));
        let core = self
            .spend
            .range(among.spend.core_bound(among.cuts.core_from), n);
        ([class_a, class_b, class_c], core)
    }

    /// The standing of a customer with keys `k` and churn risk index `risk`.
    pub fn standing(&self, k: Keys, risk: f64) -> Standing {
        let spend = self.spend.percentile(k.spend).unwrap_or(0.0);
        let activity = self.activity.percentile(k.activity as usize).unwrap_or(0.0);
        let tenure = self
            .tenure
            .percentile(tenure_bucket(k.first_seen))
            .unwrap_or(0.0);
        let score = self.cuts.score(spend, activity, tenure);
        Standing {
            value_score: score,
            value_tier: value_tier_name(self.cuts.value_tier(score, risk)),
            spend_percentile: spend,
            activity_percentile: activity,
            tenure_percentile: tenure,
            abc_class: self.abc(k.spend),
            core_customer: self.is_core(k.spend),
            population: self.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_population_sent_between_instances_merges_like_the_sketches() {
        let mut a = Population::new(0.01);
        let mut b = Population::new(0.01);
        for (i, p) in [&mut a, &mut b].into_iter().enumerate() {
            for c in 0..200i64 {
                let k = p.keys(
                    c * 1234 + i as i64 * 7,
                    (c % 17) as u32,
                    20_000 + (c % 300) as u16,
                );
                p.add(k);
            }
        }
        let mut merged = a.clone();
        merged.merge(&b);
        let mut sent = a.clone();
        let wire: PopulationWire =
            serde_json::from_slice(&serde_json::to_vec(&b.wire()).unwrap()).unwrap();
        sent.add_wire(&wire).unwrap();
        assert_eq!(sent, merged);
        assert!(
            Population::new(0.05).add_wire(&wire).is_err(),
            "another accuracy is refused"
        );
    }

    #[test]
    fn value_tiers_on_domain_examples() {
        // Ten customers with spends 1..=10 (×100 units), equal activity and tenure: the
        // top spender's score is 0.5 × 95 + 0.3 × 50 + 0.2 × 50 = 72.5 → B.
        let mut p = Population::new(0.01);
        let keys: Vec<Keys> = (1..=10).map(|i| p.keys(i * 10_000, 4, 100)).collect();
        for k in &keys {
            p.add(*k);
        }
        let top = p.standing(keys[9], 0.0);
        assert_eq!(top.spend_percentile, 95.0);
        assert_eq!(top.value_score, 72.5);
        assert_eq!(top.value_tier, "B");
        assert!(top.core_customer);
        assert!(!p.standing(keys[8], 0.0).core_customer);
        assert_eq!(p.standing(keys[0], 0.0).value_tier, "C");
        assert_eq!(
            p.standing(keys[9], 50.0).value_tier,
            "D",
            "risk overrides value"
        );
        // ABC: total 55. Spend above 6 is 34/55 = 62 % → A; above 5 it is 40/55 = 73 %
        // → B; above 3 it is 49/55 = 89 % → B; above 2 it is 52/55 = 95 % → C.
        let abc: Vec<&str> = keys.iter().map(|k| p.abc(k.spend)).collect();
        assert_eq!(abc, ["C", "C", "B", "B", "B", "A", "A", "A", "A", "A"]);
    }
}
