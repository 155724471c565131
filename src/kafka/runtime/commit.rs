//! The `at_least_once` commit protocol: cutting an interval (profiles, changelog records,
//! checkpoints), sending its changelog once its outputs are acknowledged, and completing
//! it once the changelog is (then the consumer offsets move, for lag only). With
//! `exactly_once`, `commit_all` hands over to the transaction (transaction.rs).

use super::*;

/// One partition's share of a cut interval: its changelog records and checkpoint.
pub(super) struct PartCut {
    pub(super) partition: i32,
    /// Changelog records in order: (key, value or null).
    pub(super) records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(super) next_offset: i64,
    /// Customers erased in the interval (their markers settle once it is durable).
    pub(super) erased: Vec<String>,
}

/// An interval that was cut: its outputs are in flight; its changelog is sent once they
/// are acknowledged, and it is durable once the changelog is acknowledged.
pub(super) struct Interval {
    pub(super) epoch: u64,
    pub(super) cut_at: Instant,
    pub(super) parts: Vec<PartCut>,
    pub(super) changelog_sent: bool,
}

impl Engine {
    /// The first error of records refused since the last call (counted in the metrics),
    /// or `None` if none was. Such a record is not in any interval that may be committed.
    pub(super) fn new_delivery_failure(&mut self) -> Option<String> {
        let failed = self.deliveries.failed.load(Ordering::SeqCst);
        if failed <= self.failures_seen {
            return None;
        }
        self.metrics
            .delivery_failures
            .inc_by(failed - self.failures_seen);
        self.failures_seen = failed;
        Some(
            self.deliveries
                .first_error
                .lock()
                .ok()
                .and_then(|mut f| f.take())
                .unwrap_or_default(),
        )
    }

    /// Closes the current interval: profiles of changed customers are sent (as outputs
    /// of the interval), and the interval's changelog records and checkpoints are queued
    /// until its outputs are acknowledged. Returns whether an interval was cut.
    pub(super) fn cut(&mut self) -> bool {
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
                    rules_version: part.proc.settings().rules_version.clone(),
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
    pub(super) fn progress<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), RunError> {
        if let Some(first) = self.new_delivery_failure() {
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
        self.status.set_stalled(self.worker, stalled);
        if self.pending.is_empty() {
            self.status.broker_down.store(false, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits until at most `keep` cut intervals are outstanding.
    pub(super) fn wait_pending<C: ConsumerContext>(
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
                self.status.set_stalled(self.worker, true);
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
    pub(super) fn commit_all<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        deadline: Option<Instant>,
    ) -> Result<(), RunError> {
        if self.transactional() {
            return self.commit_transaction(consumer, deadline);
        }
        self.cut();
        self.wait_pending(consumer, 0, deadline)?;
        self.status.set_stalled(self.worker, false);
        Ok(())
    }

    /// Drops partitions without writing their state (lost to another member): their
    /// queued changelog records must not be written by this instance any more.
    pub(super) fn drop_partitions(&mut self, lost: &[i32]) {
        for p in lost {
            if let Some(part) = self.parts.remove(p) {
                self.retired.add(part.proc.stats());
            }
            self.standbys.release(*p);
        }
        for iv in self.pending.iter_mut() {
            if !iv.changelog_sent {
                iv.parts.retain(|pc| !lost.contains(&pc.partition));
            }
        }
    }
}
