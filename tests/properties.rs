//! Property tests of the processor's invariants (see STYLE.md "Tests").

mod common;

use std::collections::BTreeMap;

use churnwatch::core::bgnbd;
use churnwatch::core::days;
use churnwatch::core::facts::{DayCounts, Facts, Running};
use churnwatch::core::output::{Output, Profile};
use churnwatch::core::settings::BgNbdParams;
use churnwatch::core::time::{day_of, day_start, parse_rfc3339, Ts};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Debug, Clone)]
enum K {
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

const CHANNELS: [&str; 3] = ["app", "store", "web"];
const CAMPAIGNS: [&str; 2] = ["X", "Y"];

fn kind() -> impl Strategy<Value = K> {
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
type Ev = (i64, i64, K);

fn customer() -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec((0i64..300, 0i64..86_400, kind()), 1..25).prop_map(|mut v| {
        v.sort_by_key(|(d, s, _)| (*d, *s));
        v
    })
}

fn population() -> impl Strategy<Value = Vec<Vec<Ev>>> {
    proptest::collection::vec(customer(), 1..5)
}

fn extra(k: &K) -> (&'static str, String) {
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
struct Line {
    ts: Ts,
    cust: usize,
    bytes: Vec<u8>,
}

fn lines_of(pop: &[Vec<Ev>]) -> Vec<Vec<Line>> {
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
fn time_sorted(per: &[Vec<Line>]) -> Vec<Line> {
    let mut all: Vec<Line> = per.iter().flatten().cloned().collect();
    all.sort_by_key(|l| (l.ts, l.cust));
    all
}

/// Any merge that keeps each customer's own order.
fn merge(per: &[Vec<Line>], choices: &[usize]) -> Vec<Line> {
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

const UNTIL_DAYS: i64 = 700;

struct Run {
    outputs: Vec<serde_json::Value>,
    dead_letters: usize,
    profiles: Vec<Profile>,
}

fn run(h: &mut Harness, lines: &[Vec<u8>]) -> Run {
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

fn bytes(lines: &[Line]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.bytes.clone()).collect()
}

fn by_customer(outputs: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in outputs {
        m.entry(o["customer_id"].as_str().unwrap().to_string())
            .or_default()
            .push(o.to_string());
    }
    m
}

/// 256 cases per property in CI; `PROPTEST_CASES=5000` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Re-delivering any subset of events, at any later point, changes nothing.
    #[test]
    fn redelivery_changes_nothing(pop in population(), dups in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..40), 0..30)) {
        let base = time_sorted(&lines_of(&pop));
        // A copy of line i is delivered after line i + delay of the original stream, so
        // it always comes after its original (anything else would be reordering).
        let mut after: Vec<Vec<Vec<u8>>> = vec![Vec::new(); base.len()];
        for (i, delay) in dups {
            let i = i.index(base.len());
            after[(i + delay).min(base.len() - 1)].push(base[i].bytes.clone());
        }
        let mut with_dups = Vec::new();
        for (l, copies) in base.iter().zip(after) {
            with_dups.push(l.bytes.clone());
            with_dups.extend(copies);
        }
        let a = run(&mut Harness::new(), &bytes(&base));
        let b = run(&mut Harness::new(), &with_dups);
        prop_assert_eq!(a.outputs, b.outputs);
        prop_assert_eq!(a.profiles, b.profiles);
    }

    /// Per-customer results do not depend on how customers' events interleave.
    #[test]
    fn interleaving_changes_no_customer(pop in population(), c1 in proptest::collection::vec(0usize..8, 0..200), c2 in proptest::collection::vec(0usize..8, 0..200)) {
        let per = lines_of(&pop);
        // Arbitrary interleavings put events far behind the newest; a lateness larger than
        // the span keeps the watermark from firing deadlines mid-stream, which is what a
        // watermark means (see README "Time").
        let cfg = |c: &mut churnwatch::core::CoreConfig| c.time.allowed_lateness = "3650d".into();
        let a = run(&mut Harness::with_config(cfg), &bytes(&merge(&per, &c1)));
        let b = run(&mut Harness::with_config(cfg), &bytes(&merge(&per, &c2)));
        prop_assert_eq!(by_customer(&a.outputs), by_customer(&b.outputs));
        prop_assert_eq!(a.profiles, b.profiles);
    }

    /// Time-ordered input with ties in any order: the same per-customer results with the
    /// default lateness, deadlines firing from the watermark mid-stream.
    #[test]
    fn tie_order_changes_no_customer(pop in population(), seed in any::<u64>()) {
        let per = lines_of(&pop);
        let a_lines = time_sorted(&per);
        let mut b_lines = a_lines.clone();
        b_lines.sort_by_key(|l| (l.ts, (l.cust as u64).wrapping_mul(seed | 1) % 7, l.cust));
        let a = run(&mut Harness::new(), &bytes(&a_lines));
        let b = run(&mut Harness::new(), &bytes(&b_lines));
        prop_assert_eq!(by_customer(&a.outputs), by_customer(&b.outputs));
        prop_assert_eq!(a.profiles, b.profiles);
    }

    /// Lines that are rejected change no output but the dead letters.
    #[test]
    fn rejected_lines_only_add_dead_letters(pop in population(), bad in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..6, proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
        let base = bytes(&time_sorted(&lines_of(&pop)));
        let mut mixed = base.clone();
        for (i, which, noise) in &bad {
            let l: Vec<u8> = match which {
                0 => [b"\x00".as_slice(), noise].concat(),
                1 => br#"{"event_id":"x","customer_id":"C0","type":"order","ts":"2026-02-01T00:00:00Z","amount":-1}"#.to_vec(),
                2 => br#"{"event_id":"x","customer_id":"C0","type":"gift","ts":"2026-02-01T00:00:00Z"}"#.to_vec(),
                3 => br#"{"event_id":"x","type":"visit","ts":"2026-02-01T00:00:00Z"}"#.to_vec(),
                4 => br#"{"event_id":"x","customer_id":"C1","type":"visit","ts":"2026-13-01T00:00:00Z"}"#.to_vec(),
                _ => br#"[{"event_id":"x"}]"#.to_vec(),
            };
            let pos = i.index(mixed.len() + 1);
            mixed.insert(pos, l);
        }
        let a = run(&mut Harness::new(), &base);
        let b = run(&mut Harness::new(), &mixed);
        prop_assert_eq!(a.outputs, b.outputs);
        prop_assert_eq!(a.profiles, b.profiles);
        prop_assert_eq!(b.dead_letters, bad.len());
    }

    /// The incremental record equals a from-scratch fold over the same events.
    #[test]
    fn incremental_equals_fold(evs in customer(), extra_days in 0i64..400) {
        let per = lines_of(std::slice::from_ref(&evs));
        let mut h = Harness::new();
        for l in &per[0] { h.send(&l.bytes); }
        let last = per[0].last().unwrap().ts;
        h.advance(last + extra_days * 86_400_000);
        let p = h.profile("C0");
        let as_of = parse_rfc3339(&p.facts.as_of).unwrap();
        let today = day_of(as_of);
        for (wi, n) in [30i64, 90, 180, 365].into_iter().enumerate() {
            let inside: Vec<&Ev> = evs.iter().filter(|(d, s, _)| day_of(at(*d, *s)) as i64 > today as i64 - n).collect();
            let w = &p.facts.windows[wi];
            let count = |f: &dyn Fn(&K) -> bool| inside.iter().filter(|(_, _, k)| f(k)).count() as u32;
            prop_assert_eq!(w.orders, count(&|k| matches!(k, K::Order(_))));
            prop_assert_eq!(w.visits, count(&|k| matches!(k, K::Visit(_))));
            prop_assert_eq!(w.complaints, count(&|k| matches!(k, K::Complaint)));
            prop_assert_eq!(w.surveys, count(&|k| matches!(k, K::Survey(..))));
            prop_assert_eq!(w.campaign_touches, count(&|k| matches!(k, K::Touch(_))));
            prop_assert_eq!(w.campaign_participations, count(&|k| matches!(k, K::Participate(_))));
            prop_assert_eq!(w.campaign_conversions, count(&|k| matches!(k, K::Convert(_))));
            let cents: i64 = inside.iter().map(|(_, _, k)| match k { K::Order(c) => *c as i64, K::Refund(c) => -(*c as i64), _ => 0 }).sum();
            prop_assert_eq!(w.monetary, cents as f64 / 100.0);
            let sat: u32 = inside.iter().map(|(_, _, k)| match k { K::Survey(s, _) => *s as u32 * 10, _ => 0 }).sum();
            prop_assert_eq!(w.satisfaction, (w.surveys > 0).then(|| sat as f64 / 10.0 / w.surveys as f64));
        }
        let orders: Vec<i64> = evs.iter().filter(|(_, _, k)| matches!(k, K::Order(_))).map(|(d, _, _)| *d).collect();
        prop_assert_eq!(p.facts.lifetime_orders as usize, orders.len());
        let mut days = orders.clone();
        days.dedup();
        prop_assert_eq!(p.facts.purchase_days as usize, days.len());
        let value: i64 = evs.iter().map(|(_, _, k)| match k { K::Order(c) => *c as i64, K::Refund(c) => -(*c as i64), _ => 0 }).sum();
        prop_assert_eq!(p.facts.lifetime_value, value as f64 / 100.0);
        let mut open = 0u16;
        let mut nps = None;
        for (_, _, k) in &evs {
            match k { K::Complaint => open += 1, K::Resolved => open = open.saturating_sub(1), K::Survey(_, Some(n)) => nps = Some(*n), _ => {} }
        }
        prop_assert_eq!(p.facts.open_complaints, open);
        prop_assert_eq!(p.facts.last_nps, nps);
        let t0 = day_of(at(0, 0)) as i64;
        prop_assert_eq!(p.facts.recency_days, orders.last().map(|d| today as i64 - (t0 + d)));
        // Preferred channel over 365 days, ties to the alphabetically first.
        let mut ch: BTreeMap<&str, u32> = BTreeMap::new();
        for (d, s, k) in &evs {
            if day_of(at(*d, *s)) as i64 > today as i64 - 365 {
                match k {
                    K::Visit(c) => *ch.entry(CHANNELS[*c as usize]).or_default() += 1,
                    K::Order(c) => *ch.entry(CHANNELS[(*c % 3) as usize]).or_default() += 1,
                    _ => {}
                }
            }
        }
        let best = ch.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(k, _)| k.to_string());
        prop_assert_eq!(p.facts.preferred_channel.map(|c| c.to_string()), best);
        let cdnow = BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
        let want = match (orders.first(), orders.last()) {
            (Some(f), Some(l)) => Some(bgnbd::p_alive(&cdnow, (days.len() - 1) as f64, (l - f) as f64 / 7.0, (today as i64 - t0 - f) as f64 / 7.0)),
            _ => None,
        };
        prop_assert_eq!(p.facts.p_alive, want);
    }

    /// A processor restored from snapshots continues exactly like one that never stopped,
    /// also when it consumes again from an older checkpoint (offsets it already applied are
    /// skipped per customer): the changelog's exactly-once-state guarantee, in the core.
    #[test]
    fn restore_continues_identically(pop in population(), split in any::<prop::sample::Index>(), back in 0usize..20) {
        let lines = bytes(&time_sorted(&lines_of(&pop)));
        let k = split.index(lines.len() + 1);
        let mut a = Harness::new();
        a.ctx.emitted_at = Some(0);
        for l in &lines[..k] { a.send(l); }
        a.take();
        for l in &lines[k..] { a.send(l); }
        a.advance(at(UNTIL_DAYS, 0));
        let want = json(&a.take());

        let mut b = Harness::new();
        b.ctx.emitted_at = Some(0);
        for l in &lines[..k] { b.send(l); }
        let snaps: Vec<Vec<u8>> = b.p.customer_ids().iter().map(|id| b.p.snapshot(id).unwrap()).collect();
        let mut c = Harness::new();
        c.ctx.emitted_at = Some(0);
        for snap in &snaps { c.p.restore(snap).unwrap(); }
        c.p.restore_time(b.p.stream_time(), b.p.watermark());
        prop_assert_eq!(c.p.tier_counts(), b.p.tier_counts());
        prop_assert_eq!(c.p.level_counts(), b.p.level_counts());
        let j = k.saturating_sub(back);
        c.offset = j as i64; // line i has offset i + 1
        for l in &lines[j..] { c.send(l); }
        c.advance(at(UNTIL_DAYS, 0));
        prop_assert_eq!(json(&c.take()), want);
        prop_assert_eq!(c.p.profiles_sorted(), a.p.profiles_sorted());
        // A snapshot of a restored customer is the snapshot it was restored from.
        for snap in &snaps {
            let mut d = Harness::new();
            d.p.restore(snap).unwrap();
            let id = d.p.customer_ids().pop().unwrap();
            prop_assert_eq!(d.p.snapshot(&id).unwrap(), snap.clone());
        }
    }

    /// The live report (sums and day timeline updated per customer change) equals a pass
    /// over the state, on any interleaving (late events), after erasures, at any later day,
    /// and in a processor restored from snapshots.
    #[test]
    fn live_report_equals_a_pass_over_the_state(
        pop in population(),
        choices in proptest::collection::vec(0usize..8, 0..200),
        erase in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..5), 0..3),
        days in proptest::collection::vec(300i64..700, 1..4),
    ) {
        let mut lines = bytes(&merge(&lines_of(&pop), &choices));
        for (i, (at_line, c)) in erase.iter().enumerate() {
            let k = at_line.index(lines.len() + 1);
            let ts = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
            lines.insert(k, line(&format!("x{i}"), &format!("C{c}"), "erase", ts, ""));
        }
        fn strip(mut r: churnwatch::core::report::ReportSums) -> churnwatch::core::report::ReportSums {
            r.analytics = false;
            r.value_tiers = [0; 4];
            r.abc = [(0, 0); 3];
            r.core = (0, 0);
            r.spend_365_cents = 0;
            r.campaigns.clear();
            r
        }
        let mut h = Harness::new();
        for l in &lines { h.send(l); }
        let mut days = days;
        days.sort_unstable();
        for d in &days {
            h.advance(at(*d, 0));
            let t = at(*d, 0);
            prop_assert_eq!(strip(h.p.report(t)), h.p.report_by_scan(t));
        }
        let mut c = Harness::new();
        for id in h.p.customer_ids() {
            c.p.restore(&h.p.snapshot(&id).unwrap()).unwrap();
        }
        let t = at(*days.last().unwrap(), 0);
        prop_assert_eq!(strip(c.p.report(t)), c.p.report_by_scan(t));
    }

    /// Campaign effect counts customers, not events (DOMAIN §6): the distinct customers per
    /// funnel stage and the revenue of converted customers in the 30-day attribution
    /// window equal a model over each customer's own events, on any interleaving, with
    /// redeliveries, and again after a restore from the customers' snapshots plus the
    /// checkpoint's flows.
    #[test]
    fn campaign_figures_count_each_customer_once(
        pop in population(),
        choices in proptest::collection::vec(0usize..8, 0..200),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut lines = bytes(&merge(&lines_of(&pop), &choices));
        for d in &dups {
            let l = lines[d.index(lines.len())].clone();
            lines.push(l);
        }
        let cfg = |c: &mut churnwatch::core::CoreConfig| c.time.allowed_lateness = "3650d".into();
        let mut h = Harness::with_config(cfg);
        for l in &lines { h.send(l); }

        // campaign → (customers per stage, revenue cents, events per action)
        let mut want: BTreeMap<&str, ([i64; 3], i64, [u64; 3])> = BTreeMap::new();
        for evs in &pop {
            let mut stage = [0usize; 2];
            let mut converted: [Option<i64>; 2] = [None; 2];
            for (d, _, k) in evs {
                let (c, s) = match k {
                    K::Touch(c) => (*c as usize, 1),
                    K::Participate(c) => (*c as usize, 2),
                    K::Convert(c) => (*c as usize, 3),
                    _ => continue,
                };
                stage[c] = stage[c].max(s);
                if s == 3 {
                    converted[c].get_or_insert(*d);
                }
                want.entry(CAMPAIGNS[c]).or_default().2[s - 1] += 1;
            }
            for c in 0..2 {
                let w = want.entry(CAMPAIGNS[c]).or_default();
                for n in w.0.iter_mut().take(stage[c]) {
                    *n += 1;
                }
                if let Some(from) = converted[c] {
                    w.1 += evs.iter().filter(|(d, _, _)| (from..from + 30).contains(d)).map(|(_, _, k)| match k {
                        K::Order(a) => *a as i64,
                        K::Refund(a) => -(*a as i64),
                        _ => 0,
                    }).sum::<i64>();
                }
            }
        }
        want.retain(|_, w| w.0[0] > 0);
        let figures = |lines: Vec<churnwatch::core::campaign::CampaignSums>| -> BTreeMap<String, ([i64; 3], i64, [u64; 3])> {
            lines.into_iter().map(|l| (l.campaign, (l.customers, l.revenue_cents, [l.touched, l.participated, l.converted]))).collect()
        };
        let got = figures(h.p.campaign_lines());
        prop_assert_eq!(&got, &want.iter().map(|(k, v)| (k.to_string(), *v)).collect());

        let mut c = Harness::with_config(cfg);
        for id in h.p.customer_ids() {
            c.p.restore(&h.p.snapshot(&id).unwrap()).unwrap();
        }
        c.p.restore_campaigns(&h.p.campaign_lines(), i64::MAX);
        prop_assert_eq!(figures(c.p.campaign_lines()), got);
    }

    /// A silence warning fires exactly when 90 days pass without an order.
    #[test]
    fn silence_fires_exactly_at_90_days(orders in proptest::collection::vec((0i64..200, 0i64..86_400, 1u32..1_000_000), 1..10)) {
        let evs: Vec<Ev> = orders.iter().map(|(d, s, c)| (*d, *s, K::Order(*c))).collect();
        let per = lines_of(&[{ let mut e = evs; e.sort_by_key(|(d, s, _)| (*d, *s)); e }]);
        let mut h = Harness::new();
        for l in &per[0] { h.send(&l.bytes); }
        h.take();
        let last_day = day_of(per[0].last().unwrap().ts);
        let deadline = day_start(last_day + 90);
        h.advance(deadline - 1);
        prop_assert!(warnings(&h.take()).is_empty());
        h.advance(deadline);
        let outs = h.take();
        let w = warnings(&outs);
        prop_assert_eq!(w.len(), 1);
        prop_assert_eq!(w[0].reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(), vec!["silence"]);
        prop_assert_eq!(parse_rfc3339(&w[0].event_time), Some(deadline));
    }

    /// Issue 18: the facts an evaluation keeps incrementally ([`Running`]: running sums
    /// per period, days taken out as they leave) equal a from-scratch fold of the
    /// customer's history at every step: after each event and each advance, at the
    /// customer's clock and then along a walk over later instants that mixes the deadline
    /// candidates the search visits with arbitrary jumps; and the same in a processor
    /// restored from the customer's snapshot midway, which then goes on in step.
    #[test]
    fn running_facts_equal_the_fold(
        evs in customer(),
        advances in proptest::collection::vec((any::<prop::sample::Index>(), 0i64..200), 0..6),
        walk in proptest::collection::vec((any::<bool>(), 0i64..120, 0i64..86_400), 1..24),
        split in any::<prop::sample::Index>(),
        daily in any::<bool>(),
    ) {
        let cfg = |c: &mut churnwatch::core::CoreConfig| {
            if daily {
                // A continuously changing metric: every step recomputes P(alive).
                c.warnings.rules.push(churnwatch::core::settings::WarningRuleConfig {
                    segments: Default::default(),
                    sla: None,
                    name: "fading".into(),
                    level: "high".into(),
                    all: vec!["p_alive < 0.5".into(), "lifetime_orders >= 2".into()],
                    any: vec![],
                });
            }
        };
        let per = lines_of(std::slice::from_ref(&evs));
        let k = split.index(per[0].len() + 1);
        let mut a = Harness::with_config(cfg);
        let mut b: Option<Harness> = None;
        for (i, l) in per[0].iter().enumerate() {
            if i == k {
                let mut c = Harness::with_config(cfg);
                if let Some(snap) = a.p.snapshot("C0") {
                    c.p.restore(&snap).unwrap();
                    c.p.restore_time(a.p.stream_time(), a.p.watermark());
                    c.offset = a.offset;
                }
                b = Some(c);
            }
            for h in std::iter::once(&mut a).chain(b.as_mut()) {
                h.send(&l.bytes);
                running_equals_fold(h, &walk)?;
                for (at_ev, days) in &advances {
                    if at_ev.index(per[0].len()) == i {
                        h.advance(l.ts + days * 86_400_000);
                        running_equals_fold(h, &walk)?;
                    }
                }
            }
        }
        if let Some(b) = &b {
            let (ra, rb) = (a.p.record("C0").unwrap(), b.p.record("C0").unwrap());
            let s = a.p.settings();
            let fa = Facts::compute(&ra.days, ra, s, ra.clock);
            let fb = Facts::compute(&rb.days, rb, s, rb.clock);
            same_facts(&fa, &fb)?;
        }
    }
}

/// Facts compared field by field, P(alive) by its bits (so equal NaNs are equal).
fn same_facts(a: &Facts, b: &Facts) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.p_alive.map(f64::to_bits), b.p_alive.map(f64::to_bits));
    let plain = |f: &Facts| Facts {
        p_alive: None,
        ..f.clone()
    };
    prop_assert_eq!(plain(a), plain(b));
    Ok(())
}

/// Builds [`Running`] from C0's record at its clock and moves it along `walk` (each step
/// to the next deadline candidate, or a jump of days and seconds), comparing every step
/// with [`Facts::compute`] at the same instant.
fn running_equals_fold(h: &Harness, walk: &[(bool, i64, i64)]) -> Result<(), TestCaseError> {
    let Some(rec) = h.p.record("C0") else {
        return Ok(());
    };
    let s = h.p.settings();
    let decoded: Vec<DayCounts> = days::iter(&rec.days)
        .map(|e| DayCounts {
            day: e.day,
            mask: e.mask,
            counts: e.counts,
        })
        .collect();
    let mut r = Running::new(&decoded, rec, s, rec.clock);
    same_facts(r.facts(), &Facts::compute(&rec.days, rec, s, rec.clock))?;
    let mut now = rec.clock;
    for &(follow, days, secs) in walk {
        now = match r.facts().next_deadline(s) {
            Some(d) if follow => day_start(d).max(now),
            _ => now + days * 86_400_000 + secs * 1000,
        };
        r.advance_to(now);
        same_facts(r.facts(), &Facts::compute(&rec.days, rec, s, now))?;
    }
    Ok(())
}

/// Rates of the money property (currency, rate digits, rate decimals, from day): USD
/// changes rate on day 60. The model below converts with its own integer arithmetic.
const RATES: [(&str, u64, u32, i64); 4] = [
    ("USD", 71_234, 4, 0),
    ("USD", 72_001, 4, 60),
    ("JPY", 4_831, 5, 0),
    ("KWD", 215_678, 4, 0),
];

/// Currencies an event may carry (`None`: no `currency` field, taken as CNY).
const CURRENCIES: [Option<&str>; 5] = [None, Some("CNY"), Some("USD"), Some("JPY"), Some("KWD")];

/// `units × 10^-decimals` of `currency` on `day`, in fen, rounded once, half-even.
fn model_fen(currency: Option<&str>, units: u64, decimals: u32, day: i64) -> i64 {
    let (digits, scale) = match currency {
        None | Some("CNY") => (1u64, 0u32),
        Some(c) => RATES
            .iter()
            .rfind(|r| r.0 == c && r.3 <= day)
            .map(|r| (r.1, r.2))
            .expect("every test currency has a rate from day 0"),
    };
    let num = units as u128 * digits as u128 * 100;
    let den = 10u128.pow(decimals + scale);
    let (q, r) = (num / den, num % den);
    let up = 2 * r > den || (2 * r == den && q % 2 == 1);
    (q + u128::from(up)) as i64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Money (issue 23): for any interleaving of orders and refunds in several currencies,
    /// around a rate change, each customer's converted monetary facts (lifetime value,
    /// the longest window's monetary) and the report's total spend equal a from-scratch
    /// fold of the same events in integer fen.
    #[test]
    fn converted_monetary_facts_equal_an_integer_fold(
        evs in proptest::collection::vec(
            (0usize..3, any::<bool>(), 0usize..CURRENCIES.len(), 0u64..100_000_000, 0u32..4, 0i64..120),
            1..40,
        )
        .prop_flat_map(|v| Just(v).prop_shuffle())
    ) {
        let mut h = Harness::with_config(|c| {
            c.money.rates = RATES
                .iter()
                .map(|(cur, digits, scale, day)| churnwatch::core::settings::RateConfig {
                    currency: cur.to_string(),
                    rate: format!("{}", *digits as f64 / 10f64.powi(*scale as i32)),
                    from: Some(churnwatch::core::time::format_rfc3339(at(*day, 0)).to_string()),
                })
                .collect();
        });
        let mut want: BTreeMap<String, i64> = BTreeMap::new();
        for (i, (cust, refund, cur, units, decimals, day)) in evs.iter().enumerate() {
            let text = if *decimals == 0 {
                units.to_string()
            } else {
                let s = format!("{:0>width$}", units, width = *decimals as usize + 1);
                let (int, frac) = s.split_at(s.len() - *decimals as usize);
                format!("{int}.{frac}")
            };
            let currency = CURRENCIES[*cur].map_or(String::new(), |c| format!(r#","currency":"{c}""#));
            let kind = if *refund { "refund" } else { "order" };
            // One event per minute: no abnormal-frequency rejections.
            let l = line(&format!("m{i}"), &format!("C{cust}"), kind, at(*day, i as i64 * 60), &format!(r#""amount":{text}{currency}"#));
            prop_assert_eq!(h.send(&l), churnwatch::core::Outcome::Applied);
            let fen = model_fen(CURRENCIES[*cur], *units, *decimals, *day);
            *want.entry(format!("C{cust}")).or_default() += if *refund { -fen } else { fen };
        }
        let fen = |v: f64| (v * 100.0).round() as i64;
        for (cust, total) in &want {
            let p = h.profile(cust);
            prop_assert_eq!(fen(p.facts.lifetime_value), *total, "{}", cust);
            prop_assert_eq!(fen(p.facts.windows.last().unwrap().monetary), *total, "{}", cust);
        }
        prop_assert_eq!(h.p.report(at(130, 0)).spend_cents, want.values().sum::<i64>());
    }
}
