//! DOMAIN.md's rules and worked examples, end to end through the processor.

mod common;

use churnwatch::core::bgnbd;
use churnwatch::core::output::Output;
use churnwatch::core::settings::BgNbdParams;
use churnwatch::core::time::{day_of, day_start, format_date, format_rfc3339, DAY_MS};
use churnwatch::core::{Outcome, RejectReason};
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

/// Deadlines fire only on days time changes a tier or warning, so a profile output is as
/// of the customer's last change; a look-up shows the facts as of the watermark.
#[test]
fn profiles_are_as_of_the_last_change_and_look_ups_as_of_now() {
    let mut h = Harness::new();
    // Three orders: a "potential" customer from the third on (not "new", whose 30-day
    // boundary would be an outcome change).
    for d in 0..3 {
        h.ev("F1", "order", at(d, 3600), r#""amount":500"#);
    }
    assert_eq!(tier_changes(&h.take()).last().unwrap().to, "potential");
    // Days 30-32: the orders leave the 30-day window, which no default rule reads; no
    // outcome changes until the 90-day silence.
    h.advance(at(40, 0));
    let mut drained = Vec::new();
    h.p.drain_dirty(&mut drained);
    let outputs: Vec<_> = drained
        .iter()
        .filter_map(|o| match o {
            Output::Profile(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(outputs.len(), 1, "the customer changed once: {outputs:?}");
    assert_eq!(outputs[0].facts.as_of, format_rfc3339(at(2, 3600)));
    assert_eq!(outputs[0].facts.windows[0].orders, 3);
    let now = h.profile("F1");
    assert_eq!(now.facts.as_of, format_rfc3339(at(40, 0)));
    assert_eq!(now.facts.recency_days, Some(38));
    assert_eq!(
        now.facts.windows[0].orders, 0,
        "the orders are older than 30 days"
    );
    assert_eq!(now.facts.windows[1].orders, 3);
    assert!(h.take().is_empty(), "time changed no outcome");
    // Day 92: 90 days without an order raise the silence warning and advance the clock.
    h.advance(at(92, 0));
    assert_eq!(warnings(&h.take()).len(), 1);
    h.p.drain_dirty(&mut drained);
    let last = drained.iter().rev().find_map(|o| match o {
        Output::Profile(p) => Some(p),
        _ => None,
    });
    assert_eq!(last.unwrap().facts.as_of, format_rfc3339(at(92, 0)));
}

/// Issue 19 item 6: `replay --profiles` writes each profile as of the end of the replay
/// (`--until`), as the look-up does, not as of the customer's last change;
/// `--profiles-as-published` keeps the latter (the profiles topic's records).
#[test]
fn replay_profiles_are_as_of_until() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    let mut text = String::new();
    for (i, day) in [0, 10].into_iter().enumerate() {
        let l = line(
            &format!("o{i}"),
            "R1",
            "order",
            at(day, 3600),
            r#""amount":50"#,
        );
        text += &(String::from_utf8(l).unwrap() + "\n");
    }
    std::fs::write(&input, text).unwrap();
    let until = at(410, 0);
    let run = |as_published: bool| {
        let profiles = d.path().join(format!("p-{as_published}.jsonl"));
        let opts = churnwatch::replay::ReplayOptions {
            input: input.clone(),
            output: d.path().join("alerts.jsonl"),
            profiles: Some(profiles.clone()),
            profiles_as_published: as_published,
            dead_letters: None,
            report: None,
            until: Some(until),
            print: false,
            progress: false,
        };
        let settings = std::sync::Arc::new(churnwatch::core::Settings::defaults());
        churnwatch::replay::replay(settings, &opts).unwrap();
        let text = std::fs::read_to_string(profiles).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        lines[0]["facts"].clone()
    };
    // x = 1 repeat purchase day, t_x = 10 days, T = 410 days (weeks = days / 7).
    let cdnow = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let end = run(false);
    assert_eq!(end["as_of"], format_rfc3339(until).to_string());
    assert_eq!(end["recency_days"], 400);
    let (t_x, big_t) = (10.0 / 7.0, 410.0 / 7.0);
    assert_eq!(
        end["p_alive"].as_f64(),
        Some(bgnbd::p_alive(&cdnow, 1.0, t_x, big_t))
    );
    assert_eq!(
        end["expected_purchases"].as_f64(),
        Some(bgnbd::expected_purchases(
            &cdnow,
            30.0 / 7.0,
            1.0,
            t_x,
            big_t
        ))
    );
    // As published: as of the last deadline that changed the customer (day 191, when
    // more than 180 days without an order make it churn risk; nothing changes after it).
    let published = run(true);
    assert_eq!(published["as_of"], format_rfc3339(at(191, 0)).to_string());
    assert_eq!(published["recency_days"], 181);
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
fn duplicates_change_nothing() {
    let mut h = Harness::new();
    let l = line("dup-1", "D1", "order", at(0, 0), r#""amount":100"#);
    assert_eq!(h.send(&l), Outcome::Applied);
    let before = h.profile("D1");
    h.take();
    assert_eq!(h.send(&l), Outcome::Duplicate);
    assert!(h.take().is_empty());
    assert_eq!(h.profile("D1"), before);
    assert_eq!(h.p.stats().duplicates, 1);
}

#[test]
fn reconsumed_offsets_are_skipped() {
    let mut h = Harness::new();
    h.ev("O1", "order", at(0, 0), r#""amount":100"#);
    let off = h.offset;
    h.offset = off - 1; // the next send reuses offset `off`
    assert_eq!(
        h.ev("O1", "order", at(1, 0), r#""amount":100"#),
        Outcome::AlreadyApplied
    );
    assert_eq!(h.p.last_offset("O1"), Some(off));
}

#[test]
fn late_events_count_and_old_ones_only_in_lifetime_totals() {
    let mut h = Harness::new();
    h.ev("T1", "order", at(500, 0), r#""amount":100"#);
    h.ev("T2", "visit", at(501, 0), "");
    h.ev("T1", "order", at(499, 0), r#""amount":100"#); // late (behind the watermark)
    assert_eq!(h.p.stats().late, 1);
    h.ev("T1", "order", at(10, 0), r#""amount":100"#); // older than 365 days
    let p = h.profile("T1");
    assert_eq!(p.facts.lifetime_orders, 3);
    assert_eq!(p.facts.windows[3].orders, 2);
    assert_eq!(p.facts.first_order.as_deref(), Some("2026-01-11"));
    assert_eq!(h.p.stats().beyond_retention, 1);
}

#[test]
fn erase_forgets_and_leaves_a_tombstone() {
    let mut h = Harness::new();
    h.ev("X1", "order", at(0, 0), r#""amount":100"#);
    h.ev("X1", "profile", at(0, 10), AM);
    h.take();
    assert_eq!(h.ev("X1", "erase", at(1, 0), ""), Outcome::Erased);
    let outs = h.take();
    assert!(matches!(&outs[..], [Output::Tombstone(t)] if t.customer_id == "X1"));
    assert!(h.p.profile("X1").is_none());
    assert_eq!(h.p.customers(), 0);
    assert_eq!(h.p.tier_counts().iter().sum::<i64>(), 0);
    assert_eq!(h.p.level_counts().iter().sum::<i64>(), 0);
    // Nothing of the customer is left to fire later.
    h.advance(at(1000, 0));
    assert!(h.take().is_empty());
}

#[test]
fn abnormal_order_bursts_are_rejected_not_trusted() {
    let mut h = Harness::new();
    for i in 0..20 {
        assert_eq!(
            h.ev("F1", "order", at(0, i), r#""amount":10"#),
            Outcome::Applied
        );
    }
    h.take();
    assert_eq!(
        h.ev("F1", "order", at(0, 30), r#""amount":10"#),
        Outcome::Rejected(RejectReason::AbnormalFrequency)
    );
    match &h.take()[..] {
        [Output::DeadLetter(d)] => {
            // Redacted by default: the contract fields of the original, by name.
            let fields = d
                .original
                .fields
                .as_ref()
                .expect("a JSON object keeps its fields");
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["amount", "customer_id", "event_id", "ts", "type"]);
            assert_eq!(
                d.original.bytes,
                line("e21", "F1", "order", at(0, 30), r#""amount":10"#).len()
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.profile("F1").facts.lifetime_orders, 20);
    assert_eq!(
        h.ev("F1", "order", at(0, 61), r#""amount":10"#),
        Outcome::Applied,
        "a new minute"
    );
}

#[test]
fn rejections_go_to_dead_letters_without_changing_state() {
    let mut h = Harness::new();
    h.ev("R1", "order", at(0, 0), r#""amount":100"#);
    h.take();
    let before = h.profile("R1");
    let bad = br#"{"event_id":"b","customer_id":"R1","type":"order","ts":"2026-01-02T00:00:00Z","amount":-5}"#;
    assert_eq!(h.send(bad), Outcome::Rejected(RejectReason::NegativeAmount));
    let outs = h.take();
    match &outs[..] {
        [Output::DeadLetter(d)] => {
            assert_eq!(d.reason, "negative_amount");
            assert_eq!(d.source.offset, h.offset);
            let fields = d.original.fields.as_ref().unwrap();
            assert!(fields.contains(&("amount".to_string(), serde_json::json!(-5))));
            assert_eq!(d.original.other_fields.as_deref(), Some(&[][..]));
            assert_eq!(d.original.bytes, bad.len());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.profile("R1"), before);
}

#[test]
fn future_events_are_rejected_against_now() {
    let mut h = Harness::new();
    h.ctx.now = Some(at(10, 0));
    assert_eq!(h.ev("F", "visit", at(10, 3599), ""), Outcome::Applied);
    assert_eq!(
        h.ev("F", "visit", at(10, 3601), ""),
        Outcome::Rejected(RejectReason::FutureTimestamp)
    );
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

#[test]
fn remembered_ids_per_customer_day_are_bounded_by_config() {
    let mut h = Harness::with_config(|c| c.limits.max_ids_per_customer_day = 2);
    let first = line("id-1", "B1", "visit", at(0, 0), "");
    assert_eq!(h.send(&first), Outcome::Applied);
    assert_eq!(h.send(&first), Outcome::Duplicate, "remembered");
    h.ev("B1", "visit", at(0, 10), "");
    h.ev("B1", "visit", at(0, 20), "");
    // Only the last two ids of the day are kept: the first one is forgotten.
    assert_eq!(h.send(&first), Outcome::Applied);
    assert_eq!(h.profile("B1").facts.windows[0].visits, 4);
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

/// Profiles of one drain (one commit interval).
fn drained_profiles(h: &mut Harness) -> Vec<String> {
    let mut outs = Vec::new();
    h.p.drain_dirty(&mut outs);
    outs.iter()
        .filter_map(|o| match o {
            Output::Profile(p) => Some(p.customer_id.to_string()),
            _ => None,
        })
        .collect()
}

/// `outputs.profile_publish`: every change publishes once per interval by default;
/// `on_standing_change` publishes only when the tier, the warning level or a profile
/// label changed (or the customer is new), and still keeps one profile per interval.
#[test]
fn profile_publish_every_change_or_on_standing_change() {
    let script = |h: &mut Harness| -> Vec<Vec<String>> {
        let mut per_interval = Vec::new();
        // New customer: tier `new` (a standing change).
        h.ev("P1", "order", at(0, 0), r#""amount":100"#);
        h.ev("P1", "visit", at(0, 60), "");
        per_interval.push(drained_profiles(h));
        // A visit changes facts only.
        h.ev("P1", "visit", at(1, 0), "");
        per_interval.push(drained_profiles(h));
        // A profile event names an account manager: a standing change.
        h.ev("P1", "profile", at(2, 0), r#""account_manager":"AM7""#);
        per_interval.push(drained_profiles(h));
        // The same manager again changes nothing that counts.
        h.ev("P1", "profile", at(3, 0), r#""account_manager":"AM7""#);
        per_interval.push(drained_profiles(h));
        // Day 30: `new` ends (time changes the tier).
        h.advance(at(31, 0));
        per_interval.push(drained_profiles(h));
        h.take();
        per_interval
    };
    let one = vec!["P1".to_string()];
    let every = script(&mut Harness::new());
    assert_eq!(
        every,
        vec![one.clone(); 5],
        "one profile per changed interval"
    );
    let standing = script(&mut Harness::with_config(|c| {
        c.outputs.profile_publish = "on_standing_change".into()
    }));
    assert_eq!(
        standing,
        vec![one.clone(), vec![], one.clone(), vec![], one],
        "only intervals whose standing changed"
    );
}

/// One run of a generated stream with profiles drained every 1,000 lines: (alerts as JSON
/// lines, per interval the published profiles as JSON lines, per interval the changelog
/// records).
type Drained = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>, Vec<Vec<(String, Vec<u8>)>>);

fn drained_run(publish: &str) -> Drained {
    use churnwatch::gen::{GenOptions, Generator};
    let mut h = Harness::with_config(|c| c.outputs.profile_publish = publish.into());
    h.ctx.emitted_at = Some(0);
    let mut g = Generator::new(GenOptions {
        customers: 300,
        events: 12_000,
        seed: 5,
        ..Default::default()
    });
    let (mut alerts, mut profiles, mut changelog) = (Vec::new(), Vec::new(), Vec::new());
    let mut line = Vec::new();
    let mut n = 0;
    let mut more = true;
    while more {
        more = g.next_line(&mut line);
        if more {
            h.send(&line);
            n += 1;
        } else {
            h.advance(at(800, 0));
        }
        if n % 1000 == 0 || !more {
            alerts.extend(h.take().iter().map(Output::to_json));
            let (mut outs, mut snaps) = (Vec::new(), Vec::new());
            h.p.drain_changes(&mut outs, |id, s| snaps.push((id.to_string(), s)));
            profiles.push(outs.iter().map(Output::to_json).collect());
            changelog.push(snaps);
        }
    }
    (alerts, profiles, changelog)
}

/// `on_standing_change` changes only which profiles are published: the alerts and the
/// changelog are the same as with `every_change`, and each interval's published profiles
/// are some of the ones `every_change` published in that interval, byte for byte.
#[test]
fn profile_publish_changes_only_which_profiles_are_published() {
    let (a1, p1, c1) = drained_run("every_change");
    let (a2, p2, c2) = drained_run("on_standing_change");
    assert!(a1.len() > 1000, "the stream produces alerts");
    assert_eq!(a1, a2, "alerts do not depend on the setting");
    assert_eq!(c1, c2, "the changelog does not depend on the setting");
    let (n1, n2): (usize, usize) = (p1.iter().map(Vec::len).sum(), p2.iter().map(Vec::len).sum());
    assert!(n2 > 0 && n2 < n1, "{n2} of {n1} profiles published");
    for (every, standing) in p1.iter().zip(&p2) {
        for p in standing {
            assert!(every.contains(p), "a profile every_change did not publish");
        }
    }
}
