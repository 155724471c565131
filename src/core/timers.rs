//! Deadlines indexed by day. Deadlines are whole days, so a map from day to the slots due
//! that day pops a whole day at once and costs 4 bytes per entry; it replaced a binary
//! heap of (day, slot) whose pops were 6 % of replay time over millions of entries.
//!
//! Entries are never removed early: a customer whose deadline moves gets a new entry and
//! the old one is skipped when its day comes (the record's `timer_day` no longer matches).

use std::collections::BTreeMap;

use super::time::Day;

/// Slots due per day.
#[derive(Debug, Default)]
pub struct Timers {
    days: BTreeMap<Day, Vec<u32>>,
    len: usize,
}

impl Timers {
    /// Schedules `slot` for `day`.
    pub fn push(&mut self, day: Day, slot: u32) {
        self.days.entry(day).or_default().push(slot);
        self.len += 1;
    }

    /// Takes the earliest day's entries if that day is at or before `today`.
    pub fn pop_due(&mut self, today: Day) -> Option<(Day, Vec<u32>)> {
        let entry = self.days.first_entry()?;
        if *entry.key() > today {
            return None;
        }
        let (day, slots) = entry.remove_entry();
        self.len -= slots.len();
        Some((day, slots))
    }

    /// The earliest day with entries.
    pub fn first_day(&self) -> Option<Day> {
        self.days.keys().next().copied()
    }

    /// Entries held (including superseded ones not yet reached).
    pub fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.days.values().map(|v| v.capacity() * 4 + 48).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_days_in_order_up_to_today() {
        let mut t = Timers::default();
        t.push(5, 1);
        t.push(3, 2);
        t.push(5, 3);
        t.push(9, 4);
        assert_eq!(t.len(), 4);
        assert_eq!(t.pop_due(2), None);
        assert_eq!(t.pop_due(6), Some((3, vec![2])));
        assert_eq!(t.pop_due(6), Some((5, vec![1, 3])));
        assert_eq!(t.pop_due(6), None);
        assert_eq!(t.len(), 1);
    }
}
