//! Property tests of the processor's invariants (see STYLE.md "Tests"): re-delivery,
//! interleaving, rejected lines, restore, the live report and campaign figures. The
//! facts' properties (incremental = fold, running sums, silence, money) are in
//! tests/properties_facts.rs; the random populations in tests/support/population.rs.

mod common;
#[path = "support/population.rs"]
mod population;

use std::collections::BTreeMap;

use churnwatch::core::time::parse_rfc3339;
use common::*;
use population::*;
use proptest::prelude::*;

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

}
