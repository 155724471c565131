//! One worker (Kafka Streams' `StreamThread`): its own consumer in the instance's group,
//! and the poll loop that ties processing, commits and rebalances of the partitions the
//! group gave this consumer together until shutdown, then makes them durable.
//!
//! Each worker is a member of the consumer group in its own right, so the group's
//! assignor keeps the workers' partitions disjoint (as between instances) and a rebalance
//! runs the callbacks of the affected workers only, each on its own engine. Workers share
//! nothing on this path but atomics: the poll loop locks its own engine only (HTTP look-ups
//! lock every engine in worker order, briefly), so no lock order can cycle.

use super::*;

/// The consumer of one worker: the group, manual commits, and the protocol's assignor.
fn consumer_config(base: &ClientConfig, k: &KafkaSettings) -> ClientConfig {
    let mut cc = base.clone();
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
    cc
}

/// Runs one worker until a shutdown is requested; returns once its last interval is
/// durable (or with the error that stopped it).
pub(super) fn run(
    engine: Arc<Mutex<Engine>>,
    status: &Arc<Status>,
    base: &ClientConfig,
    k: &KafkaSettings,
) -> Result<(), RunError> {
    let worker = lock(&engine).worker;
    let consumer: BaseConsumer<GroupCtx> = consumer_config(base, k)
        .create_with_context(GroupCtx {
            engine: Arc::clone(&engine),
            status: Arc::clone(status),
            worker,
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
    if transactional && !lock(&engine).start_transactions()? {
        tracing::info!(
            worker,
            "stopped before the brokers answered; nothing was consumed"
        );
        return Ok(());
    }
    status.started.store(true, Ordering::SeqCst);
    status.workers_starting.fetch_sub(1, Ordering::SeqCst);
    let mut last_commit = Instant::now();
    let mut last_error_log: Option<Instant> = None;
    let mut last_probe = Instant::now();
    while !status.shutting_down() {
        let polled = consumer.poll(Duration::from_millis(20));
        let mut eng = lock(&engine);
        match polled {
            Some(Ok(m)) => {
                eng.handle(&m);
                status.broker_down.store(false, Ordering::Relaxed);
            }
            Some(Err(e)) if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) => {
                last_error_log = Some(Instant::now());
                eng.metrics.consumer_errors.inc();
                tracing::warn!(worker, error = %e, "consumer error; retrying");
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
        if status.broker_down.load(Ordering::Relaxed)
            && last_probe.elapsed() > Duration::from_secs(2)
        {
            last_probe = Instant::now();
            if consumer
                .fetch_metadata(Some(&k.input_topic), Duration::from_secs(1))
                .is_ok()
            {
                status.broker_down.store(false, Ordering::SeqCst);
                tracing::info!("brokers reachable again");
            }
        }
    }
    tracing::info!(
        worker,
        drain_timeout_s = k.drain_timeout.as_secs_f64(),
        "shutting down: making the current interval durable"
    );
    let deadline = Instant::now() + k.drain_timeout;
    let result = {
        let mut eng = lock(&engine);
        let r = eng.commit_all(&consumer, Some(deadline));
        let all: Vec<i32> = eng.parts.keys().copied().collect();
        eng.drop_partitions(&all);
        eng.publish_partitions();
        r
    };
    // With transactions the offsets were committed with the last transaction.
    if !transactional {
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "final offset commit");
        }
    }
    drop(consumer);
    result
}
