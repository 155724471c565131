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
//!
//! With `kafka.guarantee = "exactly_once"` an interval is one Kafka transaction instead
//! (transaction.rs).
//!
//! **Workers** (`kafka.workers`, Kafka Streams' stream threads): the service runs one
//! [`Engine`] per worker thread, each with its own consumer in the group (so the group's
//! assignor gives workers disjoint partitions and the rebalance callbacks stay per
//! engine), its own encoder thread, producer and delivery counts. Nothing on the hot path
//! is shared but atomics (`Status`, metrics counters). HTTP look-ups, reports, status and
//! metrics lock every worker's engine in worker order and merge (`query.rs`); a reload
//! applies to every worker (`reload.rs`); the members table, the warm standbys and the
//! input writer are the instance's, shared by its workers.
//!
//! This file holds the shared types (the [`Engine`] and the error); the data path has a
//! file per step, as Kafka Streams' runtime does:
//! - `service.rs`: the workers' engines, topics, start and stop of the whole instance;
//! - `worker.rs`: one worker's consumer and poll loop (Kafka Streams' `StreamThread`);
//! - `process.rs`: one record through its partition's processor;
//! - `produce.rs`: the producer, its delivery reports and the encoder thread
//!   (`RecordCollectorImpl`);
//! - `commit.rs`: the `at_least_once` interval protocol; `transaction.rs`: `exactly_once`;
//! - `rebalance.rs`: assignment and revocation, restore from the changelog
//!   (`StoreChangelogReader`);
//! - `reload.rs`: rule reloads and their dry run;
//! - `query.rs`: look-ups, the report and metrics for the HTTP side, over every worker;
//! - `status.rs` and `latency.rs`: health and latency samples.

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

mod commit;
mod latency;
mod process;
mod produce;
mod query;
mod rebalance;
mod reload;
mod route;
mod service;
mod status;
mod submit;
mod transaction;
mod worker;

use commit::*;
use produce::*;
use service::*;
use status::*;

pub use latency::Latency;
pub use query::{Instance, Lookup, PartitionInfo, ServiceHandle};
pub use rebalance::GroupCtx;
pub use reload::{ReloadReport, RulesError, RulesSource};
pub use route::Route;
pub use service::{RunOptions, RunSummary, Service};
pub use status::Status;

pub(crate) use service::cached_high_watermark;
pub use submit::{Submitter, Written};

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
    /// How the partition was restored when it was assigned here.
    restored: RestoreInfo,
}

/// How a held partition was restored (for `/v1/status`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RestoreInfo {
    /// Changelog records read by the restore (for a warm copy, only the tail).
    pub records: u64,
    /// The changelog offset the restore started from when it promoted a warm standby
    /// copy; `None` when it read the partition from the beginning.
    pub from_standby: Option<i64>,
    /// Records the warm copy had read before its promotion.
    pub standby_records: u64,
    /// Time the restore took (ms).
    pub elapsed_ms: u64,
}

/// The population report and when it was computed, shared by an instance's workers.
type ReportCache = Arc<Mutex<Option<(Instant, Arc<crate::core::report::Report>)>>>;

/// Everything one worker's loop and its rebalance callbacks share.
pub struct Engine {
    /// This worker's index (0 .. `kafka.workers`).
    worker: usize,
    /// Partitions this worker has counted in `Status::partitions`.
    published_partitions: usize,
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
    /// The latest population report of the instance and when it was computed: metrics
    /// reuse it for [`REPORT_METRICS_EVERY`] (shared by the workers; a reload clears it).
    report_cache: ReportCache,
    /// Who holds which input partition (routing look-ups).
    members: Arc<crate::kafka::members::Members>,
    /// Writes claims to the members topic (and API actions to the input).
    submitter: Arc<Submitter>,
    /// Warm copies of partitions held elsewhere (`kafka.standby_replicas`).
    standbys: Arc<crate::kafka::standby::Standbys>,
    /// Reads the rule set again (reload); `None` outside `churnwatch run`.
    rules_source: Option<RulesSource>,
}

/// How old the report behind the `churnwatch_report_*` metrics may get. The report is kept
/// live, but a request still samples up to 20,000 customers per partition for the value
/// tiers (~25 ms per partition, with the engine locked), so scrapes within this interval
/// share one; the figures move on a scale of days anyway.
pub const REPORT_METRICS_EVERY: Duration = Duration::from_secs(10);

fn lock(e: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    // A panic elsewhere must not take the rebalance callbacks down with it.
    e.lock().unwrap_or_else(|p| p.into_inner())
}
