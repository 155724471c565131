//! Any instance answers for any customer, against Apache Kafka (single-node KRaft per
//! test): three instances over six partitions, every customer of a replay looked up on
//! every instance answers with replay's tier, warning and lifetime facts (forwarded to the
//! holder through the members topic), and look-ups while a third instance joins are 200
//! or 503 with `Retry-After`, never a wrong 404; and `/v1/report?scope=group` on any
//! member equals `replay --report`.

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/net.rs"]
mod net;
#[path = "support/schema.rs"]
mod schema;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kafka::*;

const PARTITIONS: i32 = 6;
const LIMIT: Duration = Duration::from_secs(600);

/// GET with the response headers: (code, headers, body).
fn get(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    Some((code, head.to_ascii_lowercase(), body.to_string()))
}

fn held(s: &Service) -> usize {
    s.status()
        .map_or(0, |st| st["partitions"].as_array().unwrap().len())
}

/// What of a profile does not depend on when it is read: the tier and warning level (as of
/// the watermark both runs reached) and the lifetime facts. A look-up computes the windows,
/// recency, P(alive) and the warning's reasons as of its partition's watermark, which
/// follows the clock once the partition is idle; the support's `replay` writes profiles as
/// published (`--profiles-as-published`, as of each customer's last change, to compare with
/// the profiles topic), and plain `replay --profiles` is as of `--until`, a moment earlier.
/// So those are left out.
fn stable(v: &serde_json::Value) -> serde_json::Value {
    let f = &v["facts"];
    serde_json::json!({
        "customer_id": v["customer_id"], "tier": v["tier"], "level": v["warning"]["level"],
        "lifetime_orders": f["lifetime_orders"], "lifetime_value": f["lifetime_value"],
        "first_seen": f["first_seen"], "first_order": f["first_order"], "last_order": f["last_order"],
        "purchase_days": f["purchase_days"], "open_complaints": f["open_complaints"], "last_nps": f["last_nps"],
        "account_manager": f["account_manager"], "segment": f["segment"], "region": f["region"],
    })
}

#[test]
fn any_instance_answers_for_any_customer_and_never_a_wrong_404() {
    let broker = Kafka::start();
    let names = Names::new("routing");
    broker.create_topic(&names.input, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    gen_both(
        &events,
        &broker.brokers(),
        &names.input,
        &[
            "--customers",
            "600",
            "--events",
            "12000",
            "--seed",
            "21",
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
        let cfg = write_config_mode(
            dir.path(),
            &broker.brokers(),
            &names,
            http,
            "",
            Mode::AT_LEAST_ONCE,
        );
        Service::start(&cfg, http, dir.path().join(format!("service-{tag}.log")))
    };
    let a = service("a");
    let b = service("b");
    let t0 = Instant::now();
    while held(&a) == 0 || held(&b) == 0 || held(&a) + held(&b) < PARTITIONS as usize {
        assert!(
            t0.elapsed() < LIMIT,
            "two members did not share the partitions"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_caught_up(&[&a, &b], &highs, started_ms - 61_000, LIMIT);
    let sample: Vec<String> = {
        let text = std::fs::read_to_string(&events).unwrap();
        let mut ids: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["customer_id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        ids.into_iter().step_by(20).collect()
    };

    // A third member joins: partitions move while look-ups keep coming, on every member.
    let mut c = service("c");
    let (mut ok, mut retry) = (0, 0);
    let t0 = Instant::now();
    while held(&c) == 0
        || held(&a) + held(&b) + held(&c) < PARTITIONS as usize
        || t0.elapsed() < Duration::from_secs(3)
    {
        assert!(
            t0.elapsed() < LIMIT,
            "the third member never got partitions"
        );
        for s in [&a, &b, &c] {
            for id in &sample {
                let Some((code, head, body)) = get(s.http, &format!("/v1/customers/{id}")) else {
                    continue; // c's HTTP may not be up yet
                };
                match code {
                    200 => ok += 1,
                    503 => {
                        assert!(
                            head.contains("retry-after:"),
                            "503 without Retry-After: {head}"
                        );
                        retry += 1;
                    }
                    _ => panic!("look-up of {id} during the rebalance: {code} {body}"),
                }
            }
        }
    }
    eprintln!("during the rebalance: {ok} answers, {retry} times 503 + Retry-After, no 404");
    let wm = wait_caught_up(&[&a, &b, &c], &highs, started_ms - 61_000, LIMIT);

    // Every customer, on every member, answers with replay's profile.
    let expected = replay(dir.path(), &events, wm);
    let mut served_by: BTreeMap<u16, usize> = BTreeMap::new();
    for (id, want) in &expected.profiles {
        for s in [&a, &b, &c] {
            let (code, head, body) = (0..50)
                .find_map(|_| match get(s.http, &format!("/v1/customers/{id}")) {
                    Some((503, ..)) | None => {
                        std::thread::sleep(Duration::from_millis(100));
                        None
                    }
                    other => other,
                })
                .unwrap_or_else(|| panic!("{id} on :{}: no answer but 503", s.http));
            assert_eq!(code, 200, "{id} on :{}: {body}", s.http);
            let got = stable(&serde_json::from_str(&body).unwrap());
            let want = stable(want);
            assert!(
                got == want,
                "profile of {id} on :{} differs:\nhttp:   {got}\nreplay: {want}",
                s.http
            );
            if head.contains("x-churnwatch-served-by:") {
                *served_by.entry(s.http).or_default() += 1;
            }
        }
    }
    let forwarded: usize = served_by.values().sum();
    assert!(
        served_by.len() == 3 && forwarded >= expected.profiles.len(),
        "every member forwarded look-ups of customers it does not hold: {served_by:?}"
    );
    // The whole group's report, asked of any member, equals replay's report of the same
    // events (value tiers and ABC classes included: ranked among the whole population).
    let replay_report = dir.path().join("replay-report.json");
    let st = std::process::Command::new(BIN)
        .args([
            "replay",
            "--quiet",
            "--until",
            &churnwatch::core::time::format_rfc3339(wm),
            "--input",
        ])
        .arg(&events)
        .arg("--output")
        .arg(dir.path().join("replay-report-out.jsonl"))
        .arg("--report")
        .arg(&replay_report)
        .status()
        .unwrap();
    assert!(st.success());
    let mut want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&replay_report).unwrap()).unwrap();
    // Tier transitions and data-quality counts are counted by each partition's processor
    // since it was last restored (they are not in the changelog): after partitions moved
    // they cover less than replay's whole run, so they are not compared.
    for k in ["as_of", "tier_transitions", "data_quality"] {
        want.as_object_mut().unwrap().remove(k);
    }
    let report_schema = schema::validator("report.v2.json");
    for s in [&a, &b, &c] {
        let (code, _, body) = get(s.http, "/v1/report?scope=group").unwrap();
        assert_eq!(code, 200, "{body}");
        let mut got: serde_json::Value = serde_json::from_str(&body).unwrap();
        schema::check(&report_schema, "the group report", &got);
        assert_eq!(got["complete"], true, "{body}");
        assert_eq!(got["members"].as_array().unwrap().len(), 3, "{body}");
        assert_eq!(got["rules_versions_agree"], true, "{body}");
        let rules = got["members"][0]["rules_version"].clone();
        assert!(rules.as_str().is_some_and(|r| !r.is_empty()), "{body}");
        for m in got["members"].as_array().unwrap() {
            assert_eq!(m["rules_version"], rules, "one rule set: {body}");
        }
        let o = got.as_object_mut().unwrap();
        for k in [
            "as_of",
            "as_of_ms",
            "scope",
            "members",
            "missing_members",
            "missing_partitions",
            "complete",
            "rules_versions_agree",
            "tier_transitions",
            "data_quality",
        ] {
            o.remove(k);
        }
        assert!(
            got == want,
            "group report on :{} differs:\ngroup:  {got}\nreplay: {want}",
            s.http
        );
        let (_, _, own) = get(s.http, "/v1/report").unwrap();
        let own: serde_json::Value = serde_json::from_str(&own).unwrap();
        schema::check(&report_schema, "an instance's report", &own);
        assert_eq!(own["scope"], "instance");
        assert!(own["overall"]["customers"].as_u64() < want["overall"]["customers"].as_u64());
    }

    // An unknown customer is a 404 from its partition's holder, on every member.
    for s in [&a, &b, &c] {
        let (code, _, body) = get(s.http, "/v1/customers/NOBODY-42").unwrap();
        assert_eq!(code, 404, "{body}");
    }
    // A member that does not answer is named, never silently left out.
    let c_url = format!("http://127.0.0.1:{}", c.http);
    c.kill9();
    let (code, _, body) = get(a.http, "/v1/report?scope=group").unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["complete"], false, "{body}");
    let missing = v["missing_members"].to_string();
    let uncovered = v["missing_partitions"].as_array().map_or(0, Vec::len);
    assert!(missing.contains(&c_url) || uncovered > 0, "{body}");
    eprintln!(
        "{} customers x 3 members answered with replay's profile; forwarded per member: {served_by:?}",
        expected.profiles.len()
    );
}
