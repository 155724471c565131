//! What other threads read: customer look-ups, the population report, partition status
//! and metrics snapshots (through `ServiceHandle`, with the engine locked briefly).

use super::*;

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
    /// How it was restored when it was assigned here.
    pub restored: super::RestoreInfo,
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
    pub(super) engine: Arc<Mutex<Engine>>,
    /// Health.
    pub status: Arc<Status>,
    /// Writes actions (interventions) to the input topic.
    pub submitter: Arc<super::Submitter>,
}

impl ServiceHandle {
    /// The service's clock ("now": the wall clock, or the demo's compressed one).
    pub fn now(&self) -> Ts {
        let clock = Arc::clone(&lock(&self.engine).clock);
        clock()
    }

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

impl Engine {
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

    /// The instant the report is for: the newest partition watermark (the clock before
    /// any event).
    pub fn report_as_of(&self) -> Ts {
        self.parts
            .values()
            .filter_map(|p| p.proc.watermark())
            .max()
            .unwrap_or_else(|| (self.clock)())
    }

    /// The partitions held, in order.
    pub fn held(&self) -> Vec<i32> {
        self.parts.keys().copied().collect()
    }

    /// This instance's population sketches in portable form (`None` with analytics off or
    /// no partition held), for a group-wide report.
    pub fn population_wire(&self) -> Option<crate::core::analytics::PopulationWire> {
        self.population().map(|p| p.wire())
    }

    /// The report's sums over the partitions held at `as_of`, ranking customers among
    /// `among` (the group's population) or this instance's own.
    pub fn report_sums(
        &self,
        as_of: Ts,
        among: Option<&crate::core::analytics::Population>,
    ) -> crate::core::report::ReportSums {
        let own = if among.is_none() {
            self.population()
        } else {
            None
        };
        let among = among.or(own.as_ref());
        let mut sums = crate::core::report::ReportSums::new(&self.settings, 0);
        for p in self.parts.values() {
            sums.merge(&p.proc.report_among(as_of, among));
        }
        sums
    }

    /// The rule set.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
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
                restored: p.restored,
            })
            .collect()
    }

    /// The warm standby copies this instance keeps (`kafka.standby_replicas`).
    pub fn standbys(&self) -> Vec<crate::kafka::standby::StandbyInfo> {
        self.standbys.list()
    }

    /// Runs `f` over each partition's processor (metrics).
    pub fn for_each_processor(&self, mut f: impl FnMut(i32, &Processor)) {
        for (id, p) in &self.parts {
            f(*id, &p.proc);
        }
    }
}
