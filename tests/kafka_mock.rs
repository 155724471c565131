//! The Kafka adapters against librdkafka's in-process mock cluster: `churnwatch gen --brokers`
//! (every line arrives once, keyed by its customer, in order), `churnwatch demo`, and the
//! start-up checks and broker-unavailable behaviour of `churnwatch run`.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;

#[path = "support/net.rs"]
mod net;
use net::{free_port, http_get};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn gen(args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "gen",
        "--customers",
        "40",
        "--events",
        "3000",
        "--seed",
        "5",
        "--bad",
        "0.01",
    ];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(&all)
        .output()
        .expect("runs")
}

#[test]
fn gen_produces_every_event_keyed_by_customer() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    // The mock broker's admin API does not create topics; its own API does.
    cluster.create_topic("events", 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let o = gen(&["--out", file.to_str().unwrap()]);
    assert!(o.status.success());
    let o = gen(&[
        "--brokers",
        &brokers,
        "--topic",
        "events",
        "--rate",
        "50000",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("delivered to topic events"));

    let want: Vec<Vec<u8>> = std::fs::read(&file)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "kafka-mock-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset("events", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: Vec<(i32, Option<Vec<u8>>, Vec<u8>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push((
                m.partition(),
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    assert_eq!(got.len(), want.len(), "every line arrives");
    let (mut a, mut b) = (
        want.clone(),
        got.iter().map(|g| g.2.clone()).collect::<Vec<_>>(),
    );
    a.sort();
    b.sort();
    assert!(a == b, "the topic holds exactly the lines of the file");

    let mut partition_of: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut keyed = 0;
    for (p, key, value) in &got {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(value) {
            if let Some(c) = v.get("customer_id").and_then(|c| c.as_str()) {
                assert_eq!(key.as_deref(), Some(c.as_bytes()), "keyed by customer id");
            }
        }
        if let Some(k) = key {
            keyed += 1;
            assert_eq!(
                *partition_of.entry(k.clone()).or_insert(*p),
                *p,
                "one partition per customer"
            );
        }
    }
    assert!(keyed > 2900);
    assert!(
        partition_of
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "customers spread over partitions"
    );
    // Each customer's events arrive in the order they were generated. Compared over the
    // records whose JSON names the customer (a truncated bad record is keyed but unparseable).
    let customer = |l: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(l)
            .ok()
            .and_then(|v| {
                v.get("customer_id")
                    .and_then(|c| c.as_str())
                    .map(|c| c.as_bytes().to_vec())
            })
    };
    let mut by_key_topic: HashMap<Vec<u8>, Vec<&Vec<u8>>> = HashMap::new();
    for g in &got {
        if let Some(k) = customer(&g.2) {
            by_key_topic.entry(k).or_default().push(&g.2);
        }
    }
    let mut by_key_file: HashMap<Vec<u8>, Vec<&Vec<u8>>> = HashMap::new();
    for l in &want {
        if let Some(k) = customer(l) {
            by_key_file.entry(k).or_default().push(l);
        }
    }
    for (k, lines) in &by_key_file {
        let t = by_key_topic.get(k).cloned().unwrap_or_default();
        if t != *lines {
            let i = t
                .iter()
                .zip(lines.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(t.len().min(lines.len()));
            panic!(
                "order of customer {}: {} on the topic, {} in the file; first difference at {i}:\n topic: {}\n file:  {}",
                String::from_utf8_lossy(k),
                t.len(),
                lines.len(),
                t.get(i).map(|l| String::from_utf8_lossy(l).to_string()).unwrap_or_default(),
                lines.get(i).map(|l| String::from_utf8_lossy(l).to_string()).unwrap_or_default()
            );
        }
    }
}

/// `gen` to a broker that does not exist, with extra client settings.
fn gen_unreachable(client: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "--brokers",
        "127.0.0.1:1",
        "--topic",
        "events",
        "--client",
        "message.timeout.ms=2000",
    ];
    for c in client {
        args.extend_from_slice(&["--client", c]);
    }
    let o = gen(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn an_unreachable_broker_is_a_clear_error() {
    let (code, err) = gen_unreachable(&[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("were not delivered to topic `events`") && err.contains("broker reachable"),
        "{err}"
    );
    let (code, err) = gen_unreachable(&["sasl.password=env:CHURNWATCH_TEST_UNSET_VAR"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("CHURNWATCH_TEST_UNSET_VAR is not set"),
        "{err}"
    );
}

/// librdkafka is built with OpenSSL: SASL_SSL with SCRAM is accepted as configuration (it
/// fails only on delivery, as the broker does not exist), as the README promises.
#[test]
fn ssl_and_sasl_scram_are_built_in() {
    let (code, err) = gen_unreachable(&[
        "security.protocol=SASL_SSL",
        "sasl.mechanisms=SCRAM-SHA-512",
        "sasl.username=churnwatch",
        "sasl.password=env:HOME",
    ]);
    assert_eq!(code, Some(2));
    assert!(!err.contains("not available at build time"), "{err}");
    assert!(err.contains("were not delivered"), "{err}");
}

#[test]
fn demo_prints_alerts_serves_http_and_stops_cleanly() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args([
            "demo",
            "--seconds",
            "14",
            "--days-per-second",
            "40",
            "--customers",
            "800",
            "--rate",
            "3000",
            "--verbose",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes while polling: the demo prints an alert per line, and a
    // full pipe would block it (and the status it reports) after ~64 KiB.
    let mut child_out = child.stdout.take().unwrap();
    let mut child_err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut child_out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut child_err, &mut s).unwrap();
        s
    });
    let t0 = Instant::now();
    let mut ready = None;
    let mut status = None;
    while t0.elapsed() < Duration::from_secs(12) && (ready.is_none() || status.is_none()) {
        if let Some((200, _)) = http_get(port, "/readyz", None) {
            ready = Some(());
        }
        if let Some((200, body)) = http_get(port, "/v1/status", None) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["partitions"].as_array().is_some_and(|p| p.len() == 4)
                && v["events"].as_u64().unwrap_or(0) > 0
            {
                status = Some(v);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(http_get(port, "/healthz", None).map(|r| r.0), Some(200));
    let exit = child.wait().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(ready.is_some(), "/readyz never answered 200: {stderr}");
    assert!(
        status.is_some(),
        "/v1/status never showed 4 partitions: {stderr}"
    );
    assert!(stdout.contains("WARNING"), "warnings printed: {stdout}");
    assert!(
        stdout.contains("silence"),
        "silence fires on the compressed clock: {stdout}"
    );
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    // Nothing may outlive the embedded broker: a producer kept alive by the HTTP
    // server's tasks used to log "Connection refused" errors after the clean stop.
    let after = &stderr[stderr.find("stopped cleanly").unwrap()..];
    assert!(
        !after.contains("ERROR"),
        "errors after the clean stop: {after}"
    );
}

/// What kind of line the demo printed, or `None` for one it must not print by default.
fn demo_line_kind(line: &str) -> Option<&'static str> {
    if line.starts_with("-- ") && line.contains(" summary: ") {
        Some("summary")
    } else if line.contains("  WARNING  HIGH ") {
        Some("high warning")
    } else if line.contains("  OVERDUE ") {
        Some("overdue escalation")
    } else if line.contains(" tier     ") && line.contains("high_value") {
        Some("top-tier change")
    } else {
        None
    }
}

/// The default demo (smaller and shorter): a readable terminal of high warnings, top-tier changes
/// and summaries in event-time order, and an alert volume within the realism bounds of
/// `churnwatch::demo::terminal::REALISM`: new warnings per account manager and simulated
/// day, warnings per customer, and the share of customers with an open warning.
#[test]
fn the_default_demo_tells_a_readable_story_within_realism_bounds() {
    use churnwatch::demo::terminal::REALISM;
    let port = free_port();
    let seconds = 50.0;
    // The default population shape and rules, smaller and a little slower than the
    // default demo (2,000 events/s instead of 6,250), so that the debug build that tests
    // run keeps up on two busy cores: 200 simulated days.
    let child = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args([
            "demo",
            "--customers",
            "2000",
            "--days-per-second",
            "4",
            "--seconds",
            &seconds.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Near the end: the share of customers with an open warning (the report's figures).
    let t0 = Instant::now();
    let mut report = None;
    while t0.elapsed() < Duration::from_secs_f64(seconds - 3.0) {
        std::thread::sleep(Duration::from_secs(1));
        if t0.elapsed() > Duration::from_secs_f64(seconds - 8.0) {
            if let Some((200, body)) = http_get(port, "/v1/report", None) {
                report = serde_json::from_str::<serde_json::Value>(&body).ok();
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let mut last = String::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in stdout.lines() {
        let kind = demo_line_kind(line)
            .unwrap_or_else(|| panic!("the demo printed a line of no printed kind: {line}"));
        *counts.entry(kind).or_default() += 1;
        if kind != "summary" {
            let time = line.get(..16).unwrap_or_default().to_string();
            assert!(
                time >= last,
                "out of time order: {time} after {last}\n{stdout}"
            );
            last = time;
        }
    }
    assert!(
        counts.get("summary").copied().unwrap_or(0) >= 5,
        "{counts:?}"
    );
    assert!(
        counts.get("high warning").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    let alert_lines = stdout.lines().count() - counts["summary"];
    assert!(
        (alert_lines as f64) / seconds < 15.0,
        "a readable terminal prints fewer than 15 alert lines a second: {alert_lines} in {seconds} s"
    );

    // The demo's own tally of warnings per manager-day and per customer.
    let realism = stderr
        .lines()
        .find(|l| l.contains("realism:"))
        .unwrap_or_else(|| panic!("no realism line: {stderr}"));
    let value = |key: &str| -> f64 {
        realism
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {realism}"))
    };
    let (per_manager_day, per_customer, out_of_order) = (
        value("per_manager_day"),
        value("max_per_customer"),
        value("out_of_order"),
    );
    assert!(
        (REALISM.min_per_manager_day..=REALISM.max_per_manager_day).contains(&per_manager_day),
        "{realism}"
    );
    assert!(per_customer <= REALISM.max_per_customer as f64, "{realism}");
    assert_eq!(out_of_order, 0.0, "{realism}");

    let report = report.expect("/v1/report answered near the end");
    let open = report["overall"]["warnings_open"]["medium"]
        .as_f64()
        .unwrap()
        + report["overall"]["warnings_open"]["high"].as_f64().unwrap();
    let customers = report["overall"]["customers"].as_f64().unwrap();
    assert!(
        open / customers <= REALISM.max_open_share,
        "{open} of {customers} customers have an open warning"
    );
}

#[test]
fn run_fails_fast_naming_a_missing_topic_and_the_setting() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster
        .create_topic("customer-events", 2, 1)
        .expect("topic");
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", cluster.bootstrap_servers())
        .env("CHURNWATCH__HTTP__LISTEN", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("churnwatch.changelog"), "{err}");
    assert!(err.contains("kafka.create_topics = true"), "{err}");

    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", cluster.bootstrap_servers())
        .env("CHURNWATCH__KAFKA__INPUT_TOPIC", "nope")
        .env("CHURNWATCH__HTTP__LISTEN", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("input topic `nope` does not exist"), "{err}");
}

#[test]
fn run_without_a_broker_stays_up_not_ready_and_stops_on_sigterm() {
    let dead = free_port();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", format!("127.0.0.1:{dead}"))
        .env("CHURNWATCH__KAFKA__BROKER_TIMEOUT", "1s")
        .env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut seen = None;
    while t0.elapsed() < Duration::from_secs(10) && seen.is_none() {
        seen = http_get(port, "/readyz", None);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = seen.expect("HTTP answers while brokers are away");
    assert_eq!(code, 503);
    assert!(body.contains("not ready"), "{body}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "no crash loop: still running"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGTERM is obeyed while the brokers are unreachable at start-up, without waiting for
/// the pending metadata request (`kafka.broker_timeout`, 120 s here) to time out.
#[test]
fn sigterm_while_the_brokers_are_unreachable_stops_at_once() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", "127.0.0.1:1")
        .env("CHURNWATCH__KAFKA__BROKER_TIMEOUT", "120s")
        .env("CHURNWATCH__HTTP__LISTEN", "")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the service is in its metadata request (it has logged its start).
    std::thread::sleep(Duration::from_secs(2));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    // Far below the 120 s the request would take; a hang fails the test, not a slow run.
    let t0 = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("churnwatch run did not stop on SIGTERM while the brokers were unreachable");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopped before the brokers answered"), "{err}");
}
