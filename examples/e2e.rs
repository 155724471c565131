//! End-to-end benchmark of `churnwatch run` against a real Kafka-API broker (Tansu).
//!
//! `cargo run --release --example e2e -- [EVENTS] [CUSTOMERS] [RATE] [LATENCY_SECS] [RESTORE_CUSTOMERS]`
//! (defaults 2000000 1000000 20000 20 1000000). Needs Tansu: `scripts/install-tools.sh tansu`.
//!
//! 1. Catch-up: pre-fill a 4-partition topic (Tansu `memory://`, the fast engine) with
//!    EVENTS generated events; read it with a bare librdkafka consumer, then with the
//!    service; print both rates and their ratio.
//! 2. Latency: produce at a steady RATE events/s for LATENCY_SECS to a fresh topic while
//!    the service runs; print p50/p99/p99.9 from the input's produce time (CreateTime) to
//!    the output's produce.
//! 3. Restore: write RESTORE_CUSTOMERS customer snapshots to a changelog on Tansu
//!    `sqlite://` (the engine that resumes correctly) and time restoring all partitions.
//!
//! RSS is printed after each phase. A phase whose size argument is 0 is skipped (e.g.
//! `e2e 0 0 0 0 1000000` measures only the restore).
//!
//! Consumers use `fetch.wait.max.ms` = 10 (`E2E_FETCH_WAIT_MS` overrides it): Tansu
//! answers a fetch with no new data only when that wait is over, so at low rates it is
//! most of the latency floor (at 200 events/s: p50 17 ms with 10, 3 ms with 1).

/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::core::{Ctx, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};
use churnwatch::kafka::changelog;
use churnwatch::kafka::{wall_clock, RunOptions, Service, Status};
use churnwatch::produce::{produce, ProduceOptions};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let tools = std::env::var("CHURNWATCH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(home).join(".cache/churnwatch/tools"));
    let p = tools.join("bin/tansu");
    assert!(
        p.is_file(),
        "Tansu not found at {}: run scripts/install-tools.sh tansu",
        p.display()
    );
    p
}

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start(storage: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .current_dir(dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            port,
            _dir: dir,
        }
    }
    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn topic(&self, name: &str) {
        let st = Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .args(["--partitions", &PARTITIONS.to_string(), name])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss() -> String {
    churnwatch::sys::resident_bytes().map_or("?".into(), |b| format!("{} MiB", b >> 20))
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map_or(default, |v| v.parse().expect("numeric argument"))
}

/// The consumers' `fetch.wait.max.ms` (see the module docs).
fn fetch_wait_ms() -> String {
    std::env::var("E2E_FETCH_WAIT_MS").unwrap_or_else(|_| "10".into())
}

fn service(brokers: &str, input: &str, group: &str) -> (Service, Arc<Status>) {
    let mut k = Config::load_with_env(None, false).unwrap().kafka;
    k.brokers = brokers.into();
    k.input_topic = input.into();
    k.group_id = group.into();
    k.create_topics = true;
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
    let mut ks = k.compile().unwrap();
    ks.client
        .push(("fetch.wait.max.ms".into(), fetch_wait_ms()));
    // E2E_COMPRESSION=none|lz4|zstd… overrides the producer's compression (default lz4).
    if let Ok(c) = std::env::var("E2E_COMPRESSION") {
        ks.client.push(("compression.type".into(), c));
    }
    let status = Status::new();
    let s = Service::new(RunOptions {
        settings: Arc::new(Settings::defaults()),
        kafka: ks,
        clock: wall_clock(),
        hook: None,
        status: Arc::clone(&status),
    })
    .unwrap();
    (s, status)
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

fn main() {
    let events = arg(1, 2_000_000);
    let customers = arg(2, 1_000_000) as u32;
    let rate = arg(3, 20_000) as f64;
    let latency_secs = arg(4, 20);
    let restore_customers = arg(5, 1_000_000) as u32;
    println!(
        "machine: {} cores; RSS at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rss()
    );

    if events > 0 {
        catch_up(events, customers);
    }
    if latency_secs > 0 {
        latency(rate, latency_secs);
    }
    if restore_customers > 0 {
        restore(restore_customers);
    }
}

/// 1. Catch-up: the service against a bare consumer on the same pre-filled topic.
fn catch_up(events: u64, customers: u32) {
    let mem = Broker::start("memory://tansu/");
    mem.topic("bench-in");
    let t0 = Instant::now();
    let total = produce(
        Generator::new(GenOptions {
            customers,
            events,
            seed: 3,
            duplicates: 0.0,
            bad: 0.0,
            ..Default::default()
        }),
        &ProduceOptions {
            brokers: mem.brokers(),
            topic: "bench-in".into(),
            rate: None,
            client: vec![],
            progress: false,
        },
    )
    .unwrap();
    println!(
        "prefill: {total} events in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let bare: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mem.brokers())
        .set("group.id", "bare")
        .set("fetch.wait.max.ms", fetch_wait_ms())
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("bench-in", p, Offset::Beginning)
            .unwrap();
    }
    bare.assign(&tpl).unwrap();
    let (mut n, mut first, mut last) = (0u64, None, Instant::now());
    let mut bytes = 0usize;
    while n < total && last.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
            use rdkafka::message::Message;
            bytes += m.payload().map_or(0, <[u8]>::len);
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            n += 1;
        }
    }
    drop(bare);
    let bare_secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    let bare_rate = n as f64 / bare_secs;
    println!("bare librdkafka consumer: {n} events in {bare_secs:.2} s = {bare_rate:.0} events/s ({:.0} MB/s)", bytes as f64 / bare_secs / 1e6);

    let (svc, status) = service(&mem.brokers(), "bench-in", "catchup");
    let h = svc.handle();
    let runner = std::thread::spawn(move || svc.run());
    let t0 = Instant::now();
    let mut first = None;
    let mut last_n = 0;
    let mut last_change = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let n = status.events.load(std::sync::atomic::Ordering::Relaxed);
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
            break;
        }
    }
    let svc_secs = first.map_or(0.0, |f| (last_change - f).as_secs_f64());
    let svc_rate = last_n as f64 / svc_secs;
    let customers_held = h.with_engine(|e| e.customers());
    println!(
        "churnwatch run: {last_n} events in {svc_secs:.2} s = {svc_rate:.0} events/s; {customers_held} customers; ratio to bare consumer {:.2} (target >= 0.8); RSS {}",
        svc_rate / bare_rate,
        rss()
    );
    status.request_shutdown();
    let _ = runner.join();
}

/// 2. Latency at a steady rate, for the service and for the broker alone.
fn latency(rate: f64, latency_secs: u64) {
    let mem = Broker::start("memory://tansu/");
    mem.topic("bench-live");
    let (svc, status) = service(&mem.brokers(), "bench-live", "live");
    let h = svc.handle();
    let runner = std::thread::spawn(move || svc.run());
    while status.not_ready_reason().is_some() {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let live_events = (rate * latency_secs as f64) as u64;
    let brokers = mem.brokers();
    let warm = std::thread::spawn({
        let h = h.clone();
        move || {
            std::thread::sleep(Duration::from_secs(2));
            h.with_engine(|e| e.reset_latency());
        }
    });
    // Realistic now-ish timestamps, so nothing is "future" or long-silent.
    let start = wall_clock()() - 300 * 86_400_000;
    produce(
        live_gen(live_events, start),
        &ProduceOptions {
            brokers,
            topic: "bench-live".into(),
            rate: Some(rate),
            client: vec![("linger.ms".into(), "0".into())],
            progress: false,
        },
    )
    .unwrap();
    let _ = warm.join();
    std::thread::sleep(Duration::from_secs(1));
    let lat = h.with_engine(|e| e.latency().clone());
    println!(
        "latency at {rate:.0} events/s for {latency_secs} s (event produce -> output produce, {} samples after a 2 s warm-up): p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms (target p99 <= 20 ms + commit interval 100 ms); RSS {}",
        lat.count(),
        lat.quantile(0.5).unwrap_or(0),
        lat.quantile(0.99).unwrap_or(0),
        lat.quantile(0.999).unwrap_or(0),
        lat.quantile(1.0).unwrap_or(0),
        rss()
    );
    status.request_shutdown();
    let _ = runner.join();

    // 2b. The same steady rate through the broker alone: a bare consumer's produce→receive
    // latency, the floor under the service's number.
    mem.topic("bench-bare");
    let bare: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mem.brokers())
        .set("group.id", "bare-live")
        .set("fetch.wait.max.ms", fetch_wait_ms())
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    bare.subscribe(&["bench-bare"]).unwrap();
    let brokers = mem.brokers();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        produce(
            live_gen(live_events, start),
            &ProduceOptions {
                brokers,
                topic: "bench-bare".into(),
                rate: Some(rate),
                client: vec![("linger.ms".into(), "0".into())],
                progress: false,
            },
        )
        .unwrap()
    });
    let mut bare_lat = churnwatch::kafka::runtime::Latency::default();
    let (mut seen, t0) = (0u64, Instant::now());
    while seen < live_events && t0.elapsed() < Duration::from_secs(latency_secs + 60) {
        if let Some(Ok(m)) = bare.poll(Duration::from_millis(100)) {
            use rdkafka::message::Message;
            seen += 1;
            if let Some(ts) = m.timestamp().to_millis() {
                if seen > (rate * 2.0) as u64 {
                    bare_lat.record((wall_clock()() - ts).max(0) as u64);
                }
            }
        }
    }
    let _ = producer.join();
    println!(
        "broker alone at {rate:.0} events/s (produce -> bare consumer receives): p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        bare_lat.quantile(0.5).unwrap_or(0),
        bare_lat.quantile(0.99).unwrap_or(0),
        bare_lat.quantile(0.999).unwrap_or(0),
        bare_lat.quantile(1.0).unwrap_or(0),
    );
    drop(bare);
    drop(mem);
}

/// 3. Restore of a changelog written from RESTORE_CUSTOMERS generated customers.
fn restore(restore_customers: u32) {
    // `sqlite://` by default (it reports the end of a partition correctly, which a restore
    // relies on); E2E_RESTORE_STORAGE=memory measures the service's side when the broker is
    // not the limit (the restored count is checked against what was written).
    let storage = match std::env::var("E2E_RESTORE_STORAGE").as_deref() {
        Ok("memory") => "memory://tansu/",
        _ => "sqlite://tansu.db",
    };
    let sql = Broker::start(storage);
    sql.topic("bench-changelog");
    let settings = Arc::new(Settings::defaults());
    let mut procs: Vec<Processor> = (0..PARTITIONS)
        .map(|_| Processor::new(Arc::clone(&settings)))
        .collect();
    let mut g = Generator::new(GenOptions {
        customers: restore_customers,
        events: restore_customers as u64 * 2,
        seed: 5,
        duplicates: 0.0,
        bad: 0.0,
        ..Default::default()
    });
    let mut buf = Vec::new();
    let mut outs = Vec::new();
    let mut off = 0i64;
    while g.next_line(&mut buf) {
        let p = g.key().map_or(0, |k| {
            (xxhash_rust::xxh3::xxh3_64(k.as_bytes()) % PARTITIONS as u64) as usize
        });
        procs[p].process(
            &buf,
            Source {
                topic: "bench",
                partition: p as i32,
                offset: off,
            },
            &Ctx::default(),
            &mut outs,
        );
        outs.clear();
        off += 1;
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", sql.brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()
        .unwrap();
    let t0 = Instant::now();
    let mut written = 0u64;
    for (p, proc) in procs.iter().enumerate() {
        for id in proc.customer_ids() {
            let snap = proc.snapshot(&id).unwrap();
            loop {
                match producer.send(
                    BaseRecord::to("bench-changelog")
                        .partition(p as i32)
                        .key(&id)
                        .payload(&snap),
                ) {
                    Ok(()) => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            written += 1;
        }
    }
    producer.flush(Duration::from_secs(600)).unwrap();
    println!(
        "changelog: {written} customer snapshots written in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    drop(procs);
    let base = {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", sql.brokers())
            .set("fetch.wait.max.ms", fetch_wait_ms());
        c
    };
    // Restored with the service's default parallelism, then one partition at a time,
    // then the default again (so a warmer broker cache cannot flatter either).
    let default_parallelism = Config::load_with_env(None, false)
        .unwrap()
        .kafka
        .restore_parallelism as usize;
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    for parallelism in [default_parallelism, 1, default_parallelism] {
        let before = rss();
        let t0 = Instant::now();
        let results = changelog::restore_partitions(
            &base,
            "bench-changelog",
            &partitions,
            &settings,
            Duration::from_secs(30),
            parallelism,
            &|| false,
        );
        let secs = t0.elapsed().as_secs_f64();
        let restored: usize = results
            .iter()
            .map(|(_, r)| r.as_ref().expect("restored").0.customers())
            .sum();
        println!(
            "restore ({storage}): {restored} customers from {PARTITIONS} changelog partitions, {parallelism} at a time, in {secs:.2} s (target <= 10 s for 1M); RSS {before} before, {} after",
            rss()
        );
        if storage.starts_with("sqlite") {
            assert_eq!(restored as u64, written, "every written customer restored");
        } else if restored as u64 != written {
            println!("  (memory:// under-reports partition ends: {restored} of {written} restored; a timing of the service's side only)");
        }
        drop(results);
    }
}
