//! Exactly-once commits (`kafka.guarantee = "exactly_once"`), as Kafka Streams' EOS v2:
//! one Kafka transaction per commit interval holds the interval's outputs, its changelog
//! records and checkpoints, and the input offsets (`send_offsets_to_transaction` with the
//! consumer's group metadata). A read_committed consumer of the outputs sees an interval
//! whole or not at all.
//!
//! Fencing works through the group, not the transactional id: each start uses a fresh
//! `transactional.id` (unless `kafka.transactional_id` names one), and a zombie — an
//! instance whose partitions moved while it was paused — fails the offset commit of its
//! transaction because its group generation is stale, so the transaction aborts and
//! nothing it wrote becomes visible. The new owner, before it restores a partition,
//! fetches the committed offsets with `require_stable` (librdkafka does so for
//! read_committed consumers): the broker answers only once no transaction that touches the
//! partition's offsets is pending, so the changelog it then reads is final.
//!
//! With several workers (`kafka.workers`) each worker has its own producer and its own
//! transactions over the partitions it holds, as each Kafka Streams stream thread has:
//! the group fences each worker's consumer generation like any member's, and a
//! configured id becomes `{id}-w{i}` per worker (stable per instance and worker index, so
//! a restart with the same worker count fences its predecessor's producer at once; with
//! another count the old ids are left to time out after `kafka.transaction_timeout`, and
//! the group fencing above still holds).
//!
//! When a transaction cannot commit, it is aborted, and every partition still held is
//! rebuilt from the changelog and re-read from its checkpoint: the state in memory had
//! applied events whose outputs were just discarded.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::{send, Encoder, Engine, Rec, RunError};
use crate::kafka::config::Guarantee;

/// How long one transactional call may block before it is retried (or the drain
/// deadline is checked): librdkafka's calls are blocking and resumable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one attempt at a transactional call.
enum Attempt {
    Done,
    /// Timed out or otherwise retriable: call it again.
    Retry(KafkaError),
    /// The transaction must be aborted.
    Abort(KafkaError),
    /// The producer is unusable (fenced by another with the same id): replace it.
    Fatal(KafkaError),
}

fn classify(r: Result<(), KafkaError>) -> Attempt {
    match r {
        Ok(()) => Attempt::Done,
        Err(e) => match &e {
            KafkaError::Transaction(t) if t.is_fatal() => Attempt::Fatal(e),
            KafkaError::Transaction(t) if t.txn_requires_abort() => Attempt::Abort(e),
            KafkaError::Transaction(t) if t.is_retriable() => Attempt::Retry(e),
            _ => Attempt::Abort(e),
        },
    }
}

impl Engine {
    /// Whether outputs go through Kafka transactions.
    pub(super) fn transactional(&self) -> bool {
        self.k.guarantee == Guarantee::ExactlyOnce
    }

    /// Registers the producer's transactional id with the brokers (which aborts what an
    /// earlier producer with the same id left open) and begins the first transaction.
    /// Retries while the brokers are away; `Ok(false)` if a shutdown came first.
    pub(super) fn start_transactions(&mut self) -> Result<bool, RunError> {
        let mut backoff = Duration::from_millis(250);
        loop {
            if self.status.shutting_down() {
                return Ok(false);
            }
            match classify(self.producer.init_transactions(CALL_TIMEOUT)) {
                Attempt::Done => break,
                Attempt::Retry(e) | Attempt::Abort(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot start transactions yet; retrying (not ready)");
                    self.status.broker_down.store(true, Ordering::SeqCst);
                    super::sleep_unless_stopping(&self.status, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Attempt::Fatal(e) => return Err(RunError::Transaction(e.to_string())),
            }
        }
        self.status.broker_down.store(false, Ordering::SeqCst);
        self.producer
            .begin_transaction()
            .map_err(|e| RunError::Transaction(e.to_string()))?;
        tracing::info!(transactional_id = %self.transactional_id, worker = self.worker, "transactions started (exactly_once)");
        Ok(true)
    }

    /// Commits the current interval as one transaction: its outputs, then its changelog
    /// records and checkpoints, then the input offsets. Begins the next transaction. A
    /// transaction that cannot commit is aborted and the held partitions are rewound.
    pub(super) fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        deadline: Option<Instant>,
    ) -> Result<(), RunError> {
        if !self.cut() {
            return Ok(());
        }
        let Some(iv) = self.pending.pop_back() else {
            return Ok(());
        };
        // Every output of the interval must be in the producer before the commit.
        if !self.encoder.barrier() {
            return Err(RunError::Delivery(
                "the output encoder thread stopped".into(),
            ));
        }
        let tag = iv.epoch * 2 + 1;
        let mut offsets = TopicPartitionList::new();
        for pc in &iv.parts {
            for (key, value) in &pc.records {
                let rec = Rec {
                    topic: &self.k.topics.changelog,
                    partition: Some(pc.partition),
                    key: Some(key),
                    payload: value.as_deref(),
                };
                send(&self.producer, &self.deliveries, tag, rec);
            }
            if pc.next_offset >= 0 {
                let _ = offsets.add_partition_offset(
                    &self.k.input_topic,
                    pc.partition,
                    Offset::Offset(pc.next_offset),
                );
            }
        }
        // A record the producer refused at once is not in the transaction: committing
        // would lose it.
        if let Some(why) = self.new_delivery_failure() {
            return self.abort_and_rewind(consumer, &why);
        }
        if offsets.count() > 0 {
            let Some(meta) = consumer.group_metadata() else {
                return self.abort_and_rewind(consumer, "no consumer group metadata");
            };
            match self.retry(deadline, |p| {
                p.send_offsets_to_transaction(&offsets, &meta, CALL_TIMEOUT)
            })? {
                Attempt::Done => {}
                Attempt::Fatal(e) => return self.replace_and_rewind(consumer, &e),
                Attempt::Abort(e) | Attempt::Retry(e) => {
                    return self.abort_and_rewind(consumer, &e.to_string())
                }
            }
        }
        match self.retry(deadline, |p| p.commit_transaction(CALL_TIMEOUT))? {
            Attempt::Done => {}
            Attempt::Fatal(e) => return self.replace_and_rewind(consumer, &e),
            Attempt::Abort(e) | Attempt::Retry(e) => {
                return self.abort_and_rewind(consumer, &e.to_string())
            }
        }
        for pc in iv.parts {
            if let Some(part) = self.parts.get_mut(&pc.partition) {
                part.durable_offset = pc.next_offset;
                part.settled.extend(pc.erased);
            }
        }
        self.outputs_acked_through = iv.epoch;
        self.status.commits.fetch_add(1, Ordering::Relaxed);
        self.status.set_stalled(self.worker, false);
        self.status.broker_down.store(false, Ordering::Relaxed);
        self.metrics
            .commit_duration
            .observe(iv.cut_at.elapsed().as_secs_f64());
        self.begin_next(consumer)
    }

    /// Runs a transactional call until it is done, fails for good, or the deadline
    /// passes (then the last error is returned as an abort).
    fn retry(
        &mut self,
        deadline: Option<Instant>,
        call: impl Fn(
            &rdkafka::producer::ThreadedProducer<super::ProducerCtx>,
        ) -> Result<(), KafkaError>,
    ) -> Result<Attempt, RunError> {
        let started = Instant::now();
        let mut deadline = deadline;
        loop {
            match classify(call(&self.producer)) {
                Attempt::Retry(e) => {
                    // A stop request during a long wait gets the drain time, no more.
                    if deadline.is_none() && self.status.shutting_down() {
                        deadline = Some(Instant::now() + self.k.drain_timeout);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RunError::DrainTimeout(self.k.drain_timeout));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    self.status.set_stalled(self.worker, true);
                    if self
                        .last_stall_log
                        .is_none_or(|t| t.elapsed() > Duration::from_secs(5))
                    {
                        self.last_stall_log = Some(Instant::now());
                        tracing::warn!(error = %e, waited_s = started.elapsed().as_secs(), "waiting for the brokers to commit the transaction; consumption paused, nothing is lost");
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// Begins the next transaction (a failure here means the producer is unusable).
    fn begin_next<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), RunError> {
        match self.producer.begin_transaction() {
            Ok(()) => Ok(()),
            Err(e) => self.replace_and_rewind(consumer, &e),
        }
    }

    /// Aborts the open transaction and rebuilds every held partition from the changelog.
    pub(super) fn abort_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        why: &str,
    ) -> Result<(), RunError> {
        tracing::warn!(error = why, "transaction aborted; rebuilding the held partitions from the changelog and re-reading from the last commit");
        self.metrics.transactions_aborted.inc();
        let _ = self.encoder.barrier();
        loop {
            match classify(self.producer.abort_transaction(CALL_TIMEOUT)) {
                Attempt::Done => break,
                Attempt::Retry(e) if !self.status.shutting_down() => {
                    tracing::warn!(error = %e, "abort not acknowledged yet; retrying");
                }
                Attempt::Retry(e) | Attempt::Abort(e) => {
                    return Err(RunError::Transaction(e.to_string()))
                }
                Attempt::Fatal(e) => return self.replace_and_rewind(consumer, &e),
            }
        }
        self.rewind(consumer);
        self.begin_next(consumer)
    }

    /// Replaces a producer that can no longer be used (fenced: another producer took its
    /// transactional id), then rebuilds the held partitions.
    fn replace_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        e: &KafkaError,
    ) -> Result<(), RunError> {
        tracing::warn!(error = %e, "the transactional producer was fenced; starting a new one and rebuilding the held partitions");
        self.metrics.transactions_aborted.inc();
        let (producer, id) =
            super::create_producer(&self.k, self.worker, &self.deliveries, &self.status)?;
        // The old encoder's queue may still hold outputs of the lost transaction; they
        // are dropped with it (its sends fail and are not committed by anyone).
        let old = std::mem::replace(
            &mut self.encoder,
            Encoder::start(
                Arc::clone(&producer),
                Arc::clone(&self.deliveries),
                self.k.topics.clone(),
                Arc::clone(&self.metrics),
            )
            .map_err(RunError::Thread)?,
        );
        drop(old);
        self.producer = producer;
        self.transactional_id = id;
        if !self.start_transactions()? {
            return Ok(());
        }
        self.failures_seen = self.deliveries.failed.load(Ordering::SeqCst);
        self.rewind(consumer);
        Ok(())
    }

    /// Drops the state of every held partition and restores it from the changelog, then
    /// moves the consumer back to each checkpoint.
    fn rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) {
        let held: Vec<i32> = self.parts.keys().copied().collect();
        self.pending.clear();
        self.drop_partitions(&held);
        if held.is_empty() {
            return;
        }
        if self.transactional() {
            wait_stable_offsets(
                consumer,
                &self.k.input_topic,
                &held,
                self.k.transaction_timeout + self.k.broker_timeout,
                &self.status,
            );
        }
        let job = self.restore_job();
        let mut starts = TopicPartitionList::new();
        let topic = self.k.input_topic.clone();
        job.run(&held, |p, proc, restored| {
            let start = self.install(p, proc, restored);
            let _ = starts.add_partition_offset(&topic, p, start);
        });
        if starts.count() > 0 {
            if let Err(e) = consumer.seek_partitions(starts, self.k.broker_timeout) {
                tracing::warn!(error = %e, "cannot move back to the checkpoints; the group rebalances");
            }
        }
    }
}

/// Waits until no transaction that commits offsets of `partitions` of `topic` is pending
/// (the offset fetch with `require_stable` answers only then), so that a restore reads a
/// final changelog. Gives up after `limit` with a warning: a pending transaction of a dead
/// instance is aborted by the broker after `kafka.transaction_timeout`, so a longer wait
/// means the brokers are away, and the restore's own retries take over.
pub(super) fn wait_stable_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    limit: Duration,
    status: &super::Status,
) {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topic, *p);
    }
    let started = Instant::now();
    while !status.shutting_down() {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            tracing::warn!(
                waited_s = started.elapsed().as_secs(),
                "offsets of the assigned partitions are still not stable; restoring anyway"
            );
            return;
        }
        match consumer.committed_offsets(tpl.clone(), left.min(CALL_TIMEOUT)) {
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "waiting for pending transactions on the assigned partitions");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
