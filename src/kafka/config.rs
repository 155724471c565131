//! `[kafka]`, `[kafka.topics]`, `[kafka.client]` and `[http]`: the service's settings,
//! validated into [`KafkaSettings`] with the fix in every error message.

use std::time::Duration;

use serde::Deserialize;

use crate::core::time::parse_duration_ms;

/// `[kafka.topics]`: where outputs and state go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// `churnwatch.tier_changed.v2` records.
    pub tier_changes: String,
    /// `churnwatch.churn_warning.v2` and `churnwatch.churn_warning_cleared.v2` records.
    pub warnings: String,
    /// Latest profile per customer (compacted; a null value after erase).
    pub profiles: String,
    /// `churnwatch.dead_letter.v2` records.
    pub dead_letters: String,
    /// Customer state and partition checkpoints (compacted).
    pub changelog: String,
    /// Which member holds which input partition, for routing look-ups (compacted, small).
    pub members: String,
}

/// `[kafka]` as written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group id.
    pub group_id: String,
    /// Input topic (events keyed by customer id).
    pub input_topic: String,
    /// Create missing output and changelog topics at start-up.
    pub create_topics: bool,
    /// Partitions of created output topics; 0 = as many as the input topic.
    pub partitions: i32,
    /// Replication factor of created topics; −1 = the broker's default.
    pub replication_factor: i32,
    /// Where a partition without a checkpoint starts: `earliest` or `latest`.
    pub start: String,
    /// How often the current interval is made durable.
    pub commit_interval: String,
    /// Idle time after which a partition's watermark follows the clock (`0s` = never).
    pub idle_timeout: String,
    /// Time allowed on SIGTERM/SIGINT to make the current interval durable.
    pub drain_timeout: String,
    /// Timeout of metadata and restore requests (retried with backoff).
    pub broker_timeout: String,
    /// Changelog partitions restored at the same time when partitions are assigned.
    pub restore_parallelism: u32,
    /// Warm copies kept of each partition by instances that do not own it (0 = none).
    pub standby_replicas: i64,
    /// Worker threads, each with its own partitions (0 = the number of cores).
    pub workers: i64,
    /// `at_least_once` or `exactly_once` (Kafka transactions).
    pub guarantee: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_protocol: String,
    /// How the input topic is partitioned by key: `murmur2` (Kafka's default) or `crc32`
    /// (librdkafka's default), for routing look-ups.
    pub input_partitioner: String,
    /// With `exactly_once`: the producer's `transactional.id`; empty = one per start.
    pub transactional_id: String,
    /// With `exactly_once`: how long the broker keeps an open transaction of a silent
    /// producer before aborting it.
    pub transaction_timeout: String,
    /// `[kafka.topics]`.
    pub topics: TopicsConfig,
    /// `[kafka.client]`: librdkafka settings, nested tables joined with dots.
    #[serde(default)]
    pub client: toml::Table,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address; empty = no HTTP server.
    pub listen: String,
    /// Name of the environment variable holding the API token (named `default`). When
    /// that variable is set and not empty, `/v1/…` requires `Authorization: Bearer <token>`.
    pub token_env: String,
    /// A file of named tokens, one `NAME TOKEN` per line, re-read when it changes (revoke a
    /// client by deleting its line); empty = none.
    pub tokens_file: String,
    /// Serve `/v1/…` without a token even when listening beyond loopback.
    pub allow_anonymous: bool,
    /// The address other instances reach this one's HTTP at (`http://host:port`), for
    /// look-ups they forward; empty = `http://` + `listen` when that names a host, else the
    /// machine's host name with the listen port.
    pub advertised_url: String,
}

impl HttpConfig {
    /// The API token from the environment, if one is configured.
    pub fn token(&self) -> Option<String> {
        if self.token_env.is_empty() {
            return None;
        }
        std::env::var(&self.token_env)
            .ok()
            .filter(|t| !t.is_empty())
    }

    /// The advertised URL: the configured one, or one derived from `listen` ("" when HTTP
    /// is off).
    pub fn advertised(&self) -> String {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return String::new();
        }
        if !self.advertised_url.trim().is_empty() {
            return self.advertised_url.trim().trim_end_matches('/').to_string();
        }
        let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "80"));
        let wildcard = matches!(host, "0.0.0.0" | "[::]" | "::" | "");
        if wildcard {
            let name = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_else(|| "localhost".into());
            format!("http://{name}:{port}")
        } else {
            format!("http://{host}:{port}")
        }
    }

    /// The access settings the HTTP server checks (with the environment token read).
    pub fn access(&self) -> crate::http::AccessConfig {
        crate::http::AccessConfig {
            env_token: self.token(),
            token_env: self.token_env.clone(),
            tokens_file: self.tokens_file.clone(),
            allow_anonymous: self.allow_anonymous,
        }
    }
}

/// Where a partition without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest retained event.
    Earliest,
    /// Only events written from now on.
    Latest,
}

/// What a read_committed consumer of the outputs may see after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Outputs of the interval in flight at a crash may be produced again, with the same
    /// `event_id`. No transactions: works on any Kafka-API broker.
    AtLeastOnce,
    /// Each interval's outputs, changelog records, checkpoints and input offsets commit in
    /// one Kafka transaction (Kafka Streams' EOS v2): a read_committed consumer sees every
    /// output once.
    ExactlyOnce,
}

/// The consumer group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The classic protocol, with the cooperative-sticky assignor.
    Classic,
    /// KIP-848: the broker assigns partitions; incremental rebalances without a
    /// group-wide barrier (Kafka 4.0+).
    Consumer,
}

/// `[kafka]` validated.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group id.
    pub group_id: String,
    /// Input topic.
    pub input_topic: String,
    /// Create missing topics.
    pub create_topics: bool,
    /// Partitions of created topics (0 = as the input).
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication_factor: i32,
    /// Start of a partition without a checkpoint.
    pub start: Start,
    /// Commit interval.
    pub commit_interval: Duration,
    /// Idle timeout (`None` = the watermark follows event time only).
    pub idle_timeout: Option<Duration>,
    /// Drain time on shutdown.
    pub drain_timeout: Duration,
    /// Metadata and restore request timeout.
    pub broker_timeout: Duration,
    /// Changelog partitions restored at the same time (≥ 1).
    pub restore_parallelism: usize,
    /// Warm standby copies per partition (0 = none; `standby.rs`).
    pub standby_replicas: usize,
    /// Worker threads of this instance, 1 ..= [`MAX_WORKERS`] (`runtime/worker.rs`).
    pub workers: usize,
    /// Delivery guarantee of the outputs.
    pub guarantee: Guarantee,
    /// Consumer group protocol.
    pub group_protocol: GroupProtocol,
    /// How the input is partitioned by key.
    pub input_partitioner: super::partitioner::Partitioner,
    /// `transactional.id` with `exactly_once` (empty: the service makes one per start).
    pub transactional_id: String,
    /// `transaction.timeout.ms` with `exactly_once`.
    pub transaction_timeout: Duration,
    /// Topic names.
    pub topics: TopicsConfig,
    /// librdkafka settings with `env:` values resolved.
    pub client: Vec<(String, String)>,
}

/// Most warm copies of a partition `kafka.standby_replicas` may ask for: each one is a
/// whole copy of the partition's state on another instance.
pub const MAX_STANDBY_REPLICAS: i64 = 8;

/// Most worker threads `kafka.workers` may ask for (a partition is the unit of work, so
/// more workers than input partitions idle; the stall flags are one bit per worker).
pub const MAX_WORKERS: i64 = 64;

/// `kafka.workers = 0`: one worker per core (at most [`MAX_WORKERS`]).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS as usize))
}

/// A `[kafka]` setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct KafkaConfigError(pub String);

fn duration(field: &str, v: &str) -> Result<Duration, KafkaConfigError> {
    parse_duration_ms(v)
        .filter(|ms| *ms >= 0)
        .map(|ms| Duration::from_millis(ms as u64))
        .ok_or_else(|| {
            KafkaConfigError(format!(
                "kafka.{field} = \"{v}\" is not a duration; write it like \"100ms\", \"30s\" or \"5m\""
            ))
        })
}

/// Whether a librdkafka setting holds a secret (masked when printed).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "private",
        "jaas",
        "sasl.oauthbearer.config",
    ]
    .iter()
    .any(|s| k.contains(s))
        || k.ends_with(".key")
}

/// `key = value` pairs of `[kafka.client]` (masked where secret), for logs and
/// `check-config`.
pub fn describe_client(client: &[(String, String)]) -> Vec<String> {
    client
        .iter()
        .map(|(k, v)| {
            if is_secret(k) {
                format!("{k} = \"***\"")
            } else {
                format!("{k} = {v:?}")
            }
        })
        .collect()
}

/// Asks librdkafka whether it knows each `[kafka.client]` setting and accepts its value,
/// without creating a client, so that `check-config` (and start-up) name a typo such as
/// `fetch.wait.max.msx` with the fix, instead of the first client creation failing
/// later. A secret's value is masked in the answer.
fn check_client(client: &[(String, String)]) -> Result<(), KafkaConfigError> {
    for (key, value) in client {
        let mut c = rdkafka::ClientConfig::new();
        c.set(key, value);
        if let Err(e) = c.create_native_config() {
            let mut why = match e {
                rdkafka::error::KafkaError::ClientConfig(_, desc, _, _) => desc,
                other => other.to_string(),
            };
            if is_secret(key) && !value.is_empty() {
                why = why.replace(value.as_str(), "***");
            }
            return Err(KafkaConfigError(format!(
                "kafka.client.{key}: librdkafka refuses it ({why}); remove it or fix it (the \
                 settings are listed in librdkafka's CONFIGURATION.md)"
            )));
        }
    }
    Ok(())
}

fn flatten(
    prefix: &str,
    t: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> Result<(), KafkaConfigError> {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let s = match v {
            toml::Value::Table(inner) => {
                flatten(&key, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(KafkaConfigError(format!(
                    "kafka.client.{key}: librdkafka settings are strings, numbers or booleans"
                )))
            }
        };
        out.push((key, s));
    }
    Ok(())
}

/// Resolves `env:NAME` values from the environment (`lookup`), so secrets never sit in files.
pub fn resolve_env(
    pairs: Vec<(String, String)>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, KafkaConfigError> {
    pairs
        .into_iter()
        .map(|(k, v)| match v.strip_prefix("env:") {
            Some(name) => lookup(name).map(|val| (k.clone(), val)).ok_or_else(|| {
                KafkaConfigError(format!(
                    "kafka.client.{k} = \"env:{name}\": the environment variable {name} is not set; export it or change the setting"
                ))
            }),
            None => Ok((k, v)),
        })
        .collect()
}

/// Settings the service owns: a `[kafka.client]` entry may not change them, because the
/// delivery guarantees depend on them.
const OWNED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "partition.assignment.strategy",
    "group.protocol",
    "isolation.level",
    "transactional.id",
    "transaction.timeout.ms",
];

impl KafkaConfig {
    /// Validates the section and resolves `env:` values.
    pub fn compile(&self) -> Result<KafkaSettings, KafkaConfigError> {
        self.compile_with_env(|n| std::env::var(n).ok())
    }

    /// Like [`KafkaConfig::compile`] with an explicit environment (for tests).
    pub fn compile_with_env(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<KafkaSettings, KafkaConfigError> {
        let nonempty = |field: &str, v: &str| {
            if v.trim().is_empty() {
                Err(KafkaConfigError(format!("kafka.{field} must not be empty")))
            } else {
                Ok(())
            }
        };
        nonempty("brokers", &self.brokers)?;
        nonempty("group_id", &self.group_id)?;
        nonempty("input_topic", &self.input_topic)?;
        topic_name("input_topic", &self.input_topic)?;
        let t = &self.topics;
        let names = [
            ("tier_changes", &t.tier_changes),
            ("warnings", &t.warnings),
            ("profiles", &t.profiles),
            ("dead_letters", &t.dead_letters),
            ("changelog", &t.changelog),
            ("members", &t.members),
        ];
        for (field, name) in names {
            nonempty(&format!("topics.{field}"), name)?;
            topic_name(&format!("topics.{field}"), name)?;
            if *name == self.input_topic {
                return Err(KafkaConfigError(format!(
                    "kafka.topics.{field} = \"{name}\" is the input topic; outputs need their own topics"
                )));
            }
        }
        for (field, name) in [
            ("changelog", &t.changelog),
            ("profiles", &t.profiles),
            ("members", &t.members),
        ] {
            if names.iter().filter(|(_, n)| *n == name).count() > 1 {
                return Err(KafkaConfigError(format!(
                    "kafka.topics.{field} = \"{name}\" is also used for another output; compacted topics must not be shared"
                )));
            }
        }
        let start = match self.start.as_str() {
            "earliest" => Start::Earliest,
            "latest" => Start::Latest,
            other => {
                return Err(KafkaConfigError(format!(
                    "kafka.start = \"{other}\": use \"earliest\" or \"latest\""
                )))
            }
        };
        if self.partitions < 0 {
            return Err(KafkaConfigError(format!(
                "kafka.partitions = {}: use 0 (as many as the input topic) or a positive count",
                self.partitions
            )));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(KafkaConfigError(format!(
                "kafka.replication_factor = {}: use -1 (broker default) or a positive count",
                self.replication_factor
            )));
        }
        let commit_interval = duration("commit_interval", &self.commit_interval)?;
        if commit_interval.is_zero() {
            return Err(KafkaConfigError(
                "kafka.commit_interval must be above 0, e.g. \"100ms\"".into(),
            ));
        }
        let idle = duration("idle_timeout", &self.idle_timeout)?;
        if self.restore_parallelism == 0 {
            return Err(KafkaConfigError(
                "kafka.restore_parallelism must be at least 1 (partitions restored at the same time), e.g. 4".into(),
            ));
        }
        if !(0..=MAX_STANDBY_REPLICAS).contains(&self.standby_replicas) {
            return Err(KafkaConfigError(format!(
                "kafka.standby_replicas = {}: use 0 (no warm standbys) or a count from 1 to {MAX_STANDBY_REPLICAS} (other instances that keep a warm copy of each partition; 1 is usual)",
                self.standby_replicas
            )));
        }
        let workers = match self.workers {
            0 => default_workers(),
            n if (1..=MAX_WORKERS).contains(&n) => n as usize,
            n => {
                return Err(KafkaConfigError(format!(
                    "kafka.workers = {n}: use 0 (one per core) or a count from 1 to {MAX_WORKERS} (threads, each processing its own input partitions; more than the input's partitions leaves some idle)"
                )))
            }
        };
        let guarantee = match self.guarantee.as_str() {
            "at_least_once" => Guarantee::AtLeastOnce,
            "exactly_once" => Guarantee::ExactlyOnce,
            other => {
                return Err(KafkaConfigError(format!(
                    "kafka.guarantee = \"{other}\": use \"at_least_once\" (any Kafka-API broker) or \"exactly_once\" (needs Kafka transactions)"
                )))
            }
        };
        let group_protocol = match self.group_protocol.as_str() {
            "classic" => GroupProtocol::Classic,
            "consumer" => GroupProtocol::Consumer,
            other => {
                return Err(KafkaConfigError(format!(
                    "kafka.group_protocol = \"{other}\": use \"classic\" or \"consumer\" (KIP-848, Kafka 4.0+ brokers)"
                )))
            }
        };
        let input_partitioner = super::partitioner::Partitioner::parse(&self.input_partitioner)
            .ok_or_else(|| {
                KafkaConfigError(format!(
                    "kafka.input_partitioner = \"{}\": use \"murmur2\" (Kafka's default partitioner: Java clients, Kafka Streams, librdkafka's murmur2_random) or \"crc32\" (librdkafka's default consistent_random)",
                    self.input_partitioner
                ))
            })?;
        let transaction_timeout = duration("transaction_timeout", &self.transaction_timeout)?;
        if transaction_timeout < Duration::from_secs(1) {
            return Err(KafkaConfigError(format!(
                "kafka.transaction_timeout = \"{}\" is too short: use at least \"1s\" (default \"10s\")",
                self.transaction_timeout
            )));
        }
        if guarantee == Guarantee::ExactlyOnce
            && transaction_timeout.as_millis() as u64 <= commit_interval.as_millis() as u64 * 2
        {
            return Err(KafkaConfigError(format!(
                "kafka.transaction_timeout = \"{}\" must be well above kafka.commit_interval = \"{}\" (one transaction per interval); raise it",
                self.transaction_timeout, self.commit_interval
            )));
        }
        let mut client = Vec::new();
        flatten("", &self.client, &mut client)?;
        if group_protocol == GroupProtocol::Consumer {
            // With KIP-848 the broker owns these (group.consumer.* broker settings);
            // librdkafka refuses them.
            for (k, _) in &client {
                if matches!(
                    k.as_str(),
                    "session.timeout.ms" | "heartbeat.interval.ms" | "group.protocol.type"
                ) {
                    return Err(KafkaConfigError(format!(
                        "kafka.client.{k} does not apply with kafka.group_protocol = \"consumer\": the broker sets it (group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms); remove it"
                    )));
                }
            }
        }
        for (k, _) in &client {
            if OWNED.contains(&k.as_str()) {
                return Err(KafkaConfigError(format!(
                    "kafka.client.{k} is set by churnwatch (its delivery guarantees depend on it); remove it{}",
                    match k.as_str() {
                        "bootstrap.servers" => " and set kafka.brokers",
                        "group.id" => " and set kafka.group_id",
                        _ => "",
                    }
                )));
            }
        }
        let client = resolve_env(client, lookup)?;
        check_client(&client)?;
        Ok(KafkaSettings {
            brokers: self.brokers.clone(),
            group_id: self.group_id.clone(),
            input_topic: self.input_topic.clone(),
            create_topics: self.create_topics,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            start,
            commit_interval,
            idle_timeout: (!idle.is_zero()).then_some(idle),
            drain_timeout: duration("drain_timeout", &self.drain_timeout)?,
            broker_timeout: duration("broker_timeout", &self.broker_timeout)?,
            restore_parallelism: self.restore_parallelism as usize,
            standby_replicas: self.standby_replicas as usize,
            workers,
            guarantee,
            group_protocol,
            input_partitioner,
            transactional_id: self.transactional_id.clone(),
            transaction_timeout,
            topics: self.topics.clone(),
            client,
        })
    }
}

/// Kafka's rule for topic names (1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`), checked
/// here so that a typo stops start-up with the setting to fix instead of surfacing as a
/// librdkafka error about an unknown topic. A list in `input_topic` gets its own answer:
/// a customer's state is built from one partition of one topic (its changelog records
/// carry that partition's offset), so several sources have to be merged into one topic
/// keyed by customer id first.
fn topic_name(field: &str, name: &str) -> Result<(), KafkaConfigError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.len() <= 249 && name != "." && name != ".." && name.chars().all(ok) {
        return Ok(());
    }
    if field == "input_topic" && name.contains([',', ' ', ';']) {
        return Err(KafkaConfigError(format!(
            "kafka.input_topic = \"{name}\": churnwatch reads one input topic, because each \
             customer's state follows one input partition and its offsets; write all event \
             types (orders, visits, complaints, ...) to one topic keyed by customer id, for \
             example with a Kafka Connect or MirrorMaker job, and name that topic here"
        )));
    }
    Err(KafkaConfigError(format!(
        "kafka.{field} = \"{}\" is not a valid Kafka topic name: use 1 to 249 of the \
         characters a-z A-Z 0-9 . _ - (not \".\" or \"..\")",
        name.escape_debug()
    )))
}

#[cfg(test)]
mod tests;
