//! `kafka.workers` against Apache Kafka (`scripts/kafka.sh`): the same input through
//! `churnwatch run` with one worker and with two gives the same alerts and the same final
//! profiles (and both equal `replay`'s), and with two workers one instance answers
//! look-ups of customers on partitions held by either worker and lists every partition in
//! `/v1/status`.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/net.rs"]
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka::*;

const PARTITIONS: i32 = 4;
const LIMIT: Duration = Duration::from_secs(600);

/// What one run left on its output topics.
struct Outputs {
    alert_ids: BTreeSet<String>,
    profiles: BTreeMap<String, serde_json::Value>,
    /// The watermark the run was compared with replay at (ms).
    watermark: i64,
}

/// `/v1/status` shows every input partition, at least one on each of `workers` workers;
/// returns partition → worker.
fn partitions_by_worker(s: &Service, workers: u64) -> BTreeMap<i64, u64> {
    let st = s.status().expect("/v1/status answers");
    let by_worker: BTreeMap<i64, u64> = st["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["worker"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_worker.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS as i64).collect::<Vec<_>>(),
        "/v1/status lists every partition: {st}"
    );
    let used: BTreeSet<u64> = by_worker.values().copied().collect();
    assert_eq!(
        used,
        (0..workers).collect::<BTreeSet<_>>(),
        "the group gave every worker partitions: {st}"
    );
    by_worker
}

/// Looks customers up until each worker has answered for one of its partitions.
fn look_up_on_every_worker(s: &Service, customers: &[String], by_worker: &BTreeMap<i64, u64>) {
    let mut answered: BTreeSet<u64> = BTreeSet::new();
    for id in customers {
        let (code, body) =
            http_get(s.http, &format!("/v1/customers/{id}"), None).expect("the look-up answers");
        assert_eq!(code, 200, "{id}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["customer_id"].as_str(), Some(id.as_str()), "{body}");
        let p = v["input"]["partition"].as_i64().unwrap();
        answered.insert(by_worker[&p]);
        if answered.len() == by_worker.values().collect::<BTreeSet<_>>().len() {
            return;
        }
    }
    panic!("only workers {answered:?} answered look-ups");
}

#[test]
fn outputs_do_not_depend_on_the_number_of_workers() {
    let broker = Kafka::start();
    let base = Names::new("workers");
    broker.create_topic(&base.input, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    gen_both(
        &file,
        &broker.brokers(),
        &base.input,
        &[
            "--customers",
            "1500",
            "--events",
            "20000",
            "--seed",
            "23",
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
    let highs = high_watermarks(&broker.brokers(), &base.input);
    let b = broker.brokers();
    let mut runs: Vec<Outputs> = Vec::new();
    for workers in [1u64, 2] {
        // The same input; a group and output topics of its own.
        let names = Names {
            input: base.input.clone(),
            group: format!("{}-w{workers}", base.group),
            prefix: format!("{}-w{workers}", base.prefix),
        };
        let http = free_port();
        let cfg = write_config(
            dir.path(),
            &b,
            &names,
            http,
            &format!("workers = {workers}\n"),
        );
        let started = now_ms();
        let mut s = Service::start(
            &cfg,
            http,
            dir.path().join(format!("service-w{workers}.log")),
        );
        let wm = wait_caught_up(&[&s], &highs, started - 61_000, LIMIT);
        let by_worker = partitions_by_worker(&s, workers);
        let expected = replay(dir.path(), &file, wm);
        let customers: Vec<String> = expected.profiles.keys().cloned().collect();
        look_up_on_every_worker(&s, &customers, &by_worker);
        let (code, _) = s.terminate();
        assert_eq!(code, Some(0), "clean exit; log:\n{}", s.log_text());
        let profiles = read_topic(&b, &names.topic("profiles"));
        assert_profiles_equal_replay(&profiles, &expected);
        let mut alerts = read_topic(&b, &names.topic("tier-changes"));
        alerts.extend(read_topic(&b, &names.topic("warnings")));
        let (ids, dups) = event_ids(&alerts);
        assert_eq!(dups, 0, "no crash, so no repeated outputs");
        assert!(
            ids == expected.alert_ids,
            "{workers} worker(s): {} alert ids, replay {}; missing {:?}, extra {:?}",
            ids.len(),
            expected.alert_ids.len(),
            expected
                .alert_ids
                .difference(&ids)
                .take(5)
                .collect::<Vec<_>>(),
            ids.difference(&expected.alert_ids)
                .take(5)
                .collect::<Vec<_>>()
        );
        eprintln!(
            "{workers} worker(s): {} profiles, {} alert ids equal replay's",
            expected.profiles.len(),
            ids.len()
        );
        runs.push(Outputs {
            alert_ids: ids,
            profiles: latest_profiles(&profiles),
            watermark: wm,
        });
    }
    // Both equal replay; directly too, unless the clock crossed a day between the runs
    // (the idle advance follows the clock, so silence then fires one day further).
    let day = |ms: i64| ms / 86_400_000;
    if day(runs[0].watermark) == day(runs[1].watermark) {
        assert!(runs[0].alert_ids == runs[1].alert_ids, "same alert ids");
        assert!(runs[0].profiles == runs[1].profiles, "same final profiles");
    }
}
