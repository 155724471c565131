//! The rule language: conditions such as `orders_365d >= 5` over named per-customer
//! metrics, grouped into tier and warning rules. Rules are data from configuration; this
//! module parses them once, evaluates them per customer, explains them in words and finds
//! rules that can never match.

use std::fmt;

/// A per-customer quantity a rule can test. Window metrics carry the index of their
/// window in `facts.windows_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Whole days since the last order (absent if the customer never ordered).
    RecencyDays,
    /// Whole days since the last order, or since first seen if the customer never ordered.
    DaysWithoutOrder,
    /// Whole days since the first order (absent if none).
    DaysSinceFirstOrder,
    /// Whole days since the customer was first seen.
    TenureDays,
    /// A rolling-window fact.
    Window(WindowMetric, u8),
    /// All-time order count.
    LifetimeOrders,
    /// All-time order value minus refunds.
    LifetimeValue,
    /// Complaints opened and not yet resolved.
    OpenComplaints,
    /// Last NPS answer (0–10).
    LastNps,
    /// (visits + campaign participations and conversions in the activity window) / 2.
    ActivityScore,
    /// (purchase-frequency decline + complaints × 0.5) × 100.
    ChurnRiskIndex,
    /// Drop of recent visits against the baseline monthly average, in percent.
    VisitDropPct,
    /// Visits in the baseline period before the recent visit window.
    VisitsBaseline,
    /// BG/NBD probability that the customer is still active.
    PAlive,
    /// BG/NBD expected purchases over the configured horizon.
    ExpectedPurchases,
}

/// Facts kept per rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowMetric {
    /// Orders in the window.
    Orders,
    /// Order value minus refunds in the window.
    Monetary,
    /// Monetary / orders.
    Aov,
    /// Visits.
    Visits,
    /// Complaints opened.
    Complaints,
    /// Mean satisfaction (1–5) of surveys.
    Satisfaction,
    /// Campaign touches.
    Touches,
    /// Campaign conversions.
    Conversions,
    /// Campaign participations (`participated` actions).
    Participations,
}

impl WindowMetric {
    const ALL: [(WindowMetric, &'static str, &'static str); 9] = [
        (WindowMetric::Orders, "orders", "orders"),
        (
            WindowMetric::Monetary,
            "monetary",
            "order value minus refunds",
        ),
        (WindowMetric::Aov, "aov", "average order value"),
        (WindowMetric::Visits, "visits", "visits"),
        (WindowMetric::Complaints, "complaints", "complaints opened"),
        (
            WindowMetric::Satisfaction,
            "satisfaction",
            "mean survey satisfaction",
        ),
        (
            WindowMetric::Touches,
            "campaign_touches",
            "campaign touches",
        ),
        (
            WindowMetric::Conversions,
            "campaign_conversions",
            "campaign conversions",
        ),
        (
            WindowMetric::Participations,
            "campaign_participations",
            "campaign participations (joined, attended, responded; conversions are counted apart)",
        ),
    ];
}

const SCALARS: [(Metric, &str, &str); 13] = [
    (
        Metric::RecencyDays,
        "recency_days",
        "days since the last order",
    ),
    (
        Metric::DaysWithoutOrder,
        "days_without_order",
        "days without an order (since first seen if never ordered)",
    ),
    (
        Metric::DaysSinceFirstOrder,
        "days_since_first_order",
        "days since the first order",
    ),
    (Metric::TenureDays, "tenure_days", "days since first seen"),
    (
        Metric::LifetimeOrders,
        "lifetime_orders",
        "orders of all time",
    ),
    (
        Metric::LifetimeValue,
        "lifetime_value",
        "order value of all time minus refunds",
    ),
    (Metric::OpenComplaints, "open_complaints", "open complaints"),
    (Metric::LastNps, "last_nps", "the last NPS answer"),
    (
        Metric::ActivityScore,
        "activity_score",
        "the activity score",
    ),
    (
        Metric::ChurnRiskIndex,
        "churn_risk_index",
        "the churn risk index",
    ),
    (
        Metric::VisitDropPct,
        "visit_drop_pct",
        "the visit drop against the baseline (%)",
    ),
    (
        Metric::VisitsBaseline,
        "visits_baseline",
        "visits in the baseline period",
    ),
    (
        Metric::PAlive,
        "p_alive",
        "the probability the customer is still active (BG/NBD)",
    ),
];

impl Metric {
    /// Parses a metric name against the configured windows.
    pub fn parse(name: &str, windows: &[u16]) -> Result<Metric, String> {
        if name == "expected_purchases" {
            return Ok(Metric::ExpectedPurchases);
        }
        if let Some((m, _, _)) = SCALARS.iter().find(|(_, n, _)| *n == name) {
            return Ok(*m);
        }
        for (wm, prefix, _) in WindowMetric::ALL {
            if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
                if let Some(days) = rest.strip_suffix('d').and_then(|d| d.parse::<u16>().ok()) {
                    return match windows.iter().position(|w| *w == days) {
                        Some(i) => Ok(Metric::Window(wm, i as u8)),
                        None => Err(format!(
                            "`{name}` uses a {days}-day window, but facts.windows_days is {windows:?}; add {days} there or use one of those windows"
                        )),
                    };
                }
            }
        }
        Err(format!(
            "unknown metric `{name}`; known: {}, expected_purchases, and per window N in facts.windows_days: {}",
            SCALARS.iter().map(|(_, n, _)| *n).collect::<Vec<_>>().join(", "),
            WindowMetric::ALL.iter().map(|(_, n, _)| format!("{n}_Nd")).collect::<Vec<_>>().join(", ")
        ))
    }

    /// The metric's name as written in rules.
    pub fn name(&self, windows: &[u16]) -> String {
        match self {
            Metric::Window(wm, i) => {
                let prefix = WindowMetric::ALL
                    .iter()
                    .find(|(m, _, _)| m == wm)
                    .map(|(_, p, _)| *p)
                    .unwrap_or("?");
                format!(
                    "{prefix}_{}d",
                    windows.get(*i as usize).copied().unwrap_or(0)
                )
            }
            Metric::ExpectedPurchases => "expected_purchases".into(),
            m => SCALARS
                .iter()
                .find(|(s, _, _)| s == m)
                .map(|(_, n, _)| n.to_string())
                .unwrap_or_default(),
        }
    }

    /// The metric in words, for `check-config`.
    pub fn describe(&self, windows: &[u16]) -> String {
        match self {
            Metric::Window(wm, i) => {
                let words = WindowMetric::ALL
                    .iter()
                    .find(|(m, _, _)| m == wm)
                    .map(|(_, _, w)| *w)
                    .unwrap_or("?");
                format!(
                    "{words} in the last {} days",
                    windows.get(*i as usize).copied().unwrap_or(0)
                )
            }
            Metric::ExpectedPurchases => "expected purchases over the horizon (BG/NBD)".into(),
            m => SCALARS
                .iter()
                .find(|(s, _, _)| s == m)
                .map(|(_, _, w)| w.to_string())
                .unwrap_or_default(),
        }
    }

    /// Values the metric can take, for finding impossible thresholds.
    pub fn domain(&self) -> (f64, f64) {
        match self {
            Metric::Window(WindowMetric::Monetary, _) | Metric::LifetimeValue => {
                (f64::NEG_INFINITY, f64::INFINITY)
            }
            Metric::Window(WindowMetric::Satisfaction, _) => (1.0, 5.0),
            Metric::LastNps => (0.0, 10.0),
            Metric::PAlive => (0.0, 1.0),
            Metric::VisitDropPct => (f64::NEG_INFINITY, 100.0),
            _ => (0.0, f64::INFINITY),
        }
    }

    /// For metrics that grow by one each day (`today - anchor`): which anchor.
    pub fn day_counter(&self) -> Option<DayAnchor> {
        match self {
            Metric::RecencyDays => Some(DayAnchor::LastOrder),
            Metric::DaysWithoutOrder => Some(DayAnchor::LastOrderOrFirstSeen),
            Metric::DaysSinceFirstOrder => Some(DayAnchor::FirstOrder),
            Metric::TenureDays => Some(DayAnchor::FirstSeen),
            _ => None,
        }
    }

    /// True for metrics that change continuously with time, not only at day boundaries
    /// of window expiry (they need a daily re-evaluation when a rule uses them).
    pub fn continuous(&self) -> bool {
        matches!(self, Metric::PAlive | Metric::ExpectedPurchases)
    }
}

/// The day a day-counter metric counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayAnchor {
    /// Last order day.
    LastOrder,
    /// Last order day, else first-seen day.
    LastOrderOrFirstSeen,
    /// First order day.
    FirstOrder,
    /// First-seen day.
    FirstSeen,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Op::Lt => "is below",
            Op::Le => "is at most",
            Op::Gt => "is above",
            Op::Ge => "is at least",
            Op::Eq => "is exactly",
            Op::Ne => "is not",
        }
    }
    /// Applies the operator.
    #[inline]
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// `metric op value`. A condition on a metric that has no value (e.g. recency for a
/// customer who never ordered, satisfaction with no survey) is false.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What is tested.
    pub metric: Metric,
    /// How.
    pub op: Op,
    /// Against what.
    pub value: f64,
    /// The text it was parsed from (for reasons and messages).
    pub text: String,
}

impl Condition {
    /// Parses `metric op number`.
    pub fn parse(text: &str, windows: &[u16]) -> Result<Condition, String> {
        let t = text.trim();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, sym, op) = ops
            .iter()
            .filter_map(|(s, o)| t.find(s).map(|p| (p, *s, *o)))
            .min_by_key(|(p, s, _)| (*p, std::cmp::Reverse(s.len())))
            .ok_or_else(|| {
                format!("condition `{t}` has no comparison; write it like `orders_365d >= 5`")
            })?;
        let name = t[..pos].trim();
        let num = t[pos + sym.len()..].trim().replace('_', "");
        let metric =
            Metric::parse(name, windows).map_err(|e| format!("in condition `{t}`: {e}"))?;
        let value: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("in condition `{t}`: `{num}` is not a number"))?;
        Ok(Condition {
            metric,
            op,
            value,
            text: format!("{} {} {}", name, op.symbol(), fmt_num(value)),
        })
    }

    /// Evaluates against a metric lookup.
    #[inline]
    pub fn holds(&self, get: &impl Fn(Metric) -> Option<f64>) -> bool {
        get(self.metric).is_some_and(|v| self.op.test(v, self.value))
    }

    /// The condition in words.
    pub fn describe(&self, windows: &[u16]) -> String {
        format!(
            "{} {} {}",
            self.metric.describe(windows),
            self.op.words(),
            fmt_num(self.value)
        )
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A rule: every condition in `all`, and at least one in `any` when `any` is not empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Rule name (a tier name for tier rules).
    pub name: String,
    /// Conditions that must all hold.
    pub all: Vec<Condition>,
    /// Conditions of which one must hold (ignored when empty).
    pub any: Vec<Condition>,
}

impl Rule {
    /// Parses a rule's condition lists.
    pub fn parse(
        name: &str,
        all: &[String],
        any: &[String],
        windows: &[u16],
    ) -> Result<Rule, String> {
        let parse = |v: &[String]| -> Result<Vec<Condition>, String> {
            v.iter()
                .map(|c| Condition::parse(c, windows).map_err(|e| format!("rule `{name}`: {e}")))
                .collect()
        };
        let rule = Rule {
            name: name.to_string(),
            all: parse(all)?,
            any: parse(any)?,
        };
        if rule.all.is_empty() && rule.any.is_empty() {
            return Err(format!(
                "rule `{name}` has no conditions; give it `all = [...]` and/or `any = [...]`"
            ));
        }
        if let Some(why) = rule.impossible() {
            return Err(format!("rule `{name}` can never match: {why}"));
        }
        Ok(rule)
    }

    /// Whether the rule matches.
    #[inline]
    pub fn matches(&self, get: &impl Fn(Metric) -> Option<f64>) -> bool {
        self.all.iter().all(|c| c.holds(get))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds(get)))
    }

    /// Every condition, for timer derivation and explanations.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.all.iter().chain(self.any.iter())
    }

    /// Why the `all` conditions can never hold together, if they cannot: each metric's
    /// allowed interval is intersected with its domain.
    fn impossible(&self) -> Option<String> {
        /// The values of one metric that every `all` condition on it allows so far.
        struct Allowed<'a> {
            metric: Metric,
            lo: f64,
            lo_inc: bool,
            hi: f64,
            hi_inc: bool,
            texts: Vec<&'a str>,
        }
        let mut seen: Vec<Allowed<'_>> = Vec::new();
        for c in &self.all {
            let idx = match seen.iter().position(|s| s.metric == c.metric) {
                Some(i) => i,
                None => {
                    let (lo, hi) = c.metric.domain();
                    seen.push(Allowed {
                        metric: c.metric,
                        lo,
                        lo_inc: true,
                        hi,
                        hi_inc: true,
                        texts: Vec::new(),
                    });
                    seen.len() - 1
                }
            };
            let s = &mut seen[idx];
            s.texts.push(&c.text);
            let v = c.value;
            match c.op {
                Op::Lt if v < s.hi || (v == s.hi && s.hi_inc) => (s.hi, s.hi_inc) = (v, false),
                Op::Le if v < s.hi => (s.hi, s.hi_inc) = (v, true),
                Op::Gt if v > s.lo || (v == s.lo && s.lo_inc) => (s.lo, s.lo_inc) = (v, false),
                Op::Ge if v > s.lo => (s.lo, s.lo_inc) = (v, true),
                Op::Eq => {
                    let in_range = (v > s.lo || (v == s.lo && s.lo_inc))
                        && (v < s.hi || (v == s.hi && s.hi_inc));
                    if !in_range {
                        s.lo = f64::INFINITY;
                    } else {
                        (s.lo, s.lo_inc, s.hi, s.hi_inc) = (v, true, v, true);
                    }
                }
                _ => {}
            }
        }
        for a in seen {
            let empty = a.lo > a.hi || (a.lo == a.hi && !(a.lo_inc && a.hi_inc));
            if empty {
                let (dlo, dhi) = a.metric.domain();
                // Name the metric's range only when it is what makes the conditions
                // impossible (`orders_90d < 0`), not for a plain clash (`>= 5` and `< 3`).
                let at_domain = a.hi <= dlo || a.lo >= dhi;
                let domain = if !at_domain {
                    String::new()
                } else if dhi.is_infinite() && dlo == 0.0 {
                    " (it is never negative)".to_string()
                } else if dhi.is_finite() && dlo.is_finite() {
                    format!(" (it lies between {} and {})", fmt_num(dlo), fmt_num(dhi))
                } else {
                    String::new()
                };
                return Some(format!("{} cannot all hold{domain}", a.texts.join(" and ")));
            }
        }
        None
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = self.all.iter().map(|c| c.text.as_str()).collect();
        let any: Vec<&str> = self.any.iter().map(|c| c.text.as_str()).collect();
        write!(f, "{}", all.join(" AND "))?;
        if !any.is_empty() {
            if !all.is_empty() {
                write!(f, " AND ")?;
            }
            write!(f, "({})", any.join(" OR "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const W: [u16; 4] = [30, 90, 180, 365];

    #[test]
    fn parses_conditions() {
        let c = Condition::parse("orders_365d >= 5", &W).unwrap();
        assert_eq!(c.metric, Metric::Window(WindowMetric::Orders, 3));
        assert_eq!(c.op, Op::Ge);
        assert_eq!(c.value, 5.0);
        let c = Condition::parse(" monetary_365d>=100_000 ", &W).unwrap();
        assert_eq!(c.value, 100_000.0);
        assert_eq!(c.text, "monetary_365d >= 100000");
        assert_eq!(Condition::parse("recency_days<90", &W).unwrap().op, Op::Lt);
        assert_eq!(
            Condition::parse("campaign_conversions_90d != 0", &W)
                .unwrap()
                .metric,
            Metric::Window(WindowMetric::Conversions, 1)
        );
        assert_eq!(
            Condition::parse("p_alive < 0.3", &W).unwrap().metric,
            Metric::PAlive
        );
    }

    #[test]
    fn errors_name_the_fix() {
        let e = Condition::parse("orders_60d >= 1", &W).unwrap_err();
        assert!(e.contains("facts.windows_days"), "{e}");
        let e = Condition::parse("ordres_90d >= 1", &W).unwrap_err();
        assert!(e.contains("unknown metric"), "{e}");
        let e = Condition::parse("orders_90d 1", &W).unwrap_err();
        assert!(e.contains("no comparison"), "{e}");
        let e = Condition::parse("orders_90d >= many", &W).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn finds_impossible_rules() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let clash =
            Rule::parse("x", &s(&["orders_90d >= 5", "orders_90d < 3"]), &[], &W).unwrap_err();
        assert!(
            clash.contains("never match") && !clash.contains("never negative"),
            "{clash}"
        );
        assert!(Rule::parse("x", &s(&["orders_90d < 0"]), &[], &W)
            .unwrap_err()
            .contains("never negative"));
        assert!(Rule::parse("x", &s(&["satisfaction_90d > 5"]), &[], &W).is_err());
        assert!(Rule::parse("x", &s(&["orders_90d == 2", "orders_90d > 2"]), &[], &W).is_err());
        assert!(Rule::parse("x", &s(&["orders_90d >= 1", "orders_90d <= 1"]), &[], &W).is_ok());
        assert!(Rule::parse("x", &[], &[], &W).is_err());
    }

    #[test]
    fn evaluates_all_and_any() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = Rule::parse(
            "x",
            &s(&["recency_days <= 180"]),
            &s(&["orders_365d >= 3", "monetary_365d >= 50000"]),
            &W,
        )
        .unwrap();
        let get = |rec: f64, o: f64, m: f64| {
            move |metric: Metric| match metric {
                Metric::RecencyDays => Some(rec),
                Metric::Window(WindowMetric::Orders, 3) => Some(o),
                Metric::Window(WindowMetric::Monetary, 3) => Some(m),
                _ => None,
            }
        };
        assert!(r.matches(&get(100.0, 3.0, 0.0)));
        assert!(r.matches(&get(100.0, 1.0, 60_000.0)));
        assert!(!r.matches(&get(100.0, 1.0, 10.0)));
        assert!(!r.matches(&get(200.0, 5.0, 60_000.0)));
        assert!(
            !r.matches(&|_| None),
            "absent metrics make conditions false"
        );
        assert_eq!(
            r.to_string(),
            "recency_days <= 180 AND (orders_365d >= 3 OR monetary_365d >= 50000)"
        );
    }
}
