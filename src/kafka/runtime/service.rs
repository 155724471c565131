//! The service: one engine per worker (`kafka.workers`) with its producer and encoder,
//! checking and creating topics, and starting the workers (`worker.rs`) and stopping
//! them together.

use super::*;

/// The partition's high watermark as of the consumer's last fetch (no request). `None`
/// until a fetch has reported one.
pub(crate) fn cached_high_watermark<C: ConsumerContext>(
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
pub(super) fn fetch_metadata_unless_stopping(
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

pub(super) fn sleep_unless_stopping(status: &Status, d: Duration) {
    let until = Instant::now() + d;
    while !status.shutting_down() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
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
    /// This instance's HTTP address as other instances reach it (`http.advertised()`;
    /// "" = HTTP off: it claims no partitions in the members table).
    pub advertised_url: String,
}

/// Counts of a finished run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Input events handled.
    pub events: u64,
    /// Intervals made durable.
    pub commits: u64,
}

/// The service, created but not yet running: one engine per worker.
pub struct Service {
    /// The workers' engines, by worker index (at least one).
    pub(super) engines: Vec<Arc<Mutex<Engine>>>,
    pub(super) status: Arc<Status>,
    pub(super) base: ClientConfig,
    pub(super) submitter: Arc<super::Submitter>,
}

/// Settings of the consumers (group, restore, metadata and admin clients).
pub(super) fn base_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, v) in &k.client {
        c.set(key, v);
    }
    c
}

impl Service {
    /// Creates the workers' producers and encoder threads; nothing is contacted yet.
    pub fn new(opts: RunOptions) -> Result<Service, RunError> {
        let base = base_config(&opts.kafka);
        let submitter = Arc::new(super::Submitter::new(&opts.kafka));
        let members = Arc::new(crate::kafka::members::Members::new(
            &opts.advertised_url,
            &opts.kafka.topics.members,
            opts.kafka.input_partitioner,
        ));
        let workers = opts.kafka.workers.max(1);
        tracing::info!(
            brokers = %opts.kafka.brokers,
            group = %opts.kafka.group_id,
            input = %opts.kafka.input_topic,
            workers,
            client = ?describe_client(&opts.kafka.client),
            "starting"
        );
        // Instance-wide: one registry, one set of warm copies, one report cache.
        let metrics = Arc::new(crate::metrics::Metrics::new(&opts.settings));
        let standbys = Arc::new(crate::kafka::standby::Standbys::new(
            opts.kafka.standby_replicas,
            &metrics,
        ));
        let report_cache: ReportCache = Arc::default();
        let mut engines = Vec::with_capacity(workers);
        for worker in 0..workers {
            let deliveries = Arc::new(Deliveries::new(
                opts.kafka.guarantee == Guarantee::ExactlyOnce,
            ));
            let (producer, transactional_id) =
                create_producer(&opts.kafka, worker, &deliveries, &opts.status)?;
            let encoder = Encoder::start(
                Arc::clone(&producer),
                Arc::clone(&deliveries),
                opts.kafka.topics.clone(),
                Arc::clone(&metrics),
            )
            .map_err(RunError::Thread)?;
            engines.push(Arc::new(Mutex::new(Engine {
                worker,
                published_partitions: 0,
                settings: Arc::clone(&opts.settings),
                k: opts.kafka.clone(),
                base: base.clone(),
                producer,
                transactional_id,
                encoder,
                deliveries,
                failures_seen: 0,
                parts: BTreeMap::new(),
                clock: Arc::clone(&opts.clock),
                hook: opts.hook.clone(),
                status: Arc::clone(&opts.status),
                outs: Vec::with_capacity(16),
                retired: Default::default(),
                metrics: Arc::clone(&metrics),
                last_stall_log: None,
                latency: Latency::default(),
                epoch: 1,
                outputs_acked_through: 0,
                pending: Default::default(),
                report_cache: Arc::clone(&report_cache),
                members: Arc::clone(&members),
                submitter: Arc::clone(&submitter),
                standbys: Arc::clone(&standbys),
                rules_source: None,
            })));
        }
        Ok(Service {
            engines,
            status: opts.status,
            base,
            submitter,
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> ServiceHandle {
        ServiceHandle {
            engines: self.engines.clone(),
            status: Arc::clone(&self.status),
            submitter: Arc::clone(&self.submitter),
        }
    }

    /// Runs until a shutdown is requested; returns after every worker's last interval is
    /// durable. A worker that fails stops the others (they drain), and its error is the
    /// service's.
    pub fn run(self) -> Result<RunSummary, RunError> {
        let k = lock(&self.engines[0]).k.clone();
        let Some(input_partitions) = self.ensure_topics(&k)? else {
            tracing::info!("stopped before the brokers answered; nothing was consumed");
            return Ok(RunSummary::default());
        };
        tracing::info!(partitions = input_partitions, "topics ready");
        let members_reader = self.start_members(&k, input_partitions);
        let standby_reader = self.start_standbys(&k);
        self.status
            .workers_starting
            .store(self.engines.len(), Ordering::SeqCst);
        let run_one = |engine: &Arc<Mutex<Engine>>| {
            let r = worker::run(Arc::clone(engine), &self.status, &self.base, &k);
            if let Err(e) = &r {
                // The others drain what they hold and stop: one instance, one fate.
                tracing::error!(worker = lock(engine).worker, error = %e, "worker failed; stopping the service");
                self.status.request_shutdown();
            }
            r
        };
        // Worker 0 runs on this thread (with one worker, as before workers existed).
        let results: Vec<Result<(), RunError>> = std::thread::scope(|scope| {
            let mut others = Vec::new();
            for (i, engine) in self.engines.iter().enumerate().skip(1) {
                let spawned = std::thread::Builder::new()
                    .name(format!("churnwatch-worker-{i}"))
                    .spawn_scoped(scope, || run_one(engine));
                match spawned {
                    Ok(h) => others.push(h),
                    Err(e) => {
                        self.status.request_shutdown();
                        others.clear();
                        return vec![Err(RunError::Thread(e))];
                    }
                }
            }
            let mut all = vec![run_one(&self.engines[0])];
            for h in others {
                all.push(h.join().unwrap_or_else(|_| {
                    self.status.request_shutdown();
                    Err(RunError::Thread(std::io::Error::other(
                        "a worker thread panicked",
                    )))
                }));
            }
            all
        });
        for h in [members_reader, standby_reader].into_iter().flatten() {
            let _ = h.join();
        }
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
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
    pub(super) fn ensure_topics(&self, k: &KafkaSettings) -> Result<Option<i32>, RunError> {
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

    pub(super) fn create_topics(
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
