//! Mergeable rank sketches for the population analytics (DOMAIN.md §4): percentile ranks
//! of spend, activity and tenure, and the spend shares behind the ABC classes.
//!
//! Why our own and not a crate: a customer's spend changes with every order and as orders
//! leave the 365-day window, so the sketch must *remove* a customer's old value as well as
//! add the new one, exactly and forever, without drifting. The maintained quantile crates
//! (t-digest, KLL, GK, `sketches-ddsketch`) only insert and merge. A DDSketch-style log
//! bucketing (Masson, Rim & Lee 2019) over a Fenwick tree does all three: a bucket count
//! can be decremented, two sketches merge by adding their arrays, and a rank query or an
//! update costs O(log buckets).
//!
//! Error bound (spend): with relative accuracy α and γ = (1 + α)/(1 − α), a value x lands
//! in a bucket whose members all lie within (x/γ, x·γ). The estimated percentile rank of x
//! is therefore between the exact percentile ranks of x/γ and of x·γ: it is the exact rank
//! of a spend within ±2α (±2 % at the default α = 1 %). Activity and tenure are small
//! integers and are counted exactly.
//!
//! Percentile rank is the mid-rank: (customers below + ½ customers equal) ÷ customers × 100.
//!
//! Hash partitioning by customer id makes each partition a random sample of the customer
//! base, so a partition's sketch estimates the whole population's ranks (DESIGN.md).

/// A sketch sent by another instance does not fit this one's (another configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the population sketch does not match this instance's (different analytics settings?)")]
pub struct WireError;

/// A rank sketch's portable form: its size, count and the tree's non-zero cells.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RankWire {
    /// Buckets.
    pub buckets: usize,
    /// Members.
    pub total: i64,
    /// Non-zero tree cells.
    pub cells: Vec<(u32, i64)>,
}

/// A spend sketch's portable form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpendWire {
    /// The counts.
    pub ranks: RankWire,
    /// The spend sums' non-zero tree cells.
    pub sums: Vec<(u32, i64)>,
    /// Total spend, cents.
    pub total_cents: i64,
}

/// A Fenwick (binary indexed) tree of signed sums: point update and prefix sum in O(log n).
#[derive(Debug, Clone, PartialEq)]
struct Fenwick {
    t: Vec<i64>,
}

impl Fenwick {
    fn new(n: usize) -> Fenwick {
        Fenwick { t: vec![0; n + 1] }
    }

    fn add(&mut self, i: usize, v: i64) {
        let mut i = i + 1;
        while i < self.t.len() {
            self.t[i] = self.t[i].wrapping_add(v);
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of positions `0..i`.
    fn prefix(&self, i: usize) -> i64 {
        let mut i = i.min(self.t.len() - 1);
        let mut s = 0i64;
        while i > 0 {
            s = s.wrapping_add(self.t[i]);
            i -= i & i.wrapping_neg();
        }
        s
    }

    /// The tree's non-zero cells (the tree is linear, so cells add like the sums they hold).
    fn cells(&self) -> Vec<(u32, i64)> {
        self.t
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(i, v)| (i as u32, *v))
            .collect()
    }

    /// Adds cells taken with [`Fenwick::cells`] from a tree of the same size.
    fn add_cells(&mut self, cells: &[(u32, i64)]) -> Result<(), WireError> {
        for (i, v) in cells {
            let cell = self.t.get_mut(*i as usize).ok_or(WireError)?;
            *cell = cell.wrapping_add(*v);
        }
        Ok(())
    }

    /// Fenwick trees are linear: the tree of a sum is the sum of the trees.
    fn merge(&mut self, o: &Fenwick) {
        for (a, b) in self.t.iter_mut().zip(&o.t) {
            *a = a.wrapping_add(*b);
        }
    }
}

/// Counts per bucket with O(log n) add, remove and rank.
#[derive(Debug, Clone, PartialEq)]
pub struct RankSketch {
    counts: Fenwick,
    buckets: usize,
    total: i64,
}

impl RankSketch {
    /// A sketch over bucket indices `0..buckets`.
    pub fn new(buckets: usize) -> RankSketch {
        RankSketch {
            counts: Fenwick::new(buckets),
            buckets,
            total: 0,
        }
    }

    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// Adds one member in `bucket` (clamped to the last bucket).
    pub fn add(&mut self, bucket: usize) {
        self.counts.add(bucket.min(self.buckets - 1), 1);
        self.total += 1;
    }

    /// Removes one member from `bucket`, which must have been added.
    pub fn remove(&mut self, bucket: usize) {
        self.counts.add(bucket.min(self.buckets - 1), -1);
        self.total -= 1;
    }

    /// Members held.
    pub fn len(&self) -> u64 {
        self.total.max(0) as u64
    }

    /// Whether the sketch is empty.
    pub fn is_empty(&self) -> bool {
        self.total <= 0
    }

    /// Members in buckets below `bucket`.
    pub fn below(&self, bucket: usize) -> u64 {
        self.counts.prefix(bucket.min(self.buckets)).max(0) as u64
    }

    /// Members in `bucket`.
    pub fn at(&self, bucket: usize) -> u64 {
        let b = bucket.min(self.buckets - 1);
        (self.counts.prefix(b + 1) - self.counts.prefix(b)).max(0) as u64
    }

    /// Mid-rank percentile (0–100) of a value in `bucket`; `None` when empty.
    pub fn percentile(&self, bucket: usize) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let b = bucket.min(self.buckets - 1);
        let v = self.below(b) as f64 + 0.5 * self.at(b) as f64;
        Some(100.0 * v / self.total as f64)
    }

    /// The portable form (for merging another instance's population).
    pub fn wire(&self) -> RankWire {
        RankWire {
            buckets: self.buckets,
            total: self.total,
            cells: self.counts.cells(),
        }
    }

    /// Adds a sketch received in portable form.
    pub fn add_wire(&mut self, w: &RankWire) -> Result<(), WireError> {
        if w.buckets != self.buckets {
            return Err(WireError);
        }
        self.counts.add_cells(&w.cells)?;
        self.total += w.total;
        Ok(())
    }

    /// Adds another sketch over the same buckets (another partition's).
    pub fn merge(&mut self, o: &RankSketch) {
        if o.buckets == self.buckets {
            self.counts.merge(&o.counts);
            self.total += o.total;
        }
    }
}

/// Log-bucketed spend (DDSketch mapping) with per-bucket spend sums for Pareto shares.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendSketch {
    ranks: RankSketch,
    /// Sum of the buckets' representative values, in cents.
    sums: Fenwick,
    total_cents: i64,
    ln_gamma: f64,
    gamma: f64,
}

/// Buckets needed to cover every positive i64 at `ln_gamma`, plus bucket 0 for "no spend".
fn spend_buckets(ln_gamma: f64) -> usize {
    2 + ((i64::MAX as f64).ln() / ln_gamma).ceil() as usize
}

impl SpendSketch {
    /// A sketch with relative accuracy `alpha` (0 < α < 1, e.g. 0.01).
    pub fn new(alpha: f64) -> SpendSketch {
        let alpha = if alpha.is_finite() && alpha > 0.0 && alpha < 0.5 {
            alpha
        } else {
            0.01
        };
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        let ln_gamma = gamma.ln();
        let n = spend_buckets(ln_gamma);
        SpendSketch {
            ranks: RankSketch::new(n),
            sums: Fenwick::new(n),
            total_cents: 0,
            ln_gamma,
            gamma,
        }
    }

    /// The portable form.
    pub fn wire(&self) -> SpendWire {
        SpendWire {
            ranks: self.ranks.wire(),
            sums: self.sums.cells(),
            total_cents: self.total_cents,
        }
    }

    /// Adds a sketch received in portable form (same relative accuracy).
    pub fn add_wire(&mut self, w: &SpendWire) -> Result<(), WireError> {
        if w.ranks.buckets != self.ranks.buckets() {
            return Err(WireError);
        }
        self.ranks.add_wire(&w.ranks)?;
        self.sums.add_cells(&w.sums)?;
        self.total_cents = self.total_cents.wrapping_add(w.total_cents);
        Ok(())
    }

    /// γ = (1 + α)/(1 − α): the ratio between a bucket's bounds.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The bucket of a spend in cents: 0 for none (≤ 0), else 1 + ⌈log_γ(cents)⌉, so
    /// bucket i ≥ 1 holds (γ^(i−2), γ^(i−1)].
    pub fn bucket(&self, cents: i64) -> u16 {
        if cents <= 0 {
            return 0;
        }
        let i = 1 + ((cents as f64).ln() / self.ln_gamma).ceil().max(0.0) as usize;
        i.min(self.ranks.buckets() - 1).min(u16::MAX as usize) as u16
    }

    /// The representative spend of a bucket (cents): within α of every value in it.
    pub fn representative(&self, bucket: u16) -> i64 {
        if bucket == 0 {
            return 0;
        }
        let hi = self.gamma.powi(bucket as i32 - 1);
        (2.0 * hi / (1.0 + self.gamma)).round().max(1.0) as i64
    }

    /// Adds a customer in `bucket`.
    pub fn add(&mut self, bucket: u16) {
        let rep = self.representative(bucket);
        self.ranks.add(bucket as usize);
        self.sums.add(bucket as usize, rep);
        self.total_cents = self.total_cents.wrapping_add(rep);
    }

    /// Removes a customer from `bucket`.
    pub fn remove(&mut self, bucket: u16) {
        let rep = self.representative(bucket);
        self.ranks.remove(bucket as usize);
        self.sums.add(bucket as usize, -rep);
        self.total_cents = self.total_cents.wrapping_sub(rep);
    }

    /// Customers held.
    pub fn len(&self) -> u64 {
        self.ranks.len()
    }

    /// Whether the sketch is empty.
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// Mid-rank percentile (0–100) of a spend bucket.
    pub fn percentile(&self, bucket: u16) -> Option<f64> {
        self.ranks.percentile(bucket as usize)
    }

    /// Share (0–1) of the total spend made by customers in buckets above `bucket`:
    /// the Pareto position behind the ABC classes. `None` without positive spend.
    pub fn share_above(&self, bucket: u16) -> Option<f64> {
        if self.total_cents <= 0 {
            return None;
        }
        let upto = self.sums.prefix(bucket as usize + 1);
        Some((self.total_cents - upto).max(0) as f64 / self.total_cents as f64)
    }

    /// Number of buckets.
    pub fn buckets(&self) -> u16 {
        self.ranks.buckets().min(u16::MAX as usize) as u16
    }

    /// The first bucket (≥ 1) from which `pred` holds for every later bucket, scanning
    /// upwards; `buckets()` if none. For predicates that are monotone in the bucket.
    fn first_where(&self, pred: impl Fn(u16) -> bool) -> u16 {
        (1..self.buckets())
            .find(|b| pred(*b))
            .unwrap_or(self.buckets())
    }

    /// The first bucket of ABC class A and of class B: customers whose bucket has less
    /// than `a` (0.7 by default) or `b` (0.9) of the total spend above it.
    pub fn abc_bounds(&self, a: f64, b: f64) -> (u16, u16) {
        let first_a = self.first_where(|x| self.share_above(x).is_some_and(|s| s < a));
        let first_b = self.first_where(|x| self.share_above(x).is_some_and(|s| s < b));
        (first_a, first_b)
    }

    /// The first bucket of the core customers (mid-rank percentile ≥ `from`, 90 by
    /// default).
    pub fn core_bound(&self, from: f64) -> u16 {
        self.first_where(|b| self.percentile(b).is_some_and(|p| p >= from))
    }

    /// Customers and their representative spend (cents) in buckets `lo..hi`.
    pub fn range(&self, lo: u16, hi: u16) -> (u64, i64) {
        if hi <= lo {
            return (0, 0);
        }
        let n = self.ranks.below(hi as usize) - self.ranks.below(lo as usize);
        let c = self.sums.prefix(hi as usize) - self.sums.prefix(lo as usize);
        (n, c)
    }

    /// Representative spend of every customer held (cents).
    pub fn total_cents(&self) -> i64 {
        self.total_cents
    }

    /// Adds another partition's sketch (same α).
    pub fn merge(&mut self, o: &SpendSketch) {
        if o.ranks.buckets() == self.ranks.buckets() {
            self.ranks.merge(&o.ranks);
            self.sums.merge(&o.sums);
            self.total_cents = self.total_cents.wrapping_add(o.total_cents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact mid-rank percentile of `x` in `values`.
    fn exact(values: &[i64], x: f64) -> f64 {
        let below = values.iter().filter(|&&v| (v as f64) < x).count() as f64;
        let eq = values.iter().filter(|&&v| (v as f64) == x).count() as f64;
        100.0 * (below + 0.5 * eq) / values.len() as f64
    }

    #[test]
    fn rank_sketch_is_exact_on_small_integers() {
        let mut s = RankSketch::new(256);
        for v in [0usize, 1, 1, 2, 5, 5, 5, 9] {
            s.add(v);
        }
        assert_eq!(s.percentile(5), Some(100.0 * (4.0 + 1.5) / 8.0));
        s.remove(5);
        assert_eq!(s.len(), 7);
        assert_eq!(s.percentile(0), Some(100.0 * 0.5 / 7.0));
        let mut t = RankSketch::new(256);
        t.add(300); // clamped into the last bucket
        s.merge(&t);
        assert_eq!(s.len(), 8);
        assert_eq!(s.percentile(255), Some(100.0 * 7.5 / 8.0));
    }

    #[test]
    fn buckets_bound_their_values() {
        let s = SpendSketch::new(0.01);
        for cents in [1i64, 2, 99, 100, 12_345, 10_000_000, i64::MAX / 3, i64::MAX] {
            let b = s.bucket(cents);
            let rep = s.representative(b) as f64;
            assert!(
                (rep - cents as f64).abs() <= 0.0101 * cents as f64 + 1.0,
                "{cents} → bucket {b} → {rep}"
            );
        }
        assert_eq!(s.bucket(0), 0);
        assert_eq!(s.bucket(-5), 0);
    }

    #[test]
    fn removal_restores_the_previous_sketch() {
        let mut s = SpendSketch::new(0.01);
        s.add(s.bucket(500));
        let before = s.clone();
        let b = s.bucket(70_000);
        s.add(b);
        s.remove(b);
        assert_eq!(s, before);
    }

    /// The stated bound on Pareto-distributed spend (seeded): the estimated percentile of
    /// every value lies between the exact percentiles of x/γ and x·γ.
    #[test]
    fn error_bound_holds_on_pareto_spend() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let values: Vec<i64> = (0..20_000)
            .map(|i| {
                if i % 10 == 0 {
                    0
                } else {
                    (100_000.0 / (1.0 - next()).powf(1.0 / 1.16)) as i64
                }
            })
            .collect();
        let mut s = SpendSketch::new(0.01);
        for v in &values {
            s.add(s.bucket(*v));
        }
        let g = s.gamma();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for &x in sorted.iter().step_by(97) {
            let est = s.percentile(s.bucket(x)).unwrap();
            if x == 0 {
                assert_eq!(est, exact(&values, 0.0));
                continue;
            }
            let lo = exact(&values, x as f64 / g);
            let hi = exact(&values, x as f64 * g);
            assert!(
                lo - 1e-9 <= est && est <= hi + 1e-9,
                "{x}: {lo} ≤ {est} ≤ {hi}"
            );
        }
    }
}
