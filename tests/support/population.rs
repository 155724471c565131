//! Random customer populations for the property tests: event kinds, customers, their
//! lines, and orders of delivery (shared by tests/properties.rs and
//! tests/properties_facts.rs).

#![allow(dead_code)]

use std::collections::BTreeMap;

use churnwatch::core::output::{Output, Profile};
use churnwatch::core::time::Ts;
use proptest::prelude::*;

use super::common::*;

#[derive(Debug, Clone)]
pub enum K {
    Order(u32),
    Refund(u32),
    Visit(u8),
    Complaint,
    Resolved,
    Survey(u8, Option<u8>),
    /// Campaign actions on campaign X or Y (index 0 or 1).
    Touch(u8),
    Participate(u8),
    Convert(u8),
    Profile(u8),
    /// An intervention on the open warning: status index, actor index.
    Act(u8, u8),
}

pub const CHANNELS: [&str; 3] = ["app", "store", "web"];
pub const CAMPAIGNS: [&str; 2] = ["X", "Y"];

pub fn kind() -> impl Strategy<Value = K> {
    prop_oneof![
        4 => (1u32..5_000_000).prop_map(K::Order),
        1 => (1u32..100_000).prop_map(K::Refund),
        4 => (0u8..3).prop_map(K::Visit),
        1 => Just(K::Complaint),
        1 => Just(K::Resolved),
        1 => (1u8..=5, proptest::option::of(0u8..=10)).prop_map(|(s, n)| K::Survey(s, n)),
        1 => (0u8..2).prop_map(K::Touch),
        1 => (0u8..2).prop_map(K::Participate),
        1 => (0u8..2).prop_map(K::Convert),
        1 => (0u8..3).prop_map(K::Profile),
        2 => (0u8..4, 0u8..3).prop_map(|(s, a)| K::Act(s, a)),
    ]
}

/// (day 0..300, second of day, kind): within one retention period so re-deliveries are
/// always inside the remembered history.
pub type Ev = (i64, i64, K);

pub fn customer() -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec((0i64..300, 0i64..86_400, kind()), 1..25).prop_map(|mut v| {
        v.sort_by_key(|(d, s, _)| (*d, *s));
        v
    })
}

pub fn population() -> impl Strategy<Value = Vec<Vec<Ev>>> {
    proptest::collection::vec(customer(), 1..5)
}

pub fn extra(k: &K) -> (&'static str, String) {
    match k {
        K::Order(c) => (
            "order",
            format!(
                r#""amount":{}.{:02},"channel":"{}","category":"{}""#,
                c / 100,
                c % 100,
                CHANNELS[(*c % 3) as usize],
                ["a", "b"][(*c % 2) as usize]
            ),
        ),
        K::Refund(c) => ("refund", format!(r#""amount":{}.{:02}"#, c / 100, c % 100)),
        K::Visit(ch) => (
            "visit",
            format!(r#""channel":"{}""#, CHANNELS[*ch as usize]),
        ),
        K::Complaint => ("complaint", String::new()),
        K::Resolved => ("complaint_resolved", String::new()),
        K::Survey(s, Some(n)) => ("survey", format!(r#""satisfaction":{s},"nps":{n}"#)),
        K::Survey(s, None) => ("survey", format!(r#""satisfaction":{s}"#)),
        K::Touch(c) => (
            "campaign",
            format!(
                r#""campaign_id":"{}","action":"touched","cost":1.5"#,
                CAMPAIGNS[*c as usize]
            ),
        ),
        K::Participate(c) => (
            "campaign",
            format!(
                r#""campaign_id":"{}","action":"participated""#,
                CAMPAIGNS[*c as usize]
            ),
        ),
        K::Convert(c) => (
            "campaign",
            format!(
                r#""campaign_id":"{}","action":"converted""#,
                CAMPAIGNS[*c as usize]
            ),
        ),
        K::Profile(a) => ("profile", format!(r#""account_manager":"AM-{a}""#)),
        K::Act(st, a) => (
            "intervention",
            format!(
                r#""status":"{}","actor":"AM-{a}","outcome":"o{st}""#,
                ["acknowledged", "in_progress", "done", "dismissed"][*st as usize]
            ),
        ),
    }
}

#[derive(Debug, Clone)]
pub struct Line {
    pub ts: Ts,
    pub cust: usize,
    pub bytes: Vec<u8>,
}

pub fn lines_of(pop: &[Vec<Ev>]) -> Vec<Vec<Line>> {
    pop.iter()
        .enumerate()
        .map(|(ci, evs)| {
            evs.iter()
                .enumerate()
                .map(|(j, (d, s, k))| {
                    let (kind, ex) = extra(k);
                    let ts = at(*d, *s);
                    Line {
                        ts,
                        cust: ci,
                        bytes: line(&format!("c{ci}-{j}"), &format!("C{ci}"), kind, ts, &ex),
                    }
                })
                .collect()
        })
        .collect()
}

/// All lines in event-time order (ties by customer).
pub fn time_sorted(per: &[Vec<Line>]) -> Vec<Line> {
    let mut all: Vec<Line> = per.iter().flatten().cloned().collect();
    all.sort_by_key(|l| (l.ts, l.cust));
    all
}

/// Any merge that keeps each customer's own order.
pub fn merge(per: &[Vec<Line>], choices: &[usize]) -> Vec<Line> {
    let mut idx = vec![0usize; per.len()];
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let open: Vec<usize> = (0..per.len()).filter(|&c| idx[c] < per[c].len()).collect();
        if open.is_empty() {
            return out;
        }
        let c = open[choices.get(k).copied().unwrap_or(0) % open.len()];
        k += 1;
        out.push(per[c][idx[c]].clone());
        idx[c] += 1;
    }
}

pub const UNTIL_DAYS: i64 = 700;

pub struct Run {
    pub outputs: Vec<serde_json::Value>,
    pub dead_letters: usize,
    pub profiles: Vec<Profile>,
}

pub fn run(h: &mut Harness, lines: &[Vec<u8>]) -> Run {
    h.ctx.emitted_at = Some(0);
    for l in lines {
        h.send(l);
    }
    h.advance(at(UNTIL_DAYS, 0));
    let outs = h.take();
    let dead_letters = outs
        .iter()
        .filter(|o| matches!(o, Output::DeadLetter(_)))
        .count();
    let outputs = json(&outs)
        .into_iter()
        .filter(|v| v["schema"] != "churnwatch.dead_letter.v2")
        .map(|mut v| {
            // The input position differs when lines are inserted; everything else must not.
            v.as_object_mut().unwrap().remove("source");
            v
        })
        .collect();
    Run {
        outputs,
        dead_letters,
        profiles: h.p.profiles_sorted(),
    }
}

pub fn bytes(lines: &[Line]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.bytes.clone()).collect()
}

pub fn by_customer(outputs: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in outputs {
        m.entry(o["customer_id"].as_str().unwrap().to_string())
            .or_default()
            .push(o.to_string());
    }
    m
}

/// 256 cases per property in CI; `PROPTEST_CASES=5000` for a longer run.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}
