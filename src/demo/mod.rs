//! `churnwatch demo`: the whole service on one machine with nothing installed. An
//! in-process Kafka-protocol broker (librdkafka's mock cluster), a generator that writes
//! events as a compressed clock reaches their time (customers go silent, complain, come
//! back), the service consuming them as a consumer group, alerts printed as they happen,
//! and the HTTP endpoints.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::config::Config;
use crate::core::output::Output;
use crate::core::time::{format_rfc3339, Ts, DAY_MS};
use crate::core::Settings;
use crate::gen::{GenOptions, Generator};
use crate::kafka::{Clock, RunOptions, Service, Status};

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Customers.
    pub customers: u32,
    /// Events per real second (on average).
    pub rate: f64,
    /// Simulated days per real second.
    pub days_per_second: f64,
    /// Stop after this long (`None` = until Ctrl-C).
    pub seconds: Option<f64>,
    /// HTTP listen address.
    pub listen: String,
    /// Seed.
    pub seed: u64,
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
const SIM_DAYS: u32 = 365;

/// Runs the demo until Ctrl-C (or `seconds`).
pub fn run(settings: Arc<Settings>, o: &DemoOptions) -> Result<(), DemoError> {
    if !(o.rate.is_finite() && o.rate > 0.0) {
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
    let events = (o.rate * SIM_DAYS as f64 / o.days_per_second) as u64;

    let status = Status::new();
    let alerts = Arc::new(AtomicU64::new(0));
    let a2 = Arc::clone(&alerts);
    let hinted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Tier changes print when they matter to sales: into or out of the top tier, or
    // caused by time alone (decay after silence). Routine onboarding moves only count.
    let top = settings.tiers[0].name.clone();
    let url_slot: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let url_for_hook = Arc::clone(&url_slot);
    let hook = Arc::new(move |out: &Output| {
        if let Output::TierChanged(t) = out {
            if !(t.trigger == "time" || t.to == top || t.from.as_deref() == Some(top.as_str())) {
                return;
            }
        }
        if let Some(l) = crate::pretty::line(out) {
            a2.fetch_add(1, Ordering::Relaxed);
            println!("{l}");
            if let (Output::Warning(w), Some(url)) = (out, url_for_hook.get()) {
                if w.level == "high" && !hinted.swap(true, Ordering::Relaxed) {
                    println!(
                        "    ^ look this customer up: curl {url}/v1/customers/{}",
                        w.customer_id
                    );
                }
            }
        }
    });
    let service = Service::new(RunOptions {
        settings,
        kafka: k.clone(),
        clock: Arc::clone(&clock),
        hook: Some(hook),
        status: Arc::clone(&status),
    })?;
    let bg = crate::http::start(&o.listen, None, Some(service.handle()), Arc::clone(&status))?;
    let url = bg
        .addr
        .map_or("(HTTP off)".to_string(), |a| format!("http://{a}"));
    let _ = url_slot.set(url.clone());
    eprintln!(
        "churnwatch demo: embedded Kafka broker at {} ({} partitions per topic)\n  \
         {} customers, ~{events} events over {SIM_DAYS} simulated days at {} days/s (~{:.0} events/s)\n  \
         alerts print below; outputs go to {}, {}, {}\n  \
         try: curl {url}/v1/status   curl {url}/readyz   curl {url}/v1/customers/C0000042\n  \
         Ctrl-C stops cleanly",
        k.brokers,
        PARTITIONS,
        o.customers,
        o.days_per_second,
        o.rate,
        k.topics.tier_changes,
        k.topics.warnings,
        k.topics.profiles
    );

    // The event source: writes each event when the simulated clock reaches its time.
    let produced = Arc::new(AtomicU64::new(0));
    let sim_now = Arc::new(AtomicI64::new(sim_start));
    let gen_thread = {
        let brokers = k.brokers.clone();
        let topic = k.input_topic.clone();
        let clock = Arc::clone(&clock);
        let status = Arc::clone(&status);
        let produced = Arc::clone(&produced);
        let sim_now = Arc::clone(&sim_now);
        let seed = o.seed;
        let customers = o.customers;
        std::thread::Builder::new()
            .name("demo-events".into())
            .spawn(move || {
                let producer: ThreadedProducer<DefaultProducerContext> = match ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("linger.ms", "2")
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
                    sim_now.store(due, Ordering::Relaxed);
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

    // A summary line every 10 s, and the optional time limit.
    let ticker = {
        let status = Arc::clone(&status);
        let clock = Arc::clone(&clock);
        let produced = Arc::clone(&produced);
        let alerts = Arc::clone(&alerts);
        let limit = o.seconds.map(Duration::from_secs_f64);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut last = Instant::now();
            while !status.shutting_down() {
                std::thread::sleep(Duration::from_millis(100));
                if limit.is_some_and(|l| started.elapsed() >= l) {
                    status.request_shutdown();
                    break;
                }
                if last.elapsed() >= Duration::from_secs(10) {
                    last = Instant::now();
                    eprintln!(
                        "demo: simulated time {}, {} events produced, {} handled, {} alerts, {}",
                        &format_rfc3339(clock())[..10],
                        produced.load(Ordering::Relaxed),
                        status.events.load(Ordering::Relaxed),
                        alerts.load(Ordering::Relaxed),
                        status.not_ready_reason().unwrap_or("ready"),
                    );
                }
            }
        })
    };
    let result = service.run();
    status.request_shutdown();
    let _ = gen_thread.join();
    let _ = ticker.join();
    drop(bg);
    let summary = result?;
    eprintln!(
        "demo: stopped cleanly after {} events, {} alerts, {} commits",
        summary.events,
        alerts.load(Ordering::Relaxed),
        summary.commits
    );
    drop(mock);
    Ok(())
}
