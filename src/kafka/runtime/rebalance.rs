//! Rebalances: the consumer context whose callbacks restore assigned partitions from the
//! changelog (concurrently, without the engine's lock; from a warm standby copy when this
//! instance keeps one, `kafka/standby.rs`) and make revoked ones durable.

use super::*;

/// A copy of what [`changelog::restore_partitions`] needs from the engine.
pub(super) struct RestoreJob {
    pub(super) base: ClientConfig,
    pub(super) changelog: String,
    pub(super) settings: Arc<Settings>,
    pub(super) timeout: Duration,
    pub(super) parallelism: usize,
    pub(super) status: Arc<Status>,
    pub(super) standbys: Arc<crate::kafka::standby::Standbys>,
}

impl RestoreJob {
    /// Restores `partitions` concurrently, each from this instance's warm standby copy
    /// when it keeps one (only the changelog's tail is read), else from the beginning. A
    /// partition that fails is retried with backoff (alone with the other failures, and
    /// from the beginning: its copy went with the failed attempt) until it succeeds or
    /// shutdown begins, and each one restored is handed to `install` as soon as its round
    /// ends.
    pub(super) fn run(
        &self,
        partitions: &[i32],
        mut install: impl FnMut(i32, Processor, changelog::Restored),
    ) {
        let mut pending: Vec<(i32, Option<changelog::WarmCopy>)> = partitions
            .iter()
            .map(|&p| (p, self.standbys.take(p)))
            .collect();
        let mut backoff = Duration::from_millis(200);
        while !pending.is_empty() {
            let stop = || self.status.shutting_down();
            let results = changelog::restore_or_catch_up(
                &self.base,
                &self.changelog,
                std::mem::take(&mut pending),
                &self.settings,
                self.timeout,
                self.parallelism,
                &stop,
            );
            for (p, r) in results {
                match r {
                    Ok((proc, restored)) => install(p, proc, restored),
                    Err(RestoreError::Interrupted) => {}
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, retry_in_ms = backoff.as_millis() as u64, "restore failed; retrying");
                        pending.push((p, None));
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
    pub(super) engine: Arc<Mutex<Engine>>,
    pub(super) status: Arc<Status>,
    /// The worker whose consumer this is (for the log).
    pub(super) worker: usize,
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
                tracing::info!(partitions = ?parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(), worker = self.worker, "partitions assigned");
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
                    eng.publish_partitions();
                }
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "unassign failed");
                }
                tracing::info!(partitions = ?parts.iter().map(|(_, p)| *p).collect::<Vec<_>>(), lost, worker = self.worker, "partitions revoked");
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error; librdkafka retries");
            }
        }
    }
}

impl Engine {
    /// Brings `Status::partitions` (the instance's count, over every worker) up to date
    /// with this worker's: each worker adds the change in its own count.
    pub(super) fn publish_partitions(&mut self) {
        let n = self.parts.len();
        if n >= self.published_partitions {
            (self.status.partitions).fetch_add(n - self.published_partitions, Ordering::Relaxed);
        } else {
            (self.status.partitions).fetch_sub(self.published_partitions - n, Ordering::Relaxed);
        }
        self.published_partitions = n;
    }

    /// What restoring partitions needs, taken under the lock so the restores themselves
    /// run without it (HTTP look-ups and metrics stay answered meanwhile).
    pub(super) fn restore_job(&self) -> RestoreJob {
        RestoreJob {
            base: self.base.clone(),
            changelog: self.k.topics.changelog.clone(),
            settings: Arc::clone(&self.settings),
            timeout: self.k.broker_timeout,
            parallelism: self.k.restore_parallelism,
            status: Arc::clone(&self.status),
            standbys: Arc::clone(&self.standbys),
        }
    }

    /// Takes over partition `p` restored into `proc`; returns where to start consuming.
    pub(super) fn install(&mut self, p: i32, proc: Processor, r: changelog::Restored) -> Offset {
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
        if r.from_standby.is_some() {
            self.metrics.standby_promotions.inc();
        }
        tracing::info!(
            partition = p,
            worker = self.worker,
            customers = proc.customers(),
            records = r.records,
            from_standby = ?r.from_standby,
            standby_records = r.standby_records,
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
                restored: RestoreInfo {
                    records: r.records,
                    from_standby: r.from_standby,
                    standby_records: r.standby_records,
                    elapsed_ms: r.elapsed.as_millis() as u64,
                },
            },
        );
        self.follow_rules(p, r.checkpoint.as_ref().map(|c| c.rules_version.as_str()));
        self.publish_partitions();
        self.claim(p);
        start
    }
}

impl Service {
    /// Starts the thread that keeps this instance's warm standby copies
    /// (`kafka.standby_replicas` > 0). Standbys are chosen from the members table, so
    /// they need it (and HTTP, through which an instance is named in it).
    pub(super) fn start_standbys(&self, k: &KafkaSettings) -> Option<std::thread::JoinHandle<()>> {
        let (standbys, members, settings) = {
            let e = lock(&self.engines[0]);
            (
                Arc::clone(&e.standbys),
                Arc::clone(&e.members),
                Arc::clone(&e.settings),
            )
        };
        if standbys.replicas == 0 {
            return None;
        }
        if !members.enabled() || members.url.is_empty() {
            tracing::warn!("kafka.standby_replicas is set but there is no members table (it needs kafka.topics.members and http.listen): no warm standbys are kept, and a moved partition is restored from the whole changelog");
            return None;
        }
        let opts = crate::kafka::standby::TailOptions {
            base: self.base.clone(),
            changelog: k.topics.changelog.clone(),
            settings,
        };
        let status = Arc::clone(&self.status);
        std::thread::Builder::new()
            .name("churnwatch-standby".into())
            .spawn(move || {
                crate::kafka::standby::tail(opts, standbys, members, || status.shutting_down())
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the standby thread; no warm standbys are kept"))
            .ok()
    }
}
