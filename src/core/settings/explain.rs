//! `check-config`'s account of a compiled rule set: every tier, warning, score and
//! period in words.

use std::fmt::Write;

use super::{Level, Settings};
use crate::core::rules::Rule;

impl Settings {
    /// The rule set in words, for `check-config`.
    pub fn explain(&self) -> String {
        let w = &self.windows;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Windows: {:?} days; history kept per customer: {} days.",
            w, self.retention_days
        );
        let m = &self.limits.money;
        let _ = write!(
            s,
            "Money: every amount and threshold in {} (rounded once, half-even); without `currency`: {}; rates:",
            m.reporting.as_str(),
            match m.missing {
                crate::core::money::MissingCurrency::Reporting => "taken as the reporting currency",
                crate::core::money::MissingCurrency::Reject => "rejected",
            }
        );
        if m.rates.is_empty() {
            let _ = write!(
                s,
                " none (other currencies are rejected as unknown_currency)"
            );
        }
        for r in &m.rates {
            let rate = r.rate.digits as f64 / 10f64.powi(r.rate.scale);
            let _ = write!(
                s,
                " {} {rate} from {};",
                r.currency.as_str(),
                crate::core::time::format_rfc3339(r.from)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Events later than {} s behind the newest are counted as late.",
            self.allowed_lateness_ms / 1000
        );
        let _ = writeln!(
            s,
            "\nTiers (checked in this order; the first that matches wins):"
        );
        for (i, t) in self.tiers.iter().enumerate() {
            match &t.rule {
                Some(r) => {
                    let _ = writeln!(s, "  {}. {} when {}", i + 1, t.name, words(r, w));
                }
                None => {
                    let _ = writeln!(s, "  {}. {} otherwise", i + 1, t.name);
                }
            }
            let _ = writeln!(s, "     action: {}", t.action);
        }
        let mut best: Vec<(u8, &str)> = self
            .tier_rank
            .iter()
            .zip(&self.tiers)
            .map(|(r, t)| (*r, t.name.as_str()))
            .collect();
        best.sort();
        let best: Vec<&str> = best.into_iter().map(|(_, n)| n).collect();
        let _ = writeln!(
            s,
            "  Best tier first: {} (tiers.ranking; the profile's peak_tier is the best tier ever held)",
            best.join(", ")
        );
        let _ = writeln!(s, "\nChurn warnings (the highest matching level counts; raised when it rises, cleared when it falls to low):");
        for wr in &self.warnings {
            let _ = write!(
                s,
                "  {} ({}) when {}",
                wr.rule.name,
                wr.level.name(),
                words(&wr.rule, w)
            );
            match wr.sla_ms {
                Some(ms) => {
                    let _ = writeln!(s, "; due within {} h", ms / 3_600_000);
                }
                None => {
                    let _ = writeln!(s);
                }
            }
        }
        for lvl in [Level::High, Level::Medium] {
            let _ = writeln!(
                s,
                "  {}: due within {} h; action: {}",
                lvl.name(),
                self.sla_ms[lvl as usize] / 3_600_000,
                self.level_action[lvl as usize]
            );
        }
        let _ = writeln!(
            s,
            "  low: no warning event; action: {}",
            self.level_action[0]
        );
        match self.bgnbd {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "\nChurn probability: BG/NBD r={} alpha={} a={} b={} (time unit {} days), expected purchases over {} days.",
                    p.r, p.alpha, p.a, p.b, self.unit_days, self.horizon_days
                );
            }
            None => {
                let _ = writeln!(s, "\nChurn probability: disabled.");
            }
        }
        match self.spend_model {
            Some(g) => {
                let _ = writeln!(
                    s,
                    "CLV: expected purchases over {} days x Gamma-Gamma expected order value (p={} q={} v={}).",
                    self.horizon_days, g.p, g.q, g.v
                );
            }
            None => {
                let _ = writeln!(s, "CLV: disabled.");
            }
        }
        match self.analytics {
            Some(a) => {
                let c = a.cuts;
                let pct = |share: f64| (share * 1000.0).round() / 10.0;
                let _ = writeln!(
                    s,
                    "Analytics: value score = {} x spend + {} x activity + {} x tenure percentile; value tiers A >= {}, B >= {}, C below, D when churn risk >= {}; ABC {}/{}/{} % of {}-day spend; core = top {} % by spend. Spend ranks within +-{:.1} % of the spend; {} campaigns tracked by name per partition; campaign revenue = orders of converted customers within {} days of the conversion.",
                    c.weights[0],
                    c.weights[1],
                    c.weights[2],
                    c.tier_a,
                    c.tier_b,
                    c.risk_d,
                    pct(c.abc_a),
                    pct(c.abc_b - c.abc_a),
                    pct(1.0 - c.abc_b),
                    self.windows.last().copied().unwrap_or(0),
                    pct(1.0 - c.core_from / 100.0),
                    200.0 * a.relative_accuracy,
                    a.max_campaigns,
                    a.attribution_window_days
                );
            }
            None => {
                let _ = writeln!(s, "Analytics: disabled.");
            }
        }
        s
    }
}

fn words(r: &Rule, w: &[u16]) -> String {
    let all: Vec<String> = r.all.iter().map(|c| c.describe(w)).collect();
    let any: Vec<String> = r.any.iter().map(|c| c.describe(w)).collect();
    let mut s = all.join(" and ");
    if !any.is_empty() {
        if !s.is_empty() {
            s.push_str(", and ");
        }
        s.push_str("either ");
        s.push_str(&any.join(" or "));
    }
    for (seg, b) in &r.segments {
        let all: Vec<String> = b.all.iter().map(|c| c.describe(w)).collect();
        let any: Vec<String> = b.any.iter().map(|c| c.describe(w)).collect();
        let _ = write!(s, "; for segment {seg} instead: {}", all.join(" and "));
        if !any.is_empty() {
            let _ = write!(
                s,
                "{}either {}",
                if all.is_empty() { "" } else { ", and " },
                any.join(" or ")
            );
        }
    }
    s
}
