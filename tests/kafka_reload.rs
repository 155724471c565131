//! Issue 19 item 5 on the running service (librdkafka's in-process mock cluster): the rule
//! file is edited and `POST /v1/rules/reload` applies it (the changes come out as alerts
//! with the new rules_version), an invalid file is refused with the reason while the
//! running rules stay, and a restart with the same file continues with the new version.
//! The service runs two workers, one partition each: a reload reaches both and is
//! counted and reported once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::core::time::{format_rfc3339, parse_rfc3339, Ts};
use churnwatch::http::AccessConfig;
use churnwatch::kafka::{RunOptions, Service, Status};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

#[path = "support/net.rs"]
mod net;
use net::{free_port, http_get, http_post};

const DAY: i64 = 86_400_000;
const DEFAULT: &str = include_str!("../config/default.toml");

fn now() -> Ts {
    parse_rfc3339("2026-06-30T00:00:00Z").unwrap()
}

/// The hand-made customers of tests/reload.rs: B and C move to `high_value` and D gets a
/// medium warning under the candidate rules.
fn events() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let people: [(&str, &[i64]); 5] = [
        ("A", &[55, 45, 35, 25, 15]),
        ("B", &[50, 40, 30, 20]),
        ("C", &[50, 40, 30, 20]),
        ("D", &[70]),
        ("E", &[100]),
    ];
    for (id, days) in people {
        for (i, d) in days.iter().enumerate() {
            let ts = format_rfc3339(now() - d * DAY + DAY / 2);
            v.push((id.to_string(), format!(
                "{{\"event_id\":\"{id}-{i}\",\"customer_id\":\"{id}\",\"type\":\"order\",\"ts\":\"{ts}\",\"amount\":30000,\"currency\":\"CNY\"}}"
            )));
        }
    }
    v
}

fn candidate_text() -> String {
    let t = DEFAULT.replacen("\"orders_365d >= 5\"", "\"orders_365d >= 4\"", 1);
    let t2 = t.replacen(
        "all = [\"days_without_order >= 90\"]",
        "all = [\"days_without_order >= 60\"]",
        1,
    );
    assert_ne!(t, t2, "the silence rule is in the defaults");
    t2
}

struct Running {
    status: Arc<Status>,
    thread: std::thread::JoinHandle<()>,
    _bg: churnwatch::http::Background,
    port: u16,
}

fn start(
    brokers: &str,
    file: &std::path::Path,
    alerts: Arc<Mutex<Vec<serde_json::Value>>>,
) -> Running {
    let cfg = Config::load_with_env(Some(file), false).unwrap();
    let mut kafka = cfg.kafka.clone();
    kafka.brokers = brokers.into();
    kafka.group_id = "reload-test".into();
    kafka.idle_timeout = "1s".into();
    kafka.workers = 2;
    kafka.client = toml::Table::new();
    let k = kafka.compile().unwrap();
    let status = Status::new();
    let hook: churnwatch::kafka::OutputHook = Arc::new(move |o| {
        if matches!(
            o,
            churnwatch::core::Output::TierChanged(_) | churnwatch::core::Output::Warning(_)
        ) {
            let mut j = Vec::new();
            o.write_json(&mut j);
            alerts
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&j).unwrap());
        }
    });
    let service = Service::new(RunOptions {
        settings: Arc::new(cfg.settings().unwrap()),
        kafka: k,
        clock: Arc::new(now),
        hook: Some(hook),
        status: Arc::clone(&status),
        advertised_url: String::new(),
    })
    .unwrap();
    let path = file.to_path_buf();
    // As `churnwatch run` does: the file on disk is the rules' record.
    service.set_rules_source(Arc::new(move || {
        Config::load_with_env(Some(&path), false)
            .and_then(|c| Ok(c.settings()?))
            .map_err(|e| e.to_string())
    }));
    let port = free_port();
    let live = churnwatch::http::Live::new(vec![]);
    let bg = churnwatch::http::start(
        &format!("127.0.0.1:{port}"),
        &AccessConfig {
            allow_anonymous: true,
            ..Default::default()
        },
        Some((service.handle(), live)),
        Arc::clone(&status),
    )
    .unwrap();
    let thread = std::thread::spawn(move || {
        service.run().unwrap();
    });
    Running {
        status,
        thread,
        _bg: bg,
        port,
    }
}

fn status(port: u16) -> serde_json::Value {
    let (code, body) = http_get(port, "/v1/status", None).expect("status answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reload_applies_the_edited_file_refuses_an_invalid_one_and_survives_a_restart() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, DEFAULT).unwrap();
    let k = Config::load_with_env(Some(&file), false)
        .unwrap()
        .kafka
        .compile()
        .unwrap();
    for t in [
        &k.input_topic,
        &k.topics.tier_changes,
        &k.topics.warnings,
        &k.topics.profiles,
        &k.topics.dead_letters,
        &k.topics.changelog,
    ] {
        cluster.create_topic(t, 2, 1).unwrap();
    }
    let brokers = cluster.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let evs = events();
    for (key, value) in &evs {
        producer
            .send(BaseRecord::to(&k.input_topic).key(key).payload(value))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let alerts = Arc::new(Mutex::new(Vec::new()));
    let run = start(&brokers, &file, Arc::clone(&alerts));
    let v1 = Config::load_with_env(Some(&file), false)
        .unwrap()
        .settings()
        .unwrap()
        .rules_version;
    wait(
        "the events to be consumed, the partitions idle, one on each worker",
        || {
            let s = status(run.port);
            let ps = s["partitions"].as_array().cloned().unwrap_or_default();
            let mut workers: Vec<_> = ps.iter().map(|p| p["worker"].as_u64()).collect();
            workers.sort();
            s["events"].as_u64() == Some(evs.len() as u64)
                && workers == [Some(0), Some(1)]
                && ps
                    .iter()
                    .all(|p| p["watermark"].as_str().is_some_and(|w| w >= "2026-06-29"))
        },
    );
    assert_eq!(
        status(run.port)["rules_version"].as_str(),
        Some(v1.as_str())
    );
    let before = alerts.lock().unwrap().len();

    // Apply: edit the file, ask for a reload.
    std::fs::write(&file, candidate_text()).unwrap();
    let (code, body) = http_post(run.port, "/v1/rules/reload", None, "").unwrap();
    assert_eq!(code, 200, "{body}");
    let rep: serde_json::Value = serde_json::from_str(&body).unwrap();
    let v2 = rep["to_version"].as_str().unwrap().to_string();
    assert_ne!(v2, v1);
    assert_eq!(
        (rep["customers"].as_u64(), rep["changed"].as_u64()),
        (Some(5), Some(3)),
        "{rep}"
    );
    let mut emitted: Vec<String> = alerts.lock().unwrap()[before..]
        .iter()
        .map(|a| {
            assert_eq!(a["trigger"], "rules", "{a}");
            assert_eq!(a["rules_version"].as_str(), Some(v2.as_str()), "{a}");
            format!(
                "{} {}",
                a["customer_id"].as_str().unwrap(),
                a["to"].as_str().or(a["level"].as_str()).unwrap()
            )
        })
        .collect();
    emitted.sort();
    assert_eq!(emitted, ["B high_value", "C high_value", "D medium"]);
    assert_eq!(
        status(run.port)["rules_version"].as_str(),
        Some(v2.as_str())
    );

    // Refuse: an invalid file leaves the running rules in place.
    std::fs::write(
        &file,
        candidate_text().replacen(
            "days_without_order >= 60",
            "days_without_order >= banana",
            1,
        ),
    )
    .unwrap();
    let (code, body) = http_post(run.port, "/v1/rules/reload", None, "").unwrap();
    assert_eq!(code, 422, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("banana"), "{err}");
    assert_eq!(err["running_version"].as_str(), Some(v2.as_str()));
    assert_eq!(
        status(run.port)["rules_version"].as_str(),
        Some(v2.as_str())
    );
    let (_, metrics) = http_get(run.port, "/metrics", None).unwrap();
    assert!(
        metrics.contains("churnwatch_rules_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("churnwatch_rules_reloads_total{result=\"refused\"} 1"));
    assert!(metrics.contains(&format!(
        "churnwatch_rules_version_info{{version=\"{v2}\"}} 1"
    )));

    // Restart with the applied file: the new version continues, nothing is re-announced.
    std::fs::write(&file, candidate_text()).unwrap();
    run.status.request_shutdown();
    run.thread.join().unwrap();
    let after_first = alerts.lock().unwrap().len();
    let run = start(&brokers, &file, Arc::clone(&alerts));
    wait("the partitions to be restored", || {
        status(run.port)["partitions"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    });
    assert_eq!(
        status(run.port)["rules_version"].as_str(),
        Some(v2.as_str())
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        alerts.lock().unwrap().len(),
        after_first,
        "a restart with the same rules re-announces nothing"
    );
    run.status.request_shutdown();
    run.thread.join().unwrap();
}
