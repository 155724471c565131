//! `churnwatch replay --profiles` of the CDNOW sample to the end of 1997-09-30 against
//! lifetimes: per customer, P(alive) and expected purchases over the 30-day horizon equal
//! lifetimes' values (tests/data/cdnow_lifetimes_reference.csv, made once by the script
//! beside it with lifetimes 0.11.3 and the published parameters, churnwatch's defaults).

use std::collections::BTreeMap;
use std::process::Command;

#[path = "support/cdnow.rs"]
mod cdnow;

/// lifetimes' numbers for one customer.
struct Reference {
    frequency: u32,
    recency_weeks: f64,
    t_weeks: f64,
    p_alive: f64,
    expected_purchases: f64,
}

fn reference() -> BTreeMap<String, Reference> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cdnow_lifetimes_reference.csv"
    ))
    .unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("customer_id,frequency,recency_weeks,T_weeks,p_alive,expected_purchases")
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let f = |i: usize| c[i].parse::<f64>().unwrap();
            let r = Reference {
                frequency: c[1].parse().unwrap(),
                recency_weeks: f(2),
                t_weeks: f(3),
                p_alive: f(4),
                expected_purchases: f(5),
            };
            (c[0].to_string(), r)
        })
        .collect()
}

/// The sample's transactions after 1997-09-30, which `--until` rejects as from the future.
fn lines_after_the_end() -> usize {
    cdnow::sample()
        .lines()
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|d| d > "19970930"))
        .count()
}

#[test]
fn replay_profiles_match_lifetimes_on_cdnow_as_of_1997_09_30() {
    let dir = tempfile::tempdir().unwrap();
    let events = cdnow::events(dir.path());
    let (profiles, dead) = (dir.path().join("p.jsonl"), dir.path().join("d.jsonl"));
    // lifetimes' observation_period_end is a date and includes its transactions (at noon
    // here), so the replay runs to the last instant of that day: the day churnwatch
    // evaluates at is 1997-09-30 all the same, and T = 1997-09-30 − first purchase day.
    let o = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(["replay", "-q", "--until", "1997-09-30T23:59:59Z", "--input"])
        .arg(&events)
        .args(["--output", "/dev/null", "--profiles"])
        .arg(&profiles)
        .arg("--dead-letters")
        .arg(&dead)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dead = std::fs::read_to_string(dead).unwrap();
    assert_eq!(dead.lines().count(), lines_after_the_end());
    assert!(dead.lines().all(|l| l.contains("future_timestamp")));

    let want = reference();
    assert_eq!(want.len(), 2357);
    let text = std::fs::read_to_string(profiles).unwrap();
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "one profile per customer");
    let (mut worst_p, mut worst_e) = (0.0f64, 0.0f64);
    for p in &got {
        let id = p["customer_id"].as_str().unwrap();
        let w = &want[id];
        let f = &p["facts"];
        assert_eq!(f["as_of"], "1997-09-30T23:59:59Z", "{id}");
        // The inputs first, so that a difference says which definition differs.
        assert_eq!(f["purchase_days"], w.frequency + 1, "{id}: frequency");
        let recency = ((w.t_weeks - w.recency_weeks) * 7.0).round() as i64;
        assert_eq!(f["recency_days"], recency, "{id}: T − t_x");
        let pa = f["p_alive"].as_f64().unwrap();
        let e = f["expected_purchases"].as_f64().unwrap();
        worst_p = worst_p.max((pa - w.p_alive).abs());
        worst_e = worst_e.max((e - w.expected_purchases).abs());
        assert!(
            (pa - w.p_alive).abs() <= 1e-9,
            "{id}: P(alive) {pa} vs lifetimes {}",
            w.p_alive
        );
        assert!(
            (e - w.expected_purchases).abs() <= 1e-9,
            "{id}: expected purchases {e} vs lifetimes {}",
            w.expected_purchases
        );
    }
    eprintln!(
        "CDNOW vs lifetimes, {} customers: max |ΔP(alive)| = {worst_p:e}, max |Δexpected purchases| = {worst_e:e}",
        got.len()
    );
}
