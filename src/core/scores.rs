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

/// Value tier from a 0–100 value score and the churn risk index.
pub fn value_tier(score: f64, risk_index: f64) -> ValueTier {
    if risk_index >= 50.0 {
        ValueTier::D
    } else if score >= 85.0 {
        ValueTier::A
    } else if score >= 70.0 {
        ValueTier::B
    } else {
        ValueTier::C
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
    }

    #[test]
    fn visit_drop() {
        assert_eq!(visit_drop_pct(3, 30, 30, 90), Some(70.0));
        assert_eq!(visit_drop_pct(10, 30, 30, 90), Some(0.0));
        assert_eq!(visit_drop_pct(0, 0, 30, 90), None);
    }
}
