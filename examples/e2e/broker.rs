//! The broker under test: Apache Kafka started by `scripts/kafka.sh` in a fresh
//! directory, its topics created with rdkafka's admin client, and what every result line
//! reports about the process and the machine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// Partitions of every topic the benchmark creates.
pub const PARTITIONS: i32 = 4;

/// A single-node KRaft broker; stopped (and its directory removed) when dropped.
pub struct Kafka {
    dir: tempfile::TempDir,
    bootstrap: String,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

impl Kafka {
    /// Starts a broker (the script assembles Kafka from Maven Central on its first run).
    pub fn start() -> Kafka {
        let dir = tempfile::Builder::new()
            .prefix("e2e-kafka-")
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run scripts/kafka.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bootstrap = stdout
            .lines()
            .find_map(|l| l.strip_prefix("bootstrap="))
            .filter(|_| out.status.success())
            .unwrap_or_else(|| panic!("scripts/kafka.sh start failed (its message is above)"))
            .to_string();
        Kafka { dir, bootstrap }
    }

    /// `bootstrap.servers`.
    pub fn brokers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates topics of [`PARTITIONS`] partitions, `(name, compacted)`: compacted ones
    /// with `cleanup.policy=compact`, as `churnwatch run` creates its profiles and
    /// changelog topics; the others with `delete`. Returns once the broker's metadata
    /// lists them (a service started earlier would find them missing).
    pub fn create_topics(&self, topics: &[(&str, bool)]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .unwrap();
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|&(name, compact)| {
                NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1))
                    .set("cleanup.policy", if compact { "compact" } else { "delete" })
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let results = rt
            .block_on(admin.create_topics(new.iter(), &AdminOptions::new()))
            .expect("create topics");
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => panic!("creating topic {t} failed: {code}"),
            }
        }
        let t0 = std::time::Instant::now();
        let listed = || {
            let md = admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(10))
                .unwrap();
            topics.iter().all(|(name, _)| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == *name && t.partitions().len() == PARTITIONS as usize)
            })
        };
        while !listed() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "topics not listed after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Resident memory and the machine's load average (1, 5, 15 min), for every result line:
/// the two cores are shared with other work.
pub fn rss_and_load() -> String {
    let rss = churnwatch::sys::resident_bytes().map_or("?".into(), |b| format!("{} MiB", b >> 20));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("RSS {rss}; load {}", load.join(" "))
}
