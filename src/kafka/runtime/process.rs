//! Processing: one input record through its partition's `Processor`, routing the
//! outputs to the encoder, and the idle advance of watermarks with the clock.

use super::*;

impl Engine {
    pub(super) fn route(&mut self, partition: i32) {
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

    pub(super) fn handle(&mut self, m: &BorrowedMessage<'_>) {
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
    pub(super) fn advance_idle(&mut self, caught_up: impl Fn(i32, i64) -> bool) {
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

    /// Records each partition's lag (high watermark of the last fetch − position).
    pub(super) fn update_lag(&mut self, high: impl Fn(i32) -> Option<i64>) {
        for (id, part) in self.parts.iter_mut() {
            part.lag = high(*id).map(|h| (h - part.next_offset.max(0)).max(0));
        }
    }
}
