//! Who holds which input partition, so that any instance can answer for any customer.
//!
//! Each instance, when it has restored a partition and starts serving it, writes a claim
//! `{partition, url, instance, at}` keyed by the partition number to a small compacted
//! topic (`kafka.topics.members`), and every instance tails that topic into a table. The
//! latest claim of a partition names its holder's advertised HTTP address
//! (`http.advertised_url`). Claims are written through Kafka itself, so they follow every
//! rebalance without a coordinator; between a revocation and the next claim the table
//! still names the old holder, which then answers 503 (it no longer holds the partition)
//! rather than a wrong 404.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::partitioner::Partitioner;

/// A member's claim on an input partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Input partition.
    pub partition: i32,
    /// The holder's advertised HTTP address (`http://host:port`).
    pub url: String,
    /// The holder's instance id (a new one per start).
    pub instance: String,
    /// When the claim was made (ms since the epoch, the service clock).
    pub at: i64,
}

/// The partition → holder table of this instance's view of the group.
#[derive(Debug)]
pub struct Members {
    /// This instance's id.
    pub instance: String,
    /// This instance's advertised URL ("" = HTTP off: it claims nothing).
    pub url: String,
    /// The members topic ("" = routing off).
    pub topic: String,
    /// How the input is partitioned.
    pub partitioner: Partitioner,
    input_partitions: AtomicI32,
    enabled: AtomicBool,
    decided: AtomicBool,
    table: RwLock<HashMap<i32, Claim>>,
}

impl Members {
    /// An empty table for this instance.
    pub fn new(url: &str, topic: &str, partitioner: Partitioner) -> Members {
        let seed = format!(
            "{}-{:?}-{}",
            std::process::id(),
            std::time::SystemTime::now(),
            url
        );
        Members {
            instance: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes())),
            url: url.trim_end_matches('/').to_string(),
            topic: topic.to_string(),
            partitioner,
            input_partitions: AtomicI32::new(0),
            enabled: AtomicBool::new(false),
            decided: AtomicBool::new(false),
            table: RwLock::new(HashMap::new()),
        }
    }

    /// Turns routing on once the members topic exists and the input's partition count
    /// is known.
    pub fn enable(&self, input_partitions: i32) {
        self.input_partitions
            .store(input_partitions, Ordering::SeqCst);
        self.enabled.store(true, Ordering::SeqCst);
        self.decided.store(true, Ordering::SeqCst);
    }

    /// Leaves routing off for good (no members topic).
    pub fn disable(&self) {
        self.decided.store(true, Ordering::SeqCst);
    }

    /// Whether start-up has decided if routing is on (until then look-ups of customers
    /// not held here cannot be answered either way).
    pub fn decided(&self) -> bool {
        self.decided.load(Ordering::SeqCst)
    }

    /// The input's partition count (0 before it is known).
    pub fn input_partitions(&self) -> i32 {
        self.input_partitions.load(Ordering::SeqCst)
    }

    /// Whether look-ups can be routed.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// The input partition of `customer_id` (`None` before the partition count is known).
    pub fn partition_of(&self, customer_id: &str) -> Option<i32> {
        let n = self.input_partitions.load(Ordering::SeqCst);
        (n > 0).then(|| self.partitioner.partition(customer_id.as_bytes(), n))
    }

    /// The latest claim on `partition`.
    pub fn holder(&self, partition: i32) -> Option<Claim> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .cloned()
    }

    /// Every partition's latest claim, by partition.
    pub fn claims(&self) -> Vec<Claim> {
        let mut v: Vec<Claim> = self
            .table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.partition);
        v
    }

    /// The record that claims `partition` for this instance (key, value), or `None` when
    /// this instance has no address to advertise or routing is off.
    pub fn claim_record(&self, partition: i32, now_ms: i64) -> Option<(String, Vec<u8>)> {
        if self.url.is_empty() || self.topic.is_empty() {
            return None;
        }
        let c = Claim {
            partition,
            url: self.url.clone(),
            instance: self.instance.clone(),
            at: now_ms,
        };
        Some((partition.to_string(), serde_json::to_vec(&c).ok()?))
    }

    /// Applies a record read from the members topic (later records win: one key lives in
    /// one partition, so the topic orders a partition's claims).
    pub fn apply(&self, value: Option<&[u8]>) {
        let Some(c) = value.and_then(|v| serde_json::from_slice::<Claim>(v).ok()) else {
            return;
        };
        self.table
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.partition, c);
    }
}

/// Tails the members topic into `members` until `stop()` says so (run on its own
/// thread). Reads from the beginning: the topic is compacted and holds one claim per
/// input partition.
pub fn tail(base: &ClientConfig, members: Arc<Members>, stop: impl Fn() -> bool) {
    let mut c = base.clone();
    c.set("enable.auto.commit", "false")
        .set(
            "group.id",
            format!("churnwatch-members-{}", members.instance),
        )
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = match c.create() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the members reader; look-ups of customers held elsewhere answer 503");
            return;
        }
    };
    let mut assigned = false;
    while !stop() {
        if !assigned {
            match consumer.fetch_metadata(Some(&members.topic), Duration::from_secs(5)) {
                Ok(md) => {
                    let mut tpl = TopicPartitionList::new();
                    for t in md.topics().iter().filter(|t| t.error().is_none()) {
                        for p in t.partitions() {
                            let _ =
                                tpl.add_partition_offset(&members.topic, p.id(), Offset::Beginning);
                        }
                    }
                    if tpl.count() > 0 && consumer.assign(&tpl).is_ok() {
                        assigned = true;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "members topic metadata"),
            }
            if !assigned {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => members.apply(m.payload()),
            Some(Err(e)) => tracing::debug!(error = %e, "members topic read"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_claim_wins_and_routing_needs_the_partition_count() {
        let a = Members::new("http://10.0.0.1:8080/", "m", Partitioner::Murmur2);
        let b = Members::new("http://10.0.0.2:8080", "m", Partitioner::Murmur2);
        assert_eq!(a.partition_of("C1"), None);
        a.enable(6);
        assert!(a.partition_of("C1").is_some_and(|p| (0..6).contains(&p)));
        let (k, v) = a.claim_record(3, 1).unwrap();
        assert_eq!(k, "3");
        a.apply(Some(&v));
        assert_eq!(a.holder(3).unwrap().url, "http://10.0.0.1:8080");
        let (_, v) = b.claim_record(3, 2).unwrap();
        a.apply(Some(&v));
        assert_eq!(a.holder(3).unwrap().instance, b.instance);
        a.apply(Some(b"not json"));
        a.apply(None);
        assert_eq!(a.claims().len(), 1);
        assert!(Members::new("", "m", Partitioner::Murmur2)
            .claim_record(0, 0)
            .is_none());
    }
}
