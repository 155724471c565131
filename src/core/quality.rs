//! The data-quality view of the input (DOMAIN.md §7): per event type, how many messages
//! were seen, rejected (by reason), duplicated or late, so an operator sees a broken
//! upstream feed before the sales team sees wrong tiers. The processor counts
//! ([`QualitySums`], mergeable over partitions like the report's other sums); the report
//! shows them as [`DataQuality`] and the metrics adapter exports the same counts.
//!
//! A rejected message whose `type` cannot be read (not JSON, no `type`, an unknown one)
//! counts under the fixed type `unknown`, so the label set stays small and fixed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::event::{EventKind, RejectReason};

/// Type slots: every [`EventKind`] by its index, then `unknown`.
pub const TYPES: usize = EventKind::ALL.len() + 1;

/// The label of the last type slot.
pub const UNKNOWN_TYPE: &str = "unknown";

/// The type label of slot `i` (`unknown` for the last).
pub fn type_name(i: usize) -> &'static str {
    EventKind::ALL.get(i).map_or(UNKNOWN_TYPE, |k| k.name())
}

fn slot(kind: Option<EventKind>) -> usize {
    kind.map_or(TYPES - 1, EventKind::index)
}

/// Counts of one event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TypeCounts {
    /// Messages of this type: valid (duplicates included) and rejected.
    pub seen: u64,
    /// Rejected, by [`RejectReason::index`].
    pub rejected: [u64; RejectReason::ALL.len()],
    /// Valid events whose event id was already applied for the customer.
    pub duplicates: u64,
    /// Valid events older than the partition's watermark.
    pub late: u64,
}

/// Data-quality counts by type slot. Cumulative since the processor started, like the
/// report's tier transitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QualitySums {
    /// By type slot (see [`TYPES`]).
    pub types: [TypeCounts; TYPES],
}

impl QualitySums {
    /// A valid event of `kind` (a duplicate too).
    #[inline]
    pub fn valid(&mut self, kind: EventKind) {
        self.types[kind.index()].seen += 1;
    }

    /// A rejected message; `kind` is its type if it could be read.
    #[inline]
    pub fn rejected(&mut self, kind: Option<EventKind>, reason: RejectReason) {
        let t = &mut self.types[slot(kind)];
        t.seen += 1;
        t.rejected[reason.index()] += 1;
    }

    /// Adds another partition's counts.
    pub fn merge(&mut self, o: &QualitySums) {
        for (a, b) in self.types.iter_mut().zip(&o.types) {
            a.seen += b.seen;
            a.duplicates += b.duplicates;
            a.late += b.late;
            for (x, y) in a.rejected.iter_mut().zip(&b.rejected) {
                *x += y;
            }
        }
    }

    /// The report's section.
    pub fn finish(&self) -> DataQuality {
        let line = |name: &'static str, t: &TypeCounts| {
            let rejected: u64 = t.rejected.iter().sum();
            TypeQuality {
                r#type: name,
                events: t.seen,
                rejected,
                rejected_share: share(rejected, t.seen),
                rejected_by_reason: RejectReason::ALL
                    .iter()
                    .zip(&t.rejected)
                    .filter(|(_, n)| **n > 0)
                    .map(|(r, n)| (r.code(), *n))
                    .collect(),
                duplicates: t.duplicates,
                late: t.late,
                abnormal_frequency: t.rejected[RejectReason::AbnormalFrequency.index()],
                unknown_currency: t.rejected[RejectReason::UnknownCurrency.index()],
            }
        };
        let mut total = QualitySums::default();
        for t in &self.types {
            total.merge(&QualitySums {
                types: std::array::from_fn(|i| if i == 0 { *t } else { TypeCounts::default() }),
            });
        }
        let overall = line("all", &total.types[0]);
        DataQuality {
            overall,
            by_type: (0..TYPES)
                .map(|i| line(type_name(i), &self.types[i]))
                .collect(),
        }
    }
}

fn share(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// One type's line of the data-quality section.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TypeQuality {
    /// Event type (`unknown`: rejected before a known type could be read; `all`: the total).
    pub r#type: &'static str,
    /// Messages seen: valid (duplicates included) and rejected.
    pub events: u64,
    /// Of which rejected to the dead-letter topic.
    pub rejected: u64,
    /// `rejected / events` (0–1; `null` without events).
    pub rejected_share: Option<f64>,
    /// Rejections by reason code (reasons with a count only).
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Duplicates dropped (same event id for the customer).
    pub duplicates: u64,
    /// Events older than the watermark (applied, reported as late).
    pub late: u64,
    /// Orders flagged (and rejected) as abnormal frequency.
    pub abnormal_frequency: u64,
    /// Rejected for a currency without a rate or a malformed code.
    pub unknown_currency: u64,
}

/// The report's `data_quality` section: counts since the processors holding the
/// partitions started (a partition moved to another instance starts again there).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DataQuality {
    /// Every type together.
    pub overall: TypeQuality,
    /// Each event type, then `unknown`.
    pub by_type: Vec<TypeQuality>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_finish_by_type() {
        let mut a = QualitySums::default();
        for _ in 0..18 {
            a.valid(EventKind::Order);
        }
        a.types[EventKind::Order.index()].duplicates += 1;
        a.rejected(Some(EventKind::Order), RejectReason::UnknownCurrency);
        let mut b = QualitySums::default();
        b.rejected(Some(EventKind::Order), RejectReason::AbnormalFrequency);
        b.rejected(None, RejectReason::InvalidJson);
        b.valid(EventKind::Visit);
        b.types[EventKind::Visit.index()].late += 1;
        a.merge(&b);
        let d = a.finish();
        let order = &d.by_type[0];
        assert_eq!(
            (order.r#type, order.events, order.rejected),
            ("order", 20, 2)
        );
        assert_eq!(order.rejected_share, Some(0.1));
        assert_eq!(
            (
                order.duplicates,
                order.abnormal_frequency,
                order.unknown_currency
            ),
            (1, 1, 1)
        );
        assert_eq!(
            order.rejected_by_reason,
            BTreeMap::from([("abnormal_frequency", 1), ("unknown_currency", 1)])
        );
        let unknown = d.by_type.last().unwrap();
        assert_eq!(
            (unknown.r#type, unknown.events, unknown.rejected_share),
            ("unknown", 1, Some(1.0))
        );
        assert_eq!(d.by_type[EventKind::Visit.index()].late, 1);
        assert_eq!(d.by_type[EventKind::Survey.index()].rejected_share, None);
        assert_eq!(
            (d.overall.events, d.overall.rejected, d.overall.late),
            (22, 3, 1)
        );
        assert_eq!(d.by_type.len(), TYPES);
        assert_eq!(
            d.by_type[EventKind::Intervention.index()].r#type,
            "intervention"
        );
    }
}
