//! The core's configuration: the serde shape of the rule-set sections of a config file
//! ([`CoreConfig`]) and its validated, compiled form ([`Settings`]) that the processor uses.
//!
//! Parsing text is pure; reading files and the environment is the `config` adapter's job.

use std::sync::Arc;

use super::rules::{DayAnchor, Metric, Rule, SegmentSpec, Test, Vocab};
use super::time::parse_duration_ms;

/// The embedded default rule set (`config/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

mod explain;
mod routing;
mod sections;
use sections::{compile_cuts, compile_money, duration, rules_version, tier_ranking};
mod shape;
pub use routing::{
    EscalationConfig, Interventions, InterventionsConfig, OwnerRule, OwnerRuleConfig,
};
pub use shape::*;

/// Warning levels. `Low` means "no warning".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// No warning.
    Low = 0,
    /// Medium.
    Medium = 1,
    /// High.
    High = 2,
}

impl Level {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
    /// From the stored byte.
    pub fn from_u8(v: u8) -> Level {
        match v {
            2 => Level::High,
            1 => Level::Medium,
            _ => Level::Low,
        }
    }
}

/// A compiled tier.
#[derive(Debug, Clone)]
pub struct Tier {
    /// Name (also the rule name).
    pub name: String,
    /// Recommended action (shared: every tier change carries it).
    pub action: Arc<str>,
    /// Matching rule; `None` for the fallback.
    pub rule: Option<Rule>,
    /// Time to act on a change into this tier (`sla` of its rule), ms.
    pub sla_ms: Option<i64>,
}

/// A compiled warning rule.
#[derive(Debug, Clone)]
pub struct WarningRule {
    /// The rule.
    pub rule: Rule,
    /// Its level.
    pub level: Level,
    /// Time to act on a warning this rule decides (its `sla`; else the level's), ms.
    pub sla_ms: Option<i64>,
}

/// BG/NBD parameters in model units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// r
    pub r: f64,
    /// alpha
    pub alpha: f64,
    /// a
    pub a: f64,
    /// b
    pub b: f64,
}

/// A validated rule set, ready for the processor.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Input limits.
    pub limits: Limits,
    /// Watermark lag.
    pub allowed_lateness_ms: i64,
    /// Rolling windows (days), ascending.
    pub windows: Vec<u16>,
    /// Every period length the facts need (windows and the score periods), ascending.
    pub lengths: Vec<u16>,
    /// Index in `lengths` of each window.
    pub window_len: Vec<usize>,
    /// Index in `lengths` of the activity window.
    pub activity_len: usize,
    /// Index in `lengths` of the risk period and of twice the risk period.
    pub risk_len: (usize, usize),
    /// Index in `lengths` of the recent visit period and of recent + baseline.
    pub visit_len: (usize, usize),
    /// Baseline months (baseline days / 30) for the monthly average.
    pub visit_baseline_days: u16,
    /// Days of history kept per customer (the longest length).
    pub retention_days: u16,
    /// Tenure threshold for lifecycle "new".
    pub new_customer_days: u16,
    /// BG/NBD parameters, if enabled.
    pub bgnbd: Option<BgNbdParams>,
    /// Days per BG/NBD time unit.
    pub unit_days: f64,
    /// Horizon of expected purchases in days.
    pub horizon_days: u16,
    /// Gamma-Gamma spend model, when CLV is enabled.
    pub spend_model: Option<GammaGammaParams>,
    /// Population analytics, when enabled.
    pub analytics: Option<AnalyticsSettings>,
    /// Tiers in evaluation order; the last is the fallback.
    pub tiers: Vec<Tier>,
    /// Rank of each tier (indexed like `tiers`; 0 = best), from `tiers.ranking`.
    pub tier_rank: Vec<u8>,
    /// Warning rules.
    pub warnings: Vec<WarningRule>,
    /// SLA in ms for medium and high.
    pub sla_ms: [i64; 3],
    /// Action per level (low, medium, high).
    pub level_action: [Arc<str>; 3],
    /// Day-counter thresholds used by any rule: (anchor, threshold days), for timers.
    pub day_thresholds: Vec<(DayAnchor, f64)>,
    /// Some rule uses a continuously changing metric: re-evaluate daily.
    pub daily: bool,
    /// Some rule reads the population standing (value score, value tier, ABC, core).
    pub uses_standing: bool,
    /// Per period length (indexed like `lengths`): the history fields (`days::field`
    /// bits) some rule reads over that length. A day leaving that period can change a
    /// rule outcome only if it has one of them, so only those expiries become deadlines.
    pub rule_fields: Vec<u8>,
    /// What a dead letter keeps of the rejected record.
    pub dead_letter_original: super::redact::OriginalMode,
    /// A short, stable version of the rule set: 12 hex digits of a hash of every setting
    /// that decides a fact, tier, warning, action or score (`[facts]`, `[tiers]`,
    /// `[warnings]`, `[churn_probability]`, `[clv]`, `[analytics]`, `[money]`), taken once here.
    /// Outputs carry it so a consumer can tell which rules produced an alert; it changes
    /// whenever one of those values changes, and not with `[limits]`, `[time]`,
    /// `[outputs]` or the order of keys in a file.
    pub rules_version: String,
    /// When profiles are published.
    pub profile_publish: ProfilePublish,
    /// Owner routing, escalation and recovery (`[interventions]`).
    pub interventions: Interventions,
}

/// A configuration error with the fix in the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl CoreConfig {
    /// The embedded defaults.
    pub fn defaults() -> CoreConfig {
        toml::from_str(DEFAULT_TOML).expect("config/default.toml is valid (checked by tests)")
    }
}

impl Settings {
    /// The default rule set, compiled.
    pub fn defaults() -> Settings {
        Settings::compile(&CoreConfig::defaults())
            .expect("default rules compile (checked by tests)")
    }

    /// Validates and compiles a rule set. Errors say what to change.
    pub fn compile(c: &CoreConfig) -> Result<Settings, ConfigError> {
        let l = &c.limits;
        if l.max_message_bytes == 0 || l.max_id_bytes == 0 || l.max_label_bytes == 0 {
            return Err(ConfigError(
                "limits.max_message_bytes, max_id_bytes and max_label_bytes must be above 0".into(),
            ));
        }
        if !(l.max_amount.is_finite() && l.max_amount > 0.0) || l.max_amount > 9e13 {
            return Err(ConfigError(format!(
                "limits.max_amount = {} must be above 0 and at most 9e13 (amounts are kept in cents in 64 bits)",
                l.max_amount
            )));
        }
        if l.max_ids_per_customer_day == 0 {
            return Err(ConfigError(
                "limits.max_ids_per_customer_day must be at least 1 (duplicate detection needs to remember ids)".into(),
            ));
        }
        if l.max_orders_per_minute == 0 {
            return Err(ConfigError(
                "limits.max_orders_per_minute must be at least 1".into(),
            ));
        }
        if l.max_distinct_labels > u32::MAX / 4 {
            return Err(ConfigError(
                "limits.max_distinct_labels must be below 1,000,000,000".into(),
            ));
        }
        let limits = Limits {
            max_message_bytes: l.max_message_bytes,
            max_id_bytes: l.max_id_bytes,
            max_label_bytes: l.max_label_bytes,
            max_amount: l.max_amount,
            max_future_skew_ms: duration("limits.max_future_skew", &l.max_future_skew)?,
            max_orders_per_minute: l.max_orders_per_minute,
            max_distinct_labels: l.max_distinct_labels,
            max_ids_per_customer_day: l.max_ids_per_customer_day,
            money: compile_money(&c.money)?,
        };
        let allowed_lateness_ms = duration("time.allowed_lateness", &c.time.allowed_lateness)?;
        let dead_letter_original = super::redact::OriginalMode::parse(&c.dead_letters.original)
            .ok_or_else(|| {
                ConfigError(format!(
                    "dead_letters.original = \"{}\": use \"redacted\" (the default: input-contract fields and the names of the others), \"full\" (the original bytes, personal data included) or \"none\"",
                    c.dead_letters.original
                ))
            })?;

        let f = &c.facts;
        let windows = f.windows_days.clone();
        if windows.is_empty() {
            return Err(ConfigError(
                "facts.windows_days is empty; the default is [30, 90, 180, 365]".into(),
            ));
        }
        if windows.contains(&0) {
            return Err(ConfigError(
                "facts.windows_days contains 0; every window must be at least 1 day".into(),
            ));
        }
        for w in windows.windows(2) {
            if w[0] >= w[1] {
                return Err(ConfigError(format!(
                    "facts.windows_days must list distinct windows in ascending order; {} is followed by {} — remove the duplicate or sort the list",
                    w[0], w[1]
                )));
            }
        }
        for (name, v) in [
            ("facts.activity_window_days", f.activity_window_days),
            ("facts.risk_window_days", f.risk_window_days),
            ("facts.visit_drop_recent_days", f.visit_drop_recent_days),
            ("facts.visit_drop_baseline_days", f.visit_drop_baseline_days),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{name} must be at least 1 day")));
            }
        }
        let mut lengths: Vec<u16> = windows.clone();
        let risk2 = f.risk_window_days.checked_mul(2);
        let visit_total = f
            .visit_drop_recent_days
            .checked_add(f.visit_drop_baseline_days);
        let (Some(risk2), Some(visit_total)) = (risk2, visit_total) else {
            return Err(ConfigError(
                "facts periods are too long (at most 10 years of history are kept)".into(),
            ));
        };
        lengths.extend([
            f.activity_window_days,
            f.risk_window_days,
            risk2,
            f.visit_drop_recent_days,
            visit_total,
        ]);
        lengths.sort_unstable();
        lengths.dedup();
        let retention_days = *lengths.last().unwrap_or(&365);
        if retention_days > 3660 {
            return Err(ConfigError(format!(
                "the longest period is {retention_days} days; at most 3660 days (10 years) of day-resolution history are kept per customer"
            )));
        }
        // Facts keep one sum per distinct length in a fixed array (no allocation per
        // evaluation); this bound is that array's size.
        if lengths.len() > super::facts::MAX_LENGTHS {
            return Err(ConfigError(format!(
                "{} distinct period lengths (facts.windows_days plus the score periods: {lengths:?}); at most {} are supported: use fewer distinct windows",
                lengths.len(),
                super::facts::MAX_LENGTHS
            )));
        }
        let idx = |d: u16| lengths.iter().position(|x| *x == d).unwrap_or(0);
        let window_len = windows.iter().map(|w| idx(*w)).collect();

        let cp = &c.churn_probability;
        for (name, v) in [
            ("r", cp.r),
            ("alpha", cp.alpha),
            ("a", cp.a),
            ("b", cp.b),
            ("unit_days", cp.unit_days),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError(format!(
                    "churn_probability.{name} = {v} must be a positive number"
                )));
            }
        }
        if (cp.a - 1.0).abs() < 1e-9 {
            return Err(ConfigError("churn_probability.a must not be exactly 1 (the BG/NBD expectation divides by a - 1)".into()));
        }

        let clv = &c.clv;
        for (name, v) in [("p", clv.p), ("q", clv.q), ("v", clv.v)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError(format!(
                    "clv.{name} = {v} must be a positive number"
                )));
            }
        }
        if clv.q <= 1.0 {
            return Err(ConfigError(format!(
                "clv.q = {} must be greater than 1 (the expected order value divides by q - 1); refit with `churnwatch fit` or set clv.enabled = false",
                clv.q
            )));
        }
        let an = &c.analytics;
        if !(an.relative_accuracy > 0.0 && an.relative_accuracy <= 0.1) {
            return Err(ConfigError(format!(
                "analytics.relative_accuracy = {} must be in (0, 0.1]; 0.01 (±2 % of a spend) is the default",
                an.relative_accuracy
            )));
        }
        if an.attribution_window_days == 0 || an.attribution_window_days > retention_days {
            return Err(ConfigError(format!(
                "analytics.attribution_window_days = {} must be between 1 and the longest period kept ({retention_days} days): the day history is what attributes orders that arrive before their conversion; 30 is the default",
                an.attribution_window_days
            )));
        }

        let cuts = compile_cuts(an)?;

        let t = &c.tiers;
        if t.rules.len() > 250 {
            return Err(ConfigError("at most 250 tier rules are supported".into()));
        }
        let mut tiers = Vec::with_capacity(t.rules.len() + 1);
        let tier_names: Vec<String> = t
            .rules
            .iter()
            .map(|r| r.name.clone())
            .chain(std::iter::once(t.fallback.clone()))
            .collect();
        let vocab = Vocab {
            windows: &windows,
            tiers: &tier_names,
        };
        let segs = |m: &std::collections::BTreeMap<String, SegmentConditions>| -> Vec<SegmentSpec> {
            m.iter()
                .map(|(k, v)| (k.clone(), v.all.clone(), v.any.clone()))
                .collect()
        };
        for r in &t.rules {
            if r.name.is_empty()
                || r.name == t.fallback
                || tiers.iter().any(|x: &Tier| x.name == r.name)
            {
                return Err(ConfigError(format!(
                    "tier name `{}` is empty or used twice (the fallback is `{}`); give each tier a unique name",
                    r.name, t.fallback
                )));
            }
            let rule = Rule::parse(&r.name, &r.all, &r.any, &segs(&r.segments), &vocab)
                .map_err(ConfigError)?;
            tiers.push(Tier {
                name: r.name.clone(),
                action: r.action.as_str().into(),
                rule: Some(rule),
                sla_ms: match &r.sla {
                    Some(v) => Some(duration(&format!("tiers.rules.{}.sla", r.name), v)?),
                    None => None,
                },
            });
        }
        tiers.push(Tier {
            name: t.fallback.clone(),
            action: t.fallback_action.as_str().into(),
            rule: None,
            sla_ms: None,
        });
        let tier_rank = tier_ranking(&tiers, &t.ranking)?;

        let w = &c.warnings;
        let mut warnings = Vec::new();
        for r in &w.rules {
            let level = match r.level.as_str() {
                "high" => Level::High,
                "medium" => Level::Medium,
                other => {
                    return Err(ConfigError(format!(
                        "warning rule `{}` has level `{other}`; use `high` or `medium` (low means no warning)",
                        r.name
                    )))
                }
            };
            if warnings.iter().any(|x: &WarningRule| x.rule.name == r.name) {
                return Err(ConfigError(format!(
                    "warning rule name `{}` is used twice",
                    r.name
                )));
            }
            let rule = Rule::parse(&r.name, &r.all, &r.any, &segs(&r.segments), &vocab)
                .map_err(ConfigError)?;
            let sla_ms = match &r.sla {
                Some(v) => Some(duration(&format!("warnings.rules.{}.sla", r.name), v)?),
                None => None,
            };
            warnings.push(WarningRule {
                rule,
                level,
                sla_ms,
            });
        }
        let sla = |name: &str, lc: &LevelConfig| -> Result<i64, ConfigError> {
            match &lc.sla {
                Some(s) => duration(&format!("warnings.{name}.sla"), s),
                None => Err(ConfigError(format!(
                    "warnings.{name}.sla is required, e.g. sla = \"24h\""
                ))),
            }
        };
        let sla_ms = [0, sla("medium", &w.medium)?, sla("high", &w.high)?];

        let profile_publish = match c.outputs.profile_publish.as_str() {
            "every_change" => ProfilePublish::EveryChange,
            "on_standing_change" => ProfilePublish::OnStandingChange,
            other => {
                return Err(ConfigError(format!(
                    "outputs.profile_publish = \"{other}\"; use \"every_change\" (the default) or \"on_standing_change\""
                )))
            }
        };

        let mut day_thresholds = Vec::new();
        let mut daily = false;
        let mut uses_standing = false;
        let all_rules = tiers
            .iter()
            .filter_map(|t| t.rule.as_ref())
            .chain(warnings.iter().map(|w| &w.rule));
        for rule in all_rules {
            for cnd in rule.conditions() {
                if let Test::Num { metric, value, .. } = &cnd.test {
                    if let Some(anchor) = metric.day_counter() {
                        day_thresholds.push((anchor, *value));
                    }
                    daily |= metric.continuous();
                }
                let population = cnd.metric().is_some_and(|m| m.population())
                    || cnd.label().is_some_and(|l| l.population());
                if population && !c.analytics.enabled {
                    return Err(ConfigError(format!(
                        "rule `{}`: `{}` ranks the customer among the population, which needs analytics.enabled = true (or remove the condition)",
                        rule.name, cnd.text
                    )));
                }
                uses_standing |= population;
            }
        }
        day_thresholds.push((DayAnchor::FirstSeen, f.new_customer_days as f64));
        day_thresholds.dedup();

        let mut rule_fields = vec![0u8; lengths.len()];
        {
            use super::days::field as fl;
            use super::rules::WindowMetric as W;
            let li = |d: u16| lengths.iter().position(|x| *x == d).unwrap_or(0);
            let rules = tiers
                .iter()
                .filter_map(|t| t.rule.as_ref())
                .chain(warnings.iter().map(|w| &w.rule));
            let mut mark = |len: u16, bits: u8| rule_fields[li(len)] |= bits;
            if uses_standing {
                // Standing reads the spend of the longest window, the activity and the
                // risk index: their expiries can change a value tier or ABC class.
                mark(*windows.last().unwrap_or(&365), fl::AMOUNT);
                mark(f.activity_window_days, fl::VISITS | fl::CONVERSIONS);
                mark(f.risk_window_days, fl::ORDERS | fl::COMPLAINTS);
                mark(risk2, fl::ORDERS);
            }
            for metric in rules
                .flat_map(|r| r.conditions())
                .filter_map(|c| c.metric())
            {
                match metric {
                    Metric::Window(wm, i) => mark(
                        windows[i as usize],
                        match wm {
                            W::Orders => fl::ORDERS,
                            W::Monetary => fl::AMOUNT,
                            W::Aov => fl::ORDERS | fl::AMOUNT,
                            W::Visits => fl::VISITS,
                            W::Complaints => fl::COMPLAINTS,
                            W::Satisfaction => fl::SURVEYS,
                            W::Touches => fl::TOUCHES,
                            W::Conversions | W::Participations => fl::CONVERSIONS,
                        },
                    ),
                    Metric::ActivityScore => {
                        mark(f.activity_window_days, fl::VISITS | fl::CONVERSIONS)
                    }
                    Metric::ChurnRiskIndex => {
                        mark(f.risk_window_days, fl::ORDERS | fl::COMPLAINTS);
                        mark(risk2, fl::ORDERS);
                    }
                    Metric::VisitDropPct | Metric::VisitsBaseline => {
                        mark(f.visit_drop_recent_days, fl::VISITS);
                        mark(visit_total, fl::VISITS);
                    }
                    _ => {}
                }
            }
        }

        Ok(Settings {
            limits,
            allowed_lateness_ms,
            window_len,
            activity_len: idx(f.activity_window_days),
            risk_len: (idx(f.risk_window_days), idx(risk2)),
            visit_len: (idx(f.visit_drop_recent_days), idx(visit_total)),
            visit_baseline_days: f.visit_drop_baseline_days,
            retention_days,
            new_customer_days: f.new_customer_days,
            bgnbd: cp.enabled.then_some(BgNbdParams {
                r: cp.r,
                alpha: cp.alpha,
                a: cp.a,
                b: cp.b,
            }),
            unit_days: cp.unit_days,
            horizon_days: cp.horizon_days,
            spend_model: (c.clv.enabled && cp.enabled).then_some(GammaGammaParams {
                p: c.clv.p,
                q: c.clv.q,
                v: c.clv.v,
            }),
            analytics: c.analytics.enabled.then_some(AnalyticsSettings {
                relative_accuracy: c.analytics.relative_accuracy,
                max_campaigns: c.analytics.max_campaigns,
                attribution_window_days: c.analytics.attribution_window_days,
                cuts,
            }),
            lengths,
            windows,
            tiers,
            tier_rank,
            warnings,
            sla_ms,
            level_action: [
                w.low.action.as_str().into(),
                w.medium.action.as_str().into(),
                w.high.action.as_str().into(),
            ],
            day_thresholds,
            daily,
            uses_standing,
            rule_fields,
            dead_letter_original,
            rules_version: rules_version(c),
            profile_publish,
            interventions: routing::compile(&c.interventions, &c.tiers, &c.warnings)?,
        })
    }

    /// Time to act on a warning at `level` decided by warning rule `rule` (an index in
    /// `warnings`): the rule's `sla`, else the level's.
    pub fn warning_sla_ms(&self, rule: usize, level: Level) -> i64 {
        self.warnings
            .get(rule)
            .filter(|w| w.level == level)
            .and_then(|w| w.sla_ms)
            .unwrap_or(self.sla_ms[level as usize])
    }

    /// Index of the fallback tier.
    pub fn fallback_tier(&self) -> usize {
        self.tiers.len() - 1
    }
}

#[cfg(test)]
mod tests;
