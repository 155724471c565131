//! The processor's counters (events by type, rejections by reason, outputs by kind,
//! transitions, warnings, interventions): the core only counts, the metrics adapter
//! exports.

/// Counters for metrics. The core only counts; the metrics adapter exports.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Valid events by [`EventKind::index`] (duplicates included).
    pub consumed: [u64; 10],
    /// Rejections by [`RejectReason::index`].
    pub rejected: [u64; crate::core::event::RejectReason::ALL.len()],
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Re-consumed events skipped by offset.
    pub already_applied: u64,
    /// Events older than the watermark.
    pub late: u64,
    /// Events older than the retained history (counted in lifetime totals only).
    pub beyond_retention: u64,
    /// Outputs by [`OutputKind`].
    pub outputs: [u64; 7],
    /// Tier transitions: `from * tiers + to`, with `from = tiers` for "no tier yet".
    pub transitions: Vec<u64>,
    /// Warnings raised by level.
    pub warnings_raised: [u64; 3],
    /// Warnings cleared.
    pub warnings_cleared: u64,
    /// Deadlines fired.
    pub timers_fired: u64,
    /// Interventions applied to a warning, by [`crate::core::event::InterventionStatus`] index.
    pub interventions: [u64; 5],
    /// Interventions that matched no warning of the customer (an unknown or superseded
    /// `warning_id`, no warning at all, or one already done or dismissed): counted, no
    /// state change.
    pub interventions_unmatched: u64,
    /// Warnings escalated as overdue, by level.
    pub overdue: [u64; 3],
    /// Warned customers who ordered again within the recovery period, by level.
    pub recovered: [u64; 3],
    /// The input's data quality by event type (the report's `data_quality`).
    pub quality: crate::core::quality::QualitySums,
}

impl Stats {
    /// Adds `o`'s counts to these (totals over partitions, including ones given up).
    pub fn add(&mut self, o: &Stats) {
        fn add_all(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        add_all(&mut self.consumed, &o.consumed);
        add_all(&mut self.rejected, &o.rejected);
        add_all(&mut self.outputs, &o.outputs);
        add_all(&mut self.warnings_raised, &o.warnings_raised);
        add_all(&mut self.interventions, &o.interventions);
        add_all(&mut self.overdue, &o.overdue);
        add_all(&mut self.recovered, &o.recovered);
        self.interventions_unmatched += o.interventions_unmatched;
        if self.transitions.len() < o.transitions.len() {
            self.transitions.resize(o.transitions.len(), 0);
        }
        add_all(&mut self.transitions, &o.transitions);
        self.duplicates += o.duplicates;
        self.already_applied += o.already_applied;
        self.late += o.late;
        self.beyond_retention += o.beyond_retention;
        self.warnings_cleared += o.warnings_cleared;
        self.timers_fired += o.timers_fired;
        self.quality.merge(&o.quality);
    }
}
