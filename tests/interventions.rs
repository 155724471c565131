//! Issue 20 on a hand-made data set: warnings as tasks (intervention events, status on
//! the profile), overdue escalation by time alone, owner routing, saved customers, and
//! campaign effect per customer with attributed revenue.

mod common;

use churnwatch::core::output::{Output, WarningOverdue};
use churnwatch::core::time::{format_rfc3339, DAY_MS};
use churnwatch::core::{Outcome, RejectReason};
use common::*;

const AM: &str = r#""account_manager":"AM-007""#;

/// L001's pattern: a high warning at day 20 (due 24 h later), owned by AM-007.
fn warned(h: &mut Harness, c: &str, am: bool) -> String {
    if am {
        h.ev(c, "profile", at(0, 0), AM);
    }
    h.ev(c, "visit", at(10, 0), "");
    h.ev(c, "complaint", at(20, 0), "");
    let outs = h.take();
    let w = warnings(&outs);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].level, "high");
    assert_eq!(w[0].due, format_rfc3339(at(21, 0)));
    w[0].event_id.clone()
}

/// Index of the `disengaged_with_complaints` rule (the saved sums are per rule; since
/// issue 19 `lapsed_top_customer` comes first).
fn disengaged(h: &Harness) -> usize {
    h.p.settings()
        .warnings
        .iter()
        .position(|w| w.rule.name == "disengaged_with_complaints")
        .unwrap()
}

fn overdue(outs: &[Output]) -> Vec<&WarningOverdue> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Overdue(x) => Some(&**x),
            _ => None,
        })
        .collect()
}

fn intervention(h: &mut Harness, c: &str, ts: i64, extra: &str) -> Outcome {
    h.ev(c, "intervention", ts, extra)
}

#[test]
fn acknowledged_then_done_is_never_overdue() {
    let mut h = Harness::new();
    let id = warned(&mut h, "C1", true);
    let ack = format!(r#""warning_id":"{id}","status":"acknowledged","actor":"AM-007""#);
    assert_eq!(
        intervention(&mut h, "C1", at(20, 3600), &ack),
        Outcome::Applied
    );
    let p = h.profile("C1");
    assert_eq!(p.warning.task.status, Some("acknowledged"));
    let done = format!(
        r#""warning_id":"{id}","status":"done","outcome":"discount_accepted","actor":"AM-009""#
    );
    assert_eq!(
        intervention(&mut h, "C1", at(20, 5 * 3600), &done),
        Outcome::Applied
    );
    h.advance(at(40, 0));
    assert!(
        overdue(&h.take()).is_empty(),
        "done before due: no escalation"
    );
    let t = h.profile("C1").warning.task;
    assert_eq!(t.warning_id.as_deref(), Some(id.as_str()));
    assert_eq!(t.status, Some("done"));
    assert_eq!(t.owner.as_deref(), Some("AM-007"));
    assert_eq!(t.actor.as_deref(), Some("AM-009"));
    assert_eq!(t.outcome.as_deref(), Some("discount_accepted"));
    assert_eq!(t.acted_at, Some(format_rfc3339(at(20, 5 * 3600))));
    assert_eq!(t.due, Some(format_rfc3339(at(21, 0))));
    assert!(!t.overdue);
    let s = &h.p.saved().rules[disengaged(&h)];
    assert_eq!(
        (s.raised, s.acted, s.acknowledged, s.done, s.overdue),
        (1, 1, 1, 1, 0)
    );
    // First action one hour after the warning.
    let m = h.p.saved().first_action[disengaged(&h)]
        .median_seconds()
        .unwrap();
    assert!((m - 3600.0).abs() < 3600.0 * 0.03, "{m}");
}

#[test]
fn an_open_warning_escalates_at_its_due_time_once_without_an_event() {
    let mut h = Harness::new();
    let id = warned(&mut h, "C2", true);
    h.advance(at(21, 0) - 1);
    assert!(overdue(&h.take()).is_empty(), "not before the due time");
    h.advance(at(21, 0));
    let outs = h.take();
    let o = overdue(&outs);
    assert_eq!(o.len(), 1, "at the due instant");
    let o = o[0];
    assert_eq!(o.warning_id, id);
    assert_eq!(o.owner, "team-lead", "interventions.escalation.high");
    assert_eq!(o.task_owner, "AM-007");
    assert_eq!(o.status, "open");
    assert_eq!(o.level, "high");
    assert_eq!(o.rule, "disengaged_with_complaints");
    assert_eq!(o.event_time, format_rfc3339(at(21, 0)));
    assert_eq!(o.due, o.event_time);
    assert_eq!(o.trigger, "time");
    h.advance(at(60, 0));
    assert!(overdue(&h.take()).is_empty(), "once per warning");
    // Done late: the status changes, the escalation stays on the record.
    let done = format!(r#""warning_id":"{id}","status":"done""#);
    assert_eq!(
        intervention(&mut h, "C2", at(60, 10), &done),
        Outcome::Applied
    );
    let t = h.profile("C2").warning.task;
    assert_eq!((t.status, t.overdue), (Some("done"), true));
    let s = &h.p.saved().rules[disengaged(&h)];
    assert_eq!((s.raised, s.done, s.overdue, s.overdue_open), (1, 1, 1, 0));
}

/// The customer's own next event after the due time fires the escalation first, as the
/// watermark would have.
#[test]
fn an_event_after_the_due_time_comes_after_the_escalation() {
    let mut h = Harness::new();
    warned(&mut h, "C3", true);
    h.ev("C3", "visit", at(22, 0), "");
    let outs = h.take();
    assert_eq!(overdue(&outs).len(), 1);
    assert_eq!(h.p.stats().overdue, [0, 0, 1]);
}

#[test]
fn a_dismissed_warning_is_closed_and_never_overdue() {
    let mut h = Harness::new();
    warned(&mut h, "C4", true);
    // No warning_id: the customer's open warning.
    let r = intervention(
        &mut h,
        "C4",
        at(20, 60),
        r#""status":"dismissed","outcome":"duplicate_account""#,
    );
    assert_eq!(r, Outcome::Applied);
    h.advance(at(40, 0));
    assert!(overdue(&h.take()).is_empty());
    let t = h.profile("C4").warning.task;
    assert_eq!(t.status, Some("dismissed"));
    // A closed warning takes no further status: counted, no change.
    intervention(&mut h, "C4", at(41, 0), r#""status":"in_progress""#);
    assert_eq!(h.profile("C4").warning.task.status, Some("dismissed"));
    assert_eq!(h.p.stats().interventions_unmatched, 1);
    let s = &h.p.saved().rules[disengaged(&h)];
    assert_eq!(
        (s.raised, s.dismissed, s.acknowledged, s.overdue),
        (1, 1, 0, 0)
    );
}

#[test]
fn a_customer_ordering_within_the_recovery_period_is_recovered() {
    let mut h = Harness::new();
    warned(&mut h, "R1", true);
    warned(&mut h, "R2", true);
    // R1 orders 10 days after its warning (within 30 days), R2 after 31 days.
    h.ev("R1", "order", at(30, 0), r#""amount":100"#);
    h.ev("R2", "order", at(51, 0), r#""amount":100"#);
    assert!(h.profile("R1").warning.task.recovered);
    assert!(!h.profile("R2").warning.task.recovered);
    let s = &h.p.saved().rules[disengaged(&h)];
    assert_eq!((s.raised, s.recovered), (2, 1));
    let s = h.p.settings().clone();
    let report = h.p.report(at(60, 0)).finish(&s);
    let line = report
        .interventions
        .iter()
        .find(|l| l.rule == "disengaged_with_complaints")
        .unwrap();
    assert_eq!(line.raised, 2);
    assert_eq!(line.recovered, 1);
    assert_eq!(line.recovery_rate, Some(0.5));
}

#[test]
fn unknown_warnings_are_counted_and_bad_interventions_are_dead_letters() {
    let mut h = Harness::new();
    warned(&mut h, "U1", true);
    let other = "0123456789abcdef0123456789abcdef";
    let r = intervention(
        &mut h,
        "U1",
        at(20, 10),
        &format!(r#""warning_id":"{other}","status":"done""#),
    );
    assert_eq!(
        r,
        Outcome::Applied,
        "valid, but for no warning of this customer"
    );
    assert_eq!(h.p.stats().interventions_unmatched, 1);
    assert_eq!(h.profile("U1").warning.task.status, Some("open"));
    // No warning at all.
    h.ev("U2", "visit", at(1, 0), "");
    intervention(&mut h, "U2", at(2, 0), r#""status":"done""#);
    assert_eq!(h.p.stats().interventions_unmatched, 2);
    for (extra, reason) in [
        (r#""status":"finished""#, RejectReason::InvalidValue),
        (r#""outcome":"x""#, RejectReason::MissingField),
        (
            r#""status":"done","warning_id":"not-an-id""#,
            RejectReason::InvalidValue,
        ),
        (
            r#""status":"done","actor":"zhang.wei@example.com""#,
            RejectReason::InvalidValue,
        ),
        (
            r#""status":"done","outcome":"called him, he is unhappy""#,
            RejectReason::InvalidValue,
        ),
    ] {
        assert_eq!(
            intervention(&mut h, "U1", at(20, 20), extra),
            Outcome::Rejected(reason),
            "{extra}"
        );
    }
    let dl = h.take();
    let text: String = dl
        .iter()
        .map(|o| String::from_utf8_lossy(&o.to_json()).into_owned())
        .collect();
    assert!(
        !text.contains("example.com"),
        "no personal data in dead letters: {text}"
    );
    assert!(
        !text.contains("unhappy"),
        "no free text in dead letters: {text}"
    );
}

/// DOMAIN.md §6 routing with the default config, end to end: tier changes into the top
/// tier and into churn risk carry an owner and a due time; a warning of a customer
/// without an account manager goes to the default queue.
#[test]
fn owners_are_routed_by_tier_and_fall_back_to_the_default_queue() {
    let mut h = Harness::new();
    // Five orders of 25,000 over 5 days: new, potential, then high_value.
    h.ev("V1", "profile", at(0, 0), AM);
    for d in 0..5 {
        h.ev("V1", "order", at(d, 0), r#""amount":25000"#);
    }
    let outs = h.take();
    let tc = tier_changes(&outs);
    let into_new = tc.iter().find(|t| t.to == "new").unwrap();
    assert_eq!(into_new.owner, "onboarding-specialist");
    assert_eq!(into_new.due, None, "no sla on `new`");
    let top = tc.iter().find(|t| t.to == "high_value").unwrap();
    assert_eq!(top.owner, "key-account-director");
    assert_eq!(
        top.due.as_deref(),
        Some(format_rfc3339(at(4, 0) + 7 * DAY_MS).as_str())
    );
    // One small order, then silence: churn risk after 180 days, by time.
    h.ev("K1", "profile", at(0, 0), AM);
    h.ev("K1", "order", at(0, 0), r#""amount":10"#);
    h.advance(at(200, 0));
    let outs = h.take();
    let risk = tier_changes(&outs)
        .into_iter()
        .find(|t| t.customer_id == "K1" && t.to == "churn_risk")
        .expect("into churn risk");
    assert_eq!(risk.owner, "sales-lead");
    assert!(risk.due.is_some());
    // The silence warning (90 days) of K1: tier `new` then (after 30 days: regular or
    // potential) → the account manager.
    let w = warnings(&outs);
    let k1 = w
        .iter()
        .find(|w| w.customer_id == "K1")
        .expect("silence warning");
    assert_eq!(k1.owner, "AM-007");
    // No account manager, no rule: the default queue.
    warned(&mut h, "Q1", false);
    let t = h.profile("Q1").warning.task;
    assert_eq!(t.owner.as_deref(), Some("retention-queue"));
}

/// The saved-customer sums of a generated stream (with the generator's CRM answers) do
/// not depend on how customers are split over partitions: each partition's watermark
/// differs, each customer's task does not.
#[test]
fn saved_sums_do_not_depend_on_partitioning() {
    use churnwatch::gen::{GenOptions, Generator};
    let opts = GenOptions {
        customers: 150,
        events: 2500,
        seed: 9,
        bad: 0.01,
        ..Default::default()
    };
    let mut g = Generator::new(opts);
    let mut one = Harness::new();
    let mut two = [Harness::new(), Harness::new()];
    let mut buf = Vec::new();
    while g.next_line(&mut buf) {
        one.send(&buf);
        let k = g
            .key()
            .map_or(0, |k| k.bytes().map(usize::from).sum::<usize>() % 2);
        two[k].send(&buf);
    }
    let mut merged = two[0].p.saved().clone();
    merged.merge(two[1].p.saved());
    let s = one.p.settings().clone();
    let lines = |x: &churnwatch::core::care::SavedSums| x.lines(&s);
    assert_eq!(lines(&merged), lines(one.p.saved()));
    let acted: i64 = one.p.saved().rules.iter().map(|r| r.acted).sum();
    assert!(acted > 0, "the generator's CRM answers some warnings");
}

/// Campaign effect per distinct customer (DOMAIN §6), by hand. `autumn` costs 10 per touch.
/// - C1: touched on day 10 (delivered twice) and again on day 11, took part on day 12,
///   ordered 100 on day 14 (before converting: not the campaign's), converted on day 15,
///   ordered 200 on day 15, 300 on day 44 (the window's last day: 15 + 29) and 400 on
///   day 45 (outside the 30-day window).
/// - C2: touched on day 10, took part on day 13, answered satisfaction 5 on day 14,
///   ordered 500 on day 20 without converting.
/// - C3: only a conversion reported, on day 20 at noon; it had ordered 1,000 that morning
///   (the conversion's day counts, whichever arrives first), refunded 250 on day 30.
/// - C4: touched on day 10, answered satisfaction 1 (not a participant: not counted).
///
/// Customers: touched 4 (C3's conversion implies it was reached), participated 3,
/// converted 2; rate 0.5; events: 3 + 1 touches (the redelivery is a duplicate), 2
/// participations, 2 conversions; cost 40; cost per converted customer 20; revenue
/// 200 + 300 + 1,000 − 250 = 1,250; ROI 31.25; mean satisfaction of participants 5.
#[test]
fn campaign_effect_counts_customers_and_attributes_revenue_in_the_window() {
    let mut h = Harness::new();
    let touch = r#""campaign_id":"autumn","action":"touched","cost":10"#;
    let took_part = r#""campaign_id":"autumn","action":"participated""#;
    let converted = r#""campaign_id":"autumn","action":"converted""#;
    let first_touch = line("t1", "C1", "campaign", at(10, 0), touch);
    assert_eq!(h.send(&first_touch), Outcome::Applied);
    assert_eq!(h.send(&first_touch), Outcome::Duplicate);
    h.ev("C1", "campaign", at(11, 0), touch);
    h.ev("C2", "campaign", at(10, 0), touch);
    h.ev("C4", "campaign", at(10, 0), touch);
    h.ev("C4", "survey", at(11, 0), r#""satisfaction":1"#);
    h.ev("C1", "campaign", at(12, 0), took_part);
    h.ev("C2", "campaign", at(13, 0), took_part);
    h.ev("C1", "order", at(14, 0), r#""amount":100"#);
    h.ev("C2", "survey", at(14, 0), r#""satisfaction":5"#);
    h.ev("C1", "campaign", at(15, 0), converted);
    h.ev("C1", "order", at(15, 3600), r#""amount":200"#);
    h.ev("C3", "order", at(20, 8 * 3600), r#""amount":1000"#);
    h.ev("C3", "campaign", at(20, 12 * 3600), converted);
    h.ev("C2", "order", at(20, 0), r#""amount":500"#);
    h.ev("C3", "refund", at(30, 0), r#""amount":250"#);
    h.ev("C1", "order", at(44, 0), r#""amount":300"#);
    h.ev("C1", "order", at(45, 0), r#""amount":400"#);

    let s = h.p.settings().clone();
    let r = h.p.report(at(50, 0)).finish(&s);
    let a = r.analytics.expect("analytics on by default");
    assert_eq!(a.campaigns.len(), 1);
    let c = &a.campaigns[0];
    assert_eq!(c.campaign, "autumn");
    assert_eq!((c.touched, c.participated, c.converted), (4, 3, 2));
    assert_eq!(c.conversion_rate, Some(0.5));
    assert_eq!(
        (c.events.touched, c.events.participated, c.events.converted),
        (4, 2, 2)
    );
    assert_eq!(c.cost, 40.0);
    assert_eq!(c.cost_per_converted_customer, Some(20.0));
    assert_eq!(c.revenue, 1250.0);
    assert_eq!(c.roi, Some(31.25));
    assert_eq!(c.mean_satisfaction, Some(5.0));

    // A restart: the customers come back from their changelog snapshots and the flows
    // from the checkpoint; nothing is counted twice, nothing lost.
    let mut back = Harness::new();
    for id in h.p.customer_ids() {
        back.p.restore(&h.p.snapshot(&id).unwrap()).unwrap();
    }
    back.p.restore_campaigns(&h.p.campaign_lines(), i64::MAX);
    back.offset = h.offset;
    assert_eq!(back.p.campaign_lines(), h.p.campaign_lines());
    // Later orders keep attributing after the restore: C1's window is over, C3's is not.
    back.ev("C1", "order", at(46, 0), r#""amount":1"#);
    back.ev("C3", "order", at(49, 0), r#""amount":50"#);
    let r = back.p.report(at(50, 0)).finish(&s);
    assert_eq!(r.analytics.unwrap().campaigns[0].revenue, 1300.0);
}
