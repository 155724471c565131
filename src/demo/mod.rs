//! `churnwatch demo`: the whole service on one machine with nothing installed. An
//! in-process Kafka-protocol broker (librdkafka's mock cluster), a generator that writes
//! events as a compressed clock reaches their time (customers go silent, complain, come
//! back), the service consuming them as a consumer group, the alerts that matter printed
//! in time order (see [`terminal`]), and the HTTP endpoints with the console.

pub mod terminal;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::config::Config;
use crate::core::output::Output;
use crate::core::time::{day_of, format_date, Ts, DAY_MS};
use crate::core::Settings;
use crate::gen::{GenOptions, Generator};
use crate::kafka::{Clock, RunOptions, Service, ServiceHandle, Status};
use terminal::{Terminal, REALISM};

/// Seconds between summary lines.
const SUMMARY_EVERY_S: u64 = 5;

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Customers.
    pub customers: u32,
    /// Events per real second (on average); `None`: [`EVENTS_PER_CUSTOMER_DAY`] per
    /// customer per simulated day.
    pub rate: Option<f64>,
    /// Simulated days per real second.
    pub days_per_second: f64,
    /// Stop after this long (`None` = until Ctrl-C).
    pub seconds: Option<f64>,
    /// HTTP listen address.
    pub listen: String,
    /// Seed.
    pub seed: u64,
    /// Print every alert, not only high warnings and top-tier changes.
    pub verbose: bool,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Bad option.
    #[error("{0}")]
    Options(String),
    /// The embedded broker could not start.
    #[error("cannot start the embedded Kafka broker: {0}")]
    Broker(KafkaError),
    /// The service failed.
    #[error(transparent)]
    Run(#[from] crate::kafka::RunError),
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
}

const PARTITIONS: i32 = 4;

/// A customer's events per simulated day when `--rate` is not given: ~90 a year (a
/// monthly order, weekly visits, a few surveys and campaigns). The rules look at 30- and
/// 90-day windows; much sparser customers trip them by chance (a quiet month reads as a
/// 70 % visit drop), which is what made the demo flag almost half its customers.
pub const EVENTS_PER_CUSTOMER_DAY: f64 = 0.25;
const SIM_DAYS: u32 = 365;

/// Runs the demo until Ctrl-C (or `seconds`).
pub fn run(settings: Arc<Settings>, o: &DemoOptions) -> Result<(), DemoError> {
    let rate = o
        .rate
        .unwrap_or(o.customers as f64 * EVENTS_PER_CUSTOMER_DAY * o.days_per_second);
    if !(rate.is_finite() && rate > 0.0) {
        return Err(DemoError::Options(
            "--rate must be a positive number of events per second".into(),
        ));
    }
    if !(o.days_per_second.is_finite() && o.days_per_second > 0.0) {
        return Err(DemoError::Options(
            "--days-per-second must be positive".into(),
        ));
    }
    if o.customers == 0 {
        return Err(DemoError::Options("--customers must be at least 1".into()));
    }
    let mock = MockCluster::new(1).map_err(DemoError::Broker)?;
    let mut kafka = Config::load_with_env(None, false)
        .map_err(|e| DemoError::Options(e.to_string()))?
        .kafka;
    kafka.brokers = mock.bootstrap_servers();
    kafka.group_id = "churnwatch-demo".into();
    kafka.idle_timeout = "2s".into();
    kafka.drain_timeout = "10s".into();
    // One worker: the demo's few thousand events per second need no second one, and with
    // two, librdkafka's in-process mock cluster rebalanced between them through the run
    // and one run in four under a saturated CPU ended with a non-zero exit after the
    // clean stop (cause not found; `churnwatch run` against Apache Kafka passes its
    // worker tests). The workers themselves are tested against Apache Kafka
    // (tests/kafka_workers.rs).
    kafka.workers = 1;
    kafka.client = toml::Table::new();
    let mut k = kafka
        .compile()
        .map_err(|e| DemoError::Options(e.to_string()))?;
    k.client.push(("fetch.wait.max.ms".into(), "10".into()));
    // The mock cluster's admin API does not create topics; its own API does.
    for t in [
        &k.input_topic,
        &k.topics.tier_changes,
        &k.topics.warnings,
        &k.topics.profiles,
        &k.topics.dead_letters,
        &k.topics.changelog,
    ] {
        mock.create_topic(t, PARTITIONS, 1)
            .map_err(DemoError::Broker)?;
    }

    // The simulated clock: SIM_DAYS of history replayed at `days_per_second`, ending now.
    let wall_start = Instant::now();
    let real_now = crate::kafka::wall_clock()();
    let sim_start = real_now - SIM_DAYS as Ts * DAY_MS;
    let speed = o.days_per_second * DAY_MS as f64; // simulated ms per real second
    let clock: Clock =
        Arc::new(move || sim_start + (wall_start.elapsed().as_secs_f64() * speed) as Ts);
    let events = (rate * SIM_DAYS as f64 / o.days_per_second) as u64;

    let status = Status::new();
    let terminal = Arc::new(Terminal::new(o.verbose, settings.tiers[0].name.clone()));
    let term_hook = {
        let t = Arc::clone(&terminal);
        Arc::new(move |out: &Output| t.observe(out))
    };
    let live = crate::http::Live::new(settings.tiers.iter().map(|t| t.name.clone()).collect());
    let service = Service::new(RunOptions {
        settings,
        kafka: k.clone(),
        clock: Arc::clone(&clock),
        hook: Some(crate::http::live::chain(vec![term_hook, live.hook()])),
        status: Arc::clone(&status),
        // One instance holds every partition: nothing to route.
        advertised_url: String::new(),
    })?;
    let handle = service.handle();
    // The demo's customers are generated (no personal data), so its API needs no token
    // even on a non-loopback --listen.
    let bg = crate::http::start(
        &o.listen,
        &crate::http::AccessConfig {
            allow_anonymous: true,
            ..Default::default()
        },
        Some((handle.clone(), Arc::clone(&live))),
        Arc::clone(&status),
    )?;
    let url = bg
        .addr
        .map_or("(HTTP off)".to_string(), |a| format!("http://{a}"));
    eprintln!(
        "churnwatch demo: embedded Kafka broker at {} ({} partitions per topic)\n  \
         {} customers, ~{events} events over {SIM_DAYS} simulated days at {} days/s (~{:.0} events/s)\n  \
         open the console: {url}/  (inbox of open warnings, customers, overview; live)\n  \
         below: {}, then a summary every {SUMMARY_EVERY_S} s; outputs go to {}, {}, {}\n  \
         also: curl {url}/v1/warnings   curl {url}/v1/report   curl {url}/v1/customers/C0000042\n  \
         Ctrl-C stops cleanly",
        k.brokers,
        PARTITIONS,
        o.customers,
        o.days_per_second,
        rate,
        if o.verbose {
            "every alert (--verbose)"
        } else {
            "high warnings and top-tier changes as they happen (--verbose: every alert)"
        },
        k.topics.tier_changes,
        k.topics.warnings,
        k.topics.profiles
    );

    // The event source: writes each event when the simulated clock reaches its time.
    let produced = Arc::new(AtomicU64::new(0));
    let gen_thread = {
        let brokers = k.brokers.clone();
        let topic = k.input_topic.clone();
        let clock = Arc::clone(&clock);
        let status = Arc::clone(&status);
        let produced = Arc::clone(&produced);
        let seed = o.seed;
        let customers = o.customers;
        std::thread::Builder::new()
            .name("demo-events".into())
            .spawn(move || {
                let producer: ThreadedProducer<DefaultProducerContext> = match ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("linger.ms", "2")
                    .set("partitioner", "murmur2_random")
                    .create()
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "demo producer");
                        return;
                    }
                };
                let mut g = Generator::new(GenOptions {
                    customers,
                    events,
                    seed,
                    start: sim_start,
                    days: SIM_DAYS,
                    duplicates: 0.005,
                    bad: 0.0005,
                });
                let mut buf = Vec::with_capacity(512);
                while !status.shutting_down() && g.next_line(&mut buf) {
                    let due = g.now();
                    while clock() < due && !status.shutting_down() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let key = g.key().map(str::to_owned);
                    loop {
                        let mut r = BaseRecord::to(&topic).payload(&buf[..]);
                        if let Some(k) = key.as_deref() {
                            r = r.key(k);
                        }
                        match producer.send(r) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                _,
                            )) => std::thread::sleep(Duration::from_millis(5)),
                            Err((e, _)) => {
                                tracing::warn!(error = %e, "demo event not sent");
                                break;
                            }
                        }
                    }
                    produced.fetch_add(1, Ordering::Relaxed);
                }
                let _ = producer.flush(Duration::from_secs(5));
            })
            .map_err(|e| DemoError::Options(format!("cannot start the event thread: {e}")))?
    };

    // Releases the held lines in time order, a summary line every few seconds, and the
    // optional time limit.
    let ticker = {
        let status = Arc::clone(&status);
        let produced = Arc::clone(&produced);
        let terminal = Arc::clone(&terminal);
        let limit = o.seconds.map(Duration::from_secs_f64);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut last = Instant::now();
            let mut handled_then = 0u64;
            let stdout = std::io::stdout();
            while !status.shutting_down() {
                std::thread::sleep(Duration::from_millis(200));
                if limit.is_some_and(|l| started.elapsed() >= l) {
                    status.request_shutdown();
                    break;
                }
                let (frontier, open) = frontier_and_open(&handle);
                if let Some(f) = frontier {
                    terminal.release(f, &mut stdout.lock());
                }
                if last.elapsed() >= Duration::from_secs(SUMMARY_EVERY_S) {
                    let secs = last.elapsed().as_secs_f64();
                    last = Instant::now();
                    let handled = status.events.load(Ordering::Relaxed);
                    let lag = produced.load(Ordering::Relaxed).saturating_sub(handled);
                    let rate = (handled - handled_then) as f64 / secs;
                    handled_then = handled;
                    let day = frontier.map_or("starting".into(), |f| format_date(day_of(f)));
                    let line = terminal::summary(&day, &terminal.take_since(), open, lag, rate);
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
        })
    };
    let result = service.run();
    status.request_shutdown();
    let _ = gen_thread.join();
    let _ = ticker.join();
    // Everything is processed: what is still held prints now, in order.
    terminal.release(Ts::MAX, &mut std::io::stdout().lock());
    drop(bg);
    let summary = result?;
    let m = terminal.measured();
    eprintln!(
        "demo: stopped cleanly after {} events, {} commits\n  \
         realism: per_manager_day={:.2} (new warnings per account manager and simulated day after day 90; bounds {} to {}) \
         max_per_customer={} (warnings raised for one customer; bound {}) out_of_order={}",
        summary.events,
        summary.commits,
        m.per_manager_day,
        REALISM.min_per_manager_day,
        REALISM.max_per_manager_day,
        m.max_per_customer,
        REALISM.max_per_customer,
        m.out_of_order,
    );
    drop(mock);
    Ok(())
}

/// The newest instant every held partition's watermark has passed, and the open
/// warnings (medium, high). `None` before every partition has seen an event.
fn frontier_and_open(h: &ServiceHandle) -> (Option<Ts>, [i64; 2]) {
    h.with_instance(|e| {
        let mut frontier: Option<Option<Ts>> = None;
        let mut open = [0i64; 2];
        e.for_each_processor(|_, p| {
            let w = p.watermark();
            frontier = Some(match frontier {
                None => w,
                Some(f) => f.zip(w).map(|(a, b)| a.min(b)),
            });
            let l = p.level_counts();
            open[0] += l[1];
            open[1] += l[2];
        });
        (frontier.flatten(), open)
    })
}
