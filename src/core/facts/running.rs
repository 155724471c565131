//! Facts kept up to date while the evaluation instant moves forward over one decoded
//! history: running sums per period length, with a cursor per length on the oldest day
//! still inside. Moving to a later day takes out only the days that leave a period (the
//! expiries the deadline search visits as candidates) instead of folding the whole
//! history again. At every instant the facts equal [`Facts::compute_over`]'s, byte for
//! byte (property `running_facts_equal_the_fold`; debug builds also check every step).

use super::{DayCounts, Facts, MAX_LENGTHS};
use crate::core::days::Counts;
use crate::core::settings::Settings;
use crate::core::store::Record;
use crate::core::time::{day_of, Day, Ts};

/// Exact sums of one period. The fold adds saturating, which subtraction cannot undo,
/// so the running form keeps wide sums and clamps them when read: for the non-negative
/// counters the clamp is what saturating additions give in any order; for the amount it
/// is too as long as the sum of |amount| fits an `i64` (then no partial sum of the fold
/// saturated), otherwise [`Running`] folds that period again.
#[derive(Debug, Clone, Copy, Default)]
struct Wide {
    orders: u64,
    visits: u64,
    complaints: u64,
    surveys: u64,
    sat_tenths: u64,
    touches: u64,
    conversions: u64,
    participations: u64,
    amount: i128,
    amount_abs: u128,
}

impl Wide {
    #[inline]
    fn add(&mut self, c: &Counts) {
        self.orders += c.orders as u64;
        self.visits += c.visits as u64;
        self.complaints += c.complaints as u64;
        self.surveys += c.surveys as u64;
        self.sat_tenths += c.sat_tenths as u64;
        self.touches += c.touches as u64;
        self.conversions += c.conversions as u64;
        self.participations += c.participations as u64;
        self.amount += c.amount as i128;
        self.amount_abs += c.amount.unsigned_abs() as u128;
    }

    #[inline]
    fn sub(&mut self, c: &Counts) {
        self.orders -= c.orders as u64;
        self.visits -= c.visits as u64;
        self.complaints -= c.complaints as u64;
        self.surveys -= c.surveys as u64;
        self.sat_tenths -= c.sat_tenths as u64;
        self.touches -= c.touches as u64;
        self.conversions -= c.conversions as u64;
        self.participations -= c.participations as u64;
        self.amount -= c.amount as i128;
        self.amount_abs -= c.amount.unsigned_abs() as u128;
    }

    /// The period's sums as the fold over `inside` (its days, ascending) gives them.
    fn to_counts(self, inside: &[DayCounts]) -> Counts {
        let c = |v: u64| v.min(u32::MAX as u64) as u32;
        let amount = if self.amount_abs <= i64::MAX as u128 {
            self.amount as i64
        } else {
            inside
                .iter()
                .fold(0i64, |a, d| a.saturating_add(d.counts.amount))
        };
        Counts {
            orders: c(self.orders),
            amount,
            visits: c(self.visits),
            complaints: c(self.complaints),
            surveys: c(self.surveys),
            sat_tenths: c(self.sat_tenths),
            touches: c(self.touches),
            conversions: c(self.conversions),
            participations: c(self.participations),
        }
    }
}

/// A customer's facts over one decoded history, moved forward in time by
/// [`Running::advance_to`]. Derived state: built from the history at each evaluation
/// (nothing of it is stored in the record or a snapshot).
#[derive(Debug, Clone)]
pub struct Running<'a> {
    history: &'a [DayCounts],
    /// The record, for the debug builds' check against the fold.
    #[cfg(debug_assertions)]
    rec: &'a Record,
    s: &'a Settings,
    facts: Facts,
    /// Period lengths in use (`Settings::lengths`, at most [`MAX_LENGTHS`]).
    n: usize,
    /// Per length: index of the oldest history day inside the period.
    start: [usize; MAX_LENGTHS],
    /// Per length: index of the oldest day inside the period that carries a field a rule
    /// reads over it (`history.len()`: none); its leaving is the period's next expiry.
    relevant: [usize; MAX_LENGTHS],
    /// The first day on which some period's oldest day leaves it: before it, moving on
    /// changes neither sums nor expiries (most candidates of a short history).
    leave: Day,
    wide: [Wide; MAX_LENGTHS],
}

/// Whether a day is inside a period of `len` days at `today`: the fold's own test (days
/// after `today` count as today's).
#[inline]
fn inside(day: Day, len: u16, today: Day) -> bool {
    (today - day).max(0) < len as i32
}

impl<'a> Running<'a> {
    /// The facts of `rec` with decoded history `history` (ascending days) at `now`: one
    /// pass that adds each day once, to the shortest period holding it, and sums the
    /// periods from the shortest out.
    pub fn new(history: &'a [DayCounts], rec: &'a Record, s: &'a Settings, now: Ts) -> Self {
        let mut r = Running {
            history,
            #[cfg(debug_assertions)]
            rec,
            s,
            facts: Facts::of_record(rec, now, history.last().map(|d| d.day)),
            n: s.lengths.len().min(MAX_LENGTHS),
            start: [history.len(); MAX_LENGTHS],
            relevant: [history.len(); MAX_LENGTHS],
            leave: Day::MAX,
            wide: [Wide::default(); MAX_LENGTHS],
        };
        r.place(day_of(now));
        r.p_alive();
        r
    }

    /// The facts at the latest instant.
    #[inline]
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Moves to `now`: a later day takes out the days that left each period; an earlier
    /// one (no caller does this) rebuilds the sums.
    pub fn advance_to(&mut self, now: Ts) {
        let today = day_of(now);
        self.facts.now = now;
        if today < self.facts.today {
            self.place(today);
        } else if today >= self.leave {
            self.facts.today = today;
            for i in 0..self.n {
                let len = self.s.lengths[i];
                let from = self.start[i];
                let mut j = from;
                while j < self.history.len() && !inside(self.history[j].day, len, today) {
                    self.wide[i].sub(&self.history[j].counts);
                    j += 1;
                }
                if j != from {
                    self.start[i] = j;
                    self.facts.sums[i] = self.wide[i].to_counts(&self.history[j..]);
                    if self.relevant[i] < j {
                        self.relevant[i] = self.first_relevant(i, j);
                    }
                }
            }
            self.expiries();
        } else {
            self.facts.today = today;
        }
        self.p_alive();
        #[cfg(debug_assertions)]
        self.check();
    }

    /// Sets every period's cursor and sums for `today` from scratch.
    fn place(&mut self, today: Day) {
        let h = self.history;
        self.facts.today = today;
        for i in 0..self.n {
            let len = self.s.lengths[i];
            self.start[i] = h.partition_point(|d| !inside(d.day, len, today));
            self.relevant[i] = self.first_relevant(i, self.start[i]);
        }
        // Longer periods start earlier: walk back from the newest day, closing each
        // period once its oldest day has been added.
        let mut acc = Wide::default();
        let mut i = 0;
        for j in (0..h.len()).rev() {
            while i < self.n && self.start[i] > j {
                self.wide[i] = acc;
                i += 1;
            }
            if i == self.n {
                break;
            }
            acc.add(&h[j].counts);
        }
        for w in &mut self.wide[i..self.n] {
            *w = acc;
        }
        for i in 0..self.n {
            self.facts.sums[i] = self.wide[i].to_counts(&h[self.start[i]..]);
        }
        self.expiries();
    }

    /// Index of the first day from `from` on that carries a field rules read over
    /// period `i`.
    fn first_relevant(&self, i: usize, from: usize) -> usize {
        let bits = self.s.rule_fields[i];
        self.history[from..]
            .iter()
            .position(|d| d.mask & bits != 0)
            .map_or(self.history.len(), |k| from + k)
    }

    /// After a period's cursors moved: the next expiry a rule can see, and the first day
    /// on which a period's oldest day leaves.
    fn expiries(&mut self) {
        let today = self.facts.today;
        let mut next: Option<Day> = None;
        let mut leave = Day::MAX;
        for i in 0..self.n {
            let len = self.s.lengths[i] as i32;
            if let Some(d) = self.history.get(self.start[i]) {
                leave = leave.min(d.day + len);
            }
            if let Some(d) = self.history.get(self.relevant[i]) {
                let exp = d.day + len;
                if exp > today {
                    next = Some(next.map_or(exp, |e: Day| e.min(exp)));
                }
            }
        }
        self.facts.next_expiry = next;
        self.leave = leave;
    }

    /// P(alive) at the current day, as the fold computes it (only for daily rule sets).
    fn p_alive(&mut self) {
        self.facts.p_alive = if self.s.daily {
            self.facts.bgnbd_p_alive(self.s)
        } else {
            None
        };
    }

    /// Debug builds: every step equals the fold (P(alive) compared by its bits).
    #[cfg(debug_assertions)]
    fn check(&self) {
        let fold = Facts::compute_over(
            self.history.iter().copied(),
            self.rec,
            self.s,
            self.facts.now,
        );
        let bits = |f: &Facts| f.p_alive.map(f64::to_bits);
        let plain = |f: &Facts| Facts {
            p_alive: None,
            ..f.clone()
        };
        assert!(
            bits(&fold) == bits(&self.facts) && plain(&fold) == plain(&self.facts),
            "running facts differ from the fold: {:?} vs {:?}",
            self.facts,
            fold
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::days::field;
    use crate::core::time::day_start;

    fn day(day: Day, orders: u32, amount: i64) -> DayCounts {
        DayCounts {
            day,
            mask: field::ORDERS | field::AMOUNT,
            counts: Counts {
                orders,
                amount,
                ..Default::default()
            },
        }
    }

    /// Walks day by day over `history` from its first day, comparing with the fold.
    fn walk(history: &[DayCounts]) {
        let s = Settings::defaults();
        let rec = Record::new("c", day_start(history[0].day));
        let first = history[0].day;
        let mut r = Running::new(history, &rec, &s, day_start(first));
        for d in first..first + 400 {
            r.advance_to(day_start(d));
            let fold = Facts::compute_over(history.iter().copied(), &rec, &s, day_start(d));
            assert_eq!(r.facts(), &fold, "day {d}");
        }
    }

    /// Sums the fold saturated: the amount's partial sums leave `i64` (then the period is
    /// folded again), counts beyond `u32` clamp like saturating additions.
    #[test]
    fn saturated_sums_equal_the_fold() {
        walk(&[
            day(20_000, u32::MAX, i64::MAX),
            day(20_010, 5, i64::MAX),
            day(20_050, u32::MAX - 1, -i64::MAX),
            day(20_100, 1, i64::MIN),
            day(20_200, 7, 12),
        ]);
    }

    /// Moving back in time rebuilds the sums.
    #[test]
    fn an_earlier_instant_rebuilds() {
        let h = [day(20_000, 1, 100), day(20_040, 2, 50), day(20_100, 3, -7)];
        let s = Settings::defaults();
        let rec = Record::new("c", day_start(20_000));
        let mut r = Running::new(&h, &rec, &s, day_start(20_300));
        r.advance_to(day_start(20_101));
        let fold = Facts::compute_over(h.iter().copied(), &rec, &s, day_start(20_101));
        assert_eq!(r.facts(), &fold);
    }
}
