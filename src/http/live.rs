//! The console's memory of what happened, fed by the service's output hook and by a
//! sampler of the engine: alerts for the live stream (`/v1/alerts/stream`), when each
//! open warning was raised and is due (the state keeps the level, not the raise time),
//! and a small per-day time series (customers per tier, warnings raised, cleared and
//! overdue) for the overview. In memory only: it starts empty with the process, which is
//! why it lives here and not in the pure core or the changelog.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::core::output::Output;
use crate::core::time::{day_of, format_date, parse_rfc3339, Day, Ts};
use crate::kafka::{OutputHook, ServiceHandle};

/// Days of the time series kept (a little over the longest default window).
const SERIES_DAYS: usize = 400;

/// Alerts buffered for slow stream readers; a reader that falls further behind skips
/// ahead (the stream says how many it missed) rather than holding the service back.
const STREAM_BUFFER: usize = 1024;

/// When this instance saw a customer's open warning raised.
#[derive(Debug, Clone, Serialize)]
pub struct Raised {
    /// Event time of the raise (RFC 3339).
    pub raised_at: String,
    /// Due time: raise + the level's SLA (RFC 3339).
    pub due: String,
    /// `due` in milliseconds, for comparisons.
    #[serde(skip)]
    pub due_ms: Ts,
}

/// One day of the overview's time series.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayPoint {
    /// The day (YYYY-MM-DD).
    pub date: String,
    /// Customers per tier at the day's last sample (indexed like `tiers`), if sampled.
    pub tiers: Option<Vec<i64>>,
    /// Open warnings (medium, high) at the day's last sample.
    pub open: Option<[i64; 2]>,
    /// Open warnings past their due time at the day's last sample.
    pub overdue: Option<i64>,
    /// Warnings raised that day (medium, high), by event time.
    pub raised: [u64; 2],
    /// Warnings cleared that day.
    pub cleared: u64,
    /// Tier changes that day.
    pub tier_changes: u64,
}

/// Totals by kind since the start (the demo's summary line).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    /// Warnings raised (medium, high).
    pub raised: [u64; 2],
    /// Warnings cleared.
    pub cleared: u64,
    /// Tier changes.
    pub tier_changes: u64,
}

#[derive(Default)]
struct Inner {
    raised: HashMap<String, Raised>,
    days: BTreeMap<Day, DayPoint>,
    totals: Totals,
}

/// The console's live memory; one per service, shared by the hook and the endpoints.
pub struct Live {
    tx: broadcast::Sender<Arc<str>>,
    inner: Mutex<Inner>,
    tier_names: Vec<String>,
}

impl Live {
    /// An empty memory for a rule set with these tier names (in their configured order).
    pub fn new(tier_names: Vec<String>) -> Arc<Live> {
        let (tx, _) = broadcast::channel(STREAM_BUFFER);
        Arc::new(Live {
            tx,
            inner: Mutex::new(Inner::default()),
            tier_names,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain counters: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The output hook to give the service (chain it with others with [`chain`]).
    pub fn hook(self: &Arc<Self>) -> OutputHook {
        let me = Arc::clone(self);
        Arc::new(move |o: &Output| me.observe(o))
    }

    /// Records one output and passes alerts on to stream readers. Only ids, levels,
    /// tiers, rules and times are kept: the outputs carry no personal data, and this
    /// keeps it that way even if one day they did.
    pub fn observe(&self, o: &Output) {
        let msg = match o {
            Output::Warning(w) => {
                let lvl = usize::from(w.level == "high");
                self.tally(
                    &w.event_time,
                    |g| {
                        g.raised.insert(
                            w.customer_id.to_string(),
                            Raised {
                                raised_at: w.event_time.to_string(),
                                due: w.due.to_string(),
                                due_ms: parse_rfc3339(&w.due).unwrap_or(Ts::MAX),
                            },
                        );
                        g.totals.raised[lvl] += 1;
                    },
                    |p| p.raised[lvl] += 1,
                );
                serde_json::json!({
                    "kind": "churn_warning",
                    "customer_id": w.customer_id,
                    "level": w.level,
                    "previous_level": w.previous_level,
                    "rules": w.reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(),
                    "owner": w.owner,
                    "tier": w.facts.tier,
                    "due": w.due,
                    "event_time": w.event_time,
                    "trigger": w.trigger,
                })
            }
            Output::Cleared(c) => {
                self.tally(
                    &c.event_time,
                    |g| {
                        g.raised.remove(c.customer_id.as_str());
                        g.totals.cleared += 1;
                    },
                    |p| p.cleared += 1,
                );
                serde_json::json!({
                    "kind": "churn_warning_cleared",
                    "customer_id": c.customer_id,
                    "previous_level": c.previous_level,
                    "owner": c.owner,
                    "tier": c.facts.tier,
                    "event_time": c.event_time,
                })
            }
            Output::TierChanged(t) => {
                self.tally(
                    &t.event_time,
                    |g| g.totals.tier_changes += 1,
                    |p| p.tier_changes += 1,
                );
                serde_json::json!({
                    "kind": "tier_changed",
                    "customer_id": t.customer_id,
                    "from": t.from,
                    "to": t.to,
                    "trigger": t.trigger,
                    "event_time": t.event_time,
                })
            }
            Output::Overdue(o) => serde_json::json!({
                "kind": "churn_warning_overdue",
                "customer_id": o.customer_id,
                "warning_id": o.warning_id,
                "level": o.level,
                "rule": o.rule,
                "owner": o.owner,
                "task_owner": o.task_owner,
                "status": o.status,
                "due": o.due,
                "event_time": o.event_time,
            }),
            Output::Tombstone(t) => {
                self.lock().raised.remove(t.customer_id.as_str());
                serde_json::json!({"kind": "erased", "customer_id": t.customer_id, "event_time": t.event_time})
            }
            Output::Profile(_) | Output::DeadLetter(_) => return,
        };
        // No receiver is normal (nobody has the console open).
        let _ = self.tx.send(msg.to_string().into());
    }

    /// Updates the memory for one output (`all`) and the series point of its event day
    /// (`day`), under one lock.
    fn tally(
        &self,
        event_time: &str,
        all: impl FnOnce(&mut Inner),
        day: impl FnOnce(&mut DayPoint),
    ) {
        let mut g = self.lock();
        all(&mut g);
        if let Some(p) = day_point(&mut g, event_time) {
            day(p);
        }
    }

    /// A new reader of the alert stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// When this instance saw the customer's open warning raised, if it did.
    pub fn raised(&self, customer_id: &str) -> Option<Raised> {
        self.lock().raised.get(customer_id).cloned()
    }

    /// Raise times of the given open warnings; forgets the others (cleared while this
    /// instance did not hold the customer, or on partitions it gave up).
    pub fn raised_of_open(&self, open: &[&str]) -> HashMap<String, Raised> {
        let mut g = self.lock();
        let keep: std::collections::HashSet<&str> = open.iter().copied().collect();
        g.raised.retain(|k, _| keep.contains(k.as_str()));
        g.raised.clone()
    }

    /// Totals by kind since the start.
    pub fn totals(&self) -> Totals {
        self.lock().totals
    }

    /// Tier names, in the order of [`DayPoint::tiers`].
    pub fn tier_names(&self) -> &[String] {
        &self.tier_names
    }

    /// The time series, oldest day first.
    pub fn series(&self) -> Vec<DayPoint> {
        self.lock().days.values().cloned().collect()
    }

    /// Records the engine's counts as of `now` (the newest watermark) on `now`'s day; the
    /// day's last sample wins.
    pub fn sample(&self, now: Ts, tiers: Vec<i64>, levels: [i64; 3]) {
        let mut g = self.lock();
        let overdue = g.raised.values().filter(|r| r.due_ms < now).count() as i64;
        let day = day_of(now);
        let p = point(&mut g, day);
        p.tiers = Some(tiers);
        p.open = Some([levels[1], levels[2]]);
        p.overdue = Some(overdue);
    }

    /// Samples the engine behind `h` (tier and level counts, newest watermark). Returns
    /// `false` before the first event (no watermark yet).
    pub fn sample_engine(&self, h: &ServiceHandle) -> bool {
        let (now, tiers, levels) = h.with_instance(|e| {
            let mut tiers = vec![0i64; self.tier_names.len()];
            let mut levels = [0i64; 3];
            let mut now: Option<Ts> = None;
            e.for_each_processor(|_, p| {
                for (t, n) in tiers.iter_mut().zip(p.tier_counts()) {
                    *t += n;
                }
                for (l, n) in levels.iter_mut().zip(p.level_counts()) {
                    *l += n;
                }
                now = now.max(p.watermark());
            });
            (now, tiers, levels)
        });
        match now {
            Some(now) => {
                self.sample(now, tiers, levels);
                true
            }
            None => false,
        }
    }
}

/// The series point of the day of an RFC 3339 instant.
fn day_point<'a>(g: &'a mut Inner, instant: &str) -> Option<&'a mut DayPoint> {
    let ts = parse_rfc3339(instant)?;
    Some(point(g, day_of(ts)))
}

fn point(g: &mut Inner, day: Day) -> &mut DayPoint {
    if !g.days.contains_key(&day) {
        while g.days.len() >= SERIES_DAYS {
            let Some(first) = g.days.keys().next().copied() else {
                break;
            };
            if first > day {
                break;
            }
            g.days.remove(&first);
        }
    }
    g.days.entry(day).or_insert_with(|| DayPoint {
        date: format_date(day).to_string(),
        ..Default::default()
    })
}

/// One hook that calls several in turn (the demo prints and feeds the console).
pub fn chain(hooks: Vec<OutputHook>) -> OutputHook {
    Arc::new(move |o: &Output| {
        for h in &hooks {
            h(o);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_keeps_the_newest_days_and_samples_overwrite() {
        let live = Live::new(vec!["a".into(), "b".into()]);
        for d in 0..(SERIES_DAYS as i64 + 10) {
            live.sample(d * 86_400_000, vec![d, 1], [0, 1, 2]);
        }
        live.sample((SERIES_DAYS as i64 + 9) * 86_400_000, vec![7, 7], [0, 0, 0]);
        let s = live.series();
        assert_eq!(s.len(), SERIES_DAYS);
        assert_eq!(s.last().unwrap().tiers.as_deref(), Some(&[7, 7][..]));
        assert_eq!(s[0].date, format_date(10).as_str());
    }
}
