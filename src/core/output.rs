//! Output events (DESIGN.md "Output events"), their JSON encoding and deterministic ids.
//!
//! Every id is a hash of what caused the output (the input event id, or the deadline day
//! for time-triggered outputs) and what it says, so re-processing after a crash produces
//! the same id and consumers can drop the repeat.

use std::sync::Arc;

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use super::json::Json;

mod encode;
mod task;
pub use task::{TaskState, WarningOverdue};

/// Short output strings (ids, names, dates, instants): inline up to 24 bytes, so building
/// an output does not allocate for each of them. Each alert has ~16 such fields; their
/// allocations (and their frees on the encoder thread) were the largest cost in the
/// service loop after the rules themselves. Serialized as a plain JSON string.
pub type Text = compact_str::CompactString;

/// Schema names. Alerts and profiles are contract v2 (README "Outputs"); the tombstone
/// and the dead letter did not change and keep their v1 names.
pub mod schema {
    /// Tier change.
    pub const TIER_CHANGED: &str = "churnwatch.tier_changed.v2";
    /// Warning raised.
    pub const CHURN_WARNING: &str = "churnwatch.churn_warning.v2";
    /// Warning cleared.
    pub const CHURN_WARNING_CLEARED: &str = "churnwatch.churn_warning_cleared.v2";
    /// A warning's due time passed without done or dismissed.
    pub const CHURN_WARNING_OVERDUE: &str = "churnwatch.churn_warning_overdue.v2";
    /// Latest profile.
    pub const PROFILE: &str = "churnwatch.profile.v2";
    /// Customer erased (a tombstone on keyed topics).
    pub const PROFILE_TOMBSTONE: &str = "churnwatch.profile_tombstone.v1";
    /// Rejected input (v2: the original is redacted by default).
    pub const DEAD_LETTER: &str = "churnwatch.dead_letter.v2";
}

/// Where an input came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// Topic (or `file:NAME` in replay).
    pub topic: Text,
    /// Partition.
    pub partition: i32,
    /// Offset (line number − 1 in replay).
    pub offset: i64,
}

/// One rolling window's facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowOut {
    /// Window length in days.
    pub days: u16,
    /// Orders.
    pub orders: u32,
    /// Order value minus refunds.
    pub monetary: f64,
    /// Average order value (absent without orders).
    pub aov: Option<f64>,
    /// Visits.
    pub visits: u32,
    /// Complaints opened.
    pub complaints: u32,
    /// Satisfaction answers.
    pub surveys: u32,
    /// Mean satisfaction (absent without surveys).
    pub satisfaction: Option<f64>,
    /// Campaign touches.
    pub campaign_touches: u32,
    /// Campaign conversions.
    pub campaign_conversions: u32,
    /// Campaign participations (`participated` actions; conversions apart).
    pub campaign_participations: u32,
}

/// The full facts (DOMAIN.md §1 and §4), on profiles only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactsOut {
    /// Instant the facts are evaluated at.
    pub as_of: Text,
    /// Days since the last order.
    pub recency_days: Option<i64>,
    /// Days without an order (since first seen if never ordered).
    pub days_without_order: i64,
    /// Days since first seen.
    pub tenure_days: i64,
    /// `new` or `existing`.
    pub lifecycle: &'static str,
    /// First day seen (YYYY-MM-DD).
    pub first_seen: Text,
    /// First order day.
    pub first_order: Option<Text>,
    /// Last order day.
    pub last_order: Option<Text>,
    /// Day of the last event of any kind (DOMAIN §6 "last interaction"; within the
    /// retained history, else the latest of first seen and last order).
    pub last_interaction: Text,
    /// Days since `last_interaction`.
    pub days_since_last_interaction: i64,
    /// All-time orders.
    pub lifetime_orders: u32,
    /// All-time order value minus refunds.
    pub lifetime_value: f64,
    /// The reporting currency (ISO 4217) of every money figure in these facts: lifetime
    /// value, the windows' monetary and AOV, expected order value, CLV.
    pub currency: Text,
    /// Distinct purchase days.
    pub purchase_days: u32,
    /// Open complaints.
    pub open_complaints: u16,
    /// Last NPS answer.
    pub last_nps: Option<u8>,
    /// Rolling windows.
    pub windows: Vec<WindowOut>,
    /// Activity score.
    pub activity_score: f64,
    /// Churn risk index.
    pub churn_risk_index: f64,
    /// Visit drop against the baseline, percent.
    pub visit_drop_pct: Option<f64>,
    /// Visits in the baseline period.
    pub visits_baseline: u32,
    /// BG/NBD P(alive).
    pub p_alive: Option<f64>,
    /// BG/NBD expected purchases over `horizon_days`.
    pub expected_purchases: Option<f64>,
    /// Gamma-Gamma expected order value (currency units).
    pub expected_order_value: Option<f64>,
    /// Lifetime value over `horizon_days`: expected purchases × expected order value.
    pub clv: Option<f64>,
    /// Horizon of `expected_purchases`.
    pub horizon_days: u16,
    /// Most frequent channel in the longest window.
    pub preferred_channel: Option<Text>,
    /// Most frequent category in the longest window.
    pub preferred_category: Option<Text>,
    /// Account manager.
    pub account_manager: Option<Text>,
    /// Industry.
    pub industry: Option<Text>,
    /// Region.
    pub region: Option<Text>,
    /// Segment.
    pub segment: Option<Text>,
}

/// The few facts an alert carries (contract v2): enough to act on and to sort a work
/// queue by, without the window arrays (~1.4 KB in v1) that the profile carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// Days since the last order (absent for a customer who never ordered).
    pub recency_days: Option<i64>,
    /// The tier window in days (the longest of `facts.windows_days`, 365 by default).
    pub window_days: u16,
    /// Orders in the tier window.
    pub orders: u32,
    /// Order value minus refunds in the tier window.
    pub monetary: f64,
    /// The reporting currency (ISO 4217) of `monetary` and `clv`.
    pub currency: Text,
    /// BG/NBD P(alive).
    pub p_alive: Option<f64>,
    /// Customer lifetime value over the configured horizon.
    pub clv: Option<f64>,
    /// The customer's tier after this evaluation.
    pub tier: Text,
}

/// A condition of a matched rule with the value it saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionValue {
    /// The condition as configured.
    pub condition: Text,
    /// The metric's value.
    pub value: Option<f64>,
}

/// A matched warning rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Rule name.
    pub rule: Text,
    /// Rule level.
    pub level: &'static str,
    /// Its conditions with their values.
    pub conditions: Vec<ConditionValue>,
}

/// `churnwatch.tier_changed.v2`. Not emitted for a customer's first appearance in the
/// fallback tier (the profile records it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierChanged {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id.
    pub event_id: String,
    /// Customer.
    pub customer_id: Text,
    /// Previous tier (`null` for a customer's first tier).
    pub from: Option<Text>,
    /// New tier.
    pub to: Text,
    /// Rule that matched (the tier's rule, or `fallback`).
    pub rule: Text,
    /// The matched rule's conditions with the values they saw (empty for the fallback).
    pub reasons: Vec<ConditionValue>,
    /// Recommended action for the new tier.
    pub action: Arc<str>,
    /// Owner (`[interventions]` routing; never empty).
    pub owner: Text,
    /// Due time: event time + the tier's `sla` (`null` for tiers without one).
    pub due: Option<Text>,
    /// `event` or `time`.
    pub trigger: &'static str,
    /// Event time of the cause.
    pub event_time: Text,
    /// When it was emitted.
    pub emitted_at: Text,
    /// The input that caused it (absent for time triggers).
    pub source: Option<SourceRef>,
    /// The rule set's version (`Settings::rules_version`).
    pub rules_version: Text,
    /// Headline facts at `event_time`.
    pub facts: Headline,
}

/// `churnwatch.churn_warning.v2`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChurnWarning {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id.
    pub event_id: String,
    /// Customer.
    pub customer_id: Text,
    /// `medium` or `high`.
    pub level: &'static str,
    /// Level before (`low` when the episode starts).
    pub previous_level: &'static str,
    /// Matched rules with values.
    pub reasons: Vec<Reason>,
    /// Churn risk index.
    pub risk_index: f64,
    /// Owner (`[interventions]` routing; never empty).
    pub owner: Text,
    /// Due time: event time + the level's SLA.
    pub due: Text,
    /// Intervention.
    pub action: Arc<str>,
    /// `event` or `time`.
    pub trigger: &'static str,
    /// Event time of the cause.
    pub event_time: Text,
    /// When it was emitted.
    pub emitted_at: Text,
    /// The input that caused it.
    pub source: Option<SourceRef>,
    /// The rule set's version.
    pub rules_version: Text,
    /// Headline facts at `event_time`.
    pub facts: Headline,
}

/// `churnwatch.churn_warning_cleared.v2`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningCleared {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id.
    pub event_id: String,
    /// Customer.
    pub customer_id: Text,
    /// Level that was cleared.
    pub previous_level: &'static str,
    /// Owner of the cleared warning's task.
    pub owner: Text,
    /// `event` or `time`.
    pub trigger: &'static str,
    /// Event time of the cause.
    pub event_time: Text,
    /// When it was emitted.
    pub emitted_at: Text,
    /// The input that caused it.
    pub source: Option<SourceRef>,
    /// The rule set's version.
    pub rules_version: Text,
    /// Headline facts at `event_time`.
    pub facts: Headline,
}

/// The current warning on a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningState {
    /// `low`, `medium` or `high`.
    pub level: &'static str,
    /// Matched rules.
    pub reasons: Vec<Reason>,
    /// The latest warning's task: status, owner, who acted and when, due, overdue.
    pub task: TaskState,
}

/// `churnwatch.profile.v2`: the latest state of a customer (compacted topic), with the
/// full facts the alerts leave out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// Schema name.
    pub schema: &'static str,
    /// Customer.
    pub customer_id: Text,
    /// Tier.
    pub tier: Text,
    /// Day the current tier began (`null` when unknown: state restored from before this
    /// was kept).
    pub tier_since: Option<Text>,
    /// The best tier ever held, by `tiers.ranking`.
    pub peak_tier: Option<Text>,
    /// The tier held before the current one (`null`: none, or unknown after a restore
    /// of state from before this was kept).
    pub previous_tier: Option<Text>,
    /// Recommended action for the tier.
    pub action: Arc<str>,
    /// Warning.
    pub warning: WarningState,
    /// The rule set's version.
    pub rules_version: Text,
    /// Facts.
    pub facts: FactsOut,
}

/// `churnwatch.profile_tombstone.v1` (unchanged in contract v2): the customer was erased.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tombstone {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id.
    pub event_id: String,
    /// Customer.
    pub customer_id: Text,
    /// Time of the erase request.
    pub event_time: Text,
    /// When it was emitted.
    pub emitted_at: Text,
    /// The erase request.
    pub source: Option<SourceRef>,
}

/// `churnwatch.dead_letter.v2`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id (from the source position).
    pub event_id: String,
    /// Reason code.
    pub reason: &'static str,
    /// What was wrong (never quotes input strings).
    pub detail: String,
    /// What is kept of the rejected record (`dead_letters.original`: redacted by default).
    pub original: super::redact::Original,
    /// Where it came from.
    pub source: SourceRef,
    /// When it was rejected.
    pub emitted_at: Text,
}

/// Every output kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Tier change.
    TierChanged(Box<TierChanged>),
    /// Warning raised.
    Warning(Box<ChurnWarning>),
    /// Warning cleared.
    Cleared(Box<WarningCleared>),
    /// Latest profile.
    Profile(Box<Profile>),
    /// Warning overdue.
    Overdue(Box<WarningOverdue>),
    /// Customer erased.
    Tombstone(Tombstone),
    /// Rejected input.
    DeadLetter(Box<DeadLetter>),
}

/// Output kinds, for metrics and routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// Tier change.
    TierChanged = 0,
    /// Warning raised.
    Warning = 1,
    /// Warning cleared.
    Cleared = 2,
    /// Profile.
    Profile = 3,
    /// Tombstone.
    Tombstone = 4,
    /// Dead letter.
    DeadLetter = 5,
    /// Warning overdue.
    Overdue = 6,
}

impl OutputKind {
    /// Every kind.
    pub const ALL: [OutputKind; 7] = [
        OutputKind::TierChanged,
        OutputKind::Warning,
        OutputKind::Cleared,
        OutputKind::Profile,
        OutputKind::Tombstone,
        OutputKind::DeadLetter,
        OutputKind::Overdue,
    ];
    /// Label value.
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::TierChanged => "tier_changed",
            OutputKind::Warning => "churn_warning",
            OutputKind::Cleared => "churn_warning_cleared",
            OutputKind::Profile => "profile",
            OutputKind::Tombstone => "profile_tombstone",
            OutputKind::DeadLetter => "dead_letter",
            OutputKind::Overdue => "churn_warning_overdue",
        }
    }
}

impl Output {
    /// Kind.
    pub fn kind(&self) -> OutputKind {
        match self {
            Output::TierChanged(_) => OutputKind::TierChanged,
            Output::Warning(_) => OutputKind::Warning,
            Output::Cleared(_) => OutputKind::Cleared,
            Output::Profile(_) => OutputKind::Profile,
            Output::Tombstone(_) => OutputKind::Tombstone,
            Output::DeadLetter(_) => OutputKind::DeadLetter,
            Output::Overdue(_) => OutputKind::Overdue,
        }
    }

    /// Kafka key: the customer id (none for dead letters).
    pub fn key(&self) -> Option<&str> {
        match self {
            Output::TierChanged(o) => Some(&o.customer_id),
            Output::Warning(o) => Some(&o.customer_id),
            Output::Cleared(o) => Some(&o.customer_id),
            Output::Profile(o) => Some(&o.customer_id),
            Output::Tombstone(o) => Some(&o.customer_id),
            Output::Overdue(o) => Some(&o.customer_id),
            Output::DeadLetter(_) => None,
        }
    }

    /// Deterministic event id (profiles are keyed state, not events: none).
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Output::TierChanged(o) => Some(&o.event_id),
            Output::Warning(o) => Some(&o.event_id),
            Output::Cleared(o) => Some(&o.event_id),
            Output::Profile(_) => None,
            Output::Tombstone(o) => Some(&o.event_id),
            Output::DeadLetter(o) => Some(&o.event_id),
            Output::Overdue(o) => Some(&o.event_id),
        }
    }

    /// Appends the JSON encoding (one line, no newline) to `buf`: the same bytes as
    /// serde_json would write for the struct, by the hand-written encoder of
    /// [`super::json`].
    pub fn write_json(&self, buf: &mut Vec<u8>) {
        match self {
            Output::TierChanged(o) => o.json(buf),
            Output::Warning(o) => o.json(buf),
            Output::Cleared(o) => o.json(buf),
            Output::Profile(o) => o.json(buf),
            Output::Tombstone(o) => o.json(buf),
            Output::DeadLetter(o) => o.json(buf),
            Output::Overdue(o) => o.json(buf),
        }
    }

    /// The JSON encoding as a new buffer.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(512);
        self.write_json(&mut v);
        v
    }
}

/// A deterministic 128-bit id in hex from the parts that identify an output.
///
/// Built without the formatting machinery or a scratch allocation (`format!("{:032x}")`
/// over a heap buffer was ~3 % of replay): the parts go into a stack buffer, the hex
/// digits are written directly.
pub fn stable_id(parts: &[&str]) -> String {
    let mut buf = smallvec::SmallVec::<[u8; 256]>::new();
    for p in parts {
        buf.extend_from_slice(p.as_bytes());
        buf.push(0x1f);
    }
    let h = xxh3_128(&buf);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = HEX[(h >> (124 - 4 * i) & 0xf) as usize];
    }
    // ASCII hex digits: one copy (collecting chars pushed them one at a time, ~1 % of
    // apply in `perf`).
    std::str::from_utf8(&hex).map_or_else(|_| String::new(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct hex writer gives what `format!("{:032x}")` gave (ids are in replay
    /// files and on the topics, so they must not change), also for parts longer than the
    /// stack buffer.
    #[test]
    fn stable_id_is_the_zero_padded_hex_of_the_hash() {
        let long = "x".repeat(300);
        for parts in [
            vec!["tier_changed", "C1", "e1", "", "Champions"],
            vec![""],
            vec!["churn_warning", long.as_str(), "t20000", "high"],
        ] {
            let mut buf = Vec::new();
            for p in &parts {
                buf.extend_from_slice(p.as_bytes());
                buf.push(0x1f);
            }
            assert_eq!(stable_id(&parts), format!("{:032x}", xxh3_128(&buf)));
        }
        // Hashes with leading zero nibbles (1 in 16 of these) keep their width.
        for i in 0..256 {
            let i = i.to_string();
            let h = xxh3_128(format!("{i}\u{1f}").as_bytes());
            assert_eq!(stable_id(&[&i]), format!("{h:032x}"));
        }
    }
}
