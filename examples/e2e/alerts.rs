//! Latency as a downstream reader sees it: a consumer of the input and the alert topics
//! pairs each alert with the input record it came from (the alert's `source`) and measures
//! the input's CreateTime → the moment this consumer receives the alert.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use churnwatch::kafka::runtime::Latency;
use churnwatch::kafka::wall_clock;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::PARTITIONS;

#[derive(serde::Deserialize)]
struct Alert {
    source: Option<Source>,
}

#[derive(serde::Deserialize)]
struct Source {
    partition: i32,
    offset: i64,
}

/// What the reader saw.
#[derive(Default)]
struct Seen {
    /// Input (partition, offset) → CreateTime (ms).
    created: HashMap<(i32, i64), i64>,
    /// Alerts with a source: (input partition, input offset, received at, ms).
    alerts: Vec<(i32, i64, i64)>,
    /// Alerts without a source (fired by a deadline, not by an event).
    unsourced: u64,
}

/// A reader running on its own thread until [`Watch::finish`].
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

/// The alert latencies.
pub struct Outcome {
    /// Input CreateTime → alert received, for inputs created at or after the cut-off.
    pub latency: Latency,
    /// Alerts received in all (with and without a source).
    pub alerts: u64,
    /// Input records read.
    pub inputs: u64,
}

impl Watch {
    /// Reads `input` and the `alert_topics` from their beginning; `read_committed` sets
    /// `isolation.level` (a transactional writer's records show only once committed).
    /// It reads until [`Watch::finish`] and at least `inputs` input records.
    pub fn start(
        brokers: &str,
        input: &str,
        alert_topics: &[&str],
        read_committed: bool,
        inputs: u64,
    ) -> Watch {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "e2e-alert-reader")
            .set("enable.auto.commit", "false")
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for t in std::iter::once(input).chain(alert_topics.iter().copied()) {
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&tpl).unwrap();
        let input = input.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || read(&consumer, &input, inputs, &stop)
        });
        Watch { stop, thread }
    }

    /// Stops once every input record has been read and nothing has arrived for two seconds
    /// (at most a minute after this call), and returns the latencies of alerts whose input
    /// was created at or after `since_ms`.
    pub fn finish(self, since_ms: i64) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.thread.join().expect("alert reader");
        let mut latency = Latency::default();
        for (p, off, received) in &seen.alerts {
            if let Some(&created) = seen.created.get(&(*p, *off)) {
                if created >= since_ms {
                    latency.record((received - created).max(0) as u64);
                }
            }
        }
        Outcome {
            latency,
            alerts: seen.alerts.len() as u64 + seen.unsourced,
            inputs: seen.created.len() as u64,
        }
    }
}

fn read(consumer: &BaseConsumer, input: &str, inputs: u64, stop: &AtomicBool) -> Seen {
    let now = wall_clock();
    let mut seen = Seen::default();
    let (mut last, mut stopping) = (Instant::now(), None);
    loop {
        if stop.load(Ordering::Relaxed) {
            let since = *stopping.get_or_insert_with(Instant::now);
            let done =
                seen.created.len() as u64 >= inputs && last.elapsed() > Duration::from_secs(2);
            if done || since.elapsed() > Duration::from_secs(60) {
                return seen;
            }
        }
        let m = match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                eprintln!("alert reader: {e}");
                continue;
            }
            None => continue,
        };
        let received = now();
        last = Instant::now();
        if m.topic() == input {
            if let Some(ts) = m.timestamp().to_millis() {
                seen.created.insert((m.partition(), m.offset()), ts);
            }
            continue;
        }
        match m
            .payload()
            .and_then(|b| serde_json::from_slice::<Alert>(b).ok())
            .and_then(|a| a.source)
        {
            Some(s) => seen.alerts.push((s.partition, s.offset, received)),
            None => seen.unsourced += 1,
        }
    }
}
