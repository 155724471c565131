//! Apache Kafka (single-node KRaft, started per test by `scripts/kafka.sh`) for the
//! end-to-end tests, and helpers to run the `churnwatch` binary against it and read
//! topics back.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

#[allow(unused_imports)]
pub use crate::net::{free_port, http_get};

pub const BIN: &str = env!("CARGO_BIN_EXE_churnwatch");

/// `scripts/kafka.sh`, which installs (cached) and starts Apache Kafka.
pub fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// A single-node Apache Kafka (KRaft) on free loopback ports with a fresh log directory,
/// started by `scripts/kafka.sh` and stopped on drop.
pub struct Kafka {
    pub dir: tempfile::TempDir,
    bootstrap: String,
    pid: u32,
}

impl Kafka {
    pub fn start() -> Kafka {
        Kafka::start_with("")
    }

    /// Group timeouts short enough that a killed member's partitions move within seconds
    /// (both protocols; with KIP-848 the broker owns them).
    const TEST_PROPERTIES: &'static str = "group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=1000
";

    /// With extra broker properties (`key=value` lines), e.g. fast compaction.
    pub fn start_with(extra_properties: &str) -> Kafka {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(kafka_script())
            .arg("start")
            .arg(dir.path())
            .env(
                "KAFKA_EXTRA_PROPERTIES",
                format!("{}{extra_properties}", Kafka::TEST_PROPERTIES),
            )
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/kafka.sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let bootstrap = text
            .lines()
            .find_map(|l| l.strip_prefix("bootstrap="))
            .unwrap_or_else(|| {
                panic!(
                    "scripts/kafka.sh start failed ({}): {text}\n{}",
                    out.status,
                    std::fs::read_to_string(dir.path().join("kafka.log")).unwrap_or_default()
                )
            })
            .to_string();
        let pid = std::fs::read_to_string(dir.path().join("kafka.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Kafka {
            dir,
            bootstrap,
            pid,
        }
    }

    pub fn brokers(&self) -> String {
        self.bootstrap.clone()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Creates a topic (`compact`: cleanup.policy=compact with the given topic configs).
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .unwrap();
        let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            t = t.set(k, v);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(admin.create_topics([&t], &AdminOptions::new()))
            .unwrap();
        for x in r {
            x.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }

    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, &[]);
    }

    /// SIGSTOP / SIGCONT the broker (a stall).
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = Command::new(kafka_script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// Topic names and a group unique to one test.
#[derive(Clone)]
pub struct Names {
    pub input: String,
    pub group: String,
    pub prefix: String,
}

impl Names {
    pub fn new(test: &str) -> Names {
        let n = std::process::id();
        Names {
            input: format!("{test}-events-{n}"),
            group: format!("{test}-group-{n}"),
            prefix: format!("{test}-{n}"),
        }
    }
    pub fn topic(&self, what: &str) -> String {
        format!("{}.{what}", self.prefix)
    }
}

/// The delivery guarantee and group protocol a service runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub exactly_once: bool,
    pub consumer_protocol: bool,
}

impl Mode {
    pub const AT_LEAST_ONCE: Mode = Mode {
        exactly_once: false,
        consumer_protocol: false,
    };
    pub const EXACTLY_ONCE: Mode = Mode {
        exactly_once: true,
        consumer_protocol: false,
    };
    pub const EXACTLY_ONCE_KIP848: Mode = Mode {
        exactly_once: true,
        consumer_protocol: true,
    };
    pub const AT_LEAST_ONCE_KIP848: Mode = Mode {
        exactly_once: false,
        consumer_protocol: true,
    };

    /// `[kafka]` lines.
    pub fn kafka_lines(&self) -> String {
        format!(
            "guarantee = \"{}\"\ngroup_protocol = \"{}\"\n",
            if self.exactly_once {
                "exactly_once"
            } else {
                "at_least_once"
            },
            if self.consumer_protocol {
                "consumer"
            } else {
                "classic"
            }
        )
    }

    /// `[kafka.client]` lines: the classic protocol's session timeout is the client's.
    pub fn client_lines(&self) -> &'static str {
        if self.consumer_protocol {
            ""
        } else {
            "\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 1000\n"
        }
    }
}

/// Writes a service config for `churnwatch run` (at least once, classic protocol).
pub fn write_config(dir: &Path, brokers: &str, n: &Names, http_port: u16, extra: &str) -> PathBuf {
    write_config_mode(dir, brokers, n, http_port, extra, Mode::AT_LEAST_ONCE)
}

/// Writes a service config for `churnwatch run` with `extra` lines in `[kafka]`.
pub fn write_config_mode(
    dir: &Path,
    brokers: &str,
    n: &Names,
    http_port: u16,
    extra: &str,
    mode: Mode,
) -> PathBuf {
    let p = dir.join(format!("churnwatch-{http_port}.toml"));
    let mut f = std::fs::File::create(&p).unwrap();
    write!(
        f,
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
input_topic = "{input}"
create_topics = true
commit_interval = "100ms"
idle_timeout = "1s"
drain_timeout = "20s"
broker_timeout = "10s"
{mode_lines}{extra}

[kafka.topics]
tier_changes = "{tc}"
warnings = "{w}"
profiles = "{p}"
dead_letters = "{d}"
changelog = "{c}"
members = "{m}"

[kafka.client]
"fetch.wait.max.ms" = 10
{client_lines}
[http]
listen = "127.0.0.1:{http_port}"

[log]
format = "human"
level = "info"
"#,
        group = n.group,
        input = n.input,
        tc = n.topic("tier-changes"),
        w = n.topic("warnings"),
        p = n.topic("profiles"),
        d = n.topic("dead-letters"),
        c = n.topic("changelog"),
        m = n.topic("members"),
        mode_lines = mode.kafka_lines(),
        client_lines = mode.client_lines(),
    )
    .unwrap();
    p
}

/// A running `churnwatch run`.
pub struct Service {
    pub child: Child,
    pub http: u16,
    pub log: PathBuf,
}

impl Service {
    pub fn start(config: &Path, http: u16, log: PathBuf) -> Service {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,librdkafka=warn")
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Service { child, http, log }
    }

    /// `/v1/status` as JSON, if the service answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        http_get(self.http, "/v1/status", None).and_then(|(code, body)| {
            (code == 200)
                .then(|| serde_json::from_str(&body).ok())
                .flatten()
        })
    }

    /// SIGSTOP / SIGCONT the service.
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; returns the exit code and how long the exit took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let t0 = Instant::now();
        signal(self.child.id(), "TERM");
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), t0.elapsed())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generates events with `churnwatch gen` into a file and the same events into a topic.
pub fn gen_both(file: &Path, brokers: &str, topic: &str, gen_args: &[&str]) {
    let st = Command::new(BIN)
        .arg("gen")
        .args(gen_args)
        .arg("--out")
        .arg(file)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new(BIN)
        .arg("gen")
        .args(gen_args)
        .args(["--brokers", brokers, "--topic", topic])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "gen to topic");
}

/// High watermarks of every partition of `topic`.
pub fn high_watermarks(brokers: &str, topic: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = client(brokers).create().unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    parts
        .into_iter()
        .map(|p| {
            let (_, h) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            (p, h)
        })
        .collect()
}

fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("fetch.wait.max.ms", "10")
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false");
    c
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Every record of `topic` a read_committed consumer sees, partition by partition in
/// offset order. Reads each partition to its end (the end-of-partition event: with
/// transactions the last offsets may be commit or abort markers, never delivered).
pub fn read_topic(brokers: &str, topic: &str) -> Vec<Rec> {
    let highs = high_watermarks(brokers, topic);
    let mut c = client(brokers);
    c.set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = c.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in highs.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let t0 = Instant::now();
    while at_end.len() < highs.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "reading {topic} timed out"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            None => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// The compacted view of a profiles topic: customer → profile JSON (null deletes).
pub fn latest_profiles(recs: &[Rec]) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    for r in recs {
        let k = String::from_utf8(r.key.clone().expect("profiles are keyed")).unwrap();
        match &r.value {
            Some(v) => {
                m.insert(k, serde_json::from_slice(v).unwrap());
            }
            None => {
                m.remove(&k);
            }
        }
    }
    m
}

/// Asserts that the profiles topic holds exactly replay's profiles, customer by customer.
pub fn assert_profiles_equal_replay(profiles_topic: &[Rec], expected: &Expected) {
    let profiles = latest_profiles(profiles_topic);
    assert_eq!(profiles.len(), expected.profiles.len(), "same customers");
    for (id, want) in &expected.profiles {
        let got = profiles
            .get(id)
            .unwrap_or_else(|| panic!("no profile for {id}"));
        assert!(
            got == want,
            "profile of {id} differs:\nkafka:  {got}\nreplay: {want}"
        );
    }
}

/// Event ids of the records (JSON with an `event_id`), and how many were repeats.
pub fn event_ids(recs: &[Rec]) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    let mut dups = 0;
    for r in recs {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        if !ids.insert(v["event_id"].as_str().unwrap().to_string()) {
            dups += 1;
        }
    }
    (ids, dups)
}

/// What replay produced for the same events.
pub struct Expected {
    pub profiles: BTreeMap<String, serde_json::Value>,
    pub alert_ids: BTreeSet<String>,
    pub dead_letters: usize,
}

/// Runs `churnwatch replay` over `events` up to `until` (ms). Its profiles are as last
/// published (`--profiles-as-published`: each as of its customer's clock), which is what
/// the compacted profiles topic holds; plain `--profiles` would be as of `until`.
pub fn replay(dir: &Path, events: &Path, until_ms: i64) -> Expected {
    let out = dir.join("replay-out.jsonl");
    let prof = dir.join("replay-profiles.jsonl");
    let dlq = dir.join("replay-dlq.jsonl");
    let until = churnwatch::core::time::format_rfc3339(until_ms);
    let st = Command::new(BIN)
        .args(["replay", "--quiet", "--until", &until, "--input"])
        .arg(events)
        .arg("--output")
        .arg(&out)
        .arg("--profiles")
        .arg(&prof)
        .arg("--profiles-as-published")
        .arg("--dead-letters")
        .arg(&dlq)
        .status()
        .unwrap();
    assert!(st.success());
    let mut profiles = BTreeMap::new();
    for l in std::fs::read_to_string(&prof).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        profiles.insert(v["customer_id"].as_str().unwrap().to_string(), v);
    }
    let mut alert_ids = BTreeSet::new();
    for l in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let schema = v["schema"].as_str().unwrap();
        if !schema.contains("tombstone") {
            alert_ids.insert(v["event_id"].as_str().unwrap().to_string());
        }
    }
    let dead_letters = std::fs::read_to_string(&dlq).unwrap().lines().count();
    Expected {
        profiles,
        alert_ids,
        dead_letters,
    }
}

/// Waits until the services together hold every partition of the input at its end
/// and every partition's watermark has followed the clock to `after_ms` (the idle
/// advance). Returns the watermark (the same for all partitions).
pub fn wait_caught_up(
    services: &[&Service],
    highs: &BTreeMap<i32, i64>,
    after_ms: i64,
    limit: Duration,
) -> i64 {
    let t0 = Instant::now();
    loop {
        let mut seen: BTreeMap<i32, (i64, i64, Option<i64>)> = BTreeMap::new();
        for s in services {
            if let Some(st) = s.status() {
                for p in st["partitions"].as_array().unwrap() {
                    seen.insert(
                        p["partition"].as_i64().unwrap() as i32,
                        (
                            p["next_offset"].as_i64().unwrap(),
                            p["durable_offset"].as_i64().unwrap(),
                            p["watermark_ms"].as_i64(),
                        ),
                    );
                }
            }
        }
        let all = highs.iter().all(|(p, h)| {
            seen.get(p).is_some_and(|(next, durable, wm)| {
                (*h == 0 || (next >= h && durable >= h)) && wm.is_some_and(|w| w >= after_ms)
            })
        });
        if all {
            let wms: BTreeSet<i64> = seen
                .values()
                .map(|(_, _, w)| w.unwrap() / 86_400_000)
                .collect();
            if wms.len() == 1 {
                return seen.values().map(|(_, _, w)| w.unwrap()).max().unwrap();
            }
        }
        assert!(
            t0.elapsed() < limit,
            "services did not catch up within {limit:?}: partitions {seen:?}, input ends {highs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The wall clock in ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
