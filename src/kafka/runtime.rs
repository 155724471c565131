//! The service loop: a consumer group over the input topic, one [`Processor`] per
//! assigned partition, and the commit protocol of DESIGN.md "Delivery guarantees".
//!
//! Per commit interval: outputs (already sent as they were produced) are acknowledged,
//! then the changelog records of the customers changed in the interval and the
//! partition's checkpoint are written to the partition's own changelog partition and
//! acknowledged, and only then the consumer offsets are committed (for lag tracking).
//! Outputs go to many partitions, so they are acknowledged *before* the changelog is
//! written: a changelog record never describes a state whose outputs could be lost.
//! Within a changelog partition the idempotent producer keeps order, so a checkpoint that
//! is present implies every earlier record of its partition is present.
//!
//! A rebalance runs inside `poll` on this same thread; the callbacks take the engine's
//! lock (never held across `poll`), restore assigned partitions before handing them to
//! librdkafka with their start offsets, and make revoked partitions durable first.
//!
//! Outputs are JSON-encoded and handed to the producer on a second thread (the
//! [`Encoder`]), so the loop's core keeps to consuming and the engine. Each output is
//! counted as outstanding under its interval's tag before it is queued, so an interval's
//! outputs count as unacknowledged until the encoder has produced them *and* the broker
//! has acknowledged them: the commit order above is unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::changelog::{self, erased_marker, Checkpoint, RestoreError, CHECKPOINT_KEY};
use super::config::{describe_client, GroupProtocol, Guarantee, KafkaSettings, Start};
use crate::core::output::{Output, Profile};
use crate::core::time::Ts;
use crate::core::{Ctx, Processor, Settings, Source};

mod transaction;

/// The service's notion of "now" (the wall clock, or the demo's compressed clock).
pub type Clock = Arc<dyn Fn() -> Ts + Send + Sync>;

/// Called with every output as it is produced (the demo prints them).
pub type OutputHook = Arc<dyn Fn(&Output) + Send + Sync>;

/// The wall clock in milliseconds since the epoch.
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Ts)
    })
}

/// Health of the service, shared with the HTTP endpoints and the signal handler.
#[derive(Debug, Default)]
pub struct Status {
    started: AtomicBool,
    restoring: AtomicUsize,
    broker_down: AtomicBool,
    stalled: AtomicBool,
    shutdown: AtomicBool,
    /// Input events handled (applied, duplicate, rejected or skipped).
    pub events: AtomicU64,
    /// Commit intervals made durable.
    pub commits: AtomicU64,
    /// Partitions held.
    pub partitions: AtomicUsize,
}

impl Status {
    /// A new status (not ready).
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    /// Asks the service to stop (SIGTERM/SIGINT).
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// `None` when ready to serve, or why not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.shutting_down() {
            Some("shutting down")
        } else if !self.started.load(Ordering::SeqCst) {
            Some("starting: waiting for the brokers and the topics")
        } else if self.restoring.load(Ordering::SeqCst) > 0 {
            Some("restoring partition state from the changelog")
        } else if self.broker_down.load(Ordering::SeqCst) {
            Some("brokers unreachable; retrying")
        } else if self.stalled.load(Ordering::SeqCst) {
            Some("waiting for the brokers to acknowledge the current interval")
        } else {
            None
        }
    }
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A client could not be created (bad settings).
    #[error("cannot create the Kafka {what}: {source}; check kafka.brokers and [kafka.client]")]
    Client {
        /// Producer, consumer or admin client.
        what: &'static str,
        /// Cause.
        source: KafkaError,
    },
    /// A topic is missing and may not be created.
    #[error("{0}")]
    Topics(String),
    /// A record was refused by the broker for good (not a timeout).
    #[error("the broker refused a record ({0}); the current interval was not committed, so a restart resumes from the last checkpoint without loss")]
    Delivery(String),
    /// The output encoder thread could not be started.
    #[error(
        "cannot start the output encoder thread: {0}; check the process's thread limit (ulimit -u)"
    )]
    Thread(std::io::Error),
    /// A transaction could not be started, committed or aborted (`exactly_once`).
    #[error("Kafka transaction failed: {0}; nothing uncommitted is visible to read_committed consumers, and a restart resumes from the last commit")]
    Transaction(String),
    /// The drain time ran out before the current interval was durable.
    #[error("the current interval was not acknowledged within kafka.drain_timeout ({0:?}); nothing is lost: a restart re-reads it from the last checkpoint")]
    DrainTimeout(Duration),
}

/// Outstanding records per tag. A tag is `2 × interval` for an interval's outputs and
/// `2 × interval + 1` for its changelog records; the ring is far larger than the number
/// of intervals that may be in flight (see `MAX_PENDING`).
const RING: usize = 4096;

/// Intervals cut but not yet durable before the loop waits (backpressure).
const MAX_PENDING: usize = 10;

struct Deliveries {
    /// With transactions, a record that fails delivery makes its transaction's commit
    /// fail (and aborted transactions fail their queued records): the commit is the
    /// verdict, not the delivery report.
    transactional: bool,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    outstanding: Vec<std::sync::atomic::AtomicI64>,
}

impl Deliveries {
    fn new(transactional: bool) -> Self {
        Deliveries {
            transactional,
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            outstanding: (0..RING)
                .map(|_| std::sync::atomic::AtomicI64::new(0))
                .collect(),
        }
    }
}

impl Deliveries {
    fn pending(&self, tag: u64) -> i64 {
        self.outstanding[(tag as usize) % RING].load(Ordering::Acquire)
    }
}

struct ProducerCtx {
    deliveries: Arc<Deliveries>,
    status: Arc<Status>,
}

impl ClientContext for ProducerCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        note_client_error(&self.status, "producer", &error, reason);
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        self.deliveries.outstanding[tag % RING].fetch_sub(1, Ordering::AcqRel);
        if let Err((e, _)) = result {
            if self.deliveries.transactional {
                tracing::debug!(error = %e, "record of a transaction not delivered; its commit fails or it was aborted");
                return;
            }
            self.deliveries.failed.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut first) = self.deliveries.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

fn note_client_error(status: &Status, client: &str, error: &KafkaError, reason: &str) {
    if status.shutting_down() {
        // Connections close as the process stops; not news.
        tracing::debug!(client, error = %error, reason, "client error during shutdown");
        return;
    }
    if matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AllBrokersDown)
    ) {
        if !status.broker_down.swap(true, Ordering::SeqCst) {
            tracing::warn!(client, "all brokers are down; retrying with backoff");
        }
    } else {
        tracing::debug!(client, error = %error, reason, "client error");
    }
}

/// One assigned input partition.
struct Part {
    proc: Processor,
    /// Next input offset to consume.
    next_offset: i64,
    /// Next offset of the last durable checkpoint (−1 if none).
    durable_offset: i64,
    /// Next offset and watermark as of the last cut interval.
    cut_offset: i64,
    cut_watermark: Option<Ts>,
    last_event: Instant,
    /// Customers erased in this interval, with the erasing offset.
    erased: Vec<(String, i64)>,
    /// Erase markers covered by a durable checkpoint: their keys can be deleted.
    settled: Vec<String>,
    /// Customers erased after the restored checkpoint (skip events at or below).
    skip: HashMap<String, i64>,
    /// Records left to read, as of the last fetch.
    lag: Option<i64>,
}

/// The state of one held partition (for `/v1/status`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionInfo {
    /// Input partition.
    pub partition: i32,
    /// Next offset to consume (−1 before the first event without a checkpoint).
    pub next_offset: i64,
    /// Next offset of the last durable checkpoint.
    pub durable_offset: i64,
    /// Customers held.
    pub customers: usize,
    /// Newest event time (ms).
    pub stream_time: Option<Ts>,
    /// Watermark (ms).
    pub watermark: Option<Ts>,
}

/// Event → output latencies in whole milliseconds (the resolution of Kafka timestamps).
#[derive(Debug, Clone)]
pub struct Latency {
    /// Count per millisecond, 0 ..= 9 999; the last bucket holds everything above.
    counts: Vec<u64>,
    total: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            counts: vec![0; 10_001],
            total: 0,
        }
    }
}

impl Latency {
    /// Adds one sample.
    pub fn record(&mut self, ms: u64) {
        let i = (ms as usize).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1) in ms, or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        Some(self.counts.len() as u64 - 1)
    }

    /// Forgets all samples.
    pub fn reset(&mut self) {
        *self = Latency::default();
    }
}

/// Everything the loop and the rebalance callbacks share.
pub struct Engine {
    settings: Arc<Settings>,
    k: KafkaSettings,
    base: ClientConfig,
    producer: Arc<ThreadedProducer<ProducerCtx>>,
    /// The producer's `transactional.id` (`exactly_once`), else empty.
    transactional_id: String,
    /// Encodes and produces the outputs on its own thread (dropping it joins the thread).
    encoder: Encoder,
    deliveries: Arc<Deliveries>,
    failures_seen: u64,
    parts: BTreeMap<i32, Part>,
    clock: Clock,
    hook: Option<OutputHook>,
    status: Arc<Status>,
    outs: Vec<Output>,
    /// Counts of partitions this instance gave up (metrics stay monotonic).
    retired: crate::core::Stats,
    metrics: Arc<crate::metrics::Metrics>,
    last_stall_log: Option<Instant>,
    latency: Latency,
    /// The interval being filled (tags its outputs).
    epoch: u64,
    /// Every interval up to this one has all its outputs acknowledged.
    outputs_acked_through: u64,
    /// Cut intervals not yet durable, oldest first.
    pending: std::collections::VecDeque<Interval>,
    /// The latest population report and when it was computed: metrics reuse it for
    /// [`REPORT_METRICS_EVERY`].
    report_cache: Option<(Instant, Arc<crate::core::report::Report>)>,
}

/// How old the report behind the `churnwatch_report_*` metrics may get. The report is kept
/// live, but a request still samples up to 20,000 customers per partition for the value
/// tiers (~25 ms per partition, with the engine locked), so scrapes within this interval
/// share one; the figures move on a scale of days anyway.
pub const REPORT_METRICS_EVERY: Duration = Duration::from_secs(10);

fn topic_for<'a>(t: &'a super::config::TopicsConfig, o: &Output) -> &'a str {
    match o {
        Output::TierChanged(_) => &t.tier_changes,
        Output::Warning(_) | Output::Cleared(_) => &t.warnings,
        Output::Profile(_) | Output::Tombstone(_) => &t.profiles,
        Output::DeadLetter(_) => &t.dead_letters,
    }
}

/// One record to produce.
struct Rec<'a> {
    topic: &'a str,
    /// An explicit partition (the changelog's), or the key's hash.
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    /// `None`: a null value (a tombstone for compaction).
    payload: Option<&'a [u8]>,
}

/// Sends one record tagged `tag`, waiting while the local queue is full (never drops).
fn send(producer: &ThreadedProducer<ProducerCtx>, deliveries: &Deliveries, tag: u64, rec: Rec<'_>) {
    deliveries.outstanding[(tag as usize) % RING].fetch_add(1, Ordering::AcqRel);
    send_counted(producer, deliveries, tag, rec, None);
}

/// [`send`] for a record already counted as outstanding under `tag`. With `abort`, the
/// wait for room in a full local queue ends when it is set (the service is going away;
/// the interval was not committed, so a restart produces the record again).
fn send_counted(
    producer: &ThreadedProducer<ProducerCtx>,
    deliveries: &Deliveries,
    tag: u64,
    Rec {
        topic,
        partition,
        key,
        payload,
    }: Rec<'_>,
    abort: Option<&AtomicBool>,
) {
    let slot = (tag as usize) % RING;
    loop {
        let mut r: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, slot);
        if let Some(k) = key {
            r = r.key(k);
        }
        if let Some(p) = payload {
            r = r.payload(p);
        }
        if let Some(p) = partition {
            r = r.partition(p);
        }
        match producer.send(r) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                if abort.is_some_and(|a| a.load(Ordering::Relaxed)) {
                    // Counted as failed, not as delivered: no interval holding it may be
                    // committed, even if something still made progress.
                    deliveries.outstanding[slot].fetch_sub(1, Ordering::AcqRel);
                    deliveries.failed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => {
                deliveries.outstanding[slot].fetch_sub(1, Ordering::AcqRel);
                deliveries.failed.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut first) = deliveries.first_error.lock() {
                    first.get_or_insert_with(|| format!("{topic}: {e}"));
                }
                return;
            }
        }
    }
}

/// Outputs queued for the encoder thread at most; when it falls behind, the loop waits.
const ENCODER_QUEUE: usize = 16_384;

/// Work for the encoder thread.
enum Job {
    /// An output on its way to the producer, already counted as outstanding under `tag`.
    Out { tag: u64, out: Output },
    /// Answered once every earlier output has been handed to the producer (a transaction
    /// may commit only what the producer has).
    Barrier(std::sync::mpsc::SyncSender<()>),
}

/// The thread that JSON-encodes outputs and hands them to the producer.
///
/// Why a thread: in a catch-up the service loop ran one core at ~100 % while the other
/// was a quarter idle, and encoding ~1.7 KB of JSON per alert and profile was about a
/// third of the loop. Order is kept: one thread, one FIFO queue, so a customer's profile
/// and its tombstone reach the topic in the order the engine made them.
struct Encoder {
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the encoder is dropped: stop waiting for room in the producer's queue.
    stop: Arc<AtomicBool>,
}

impl Encoder {
    fn start(
        producer: Arc<ThreadedProducer<ProducerCtx>>,
        deliveries: Arc<Deliveries>,
        topics: super::config::TopicsConfig,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> std::io::Result<Encoder> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(ENCODER_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let abort = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("churnwatch-encode".into())
            .spawn(move || {
                let mut json = Vec::with_capacity(4096);
                for job in rx {
                    let (tag, out) = match job {
                        Job::Out { tag, out } => (tag, out),
                        Job::Barrier(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let payload = if matches!(out, Output::Tombstone(_)) {
                        None // a null value: compaction deletes the customer's profile
                    } else {
                        json.clear();
                        out.write_json(&mut json);
                        metrics
                            .output_bytes
                            .with_label_values(&[out.kind().name()])
                            .inc_by(json.len() as u64);
                        Some(&json[..])
                    };
                    let rec = Rec {
                        topic: topic_for(&topics, &out),
                        partition: None,
                        key: out.key().map(str::as_bytes),
                        payload,
                    };
                    send_counted(&producer, &deliveries, tag, rec, Some(&abort));
                }
            })?;
        Ok(Encoder {
            tx: Some(tx),
            thread: Some(thread),
            stop,
        })
    }

    /// Counts `out` as outstanding under `tag` and queues it (waits while the queue is
    /// full). If the thread is gone, the output is counted as failed, which stops the
    /// interval from being committed.
    fn submit(&self, deliveries: &Deliveries, tag: u64, out: Output) {
        let slot = (tag as usize) % RING;
        deliveries.outstanding[slot].fetch_add(1, Ordering::AcqRel);
        let queued = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Job::Out { tag, out }).is_ok());
        if !queued {
            deliveries.outstanding[slot].fetch_sub(1, Ordering::AcqRel);
            deliveries.failed.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut first) = deliveries.first_error.lock() {
                first.get_or_insert_with(|| "the output encoder thread stopped".into());
            }
        }
    }
}

impl Encoder {
    /// Waits until every output submitted so far has been handed to the producer.
    /// Returns false if the thread is gone.
    fn barrier(&self) -> bool {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.send(Job::Barrier(done)).is_ok())
            && wait.recv().is_ok()
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx.take(); // the thread ends once the queue is empty
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One partition's share of a cut interval: its changelog records and checkpoint.
struct PartCut {
    partition: i32,
    /// Changelog records in order: (key, value or null).
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    next_offset: i64,
    /// Customers erased in the interval (their markers settle once it is durable).
    erased: Vec<String>,
}

/// An interval that was cut: its outputs are in flight; its changelog is sent once they
/// are acknowledged, and it is durable once the changelog is acknowledged.
struct Interval {
    epoch: u64,
    cut_at: Instant,
    parts: Vec<PartCut>,
    changelog_sent: bool,
}

impl Engine {
    fn route(&mut self, partition: i32) {
        let tag = self.epoch * 2;
        let Engine {
            encoder,
            deliveries,
            parts,
            hook,
            outs,
            ..
        } = self;
        for o in outs.drain(..) {
            if let Some(h) = hook {
                h(&o);
            }
            if let Output::Tombstone(t) = &o {
                if let Some(part) = parts.get_mut(&partition) {
                    let off = t.source.as_ref().map_or(part.next_offset - 1, |s| s.offset);
                    part.erased.push((t.customer_id.to_string(), off));
                }
            }
            encoder.submit(deliveries, tag, o);
        }
    }

    fn handle(&mut self, m: &BorrowedMessage<'_>) {
        self.status.events.fetch_add(1, Ordering::Relaxed);
        let p = m.partition();
        let off = m.offset();
        let now = (self.clock)();
        let Some(part) = self.parts.get_mut(&p) else {
            // Only possible between a revocation and librdkafka's unassign; the new owner
            // reads it from the checkpoint.
            return;
        };
        part.next_offset = off + 1;
        part.last_event = Instant::now();
        if !part.skip.is_empty() {
            if let Some(until) = m
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| part.skip.get(k))
            {
                if off <= *until {
                    return;
                }
            }
        }
        let ctx = Ctx {
            now: Some(now),
            emitted_at: Some(now),
        };
        let src = Source {
            topic: &self.k.input_topic,
            partition: p,
            offset: off,
        };
        part.proc
            .process(m.payload().unwrap_or(&[]), src, &ctx, &mut self.outs);
        if !self.outs.is_empty() {
            self.route(p);
            // Event → output latency: the input's produce time (CreateTime) to now.
            if let Some(created) = m.timestamp().to_millis() {
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let ms = (wall - created).max(0) as u64;
                self.latency.record(ms);
                self.metrics.latency.observe(ms as f64 / 1000.0);
            }
        }
    }

    /// Moves the watermark of idle partitions to the clock. A partition is idle when it
    /// had no event for `idle_timeout` *and* nothing is left to read (its position is at
    /// the broker's high watermark): a partition that is merely behind, or cut off from
    /// a stalled broker with data waiting, keeps event time, so catching up gives the
    /// same results as a replay.
    fn advance_idle(&mut self, caught_up: impl Fn(i32, i64) -> bool) {
        let Some(idle) = self.k.idle_timeout else {
            return;
        };
        let now = (self.clock)();
        let target = now.saturating_sub(self.settings.allowed_lateness_ms);
        let ids: Vec<i32> = self
            .parts
            .iter()
            .filter(|(id, p)| {
                p.last_event.elapsed() >= idle
                    && p.proc.watermark().is_none_or(|w| w < target)
                    && caught_up(**id, p.next_offset)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let ctx = Ctx {
                now: Some(now),
                emitted_at: Some(now),
            };
            if let Some(part) = self.parts.get_mut(&id) {
                part.proc.advance_to(target, &ctx, &mut self.outs);
            }
            if !self.outs.is_empty() {
                self.route(id);
            }
        }
    }

    /// Closes the current interval: profiles of changed customers are sent (as outputs
    /// of the interval), and the interval's changelog records and checkpoints are queued
    /// until its outputs are acknowledged. Returns whether an interval was cut.
    fn cut(&mut self) -> bool {
        let ids: Vec<i32> = self.parts.keys().copied().collect();
        let mut changes: Vec<(String, Vec<u8>)> = Vec::new();
        let mut cuts = Vec::new();
        for id in ids {
            let Some(part) = self.parts.get_mut(&id) else {
                continue;
            };
            changes.clear();
            part.proc.drain_changes(&mut self.outs, |cid, snap| {
                changes.push((cid.to_string(), snap))
            });
            if !self.outs.is_empty() {
                self.route(id);
            }
            let Some(part) = self.parts.get_mut(&id) else {
                continue;
            };
            let moved =
                part.next_offset != part.cut_offset || part.proc.watermark() != part.cut_watermark;
            if !moved && changes.is_empty() && part.erased.is_empty() && part.settled.is_empty() {
                continue;
            }
            let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            // Settled markers: delete the key unless the customer came back since.
            for cid in part.settled.drain(..) {
                if part.proc.last_offset(&cid).is_none() {
                    records.push((cid.into_bytes(), None));
                }
            }
            let erased: Vec<(String, i64)> = std::mem::take(&mut part.erased);
            for (cid, off) in &erased {
                if part.proc.last_offset(cid).is_none() {
                    records.push((cid.as_bytes().to_vec(), Some(erased_marker(*off))));
                }
            }
            for (cid, snap) in changes.drain(..) {
                records.push((cid.into_bytes(), Some(snap)));
            }
            if part.next_offset >= 0 {
                let c = Checkpoint {
                    version: 1,
                    topic: self.k.input_topic.clone(),
                    partition: id,
                    next_offset: part.next_offset,
                    stream_time: part.proc.stream_time(),
                    watermark: part.proc.watermark(),
                    campaigns: part.proc.campaign_lines(),
                };
                records.push((CHECKPOINT_KEY.to_vec(), Some(c.encode())));
            }
            part.cut_offset = part.next_offset;
            part.cut_watermark = part.proc.watermark();
            cuts.push(PartCut {
                partition: id,
                records,
                next_offset: part.next_offset,
                erased: erased.into_iter().map(|(c, _)| c).collect(),
            });
        }
        let had_outputs = self.deliveries.pending(self.epoch * 2) > 0;
        if cuts.is_empty() && !had_outputs {
            return false;
        }
        self.pending.push_back(Interval {
            epoch: self.epoch,
            cut_at: Instant::now(),
            parts: cuts,
            changelog_sent: false,
        });
        self.epoch += 1;
        true
    }

    /// Moves cut intervals along without blocking: sends the changelog of intervals whose
    /// outputs (and all earlier outputs) are acknowledged, and completes intervals whose
    /// changelog is acknowledged (checkpoint durable → consumer offsets committed).
    fn progress<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), RunError> {
        let failed = self.deliveries.failed.load(Ordering::SeqCst);
        if failed > self.failures_seen {
            self.metrics
                .delivery_failures
                .inc_by(failed - self.failures_seen);
            self.failures_seen = failed;
            let first = self
                .deliveries
                .first_error
                .lock()
                .ok()
                .and_then(|mut f| f.take())
                .unwrap_or_default();
            return Err(RunError::Delivery(first));
        }
        while self.outputs_acked_through + 1 < self.epoch
            && self
                .deliveries
                .pending((self.outputs_acked_through + 1) * 2)
                == 0
        {
            self.outputs_acked_through += 1;
        }
        let Engine {
            pending,
            producer,
            deliveries,
            k,
            outputs_acked_through,
            ..
        } = self;
        let topic = &k.topics.changelog;
        for iv in pending.iter_mut() {
            if iv.changelog_sent {
                continue;
            }
            if iv.epoch > *outputs_acked_through {
                break;
            }
            let tag = iv.epoch * 2 + 1;
            for pc in &iv.parts {
                for (key, value) in &pc.records {
                    let rec = Rec {
                        topic,
                        partition: Some(pc.partition),
                        key: Some(key),
                        payload: value.as_deref(),
                    };
                    send(producer, deliveries, tag, rec);
                }
            }
            iv.changelog_sent = true;
        }
        let mut offsets = TopicPartitionList::new();
        while let Some(front) = self.pending.front() {
            if !front.changelog_sent || self.deliveries.pending(front.epoch * 2 + 1) != 0 {
                break;
            }
            let Some(iv) = self.pending.pop_front() else {
                break;
            };
            for pc in iv.parts {
                if let Some(part) = self.parts.get_mut(&pc.partition) {
                    part.durable_offset = pc.next_offset;
                    part.settled.extend(pc.erased);
                    if pc.next_offset >= 0 {
                        let _ = offsets.add_partition_offset(
                            &self.k.input_topic,
                            pc.partition,
                            Offset::Offset(pc.next_offset),
                        );
                    }
                }
            }
            self.status.commits.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .commit_duration
                .observe(iv.cut_at.elapsed().as_secs_f64());
        }
        // Consumer offsets, for lag tracking only (the checkpoint is the truth).
        if offsets.count() > 0 {
            if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
                tracing::debug!(error = %e, "offset commit failed; lag metrics lag behind");
            }
        }
        let stalled = self.pending.len() > 1
            && self
                .pending
                .front()
                .is_some_and(|f| self.epoch - f.epoch > 20);
        self.status.stalled.store(stalled, Ordering::Relaxed);
        if self.pending.is_empty() {
            self.status.broker_down.store(false, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits until at most `keep` cut intervals are outstanding.
    fn wait_pending<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        keep: usize,
        deadline: Option<Instant>,
    ) -> Result<(), RunError> {
        let started = Instant::now();
        loop {
            self.progress(consumer)?;
            if self.pending.len() <= keep {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(2) {
                self.status.stalled.store(true, Ordering::SeqCst);
                if self
                    .last_stall_log
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
                {
                    self.last_stall_log = Some(Instant::now());
                    tracing::warn!(
                        unacknowledged = self.producer.in_flight_count(),
                        intervals = self.pending.len(),
                        waited_s = started.elapsed().as_secs(),
                        "waiting for the brokers to acknowledge; consumption paused, nothing is lost"
                    );
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RunError::DrainTimeout(self.k.drain_timeout));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Makes everything handled so far durable (revocation, shutdown).
    fn commit_all<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        deadline: Option<Instant>,
    ) -> Result<(), RunError> {
        if self.transactional() {
            return self.commit_transaction(consumer, deadline);
        }
        self.cut();
        self.wait_pending(consumer, 0, deadline)?;
        self.status.stalled.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Drops partitions without writing their state (lost to another member): their
    /// queued changelog records must not be written by this instance any more.
    fn drop_partitions(&mut self, lost: &[i32]) {
        for p in lost {
            if let Some(part) = self.parts.remove(p) {
                self.retired.add(part.proc.stats());
            }
        }
        for iv in self.pending.iter_mut() {
            if !iv.changelog_sent {
                iv.parts.retain(|pc| !lost.contains(&pc.partition));
            }
        }
    }

    /// What restoring partitions needs, taken under the lock so the restores themselves
    /// run without it (HTTP look-ups and metrics stay answered meanwhile).
    fn restore_job(&self) -> RestoreJob {
        RestoreJob {
            base: self.base.clone(),
            changelog: self.k.topics.changelog.clone(),
            settings: Arc::clone(&self.settings),
            timeout: self.k.broker_timeout,
            parallelism: self.k.restore_parallelism,
            status: Arc::clone(&self.status),
        }
    }

    /// Takes over partition `p` restored into `proc`; returns where to start consuming.
    fn install(&mut self, p: i32, proc: Processor, r: changelog::Restored) -> Offset {
        let (start, next) = match &r.checkpoint {
            Some(c) => (Offset::Offset(c.next_offset), c.next_offset),
            None => (
                match self.k.start {
                    Start::Earliest => Offset::Beginning,
                    Start::Latest => Offset::End,
                },
                -1,
            ),
        };
        self.metrics
            .restore_duration
            .observe(r.elapsed.as_secs_f64());
        self.metrics.restore_records.inc_by(r.records);
        tracing::info!(
            partition = p,
            customers = proc.customers(),
            records = r.records,
            unreadable = r.unreadable,
            start = ?start,
            elapsed_ms = r.elapsed.as_millis() as u64,
            "partition restored from the changelog"
        );
        self.parts.insert(
            p,
            Part {
                proc,
                next_offset: next,
                durable_offset: next,
                cut_offset: next,
                cut_watermark: r.checkpoint.as_ref().and_then(|c| c.watermark),
                last_event: Instant::now(),
                erased: Vec::new(),
                settled: r.settled_markers,
                skip: r.erased,
                lag: None,
            },
        );
        self.status
            .partitions
            .store(self.parts.len(), Ordering::Relaxed);
        start
    }

    /// What the metrics read at scrape time.
    pub fn metrics_snapshot(&mut self) -> crate::metrics::Snapshot {
        let report = match &self.report_cache {
            Some((at, r)) if at.elapsed() < REPORT_METRICS_EVERY => Arc::clone(r),
            _ => Arc::new(self.report()),
        };
        let mut snap = crate::metrics::Snapshot {
            report: Some(report),
            stats: self.retired.clone(),
            tiers: vec![0; self.settings.tiers.len()],
            ready: self.status.not_ready_reason().is_none(),
            commits: self.status.commits.load(Ordering::Relaxed),
            ..Default::default()
        };
        let now = (self.clock)();
        for (id, part) in &self.parts {
            let p = &part.proc;
            snap.stats.add(p.stats());
            for (a, b) in snap.tiers.iter_mut().zip(p.tier_counts()) {
                *a += b;
            }
            for (a, b) in snap.levels.iter_mut().zip(p.level_counts()) {
                *a += b;
            }
            snap.customers += p.customers() as i64;
            if let Some(h) = p.p_alive_histogram(p.watermark().unwrap_or(now), 20_000) {
                let acc = snap.p_alive.get_or_insert([0.0; 10]);
                for (a, b) in acc.iter_mut().zip(h) {
                    *a += b;
                }
            }
            snap.state_bytes += p.state_bytes() as i64;
            snap.partitions.push((
                *id,
                part.lag,
                p.watermark().map(|w| (now - w) as f64 / 1000.0),
            ));
        }
        snap
    }

    /// The metrics of this engine.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Records each partition's lag (high watermark of the last fetch − position).
    fn update_lag(&mut self, high: impl Fn(i32) -> Option<i64>) {
        for (id, part) in self.parts.iter_mut() {
            part.lag = high(*id).map(|h| (h - part.next_offset.max(0)).max(0));
        }
    }

    /// The profile of a customer held by this instance, with the input partition and
    /// the offset of the last event it reflects.
    /// Its standing (value score, ABC class …) is ranked among every customer this
    /// instance holds.
    pub fn lookup(&mut self, customer_id: &str) -> Option<Lookup> {
        let pop = self.population();
        self.parts.iter_mut().find_map(|(id, p)| {
            let offset = p.proc.last_offset(customer_id)?;
            let standing = p.proc.standing(customer_id, pop.as_ref());
            p.proc.profile(customer_id).map(|profile| Lookup {
                profile,
                standing,
                partition: *id,
                offset,
            })
        })
    }

    /// The population sketches of every partition held, merged (analytics enabled).
    pub fn population(&self) -> Option<crate::core::analytics::Population> {
        let mut it = self.parts.values().filter_map(|p| p.proc.population());
        let mut all = it.next()?.clone();
        for p in it {
            all.merge(p);
        }
        Some(all)
    }

    /// The population report over the partitions this instance holds, as of the newest
    /// partition watermark (the clock before any event). A pass over every customer's
    /// record and history: on demand, never per event.
    pub fn report(&mut self) -> crate::core::report::Report {
        let as_of = self
            .parts
            .values()
            .filter_map(|p| p.proc.watermark())
            .max()
            .unwrap_or_else(|| (self.clock)());
        let mut sums = crate::core::report::ReportSums::new(&self.settings, 0);
        let pop = self.population();
        for p in self.parts.values() {
            sums.merge(&p.proc.report_among(as_of, pop.as_ref()));
        }
        let r = sums.finish(&self.settings);
        self.report_cache = Some((Instant::now(), Arc::new(r.clone())));
        r
    }

    /// The input topic.
    pub fn input_topic(&self) -> &str {
        &self.k.input_topic
    }

    /// Event → output latencies so far.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Forgets the latency samples (benchmarks measure one phase at a time).
    pub fn reset_latency(&mut self) {
        self.latency.reset();
    }

    /// Customers held by this instance.
    pub fn customers(&self) -> usize {
        self.parts.values().map(|p| p.proc.customers()).sum()
    }

    /// Partitions held.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        self.parts
            .iter()
            .map(|(id, p)| PartitionInfo {
                partition: *id,
                next_offset: p.next_offset,
                durable_offset: p.durable_offset,
                customers: p.proc.customers(),
                stream_time: p.proc.stream_time(),
                watermark: p.proc.watermark(),
            })
            .collect()
    }

    /// Runs `f` over each partition's processor (metrics).
    pub fn for_each_processor(&self, mut f: impl FnMut(i32, &Processor)) {
        for (id, p) in &self.parts {
            f(*id, &p.proc);
        }
    }
}

/// The partition's high watermark as of the consumer's last fetch (no request). `None`
/// until a fetch has reported one.
fn cached_high_watermark<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let t = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the handle is alive for the call (borrowed consumer), the topic is a valid
    // NUL-terminated string, and the out-pointers point to live locals.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            t.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Sleeps for `d`, waking early when a shutdown is requested.
/// A metadata request that a stop request does not wait for: `None` if a shutdown was
/// requested first. librdkafka's call blocks for up to `timeout` with no way to cancel
/// it, so it runs on a helper thread, which is left to finish on its own; without this,
/// SIGTERM while the brokers were unreachable at start-up took up to
/// `kafka.broker_timeout` (10 s) to be obeyed.
fn fetch_metadata_unless_stopping(
    probe: &Arc<BaseConsumer>,
    timeout: Duration,
    status: &Status,
) -> Option<KafkaResult<rdkafka::metadata::Metadata>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let client = Arc::clone(probe);
    let spawned = std::thread::Builder::new()
        .name("churnwatch-metadata".into())
        .spawn(move || {
            let _ = tx.send(client.fetch_metadata(None, timeout));
        });
    if spawned.is_err() {
        return Some(probe.fetch_metadata(None, timeout));
    }
    loop {
        if status.shutting_down() {
            return None;
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => return Some(r),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Some(Err(KafkaError::MetadataFetch(RDKafkaErrorCode::Fail)))
            }
        }
    }
}

fn sleep_unless_stopping(status: &Status, d: Duration) {
    let until = Instant::now() + d;
    while !status.shutting_down() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

fn lock(e: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    // A panic elsewhere must not take the rebalance callbacks down with it.
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// A copy of what [`changelog::restore_partitions`] needs from the engine.
struct RestoreJob {
    base: ClientConfig,
    changelog: String,
    settings: Arc<Settings>,
    timeout: Duration,
    parallelism: usize,
    status: Arc<Status>,
}

impl RestoreJob {
    /// Restores `partitions` concurrently; a partition that fails is retried with
    /// backoff (alone with the other failures) until it succeeds or shutdown begins,
    /// and each one restored is handed to `install` as soon as its round ends.
    fn run(
        &self,
        partitions: &[i32],
        mut install: impl FnMut(i32, Processor, changelog::Restored),
    ) {
        let mut pending = partitions.to_vec();
        let mut backoff = Duration::from_millis(200);
        while !pending.is_empty() {
            let stop = || self.status.shutting_down();
            let results = changelog::restore_partitions(
                &self.base,
                &self.changelog,
                &pending,
                &self.settings,
                self.timeout,
                self.parallelism,
                &stop,
            );
            pending.clear();
            for (p, r) in results {
                match r {
                    Ok((proc, restored)) => install(p, proc, restored),
                    Err(RestoreError::Interrupted) => {}
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, retry_in_ms = backoff.as_millis() as u64, "restore failed; retrying");
                        pending.push(p);
                    }
                }
            }
            if pending.is_empty() || self.status.shutting_down() {
                return;
            }
            sleep_unless_stopping(&self.status, backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

/// The consumer's context: rebalance callbacks that restore and hand over state.
pub struct GroupCtx {
    engine: Arc<Mutex<Engine>>,
    status: Arc<Status>,
}

impl ClientContext for GroupCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        note_client_error(&self.status, "consumer", &error, reason);
    }
}

impl ConsumerContext for GroupCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.status.restoring.fetch_add(1, Ordering::SeqCst);
                // Restore without holding the engine: partitions restore concurrently and
                // the HTTP endpoints keep answering. The engine is locked only to install.
                let (job, stable) = {
                    let e = lock(&self.engine);
                    let limit = e.k.transaction_timeout + e.k.broker_timeout;
                    (
                        e.restore_job(),
                        e.transactional().then(|| (e.k.input_topic.clone(), limit)),
                    )
                };
                let ids: Vec<i32> = parts.iter().map(|(_, p)| *p).collect();
                if let Some((topic, limit)) = stable {
                    transaction::wait_stable_offsets(consumer, &topic, &ids, limit, &self.status);
                }
                job.run(&ids, |p, proc, restored| {
                    let start = lock(&self.engine).install(p, proc, restored);
                    for (topic, _) in parts.iter().filter(|(_, q)| *q == p) {
                        if let Err(e) = tpl.set_partition_offset(topic, p, start) {
                            tracing::error!(partition = p, error = %e, "cannot set the start offset");
                        }
                    }
                });
                self.status.restoring.fetch_sub(1, Ordering::SeqCst);
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "assign failed");
                }
                tracing::info!(partitions = ?parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(), "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                {
                    let mut eng = lock(&self.engine);
                    if lost {
                        tracing::warn!("partitions lost (session expired); dropping their state without writing it, the new owner restores from the last checkpoint");
                    }
                    let revoked: Vec<i32> = if cooperative {
                        parts.iter().map(|(_, p)| *p).collect()
                    } else {
                        eng.parts.keys().copied().collect()
                    };
                    if lost && eng.transactional() {
                        // The open transaction holds records of the lost partitions: it
                        // must not commit. Partitions still held are rebuilt.
                        eng.drop_partitions(&revoked);
                        if let Err(e) = eng.abort_and_rewind(consumer, "partitions lost") {
                            tracing::error!(error = %e, "could not abort the transaction of lost partitions");
                        }
                    } else if !lost {
                        let deadline = Instant::now() + eng.k.drain_timeout;
                        if let Err(e) = eng.commit_all(consumer, Some(deadline)) {
                            tracing::error!(error = %e, "could not make revoked partitions durable; their new owner resumes from the last checkpoint");
                        }
                    }
                    eng.drop_partitions(&revoked);
                    let n = eng.parts.len();
                    eng.status.partitions.store(n, Ordering::Relaxed);
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "unassign failed");
                }
                tracing::info!(partitions = ?parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(), lost, "partitions revoked");
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error; librdkafka retries");
            }
        }
    }
}

/// Everything `run` needs.
pub struct RunOptions {
    /// The rule set.
    pub settings: Arc<Settings>,
    /// `[kafka]`.
    pub kafka: KafkaSettings,
    /// "Now".
    pub clock: Clock,
    /// Sees every output (the demo prints them).
    pub hook: Option<OutputHook>,
    /// Shared health.
    pub status: Arc<Status>,
}

/// Counts of a finished run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Input events handled.
    pub events: u64,
    /// Intervals made durable.
    pub commits: u64,
}

/// The service, created but not yet running.
pub struct Service {
    engine: Arc<Mutex<Engine>>,
    status: Arc<Status>,
    base: ClientConfig,
}

/// A customer look-up: the profile, where the customer stands in the population, and the
/// input position the state reflects.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The profile (as on the profiles topic).
    pub profile: Profile,
    /// Value score, value tier, ABC class, core customer (`None` with analytics off).
    pub standing: Option<crate::core::analytics::Standing>,
    /// Input partition.
    pub partition: i32,
    /// Offset of the last event reflected.
    pub offset: i64,
}

/// A handle for look-ups and health from other threads (HTTP).
#[derive(Clone)]
pub struct ServiceHandle {
    engine: Arc<Mutex<Engine>>,
    /// Health.
    pub status: Arc<Status>,
}

impl ServiceHandle {
    /// The profile of a customer held by this instance, with the input partition and
    /// the offset of the last event it reflects.
    pub fn lookup(&self, customer_id: &str) -> Option<Lookup> {
        lock(&self.engine).lookup(customer_id)
    }

    /// The Prometheus text exposition of this instance.
    pub fn metrics_text(&self) -> String {
        let (metrics, settings, snap) = {
            let mut e = lock(&self.engine);
            (
                Arc::clone(&e.metrics),
                Arc::clone(&e.settings),
                e.metrics_snapshot(),
            )
        };
        metrics.update(&settings, &snap);
        metrics.encode()
    }

    /// Runs `f` with the engine locked.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut lock(&self.engine))
    }
}

/// Consumer settings librdkafka would warn about on a producer.
fn is_consumer_only(key: &str) -> bool {
    key.starts_with("fetch.")
        || key.starts_with("group.")
        || key.starts_with("auto.")
        || key.starts_with("queued.")
        || matches!(
            key,
            "session.timeout.ms"
                | "heartbeat.interval.ms"
                | "max.poll.interval.ms"
                | "max.partition.fetch.bytes"
                | "enable.partition.eof"
                | "check.crcs"
                | "coordinator.query.interval.ms"
        )
}

/// Settings of the consumers (group, restore, metadata and admin clients).
fn base_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, v) in &k.client {
        c.set(key, v);
    }
    c
}

/// The output producer: idempotent, `acks=all`, and with `exactly_once` transactional
/// (returns its `transactional.id`, else an empty one).
fn create_producer(
    k: &KafkaSettings,
    deliveries: &Arc<Deliveries>,
    status: &Arc<Status>,
) -> Result<(Arc<ThreadedProducer<ProducerCtx>>, String), RunError> {
    let mut pc = ClientConfig::new();
    pc.set("bootstrap.servers", &k.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        // Never give up on a record while the brokers are away: the loop waits (and
        // reports not ready) instead of losing outputs.
        .set("message.timeout.ms", "0");
    let transactional_id = match k.guarantee {
        Guarantee::AtLeastOnce => String::new(),
        // A fresh id per producer: fencing goes through the group metadata (EOS v2), so
        // ids need not be stable; a configured one also fences an earlier producer of
        // the same instance at once, instead of after the transaction timeout.
        Guarantee::ExactlyOnce if !k.transactional_id.is_empty() => k.transactional_id.clone(),
        Guarantee::ExactlyOnce => format!("{}-{:016x}", k.group_id, rand::random::<u64>()),
    };
    if !transactional_id.is_empty() {
        pc.set("transactional.id", &transactional_id)
            .set(
                "transaction.timeout.ms",
                k.transaction_timeout.as_millis().to_string(),
            )
            // A transactional producer needs a finite delivery timeout; the transaction
            // (retried, or aborted and re-read) is what keeps outputs from being lost.
            .set(
                "message.timeout.ms",
                k.transaction_timeout.as_millis().to_string(),
            );
    }
    for (key, v) in &k.client {
        if !is_consumer_only(key) {
            pc.set(key, v);
        }
    }
    let producer: ThreadedProducer<ProducerCtx> = pc
        .create_with_context(ProducerCtx {
            deliveries: Arc::clone(deliveries),
            status: Arc::clone(status),
        })
        .map_err(|source| RunError::Client {
            what: "producer",
            source,
        })?;
    Ok((Arc::new(producer), transactional_id))
}

impl Service {
    /// Creates the producer; nothing is contacted yet.
    pub fn new(opts: RunOptions) -> Result<Service, RunError> {
        let base = base_config(&opts.kafka);
        tracing::info!(
            brokers = %opts.kafka.brokers,
            group = %opts.kafka.group_id,
            input = %opts.kafka.input_topic,
            client = ?describe_client(&opts.kafka.client),
            "starting"
        );
        let deliveries = Arc::new(Deliveries::new(
            opts.kafka.guarantee == Guarantee::ExactlyOnce,
        ));
        let (producer, transactional_id) = create_producer(&opts.kafka, &deliveries, &opts.status)?;
        let metrics = Arc::new(crate::metrics::Metrics::new(&opts.settings));
        let encoder = Encoder::start(
            Arc::clone(&producer),
            Arc::clone(&deliveries),
            opts.kafka.topics.clone(),
            Arc::clone(&metrics),
        )
        .map_err(RunError::Thread)?;
        let engine = Engine {
            settings: opts.settings,
            k: opts.kafka,
            base: base.clone(),
            producer,
            transactional_id,
            encoder,
            deliveries,
            failures_seen: 0,
            parts: BTreeMap::new(),
            clock: opts.clock,
            hook: opts.hook,
            status: Arc::clone(&opts.status),
            outs: Vec::with_capacity(16),
            retired: Default::default(),
            metrics,
            last_stall_log: None,
            latency: Latency::default(),
            epoch: 1,
            outputs_acked_through: 0,
            pending: Default::default(),
            report_cache: None,
        };
        Ok(Service {
            engine: Arc::new(Mutex::new(engine)),
            status: opts.status,
            base,
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> ServiceHandle {
        ServiceHandle {
            engine: Arc::clone(&self.engine),
            status: Arc::clone(&self.status),
        }
    }

    /// Runs until a shutdown is requested; returns after the last interval is durable.
    pub fn run(self) -> Result<RunSummary, RunError> {
        let k = lock(&self.engine).k.clone();
        let Some(input_partitions) = self.ensure_topics(&k)? else {
            tracing::info!("stopped before the brokers answered; nothing was consumed");
            return Ok(RunSummary::default());
        };
        tracing::info!(partitions = input_partitions, "topics ready");
        let mut cc = self.base.clone();
        cc.set("group.id", &k.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match k.start {
                    Start::Earliest => "earliest",
                    Start::Latest => "latest",
                },
            )
            .set("fetch.wait.max.ms", "50");
        match k.group_protocol {
            GroupProtocol::Classic => {
                cc.set("group.protocol", "classic")
                    .set("partition.assignment.strategy", "cooperative-sticky");
            }
            // The broker assigns (KIP-848); assignment strategy and session timeout are
            // the broker's group.consumer.* settings.
            GroupProtocol::Consumer => {
                cc.set("group.protocol", "consumer");
            }
        }
        for (key, v) in &k.client {
            cc.set(key, v);
        }
        let consumer: BaseConsumer<GroupCtx> = cc
            .create_with_context(GroupCtx {
                engine: Arc::clone(&self.engine),
                status: Arc::clone(&self.status),
            })
            .map_err(|source| RunError::Client {
                what: "consumer",
                source,
            })?;
        consumer
            .subscribe(&[&k.input_topic])
            .map_err(|source| RunError::Client {
                what: "consumer",
                source,
            })?;
        let transactional = k.guarantee == Guarantee::ExactlyOnce;
        if transactional && !lock(&self.engine).start_transactions()? {
            tracing::info!("stopped before the brokers answered; nothing was consumed");
            return Ok(RunSummary::default());
        }
        self.status.started.store(true, Ordering::SeqCst);
        let mut last_commit = Instant::now();
        let mut last_error_log: Option<Instant> = None;
        let mut last_probe = Instant::now();
        while !self.status.shutting_down() {
            let polled = consumer.poll(Duration::from_millis(20));
            let mut eng = lock(&self.engine);
            match polled {
                Some(Ok(m)) => {
                    eng.handle(&m);
                    self.status.broker_down.store(false, Ordering::Relaxed);
                }
                Some(Err(e))
                    if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) =>
                {
                    last_error_log = Some(Instant::now());
                    eng.metrics.consumer_errors.inc();
                    tracing::warn!(error = %e, "consumer error; retrying");
                }
                Some(Err(_)) => eng.metrics.consumer_errors.inc(),
                None => {}
            }
            if last_commit.elapsed() >= k.commit_interval {
                eng.advance_idle(|p, next| {
                    cached_high_watermark(&consumer, &k.input_topic, p)
                        .is_some_and(|h| next >= h || (next < 0 && h == 0))
                });
                eng.update_lag(|p| cached_high_watermark(&consumer, &k.input_topic, p));
                if transactional {
                    eng.commit_transaction(&consumer, None)?;
                } else {
                    eng.cut();
                }
                last_commit = Instant::now();
            }
            if !transactional {
                eng.progress(&consumer)?;
                if eng.pending.len() > MAX_PENDING {
                    eng.wait_pending(&consumer, MAX_PENDING / 2, None)?;
                }
            }
            drop(eng);
            if self.status.broker_down.load(Ordering::Relaxed)
                && last_probe.elapsed() > Duration::from_secs(2)
            {
                last_probe = Instant::now();
                if consumer
                    .fetch_metadata(Some(&k.input_topic), Duration::from_secs(1))
                    .is_ok()
                {
                    self.status.broker_down.store(false, Ordering::SeqCst);
                    tracing::info!("brokers reachable again");
                }
            }
        }
        tracing::info!(
            drain_timeout_s = k.drain_timeout.as_secs_f64(),
            "shutting down: making the current interval durable"
        );
        let deadline = Instant::now() + k.drain_timeout;
        let result = {
            let mut eng = lock(&self.engine);
            let r = eng.commit_all(&consumer, Some(deadline));
            let all: Vec<i32> = eng.parts.keys().copied().collect();
            eng.drop_partitions(&all);
            r
        };
        // With transactions the offsets were committed with the last transaction.
        if !transactional {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "final offset commit");
            }
        }
        drop(consumer);
        result?;
        let summary = RunSummary {
            events: self.status.events.load(Ordering::Relaxed),
            commits: self.status.commits.load(Ordering::Relaxed),
        };
        tracing::info!(
            events = summary.events,
            commits = summary.commits,
            "stopped cleanly"
        );
        Ok(summary)
    }

    /// Checks (and, if allowed, creates) the topics; returns the input's partition count,
    /// or `None` if a shutdown was requested while the brokers were unreachable.
    fn ensure_topics(&self, k: &KafkaSettings) -> Result<Option<i32>, RunError> {
        let probe: Arc<BaseConsumer> =
            Arc::new(self.base.create().map_err(|source| RunError::Client {
                what: "metadata client",
                source,
            })?);
        let mut backoff = Duration::from_millis(250);
        let counts = |md: &rdkafka::metadata::Metadata| -> HashMap<String, i32> {
            md.topics()
                .iter()
                .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                .map(|t| (t.name().to_string(), t.partitions().len() as i32))
                .collect()
        };
        let mut created = false;
        loop {
            if self.status.shutting_down() {
                return Ok(None);
            }
            let md = match fetch_metadata_unless_stopping(&probe, k.broker_timeout, &self.status) {
                None => return Ok(None),
                Some(Ok(md)) => md,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, brokers = %k.brokers, retry_in_ms = backoff.as_millis() as u64, "brokers not reachable; retrying (not ready)");
                    self.status.broker_down.store(true, Ordering::SeqCst);
                    sleep_unless_stopping(&self.status, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            self.status.broker_down.store(false, Ordering::SeqCst);
            let have = counts(&md);
            let Some(&input) = have.get(&k.input_topic) else {
                return Err(RunError::Topics(format!(
                    "the input topic `{}` does not exist on {}; create it (partitioned by customer id) or set kafka.input_topic",
                    k.input_topic, k.brokers
                )));
            };
            let wanted: Vec<(&str, bool)> = vec![
                (&k.topics.tier_changes, false),
                (&k.topics.warnings, false),
                (&k.topics.profiles, true),
                (&k.topics.dead_letters, false),
                (&k.topics.changelog, true),
            ];
            if let Some(&n) = have.get(&k.topics.changelog) {
                if n < input {
                    return Err(RunError::Topics(format!(
                        "the changelog topic `{}` has {n} partitions but the input `{}` has {input}; they must match (input partition p keeps its state in changelog partition p): recreate the changelog with {input} partitions or set kafka.topics.changelog to a new topic",
                        k.topics.changelog, k.input_topic
                    )));
                }
            }
            let missing: Vec<(&str, bool)> = wanted
                .into_iter()
                .filter(|(t, _)| !have.contains_key(*t))
                .collect();
            if missing.is_empty() {
                return Ok(Some(input));
            }
            let names: Vec<&str> = missing.iter().map(|(t, _)| *t).collect();
            if !k.create_topics || created {
                return Err(RunError::Topics(format!(
                    "missing topic(s) {}: create them (profiles and changelog with cleanup.policy=compact, the changelog with {input} partitions) or set kafka.create_topics = true",
                    names.join(", ")
                )));
            }
            self.create_topics(k, &missing, input)?;
            created = true;
            tracing::info!(topics = ?names, "created missing topics");
            // Metadata may take a moment to show new topics.
            for _ in 0..50 {
                if let Ok(md) = probe.fetch_metadata(None, k.broker_timeout) {
                    let have = counts(&md);
                    if names.iter().all(|t| have.contains_key(*t)) {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn create_topics(
        &self,
        k: &KafkaSettings,
        missing: &[(&str, bool)],
        input: i32,
    ) -> Result<(), RunError> {
        // librdkafka's admin client is a producer-type handle: no consumer settings.
        let mut ac = ClientConfig::new();
        ac.set("bootstrap.servers", &k.brokers);
        for (key, v) in &k.client {
            if !is_consumer_only(key) {
                ac.set(key, v);
            }
        }
        let admin: AdminClient<DefaultClientContext> =
            ac.create().map_err(|source| RunError::Client {
                what: "admin client",
                source,
            })?;
        // −1 asks the broker for its default (KIP-464).
        let rf = k.replication_factor;
        let topics: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|(name, compact)| {
                let parts = if *name == k.topics.changelog || k.partitions == 0 {
                    input
                } else {
                    k.partitions
                };
                let t = NewTopic::new(name, parts, TopicReplication::Fixed(rf));
                if *compact {
                    t.set("cleanup.policy", "compact")
                } else {
                    t.set("cleanup.policy", "delete")
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(k.broker_timeout));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RunError::Topics(format!("cannot start the admin runtime: {e}")))?;
        let results = rt
            .block_on(admin.create_topics(topics.iter(), &opts))
            .map_err(|e| RunError::Topics(format!("creating topics failed: {e}; create them yourself or check the client's permissions")))?;
        for r in results {
            match r {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(RunError::Topics(format!(
                        "creating topic `{t}` failed: {code}; create it yourself or check the client's permissions"
                    )))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Latency;

    #[test]
    fn latency_quantiles_are_nearest_rank() {
        let mut l = Latency::default();
        assert_eq!(l.quantile(0.5), None);
        for ms in 1..=100 {
            l.record(ms);
        }
        l.record(1_000_000);
        assert_eq!(l.count(), 101);
        assert_eq!(l.quantile(0.5), Some(51));
        assert_eq!(l.quantile(0.99), Some(100));
        assert_eq!(l.quantile(1.0), Some(10_000), "overflow bucket");
        l.reset();
        assert_eq!(l.count(), 0);
    }
}
