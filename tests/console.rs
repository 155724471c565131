//! The console at `/` in headless Chromium, against `churnwatch run` on librdkafka's
//! in-process mock cluster with an API token: the inbox lists what `/v1/warnings`
//! reports, filtering by owner works, a customer page shows what `/v1/customers/{id}`
//! says, a new alert appears without a reload, no page shows the personal data an event
//! carried, and nothing is shown without the token. The checks themselves are in
//! `tests/browser/console.mjs` (Playwright); this test starts everything and feeds the
//! live alert when the page asks for it.
//!
//! Needs Node.js, Debian's `chromium` and `playwright-core`: `scripts/install-browser.sh`
//! installs the last two (scripts/test.sh runs it). Missing tools fail the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/kafka.rs"]
mod kafka;
#[path = "support/mock.rs"]
mod mock;
#[path = "support/net.rs"]
mod net;
use mock::{produce, wait_http, Killed};
use net::{free_port, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_churnwatch");
const TOKEN: &str = "console-test-token";
const PII_CUSTOMER: &str = "C0000007";
const LIVE_CUSTOMER: &str = "CLIVE0001";
const PII: [&str; 4] = [
    "Jane Roe",
    "+86 138 0013 8000",
    "jane.roe@example.com",
    "110101199003074518",
];

/// playwright-core's node_modules and the Chromium binary, or a panic that says how to
/// install them.
fn browser_tools() -> (PathBuf, PathBuf) {
    let modules = std::env::var_os("CHURNWATCH_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("CHURNWATCH_TOOLS")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let cache = std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| {
                            Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                        });
                    cache.join("churnwatch/tools")
                });
            tools.join("node/node_modules")
        });
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: the console's browser tests need Node.js 18+ (and scripts/install-browser.sh)"
    );
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core not found in {}: run scripts/install-browser.sh (or set CHURNWATCH_NODE_MODULES)",
        modules.display()
    );
    assert!(
        chromium.is_file(),
        "{} not found: run scripts/install-browser.sh (Debian's chromium), or set CHROMIUM",
        chromium.display()
    );
    (modules, chromium)
}

#[test]
fn console_in_headless_chromium() {
    let (modules, chromium) = browser_tools();
    let cluster = mock::cluster(2);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let gen = |extra: &[&str]| {
        let o = Command::new(BIN)
            // 2,000 customers: two account managers, so that filtering by owner shows a part.
            .args([
                "gen",
                "--customers",
                "2000",
                "--events",
                "40000",
                "--seed",
                "11",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    gen(&["--out", events.to_str().unwrap()]);
    gen(&["--brokers", &brokers, "--topic", "customer-events"]);
    let text = std::fs::read_to_string(&events).unwrap();
    let last_ts = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["ts"].as_str().map(str::to_string))
        // The generated bad records include timestamps such as "last tuesday".
        .filter(|t| churnwatch::core::time::parse_rfc3339(t).is_some())
        .max()
        .unwrap();
    // A CRM that sends more than the contract asks for: a name, a phone number, an
    // e-mail address and a national id beside the profile fields.
    let pii_event = serde_json::json!({
        "event_id": "pii-1", "customer_id": PII_CUSTOMER, "type": "profile", "ts": last_ts,
        "account_manager": "AM-001", "name": PII[0], "phone": PII[1], "email": PII[2], "national_id": PII[3],
    });
    produce(&brokers, &[(PII_CUSTOMER.into(), pii_event.to_string())]);
    let lines = text.lines().count() as u64 + 1;

    let port = free_port();
    let service = Command::new(BIN)
        .arg("run")
        .env("CHURNWATCH__KAFKA__BROKERS", &brokers)
        .env("CHURNWATCH__KAFKA__IDLE_TIMEOUT", "0s")
        .env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("CHURNWATCH_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _service = Killed(service);
    wait_http(port);
    mock::wait_consumed(port, TOKEN, lines);
    let (code, page) = http_get(port, "/", None).unwrap();
    assert_eq!(
        code, 200,
        "the console's page needs no token (it holds no data)"
    );
    assert!(page.contains("churnwatch console"), "{page}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.mjs");
    let mut node = Command::new("node")
        .arg(&script)
        .env("NODE_MODULES", &modules)
        .env("CHROMIUM", &chromium)
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}"))
        .env("CONSOLE_TOKEN", TOKEN)
        .env("PII", PII.join(","))
        .env("PII_CUSTOMER", PII_CUSTOMER)
        .env("LIVE_CUSTOMER", LIVE_CUSTOMER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = node.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(err), &mut s).unwrap();
        s
    });
    let mut out = String::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "need-alert" {
            // A new customer who complains without visiting or ordering: a high warning.
            let ev = |id: &str, kind: &str, extra: serde_json::Value| {
                let mut v = serde_json::json!({"event_id": id, "customer_id": LIVE_CUSTOMER, "type": kind, "ts": last_ts});
                v.as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                (LIVE_CUSTOMER.to_string(), v.to_string())
            };
            produce(
                &brokers,
                &[
                    ev(
                        "live-1",
                        "profile",
                        serde_json::json!({"account_manager": "AM-001", "segment": "smb"}),
                    ),
                    ev("live-2", "complaint", serde_json::json!({})),
                ],
            );
            // Say what the service made of it, for the failure message if the page does
            // not show it.
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Some((200, body)) =
                    http_get(port, &format!("/v1/customers/{LIVE_CUSTOMER}"), Some(TOKEN))
                {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    out.push_str(&format!(
                        "service: {LIVE_CUSTOMER} warning {}\n",
                        v["warning"]["level"]
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let status = node.wait().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        status.success(),
        "browser checks failed:\n{err}\nstdout:\n{out}"
    );
    assert!(out.contains("all browser checks passed"), "{out}\n{err}");
    // The acknowledge click is an `intervention` event on the input topic, keyed by the
    // customer, with the caller's token name as the actor.
    let acks: Vec<serde_json::Value> = kafka::read_topic(&brokers, "customer-events")
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(LIVE_CUSTOMER.as_bytes()))
        .filter_map(|r| serde_json::from_slice(r.value.as_deref()?).ok())
        .filter(|v: &serde_json::Value| v["type"] == "intervention")
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0]["status"], "acknowledged");
    assert_eq!(acks[0]["actor"], "default");
    assert!(churnwatch::core::time::parse_rfc3339(acks[0]["ts"].as_str().unwrap()).is_some());
    eprintln!("{err}");
}
