//! Event → output latency samples in whole milliseconds, with nearest-rank quantiles
//! (the e2e benchmark and the metrics read them).

/// Event → output latencies in whole milliseconds (the resolution of Kafka timestamps).
#[derive(Debug, Clone)]
pub struct Latency {
    /// Count per millisecond, 0 ..= 9 999; the last bucket holds everything above.
    pub(super) counts: Vec<u64>,
    pub(super) total: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            counts: vec![0; 10_001],
            total: 0,
        }
    }
}

impl Latency {
    /// Adds one sample.
    pub fn record(&mut self, ms: u64) {
        let i = (ms as usize).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in ms, or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some(self.counts.len() as u64 - 1)
    }

    /// Adds every sample of `other` (the workers' samples, as the instance's).
    pub fn merge(&mut self, other: &Latency) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Forgets all samples.
    pub fn reset(&mut self) {
        *self = Latency::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Latency;

    #[test]
    fn latency_quantiles_are_nearest_rank() {
        let mut l = Latency::default();
        assert_eq!(l.quantile(0.5), None);
        for ms in 1..=100 {
            l.record(ms);
        }
        l.record(1_000_000);
        assert_eq!(l.count(), 101);
        assert_eq!(l.quantile(0.5), Some(51));
        assert_eq!(l.quantile(0.99), Some(100));
        assert_eq!(l.quantile(1.0), Some(10_000), "overflow bucket");
        l.reset();
        assert_eq!(l.count(), 0);
    }
}
