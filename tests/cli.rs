//! The binary's command contract: gen, replay (deterministic, stdin/stdout), check-config.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_churnwatch"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn gen(dir: &Path, seed: &str) -> PathBuf {
    let out = p(dir, &format!("events-{seed}.jsonl"));
    ok(&[
        "gen",
        "--customers",
        "300",
        "--events",
        "20000",
        "--seed",
        seed,
        "--bad",
        "0.01",
        "--out",
        s(&out),
    ]);
    out
}

#[test]
fn gen_is_seeded_and_reproducible() {
    let d = tempfile::tempdir().unwrap();
    let a = std::fs::read(gen(d.path(), "5")).unwrap();
    let b = std::fs::read(gen(d.path(), "5")).unwrap();
    let c = std::fs::read(gen(d.path(), "6")).unwrap();
    assert!(a == b, "the same seed gave different output");
    assert!(a != c, "another seed gave the same output");
    assert!(a.iter().filter(|&&b| b == b'\n').count() > 20_000);
}

#[test]
fn replay_is_deterministic_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let input = gen(d.path(), "9");
    let mut outs = Vec::new();
    for i in 0..2 {
        let (o, pr, dl) = (
            p(d.path(), &format!("o{i}")),
            p(d.path(), &format!("p{i}")),
            p(d.path(), &format!("d{i}")),
        );
        let r = ok(&[
            "replay",
            "--input",
            s(&input),
            "--output",
            s(&o),
            "--profiles",
            s(&pr),
            "--dead-letters",
            s(&dl),
            "--until",
            "2026-03-01T00:00:00Z",
        ]);
        let err = String::from_utf8_lossy(&r.stderr).to_string();
        assert!(
            err.contains("lines in") && err.contains("rejected"),
            "a summary on stderr: {err}"
        );
        outs.push((
            std::fs::read(o).unwrap(),
            std::fs::read(pr).unwrap(),
            std::fs::read(dl).unwrap(),
        ));
    }
    assert!(outs[0] == outs[1], "two replays of the same input differ");
    let (alerts, profiles, dead) = &outs[0];
    assert!(!alerts.is_empty() && !dead.is_empty());
    let text = String::from_utf8_lossy(alerts);
    assert!(
        text.contains(r#""trigger":"time""#),
        "--until fires deadlines"
    );
    // Profiles: one per line, sorted by customer id.
    let ids: Vec<String> = String::from_utf8_lossy(profiles)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["customer_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(ids.len() > 250);
}

#[test]
fn replay_reads_stdin_and_writes_stdout() {
    let d = tempfile::tempdir().unwrap();
    let input = gen(d.path(), "3");
    let file_out = p(d.path(), "out.jsonl");
    ok(&[
        "replay",
        "-q",
        "--input",
        s(&input),
        "--output",
        s(&file_out),
    ]);
    let mut child = bin()
        .args(["replay", "-q", "--input", "-", "--output", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success());
    assert!(o.stderr.is_empty(), "-q prints nothing");
    // Identical but for the source name (`stdin` instead of `file:…`).
    let strip = |b: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                if let Some(src) = v.get_mut("source").and_then(|s| s.as_object_mut()) {
                    src.remove("topic");
                }
                v
            })
            .collect()
    };
    let (a, b) = (strip(&o.stdout), strip(&std::fs::read(file_out).unwrap()));
    assert!(a.len() > 1000);
    assert!(
        a == b,
        "stdout differs from the file output ({} vs {} lines)",
        a.len(),
        b.len()
    );
}

#[test]
fn replay_survives_hostile_input() {
    let d = tempfile::tempdir().unwrap();
    let input = p(d.path(), "hostile.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    f.write_all(b"\xff\xfe garbage\n\n   \n{\"a\":1}\r\n")
        .unwrap();
    f.write_all(&vec![b'x'; 3 << 20]).unwrap(); // one 3 MiB line
    f.write_all(b"\n{\"event_id\":\"e\",\"customer_id\":\"C\",\"type\":\"visit\",\"ts\":\"2026-01-01T00:00:00Z\"}").unwrap();
    drop(f);
    let dl = p(d.path(), "dl.jsonl");
    ok(&[
        "replay",
        "-q",
        "--input",
        s(&input),
        "--output",
        s(&p(d.path(), "o")),
        "--dead-letters",
        s(&dl),
        "--profiles",
        s(&p(d.path(), "p")),
    ]);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["invalid_json", "missing_field", "too_large"]);
    assert_eq!(dead[2]["original"]["bytes"], 3 << 20);
    assert_eq!(dead[2]["original"]["mode"], "redacted");
    assert_eq!(
        std::fs::read_to_string(p(d.path(), "p"))
            .unwrap()
            .lines()
            .count(),
        1,
        "the valid event after them was applied"
    );
}

#[test]
fn check_config_explains_and_rejects() {
    let o = ok(&["check-config"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("high_value when days since the last order is below 90"),
        "{text}"
    );
    assert!(
        text.contains("silence (medium) when days without an order"),
        "{text}"
    );

    let d = tempfile::tempdir().unwrap();
    let bad = p(d.path(), "bad.toml");
    std::fs::write(&bad, "[[tiers.rules]]\nname = \"vip\"\nall = [\"orders_90d >= 5\", \"orders_90d < 2\"]\naction = \"x\"\n").unwrap();
    let o = run(&["check-config", s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rule `vip` can never match: orders_90d >= 5 and orders_90d < 2"),
        "{err}"
    );

    std::fs::write(&bad, "[facts]\nwindow_days = [30]\n").unwrap();
    let err = String::from_utf8_lossy(&run(&["check-config", s(&bad)]).stderr).to_string();
    assert!(
        err.contains("window_days"),
        "the unknown key is named: {err}"
    );

    let err = String::from_utf8_lossy(
        &run(&["replay", "--input", "/nonexistent.jsonl", "--output", "-"]).stderr,
    )
    .to_string();
    assert!(err.contains("cannot open /nonexistent.jsonl"), "{err}");
    // Each cause once (the chain used to repeat what the message already said).
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    std::fs::write(&bad, "[facts]\nwindows_days = [90, 30]\n").unwrap();
    let err = String::from_utf8_lossy(&run(&["check-config", s(&bad)]).stderr).to_string();
    assert_eq!(err.matches("ascending order").count(), 1, "{err}");
}

#[test]
fn replay_print_shows_readable_alerts() {
    let d = tempfile::tempdir().unwrap();
    let input = gen(d.path(), "4");
    let o = ok(&[
        "replay",
        "--print",
        "--input",
        s(&input),
        "--output",
        s(&p(d.path(), "o")),
        "--until",
        "2026-03-01T00:00:00Z",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    let warning = err
        .lines()
        .find(|l| l.contains(" WARNING "))
        .expect("a warning line");
    assert!(
        warning.contains(" owner ") && warning.contains(" due ") && warning.contains(" | "),
        "{warning}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains(" tier ") && l.contains(" -> ")),
        "tier lines"
    );
    assert!(
        err.lines().any(|l| l.contains(" cleared ")),
        "clearance lines"
    );
    assert!(
        err.lines().any(|l| l.contains(" rejected ")),
        "dead-letter lines"
    );
}

#[test]
fn check_config_shows_kafka_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k.toml");
    std::fs::write(
        &f,
        "[kafka]\nbrokers = \"b1:9093\"\n[kafka.client]\nsecurity.protocol = \"SASL_SSL\"\nsasl.password = \"env:CW_TEST_SECRET\"\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("check-config")
        .arg(&f)
        .env("CW_TEST_SECRET", "s3cr3t-value")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("brokers b1:9093"), "{out}");
    assert!(out.contains("security.protocol = \"SASL_SSL\""), "{out}");
    assert!(out.contains("sasl.password = \"***\""), "{out}");
    assert!(!out.contains("s3cr3t-value"), "{out}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("check-config")
        .arg(&f)
        .env_remove("CW_TEST_SECRET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CW_TEST_SECRET is not set"));
    // Nothing is called valid before every part is checked.
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .arg("check-config")
        .arg(&f)
        .env("CW_TEST_SECRET", "x")
        .env("CHURNWATCH__HTTP__LISTEN", "8080")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("http.listen = \"8080\" is not an address to listen on"),
        "{err}"
    );
}

/// A reader that stops early (`replay … --output - | head`) is not a failure: exit 0,
/// nothing on stderr, as other command-line tools do.
#[test]
fn a_closed_output_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let input = gen(dir.path(), "5");
    let mut child = bin()
        .args(["replay", "--input", s(&input), "--output", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take()); // the reader goes away while replay is still writing
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}
