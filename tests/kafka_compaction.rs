//! Compaction on a real broker (Apache Kafka with a fast log cleaner): after an `erase`,
//! no record of the customer — key or value — remains in the compacted changelog or
//! profiles topic, and an instance that restores from the compacted changelog holds the
//! same state as `replay` of the same events.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/net.rs"]
mod net;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use kafka::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Topic settings that let the cleaner run within seconds: small segments, any dirt is
/// enough, tombstones and erase markers are not kept after a cleaning.
const FAST_COMPACTION: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.ms", "1000"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "0"),
    ("min.compaction.lag.ms", "0"),
    ("max.compaction.lag.ms", "1000"),
];

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap()
}

/// Sends each line keyed by its customer id, in order, and appends it to `file`.
fn send_lines(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    file: &Path,
    lines: &[String],
) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let key = v["customer_id"].as_str().unwrap().to_string();
        p.send(
            BaseRecord::to(topic)
                .key(key.as_bytes())
                .payload(l.as_bytes()),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        writeln!(f, "{l}").unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Whether any record of `topic` mentions `id` in its key or value.
fn mentions(brokers: &str, topic: &str, id: &str) -> usize {
    let needle = id.as_bytes();
    read_topic(brokers, topic)
        .iter()
        .filter(|r| {
            let has = |b: &Option<Vec<u8>>| {
                b.as_ref()
                    .is_some_and(|b| b.windows(needle.len()).any(|w| w == needle))
            };
            has(&r.key) || has(&r.value)
        })
        .count()
}

#[test]
fn erase_leaves_nothing_after_compaction_and_a_restore_from_the_compacted_changelog_matches_replay()
{
    let broker = Kafka::start_with("log.cleaner.backoff.ms=200\n");
    let b = broker.brokers();
    let names = Names::new("compact");
    broker.create_topic(&names.input, 2);
    broker.create_topic_with(&names.topic("changelog"), 2, FAST_COMPACTION);
    broker.create_topic_with(&names.topic("profiles"), 2, FAST_COMPACTION);
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated.jsonl");
    let st = std::process::Command::new(BIN)
        .args([
            "gen",
            "--customers",
            "300",
            "--events",
            "6000",
            "--seed",
            "21",
            "--days",
            "200",
            "--start",
            "2025-01-01T00:00:00Z",
            "--duplicates",
            "0",
            "--bad",
            "0",
            "--out",
        ])
        .arg(&generated)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut lines: Vec<String> = std::fs::read_to_string(&generated)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // The customer with the most events asks to be forgotten.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        *counts
            .entry(v["customer_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let victim = counts.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    lines.push(format!(
        r#"{{"event_id":"erase-1","customer_id":"{victim}","type":"erase","ts":"2025-08-01T00:00:00Z"}}"#
    ));
    let events = dir.path().join("events.jsonl");
    let p = producer(&b);
    send_lines(&p, &names.input, &events, &lines);

    let http = free_port();
    let cfg = write_config(dir.path(), &b, &names, http, "");
    let mut a = Service::start(&cfg, http, dir.path().join("a.log"));
    let started = now_ms();
    wait_caught_up(
        &[&a],
        &high_watermarks(&b, &names.input),
        started - 61_000,
        Duration::from_secs(300),
    );
    assert_eq!(
        http_get(http, &format!("/v1/customers/{victim}"), None)
            .unwrap()
            .0,
        404
    );

    // Other customers keep visiting, so segments roll and the cleaner has work; wait
    // until the victim is gone from both compacted topics. Their events are stamped with
    // the clock: the idle partitions' watermark follows the clock, so older ones would be
    // late here and not in replay.
    let t0 = Instant::now();
    let mut n = 0;
    loop {
        let ts = churnwatch::core::time::format_rfc3339(now_ms());
        let filler: Vec<String> = (0..20)
            .map(|i| {
                n += 1;
                format!(
                    r#"{{"event_id":"fill-{n}","customer_id":"F{i:03}","type":"visit","ts":"{ts}"}}"#
                )
            })
            .collect();
        send_lines(&p, &names.input, &events, &filler);
        std::thread::sleep(Duration::from_millis(1500));
        let left = mentions(&b, &names.topic("changelog"), &victim)
            + mentions(&b, &names.topic("profiles"), &victim);
        if left == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "{left} records still mention the erased customer after compaction"
        );
    }
    eprintln!(
        "erased customer gone from both topics after {:?}",
        t0.elapsed()
    );
    let (code, _) = a.terminate();
    assert_eq!(code, Some(0), "{}", a.log_text());

    // A new instance of the group restores from the compacted changelog alone.
    let http2 = free_port();
    let cfg2 = write_config(dir.path(), &b, &names, http2, "");
    let mut r = Service::start(&cfg2, http2, dir.path().join("r.log"));
    let wm = wait_caught_up(
        &[&r],
        &high_watermarks(&b, &names.input),
        started - 61_000,
        Duration::from_secs(300),
    );
    assert!(r
        .log_text()
        .contains("partition restored from the changelog"));
    let expected = replay(dir.path(), &events, wm);
    assert!(!expected.profiles.contains_key(&victim));
    assert_eq!(
        http_get(http2, &format!("/v1/customers/{victim}"), None)
            .unwrap()
            .0,
        404
    );
    for (id, want) in &expected.profiles {
        let (code, body) = http_get(http2, &format!("/v1/customers/{id}"), None).unwrap();
        assert_eq!(code, 200, "{id}: {body}");
        let mut got: serde_json::Value = serde_json::from_str(&body).unwrap();
        let o = got.as_object_mut().unwrap();
        o.remove("input");
        o.remove("standing");
        assert!(
            &got == want,
            "restored state of {id} differs:\nrestored: {got}\nreplay:   {want}"
        );
    }
    let (code, _) = r.terminate();
    assert_eq!(code, Some(0), "{}", r.log_text());
    assert_eq!(mentions(&b, &names.topic("profiles"), &victim), 0);
}
