//! A warning's life after it is raised (DOMAIN.md §6): the task state a customer carries
//! for its latest warning ([`Care`]: owner, due time, status, who acted, overdue,
//! recovered), and the mergeable "saved customers" figures over those states
//! ([`SavedSums`]) that the report and the metrics show.
//!
//! Why beside the record and not fields on [`super::store::Record`]: the record is what
//! every event reads, and the task state is read only by warning and intervention paths;
//! the store keeps it in a vector by slot (see `Store::care` for why dense).
//!
//! Why the figures are sums over each customer's *latest* warning, kept live (+1/−1 on
//! every change, like the report's other sums) rather than counters of every warning
//! ever raised: they are then a function of the customers' states, so they survive a
//! crash, a restore from the changelog and a rebalance exactly, and they do not depend on
//! how customers interleave. The Prometheus counters count the flow since start.

use serde::Serialize;

use super::event::InterventionStatus;
use super::settings::Settings;
use super::time::Ts;

/// Care flag: `churn_warning_overdue` was emitted for this warning.
pub const OVERDUE: u8 = 1;
/// Care flag: the customer ordered within `interventions.recovery_period` after the
/// warning.
pub const RECOVERED: u8 = 2;
/// Care flag: the warning was cleared (the customer's level fell back to low): no
/// escalation is due any more, recovery is still counted.
pub const CLEARED: u8 = 4;

/// "Not yet" for optional instants.
pub const NEVER: Ts = i64::MIN;

/// A customer's latest warning and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Care {
    /// The warning's `event_id` (the 16 bytes of its hex).
    pub id: [u8; 16],
    /// Event time of the warning.
    pub raised: Ts,
    /// Due time (raised + the level's SLA).
    pub due: Ts,
    /// First action (any status) or [`NEVER`].
    pub first_acted: Ts,
    /// Latest action or [`NEVER`].
    pub acted: Ts,
    /// Owner (interned label; always set).
    pub owner: u16,
    /// Latest actor (interned label; 0 = none given).
    pub actor: u16,
    /// Latest outcome code (interned label; 0 = none given).
    pub outcome: u16,
    /// [`InterventionStatus`] as a byte.
    pub status: u8,
    /// Warning level (1 medium, 2 high).
    pub level: u8,
    /// Index of the warning's rule in `Settings::warnings` (the first rule of its level
    /// that matched).
    pub rule: u8,
    /// [`OVERDUE`] | [`RECOVERED`] | [`CLEARED`].
    pub flags: u8,
}

impl Care {
    /// The slot of a customer who never had a warning (the store keeps task states in a
    /// vector by slot): no real task was raised at [`NEVER`].
    pub const ABSENT: Care = Care {
        id: [0; 16],
        raised: NEVER,
        due: NEVER,
        first_acted: NEVER,
        acted: NEVER,
        owner: 0,
        actor: 0,
        outcome: 0,
        status: 0,
        level: 0,
        rule: 0,
        flags: 0,
    };

    /// Whether this is [`Care::ABSENT`].
    pub fn is_absent(&self) -> bool {
        self.raised == NEVER
    }

    /// The status.
    pub fn status(&self) -> InterventionStatus {
        InterventionStatus::from_u8(self.status)
    }

    /// Whether an overdue escalation is still to come: not closed, not cleared, not
    /// already escalated.
    pub fn escalation_pending(&self) -> bool {
        !self.status().is_closed() && self.flags & (OVERDUE | CLEARED) == 0
    }

    /// The warning id in hex (its `event_id`).
    pub fn id_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.id {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }
}

/// One rule's saved-customer counts (over each customer's latest warning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedCounts {
    /// Warnings raised.
    pub raised: i64,
    /// Acted on (any status came back: acknowledged, in progress, done or dismissed).
    pub acted: i64,
    /// Acknowledged (or further).
    pub acknowledged: i64,
    /// Done.
    pub done: i64,
    /// Dismissed.
    pub dismissed: i64,
    /// Escalated as overdue.
    pub overdue: i64,
    /// Open past due: not done or dismissed and escalated (the backlog).
    pub overdue_open: i64,
    /// Recovered: ordered again within the recovery period.
    pub recovered: i64,
}

impl SavedCounts {
    fn apply(&mut self, c: &Care, sign: i64) {
        let st = c.status();
        self.raised += sign;
        if c.first_acted != NEVER {
            self.acted += sign;
        }
        if st >= InterventionStatus::Acknowledged && st != InterventionStatus::Dismissed {
            self.acknowledged += sign;
        }
        if st == InterventionStatus::Done {
            self.done += sign;
        }
        if st == InterventionStatus::Dismissed {
            self.dismissed += sign;
        }
        if c.flags & OVERDUE != 0 {
            self.overdue += sign;
            if !st.is_closed() {
                self.overdue_open += sign;
            }
        }
        if c.flags & RECOVERED != 0 {
            self.recovered += sign;
        }
    }

    fn add(&mut self, o: &SavedCounts) {
        self.raised += o.raised;
        self.acted += o.acted;
        self.acknowledged += o.acknowledged;
        self.done += o.done;
        self.dismissed += o.dismissed;
        self.overdue += o.overdue;
        self.overdue_open += o.overdue_open;
        self.recovered += o.recovered;
    }
}

/// Buckets of [`Delays`]: ~5 % wide, from 1 s to beyond ten years.
const DELAY_BUCKETS: usize = 400;
/// Bucket growth factor.
const GAMMA: f64 = 1.05;

/// A mergeable histogram of delays (seconds) with ~2.5 % relative accuracy, for the
/// median time to first action. Removable, like the report's other live sums.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delays {
    counts: Vec<i64>,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            counts: vec![0; DELAY_BUCKETS],
        }
    }
}

impl Delays {
    fn bucket(ms: i64) -> usize {
        let secs = (ms.max(0) / 1000) as f64;
        if secs < 1.0 {
            return 0;
        }
        ((secs.ln() / GAMMA.ln()) as usize + 1).min(DELAY_BUCKETS - 1)
    }

    /// Adds (`sign` = 1) or removes (−1) one delay.
    pub fn apply(&mut self, ms: i64, sign: i64) {
        self.counts[Self::bucket(ms)] += sign;
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &Delays) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }

    /// Delays held.
    pub fn len(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// No delays held.
    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }

    /// The median in seconds (the middle of its bucket), if any delay is held.
    pub fn median_seconds(&self) -> Option<f64> {
        let n = self.len();
        if n <= 0 {
            return None;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if 2 * seen >= n {
                if i == 0 {
                    return Some(0.0);
                }
                // Bucket i holds [γ^(i−1), γ^i): its geometric middle.
                return Some(GAMMA.powf(i as f64 - 0.5).round());
            }
        }
        None
    }
}

/// The saved-customer figures of a partition: counts per warning rule (indexed like
/// `Settings::warnings`) and the first-action delays. Mergeable over partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedSums {
    /// Per rule.
    pub rules: Vec<SavedCounts>,
    /// Time from warning to first action, per rule.
    pub first_action: Vec<Delays>,
}

impl SavedSums {
    /// Empty sums for `rules` warning rules.
    pub fn new(rules: usize) -> SavedSums {
        SavedSums {
            rules: vec![SavedCounts::default(); rules],
            first_action: vec![Delays::default(); rules],
        }
    }

    /// Adds (`sign` = 1) or removes (−1) a customer's care state.
    pub fn apply(&mut self, c: &Care, sign: i64) {
        let r = c.rule as usize;
        if let Some(counts) = self.rules.get_mut(r) {
            counts.apply(c, sign);
        }
        if c.first_acted != NEVER {
            if let Some(d) = self.first_action.get_mut(r) {
                d.apply(c.first_acted.saturating_sub(c.raised), sign);
            }
        }
    }

    /// Adds another partition's sums.
    pub fn merge(&mut self, o: &SavedSums) {
        if self.rules.len() < o.rules.len() {
            self.rules.resize(o.rules.len(), SavedCounts::default());
            self.first_action.resize(o.rules.len(), Delays::default());
        }
        for (a, b) in self.rules.iter_mut().zip(&o.rules) {
            a.add(b);
        }
        for (a, b) in self.first_action.iter_mut().zip(&o.first_action) {
            a.merge(b);
        }
    }
}

/// One warning rule's line of the report's `interventions` (over each customer's latest
/// warning).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedLine {
    /// Warning rule.
    pub rule: String,
    /// Its level.
    pub level: &'static str,
    /// Warnings raised.
    pub raised: i64,
    /// Acted on (any status came back).
    pub acted: i64,
    /// Acknowledged, in progress or done.
    pub acknowledged: i64,
    /// Done.
    pub done: i64,
    /// Dismissed.
    pub dismissed: i64,
    /// Escalated as overdue.
    pub overdue: i64,
    /// Overdue and still not done or dismissed (the backlog).
    pub overdue_open: i64,
    /// Ordered again within `interventions.recovery_period`.
    pub recovered: i64,
    /// Recovered ÷ raised (`null` without warnings).
    pub recovery_rate: Option<f64>,
    /// Median time from the warning to its first action, hours (`null` if none acted).
    pub median_hours_to_first_action: Option<f64>,
}

impl SavedSums {
    /// The report lines, in rule order.
    pub fn lines(&self, s: &Settings) -> Vec<SavedLine> {
        s.warnings
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = self.rules.get(i).copied().unwrap_or_default();
                SavedLine {
                    rule: w.rule.name.clone(),
                    level: w.level.name(),
                    raised: c.raised,
                    acted: c.acted,
                    acknowledged: c.acknowledged,
                    done: c.done,
                    dismissed: c.dismissed,
                    overdue: c.overdue,
                    overdue_open: c.overdue_open,
                    recovered: c.recovered,
                    recovery_rate: (c.raised > 0).then(|| c.recovered as f64 / c.raised as f64),
                    median_hours_to_first_action: self
                        .first_action
                        .get(i)
                        .and_then(Delays::median_seconds)
                        .map(|s| (s / 36.0).round() / 100.0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn care(status: InterventionStatus, flags: u8, acted_after_s: Option<i64>) -> Care {
        Care {
            id: [7; 16],
            raised: 1_000_000,
            due: 2_000_000,
            first_acted: acted_after_s.map_or(NEVER, |s| 1_000_000 + s * 1000),
            acted: NEVER,
            owner: 2,
            actor: 0,
            outcome: 0,
            status: status as u8,
            level: 2,
            rule: 0,
            flags,
        }
    }

    #[test]
    fn sums_add_and_remove_exactly() {
        let mut s = SavedSums::new(1);
        let a = care(InterventionStatus::Done, RECOVERED, Some(3600));
        let b = care(InterventionStatus::Open, OVERDUE, None);
        s.apply(&a, 1);
        s.apply(&b, 1);
        let c = s.rules[0];
        assert_eq!(
            (
                c.raised,
                c.acted,
                c.done,
                c.overdue,
                c.overdue_open,
                c.recovered
            ),
            (2, 1, 1, 1, 1, 1)
        );
        let m = s.first_action[0].median_seconds().unwrap();
        assert!((m - 3600.0).abs() / 3600.0 < 0.03, "{m}");
        s.apply(&b, -1);
        s.apply(&a, -1);
        assert_eq!(s, SavedSums::new(1));
    }

    #[test]
    fn hex_of_the_id() {
        let c = care(InterventionStatus::Open, 0, None);
        assert_eq!(c.id_hex(), "07".repeat(16));
        assert_eq!(
            crate::core::event::parse_warning_id(&c.id_hex()),
            Some([7; 16])
        );
    }
}
