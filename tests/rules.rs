//! Issue 19: lapsed customers, label and tier-history conditions, per-segment thresholds,
//! every documented metric, configurable population scores.

mod common;

use churnwatch::core::output::Output;
use churnwatch::core::rules::{Condition, Vocab};
use churnwatch::core::settings::{SegmentConditions, WarningRuleConfig};
use churnwatch::core::time::format_rfc3339;
use churnwatch::core::{CoreConfig, Settings};
use common::*;

/// Six orders of 25,000 every 15 days, then silence: `high_value` from the fifth order,
/// `potential` 90 days after the last order (with the medium silence warning), and from
/// day 181 after it `churn_risk` with a high `lapsed_top_customer` warning owned by the
/// key-account director, due in 24 hours. Never the fallback tier.
#[test]
fn a_lapsed_top_customer_is_churn_risk_with_a_high_warning_from_day_181() {
    let mut h = Harness::new();
    h.ev(
        "LAPSED",
        "profile",
        at(0, 8 * 3600),
        r#""account_manager":"AM-007""#,
    );
    for i in 0..6 {
        h.ev("LAPSED", "order", at(15 * i, 9 * 3600), r#""amount":25000"#);
    }
    h.advance(at(300, 0));
    let outs = h.take();
    let tiers: Vec<(String, String, String)> = tier_changes(&outs)
        .iter()
        .map(|t| {
            (
                t.from.as_deref().unwrap_or("").to_string(),
                t.to.to_string(),
                t.event_time.to_string(),
            )
        })
        .collect();
    let t = |d: i64, s: i64| format_rfc3339(at(d, s)).to_string();
    let step = |a: &str, b: &str, when: String| (a.to_string(), b.to_string(), when);
    assert_eq!(
        tiers,
        vec![
            step("regular", "new", t(0, 9 * 3600)),
            step("new", "potential", t(15, 9 * 3600)),
            step("potential", "high_value", t(60, 9 * 3600)),
            step("high_value", "potential", t(165, 0)),
            step("potential", "churn_risk", t(256, 0)),
        ]
    );
    let w = warnings(&outs);
    assert_eq!(
        w.len(),
        2,
        "silence (medium), then the lapsed warning (high)"
    );
    assert_eq!(
        (w[0].level, w[0].event_time.as_str()),
        ("medium", &*t(165, 0))
    );
    let high = w[1];
    assert_eq!(high.level, "high");
    assert_eq!(high.previous_level, "medium");
    assert_eq!(high.event_time.as_str(), t(256, 0));
    assert_eq!(high.due.as_str(), t(257, 0), "its own 24-hour SLA");
    assert_eq!(high.owner.as_str(), "key-account-director");
    assert_eq!(high.trigger, "time", "no event: the deadline fires");
    let first = &high.reasons[0];
    assert_eq!(first.rule.as_str(), "lapsed_top_customer");
    let conds: Vec<(&str, Option<f64>)> = first
        .conditions
        .iter()
        .map(|c| (c.condition.as_str(), c.value))
        .collect();
    assert_eq!(
        conds,
        vec![
            ("recency_days > 180", Some(181.0)),
            ("peak_tier == \"high_value\"", None),
            ("lifetime_value >= 200000", Some(150_000.0)),
        ]
    );
    let p = h.profile("LAPSED");
    assert_eq!(p.tier, "churn_risk");
    assert_eq!(p.peak_tier.as_deref(), Some("high_value"));
    assert_eq!(p.previous_tier.as_deref(), Some("potential"));
    assert_eq!(p.warning.level, "high");
}

/// A customer who never reached the top tier but spent 200,000 over its life is a lapsed
/// top customer too; a small one who lapses is churn risk with no high warning.
#[test]
fn lifetime_value_also_makes_a_lapsed_top_customer() {
    let mut h = Harness::new();
    h.ev("BIG", "order", at(0, 0), r#""amount":210000"#);
    h.ev("SMALL", "order", at(0, 0), r#""amount":100"#);
    h.advance(at(200, 0));
    let outs = h.take();
    let highs: Vec<&str> = warnings(&outs)
        .iter()
        .filter(|w| w.level == "high")
        .map(|w| w.customer_id.as_str())
        .collect();
    assert_eq!(highs, vec!["BIG"]);
    assert_eq!(h.profile("SMALL").tier, "churn_risk");
    assert_eq!(h.profile("BIG").tier, "churn_risk");
}

/// Per-segment conditions: enterprise customers are high value from 2 orders and 200,000,
/// everyone else needs the default 5 orders; two otherwise identical customers differ.
#[test]
fn segment_thresholds_give_identical_customers_different_tiers() {
    let toml = r#"
        name = "high_value"
        all = ["recency_days < 90", "orders_365d >= 5", "monetary_365d >= 100000"]
        action = "one-to-one customer success manager"
        [segments.enterprise]
        all = ["recency_days < 90", "orders_365d >= 2", "monetary_365d >= 200000"]
    "#;
    let rule: churnwatch::core::settings::TierRuleConfig = toml::from_str(toml).unwrap();
    assert_eq!(
        rule.segments["enterprise"],
        SegmentConditions {
            all: vec![
                "recency_days < 90".into(),
                "orders_365d >= 2".into(),
                "monetary_365d >= 200000".into()
            ],
            any: vec![],
        }
    );
    let mut h = Harness::with_config(|c| c.tiers.rules[0] = rule);
    for (id, seg) in [("ENT", "enterprise"), ("CON", "consumer")] {
        h.ev(id, "profile", at(0, 0), &format!(r#""segment":"{seg}""#));
        h.ev(id, "order", at(1, 0), r#""amount":150000"#);
        h.ev(id, "order", at(2, 0), r#""amount":150000"#);
    }
    assert_eq!(h.profile("ENT").tier, "high_value");
    assert_eq!(h.profile("CON").tier, "potential");
    let outs = h.take();
    let ent = tier_changes(&outs)
        .into_iter()
        .find(|t| t.customer_id.as_str() == "ENT" && t.to.as_str() == "high_value")
        .unwrap();
    assert_eq!(
        ent.reasons[1].condition.as_str(),
        "orders_365d >= 2",
        "the reasons are the segment's conditions"
    );
}

/// Label and history conditions drive warnings: a downgrade from the top tier, a D value
/// tier (risk overrides value), and the lifecycle.
#[test]
fn labels_and_tier_history_drive_warnings() {
    let warn = |name: &str, all: &[&str]| WarningRuleConfig {
        name: name.into(),
        level: "medium".into(),
        all: all.iter().map(|s| s.to_string()).collect(),
        any: vec![],
        segments: Default::default(),
        sla: None,
    };
    let mut h = Harness::with_config(|c| {
        c.warnings.rules = vec![
            warn(
                "downgraded",
                &["previous_tier == high_value", "tier == potential"],
            ),
            warn(
                "value_tier_d",
                &[
                    "value_tier == D",
                    "lifecycle == new",
                    "lifetime_orders <= 1",
                ],
            ),
        ];
    });
    for i in 0..5 {
        h.ev("TOP", "order", at(i, 0), r#""amount":30000"#);
    }
    h.ev("RISK", "order", at(0, 0), r#""amount":10"#);
    h.ev("RISK", "complaint", at(1, 0), "");
    h.advance(at(100, 0));
    let outs = h.take();
    let raised: Vec<(&str, &str, String)> = warnings(&outs)
        .iter()
        .map(|w| {
            (
                w.customer_id.as_str(),
                w.reasons[0].rule.as_str(),
                w.event_time.to_string(),
            )
        })
        .collect();
    assert_eq!(
        raised,
        vec![
            ("RISK", "value_tier_d", format_rfc3339(at(1, 0)).to_string()),
            ("TOP", "downgraded", format_rfc3339(at(94, 0)).to_string()),
        ]
    );
}

/// Rules reading the population standing need analytics: refused at start-up otherwise.
#[test]
fn population_labels_need_analytics() {
    let mut c = CoreConfig::defaults();
    c.analytics.enabled = false;
    c.warnings.rules[0].all = vec!["abc_class == A".into()];
    let e = Settings::compile(&c).unwrap_err().to_string();
    assert!(e.contains("analytics.enabled = true"), "{e}");
    c.warnings.rules[0].all = vec!["value_score >= 50".into()];
    assert!(Settings::compile(&c).is_err());
}

/// The population scores' numbers come from `[analytics]`.
#[test]
fn population_score_cuts_come_from_config() {
    let mut c = CoreConfig::defaults();
    c.analytics.risk_override = 40.0;
    let s = Settings::compile(&c).unwrap();
    assert_eq!(s.analytics.unwrap().cuts.risk_d, 40.0);
    assert!(s.explain().contains("D when churn risk >= 40"));
    c.analytics.abc_percent = [70.0, 20.0, 20.0];
    let e = Settings::compile(&c).unwrap_err().to_string();
    assert!(e.contains("analytics.abc_percent"), "{e}");
    let mut c = CoreConfig::defaults();
    c.analytics.value_score_weights = [0.5, 0.5, 0.5];
    assert!(Settings::compile(&c).is_err());
    let mut c = CoreConfig::defaults();
    c.analytics.value_tiers = [70.0, 85.0];
    assert!(Settings::compile(&c).is_err());
}

/// `peak_tier` and `previous_tier` survive a snapshot and restore; erase forgets them.
#[test]
fn tier_history_survives_restarts_and_erase_clears_it() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.ev("H", "order", at(i, 0), r#""amount":30000"#);
    }
    h.advance(at(100, 0));
    let p = h.profile("H");
    assert_eq!(
        (
            p.tier.as_str(),
            p.previous_tier.as_deref(),
            p.peak_tier.as_deref()
        ),
        ("potential", Some("high_value"), Some("high_value"))
    );
    let snap = h.p.snapshot("H").unwrap();
    let mut fresh = Harness::new();
    fresh.p.restore(&snap).unwrap();
    let q = fresh.profile("H");
    assert_eq!(
        (q.previous_tier, q.peak_tier, q.tier_since),
        (p.previous_tier, p.peak_tier, p.tier_since)
    );
    h.ev("H", "erase", at(101, 0), "");
    h.ev("H", "order", at(102, 0), r#""amount":1"#);
    let p = h.profile("H");
    assert_eq!(
        (
            p.tier.as_str(),
            p.previous_tier.as_deref(),
            p.peak_tier.as_deref()
        ),
        ("new", None, Some("new"))
    );
}

/// The last interaction is the last event of any kind, and a rule on it fires through
/// the deadlines with no event.
#[test]
fn days_since_last_interaction_is_a_metric_with_deadlines() {
    let mut h = Harness::with_config(|c| {
        c.warnings.rules[0].all = vec!["days_since_last_interaction >= 40".into()];
        c.warnings.rules[0].any = vec![];
    });
    h.ev("I", "order", at(0, 0), r#""amount":1"#);
    h.ev("I", "visit", at(10, 0), "");
    h.advance(at(60, 0));
    let outs = h.take();
    let w = warnings(&outs);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].event_time.as_str(), format_rfc3339(at(50, 0)).as_str());
    let p = h.profile("I");
    assert_eq!(p.facts.last_interaction.as_str(), "2026-01-11");
    assert_eq!(p.facts.days_since_last_interaction, 50);
}

/// Every metric and label name docs/RULES.md documents parses; every metric is evaluated
/// on a customer (one probe warning rule each), and those documented as "always has a
/// value" have one.
#[test]
fn every_documented_name_parses_and_evaluates() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RULES.md")).unwrap();
    let section = |from: &str, to: &str| {
        let a = doc
            .find(from)
            .unwrap_or_else(|| panic!("{from} in RULES.md"));
        let b = a + doc[a..].find(to).unwrap();
        doc[a..b].to_string()
    };
    let rows = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| {
                let l = l.strip_prefix("| `")?;
                let (name, rest) = l.split_once('`')?;
                Some((name.to_string(), rest.to_string()))
            })
            .collect()
    };
    let metrics = rows(&section("## 2. Metrics", "### The periods behind"));
    let labels = rows(&section("### Labels", "### Segments"));
    assert!(metrics.len() >= 27, "{metrics:?}");
    assert!(labels.len() >= 11, "{labels:?}");
    let s = Settings::defaults();
    let tiers: Vec<String> = s.tiers.iter().map(|t| t.name.clone()).collect();
    let v = Vocab {
        windows: &s.windows,
        tiers: &tiers,
    };
    for (name, _) in &labels {
        let text = format!("{name} != never_this_value_xyz");
        let ok = Condition::parse(&text, &v)
            .or_else(|_| Condition::parse(&format!("{name} == true"), &v))
            .or_else(|_| Condition::parse(&format!("{name} in [A]"), &v))
            .or_else(|_| Condition::parse(&format!("{name} == new"), &v))
            .or_else(|_| Condition::parse(&format!("{name} == regular"), &v));
        assert!(ok.is_ok(), "label {name}: {ok:?}");
    }
    let mut probes = Vec::new();
    let mut always = Vec::new();
    for (name, rest) in &metrics {
        let name = name.replace("_Nd", "_90d");
        Condition::parse(&format!("{name} > -1000000000"), &v)
            .unwrap_or_else(|e| panic!("documented metric {name}: {e}"));
        probes.push(WarningRuleConfig {
            name: format!("probe_{name}"),
            level: "medium".into(),
            all: vec![format!("{name} > -1000000000")],
            any: vec![],
            segments: Default::default(),
            sla: None,
        });
        if rest.contains("always has a value") {
            always.push(format!("probe_{name}"));
        }
    }
    let mut h = Harness::with_config(|c| c.warnings.rules = probes);
    h.ev("M", "order", at(0, 0), r#""amount":100"#);
    h.ev("M", "visit", at(1, 0), "");
    let p = h.profile("M");
    let matched: Vec<&str> = p.warning.reasons.iter().map(|r| r.rule.as_str()).collect();
    for a in &always {
        assert!(
            matched.contains(&a.as_str()),
            "{a} has a value: {matched:?}"
        );
    }
    let outs: Vec<Output> = h.take();
    assert!(!outs.is_empty());
}
