//! Phase 4: fail-over. Two `churnwatch run` processes share a changelog holding
//! FAILOVER_CUSTOMERS customers; one is killed with SIGKILL while events keep arriving,
//! and the time from the kill to the survivor's first output for the moved partitions is
//! measured, with `kafka.standby_replicas = 0` and then `= 1`.
//!
//! The changelog is written directly (the customers' snapshots, as phase 3, placed by
//! the murmur2 partitioner `churnwatch gen` uses, and a checkpoint per partition at input
//! offset 0), so that a million customers take seconds instead of a catch-up of minutes.
//! From 5 s before the kill, events of new customers (a visit each, at the state's stream
//! time so that no mass of deadlines fires) are produced at a steady rate to every
//! partition, so the dead member was writing its changelog when it died; their ids start
//! with `FO-` once the kill is done, and the first profile of such a customer of a moved
//! partition is the survivor's first output for it (nothing before the kill wrote those
//! keys). Detection (the group
//! noticing the death: `session.timeout.ms`) and the restore are reported apart: the
//! survivor's `/v1/status` says when it installed the moved partitions and how long each
//! restore took.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use churnwatch::core::Settings;
use churnwatch::kafka::changelog::{Checkpoint, CHECKPOINT_KEY};
use churnwatch::kafka::partitioner::Partitioner;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::broker::{rss_and_load, Kafka, PARTITIONS};
use crate::restore::write_changelog;

/// The group's session timeout (classic protocol): how long a killed member goes
/// unnoticed. librdkafka's default is 45 s; 6 s is what the tests use.
const SESSION_TIMEOUT_MS: u64 = 6_000;

/// Events per second of the post-kill traffic (spread over the partitions).
const RATE: u64 = 400;

/// The `churnwatch` binary next to this example's directory (`target/release/`), or
/// `CHURNWATCH_BIN`.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("CHURNWATCH_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("churnwatch"))
        .unwrap();
    assert!(
        p.exists(),
        "{} not found: build it with `cargo build --release` or set CHURNWATCH_BIN",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on localhost: the JSON body of a 200.
fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| serde_json::from_str(body).ok())
        .flatten()
}

/// A `churnwatch run` child process (killed when dropped).
struct Instance {
    child: Child,
    http: u16,
}

impl Instance {
    fn start(bin: &Path, dir: &Path, tag: &str, kafka_lines: &str) -> Instance {
        let http = free_port();
        let cfg = dir.join(format!("{tag}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "{kafka_lines}\n[kafka.client]\n\"session.timeout.ms\" = {SESSION_TIMEOUT_MS}\n\"heartbeat.interval.ms\" = 1000\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n[log]\nlevel = \"info\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join(format!("{tag}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info,librdkafka=warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Instance { child, http }
    }

    fn status(&self) -> Option<serde_json::Value> {
        get_json(self.http, "/v1/status")
    }

    /// Partitions held (restored).
    fn held(&self) -> BTreeSet<i64> {
        self.status()
            .and_then(|s| {
                s["partitions"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(|p| p["partition"].as_i64()).collect())
            })
            .unwrap_or_default()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn failover(customers: u32) {
    let bin = binary();
    let kafka = Kafka::start();
    let input = "fo-input";
    let changelog = "fo.changelog";
    kafka.create_topics(&[(input, false), (changelog, true)]);
    let settings = Arc::new(Settings::defaults());
    let murmur = |k: &str| Partitioner::Murmur2.partition(k.as_bytes(), PARTITIONS) as usize;
    let (written, procs) = write_changelog(&kafka, changelog, customers, &settings, murmur);
    let stream_time = procs.iter().filter_map(|p| p.stream_time()).max().unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (p, proc) in procs.iter().enumerate() {
        let c = Checkpoint {
            version: 1,
            topic: input.into(),
            partition: p as i32,
            next_offset: 0,
            stream_time: proc.stream_time(),
            watermark: proc.watermark(),
            campaigns: Vec::new(),
            rules_version: proc.settings().rules_version.clone(),
        };
        producer
            .send(
                BaseRecord::to(changelog)
                    .partition(p as i32)
                    .key(CHECKPOINT_KEY)
                    .payload(&c.encode()),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    drop(procs);
    let dir = tempfile::Builder::new()
        .prefix("e2e-failover-")
        .tempdir()
        .unwrap();
    let mut sequence = 0u64;
    for replicas in [0usize, 1] {
        let group = format!("fo-{replicas}");
        let lines = format!(
            "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{group}\"\ninput_topic = \"{input}\"\ncreate_topics = true\nidle_timeout = \"0s\"\nstandby_replicas = {replicas}\n\n[kafka.topics]\ntier_changes = \"{group}.tier-changes\"\nwarnings = \"{group}.warnings\"\nprofiles = \"{group}.profiles\"\ndead_letters = \"{group}.dead-letters\"\nchangelog = \"{changelog}\"\nmembers = \"{group}.members\"\n",
            kafka.brokers()
        );
        let a = Instance::start(&bin, dir.path(), &format!("a{replicas}"), &lines);
        let b = Instance::start(&bin, dir.path(), &format!("b{replicas}"), &lines);
        let t0 = Instant::now();
        wait_for(
            "both instances hold partitions",
            Duration::from_secs(600),
            || {
                let (ha, hb) = (a.held(), b.held());
                !ha.is_empty() && !hb.is_empty() && ha.len() + hb.len() == PARTITIONS as usize
            },
        );
        let moved = a.held();
        println!(
            "fail-over, standby_replicas = {replicas}: {written} customers restored by two instances in {:.1} s; a holds {moved:?}",
            t0.elapsed().as_secs_f64()
        );
        if replicas > 0 {
            let t1 = Instant::now();
            wait_for(
                "b's warm copies caught up",
                Duration::from_secs(600),
                || {
                    b.status().is_some_and(|s| {
                        let copies = s["standbys"].as_array().cloned().unwrap_or_default();
                        let kept: BTreeSet<i64> = copies
                            .iter()
                            .filter_map(|c| c["partition"].as_i64())
                            .collect();
                        kept == moved
                            && copies.iter().all(|c| {
                                c["lag"].as_i64() == Some(0)
                                    && c["changelog_offset"].as_i64() > Some(0)
                            })
                    })
                },
            );
            println!(
                "  b's warm copies of {moved:?} caught up in {:.1} s after the group settled; {}",
                t1.elapsed().as_secs_f64(),
                rss_and_load()
            );
        }
        // Profiles written from now on, read as they arrive.
        let watch: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.brokers())
            .set("group.id", "fo-watch")
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&format!("{group}.profiles"), p, Offset::End)
                .unwrap();
        }
        watch.assign(&tpl).unwrap();
        let _ = watch.poll(Duration::from_millis(500));
        let stop = Arc::new(AtomicBool::new(false));
        let after_kill = Arc::new(AtomicBool::new(false));
        // Traffic from 5 s before the kill on: new customers on every partition, at the
        // state's stream time; `PRE-` ids before the kill, `FO-` ids after it, so an `FO-`
        // profile can only come from the survivor.
        let traffic = {
            let (stop, after_kill) = (Arc::clone(&stop), Arc::clone(&after_kill));
            let brokers = kafka.brokers().to_string();
            let first = sequence;
            std::thread::spawn(move || {
                let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("linger.ms", "1")
                    .create()
                    .unwrap();
                let ts = churnwatch::core::time::format_rfc3339(stream_time);
                let mut n = first;
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let prefix = if after_kill.load(Ordering::Relaxed) {
                        "FO"
                    } else {
                        "PRE"
                    };
                    let id = format!("{prefix}-{n}");
                    let v = format!(
                        r#"{{"event_id":"fo-{n}","customer_id":"{id}","type":"visit","ts":"{ts}","channel":"web"}}"#
                    );
                    let p = Partitioner::Murmur2.partition(id.as_bytes(), PARTITIONS);
                    let _ = producer.send(BaseRecord::to(input).partition(p).key(&id).payload(&v));
                    n += 1;
                    let due = t0 + Duration::from_micros((n - first) * 1_000_000 / RATE);
                    if let Some(d) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
                producer.flush(Duration::from_secs(10)).ok();
                n
            })
        };
        std::thread::sleep(Duration::from_secs(5));
        let mut a = a;
        let killed = Instant::now();
        a.child.kill().unwrap();
        after_kill.store(true, Ordering::Relaxed);
        let _ = a.child.wait();
        let mut installed: Option<Duration> = None;
        let mut first_own: Option<Duration> = None;
        let mut first_moved: Option<Duration> = None;
        let mut restored = Vec::new();
        let t0 = Instant::now();
        let mut last_status = Instant::now() - Duration::from_secs(1);
        while (installed.is_none() || first_moved.is_none())
            && t0.elapsed() < Duration::from_secs(600)
        {
            if installed.is_none() && last_status.elapsed() >= Duration::from_millis(50) {
                last_status = Instant::now();
                if let Some(s) = b.status() {
                    let ps = s["partitions"].as_array().cloned().unwrap_or_default();
                    let held: BTreeSet<i64> =
                        ps.iter().filter_map(|p| p["partition"].as_i64()).collect();
                    if moved.is_subset(&held) {
                        installed = Some(killed.elapsed());
                        restored = ps
                            .into_iter()
                            .filter(|p| p["partition"].as_i64().is_some_and(|x| moved.contains(&x)))
                            .map(|p| p["restored"].clone())
                            .collect();
                    }
                }
            }
            if let Some(Ok(m)) = watch.poll(Duration::from_millis(10)) {
                let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                if key.starts_with("FO-") {
                    let p = Partitioner::Murmur2.partition(key.as_bytes(), PARTITIONS) as i64;
                    if moved.contains(&p) {
                        first_moved.get_or_insert_with(|| killed.elapsed());
                    } else {
                        first_own.get_or_insert_with(|| killed.elapsed());
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        sequence = traffic.join().unwrap();
        let secs =
            |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()));
        let restore_ms = restored
            .iter()
            .filter_map(|r| r["elapsed_ms"].as_u64())
            .max()
            .unwrap_or(0);
        let read: u64 = restored.iter().filter_map(|r| r["records"].as_u64()).sum();
        let warm = restored
            .iter()
            .filter(|r| !r["from_standby"].is_null())
            .count();
        println!(
            "  kill -9 -> first output for the moved partitions: {} (b's own partitions: {}); moved partitions installed after {} (session timeout {} s); their restore: {restore_ms} ms, {read} changelog records read, {warm} of {} from a warm copy; {}",
            secs(first_moved),
            secs(first_own),
            secs(installed),
            SESSION_TIMEOUT_MS / 1000,
            restored.len(),
            rss_and_load()
        );
        b.stop();
    }
}
