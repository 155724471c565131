//! Property tests of the facts (issue 18): the incremental record and the running sums
//! equal a from-scratch fold, silence fires at exactly 90 days, converted money equals
//! an integer fold. Random populations: tests/support/population.rs.

mod common;
#[path = "support/population.rs"]
mod population;

use std::collections::BTreeMap;

use churnwatch::core::bgnbd;
use churnwatch::core::days;
use churnwatch::core::facts::{DayCounts, Facts, Running};
use churnwatch::core::settings::BgNbdParams;
use churnwatch::core::time::{day_of, day_start, parse_rfc3339};
use common::*;
use population::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

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
