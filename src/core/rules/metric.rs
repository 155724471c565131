//! The numeric names a rule can test: per-customer metrics (scalars and rolling-window
//! facts), their names as written in rules, their meaning in words, the values they can
//! take and, for day counters, the day they count from (for deadlines).

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
    /// Whole days since the customer's last event of any kind (DOMAIN §6 "last
    /// interaction").
    DaysSinceLastInteraction,
    /// A rolling-window fact.
    Window(WindowMetric, u8),
    /// All-time order count.
    LifetimeOrders,
    /// All-time order value minus refunds.
    LifetimeValue,
    /// Distinct days with an order, all time.
    PurchaseDays,
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
    /// Gamma-Gamma expected order value.
    ExpectedOrderValue,
    /// Customer lifetime value over the horizon (expected purchases × expected order value).
    Clv,
    /// Value score (0–100) among the partition's customers (needs `[analytics]`).
    ValueScore,
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
    /// Every window metric: (metric, name prefix, words).
    pub const ALL: [(WindowMetric, &'static str, &'static str); 9] = [
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

/// Every scalar metric: (metric, name, words). docs/RULES.md §2 lists the same names (a
/// test checks that every documented name parses).
pub const SCALARS: [(Metric, &str, &str); 19] = [
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
        Metric::DaysSinceLastInteraction,
        "days_since_last_interaction",
        "days since the last event of any kind",
    ),
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
    (
        Metric::PurchaseDays,
        "purchase_days",
        "distinct days with an order",
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
    (
        Metric::ExpectedPurchases,
        "expected_purchases",
        "expected purchases over the horizon (BG/NBD)",
    ),
    (
        Metric::ExpectedOrderValue,
        "expected_order_value",
        "the expected order value (Gamma-Gamma)",
    ),
    (
        Metric::Clv,
        "clv",
        "the customer lifetime value over the horizon",
    ),
    (Metric::ValueScore, "value_score", "the value score (0-100)"),
];

/// Every metric name a rule may use, for error messages: the scalars, then the window
/// metrics as `name_Nd`.
pub fn known_metrics() -> String {
    let scalars: Vec<&str> = SCALARS.iter().map(|(_, n, _)| *n).collect();
    let windows: Vec<String> = WindowMetric::ALL
        .iter()
        .map(|(_, n, _)| format!("{n}_Nd"))
        .collect();
    format!(
        "{}, and per window N in facts.windows_days: {}",
        scalars.join(", "),
        windows.join(", ")
    )
}

impl Metric {
    /// Parses a metric name against the configured windows.
    pub fn parse(name: &str, windows: &[u16]) -> Result<Metric, String> {
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
            "unknown metric `{name}`; known: {}; labels: {}",
            known_metrics(),
            super::label::known_labels()
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
            Metric::ValueScore => (0.0, 100.0),
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
            Metric::DaysSinceLastInteraction => Some(DayAnchor::LastInteraction),
            _ => None,
        }
    }

    /// True for metrics that change continuously with time, not only at day boundaries
    /// of window expiry (they need a daily re-evaluation when a rule uses them).
    pub fn continuous(&self) -> bool {
        matches!(
            self,
            Metric::PAlive | Metric::ExpectedPurchases | Metric::Clv
        )
    }

    /// True for metrics ranked among the population (they need `[analytics]`).
    pub fn population(&self) -> bool {
        matches!(self, Metric::ValueScore)
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
    /// Day of the last event of any kind.
    LastInteraction,
}
