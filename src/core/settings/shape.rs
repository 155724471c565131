//! The serde shape of the rule-set sections of a config file: what a user writes, before
//! validation. [`super::Settings`] is the compiled form the processor reads.

use serde::Deserialize;

/// Input limits (`[limits]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted message.
    pub max_message_bytes: usize,
    /// Longest customer or event id.
    pub max_id_bytes: usize,
    /// Longest label (channel, category, …).
    pub max_label_bytes: usize,
    /// Largest plausible amount.
    pub max_amount: f64,
    /// How far ahead of "now" an event may be, e.g. `1h`.
    pub max_future_skew: String,
    /// Orders per customer per minute before they are flagged.
    pub max_orders_per_minute: u32,
    /// Distinct label values remembered per processor.
    pub max_distinct_labels: u32,
    /// Event ids remembered per customer and day (bounds duplicate-detection memory).
    pub max_ids_per_customer_day: u32,
}

/// Compiled limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted message.
    pub max_message_bytes: usize,
    /// Longest customer or event id.
    pub max_id_bytes: usize,
    /// Longest label.
    pub max_label_bytes: usize,
    /// Largest plausible amount.
    pub max_amount: f64,
    /// Future skew in milliseconds.
    pub max_future_skew_ms: i64,
    /// Orders per customer-minute.
    pub max_orders_per_minute: u32,
    /// Distinct label values.
    pub max_distinct_labels: u32,
    /// Event ids remembered per customer and day.
    pub max_ids_per_customer_day: u32,
    /// How input amounts are converted to the reporting currency (`[money]`): the decoder
    /// converts while it validates, so it lives with the other input rules.
    pub money: super::super::money::Money,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1 << 20,
            max_id_bytes: 256,
            max_label_bytes: 128,
            max_amount: 1e10,
            max_future_skew_ms: 3_600_000,
            max_orders_per_minute: 20,
            max_distinct_labels: 65_000,
            max_ids_per_customer_day: 128,
            money: Default::default(),
        }
    }
}

/// `[time]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// Watermark lag behind the newest event time, e.g. `1m`.
    pub allowed_lateness: String,
}

/// `[facts]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FactsConfig {
    /// Rolling windows in days, ascending.
    pub windows_days: Vec<u16>,
    /// Tenure below which a customer is "new".
    pub new_customer_days: u16,
    /// Window of the activity score.
    pub activity_window_days: u16,
    /// Period length of the churn risk index's decline rate.
    pub risk_window_days: u16,
    /// Recent period of the visit-drop signal.
    pub visit_drop_recent_days: u16,
    /// Baseline period (before the recent one) of the visit-drop signal.
    pub visit_drop_baseline_days: u16,
}

/// `[churn_probability]`: BG/NBD parameters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChurnProbabilityConfig {
    /// Compute P(alive) and expected purchases.
    pub enabled: bool,
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale of the purchase-rate gamma.
    pub alpha: f64,
    /// Dropout beta `a`.
    pub a: f64,
    /// Dropout beta `b`.
    pub b: f64,
    /// Days per model time unit (7 = weeks).
    pub unit_days: f64,
    /// Horizon of expected purchases, in days.
    pub horizon_days: u16,
}

/// `[analytics]`: population ranks and campaign effect.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Keep the population sketches and the campaign figures.
    pub enabled: bool,
    /// Relative accuracy α of the spend sketch (0 < α ≤ 0.1): an estimated percentile is
    /// the exact percentile of a spend within ±2α.
    pub relative_accuracy: f64,
    /// Campaigns tracked by name per partition; later ones count as `other`.
    pub max_campaigns: u16,
    /// Days (the conversion's day included) in which a converted customer's orders count
    /// as the campaign's revenue.
    #[serde(default = "default_attribution")]
    pub attribution_window_days: u16,
    /// Value score weights of the spend, activity and tenure percentiles (sum 1).
    #[serde(default = "default_weights")]
    pub value_score_weights: [f64; 3],
    /// Value score at or above which the value tier is A, and B.
    #[serde(default = "default_value_tiers")]
    pub value_tiers: [f64; 2],
    /// Churn risk index at or above which the value tier is D, whatever the score.
    #[serde(default = "default_risk_override")]
    pub risk_override: f64,
    /// ABC classes: percent of the total spend made by A, B and C customers (sum 100).
    #[serde(default = "default_abc")]
    pub abc_percent: [f64; 3],
    /// Core customers: the top this-many percent of customers by spend.
    #[serde(default = "default_core")]
    pub core_percent: f64,
}

fn default_attribution() -> u16 {
    30
}
fn default_weights() -> [f64; 3] {
    [0.5, 0.3, 0.2]
}
fn default_value_tiers() -> [f64; 2] {
    [85.0, 70.0]
}
fn default_risk_override() -> f64 {
    50.0
}
fn default_abc() -> [f64; 3] {
    [70.0, 20.0, 10.0]
}
fn default_core() -> f64 {
    10.0
}

/// `[clv]`: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005) for customer lifetime
/// value = expected purchases over the horizon × expected order value.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClvConfig {
    /// Compute CLV (needs `churn_probability.enabled`).
    pub enabled: bool,
    /// Shape of the per-customer spend gamma.
    pub p: f64,
    /// Shape of the mixing gamma (must exceed 1).
    pub q: f64,
    /// Scale of the mixing gamma, in currency units.
    pub v: f64,
}

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    /// p
    pub p: f64,
    /// q (> 1)
    pub q: f64,
    /// v
    pub v: f64,
}

/// Analytics settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyticsSettings {
    /// Spend sketch relative accuracy.
    pub relative_accuracy: f64,
    /// Campaigns tracked by name.
    pub max_campaigns: u16,
    /// Revenue attribution window after a conversion, days.
    pub attribution_window_days: u16,
    /// Value score, value tier, ABC and core cut-offs.
    pub cuts: crate::core::scores::Cuts,
}

/// One `[[tiers.rules]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierRuleConfig {
    /// Tier name.
    pub name: String,
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<String>,
    /// Conditions of which at least one must hold.
    #[serde(default)]
    pub any: Vec<String>,
    /// Conditions that replace `all`/`any` for the customers of a segment
    /// (`[tiers.rules.segments.NAME]` / `[warnings.rules.segments.NAME]`).
    #[serde(default)]
    pub segments: std::collections::BTreeMap<String, SegmentConditions>,
    /// Recommended action, carried on tier-change events.
    pub action: String,
    /// Time to act on a change into this tier (e.g. `7d`): the tier change then carries
    /// a due time. Absent: no due time.
    #[serde(default)]
    pub sla: Option<String>,
}

/// `[tiers]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    /// Tier when no rule matches.
    pub fallback: String,
    /// Its action.
    pub fallback_action: String,
    /// Rules in evaluation order.
    pub rules: Vec<TierRuleConfig>,
    /// Tier names best first: what "the best tier held" (`peak_tier`) means. Tiers not
    /// listed rank below the listed ones, in rule order, the fallback last.
    #[serde(default)]
    pub ranking: Vec<String>,
}

/// `[outputs]`: how often profiles are published.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    /// `every_change` (default): a changed customer's profile is published once per commit
    /// interval. `on_standing_change`: only when its tier, warning level or profile labels
    /// (account manager, industry, region, segment) changed, or it is new (README
    /// "Outputs" says what that costs a consumer).
    pub profile_publish: String,
}

/// When a changed customer's profile is published (`outputs.profile_publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfilePublish {
    /// Once per commit interval in which the customer changed.
    EveryChange,
    /// Only in intervals in which its standing changed: tier, warning level, profile
    /// labels, or its first appearance.
    OnStandingChange,
}

/// One warning level's settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LevelConfig {
    /// Time to act, e.g. `24h`; the warning's due time is event time + this.
    #[serde(default)]
    pub sla: Option<String>,
    /// Intervention.
    pub action: String,
}

/// One `[[warnings.rules]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WarningRuleConfig {
    /// Rule name (appears in the warning's reasons).
    pub name: String,
    /// `high` or `medium`.
    pub level: String,
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<String>,
    /// Conditions of which at least one must hold.
    #[serde(default)]
    pub any: Vec<String>,
    /// Conditions that replace `all`/`any` for the customers of a segment
    /// (`[tiers.rules.segments.NAME]` / `[warnings.rules.segments.NAME]`).
    #[serde(default)]
    pub segments: std::collections::BTreeMap<String, SegmentConditions>,
    /// Time to act on a warning this rule decides (e.g. `24h`); absent: the level's `sla`.
    #[serde(default)]
    pub sla: Option<String>,
}

/// A segment's own conditions for a rule: they replace the rule's `all` and `any` for the
/// customers whose `segment` is the table's name.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SegmentConditions {
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<String>,
    /// Conditions of which at least one must hold.
    #[serde(default)]
    pub any: Vec<String>,
}

/// `[warnings]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WarningsConfig {
    /// High level.
    pub high: LevelConfig,
    /// Medium level.
    pub medium: LevelConfig,
    /// Low level (no event is emitted; the action is informational).
    pub low: LevelConfig,
    /// Rules.
    pub rules: Vec<WarningRuleConfig>,
}

/// `[money]`: the reporting currency and the conversion rates to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoneyConfig {
    /// ISO 4217 code of the reporting currency (thresholds and outputs are in it).
    pub currency: String,
    /// `reporting` (an event without `currency` is in the reporting currency) or `reject`.
    pub missing_currency: String,
    /// Conversion rates to the reporting currency (`[[money.rates]]`).
    #[serde(default)]
    pub rates: Vec<RateConfig>,
}

/// One `[[money.rates]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Source currency (ISO 4217).
    pub currency: String,
    /// Units of the reporting currency per unit of `currency`, as a decimal string.
    pub rate: String,
    /// RFC 3339 instant from which the rate applies (event time); absent: always.
    #[serde(default)]
    pub from: Option<String>,
}

/// `[dead_letters]`: what a dead letter keeps of the record it rejects.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersConfig {
    /// `redacted` (contract fields and the names of the others), `full` (the original
    /// bytes: may carry personal data) or `none` (length and hash).
    pub original: String,
}

/// The rule-set sections of a configuration file. Other sections (`[log]`, …) belong to
/// the adapters; the full file is checked for unknown sections by `config::Config`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CoreConfig {
    /// `[limits]`
    pub limits: LimitsConfig,
    /// `[money]`
    pub money: MoneyConfig,
    /// `[time]`
    pub time: TimeConfig,
    /// `[facts]`
    pub facts: FactsConfig,
    /// `[churn_probability]`
    pub churn_probability: ChurnProbabilityConfig,
    /// `[tiers]`
    pub tiers: TiersConfig,
    /// `[warnings]`
    pub warnings: WarningsConfig,
    /// `[analytics]`
    pub analytics: AnalyticsConfig,
    /// `[clv]`
    pub clv: ClvConfig,
    /// `[dead_letters]`
    pub dead_letters: DeadLettersConfig,
    /// `[outputs]`
    pub outputs: OutputsConfig,
    /// `[interventions]`
    pub interventions: super::routing::InterventionsConfig,
}
