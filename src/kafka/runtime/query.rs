//! What other threads read: customer look-ups, the population report, partition status
//! and metrics snapshots (through `ServiceHandle`, with every worker's engine locked
//! briefly, in worker order, and the workers' partitions seen as one [`Instance`]).

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
    /// The worker holding it (0 .. `kafka.workers`).
    pub worker: usize,
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
    /// The workers' engines, by worker index.
    pub(super) engines: Vec<Arc<Mutex<Engine>>>,
    /// Health.
    pub status: Arc<Status>,
    /// Writes actions (interventions) to the input topic.
    pub submitter: Arc<super::Submitter>,
}

/// Every worker's engine of this instance, locked in worker order: the partitions of all
/// workers seen as the instance's (look-ups, reports, status, metrics).
pub struct Instance<'a> {
    pub(super) engines: Vec<MutexGuard<'a, Engine>>,
}

impl ServiceHandle {
    /// The service's clock ("now": the wall clock, or the demo's compressed one).
    pub fn now(&self) -> Ts {
        let clock = Arc::clone(&lock(&self.engines[0]).clock);
        clock()
    }

    /// The profile of a customer held by this instance (by whichever worker), with the
    /// input partition and the offset of the last event it reflects.
    pub fn lookup(&self, customer_id: &str) -> Option<Lookup> {
        self.with_instance(|i| i.lookup(customer_id))
    }

    /// The Prometheus text exposition of this instance (every worker's figures summed).
    pub fn metrics_text(&self) -> String {
        let (metrics, settings, snap) = self.with_instance(|i| {
            (
                Arc::clone(i.metrics()),
                Arc::clone(i.settings()),
                i.metrics_snapshot(),
            )
        });
        metrics.update(&settings, &snap);
        metrics.encode()
    }

    /// Runs `f` with every worker's engine locked. Engines are always locked in worker
    /// order, and a worker only ever locks its own, so this cannot deadlock.
    pub fn with_instance<R>(&self, f: impl FnOnce(&mut Instance<'_>) -> R) -> R {
        let mut i = Instance {
            engines: self.engines.iter().map(|e| lock(e)).collect(),
        };
        f(&mut i)
    }
}

impl Instance<'_> {
    /// Every held partition of every worker, with its worker's engine.
    fn parts(&self) -> impl Iterator<Item = (&Engine, i32, &Part)> {
        self.engines
            .iter()
            .flat_map(|e| e.parts.iter().map(move |(id, p)| (&**e, *id, p)))
    }

    /// Worker 0's engine: what all workers have alike (rules, clock, topics, metrics).
    pub(super) fn first(&self) -> &Engine {
        &self.engines[0]
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.engines.len()
    }

    /// What the metrics read at scrape time, summed over the workers.
    pub fn metrics_snapshot(&mut self) -> crate::metrics::Snapshot {
        let cached = lock_cache(&self.first().report_cache)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < REPORT_METRICS_EVERY)
            .map(|(_, r)| Arc::clone(r));
        let report = match cached {
            Some(r) => r,
            None => Arc::new(self.report()),
        };
        let first = self.first();
        let mut snap = crate::metrics::Snapshot {
            report: Some(report),
            stats: Default::default(),
            tiers: vec![0; first.settings.tiers.len()],
            ready: first.status.not_ready_reason().is_none(),
            commits: first.status.commits.load(Ordering::Relaxed),
            ..Default::default()
        };
        for e in &self.engines {
            snap.stats.add(&e.retired);
        }
        let now = (first.clock)();
        for (_, id, part) in self.parts() {
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
                id,
                part.lag,
                p.watermark().map(|w| (now - w) as f64 / 1000.0),
            ));
        }
        snap.partitions.sort_by_key(|(id, _, _)| *id);
        snap
    }

    /// The metrics of this instance (one registry for every worker).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.first().metrics
    }

    /// The profile of a customer held by this instance, with the input partition and
    /// the offset of the last event it reflects.
    /// Its standing (value score, ABC class …) is ranked among every customer this
    /// instance holds.
    pub fn lookup(&mut self, customer_id: &str) -> Option<Lookup> {
        let pop = self.population();
        self.engines.iter_mut().find_map(|e| {
            e.parts.iter_mut().find_map(|(id, p)| {
                let offset = p.proc.last_offset(customer_id)?;
                let standing = p.proc.standing(customer_id, pop.as_ref());
                p.proc.profile(customer_id).map(|profile| Lookup {
                    profile,
                    standing,
                    partition: *id,
                    offset,
                })
            })
        })
    }

    /// The population sketches of every partition held, merged (analytics enabled).
    pub fn population(&self) -> Option<crate::core::analytics::Population> {
        let mut it = self.parts().filter_map(|(_, _, p)| p.proc.population());
        let mut all = it.next()?.clone();
        for p in it {
            all.merge(p);
        }
        Some(all)
    }

    /// The instant the report is for: the newest partition watermark (the clock before
    /// any event).
    pub fn report_as_of(&self) -> Ts {
        self.parts()
            .filter_map(|(_, _, p)| p.proc.watermark())
            .max()
            .unwrap_or_else(|| (self.first().clock)())
    }

    /// The partitions held, in order.
    pub fn held(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.parts().map(|(_, id, _)| id).collect();
        v.sort_unstable();
        v
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
        let mut sums = crate::core::report::ReportSums::new(self.settings(), 0);
        for (_, _, p) in self.parts() {
            sums.merge(&p.proc.report_among(as_of, among));
        }
        sums
    }

    /// The rule set (every worker runs the same; a reload replaces it on all).
    pub fn settings(&self) -> &Arc<Settings> {
        &self.first().settings
    }

    /// The population report over the partitions this instance holds, as of the newest
    /// partition watermark (the clock before any event). A pass over every customer's
    /// record and history: on demand, never per event.
    pub fn report(&mut self) -> crate::core::report::Report {
        let sums = self.report_sums(self.report_as_of(), None);
        let r = sums.finish(self.settings());
        *lock_cache(&self.first().report_cache) = Some((Instant::now(), Arc::new(r.clone())));
        r
    }

    /// The input topic.
    pub fn input_topic(&self) -> &str {
        &self.first().k.input_topic
    }

    /// Event → output latencies so far, over every worker.
    pub fn latency(&self) -> Latency {
        let mut all = Latency::default();
        for e in &self.engines {
            all.merge(&e.latency);
        }
        all
    }

    /// Forgets the latency samples (benchmarks measure one phase at a time).
    pub fn reset_latency(&mut self) {
        for e in &mut self.engines {
            e.latency.reset();
        }
    }

    /// Customers held by this instance.
    pub fn customers(&self) -> usize {
        self.parts().map(|(_, _, p)| p.proc.customers()).sum()
    }

    /// Partitions held, in order, with the worker holding each.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        let mut v: Vec<PartitionInfo> = self
            .parts()
            .map(|(e, id, p)| PartitionInfo {
                partition: id,
                next_offset: p.next_offset,
                durable_offset: p.durable_offset,
                customers: p.proc.customers(),
                stream_time: p.proc.stream_time(),
                watermark: p.proc.watermark(),
                restored: p.restored,
                worker: e.worker,
            })
            .collect();
        v.sort_by_key(|p| p.partition);
        v
    }

    /// The warm standby copies this instance keeps (`kafka.standby_replicas`).
    pub fn standbys(&self) -> Vec<crate::kafka::standby::StandbyInfo> {
        self.first().standbys.list()
    }

    /// Runs `f` over each partition's processor (metrics), in partition order.
    pub fn for_each_processor(&self, mut f: impl FnMut(i32, &Processor)) {
        let mut all: Vec<(i32, &Processor)> =
            self.parts().map(|(_, id, p)| (id, &p.proc)).collect();
        all.sort_by_key(|(id, _)| *id);
        for (id, p) in all {
            f(id, p);
        }
    }

    /// This instance's advertised URL ("" with HTTP off).
    pub fn advertised_url(&self) -> String {
        self.first().members.url.clone()
    }

    /// The input topic's partition count (0 before it is known).
    pub fn input_partitions(&self) -> i32 {
        self.first().members.input_partitions()
    }
}

fn lock_cache(
    c: &ReportCache,
) -> MutexGuard<'_, Option<(Instant, Arc<crate::core::report::Report>)>> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}
