//! Scores of DOMAIN.md §4 as plain functions of window facts.

/// Activity score = (visits + campaign participations) / 2 over the activity window.
/// DOMAIN examples: 20 visits + 3 campaigns → 11.5; 5 + 1 → 3.
pub fn activity_score(visits: u32, campaign_participations: u32) -> f64 {
    (visits as f64 + campaign_participations as f64) / 2.0
}

/// Purchase-frequency decline rate: max(0, (previous − recent) / previous), 0 when the
/// previous period had no orders.
pub fn decline_rate(orders_recent: u32, orders_previous: u32) -> f64 {
    if orders_previous == 0 {
        return 0.0;
    }
    ((orders_previous as f64 - orders_recent as f64) / orders_previous as f64).max(0.0)
}

/// Churn risk index = (decline rate + complaints × 0.5) × 100.
pub fn churn_risk_index(orders_recent: u32, orders_previous: u32, complaints: u32) -> f64 {
    (decline_rate(orders_recent, orders_previous) + complaints as f64 * 0.5) * 100.0
}

/// Visit drop in percent: recent visits against the baseline average scaled to the
/// recent period's length. `None` when the baseline had no visits.
pub fn visit_drop_pct(
    recent: u32,
    baseline: u32,
    recent_days: u16,
    baseline_days: u16,
) -> Option<f64> {
    if baseline == 0 || baseline_days == 0 {
        return None;
    }
    let expected = baseline as f64 * recent_days as f64 / baseline_days as f64;
    Some((expected - recent as f64) / expected * 100.0)
}

/// Value-score tiers: A ≥ 85, B 70–85, C below 70, and D whenever the churn risk index
/// is at least 50 (risk overrides value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueTier {
    /// Score ≥ 85.
    A,
    /// 70 ≤ score < 85.
    B,
    /// Score < 70.
    C,
    /// Churn risk index ≥ 50.
    D,
}

/// Value tier from a 0–100 value score and the churn risk index, with the default cuts.
pub fn value_tier(score: f64, risk_index: f64) -> ValueTier {
    Cuts::default().value_tier(score, risk_index)
}

/// The population scores' numbers (`[analytics]`): value-score weights, value-tier
/// thresholds, the risk override, the ABC shares and the core share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cuts {
    /// Weights of the spend, activity and tenure percentiles (sum 1).
    pub weights: [f64; 3],
    /// Score at or above which the value tier is A.
    pub tier_a: f64,
    /// Score at or above which the value tier is B.
    pub tier_b: f64,
    /// Churn risk index at or above which the value tier is D.
    pub risk_d: f64,
    /// Share (0–1) of the total spend above a customer below which it is class A …
    pub abc_a: f64,
    /// … and class B (A's share plus B's).
    pub abc_b: f64,
    /// Spend percentile (0–100) from which a customer is core (100 − core percent).
    pub core_from: f64,
}

impl Default for Cuts {
    fn default() -> Cuts {
        Cuts {
            weights: [0.5, 0.3, 0.2],
            tier_a: 85.0,
            tier_b: 70.0,
            risk_d: 50.0,
            abc_a: 0.7,
            abc_b: 0.9,
            core_from: 90.0,
        }
    }
}

impl Cuts {
    /// Value tier from a 0–100 value score and the churn risk index.
    pub fn value_tier(&self, score: f64, risk_index: f64) -> ValueTier {
        if risk_index >= self.risk_d {
            ValueTier::D
        } else if score >= self.tier_a {
            ValueTier::A
        } else if score >= self.tier_b {
            ValueTier::B
        } else {
            ValueTier::C
        }
    }

    /// The value score of three percentiles (spend, activity, tenure).
    pub fn score(&self, spend: f64, activity: f64, tenure: f64) -> f64 {
        let [ws, wa, wt] = self.weights;
        ws * spend + wa * activity + wt * tenure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_examples() {
        assert_eq!(activity_score(20, 3), 11.5);
        assert_eq!(activity_score(5, 1), 3.0);
    }

    #[test]
    fn risk_index() {
        assert_eq!(churn_risk_index(1, 4, 0), 75.0);
        assert_eq!(churn_risk_index(5, 4, 0), 0.0, "growth is no decline");
        assert_eq!(
            churn_risk_index(0, 0, 1),
            50.0,
            "no earlier orders: complaints only"
        );
        assert_eq!(churn_risk_index(2, 4, 2), 150.0);
    }

    #[test]
    fn value_tiers_with_risk_override() {
        assert_eq!(value_tier(92.0, 0.0), ValueTier::A);
        assert_eq!(value_tier(75.0, 10.0), ValueTier::B);
        assert_eq!(value_tier(58.0, 0.0), ValueTier::C);
        // 58 with low frequency (no decline measurable) and one complaint → risk 50 → D.
        assert_eq!(value_tier(58.0, churn_risk_index(0, 0, 1)), ValueTier::D);
        assert_eq!(value_tier(92.0, 50.0), ValueTier::D, "risk overrides value");
        let c = Cuts {
            tier_a: 90.0,
            risk_d: 60.0,
            ..Cuts::default()
        };
        assert_eq!(c.value_tier(88.0, 55.0), ValueTier::B);
        assert_eq!(c.value_tier(90.0, 60.0), ValueTier::D);
    }

    #[test]
    fn visit_drop() {
        assert_eq!(visit_drop_pct(3, 30, 30, 90), Some(70.0));
        assert_eq!(visit_drop_pct(10, 30, 30, 90), Some(0.0));
        assert_eq!(visit_drop_pct(0, 0, 30, 90), None);
    }
}
