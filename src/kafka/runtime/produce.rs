//! Producing outputs: the producer and its delivery reports (`Deliveries`: outstanding
//! records per interval tag), the send paths that never drop a record, and the encoder
//! thread that JSON-encodes outputs and hands them to the producer in order.

use super::*;

pub(super) struct Deliveries {
    /// With transactions, a record that fails delivery makes its transaction's commit
    /// fail (and aborted transactions fail their queued records): the commit is the
    /// verdict, not the delivery report.
    pub(super) transactional: bool,
    pub(super) failed: AtomicU64,
    pub(super) first_error: Mutex<Option<String>>,
    pub(super) outstanding: Vec<std::sync::atomic::AtomicI64>,
}

impl Deliveries {
    pub(super) fn new(transactional: bool) -> Self {
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
    pub(super) fn pending(&self, tag: u64) -> i64 {
        self.outstanding[(tag as usize) % RING].load(Ordering::Acquire)
    }
}

pub(super) struct ProducerCtx {
    pub(super) deliveries: Arc<Deliveries>,
    pub(super) status: Arc<Status>,
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

pub(super) fn topic_for<'a>(t: &'a crate::kafka::config::TopicsConfig, o: &Output) -> &'a str {
    match o {
        Output::TierChanged(_) => &t.tier_changes,
        Output::Warning(_) | Output::Cleared(_) | Output::Overdue(_) => &t.warnings,
        Output::Profile(_) | Output::Tombstone(_) => &t.profiles,
        Output::DeadLetter(_) => &t.dead_letters,
    }
}

/// One record to produce.
pub(super) struct Rec<'a> {
    pub(super) topic: &'a str,
    /// An explicit partition (the changelog's), or the key's hash.
    pub(super) partition: Option<i32>,
    pub(super) key: Option<&'a [u8]>,
    /// `None`: a null value (a tombstone for compaction).
    pub(super) payload: Option<&'a [u8]>,
}

/// Sends one record tagged `tag`, waiting while the local queue is full (never drops).
pub(super) fn send(
    producer: &ThreadedProducer<ProducerCtx>,
    deliveries: &Deliveries,
    tag: u64,
    rec: Rec<'_>,
) {
    deliveries.outstanding[(tag as usize) % RING].fetch_add(1, Ordering::AcqRel);
    send_counted(producer, deliveries, tag, rec, None);
}

/// [`send`] for a record already counted as outstanding under `tag`. With `abort`, the
/// wait for room in a full local queue ends when it is set (the service is going away;
/// the interval was not committed, so a restart produces the record again).
pub(super) fn send_counted(
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
pub(super) const ENCODER_QUEUE: usize = 16_384;

/// Work for the encoder thread.
pub(super) enum Job {
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
pub(super) struct Encoder {
    pub(super) tx: Option<std::sync::mpsc::SyncSender<Job>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the encoder is dropped: stop waiting for room in the producer's queue.
    pub(super) stop: Arc<AtomicBool>,
}

impl Encoder {
    pub(super) fn start(
        producer: Arc<ThreadedProducer<ProducerCtx>>,
        deliveries: Arc<Deliveries>,
        topics: crate::kafka::config::TopicsConfig,
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
    pub(super) fn submit(&self, deliveries: &Deliveries, tag: u64, out: Output) {
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
    pub(super) fn barrier(&self) -> bool {
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

/// The `transactional.id` of worker `worker` of `workers` when `kafka.transactional_id`
/// names `configured`: as configured with one worker, `{configured}-w{worker}` with more.
pub(super) fn worker_transactional_id(configured: &str, worker: usize, workers: usize) -> String {
    if workers <= 1 {
        configured.to_string()
    } else {
        format!("{configured}-w{worker}")
    }
}

/// Consumer settings librdkafka would warn about on a producer.
pub(super) fn is_consumer_only(key: &str) -> bool {
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

/// The output producer of worker `worker`: idempotent, `acks=all`, and with
/// `exactly_once` transactional (returns its `transactional.id`, else an empty one).
pub(super) fn create_producer(
    k: &KafkaSettings,
    worker: usize,
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
        // Each worker has a producer of its own, so each needs an id of its own: the
        // configured one with the worker's index, stable across restarts of the same
        // instance and worker count, so a restart still fences its predecessor at once.
        // One worker keeps the id as configured.
        Guarantee::ExactlyOnce if !k.transactional_id.is_empty() => {
            worker_transactional_id(&k.transactional_id, worker, k.workers)
        }
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

#[cfg(test)]
mod tests {
    use super::worker_transactional_id;

    #[test]
    fn a_configured_transactional_id_is_kept_with_one_worker_and_indexed_with_more() {
        assert_eq!(worker_transactional_id("pod-3", 0, 1), "pod-3");
        assert_eq!(worker_transactional_id("pod-3", 0, 2), "pod-3-w0");
        assert_eq!(worker_transactional_id("pod-3", 1, 2), "pod-3-w1");
    }
}
