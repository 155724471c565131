//! End-to-end benchmark of `churnwatch run` (the in-process [`Service`]) against Apache
//! Kafka 4.4.0.
//!
//! ```sh
//! RUST_LOG=warn cargo run --release --example e2e -- [EVENTS] [CUSTOMERS] [RATE] [LATENCY_SECS] [RESTORE_CUSTOMERS] [FAILOVER_CUSTOMERS]
//! ```
//!
//! Defaults 2000000 1000000 20000 20 1000000 1000000. Each phase starts its own single-node KRaft
//! broker with `scripts/kafka.sh start` (Java 17+ and Maven needed; the first run
//! assembles Kafka from Maven Central into the tools cache) and stops it afterwards. A
//! phase whose size argument is 0 is skipped (`e2e 0 0 0 0 1000000` measures only the
//! restore).
//!
//! 1. Catch-up: pre-fill a 4-partition topic with EVENTS generated events over CUSTOMERS
//!    customers, read it with a bare librdkafka consumer (no processing), then with the
//!    service (outputs, profiles, changelog and checkpoints written back to the same
//!    broker) with `kafka.guarantee = "at_least_once"`, then `"exactly_once"`; print the
//!    rates, first to last event, and each service rate's ratio to the bare one. Each
//!    guarantee runs with each worker count of `E2E_WORKERS` (`kafka.workers`, default
//!    "1,2"), all against the round's bare figure, and the round ends with the ratios side
//!    by side. This runs `E2E_ROUNDS` times (default 2), each service run in a fresh group
//!    with fresh output topics.
//! 2. Latency, for each guarantee: produce at a steady RATE events/s for LATENCY_SECS to a
//!    fresh topic while the service runs, and print p50/p99/p99.9 after a 2 s warm-up,
//!    measured two ways: (a) the service's own: input CreateTime → the service hands the
//!    event's outputs to its producer (in-process; before the broker's ack, and before the
//!    commit interval makes them durable or, with exactly_once, visible); (b) downstream:
//!    input CreateTime → a consumer of the alert topics (tier changes, churn warnings)
//!    receives the alert: `read_uncommitted` for at_least_once, `read_committed` for
//!    exactly_once (an alert shows once its interval's transaction commits). Then the same
//!    rate through the broker alone (produce → a bare consumer receives), the floor under
//!    both.
//! 3. Restore: write RESTORE_CUSTOMERS customer snapshots to a compacted 4-partition
//!    changelog and time restoring all partitions (customers/s and seconds).
//! 4. Fail-over (`failover.rs`; runs the `churnwatch` binary of the same build, so
//!    `cargo build --release` first): two `churnwatch run` processes over a changelog of
//!    FAILOVER_CUSTOMERS customers, one killed with SIGKILL; the time from the kill to
//!    the survivor's first output for the moved partitions, with `kafka.standby_replicas`
//!    0 and 1, the detection and the restore apart.
//!
//! Every result line ends with the process's RSS and the machine's load average.
//! `E2E_COMPRESSION=none|lz4|zstd…` overrides the service producer's compression (LZ4).

mod alerts;
mod broker;
mod failover;
mod restore;

/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::core::Settings;
use churnwatch::gen::{GenOptions, Generator};
use churnwatch::kafka::runtime::Latency;
use churnwatch::kafka::{
    wall_clock, KafkaSettings, RunError, RunOptions, RunSummary, Service, ServiceHandle, Status,
};
use churnwatch::produce::{produce, ProduceOptions};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use broker::{rss_and_load, Kafka, PARTITIONS};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map_or(default, |v| v.parse().expect("numeric argument"))
}

/// p50, p99, p99.9 and max; `Latency` keeps 0–9,999 ms and counts the rest as 10 s.
fn quantiles(l: &Latency) -> String {
    let q = |q| match l.quantile(q).unwrap_or(0) {
        ms if ms >= 10_000 => ">= 10 s".to_string(),
        ms => format!("{ms} ms"),
    };
    format!(
        "p50 {}, p99 {}, p99.9 {}, max {}",
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    )
}

/// The service running on its own thread.
struct Running {
    handle: ServiceHandle,
    status: Arc<Status>,
    settings: KafkaSettings,
    thread: JoinHandle<Result<RunSummary, RunError>>,
}

impl Running {
    /// Panics with the service's error if it stopped on its own.
    fn check(&self) {
        if self.thread.is_finished() {
            self.status.request_shutdown();
            panic!("the service stopped by itself (its error is above)");
        }
    }

    fn wait_ready(&self) {
        while self.status.not_ready_reason().is_some() {
            self.check();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(self) {
        self.status.request_shutdown();
        self.thread.join().unwrap().expect("the service's run");
    }
}

/// `kafka.guarantee`, both measured.
#[derive(Clone, Copy, PartialEq)]
enum Guarantee {
    AtLeastOnce,
    ExactlyOnce,
}

const GUARANTEES: [Guarantee; 2] = [Guarantee::AtLeastOnce, Guarantee::ExactlyOnce];

impl Guarantee {
    fn setting(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnce => "exactly_once",
        }
    }

    /// For group and topic names.
    fn short(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "alo",
            Guarantee::ExactlyOnce => "eos",
        }
    }
}

/// Starts a service reading `input` in consumer group `group`, its output topics prefixed
/// with the group's name and created here as `churnwatch run` would create them;
/// `workers` sets `kafka.workers` (`None`: the default, one per core).
fn service(
    kafka: &Kafka,
    input: &str,
    group: &str,
    guarantee: Guarantee,
    workers: Option<i64>,
) -> Running {
    let mut k = Config::load_with_env(None, false).unwrap().kafka;
    k.guarantee = guarantee.setting().into();
    if let Some(w) = workers {
        k.workers = w;
    }
    k.brokers = kafka.brokers().into();
    k.input_topic = input.into();
    k.group_id = group.into();
    k.idle_timeout = "0s".into();
    for t in [
        &mut k.topics.tier_changes,
        &mut k.topics.warnings,
        &mut k.topics.profiles,
        &mut k.topics.dead_letters,
        &mut k.topics.changelog,
    ] {
        *t = format!("{group}.{t}");
    }
    let t = &k.topics;
    kafka.create_topics(&[
        (&t.tier_changes, false),
        (&t.warnings, false),
        (&t.profiles, true),
        (&t.dead_letters, false),
        (&t.changelog, true),
    ]);
    let mut ks = k.compile().unwrap();
    if let Ok(c) = std::env::var("E2E_COMPRESSION") {
        ks.client.push(("compression.type".into(), c));
    }
    let status = Status::new();
    let svc = Service::new(RunOptions {
        settings: Arc::new(Settings::defaults()),
        kafka: ks.clone(),
        clock: wall_clock(),
        hook: None,
        status: Arc::clone(&status),
        advertised_url: String::new(),
    })
    .unwrap();
    Running {
        handle: svc.handle(),
        status,
        settings: ks,
        thread: std::thread::spawn(move || {
            let r = svc.run();
            if let Err(e) = &r {
                eprintln!("the service stopped: {e}");
            }
            r
        }),
    }
}

/// The steady-rate workload: 100 k customers over the 300 days before `start + 300 d`.
fn live_gen(events: u64, start: i64) -> Generator {
    Generator::new(GenOptions {
        customers: 100_000,
        events,
        seed: 4,
        start,
        days: 300,
        duplicates: 0.0,
        bad: 0.0,
    })
}

fn produce_to(kafka: &Kafka, topic: &str, gen: Generator, rate: Option<f64>) -> u64 {
    let client = match rate {
        Some(_) => vec![("linger.ms".into(), "0".into())],
        None => vec![],
    };
    let opts = ProduceOptions {
        brokers: kafka.brokers().into(),
        topic: topic.into(),
        rate,
        client,
        progress: false,
    };
    produce(gen, &opts).unwrap()
}

fn main() {
    let events = arg(1, 2_000_000);
    let customers = arg(2, 1_000_000) as u32;
    let rate = arg(3, 20_000) as f64;
    let latency_secs = arg(4, 20);
    let restore_customers = arg(5, 1_000_000) as u32;
    let failover_customers = arg(6, 1_000_000) as u32;
    let rounds = std::env::var("E2E_ROUNDS").map_or(2, |v| v.parse().expect("E2E_ROUNDS"));
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rss_and_load()
    );
    if events > 0 {
        catch_up(events, customers, rounds);
    }
    if latency_secs > 0 {
        latency(rate, latency_secs);
    }
    if restore_customers > 0 {
        restore::restore(restore_customers);
    }
    if failover_customers > 0 {
        failover::failover(failover_customers);
    }
}

/// Phase 1, catch-up: the service against a bare consumer on the same pre-filled topic.
fn catch_up(events: u64, customers: u32, rounds: u32) {
    let kafka = Kafka::start();
    kafka.create_topics(&[("bench-in", false)]);
    let t0 = Instant::now();
    let gen = Generator::new(GenOptions {
        customers,
        events,
        seed: 3,
        duplicates: 0.0,
        bad: 0.0,
        ..Default::default()
    });
    let total = produce_to(&kafka, "bench-in", gen, None);
    println!(
        "prefill: {total} events in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let workers: Vec<i64> = std::env::var("E2E_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|w| w.trim().parse().expect("E2E_WORKERS: counts like 1,2"))
        .collect();
    for round in 1..=rounds {
        let bare_rate = bare_catch_up(&kafka, "bench-in", total);
        let mut ratios = Vec::new();
        for g in GUARANTEES {
            for &w in &workers {
                let group = format!("catchup-{round}-{}-w{w}", g.short());
                let svc = service(&kafka, "bench-in", &group, g, Some(w));
                let (n, secs) = count_until_done(&svc, total);
                let rate = n as f64 / secs;
                println!(
                    "round {round}: churnwatch run, {}, {w} worker(s): {n} events in {secs:.2} s = {rate:.0} events/s; {} customers; ratio to the bare consumer {:.3}; {}",
                    g.setting(),
                    svc.handle.with_instance(|e| e.customers()),
                    rate / bare_rate,
                    rss_and_load()
                );
                ratios.push(format!(
                    "{} w{w} {rate:.0}/s = {:.3}",
                    g.short(),
                    rate / bare_rate
                ));
                svc.stop();
            }
        }
        println!(
            "round {round}: bare {bare_rate:.0}/s; ratios: {}",
            ratios.join(" | ")
        );
    }
}

/// Reads the whole topic with a bare consumer; returns events/s, first to last event.
fn bare_catch_up(kafka: &Kafka, topic: &str, total: u64) -> f64 {
    let bare: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set("group.id", "bare")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    bare.assign(&tpl).unwrap();
    let (mut n, mut first, mut last, mut bytes) = (0u64, None, Instant::now(), 0usize);
    while n < total && last.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, <[u8]>::len);
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            n += 1;
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    let rate = n as f64 / secs;
    println!(
        "bare librdkafka consumer: {n} events in {secs:.2} s = {rate:.0} events/s ({:.0} MB/s); {}",
        bytes as f64 / secs / 1e6,
        rss_and_load()
    );
    rate
}

/// Waits until the service has read `total` events (or stalls for 15 s); returns the
/// events read and the seconds from the first to the last.
fn count_until_done(svc: &Running, total: u64) -> (u64, f64) {
    let t0 = Instant::now();
    let (mut first, mut last_n, mut last_change) = (None, 0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        svc.check();
        let n = svc.status.events.load(Ordering::Relaxed);
        if n > 0 {
            first.get_or_insert_with(Instant::now);
        }
        if n != last_n {
            last_n = n;
            last_change = Instant::now();
        }
        if n >= total
            || (n > 0 && last_change.elapsed() > Duration::from_secs(15))
            || t0.elapsed() > Duration::from_secs(3600)
        {
            let secs = first.map_or(0.0, |f| (last_change - f).as_secs_f64());
            return (last_n, secs);
        }
    }
}

/// Phase 2, latency at a steady rate: the service under each guarantee, and the broker
/// alone.
fn latency(rate: f64, latency_secs: u64) {
    let kafka = Kafka::start();
    let events = (rate * latency_secs as f64) as u64;
    // Realistic now-ish event times, so nothing is "future" or long-silent.
    let start = wall_clock()() - 300 * 86_400_000;
    let warm_up = Duration::from_secs(2);
    println!(
        "latency at {rate:.0} events/s for {latency_secs} s, after a {} s warm-up:",
        warm_up.as_secs()
    );
    for g in GUARANTEES {
        let input = format!("live-{}", g.short());
        kafka.create_topics(&[(&input, false)]);
        let svc = service(&kafka, &input, &input, g, None);
        svc.wait_ready();
        std::thread::sleep(Duration::from_secs(2));
        let (h, ks) = (&svc.handle, &svc.settings);
        let alert_topics = [ks.topics.tier_changes.as_str(), ks.topics.warnings.as_str()];
        let read_committed = g == Guarantee::ExactlyOnce;
        let watch = alerts::Watch::start(
            kafka.brokers(),
            &input,
            &alert_topics,
            read_committed,
            events,
        );
        let since = wall_clock()() + warm_up.as_millis() as i64;
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(warm_up);
                h.with_instance(|e| e.reset_latency());
            });
            produce_to(&kafka, &input, live_gen(events, start), Some(rate));
        });
        // The service may lag behind the producer: its latency counts once it has read all.
        let t0 = Instant::now();
        while svc.status.events.load(Ordering::Relaxed) < events
            && t0.elapsed() < Duration::from_secs(120)
        {
            svc.check();
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(1) + ks.commit_interval);
        let own = h.with_instance(|e| e.latency().clone());
        println!(
            "  {}, commit interval {} ms: (a) input CreateTime -> the service hands the outputs to its producer, {} events with outputs: {}",
            g.setting(),
            ks.commit_interval.as_millis(),
            own.count(),
            quantiles(&own)
        );
        let seen = watch.finish(since);
        println!(
            "  {}: (b) input CreateTime -> a {} consumer receives the alert, {} of {} alerts ({} inputs read): {}; {}",
            g.setting(),
            if read_committed { "read_committed" } else { "read_uncommitted" },
            seen.latency.count(),
            seen.alerts,
            seen.inputs,
            quantiles(&seen.latency),
            rss_and_load()
        );
        svc.stop();
    }

    // 2b. The same steady rate through the broker alone: a bare consumer's produce→receive
    // latency, the floor under the service's number.
    kafka.create_topics(&[("bench-bare", false)]);
    let bare: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set("group.id", "bare-live")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    bare.subscribe(&["bench-bare"]).unwrap();
    let mut bare_lat = Latency::default();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(3));
            produce_to(&kafka, "bench-bare", live_gen(events, start), Some(rate));
        });
        let (mut seen, t0) = (0u64, Instant::now());
        while seen < events && t0.elapsed() < Duration::from_secs(latency_secs + 60) {
            if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
                seen += 1;
                if let Some(ts) = m.timestamp().to_millis() {
                    if seen > (rate * warm_up.as_secs_f64()) as u64 {
                        bare_lat.record((wall_clock()() - ts).max(0) as u64);
                    }
                }
            }
        }
    });
    println!(
        "  broker alone at {rate:.0} events/s (produce -> bare consumer receives): {}; {}",
        quantiles(&bare_lat),
        rss_and_load()
    );
}
