//! Warm standbys (`kafka.standby_replicas`, Kafka Streams' standby tasks): each instance
//! keeps warm copies of partitions it does not own by tailing their changelog partitions
//! with a consumer of its own, so that when such a partition is assigned to it the
//! restore starts from the copy and reads only the records written since.
//!
//! **Who keeps which copy.** The members table (`members.rs`) says which instance holds
//! which partition. The instances that appear in it, plus this one, sorted by instance id,
//! form a ring; partition *p*'s standbys are the `standby_replicas` instances that follow
//! its holder in the ring. Every instance computes the same ring from the same table, so
//! the copies spread evenly without any coordination, and with two instances and
//! `standby_replicas = 1` each keeps a copy of every partition the other holds.
//!
//! **Hand-over.** When the group assigns a partition here, the rebalance callback takes
//! the copy out of [`Standbys`] (moved, not cloned) and [`super::changelog::catch_up`] reads the
//! tail; from then on the partition is owned and the tail thread stops reading it. When a
//! partition is revoked and the ring still names this instance as its standby, a new copy
//! is read from the beginning of the changelog in the background (the revoked state is
//! dropped, as without standbys).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::WarmCopy;
use super::members::{Claim, Members};
use crate::core::Settings;

/// How often the tail thread re-reads the members table for the partitions to keep.
const PLAN_EVERY: Duration = Duration::from_millis(500);

/// Records applied under one lock of the copies (the rebalance callback waits at most
/// this long to take a copy).
const BATCH: usize = 2_000;

/// The partitions this instance should keep warm copies of: those whose holder is
/// followed by this instance within `replicas` steps in the ring of instance ids.
/// Partitions this instance holds itself are never included.
pub fn choose(claims: &[Claim], me: &str, replicas: usize) -> BTreeSet<i32> {
    let mut ring: Vec<&str> = claims.iter().map(|c| c.instance.as_str()).collect();
    ring.push(me);
    ring.sort_unstable();
    ring.dedup();
    let Some(mine) = ring.iter().position(|i| *i == me) else {
        return BTreeSet::new();
    };
    let n = ring.len();
    claims
        .iter()
        .filter(|c| c.instance != me)
        .filter(|c| {
            let holder = ring.iter().position(|i| *i == c.instance).unwrap_or(mine);
            // Steps from the holder to this instance around the ring (1 ..= n − 1).
            let steps = (mine + n - holder) % n;
            steps >= 1 && steps <= replicas
        })
        .map(|c| c.partition)
        .collect()
}

/// One warm copy being tailed.
struct Tailing {
    copy: WarmCopy,
    /// The reader reported the partition's end and nothing came since.
    at_end: bool,
    /// The partition's end as of the reader's last fetch.
    high: Option<i64>,
}

impl Tailing {
    fn lag(&self) -> Option<i64> {
        if self.at_end {
            return Some(0);
        }
        self.high.map(|h| (h - self.copy.next).max(0))
    }
}

/// A warm copy, as `/v1/status` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StandbyInfo {
    /// Input (and changelog) partition.
    pub partition: i32,
    /// Next changelog offset to read.
    pub changelog_offset: i64,
    /// Changelog records not yet read (`None` before the first fetch).
    pub lag: Option<i64>,
    /// Customers in the copy.
    pub customers: usize,
}

/// The warm copies of this instance, shared by the tail thread and the rebalance
/// callbacks.
pub struct Standbys {
    /// `kafka.standby_replicas`.
    pub replicas: usize,
    copies: Mutex<BTreeMap<i32, Tailing>>,
    /// Partitions this instance owns (never kept as standbys).
    owned: Mutex<BTreeSet<i32>>,
    partitions_gauge: prometheus::IntGauge,
    lag_gauge: prometheus::IntGauge,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Standbys {
    /// No copies yet; `metrics` receives the standby gauges.
    pub fn new(replicas: usize, metrics: &crate::metrics::Metrics) -> Standbys {
        Standbys {
            replicas,
            copies: Mutex::new(BTreeMap::new()),
            owned: Mutex::new(BTreeSet::new()),
            partitions_gauge: metrics.standby_partitions.clone(),
            lag_gauge: metrics.standby_lag.clone(),
        }
    }

    /// Partition `p` is being assigned here: it is owned from now on, and its warm copy,
    /// if there is one, is handed over.
    pub fn take(&self, p: i32) -> Option<WarmCopy> {
        guard(&self.owned).insert(p);
        let t = guard(&self.copies).remove(&p)?;
        tracing::info!(
            partition = p,
            changelog_offset = t.copy.next,
            lag = ?t.lag(),
            customers = t.copy.proc.customers(),
            "warm standby copy promoted"
        );
        Some(t.copy)
    }

    /// Partition `p` is no longer owned here (revoked, lost or shut down).
    pub fn release(&self, p: i32) {
        guard(&self.owned).remove(&p);
    }

    /// The copies held, by partition.
    pub fn list(&self) -> Vec<StandbyInfo> {
        guard(&self.copies)
            .iter()
            .map(|(p, t)| StandbyInfo {
                partition: *p,
                changelog_offset: t.copy.next,
                lag: t.lag(),
                customers: t.copy.proc.customers(),
            })
            .collect()
    }

    /// Keeps copies of exactly `wanted` (minus owned partitions): drops the others, adds
    /// empty ones. Returns the partitions kept and where to read each from.
    fn plan(&self, wanted: &BTreeSet<i32>, settings: &Arc<Settings>) -> Vec<(i32, Offset)> {
        let owned = guard(&self.owned).clone();
        let mut copies = guard(&self.copies);
        copies.retain(|p, _| wanted.contains(p) && !owned.contains(p));
        for p in wanted.difference(&owned) {
            copies.entry(*p).or_insert_with(|| Tailing {
                copy: WarmCopy::new(settings),
                at_end: false,
                high: None,
            });
        }
        copies
            .iter()
            .map(|(p, t)| {
                let from = if t.copy.next > 0 {
                    Offset::Offset(t.copy.next)
                } else {
                    Offset::Beginning
                };
                (*p, from)
            })
            .collect()
    }
}

/// What the tail thread needs.
pub struct TailOptions {
    /// Bootstrap and client settings.
    pub base: ClientConfig,
    /// The changelog topic.
    pub changelog: String,
    /// The rule set (each copy is a processor with it).
    pub settings: Arc<Settings>,
}

/// Tails the changelog partitions this instance keeps warm copies of, until `stop()`
/// (run on its own thread). Errors are logged and retried: a missing copy only means a
/// slower fail-over.
pub fn tail(
    opts: TailOptions,
    standbys: Arc<Standbys>,
    members: Arc<Members>,
    stop: impl Fn() -> bool,
) {
    let mut c = opts.base.clone();
    c.set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set(
            "group.id",
            format!("churnwatch-standby-{}", members.instance),
        )
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = match c.create() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the standby reader; fail-overs restore whole partitions");
            return;
        }
    };
    let mut assigned: Vec<(i32, Offset)> = Vec::new();
    let mut last_plan: Option<Instant> = None;
    while !stop() {
        if last_plan.is_none_or(|t| t.elapsed() >= PLAN_EVERY) {
            last_plan = Some(Instant::now());
            let wanted = choose(&members.claims(), &members.instance, standbys.replicas);
            let plan = standbys.plan(&wanted, &opts.settings);
            let same =
                plan.len() == assigned.len() && plan.iter().zip(&assigned).all(|(a, b)| a.0 == b.0);
            if !same {
                let mut tpl = TopicPartitionList::new();
                for (p, from) in &plan {
                    if let Err(e) = tpl.add_partition_offset(&opts.changelog, *p, *from) {
                        tracing::warn!(partition = p, error = %e, "standby partition not added");
                    }
                }
                match consumer.assign(&tpl) {
                    Ok(()) => {
                        tracing::info!(partitions = ?plan.iter().map(|(p, _)| *p).collect::<Vec<_>>(), "standby partitions");
                        assigned = plan;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot assign the standby partitions; retrying")
                    }
                }
            }
            update_gauges(&standbys, &consumer, &opts.changelog);
        }
        let first = consumer.poll(Duration::from_millis(100));
        if first.is_none() {
            continue;
        }
        let mut copies = guard(&standbys.copies);
        let mut next = first;
        for _ in 0..BATCH {
            match next {
                Some(Ok(m)) => {
                    if let Some(t) = copies.get_mut(&m.partition()) {
                        // A copy re-created since this record was fetched starts over
                        // from its own offset; records below it were applied already.
                        if m.offset() >= t.copy.next {
                            t.copy.apply(m.key(), m.payload(), m.offset());
                            t.at_end = false;
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(t) = copies.get_mut(&p) {
                        t.at_end = true;
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "standby read"),
                None => break,
            }
            next = consumer.poll(Duration::ZERO);
        }
    }
}

fn update_gauges(standbys: &Standbys, consumer: &BaseConsumer, changelog: &str) {
    let mut copies = guard(&standbys.copies);
    let mut lag = 0;
    for (p, t) in copies.iter_mut() {
        if let Some(h) = super::runtime::cached_high_watermark(consumer, changelog, *p) {
            t.high = Some(h);
        }
        lag += t.lag().unwrap_or(0);
    }
    standbys.partitions_gauge.set(copies.len() as i64);
    standbys.lag_gauge.set(lag);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(partition: i32, instance: &str) -> Claim {
        Claim {
            partition,
            url: String::new(),
            instance: instance.into(),
            at: 0,
        }
    }

    #[test]
    fn each_partition_has_its_standbys_after_its_holder_in_the_ring() {
        // a holds 0 and 1, b holds 2, c holds 3.
        let claims = [claim(0, "a"), claim(1, "a"), claim(2, "b"), claim(3, "c")];
        let set = |me, n| choose(&claims, me, n).into_iter().collect::<Vec<_>>();
        assert_eq!(set("b", 1), vec![0, 1]);
        assert_eq!(set("c", 1), vec![2]);
        assert_eq!(set("a", 1), vec![3]);
        // Two replicas: everyone but the holder.
        assert_eq!(set("a", 2), vec![2, 3]);
        assert_eq!(set("c", 2), vec![0, 1, 2]);
        // More replicas than instances: still only the others' partitions.
        assert_eq!(set("b", 8), vec![0, 1, 3]);
        assert!(choose(&claims, "b", 0).is_empty());
        // Each partition gets exactly `n` standbys when there are enough instances.
        for n in 1..=2 {
            for p in 0..4 {
                let keepers = ["a", "b", "c"]
                    .iter()
                    .filter(|me| choose(&claims, me, n).contains(&p))
                    .count();
                assert_eq!(keepers, n, "partition {p} with {n} replicas");
            }
        }
        // An instance that holds nothing yet is in the ring too.
        let two = [claim(0, "a"), claim(1, "a")];
        assert_eq!(choose(&two, "b", 1).len(), 2);
        assert!(choose(&two, "a", 1).is_empty());
    }
}
