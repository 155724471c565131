//! Warm standbys against Apache Kafka (single-node KRaft per test): two instances with
//! `kafka.standby_replicas = 1` each keep a warm copy of the other's partitions; after one
//! is killed with SIGKILL the survivor takes its partitions from those copies, reading
//! only the changelog's tail (fewer records than the partitions' customers), and the
//! final profiles and alerts equal `replay`'s.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka::*;

const PARTITIONS: i32 = 4;
const LIMIT: Duration = Duration::from_secs(600);

/// Partition → its `/v1/status` entry, for the partitions `s` holds.
fn held(s: &Service) -> BTreeMap<i64, serde_json::Value> {
    s.status()
        .map(|st| {
            st["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["partition"].as_i64().unwrap(), p.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn keys<V>(m: &BTreeMap<i64, V>) -> BTreeSet<i64> {
    m.keys().copied().collect()
}

/// Partition → (changelog offset, lag) of the warm copies `s` keeps.
fn standbys(s: &Service) -> BTreeMap<i64, (i64, Option<i64>)> {
    s.status()
        .map(|st| {
            st["standbys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["partition"].as_i64().unwrap(),
                        (c["changelog_offset"].as_i64().unwrap(), c["lag"].as_i64()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `churnwatch_standby_promotions_total` of `s`.
fn promotions(s: &Service) -> f64 {
    let (code, metrics) = http_get(s.http, "/metrics", None).unwrap();
    assert_eq!(code, 200);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("churnwatch_standby_promotions_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no churnwatch_standby_promotions_total in {metrics}"))
}

#[test]
fn the_survivor_promotes_its_warm_copies_reading_only_the_tail() {
    let broker = Kafka::start();
    let names = Names::new("standby");
    broker.create_topic(&names.input, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    gen_both(
        &events,
        &broker.brokers(),
        &names.input,
        &[
            "--customers",
            "1500",
            "--events",
            "15000",
            "--seed",
            "33",
            "--days",
            "400",
            "--start",
            "2025-01-01T00:00:00Z",
        ],
    );
    let highs = high_watermarks(&broker.brokers(), &names.input);
    let started_ms = now_ms();
    let service = |tag: &str| {
        let http = free_port();
        let cfg = write_config(
            dir.path(),
            &broker.brokers(),
            &names,
            http,
            "standby_replicas = 1\n",
        );
        Service::start(&cfg, http, dir.path().join(format!("service-{tag}.log")))
    };
    let mut a = service("a");
    let mut b = service("b");
    let t0 = Instant::now();
    while held(&a).is_empty() || held(&b).is_empty() || held(&a).len() + held(&b).len() < 4 {
        assert!(
            t0.elapsed() < LIMIT,
            "two members did not share the partitions"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_caught_up(&[&a, &b], &highs, started_ms - 61_000, LIMIT);

    // Each keeps a warm copy of exactly the other's partitions, caught up with the
    // changelog (a few checkpoint records may be in flight: the idle watermark moves).
    let t0 = Instant::now();
    let a_parts = loop {
        let (ha, hb) = (held(&a), held(&b));
        let (sa, sb) = (standbys(&a), standbys(&b));
        let warm = |s: &BTreeMap<i64, (i64, Option<i64>)>| {
            s.values()
                .all(|(off, lag)| *off > 0 && lag.is_some_and(|l| l < 50))
        };
        if keys(&sb) == keys(&ha) && keys(&sa) == keys(&hb) && warm(&sa) && warm(&sb) {
            break ha;
        }
        assert!(
            t0.elapsed() < LIMIT,
            "warm copies never matched the other member's partitions: a holds {:?} and keeps {sa:?}, b holds {:?} and keeps {sb:?}",
            keys(&ha),
            keys(&hb)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let customers: BTreeMap<i64, u64> = a_parts
        .iter()
        .map(|(p, v)| (*p, v["customers"].as_u64().unwrap()))
        .collect();

    let promotions_before = promotions(&b);
    a.kill9();
    let t0 = Instant::now();
    while held(&b).len() < PARTITIONS as usize {
        assert!(t0.elapsed() < LIMIT, "b never took a's partitions");
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = held(&b);
    for (p, n) in &customers {
        let r = &now[p]["restored"];
        assert!(
            r["from_standby"].as_i64().is_some(),
            "partition {p} was not restored from the warm copy: {r}"
        );
        let read = r["records"].as_u64().unwrap();
        assert!(
            read < *n,
            "partition {p}: the promotion read {read} changelog records, not fewer than its {n} customers: {r}"
        );
        eprintln!("partition {p}: {n} customers, promotion read {read} records: {r}");
    }
    // Once b has consumed the input a left uncommitted, it holds every customer a held
    // (right after the promotion a customer whose snapshot a had not yet written is
    // still to be re-made from the input).
    wait_caught_up(&[&b], &highs, started_ms - 61_000, LIMIT);
    let now = held(&b);
    for (p, n) in &customers {
        assert_eq!(
            now[p]["customers"].as_u64(),
            Some(*n),
            "partition {p}: after catching up, b holds every customer a held"
        );
    }
    // One promotion per moved partition (the start-up rebalance may have promoted
    // copies too, when a partition moved from a first member to a second).
    assert_eq!(
        promotions(&b) - promotions_before,
        customers.len() as f64,
        "one promotion per moved partition"
    );

    // The survivor finishes, and the outputs of both equal replay's.
    let wm = wait_caught_up(&[&b], &highs, started_ms - 61_000, LIMIT);
    let (code, _) = b.terminate();
    assert_eq!(code, Some(0), "clean exit; log:\n{}", b.log_text());
    let expected = replay(dir.path(), &events, wm);
    let brokers = broker.brokers();
    assert_profiles_equal_replay(&read_topic(&brokers, &names.topic("profiles")), &expected);
    let mut alerts = read_topic(&brokers, &names.topic("tier-changes"));
    alerts.extend(read_topic(&brokers, &names.topic("warnings")));
    let (ids, _) = event_ids(&alerts);
    assert_eq!(ids, expected.alert_ids, "the same alerts as replay");
}
