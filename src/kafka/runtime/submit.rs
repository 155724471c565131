//! Writing on behalf of the API and the group: the console's acknowledge / done /
//! dismiss buttons to the input topic (an action becomes an input event like any other
//! and goes through the same log, dedup, changelog and rules), and this instance's
//! partition claims to the members topic. One plain idempotent producer, created on first
//! use; not part of the processing path (which writes outputs, transactionally or not).

use std::sync::OnceLock;

use rdkafka::producer::{FutureProducer, FutureRecord};

use super::*;

/// Where an accepted action landed.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Written {
    /// Input partition.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
}

/// The input-topic writer of a service.
pub struct Submitter {
    config: ClientConfig,
    topic: String,
    producer: OnceLock<Result<FutureProducer, String>>,
}

impl Submitter {
    /// A writer for `k`'s input topic (nothing is contacted until the first write).
    pub(super) fn new(k: &KafkaSettings) -> Submitter {
        let mut config = base_config(k);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Kafka's default partitioner (murmur2), as `kafka.input_partitioner` assumes.
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "10000");
        Submitter {
            config,
            topic: k.input_topic.clone(),
            producer: OnceLock::new(),
        }
    }

    fn producer(&self) -> Result<&FutureProducer, String> {
        self.producer
            .get_or_init(|| {
                self.config
                    .create::<FutureProducer>()
                    .map_err(|e| format!("cannot create the input producer: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Queues one record to `topic` without waiting for it (membership claims: a lost
    /// claim only delays routing until the next rebalance, and is logged).
    pub(super) fn send_detached(&self, topic: &str, key: &str, payload: &[u8]) {
        let r = self.producer().and_then(|p| {
            p.send_result(FutureRecord::to(topic).key(key).payload(payload))
                .map(drop)
                .map_err(|(e, _)| e.to_string())
        });
        if let Err(e) = r {
            tracing::warn!(topic, error = %e, "cannot write a membership claim; look-ups of this partition from other instances answer 503 until the next claim");
        }
    }

    /// Writes one record keyed by `key` and waits for the broker's acknowledgement.
    pub async fn write(&self, key: &str, payload: &[u8]) -> Result<Written, String> {
        let producer = self.producer()?;
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(d) => Ok(Written {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(format!(
                "the input topic {} did not take the event: {e}",
                self.topic
            )),
        }
    }
}
