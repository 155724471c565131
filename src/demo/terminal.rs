//! What the demo prints, and in which order. By default only what a sales lead would act
//! on at once: high warnings, changes into or out of the top tier and overdue escalations
//! of high warnings (medium ones are counted in the summary: at the demo's default volume
//! they would be dozens of lines a second), plus a one-line summary every few seconds.
//! `--verbose` prints every alert. Lines are held until every partition's watermark has
//! passed their event time, then printed in event-time order: partitions are consumed
//! side by side, so their alerts arrive interleaved and out of time order.
//!
//! It also tallies what the realism bounds ([`Realism`]) are about: warnings per
//! customer, and per account manager and simulated day.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Mutex;

use crate::core::output::Output;
use crate::core::time::{day_of, parse_rfc3339, Day, Ts};

/// The alert volume the demo's population is meant to produce (checked by its test,
/// printed when it stops): a handful of new warnings per account manager and simulated
/// day, most customers without an open warning, no customer flapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Realism {
    /// Mean new warnings per account manager per simulated day, at most.
    pub max_per_manager_day: f64,
    /// … and at least (the story needs warnings once the first 90 days have passed).
    pub min_per_manager_day: f64,
    /// Share of customers with an open warning, at most.
    pub max_open_share: f64,
    /// Warnings raised for one customer during the run, at most.
    pub max_per_customer: u32,
}

/// The bounds of the default demo.
pub const REALISM: Realism = Realism {
    max_per_manager_day: 5.0,
    min_per_manager_day: 0.1,
    max_open_share: 0.15,
    max_per_customer: 6,
};

/// Counts by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinds {
    /// High warnings raised.
    pub high: u64,
    /// Medium warnings raised.
    pub medium: u64,
    /// Warnings cleared.
    pub cleared: u64,
    /// Changes into or out of the top tier.
    pub top_tier: u64,
    /// Other tier changes.
    pub tier: u64,
    /// Overdue escalations.
    pub overdue: u64,
}

#[derive(Default)]
struct Inner {
    pending: BTreeMap<(Ts, u64), String>,
    seq: u64,
    last_printed: Ts,
    out_of_order: u64,
    since: Kinds,
    total: Kinds,
    per_customer: HashMap<String, u32>,
    per_manager_day: HashMap<(Day, String), u32>,
    first_day: Option<Day>,
    last_day: Option<Day>,
}

/// The demo's terminal.
pub struct Terminal {
    verbose: bool,
    top: String,
    inner: Mutex<Inner>,
}

/// Realism figures of a run.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Mean new warnings per account manager and simulated day, over the days after the
    /// first 90 (before that, no customer can have been silent for 90 days).
    pub per_manager_day: f64,
    /// Most warnings raised for one customer.
    pub max_per_customer: u32,
    /// Lines that could not be printed in time order (0 unless a partition ran late).
    pub out_of_order: u64,
}

impl Terminal {
    /// A terminal; `top` is the top tier's name.
    pub fn new(verbose: bool, top: String) -> Terminal {
        Terminal {
            verbose,
            top,
            inner: Mutex::new(Inner {
                last_printed: Ts::MIN,
                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an output and queues its line if it is to be printed.
    pub fn observe(&self, o: &Output) {
        let mut g = self.lock();
        let (time, shown) = match o {
            Output::Warning(w) => {
                let day = parse_rfc3339(&w.event_time).map(day_of);
                if w.level == "high" {
                    g.since.high += 1;
                } else {
                    g.since.medium += 1;
                }
                *g.per_customer.entry(w.customer_id.to_string()).or_default() += 1;
                if let Some(d) = day {
                    *g.per_manager_day
                        .entry((d, w.owner.to_string()))
                        .or_default() += 1;
                }
                (w.event_time.as_str(), w.level == "high")
            }
            Output::TierChanged(t) => {
                let top = t.to == self.top || t.from.as_deref() == Some(self.top.as_str());
                if top {
                    g.since.top_tier += 1;
                } else {
                    g.since.tier += 1;
                }
                (t.event_time.as_str(), top)
            }
            Output::Cleared(c) => {
                g.since.cleared += 1;
                (c.event_time.as_str(), false)
            }
            // A missed 24-hour deadline is what a team lead acts on at once; missed
            // medium deadlines are counted in the summary.
            Output::Overdue(o) => {
                g.since.overdue += 1;
                (o.event_time.as_str(), o.level == "high")
            }
            Output::Tombstone(t) => (t.event_time.as_str(), false),
            Output::DeadLetter(d) => (d.emitted_at.as_str(), false),
            Output::Profile(_) => return,
        };
        let Some(ts) = parse_rfc3339(time) else {
            return;
        };
        let day = day_of(ts);
        g.first_day = Some(g.first_day.map_or(day, |f| f.min(day)));
        g.last_day = Some(g.last_day.map_or(day, |l| l.max(day)));
        if !(shown || self.verbose) {
            return;
        }
        if let Some(line) = crate::pretty::line(o) {
            g.seq += 1;
            let seq = g.seq;
            g.pending.insert((ts, seq), line);
        }
    }

    /// Prints, in event-time order, the queued lines at or before `frontier` (every
    /// partition's watermark has passed it, so nothing earlier can still come).
    pub fn release(&self, frontier: Ts, out: &mut impl Write) {
        let mut g = self.lock();
        let later = g.pending.split_off(&(frontier.saturating_add(1), 0));
        let due = std::mem::replace(&mut g.pending, later);
        for ((ts, _), line) in due {
            if ts < g.last_printed {
                g.out_of_order += 1;
            }
            g.last_printed = g.last_printed.max(ts);
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// Counts since the last call (and adds them to the totals).
    pub fn take_since(&self) -> Kinds {
        let mut g = self.lock();
        let s = std::mem::take(&mut g.since);
        g.total.high += s.high;
        g.total.medium += s.medium;
        g.total.cleared += s.cleared;
        g.total.top_tier += s.top_tier;
        g.total.tier += s.tier;
        g.total.overdue += s.overdue;
        s
    }

    /// The run's realism figures.
    pub fn measured(&self) -> Measured {
        let g = self.lock();
        let managers: std::collections::HashSet<&str> =
            g.per_manager_day.keys().map(|(_, m)| m.as_str()).collect();
        let (Some(first), Some(last)) = (g.first_day, g.last_day) else {
            return Measured {
                per_manager_day: 0.0,
                max_per_customer: 0,
                out_of_order: g.out_of_order,
            };
        };
        let from = first + 90;
        let raised: u32 = g
            .per_manager_day
            .iter()
            .filter(|((d, _), _)| *d >= from && *d < last)
            .map(|(_, n)| *n)
            .sum();
        let days = (last - from).max(1) as f64;
        Measured {
            per_manager_day: raised as f64 / days / managers.len().max(1) as f64,
            max_per_customer: g.per_customer.values().copied().max().unwrap_or(0),
            out_of_order: g.out_of_order,
        }
    }
}

/// The summary line: what happened since the last one, what is open, how far behind.
pub fn summary(day: &str, k: &Kinds, open: [i64; 2], lag: u64, events_per_s: f64) -> String {
    format!(
        "-- {day}  summary: +{} high +{} medium warnings, {} cleared, {} overdue, {} top-tier and {} other tier changes | open {} high, {} medium | lag {lag} events | {events_per_s:.0} events/s",
        k.high, k.medium, k.cleared, k.overdue, k.top_tier, k.tier, open[1], open[0]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_in_time_order_once_the_frontier_passes_them() {
        let t = Terminal::new(true, "high_value".into());
        let mut g = t.lock();
        g.pending.insert((30, 1), "c".into());
        g.pending.insert((10, 2), "a".into());
        g.pending.insert((20, 3), "b".into());
        drop(g);
        let mut out = Vec::new();
        t.release(20, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\nb\n");
        let mut out = Vec::new();
        t.release(100, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "c\n");
        assert_eq!(t.measured().out_of_order, 0);
    }
}
