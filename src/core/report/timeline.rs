//! The report's time-dependent figures kept as a day-indexed difference array
//! ([`Timeline`]), each customer's contribution to it, and the static (time-independent)
//! part of a customer's sums.

use super::*;

/// Number of time-dependent figures a [`Timeline`] tracks.
pub const TIMED: usize = 6;
/// Indices of the timed figures.
pub mod timed {
    /// Customers who ordered in the previous period.
    pub const PREVIOUS_BUYERS: usize = 0;
    /// …and in the last one.
    pub const RETAINED: usize = 1;
    /// Customers whose last order is within the longest window.
    pub const ACTIVE: usize = 2;
    /// Customers with a complaint in the last period.
    pub const COMPLAINERS: usize = 3;
    /// Satisfaction answers in the last period.
    pub const SURVEYS: usize = 4;
    /// Their sum, tenths.
    pub const SAT_TENTHS: usize = 5;
}

/// The time-dependent figures of the report, kept incrementally as a difference array over
/// days: every customer contributes +1 where one of its figures starts to hold and −1
/// where it stops (e.g. "ordered in the previous period" holds from an order day plus 90
/// to plus 180). A figure at day t is the sum of all points up to t, so the report needs no
/// pass over the customers, and a customer's update touches only its own points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    points: std::collections::BTreeMap<Day, [i64; TIMED]>,
}

impl Timeline {
    /// Adds `sign` × a customer's contribution.
    pub fn apply(&mut self, contribution: &[(Day, [i64; TIMED])], sign: i64) {
        for (d, v) in contribution {
            let p = self.points.entry(*d).or_default();
            for i in 0..TIMED {
                p[i] += sign * v[i];
            }
            if p.iter().all(|x| *x == 0) {
                self.points.remove(d);
            }
        }
    }

    /// The figures at day `t`.
    pub fn at(&self, t: Day) -> [i64; TIMED] {
        let mut s = [0i64; TIMED];
        for v in self.points.range(..=t).map(|(_, v)| v) {
            for i in 0..TIMED {
                s[i] += v[i];
            }
        }
        s
    }

    /// Days with a point (for memory accounting).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no customer contributes.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Merges sorted half-open intervals into disjoint ones.
pub(super) fn merge(iv: &mut Vec<(Day, Day)>) {
    iv.sort_unstable();
    let mut out: Vec<(Day, Day)> = Vec::with_capacity(iv.len());
    for &(a, b) in iv.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *iv = out;
}

fn points(iv: &[(Day, Day)], fig: usize, out: &mut Vec<(Day, [i64; TIMED])>) {
    for &(a, b) in iv {
        let mut up = [0; TIMED];
        up[fig] = 1;
        let mut down = [0; TIMED];
        down[fig] = -1;
        out.push((a, up));
        out.push((b, down));
    }
}

/// A customer's contribution to the [`Timeline`], from its day history and last order day
/// (the same definitions as [`ReportSums::add_customer`]).
///
/// The processor removes a customer's old contribution as computed from its current
/// history, which may have lost days to pruning since it was added. That is harmless:
/// history is kept for at least two periods (`Settings::retention_days` ≥ 2 ×
/// [`period_days`]), so every interval a pruned day starts has ended by the customer's
/// clock, and what stays behind is a +1/−1 pair in the past that no later day sees.
pub fn contribution(
    s: &Settings,
    history: &[u8],
    last_order_day: Option<Day>,
    out: &mut Vec<(Day, [i64; TIMED])>,
) {
    out.clear();
    let p = period_days(s) as i32;
    let longest = *s.windows.last().unwrap_or(&365) as i32;
    let (mut prev, mut last, mut complained) = (Vec::new(), Vec::new(), Vec::new());
    for e in days::iter(history) {
        if e.counts.orders > 0 {
            prev.push((e.day + p, e.day + 2 * p));
            last.push((e.day, e.day + p));
        }
        if e.counts.complaints > 0 {
            complained.push((e.day, e.day + p));
        }
        if e.counts.surveys > 0 {
            let mut up = [0; TIMED];
            up[timed::SURVEYS] = e.counts.surveys as i64;
            up[timed::SAT_TENTHS] = e.counts.sat_tenths as i64;
            out.push((e.day, up));
            out.push((e.day + p, up.map(|x| -x)));
        }
    }
    merge(&mut prev);
    merge(&mut last);
    merge(&mut complained);
    // Retained: in a previous-period interval and a last-period interval at once.
    let mut both = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < prev.len() && j < last.len() {
        let (a, b) = (prev[i].0.max(last[j].0), prev[i].1.min(last[j].1));
        if a < b {
            both.push((a, b));
        }
        if prev[i].1 < last[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    points(&prev, timed::PREVIOUS_BUYERS, out);
    points(&both, timed::RETAINED, out);
    points(&complained, timed::COMPLAINERS, out);
    if let Some(d) = last_order_day {
        points(&[(d, d + longest)], timed::ACTIVE, out);
    }
}

/// What a customer adds to the time-independent sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Static {
    /// Tier index (the fallback for a customer without one yet).
    pub tier: usize,
    /// Lifetime orders.
    pub orders: u32,
    /// Lifetime net spend, cents.
    pub spend_cents: i64,
    /// Latest NPS answer.
    pub nps: Option<u8>,
}

impl ReportSums {
    /// Adds `sign` × a customer's time-independent part (kept live by the processor).
    pub(crate) fn apply_static(&mut self, c: &Static, sign: i64) {
        let add = |x: &mut u64, v: u64| *x = (*x as i64 + sign * v as i64).max(0) as u64;
        let t = &mut self.tiers[c.tier];
        add(&mut t.customers, 1);
        add(&mut t.orders, c.orders as u64);
        t.spend_cents += sign * c.spend_cents;
        add(&mut self.customers, 1);
        add(&mut self.orders, c.orders as u64);
        self.spend_cents += sign * c.spend_cents;
        if c.orders >= 2 {
            add(&mut self.repeat_buyers, 1);
        }
        if let Some(n) = c.nps {
            add(&mut self.nps[0], 1);
            if n >= 9 {
                add(&mut self.nps[1], 1);
            } else if n <= 6 {
                add(&mut self.nps[2], 1);
            }
        }
    }

    /// Sets the timed figures from a timeline at the sums' day.
    pub(crate) fn set_timed(&mut self, t: [i64; TIMED]) {
        let u = |v: i64| v.max(0) as u64;
        self.previous_buyers = u(t[timed::PREVIOUS_BUYERS]);
        self.retained = u(t[timed::RETAINED]);
        self.active = u(t[timed::ACTIVE]);
        self.complainers = u(t[timed::COMPLAINERS]);
        self.surveys = u(t[timed::SURVEYS]);
        self.sat_tenths = u(t[timed::SAT_TENTHS]);
    }
}
