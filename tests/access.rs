//! Access control and privacy, against `churnwatch run` on librdkafka's in-process mock
//! cluster: a server reachable beyond loopback refuses to start without an API token;
//! named tokens from a file work side by side, one revoked while the service runs gets 401
//! and the others keep working; every customer look-up is logged with the token's name;
//! and events carrying a name, a phone number, an e-mail address and a national id —
//! valid ones and rejected ones — leave none of them in any output topic, dead letter,
//! log line, metric or HTTP answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/mock.rs"]
mod mock;
#[path = "support/net.rs"]
mod net;
use mock::{produce, wait_http, Killed};
use net::{free_port, http_get, http_post};

const BIN: &str = env!("CARGO_BIN_EXE_churnwatch");
const ENV_TOKEN: &str = "env-token-for-the-operator";
const CRM: &str = "crm-token-0123456789";
const CONSOLE: &str = "console-token-9876543210";
const PII: [&str; 4] = [
    "Zhang Wei",
    "+86 139 1234 5678",
    "zhang.wei@example.org",
    "310101198807125433",
];

#[test]
fn an_api_beyond_loopback_without_a_token_is_refused_at_start_up() {
    let port = free_port();
    let o = Command::new(BIN)
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", "127.0.0.1:1")
        .env("CHURNWATCH__HTTP__LISTEN", format!("0.0.0.0:{port}"))
        .env_remove("CHURNWATCH_API_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("http.allow_anonymous = true") && err.contains("CHURNWATCH_API_TOKEN"),
        "the refusal says how to fix it: {err}"
    );
    // check-config refuses the same file.
    let o = Command::new(BIN)
        .arg("check-config")
        .env("CHURNWATCH__HTTP__LISTEN", format!("0.0.0.0:{port}"))
        .env_remove("CHURNWATCH_API_TOKEN")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("allow_anonymous"));
}

fn ev(id: &str, cust: &str, kind: &str, ts: &str, extra: serde_json::Value) -> (String, String) {
    let mut v = serde_json::json!({"event_id": id, "customer_id": cust, "type": kind, "ts": ts});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    (cust.to_string(), v.to_string())
}

fn assert_clean(what: &str, text: &str) {
    for p in PII {
        assert!(!text.contains(p), "{what} carries {p:?}");
    }
}

#[test]
fn named_tokens_audit_revocation_and_no_personal_data_anywhere() {
    let cluster = mock::cluster(2);
    let brokers = cluster.bootstrap_servers();
    let pii = serde_json::json!({"name": PII[0], "phone": PII[1], "email": PII[2], "national_id": PII[3]});
    let with_pii = |extra: serde_json::Value| {
        let mut v = pii.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let ts = "2026-11-02T10:00:00Z";
    let mut input = vec![
        // Valid events with personal fields beside the contract's.
        ev(
            "p1",
            "CPII01",
            "profile",
            ts,
            with_pii(serde_json::json!({"account_manager": "AM-007", "segment": "smb"})),
        ),
        ev(
            "p2",
            "CPII01",
            "order",
            ts,
            with_pii(serde_json::json!({"amount": 120000.0, "currency": "CNY"})),
        ),
        ev(
            "p3",
            "CPII01",
            "complaint",
            "2026-11-03T10:00:00Z",
            with_pii(serde_json::json!({})),
        ),
        ev(
            "p4",
            "CPII01",
            "survey",
            "2026-11-03T11:00:00Z",
            with_pii(serde_json::json!({"satisfaction": 1, "comment": PII[0]})),
        ),
        // Rejected ones: a negative amount, an unknown type, a missing customer id, a
        // personal value in a contract field, and bytes that are not JSON.
        ev(
            "r1",
            "CPII02",
            "order",
            ts,
            with_pii(serde_json::json!({"amount": -5})),
        ),
        ev(
            "r2",
            "CPII02",
            "gossip",
            ts,
            with_pii(serde_json::json!({})),
        ),
        (
            "CPII03".into(),
            with_pii(serde_json::json!({"event_id": "r3", "type": "visit", "ts": ts})).to_string(),
        ),
        ev(
            "r4",
            "CPII04",
            "profile",
            ts,
            serde_json::json!({"account_manager": "AM-007", "segment": {"email": PII[2], "phone": PII[1]}}),
        ),
        ev(
            "r5",
            "CPII05",
            "order",
            ts,
            serde_json::json!({"amount": PII[3]}),
        ),
        (
            "CPII06".into(),
            format!(
                "name={} phone={} email={} id={}",
                PII[0], PII[1], PII[2], PII[3]
            ),
        ),
    ];
    // A contract field holding personal data (a phone number as the account manager's id)
    // is the upstream breaking the contract, which says ids are pseudonymous; such values
    // are not guessed at, so they are not part of this test.
    input.push(ev(
        "ok1",
        "CPII07",
        "visit",
        ts,
        serde_json::json!({"channel": "web"}),
    ));
    produce(&brokers, &input);

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("# API clients\ncrm {CRM}\nconsole {CONSOLE}\n"),
    )
    .unwrap();
    let log = dir.path().join("service.log");
    let port = free_port();
    let service = Command::new(BIN)
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", &brokers)
        .env("CHURNWATCH__KAFKA__IDLE_TIMEOUT", "0s")
        .env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("CHURNWATCH__HTTP__TOKENS_FILE", &tokens)
        .env("CHURNWATCH__LOG__LEVEL", "debug")
        .env("CHURNWATCH_API_TOKEN", ENV_TOKEN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut service = Killed(service);
    wait_http(port);
    mock::wait_consumed(port, CRM, input.len() as u64);

    // Every token works under its own name; each customer look-up is audited with it.
    let mut answers = String::new();
    for (token, path) in [
        (CRM, "/v1/customers/CPII01"),
        (CONSOLE, "/v1/customers/CPII01/history"),
        (ENV_TOKEN, "/v1/warnings"),
        (CRM, "/v1/report"),
        (CRM, "/v1/status"),
        (CRM, "/v1/timeline"),
        (CRM, "/v1/customers/CPII02"),
        (CRM, "/v1/customers/CPII04"),
    ] {
        let (code, body) = http_get(port, path, Some(token)).unwrap();
        assert!(
            code == 200 || (code == 404 && path.contains("CPII0")),
            "{path}: {code} {body}"
        );
        answers.push_str(&body);
    }
    let (code, profile) = http_get(port, "/v1/customers/CPII01", Some(CRM)).unwrap();
    assert_eq!(code, 200, "{profile}");
    let p: serde_json::Value = serde_json::from_str(&profile).unwrap();
    assert_eq!(p["customer_id"], "CPII01");
    answers.push_str(&http_get(port, "/metrics", None).unwrap().1);
    answers.push_str(&http_get(port, "/", None).unwrap().1);
    assert_clean("an HTTP answer", &answers);

    // Actions: the token is needed, the body is checked (no free text in ids), and an
    // accepted one names the token as the actor.
    let ack = r#"{"customer_id":"CPII01","status":"acknowledged","outcome":"called"}"#;
    assert_eq!(
        http_post(port, "/v1/interventions", None, ack).unwrap().0,
        401
    );
    for bad in [
        r#"{"customer_id":"CPII01","status":"maybe"}"#,
        r#"{"customer_id":"CPII01","status":"done","actor":"Zhang Wei"}"#,
        r#"{"customer_id":"CPII01","status":"done","note":"free text"}"#,
        "not json",
    ] {
        let (code, body) = http_post(port, "/v1/interventions", Some(CRM), bad).unwrap();
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let (code, body) = http_post(port, "/v1/interventions", Some(CRM), ack).unwrap();
    assert_eq!(code, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"]["actor"], "crm");
    assert_eq!(v["event"]["type"], "intervention");

    // Revoke crm: delete its line. The file is re-read within a second of the change.
    std::fs::write(&tokens, format!("console {CONSOLE}\n")).unwrap();
    let later = SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&tokens)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let t0 = Instant::now();
    while http_get(port, "/v1/customers/CPII01", Some(CRM)).unwrap().0 != 401 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the revoked token still works"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        http_get(port, "/v1/customers/CPII01", Some(CONSOLE))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        http_get(port, "/v1/customers/CPII01", Some(ENV_TOKEN))
            .unwrap()
            .0,
        200
    );
    assert_eq!(http_get(port, "/v1/customers/CPII01", None).unwrap().0, 401);

    // Every output topic, dead letters included (decoded: they are JSON).
    for topic in &mock::TOPICS[1..] {
        for r in kafka::read_topic(&brokers, topic) {
            let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            assert_clean(&format!("a record of {topic}"), &v);
            if let Ok(j) = serde_json::from_str::<serde_json::Value>(&v) {
                assert_clean(&format!("a decoded record of {topic}"), &j.to_string());
            }
        }
    }
    let dead = kafka::read_topic(&brokers, "churnwatch.dead-letters");
    assert!(
        dead.len() >= 6,
        "the rejected events are dead letters: {}",
        dead.len()
    );

    // Stop, then read every log line (debug level).
    kafka::signal(service.0.id(), "TERM");
    let _ = service.0.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_clean("a log line", &text);
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("customer data access"))
        .collect();
    for (name, path) in [
        ("crm", "/v1/customers/CPII01"),
        ("console", "/v1/customers/CPII01/history"),
        ("default", "/v1/warnings"),
    ] {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(&format!("caller={name}")) && l.contains(path)),
            "no audit line for {name} reading {path}: {audit:?}"
        );
    }
    assert!(
        !audit
            .iter()
            .any(|l| l.contains("/v1/status") || l.contains("/v1/report")),
        "aggregates are not customer data: {audit:?}"
    );
}
