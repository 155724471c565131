//! Writing generated events to a Kafka topic (`churnwatch gen --brokers … --topic …`):
//! keyed by customer id, idempotent producer with `acks=all`, an optional steady rate, a
//! progress line, and every delivery failure counted and reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::gen::Generator;

/// Where and how fast to produce.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic to write to.
    pub topic: String,
    /// Events per second; `None` = as fast as the broker takes them.
    pub rate: Option<f64>,
    /// Extra librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`, …).
    pub client: Vec<(String, String)>,
    /// Print a progress line on stderr every few seconds.
    pub progress: bool,
}

/// Why producing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The client could not be created (bad settings).
    #[error("cannot create the Kafka producer: {0}; check --brokers and the client settings")]
    Client(#[source] KafkaError),
    /// Messages were not acknowledged.
    #[error("{failed} of {sent} events were not delivered to topic `{topic}` (first error: {first}); is the broker reachable and does the topic exist?")]
    Delivery {
        /// Messages handed to the producer.
        sent: u64,
        /// Messages that failed.
        failed: u64,
        /// Topic.
        topic: String,
        /// The first error seen.
        first: String,
    },
    /// The flush at the end did not complete.
    #[error("timed out waiting for {0} outstanding deliveries")]
    Flush(i32),
}

/// Counts acknowledgements and remembers the first failure.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

#[derive(Clone)]
struct Context(Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// Produces every line of `gen` to the topic and waits for all acknowledgements.
/// Returns the number of events delivered.
pub fn produce(mut gen: Generator, opts: &ProduceOptions) -> Result<u64, ProduceError> {
    let deliveries = Arc::new(Deliveries::default());
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &opts.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // Kafka's default partitioner (Java clients): what kafka.input_partitioner assumes.
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "60000");
    for (k, v) in &opts.client {
        cfg.set(k, v);
    }
    let producer: ThreadedProducer<Context> = cfg
        .create_with_context(Context(deliveries.clone()))
        .map_err(ProduceError::Client)?;

    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut buf = Vec::with_capacity(512);
    let mut sent = 0u64;
    while gen.next_line(&mut buf) {
        if let Some(rate) = opts.rate.filter(|r| *r > 0.0) {
            // Steady rate: wait until this event's slot.
            let due = Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let key = gen.key().map(str::to_owned);
        loop {
            let mut record = BaseRecord::to(&opts.topic).payload(&buf[..]);
            if let Some(k) = key.as_deref() {
                record = record.key(k);
            }
            match producer.send(record) {
                Ok(()) => break,
                // The local queue is full: let deliveries drain, then retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    deliveries.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = deliveries.first_error.lock() {
                        first.get_or_insert_with(|| e.to_string());
                    }
                    break;
                }
            }
        }
        sent += 1;
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "gen: {sent} sent, {} acknowledged, {:.0} events/s",
                deliveries.acked.load(Ordering::Relaxed),
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|_| ProduceError::Flush(producer.in_flight_count()))?;
    let failed = deliveries.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = deliveries
            .first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        return Err(ProduceError::Delivery {
            sent,
            failed,
            topic: opts.topic.clone(),
            first,
        });
    }
    Ok(deliveries.acked.load(Ordering::Relaxed))
}
