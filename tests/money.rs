//! Money in one currency and the data-quality view (issue 23), end to end through the
//! processor: exact conversion, unknown currencies, rates over time, thresholds in the
//! reporting currency, and the report's data_quality counts on a hand-made input.

mod common;

use churnwatch::core::output::Output;
use churnwatch::core::settings::{CoreConfig, RateConfig};
use churnwatch::core::{Outcome, RejectReason, Settings};
use common::*;

fn rate(currency: &str, rate: &str, from: Option<&str>) -> RateConfig {
    RateConfig {
        currency: currency.into(),
        rate: rate.into(),
        from: from.map(Into::into),
    }
}

/// USD at 7.1234 from 2026-01-01 (the test calendar's day 0), JPY at 0.04831 always.
fn usd_jpy(c: &mut CoreConfig) {
    c.money.rates = vec![
        rate("USD", "7.1234", Some("2026-01-01T00:00:00Z")),
        rate("JPY", "0.04831", None),
    ];
}

fn cents(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

#[test]
fn mixed_currency_orders_convert_and_sum_exactly() {
    let mut h = Harness::with_config(usd_jpy);
    for (d, extra, want) in [
        (0, r#""amount":100.00,"currency":"USD""#, 71_234), // 712.34 CNY
        (1, r#""amount":100,"currency":"CNY""#, 10_000),
        (2, r#""amount":1000,"currency":"JPY""#, 4_831), // 48.31 CNY
        (3, r#""amount":500,"currency":"JPY""#, 2_416),  // 24.155: half a fen, to even
        (4, r#""amount":1500,"currency":"JPY""#, 7_246), // 72.465: half a fen, to even
        (5, r#""amount":0.125"#, 12),                    // no currency: CNY, half to even
        (6, r#""amount":1.5e2,"currency":"CNY""#, 15_000), // exponent: the serde path
    ] {
        let before =
            h.p.profile("M1")
                .map_or(0, |p| cents(p.facts.lifetime_value));
        assert_eq!(
            h.ev("M1", "order", at(d, 0), extra),
            Outcome::Applied,
            "{extra}"
        );
        assert_eq!(
            cents(h.profile("M1").facts.lifetime_value) - before,
            want,
            "{extra}"
        );
    }
    // A refund in USD is converted the same way and subtracted.
    h.ev(
        "M1",
        "refund",
        at(7, 0),
        r#""amount":0.07,"currency":"USD""#,
    ); // 0.498638 → 0.50
    let p = h.profile("M1");
    let total = 71_234 + 10_000 + 4_831 + 2_416 + 7_246 + 12 + 15_000 - 50;
    assert_eq!(cents(p.facts.lifetime_value), total);
    assert_eq!(cents(p.facts.windows[0].monetary), total);
    assert_eq!(p.facts.currency, "CNY");
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["facts"]["currency"], "CNY");
    // Campaign costs are money too.
    assert_eq!(
        h.ev(
            "M1",
            "campaign",
            at(8, 0),
            r#""campaign_id":"spring","action":"touched","cost":10,"currency":"USD""#
        ),
        Outcome::Applied
    );
    assert_eq!(
        h.ev(
            "M1",
            "campaign",
            at(8, 1),
            r#""campaign_id":"spring","action":"touched","cost":10,"currency":"EUR""#
        ),
        Outcome::Rejected(RejectReason::UnknownCurrency)
    );
    let settings = h.p.settings().clone();
    let report = h.p.report(at(9, 0)).finish(&settings);
    assert_eq!(report.currency, "CNY");
    let spring = &report.analytics.as_ref().unwrap().campaigns[0];
    assert_eq!((spring.campaign.as_str(), spring.cost), ("spring", 71.23));
}

#[test]
fn an_unknown_currency_is_a_dead_letter_and_changes_nothing() {
    let mut h = Harness::with_config(usd_jpy);
    h.ev("U1", "order", at(10, 0), r#""amount":100"#);
    h.take();
    let before = h.profile("U1");
    for (extra, detail_has) in [
        (r#""amount":100,"currency":"EUR""#, "no rate for EUR to CNY"),
        (r#""amount":100,"currency":"usd""#, "not an ISO 4217 code"),
        (
            r#""amount":100,"currency":"+86 138 0000 0000""#,
            "not an ISO 4217 code",
        ),
    ] {
        assert_eq!(
            h.ev("U1", "order", at(11, 0), extra),
            Outcome::Rejected(RejectReason::UnknownCurrency),
            "{extra}"
        );
        match &h.take()[..] {
            [Output::DeadLetter(d)] => {
                assert_eq!(d.reason, "unknown_currency");
                assert!(d.detail.contains(detail_has), "{}", d.detail);
                assert!(
                    !d.detail.contains("138") && !d.detail.contains("usd"),
                    "{}",
                    d.detail
                );
                // The redacted original keeps the amount and a currency that looks like
                // a code (not a phone number sent in its place).
                let fields = d.original.fields.as_ref().unwrap();
                let kept = fields.iter().any(|(k, _)| k == "currency");
                assert_eq!(kept, !extra.contains("+86"), "{fields:?}");
                assert!(fields.contains(&("amount".to_string(), serde_json::json!(100))));
            }
            other => panic!("{other:?}"),
        }
    }
    // USD has a rate only from 2026-01-01: an event before it has none.
    let early = line(
        "early",
        "U1",
        "order",
        at(-1, 0),
        r#""amount":1,"currency":"USD""#,
    );
    assert_eq!(
        h.send(&early),
        Outcome::Rejected(RejectReason::UnknownCurrency)
    );
    h.take();
    assert_eq!(h.profile("U1"), before);
    assert_eq!(
        h.p.stats().rejected[RejectReason::UnknownCurrency.index()],
        4
    );
    let q = &h.p.stats().quality.types[churnwatch::core::EventKind::Order.index()];
    assert_eq!(
        (q.seen, q.rejected[RejectReason::UnknownCurrency.index()]),
        (5, 4)
    );

    // With money.missing_currency = "reject", an amount without a currency is rejected.
    let mut strict = Harness::with_config(|c| c.money.missing_currency = "reject".into());
    assert_eq!(
        strict.ev("S1", "order", at(0, 0), r#""amount":1"#),
        Outcome::Rejected(RejectReason::MissingField)
    );
    assert_eq!(
        strict.ev("S1", "order", at(0, 1), r#""amount":1,"currency":"CNY""#),
        Outcome::Applied
    );
    assert_eq!(
        strict.ev("S1", "visit", at(0, 2), ""),
        Outcome::Applied,
        "no money, no currency needed"
    );
}

#[test]
fn a_rate_change_applies_only_forward_and_replays_the_same() {
    let jan =
        |c: &mut CoreConfig| c.money.rates = vec![rate("USD", "7.0", Some("2026-01-01T00:00:00Z"))];
    let both = |c: &mut CoreConfig| {
        c.money.rates = vec![
            rate("USD", "7.0", Some("2026-01-01T00:00:00Z")),
            rate("USD", "7.5", Some("2026-03-01T00:00:00Z")),
        ]
    };
    let lines = [
        line(
            "r1",
            "R1",
            "order",
            at(10, 0),
            r#""amount":100,"currency":"USD""#,
        ), // Jan 11: 7.0
        line(
            "r2",
            "R1",
            "order",
            at(70, 0),
            r#""amount":100,"currency":"USD""#,
        ), // Mar 12: 7.5
        // Arrives after the March order but happened in January: its own time's rate.
        line(
            "r3",
            "R1",
            "order",
            at(20, 0),
            r#""amount":100,"currency":"USD""#,
        ),
    ];
    // Before the new rate was configured, the January order converted at 7.0…
    let mut old = Harness::with_config(jan);
    old.send(&lines[0]);
    assert_eq!(cents(old.profile("R1").facts.lifetime_value), 70_000);
    // …and with it configured, still does: the new rate changes later events only.
    let run = || {
        let mut h = Harness::with_config(both);
        for l in &lines {
            assert_eq!(h.send(l), Outcome::Applied);
        }
        h
    };
    let mut h = run();
    assert_eq!(
        cents(h.profile("R1").facts.lifetime_value),
        70_000 + 75_000 + 70_000
    );
    // A replay of the same input with the same config gives the same profile and outputs.
    let mut again = run();
    assert_eq!(again.profile("R1"), h.profile("R1"));
    let bytes = |o: Vec<Output>| o.iter().map(Output::to_json).collect::<Vec<_>>();
    assert_eq!(bytes(again.take()), bytes(h.take()));
    // The rates are part of the rule set's version: consumers can tell the change.
    let v = |f: fn(&mut CoreConfig)| {
        let mut c = CoreConfig::defaults();
        f(&mut c);
        Settings::compile(&c).unwrap().rules_version
    };
    assert_ne!(v(jan), v(both));
}

#[test]
fn tier_thresholds_compare_in_the_reporting_currency() {
    // high_value needs monetary_365d >= 100000 (CNY). 5 × 2807 USD = 99,976.90 CNY;
    // 5 × 2808 USD = 100,012.55 CNY. In dollars both are far below 100,000.
    let mut h = Harness::with_config(usd_jpy);
    for (cust, amount) in [("T1", 2807), ("T2", 2808)] {
        for d in 0..5 {
            h.ev(
                cust,
                "order",
                at(d * 10, 0),
                &format!(r#""amount":{amount},"currency":"USD""#),
            );
        }
    }
    let outs = h.take();
    let last_tier = |c: &str| {
        tier_changes(&outs)
            .iter()
            .rev()
            .find(|t| t.customer_id == c)
            .map(|t| {
                (
                    t.to.to_string(),
                    cents(t.facts.monetary),
                    t.facts.currency.to_string(),
                )
            })
    };
    // T1 became potential at its third order (3 × 19,995.38 ≥ 50,000) and stays there.
    assert_eq!(
        last_tier("T1"),
        Some(("potential".into(), 5_998_614, "CNY".into()))
    );
    let t1 = h.profile("T1");
    assert_eq!(
        (t1.tier.as_str(), cents(t1.facts.windows[3].monetary)),
        ("potential", 9_997_690)
    );
    assert_eq!(
        last_tier("T2"),
        Some(("high_value".into(), 10_001_255, "CNY".into()))
    );
    for v in json(&outs) {
        if v["schema"] != "churnwatch.profile.v2" && v.get("facts").is_some() {
            assert_eq!(v["facts"]["currency"], "CNY", "{v}");
        }
    }
}

#[test]
fn the_data_quality_section_counts_a_hand_made_input() {
    let mut h = Harness::with_config(|c| c.limits.max_orders_per_minute = 2);
    let first = line("q1", "Q1", "order", at(0, 10), r#""amount":10"#);
    let sent = [
        h.send(&first),
        h.send(&first), // duplicate
        h.ev("Q1", "order", at(0, 20), r#""amount":10"#),
        h.ev("Q1", "order", at(0, 30), r#""amount":10"#), // third in the minute
        h.ev("Q2", "order", at(1, 0), r#""amount":5,"currency":"EUR""#),
        h.ev("Q2", "order", at(1, 1), r#""amount":-1"#),
        h.ev("Q2", "visit", at(2, 0), ""),
        h.ev("Q2", "visit", at(1, 43_200), ""), // behind the watermark: late
        h.send(b"{not json"),
        h.ev("Q2", "foo", at(2, 1), ""),
        h.send(br#"{"event_id":"x","type":"survey","ts":"2026-01-03T00:00:00Z","nps":9}"#),
    ];
    use Outcome::*;
    use RejectReason as R;
    assert_eq!(
        sent,
        [
            Applied,
            Duplicate,
            Applied,
            Rejected(R::AbnormalFrequency),
            Rejected(R::UnknownCurrency),
            Rejected(R::NegativeAmount),
            Applied,
            Applied,
            Rejected(R::InvalidJson),
            Rejected(R::UnknownType),
            Rejected(R::MissingField),
        ]
    );
    let settings = h.p.settings().clone();
    let report = h.p.report(at(3, 0)).finish(&settings);
    let v = serde_json::to_value(&report.data_quality).unwrap();
    let by_type = |t: &str| {
        v["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["type"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_type("order"),
        serde_json::json!({
            "type": "order", "events": 6, "rejected": 3, "rejected_share": 0.5,
            "rejected_by_reason": {"abnormal_frequency": 1, "negative_amount": 1, "unknown_currency": 1},
            "duplicates": 1, "late": 0, "abnormal_frequency": 1, "unknown_currency": 1
        })
    );
    assert_eq!(
        by_type("visit"),
        serde_json::json!({
            "type": "visit", "events": 2, "rejected": 0, "rejected_share": 0.0,
            "rejected_by_reason": {}, "duplicates": 0, "late": 1,
            "abnormal_frequency": 0, "unknown_currency": 0
        })
    );
    assert_eq!(
        by_type("survey")["rejected_by_reason"],
        serde_json::json!({"missing_field": 1})
    );
    assert_eq!(
        (
            by_type("unknown")["events"].as_u64(),
            by_type("unknown")["rejected_by_reason"].clone()
        ),
        (
            Some(2),
            serde_json::json!({"invalid_json": 1, "unknown_type": 1})
        )
    );
    assert_eq!(by_type("refund")["rejected_share"], serde_json::Value::Null);
    let o = &v["overall"];
    assert_eq!(
        (
            o["events"].as_u64(),
            o["rejected"].as_u64(),
            o["duplicates"].as_u64(),
            o["late"].as_u64()
        ),
        (Some(11), Some(6), Some(1), Some(1))
    );
    assert_eq!(o["rejected_share"].as_f64(), Some(6.0 / 11.0));
    // Two partitions' sums merge into the same figures as one.
    let mut merged = churnwatch::core::report::ReportSums::new(&settings, 0);
    merged.merge(&h.p.report(at(3, 0)));
    merged.merge(&churnwatch::core::report::ReportSums::new(&settings, 0));
    assert_eq!(merged.finish(&settings).data_quality, report.data_quality);
}

/// README's `[money]` defaults table says what config/default.toml holds.
#[test]
fn the_readme_money_defaults_match_the_default_config() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let cell = |key: &str| {
        readme
            .lines()
            .find_map(|l| l.strip_prefix(&format!("| `money.{key}` | `")))
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("README has no row for money.{key}"))
            .to_string()
    };
    let d = CoreConfig::defaults().money;
    assert_eq!(cell("currency"), format!("\"{}\"", d.currency));
    assert_eq!(
        cell("missing_currency"),
        format!("\"{}\"", d.missing_currency)
    );
    assert_eq!(cell("rates"), "[]");
    assert!(d.rates.is_empty());
}
