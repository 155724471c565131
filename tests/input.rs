//! Input as data (DOMAIN.md §7): duplicates, re-consumed offsets, late and future events,
//! erasure, abnormal bursts and rejections, end to end through the processor.

mod common;

use churnwatch::core::output::Output;
use churnwatch::core::{Outcome, RejectReason};
use common::*;

const AM: &str = r#""account_manager":"AM-007""#;

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
