//! librdkafka's in-process mock cluster for tests that run `churnwatch run` without an
//! external broker: the topics the default config names, a producer that fails the test
//! on a lost record, the wait for the service to have consumed (and made durable) the
//! input, and a guard that kills the service however the test ends.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::ClientConfig;

use crate::net::http_get;

/// The input topic and the output topics of `config/default.toml`.
pub const TOPICS: [&str; 6] = [
    "customer-events",
    "churnwatch.tier-changes",
    "churnwatch.churn-warnings",
    "churnwatch.profiles",
    "churnwatch.dead-letters",
    "churnwatch.changelog",
];

/// A one-broker mock cluster with [`TOPICS`], `partitions` each.
pub fn cluster(partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    for t in TOPICS {
        cluster.create_topic(t, partitions, 1).unwrap();
    }
    cluster
}

/// Records delivery failures, which `BaseProducer::flush` does not report.
struct Deliveries(std::sync::Mutex<Vec<String>>);
impl rdkafka::ClientContext for Deliveries {}
impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r {
            self.0.lock().unwrap().push(e.to_string());
        }
    }
}

/// Writes (key, value) records to the input topic; every one must be delivered.
pub fn produce(brokers: &str, lines: &[(String, String)]) {
    let p: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create_with_context(Deliveries(std::sync::Mutex::new(Vec::new())))
        .unwrap();
    for (key, value) in lines {
        p.send(BaseRecord::to("customer-events").key(key).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
    let failed = p.context().0.lock().unwrap().clone();
    assert!(failed.is_empty(), "not delivered: {failed:?}");
}

/// Waits until the service on `port` has handled `events` input records and made them
/// durable.
pub fn wait_consumed(port: u16, token: &str, events: u64) {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the service did not consume the input"
        );
        if let Some((200, body)) = http_get(port, "/v1/status", Some(token)) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let durable = v["partitions"]
                .as_array()
                .is_some_and(|ps| ps.iter().all(|p| p["durable_offset"] == p["next_offset"]));
            if v["events"].as_u64().unwrap_or(0) >= events && durable {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the HTTP server on `port` to accept connections.
pub fn wait_http(port: u16) {
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "HTTP never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the service when the test ends, however it ends.
pub struct Killed(pub std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
