//! The population report's figures as gauges (`churnwatch_report_*`): refreshed from the
//! live report at scrape time, so Grafana shows what `/v1/report` shows.

use super::{Metrics, INTERVENTION_FIGURES};

/// Figures of the report's overall section exported as `churnwatch_report_overall`.
const OVERALL_FIGURES: [&str; 6] = [
    "repurchase_rate",
    "retention",
    "complaint_rate",
    "mean_satisfaction",
    "nps",
    "active_customers",
];

/// Figures per campaign exported as `churnwatch_report_campaign` (customer counts are
/// distinct customers, as in the report).
const CAMPAIGN_FIGURES: [&str; 8] = [
    "touched",
    "participated",
    "converted",
    "conversion_rate",
    "cost",
    "revenue",
    "roi",
    "mean_satisfaction",
];

impl Metrics {
    pub(super) fn update_report(&self, r: &crate::core::report::Report) {
        for l in &r.interventions {
            let figures = [
                Some(l.raised as f64),
                Some(l.acted as f64),
                Some(l.acknowledged as f64),
                Some(l.done as f64),
                Some(l.dismissed as f64),
                Some(l.overdue as f64),
                Some(l.overdue_open as f64),
                Some(l.recovered as f64),
                l.recovery_rate,
                l.median_hours_to_first_action,
            ];
            for (f, v) in INTERVENTION_FIGURES.iter().zip(figures) {
                self.report_interventions
                    .with_label_values(&[&l.rule, l.level, f])
                    .set(v.unwrap_or(0.0));
            }
        }
        let o = &r.overall;
        let overall = [
            o.repurchase_rate,
            o.retention,
            o.complaint_rate,
            o.mean_satisfaction,
            o.nps,
            Some(o.active_customers as f64),
        ];
        self.report_overall.reset();
        for (name, v) in OVERALL_FIGURES.iter().zip(overall) {
            if let Some(v) = v {
                self.report_overall.with_label_values(&[name]).set(v);
            }
        }
        let Some(a) = &r.analytics else {
            return;
        };
        for (t, n) in &a.value_tiers {
            self.report_value_tier
                .with_label_values(&[t])
                .set(*n as i64);
        }
        for (c, l) in &a.abc_classes {
            self.report_abc_customers
                .with_label_values(&[c])
                .set(l.customers as i64);
            self.report_abc_spend_share
                .with_label_values(&[c])
                .set(l.share_of_spend.unwrap_or(0.0));
        }
        self.report_core.set(a.core_customers.customers as i64);
        self.report_core_spend_share
            .set(a.core_customers.share_of_spend.unwrap_or(0.0));
        // Campaign ids are operator-chosen names, bounded by analytics.max_campaigns.
        self.report_campaign.reset();
        for c in &a.campaigns {
            let figures = [
                Some(c.touched as f64),
                Some(c.participated as f64),
                Some(c.converted as f64),
                c.conversion_rate,
                Some(c.cost),
                Some(c.revenue),
                c.roi,
                c.mean_satisfaction,
            ];
            for (f, v) in CAMPAIGN_FIGURES.iter().zip(figures) {
                if let Some(v) = v {
                    self.report_campaign
                        .with_label_values(&[c.campaign.as_str(), f])
                        .set(v);
                }
            }
        }
    }
}
