//! Writing to the input topic on behalf of an API caller (the console's acknowledge /
//! done / dismiss buttons): one plain idempotent producer, created on first use, so an
//! action becomes an input event like any other and goes through the same log, dedup,
//! changelog and rules. Not part of the processing path (which writes outputs only).

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
            .set("message.timeout.ms", "10000");
        Submitter {
            config,
            topic: k.input_topic.clone(),
            producer: OnceLock::new(),
        }
    }

    /// Writes one record keyed by `key` and waits for the broker's acknowledgement.
    pub async fn write(&self, key: &str, payload: &[u8]) -> Result<Written, String> {
        let producer = self
            .producer
            .get_or_init(|| {
                self.config
                    .create::<FutureProducer>()
                    .map_err(|e| format!("cannot create the input producer: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)?;
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
