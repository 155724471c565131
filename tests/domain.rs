//! DOMAIN.md's rules and worked examples, end to end through the processor.

mod common;

use churnwatch::core::bgnbd;
use churnwatch::core::output::Output;
use churnwatch::core::settings::BgNbdParams;
use churnwatch::core::time::{day_of, day_start, format_date, format_rfc3339, DAY_MS};
use common::*;

const AM: &str = r#""account_manager":"AM-007""#;

/// L001: 2 visits, 0 orders, 2 complaints, satisfaction 2.5 over 90 days → high.
#[test]
fn l001_is_high() {
    let mut h = Harness::new();
    h.ev("L001", "profile", at(0, 0), AM);
    h.ev("L001", "visit", at(10, 0), "");
    h.ev("L001", "complaint", at(20, 0), "");
    h.ev("L001", "survey", at(25, 0), r#""satisfaction":2.5"#);
    h.ev("L001", "visit", at(70, 0), "");
    h.ev("L001", "complaint", at(80, 0), "");
    let outs = h.take();
    let w = warnings(&outs);
    // The table's condition holds from the first complaint (day 20): the warning is raised
    // then, with that moment's values, and not repeated at the second complaint.
    assert_eq!(w.iter().filter(|w| w.level == "high").count(), 1);
    let high = w
        .iter()
        .find(|w| w.level == "high")
        .expect("a high warning");
    assert_eq!(high.event_time, format_rfc3339(at(20, 0)));
    assert_eq!(high.owner, "AM-007");
    let r = high
        .reasons
        .iter()
        .find(|r| r.rule == "disengaged_with_complaints")
        .unwrap();
    let vals: Vec<Option<f64>> = r.conditions.iter().map(|c| c.value).collect();
    assert_eq!(
        vals,
        vec![Some(1.0), Some(0.0), Some(1.0)],
        "visits_30d, orders_90d, complaints_90d"
    );
    assert_eq!(
        high.due,
        format_rfc3339(at(20, 0) + DAY_MS),
        "due = event time + 24 h"
    );
    assert!(high.action.contains("24 hours"));
    let p = h.profile("L001");
    assert_eq!(p.warning.level, "high");
    let w90 = &p.facts.windows[1];
    assert_eq!(
        (w90.days, w90.visits, w90.orders, w90.complaints),
        (90, 2, 0, 2)
    );
    assert_eq!(w90.satisfaction, Some(2.5));
}

/// L002: 5 visits, 1 order, no complaint, satisfaction 3.0 → medium.
#[test]
fn l002_is_medium() {
    let mut h = Harness::new();
    for d in [5, 20, 40, 60, 80] {
        h.ev("L002", "visit", at(d, 0), "");
    }
    h.ev("L002", "order", at(30, 0), r#""amount":1200"#);
    h.ev("L002", "survey", at(81, 0), r#""satisfaction":3.0"#);
    let outs = h.take();
    let w = warnings(&outs);
    assert_eq!(w.len(), 1, "raised once");
    assert_eq!(w[0].level, "medium");
    assert_eq!(w[0].reasons[0].rule, "few_orders_low_satisfaction");
    assert_eq!(
        w[0].due,
        format_rfc3339(at(81, 0) + 7 * DAY_MS),
        "due = event time + 7 days"
    );
    assert_eq!(h.profile("L002").warning.level, "medium");
}

/// L003: 8 visits, 2 orders, satisfaction 4.0 → low: no warning event at all.
#[test]
fn l003_has_no_warning() {
    let mut h = Harness::new();
    for d in [2, 12, 22, 32, 42, 52, 62, 72] {
        h.ev("L003", "visit", at(d, 0), "");
    }
    h.ev("L003", "order", at(10, 0), r#""amount":900"#);
    h.ev("L003", "order", at(60, 0), r#""amount":900"#);
    h.ev("L003", "survey", at(70, 0), r#""satisfaction":4.0"#);
    let outs = h.take();
    assert!(warnings(&outs).is_empty(), "{:?}", json(&outs));
    assert_eq!(h.profile("L003").warning.level, "low");
}

fn high_value_customer(h: &mut Harness, id: &str) {
    h.ev(id, "profile", at(0, 0), AM);
    for (i, d) in [0, 30, 60, 90, 120].iter().enumerate() {
        h.ev(
            id,
            "order",
            at(*d, 3600 + i as i64),
            r#""amount":25000,"channel":"web","category":"wealth""#,
        );
    }
}

#[test]
fn tiers_follow_the_table_and_decay_with_time() {
    let mut h = Harness::new();
    high_value_customer(&mut h, "H1");
    let changes = tier_changes(&h.take())
        .iter()
        .map(|t| t.to.to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        changes.last().map(String::as_str),
        Some("high_value"),
        "{changes:?}"
    );
    assert_eq!(
        changes[0], "new",
        "the profile event's first appearance in the fallback tier (`regular`) is no alert; the first order's `new` is: {changes:?}"
    );
    // Last order on day 120: still high value on day 209, not on day 210 (90 days old).
    h.advance(at(209, 86_399));
    assert!(tier_changes(&h.take()).is_empty());
    h.advance(at(210, 0));
    let outs = h.take();
    let t = tier_changes(&outs);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].from.as_deref(), t[0].to.as_str()),
        (Some("high_value"), "potential")
    );
    assert_eq!(t[0].trigger, "time");
    assert_eq!(
        t[0].event_time,
        format_rfc3339(day_start(churnwatch::core::time::day_of(at(210, 0))))
    );
    assert!(t[0].action.contains("free trial"));
    assert_eq!(t[0].facts.recency_days, Some(90));
}

#[test]
fn the_profile_says_since_when_the_tier_is_held_and_the_best_tier_ever() {
    let mut h = Harness::new();
    high_value_customer(&mut h, "H3");
    let p = h.profile("H3");
    assert_eq!(p.tier, "high_value");
    // The fifth order (day 120) made the customer high value.
    assert_eq!(
        p.tier_since.as_deref(),
        Some(format_date(day_of(at(120, 0))).as_str())
    );
    assert_eq!(p.peak_tier.as_deref(), Some("high_value"));
    h.advance(at(210, 0));
    let p = h.profile("H3");
    assert_eq!(p.tier, "potential");
    assert_eq!(
        p.tier_since.as_deref(),
        Some(format_date(day_of(at(210, 0))).as_str())
    );
    assert_eq!(
        p.peak_tier.as_deref(),
        Some("high_value"),
        "the best tier stays"
    );
    // Both survive a snapshot and restore (the changelog), and erase forgets them.
    let snap = h.p.snapshot("H3").unwrap();
    let mut other = Harness::new();
    other.p.restore(&snap).unwrap();
    let q = other.profile("H3");
    assert_eq!(
        (q.tier_since, q.peak_tier),
        (p.tier_since.clone(), p.peak_tier.clone())
    );
    h.ev("H3", "erase", at(211, 0), "");
    h.ev("H3", "visit", at(212, 0), "");
    let p = h.profile("H3");
    assert_eq!(
        p.peak_tier.as_deref(),
        Some("regular"),
        "a new customer after erase"
    );
    // A customer whose best tier is new (ranked above regular, below potential).
    let mut h = Harness::new();
    h.ev("N2", "order", at(0, 0), r#""amount":1000"#);
    h.advance(at(60, 0));
    let p = h.profile("N2");
    assert_eq!(
        (p.tier.as_str(), p.peak_tier.as_deref()),
        ("regular", Some("new"))
    );
}

#[test]
fn a_high_value_customer_whose_frequency_fell_becomes_potential() {
    let mut h = Harness::new();
    high_value_customer(&mut h, "H2");
    h.ev("H2", "order", at(360, 0), r#""amount":30000"#);
    h.take();
    assert_eq!(h.profile("H2").tier, "high_value");
    // Day 365: the day-0 order leaves the 365-day window → 5 orders, still high value;
    // day 395: the day-30 order leaves → 4 orders → potential.
    h.advance(at(394, 0));
    assert!(tier_changes(&h.take()).is_empty());
    h.advance(at(395, 0));
    let outs = h.take();
    let t = tier_changes(&outs);
    assert_eq!(
        (t[0].from.as_deref(), t[0].to.as_str()),
        (Some("high_value"), "potential")
    );
    assert_eq!((t[0].facts.window_days, t[0].facts.orders), (365, 4));
    assert_eq!(t[0].facts.tier, "potential");
}

#[test]
fn new_then_regular_then_churn_risk() {
    let mut h = Harness::new();
    h.ev("N1", "order", at(0, 0), r#""amount":1000"#);
    assert_eq!(h.profile("N1").tier, "new");
    h.advance(at(400, 0));
    let outs = h.take();
    let path: Vec<(String, String)> = tier_changes(&outs)
        .iter()
        .map(|t| (t.to.to_string(), t.event_time.to_string()))
        .collect();
    assert_eq!(path[0].0, "new");
    assert_eq!(
        path[1],
        ("regular".to_string(), format_rfc3339(at(30, 0)).to_string()),
        "new for 30 days"
    );
    assert_eq!(
        path[2],
        (
            "churn_risk".to_string(),
            format_rfc3339(at(181, 0)).to_string()
        ),
        "more than 180 days since the last order"
    );
}

#[test]
fn silence_fires_when_90_days_pass_without_an_event() {
    let mut h = Harness::new();
    h.ev("S1", "profile", at(0, 0), AM);
    h.ev("S1", "order", at(5, 7200), r#""amount":500"#);
    h.take();
    h.advance(at(94, 86_399));
    assert!(
        warnings(&h.take()).is_empty(),
        "89 days and 23:59 h is not yet 90 days"
    );
    h.advance(at(95, 0));
    let outs = h.take();
    let w = warnings(&outs);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].level, "medium");
    assert_eq!(w[0].trigger, "time");
    assert_eq!(w[0].reasons[0].rule, "silence");
    assert_eq!(w[0].reasons[0].conditions[0].value, Some(90.0));
    assert_eq!(w[0].owner, "AM-007");
    assert!(w[0].source.is_none());
    // An order ends the episode.
    h.ev("S1", "order", at(100, 0), r#""amount":500"#);
    let outs = h.take();
    assert!(
        matches!(outs.iter().find(|o| matches!(o, Output::Cleared(_))), Some(Output::Cleared(c)) if c.previous_level == "medium")
    );
}

#[test]
fn a_warning_is_raised_once_per_episode_and_again_when_it_rises() {
    let mut h = Harness::new();
    h.ev("E1", "visit", at(0, 0), "");
    h.ev("E1", "survey", at(1, 0), r#""satisfaction":2"#); // medium: no orders, low satisfaction
    h.ev("E1", "visit", at(2, 0), "");
    h.ev("E1", "survey", at(3, 0), r#""satisfaction":2"#); // still medium: nothing new
    let w: Vec<String> = warnings(&h.take())
        .iter()
        .map(|w| w.level.to_string())
        .collect();
    assert_eq!(w, vec!["medium"]);
    h.ev("E1", "complaint", at(4, 0), ""); // visits_30d 2 < 3, no orders, a complaint → high
    let outs = h.take();
    let w = warnings(&outs);
    assert_eq!(
        (w.len(), w[0].level, w[0].previous_level),
        (1, "high", "medium")
    );
    h.ev("E1", "complaint", at(5, 0), "");
    assert!(
        warnings(&h.take()).is_empty(),
        "no repeat while the condition holds"
    );
    // Recovery: two orders and good surveys; the complaints stay in the 90-day window but
    // orders_90d > 0 ends `high` and 2 orders end `medium`.
    h.ev("E1", "order", at(6, 0), r#""amount":100"#);
    h.ev("E1", "order", at(7, 0), r#""amount":100"#);
    let outs = h.take();
    let cleared: Vec<_> = outs
        .iter()
        .filter(|o| matches!(o, Output::Cleared(_)))
        .collect();
    assert_eq!(cleared.len(), 1);
    assert_eq!(h.profile("E1").warning.level, "low");
}

#[test]
fn visit_drop_warns() {
    let mut h = Harness::new();
    // Days 0..90: 30 visits (10 a month); then days 90..120: 2 visits, and an order each
    // month so that silence does not fire.
    for i in 0..30 {
        h.ev("V1", "visit", at(i * 3, 0), r#""channel":"app""#);
    }
    for d in [0, 29, 58, 87, 116] {
        h.ev("V1", "order", at(d, 60), r#""amount":100"#);
    }
    h.ev("V1", "visit", at(100, 0), "");
    h.ev("V1", "visit", at(119, 0), "");
    let outs = h.take();
    let p = h.profile("V1");
    assert_eq!(
        p.facts.visits_baseline, 30,
        "days 0–89: the 120 days before day 119 less the recent 30"
    );
    let w = warnings(&outs);
    let drop = w
        .iter()
        .find(|w| w.reasons.iter().any(|r| r.rule == "visit_drop"))
        .expect("a visit-drop warning");
    // Visits stop after day 87; 3 or fewer visits in 30 days against ~10 is a 70 % drop,
    // which happens after day 100 and not while the customer still visits regularly.
    assert!(
        drop.event_time > format_rfc3339(at(100, 0)),
        "{}",
        drop.event_time
    );
    assert!(p.facts.visit_drop_pct.unwrap() >= 70.0);
    assert_eq!(p.facts.preferred_channel.as_deref(), Some("app"));
}

#[test]
fn activity_score_and_risk_index_on_profiles() {
    let mut h = Harness::new();
    for i in 0..20 {
        h.ev("A1", "visit", at(100 + i, 0), "");
    }
    // Three participations (DOMAIN §4, §6): two `participated`, one `converted`; being
    // touched by a campaign is not taking part.
    for (i, action) in ["participated", "converted", "participated"]
        .into_iter()
        .enumerate()
    {
        let extra = format!(r#""campaign_id":"C{i}","action":"{action}""#);
        h.ev("A1", "campaign", at(150 + i as i64, 0), &extra);
    }
    h.ev(
        "A1",
        "campaign",
        at(160, 0),
        r#""campaign_id":"C1","action":"touched""#,
    );
    let p = h.profile("A1");
    assert_eq!(
        p.facts.activity_score, 11.5,
        "(20 visits + 3 campaigns) / 2"
    );
    let w = &p.facts.windows[1];
    assert_eq!(
        (
            w.campaign_touches,
            w.campaign_participations,
            w.campaign_conversions
        ),
        (1, 2, 1)
    );
    // 5 visits + 1 participation → 3.
    for i in 0..5 {
        h.ev("B1", "visit", at(100 + i, 0), "");
    }
    h.ev(
        "B1",
        "campaign",
        at(120, 0),
        r#""campaign_id":"C1","action":"participated""#,
    );
    assert_eq!(h.profile("B1").facts.activity_score, 3.0, "(5 + 1) / 2");

    // 4 orders in days 91–180 before, 1 in the last 90, and one complaint:
    // decline (4 − 1) / 4 = 0.75 → (0.75 + 0.5) × 100 = 125.
    let mut h = Harness::new();
    for d in [1, 20, 40, 60] {
        h.ev("R1", "order", at(d, 0), r#""amount":100"#);
    }
    h.ev("R1", "order", at(150, 0), r#""amount":100"#);
    h.ev("R1", "complaint", at(160, 0), "");
    assert_eq!(h.profile("R1").facts.churn_risk_index, 125.0);
}

#[test]
fn monetary_subtracts_refunds_and_aov_follows() {
    let mut h = Harness::new();
    h.ev("M1", "order", at(0, 0), r#""amount":18750.00"#);
    h.ev("M1", "order", at(1, 0), r#""amount":1250.50"#);
    h.ev("M1", "refund", at(2, 0), r#""amount":250.50"#);
    let p = h.profile("M1");
    let w = &p.facts.windows[0];
    assert_eq!((w.orders, w.monetary, w.aov), (2, 19750.0, Some(9875.0)));
    assert_eq!(p.facts.lifetime_value, 19750.0);
    assert_eq!(p.facts.purchase_days, 2);
}

#[test]
fn churn_probability_follows_bgnbd_definitions() {
    let mut h = Harness::new();
    // Purchases on days 0, 100, 213 (3 distinct days: x = 2; t_x = 213 days);
    // evaluated on day 272: T = 272 days.
    for d in [0, 100, 213] {
        h.ev("B1", "order", at(d, 0), r#""amount":10"#);
    }
    h.ev("B1", "order", at(213, 60), r#""amount":10"#); // same day: not a new purchase day
    h.ev("B1", "visit", at(272, 0), "");
    let p = h.profile("B1");
    let cdnow = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let want = bgnbd::p_alive(&cdnow, 2.0, 213.0 / 7.0, 272.0 / 7.0);
    assert_eq!(p.facts.p_alive, Some(want));
    let e = bgnbd::expected_purchases(&cdnow, 30.0 / 7.0, 2.0, 213.0 / 7.0, 272.0 / 7.0);
    assert_eq!(p.facts.expected_purchases, Some(e));
    assert_eq!(p.facts.purchase_days, 3);
}

#[test]
fn rules_come_from_configuration() {
    let mut h = Harness::with_config(|c| {
        c.tiers.rules.truncate(0);
        c.tiers
            .rules
            .push(churnwatch::core::settings::TierRuleConfig {
                name: "vip".into(),
                all: vec!["lifetime_orders >= 2".into()],
                any: vec![],
                action: "call".into(),
                sla: None,
                segments: Default::default(),
            });
        c.warnings.high.sla = Some("2h".into());
    });
    h.ev("C1", "order", at(0, 0), r#""amount":1"#);
    h.ev("C1", "order", at(1, 0), r#""amount":1"#);
    let outs = h.take();
    let t: Vec<String> = tier_changes(&outs)
        .iter()
        .map(|t| t.to.to_string())
        .collect();
    assert_eq!(
        t,
        vec!["vip"],
        "the first order's fallback tier is no alert; the second's vip is"
    );
    assert_eq!(
        tier_changes(&outs)[0].from.as_deref(),
        Some("regular"),
        "the profile recorded regular"
    );
}

/// P(alive) by decile for the metrics: customers who ordered, as of a given instant.
/// x = 1, t_x = 10 d, T = 11 d with the CDNOW parameters (weeks): 1 / (1 + 0.793/2.426 ×
/// ((4.414 + 11/7) / (4.414 + 10/7))^1.243) = 0.748; at day 400, T = 400/7 weeks: 0.141.
#[test]
fn p_alive_histogram_counts_customers_who_ordered() {
    let mut h = Harness::new();
    h.send(&line("e1", "A", "order", at(0, 0), r#""amount":10"#));
    h.send(&line("e2", "A", "order", at(10, 0), r#""amount":10"#));
    h.send(&line("e3", "B", "visit", at(10, 0), ""));
    let b = h.p.p_alive_histogram(at(11, 0), 100).unwrap();
    assert_eq!(b.iter().sum::<f64>(), 1.0, "{b:?}: only A ordered");
    assert_eq!(b[7], 1.0, "{b:?}");
    let b = h.p.p_alive_histogram(at(400, 0), 100).unwrap();
    assert_eq!(b[1], 1.0, "{b:?}: P(alive) decays with silence");
}

/// CLV on the profile = BG/NBD expected purchases × Gamma-Gamma expected order value,
/// with x = repeat purchase days and m = net value per order (defaults: CDNOW fits).
#[test]
fn clv_is_expected_purchases_times_expected_order_value() {
    let mut h = Harness::new();
    h.ev("V", "order", at(0, 0), r#""amount":30"#);
    h.ev("V", "order", at(20, 0), r#""amount":50"#);
    h.ev("V", "refund", at(21, 0), r#""amount":10"#);
    h.ev("V", "order", at(40, 0), r#""amount":20"#);
    let f = h.profile("V").facts;
    let (p, q, v) = (6.25, 3.74, 15.44);
    let (x, m) = (2.0, 90.0 / 3.0);
    let eov = p * (v + x * m) / (p * x + q - 1.0);
    assert!(
        (f.expected_order_value.unwrap() - eov).abs() < 1e-9,
        "{f:?}"
    );
    let want = f.expected_purchases.unwrap() * eov;
    assert!((f.clv.unwrap() - want).abs() < 1e-9, "{f:?}");
    assert!(f.clv.unwrap() > 0.0);
    let mut h = Harness::with_config(|c| c.clv.enabled = false);
    h.ev("V", "order", at(0, 0), r#""amount":30"#);
    assert_eq!(h.profile("V").facts.clv, None, "disabled");
}
