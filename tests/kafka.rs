//! End-to-end tests of `churnwatch run` against Apache Kafka (single-node KRaft, started
//! per test on free loopback ports by `scripts/kafka.sh`): the Kafka path equals replay,
//! and stays equal through kill -9, rebalances, a stalled broker and SIGTERM, with both
//! delivery guarantees and both group protocols. With `exactly_once`, a read_committed
//! consumer sees every alert exactly once, and a zombie instance's writes stay invisible.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/net.rs"]
mod net;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka::*;
use rand::{Rng, SeedableRng};

const PARTITIONS: i32 = 4;
const LIMIT: Duration = Duration::from_secs(600);

struct Run {
    broker: Kafka,
    names: Names,
    dir: tempfile::TempDir,
    events: std::path::PathBuf,
    highs: BTreeMap<i32, i64>,
    started_ms: i64,
    mode: Mode,
}

/// A broker with the input topic filled by `churnwatch gen`, and the same events in a file.
fn setup(test: &str, customers: u32, events: u64, seed: u64, mode: Mode) -> Run {
    let broker = Kafka::start();
    let names = Names::new(test);
    broker.create_topic(&names.input, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let (c, e, s) = (customers.to_string(), events.to_string(), seed.to_string());
    gen_both(
        &file,
        &broker.brokers(),
        &names.input,
        &[
            "--customers",
            &c,
            "--events",
            &e,
            "--seed",
            &s,
            "--days",
            "400",
            "--start",
            "2025-01-01T00:00:00Z",
            "--duplicates",
            "0.01",
            "--bad",
            "0.002",
        ],
    );
    let highs = high_watermarks(&broker.brokers(), &names.input);
    let lines = std::fs::read_to_string(&file).unwrap().lines().count() as i64;
    assert_eq!(
        highs.values().sum::<i64>(),
        lines,
        "every generated line is in the topic"
    );
    Run {
        broker,
        names,
        dir,
        events: file,
        highs,
        started_ms: now_ms(),
        mode,
    }
}

impl Run {
    fn config(&self, http: u16, names: &Names) -> std::path::PathBuf {
        write_config_mode(
            self.dir.path(),
            &self.broker.brokers(),
            names,
            http,
            "",
            self.mode,
        )
    }

    fn service(&self, tag: &str) -> Service {
        self.service_with(tag, &self.names)
    }

    fn service_with(&self, tag: &str, names: &Names) -> Service {
        let http = free_port();
        let cfg = self.config(http, names);
        Service::start(
            &cfg,
            http,
            self.dir.path().join(format!("service-{tag}.log")),
        )
    }

    /// Waits for the end, stops the services with SIGTERM, compares with replay, and
    /// returns the number of repeated output ids.
    fn finish_and_compare(&self, services: &mut [&mut Service]) -> usize {
        let refs: Vec<&Service> = services.iter().map(|s| &**s).collect();
        let wm = wait_caught_up(&refs, &self.highs, self.started_ms - 61_000, LIMIT);
        for s in services.iter_mut() {
            let (code, took) = s.terminate();
            assert_eq!(code, Some(0), "clean exit; log:\n{}", s.log_text());
            assert!(took < Duration::from_secs(20), "exit within the drain time");
        }
        compare(self, wm)
    }
}

fn compare(run: &Run, until_ms: i64) -> usize {
    let b = run.broker.brokers();
    let expected = replay(run.dir.path(), &run.events, until_ms);
    assert_profiles_equal_replay(&read_topic(&b, &run.names.topic("profiles")), &expected);
    let mut alerts = read_topic(&b, &run.names.topic("tier-changes"));
    alerts.extend(read_topic(&b, &run.names.topic("warnings")));
    let (ids, dups) = event_ids(&alerts);
    let missing: Vec<_> = expected.alert_ids.difference(&ids).take(5).collect();
    assert!(
        missing.is_empty(),
        "alerts lost: {missing:?} (of {})",
        expected.alert_ids.len()
    );
    let extra: Vec<_> = ids.difference(&expected.alert_ids).take(5).collect();
    assert!(extra.is_empty(), "alerts replay does not have: {extra:?}");
    let dlq = read_topic(&b, &run.names.topic("dead-letters"));
    let mut sources = std::collections::BTreeSet::new();
    for r in &dlq {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        assert_eq!(v["source"]["topic"], run.names.input.as_str());
        sources.insert((
            v["source"]["partition"].as_i64(),
            v["source"]["offset"].as_i64(),
        ));
    }
    assert_eq!(
        sources.len(),
        expected.dead_letters,
        "every rejected record dead-lettered once (by source)"
    );
    if run.mode.exactly_once {
        assert_eq!(
            dlq.len(),
            expected.dead_letters,
            "exactly_once: no dead letter is visible twice"
        );
    }
    eprintln!(
        "compared: {} profiles, {} alert ids, {} dead letters; {} repeated alert records",
        expected.profiles.len(),
        ids.len(),
        sources.len(),
        dups
    );
    dups
}

fn consumed(services: &[&Service]) -> i64 {
    services
        .iter()
        .filter_map(|s| s.status())
        .flat_map(|st| {
            st["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["next_offset"].as_i64().unwrap().max(0))
                .collect::<Vec<_>>()
        })
        .sum()
}

fn wait_consumed(services: &[&Service], at_least: i64) {
    let t0 = Instant::now();
    while consumed(services) < at_least {
        assert!(t0.elapsed() < LIMIT, "no progress to {at_least}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kafka_path_equals_replay() {
    let run = setup("equal", 1500, 20_000, 11, Mode::AT_LEAST_ONCE);
    let mut s = run.service("a");
    let dups = run.finish_and_compare(&mut [&mut s]);
    assert_eq!(dups, 0, "no crash, so no repeated outputs");
    let log = s.log_text();
    assert!(log.contains("created missing topics"), "{log}");
}

/// kill -9 at five random points of 200,000 events, each restart joining the same
/// consumer group (it takes the partitions once the dead member's session expires).
/// Returns the repeated alert records seen by a read_committed consumer.
fn kill_9_five_times(test: &str, mode: Mode) -> usize {
    let run = setup(test, 8000, 200_000, 12, mode);
    let total: i64 = run.highs.values().sum();
    let mut rng = rand::rngs::StdRng::seed_from_u64(now_ms() as u64);
    let mut points: Vec<f64> = (0..5).map(|_| rng.gen_range(0.05..0.95)).collect();
    points.sort_by(f64::total_cmp);
    for (tag, p) in points.iter().enumerate() {
        let s = run.service(&format!("crash{tag}"));
        // Crash once the group has consumed up to this fraction (measured in the restored
        // instance, so each crash lands later in the input than the last).
        wait_consumed(&[&s], (total as f64 * p) as i64);
        let mut s = s;
        s.kill9();
        eprintln!("kill -9 at {:.0} % of the input", p * 100.0);
    }
    let mut s = run.service("final");
    let dups = run.finish_and_compare(&mut [&mut s]);
    eprintln!(
        "{mode:?}, kill -9 x{}: {dups} repeated alert records",
        points.len()
    );
    assert!(s
        .log_text()
        .contains("partition restored from the changelog"));
    dups
}

#[test]
fn kill_9_at_random_points_loses_nothing() {
    // At least once: repeats carry the same event_id (consumers drop them).
    kill_9_five_times("crash-alo", Mode::AT_LEAST_ONCE);
}

#[test]
fn exactly_once_kill_9_neither_loses_nor_repeats() {
    let dups = kill_9_five_times("crash-eos", Mode::EXACTLY_ONCE);
    assert_eq!(dups, 0, "exactly_once: every alert visible once");
}

#[test]
fn exactly_once_kill_9_neither_loses_nor_repeats_with_the_consumer_protocol() {
    let dups = kill_9_five_times("crash-eos848", Mode::EXACTLY_ONCE_KIP848);
    assert_eq!(dups, 0, "exactly_once: every alert visible once");
}

/// Waits until both services hold partitions; `why` explains a time-out.
fn wait_both_hold(a: &Service, b: &Service, why: impl Fn() -> String) {
    let held = |s: &Service| {
        s.status()
            .map_or(0, |st| st["partitions"].as_array().unwrap().len())
    };
    let t0 = Instant::now();
    while held(a) == 0 || held(b) == 0 {
        assert!(t0.elapsed() < LIMIT, "{}", why());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two instances over four partitions; one stops mid-run and the survivor takes over.
fn hand_over(test: &str, mode: Mode) -> usize {
    let run = setup(test, 3000, 40_000, 13, mode);
    let total: i64 = run.highs.values().sum();
    let mut a = run.service("a");
    let mut b = run.service("b");
    // Both members hold partitions before one leaves.
    wait_both_hold(&a, &b, || "group did not spread partitions".into());
    wait_consumed(&[&a, &b], total / 3);
    let (code, _) = b.terminate();
    assert_eq!(code, Some(0), "{}", b.log_text());
    let t0 = Instant::now();
    loop {
        let n = a
            .status()
            .map_or(0, |st| st["partitions"].as_array().unwrap().len());
        if n == PARTITIONS as usize {
            break;
        }
        assert!(
            t0.elapsed() < LIMIT,
            "survivor did not take over all partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dups = run.finish_and_compare(&mut [&mut a]);
    let log = a.log_text();
    assert!(
        log.matches("partition restored from the changelog").count() > PARTITIONS as usize / 2,
        "{log}"
    );
    dups
}

#[test]
fn rebalance_hands_state_over() {
    let dups = hand_over("rebal", Mode::AT_LEAST_ONCE);
    assert_eq!(dups, 0, "a clean hand-over repeats nothing");
}

#[test]
fn rebalance_hands_state_over_with_the_consumer_protocol() {
    let dups = hand_over("rebal848", Mode::AT_LEAST_ONCE_KIP848);
    assert_eq!(dups, 0, "a clean hand-over repeats nothing");
}

#[test]
fn exactly_once_hand_over_with_the_consumer_protocol() {
    let dups = hand_over("rebal-eos848", Mode::EXACTLY_ONCE_KIP848);
    assert_eq!(dups, 0);
}

#[test]
fn broker_stall_recovers_by_itself() {
    let run = setup("stall", 2000, 30_000, 14, Mode::AT_LEAST_ONCE);
    let total: i64 = run.highs.values().sum();
    let mut s = run.service("a");
    wait_consumed(&[&s], total / 3);
    run.broker.signal("STOP");
    std::thread::sleep(Duration::from_secs(20));
    let during = http_get(s.http, "/readyz", None);
    run.broker.signal("CONT");
    eprintln!("readyz during the stall: {during:?}");
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the service stays alive"
    );
    run.finish_and_compare(&mut [&mut s]);
}

#[test]
fn exactly_once_broker_stall_recovers_by_itself() {
    let run = setup("stall-eos", 2000, 30_000, 14, Mode::EXACTLY_ONCE);
    let total: i64 = run.highs.values().sum();
    let mut s = run.service("a");
    wait_consumed(&[&s], total / 3);
    run.broker.signal("STOP");
    std::thread::sleep(Duration::from_secs(20));
    run.broker.signal("CONT");
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the service stays alive"
    );
    let dups = run.finish_and_compare(&mut [&mut s]);
    assert_eq!(dups, 0, "exactly_once: every alert visible once");
}

fn sigterm_and_restart(test: &str, mode: Mode) {
    let run = setup(test, 2000, 30_000, 15, mode);
    let total: i64 = run.highs.values().sum();
    let mut s = run.service("a");
    wait_consumed(&[&s], total / 2);
    let (code, took) = s.terminate();
    assert_eq!(code, Some(0), "{}", s.log_text());
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(s.log_text().contains("stopped cleanly"));
    let mut s2 = run.service("b");
    let dups = run.finish_and_compare(&mut [&mut s2]);
    assert_eq!(
        dups, 0,
        "a clean stop makes everything durable: nothing is produced twice"
    );
}

#[test]
fn sigterm_drains_and_a_restart_continues() {
    sigterm_and_restart("term", Mode::AT_LEAST_ONCE);
}

#[test]
fn sigterm_drains_and_a_restart_continues_exactly_once_with_the_consumer_protocol() {
    sigterm_and_restart("term-eos848", Mode::EXACTLY_ONCE_KIP848);
}

/// A zombie: instance A is frozen (SIGSTOP) past its session and transaction timeouts
/// while B takes its partitions and finishes the input. When A resumes, the transaction
/// it had open cannot commit: nothing it wrote becomes visible (a read_committed consumer
/// sees every alert once), and it rejoins the group and takes partitions again.
fn zombie(test: &str, mode: Mode) {
    let run = setup(test, 4000, 80_000, 16, mode);
    let total: i64 = run.highs.values().sum();
    let mut a = run.service("a");
    wait_consumed(&[&a], total / 4);
    a.signal("STOP");
    let mut b = run.service("b");
    wait_caught_up(&[&b], &run.highs, run.started_ms - 61_000, LIMIT);
    // Past the transaction timeout (10 s) too: the broker has aborted A's transaction.
    std::thread::sleep(Duration::from_secs(12));
    let a_log_before = a.log_text().len();
    a.signal("CONT");
    // A notices it lost its partitions, rejoins, and the group spreads them again.
    wait_both_hold(&a, &b, || {
        format!(
            "the zombie did not rejoin; log:\n{}",
            &a.log_text()[a_log_before..]
        )
    });
    let after = a.log_text()[a_log_before..].to_string();
    assert!(
        after.contains("partitions lost")
            || after.contains("transaction aborted")
            || after.contains("producer was fenced"),
        "the zombie saw that it lost its partitions or its transaction:\n{after}"
    );
    let dups = run.finish_and_compare(&mut [&mut a, &mut b]);
    assert_eq!(dups, 0, "nothing the zombie wrote became visible twice");
}

#[test]
fn exactly_once_zombie_is_fenced_and_rejoins() {
    zombie("zombie", Mode::EXACTLY_ONCE);
}

#[test]
fn exactly_once_zombie_is_fenced_and_rejoins_with_the_consumer_protocol() {
    zombie("zombie848", Mode::EXACTLY_ONCE_KIP848);
}

#[test]
fn poison_messages_go_to_the_dead_letter_topic_and_the_offset_advances() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let broker = Kafka::start();
    let names = Names::new("poison");
    // Exactly once: the dead letters commit with the offsets that skip the poison.
    broker.create_topic(&names.input, 1);
    let p: ThreadedProducer<DefaultProducerContext> = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .create()
        .unwrap();
    let good = br#"{"event_id":"e1","customer_id":"c1","type":"order","ts":"2026-01-05T10:00:00Z","amount":10.5}"#;
    let poison: Vec<Option<&[u8]>> = vec![
        Some(b"not json at all"),
        Some(b"\xff\xfe\x00binary"),
        None,
        Some(br#"{"event_id":"e2","customer_id":"c1","type":"teleport","ts":"2026-01-05T10:00:00Z"}"#),
        Some(br#"{"event_id":"e3","customer_id":"c1","type":"order","ts":"2026-01-05T10:00:00Z","amount":-1,"name":"Li Wei","phone":"+86 138 0013 8000"}"#),
        Some(good),
    ];
    for v in &poison {
        let mut r = BaseRecord::<[u8], [u8]>::to(&names.input).key(b"c1".as_slice());
        if let Some(v) = v {
            r = r.payload(*v);
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let cfg = write_config_mode(
        dir.path(),
        &broker.brokers(),
        &names,
        http,
        "",
        Mode::EXACTLY_ONCE,
    );
    let mut s = Service::start(&cfg, http, dir.path().join("s.log"));
    let highs = high_watermarks(&broker.brokers(), &names.input);
    wait_caught_up(&[&s], &highs, now_ms() - 61_000, LIMIT);
    let (code, _) = s.terminate();
    assert_eq!(code, Some(0));
    let dlq = read_topic(&broker.brokers(), &names.topic("dead-letters"));
    let reasons: Vec<(String, i64)> = dlq
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            (
                v["reason"].as_str().unwrap().to_string(),
                v["source"]["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = reasons.clone();
    sorted.sort_by_key(|r| r.1);
    assert_eq!(
        sorted.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "{reasons:?}"
    );
    assert_eq!(sorted[3].0, "unknown_type");
    assert_eq!(sorted[4].0, "negative_amount");
    // Redacted by default: the personal fields' names, never their values.
    for r in &dlq {
        let text = String::from_utf8_lossy(r.value.as_ref().unwrap());
        assert!(
            !text.contains("Li Wei") && !text.contains("138 0013"),
            "{text}"
        );
    }
    let last: serde_json::Value = serde_json::from_slice(
        dlq.iter()
            .find(|r| {
                String::from_utf8_lossy(r.value.as_ref().unwrap()).contains("negative_amount")
            })
            .unwrap()
            .value
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last["original"]["other_fields"],
        serde_json::json!(["name", "phone"])
    );
    let profiles = latest_profiles(&read_topic(&broker.brokers(), &names.topic("profiles")));
    assert_eq!(
        profiles.len(),
        1,
        "the good event after the poison was applied"
    );
    assert_eq!(
        profiles["c1"]["facts"]["lifetime_orders"], 1,
        "{}",
        profiles["c1"]
    );
}
