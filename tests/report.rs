//! The population report, value scores and campaign figures of DOMAIN.md §4–6 on
//! hand-made populations, worked by hand, end to end through the processor.

mod common;

use common::*;

/// The population report on a hand-made population, as of day 170 (period = 90 days:
/// the last period is days 81–170, the previous one days −9–80).
#[test]
fn population_report_figures_are_exact_on_a_small_population() {
    let mut h = Harness::new();
    h.ev("A", "order", at(0, 0), r#""amount":100"#);
    h.ev("A", "order", at(100, 0), r#""amount":300"#);
    h.ev("A", "survey", at(100, 60), r#""nps":10"#);
    h.ev("A", "survey", at(150, 0), r#""satisfaction":4"#);
    h.ev("B", "order", at(50, 0), r#""amount":50"#);
    h.ev("B", "complaint", at(160, 0), "");
    h.ev("B", "survey", at(160, 60), r#""nps":3"#);
    h.ev("C", "visit", at(10, 0), "");
    h.p.advance_to(at(170, 0), &h.ctx.clone(), &mut h.outs);
    let s = h.p.settings().clone();
    let r = h.p.report(at(170, 0)).finish(&s);
    let o = &r.overall;
    assert_eq!(r.as_of, "2026-06-20T00:00:00Z");
    assert_eq!(r.period_days, 90);
    assert_eq!(o.customers, 3);
    assert_eq!(o.active_customers, 2, "A and B ordered within 365 days");
    assert_eq!(o.repurchase_rate, Some(1.0 / 3.0), "only A has two orders");
    assert_eq!(
        o.retention,
        Some(0.5),
        "A and B bought in the previous period, A again"
    );
    assert_eq!(o.average_order_value, Some(150.0), "(100 + 300 + 50) / 3");
    assert_eq!(o.complaint_rate, Some(1.0 / 3.0));
    assert_eq!(o.mean_satisfaction, Some(4.0));
    assert_eq!(o.nps, Some(0.0), "one promoter (10), one detractor (3)");
    // Per tier: the same sums, grouped by each customer's tier.
    let mut want: std::collections::BTreeMap<String, (u64, u64, f64)> = Default::default();
    let facts = [("A", 2, 400.0), ("B", 1, 50.0), ("C", 0, 0.0)];
    let (mut medium, mut high) = (0, 0);
    for (id, orders, spend) in facts {
        let p = h.p.profile(id).unwrap();
        let e = want.entry(p.tier.to_string()).or_default();
        *e = (e.0 + 1, e.1 + orders, e.2 + spend);
        match p.warning.level {
            "medium" => medium += 1,
            "high" => high += 1,
            _ => {}
        }
    }
    assert_eq!(r.tiers.len(), s.tiers.len());
    for t in &r.tiers {
        let (n, orders, spend) = want.get(&t.tier).copied().unwrap_or_default();
        assert_eq!(t.customers, n, "{t:?}");
        assert_eq!(t.total_spend, spend, "{t:?}");
        assert_eq!(t.share, n as f64 / 3.0, "{t:?}");
        assert_eq!(
            t.average_order_value,
            (orders > 0).then(|| spend / orders as f64),
            "{t:?}"
        );
        assert_eq!(
            t.average_frequency,
            (n > 0).then(|| orders as f64 / n as f64),
            "{t:?}"
        );
    }
    assert_eq!(
        (o.warnings_open.medium, o.warnings_open.high),
        (medium, high)
    );
    let new_customers: u64 = r
        .tier_transitions
        .iter()
        .filter(|t| t.from.is_none())
        .map(|t| t.count)
        .sum();
    assert_eq!(
        new_customers, 3,
        "every customer got a first tier: {:?}",
        r.tier_transitions
    );
}

/// Ten customers who each ordered once on day 100 (K01 … K10 spending 1,000 … 10,000);
/// K10 also visited on days 50, 60 and 70, K03 complained, and two campaigns ran, of which
/// only one is tracked by name (`analytics.max_campaigns = 1`). Event ids e1, e2, ….
fn analytics_lines() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut ev = |cust: &str, kind: &str, ts, extra: &str| {
        let id = format!("e{}", v.len() + 1);
        v.push(line(&id, cust, kind, ts, extra));
    };
    for d in [50, 60, 70] {
        ev("K10", "visit", at(d, 0), "");
    }
    for i in 1..=10 {
        let amount = format!(r#""amount":{}"#, i * 1000);
        ev(&format!("K{i:02}"), "order", at(100, i), &amount);
    }
    ev("K03", "complaint", at(105, 0), "");
    let spring = r#""campaign_id":"spring","action":"touched","cost":100"#;
    ev("K01", "campaign", at(101, 0), spring);
    ev("K02", "campaign", at(101, 0), spring);
    let converted = r#""campaign_id":"spring","action":"converted""#;
    ev("K02", "campaign", at(102, 0), converted);
    ev("K02", "survey", at(103, 0), r#""satisfaction":4"#);
    ev("K05", "survey", at(103, 0), r#""satisfaction":2"#);
    let summer = r#""campaign_id":"summer","action":"touched","cost":50"#;
    ev("K03", "campaign", at(104, 0), summer);
    v
}

fn analytics_harness() -> Harness {
    Harness::with_config(|c| c.analytics.max_campaigns = 1)
}

fn analytics_population() -> Harness {
    let mut h = analytics_harness();
    for l in analytics_lines() {
        h.send(&l);
    }
    h.advance(at(110, 0));
    h
}

/// Value score, value tiers, ABC, core customers and campaign effect, worked by hand.
/// Percentiles are mid-ranks: spend K01 … K10 → 5, 15, …, 95. Activity (visits +
/// conversions in 90 days): K10 3 → 95, K02 1 (its conversion) → 85, the other eight 0 →
/// 40. Tenure: K10 first seen on day 50 → 95, the rest tied → 45.
#[test]
fn analytics_figures_are_exact_on_a_small_population() {
    let h = analytics_population();
    let k10 = h.p.standing("K10", None).unwrap();
    assert_eq!(
        (
            k10.spend_percentile,
            k10.activity_percentile,
            k10.tenure_percentile
        ),
        (95.0, 95.0, 95.0)
    );
    assert_eq!(k10.value_score, 95.0);
    assert_eq!(
        (k10.value_tier, k10.abc_class, k10.core_customer),
        ("A", "A", true)
    );
    let k09 = h.p.standing("K09", None).unwrap();
    // 0.5 × 85 + 0.3 × 40 + 0.2 × 45 = 63.5
    assert!((k09.value_score - 63.5).abs() < 1e-9, "{k09:?}");
    assert_eq!((k09.value_tier, k09.core_customer), ("C", false));
    let k02 = h.p.standing("K02", None).unwrap();
    // 0.5 × 15 + 0.3 × 85 + 0.2 × 45 = 42
    assert!((k02.value_score - 42.0).abs() < 1e-9, "{k02:?}");
    let k03 = h.p.standing("K03", None).unwrap();
    assert_eq!(
        k03.value_tier, "D",
        "one complaint: churn risk 50 overrides value"
    );
    // ABC over 55,000: spend above K06 is 34,000 (62 %) → A; above K05 40,000 (73 %) → B;
    // above K03 49,000 (89 %) → B; above K02 52,000 (95 %) → C.
    let classes: Vec<&str> = (1..=10)
        .map(|i| h.p.standing(&format!("K{i:02}"), None).unwrap().abc_class)
        .collect();
    assert_eq!(classes, ["C", "C", "B", "B", "B", "A", "A", "A", "A", "A"]);

    let s = h.p.settings().clone();
    let r = h.p.report(at(110, 0)).finish(&s);
    let a = r.analytics.expect("analytics on by default");
    let tiers: Vec<u64> = a.value_tiers.values().copied().collect();
    assert_eq!(tiers, [1, 0, 8, 1], "A B C D");
    // Class spends come from the sketch: each spend within α = 1 % of its value.
    let near = |got: f64, want: f64| (got - want).abs() <= 0.01 * want;
    for (c, n, spend) in [("A", 5, 40_000.0), ("B", 3, 12_000.0), ("C", 2, 3_000.0)] {
        let l = &a.abc_classes[c];
        assert_eq!(l.customers, n, "{c}");
        assert!(near(l.spend_365, spend), "{c}: {}", l.spend_365);
    }
    assert!(near(
        a.abc_classes["A"].share_of_spend.unwrap(),
        40.0 / 55.0
    ));
    assert_eq!(a.core_customers.customers, 1);
    assert_eq!(a.core_customers.share_of_customers, 0.1);
    assert!(near(a.core_customers.share_of_spend.unwrap(), 10.0 / 55.0));

    // Campaigns: spring touched K01 and K02 (100 each), K02 converted and then answered 4;
    // K05's answer belongs to no campaign; summer is beyond the limit → `other`.
    assert_eq!(a.campaigns.len(), 2);
    let spring = &a.campaigns[0];
    assert_eq!(spring.campaign, "spring");
    assert_eq!((spring.touched, spring.converted), (2, 1));
    assert_eq!(spring.conversion_rate, Some(0.5));
    assert_eq!(spring.cost, 200.0);
    assert_eq!(spring.cost_per_converted_customer, Some(200.0));
    assert_eq!(
        (spring.events.touched, spring.events.converted),
        (2, 1),
        "K02 was touched, then converted: one customer at each stage"
    );
    assert_eq!(spring.mean_satisfaction, Some(4.0));
    let other = &a.campaigns[1];
    assert_eq!(other.campaign, "other");
    assert_eq!((other.touched, other.converted, other.cost), (1, 0, 50.0));
    assert_eq!(other.conversion_rate, Some(0.0));
    assert_eq!(
        (other.cost_per_converted_customer, other.mean_satisfaction),
        (None, None)
    );
}

/// A crash after customers' state was written but before the checkpoint: the restored
/// processor skips the re-delivered events for state but still counts them for the
/// campaign figures, which end up exactly as without the crash.
#[test]
fn campaign_figures_survive_a_restore_with_newer_customer_state() {
    let lines = analytics_lines();
    let whole = analytics_population();
    // The checkpoint was taken with next offset 16 (after the first spring touch) …
    let next_offset = 16;
    let mut first = analytics_harness();
    let mut figures = Vec::new();
    for l in &lines {
        if first.offset + 1 == next_offset {
            figures = first.p.campaign_lines();
        }
        first.send(l);
    }
    assert_eq!(figures[0].touched, 1);
    // … but every customer's changelog record was written after the last event.
    let mut restored = analytics_harness();
    for i in 1..=10 {
        let snap = first.p.snapshot(&format!("K{i:02}")).unwrap();
        restored.p.restore(&snap).unwrap();
    }
    restored.p.restore_campaigns(&figures, next_offset);
    restored.offset = next_offset - 1;
    for l in &lines[(next_offset - 1) as usize..] {
        assert_eq!(restored.send(l), churnwatch::core::Outcome::AlreadyApplied);
    }
    assert_eq!(restored.p.campaign_lines(), whole.p.campaign_lines());
    assert_eq!(restored.p.campaign_lines(), first.p.campaign_lines());
}
