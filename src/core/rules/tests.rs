//! Unit tests of the rule language: parsing, errors, impossible rules, labels, segments.

use super::*;

const W: [u16; 4] = [30, 90, 180, 365];

fn tiers() -> Vec<String> {
    ["high_value", "potential", "regular"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn parse(t: &str) -> Result<Condition, String> {
    Condition::parse(
        t,
        &Vocab {
            windows: &W,
            tiers: &tiers(),
        },
    )
}

fn num(c: &Condition) -> (Metric, Op, f64) {
    match &c.test {
        Test::Num { metric, op, value } => (*metric, *op, *value),
        Test::Label(_) => panic!("not numeric: {}", c.text),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn rule(all: &[&str], any: &[&str]) -> Result<Rule, String> {
    Rule::parse(
        "x",
        &s(all),
        &s(any),
        &[],
        &Vocab {
            windows: &W,
            tiers: &tiers(),
        },
    )
}

#[test]
fn parses_conditions() {
    let c = parse("orders_365d >= 5").unwrap();
    assert_eq!(
        num(&c),
        (Metric::Window(WindowMetric::Orders, 3), Op::Ge, 5.0)
    );
    let c = parse(" monetary_365d>=100_000 ").unwrap();
    assert_eq!(num(&c).2, 100_000.0);
    assert_eq!(c.text, "monetary_365d >= 100000");
    assert_eq!(num(&parse("recency_days<90").unwrap()).1, Op::Lt);
    assert_eq!(
        num(&parse("campaign_conversions_90d != 0").unwrap()).0,
        Metric::Window(WindowMetric::Conversions, 1)
    );
    assert_eq!(num(&parse("p_alive < 0.3").unwrap()).0, Metric::PAlive);
    assert_eq!(num(&parse("clv >= 1000").unwrap()).0, Metric::Clv);
    assert_eq!(
        num(&parse("days_since_last_interaction > 60").unwrap()).0,
        Metric::DaysSinceLastInteraction
    );
}

#[test]
fn every_scalar_name_round_trips() {
    for (m, name, _) in SCALARS {
        assert_eq!(Metric::parse(name, &W), Ok(m), "{name}");
        assert_eq!(m.name(&W), name);
    }
}

#[test]
fn errors_name_the_fix() {
    let e = parse("orders_60d >= 1").unwrap_err();
    assert!(e.contains("facts.windows_days"), "{e}");
    let e = parse("ordres_90d >= 1").unwrap_err();
    assert!(e.contains("unknown metric"), "{e}");
    for (_, name, _) in SCALARS {
        assert!(e.contains(name), "the message lists {name}: {e}");
    }
    for (_, name, _) in LABELS {
        assert!(e.contains(name), "the message lists {name}: {e}");
    }
    let e = parse("orders_90d 1").unwrap_err();
    assert!(e.contains("no comparison"), "{e}");
    let e = parse("orders_90d >= many").unwrap_err();
    assert!(e.contains("not a number"), "{e}");
    assert!(
        parse("tier == gold").is_ok(),
        "an unknown tier never matches"
    );
    let e = parse("segment >= 3").unwrap_err();
    assert!(e.contains("is a label"), "{e}");
    assert!(parse("core == yes").is_err());
    assert!(parse("value_tier == E").is_err());
    assert!(parse("region in []").is_err());
    assert!(parse("region in east").is_err());
}

#[test]
fn parses_and_evaluates_labels() {
    struct C(&'static [(Label, &'static str)]);
    impl Lookup for C {
        fn num(&self, _: Metric) -> Option<f64> {
            None
        }
        fn label(&self, l: Label) -> Option<&str> {
            self.0.iter().find(|(x, _)| *x == l).map(|(_, v)| *v)
        }
    }
    let east = C(&[(Label::Region, "east"), (Label::Tier, "high_value")]);
    let west = C(&[(Label::Region, "west")]);
    let c = parse(r#"region in ["east", north]"#).unwrap();
    assert_eq!(c.text, r#"region in ["east", "north"]"#);
    assert!(c.holds(&east) && !c.holds(&west));
    let c = parse("region not in [east]").unwrap();
    assert!(!c.holds(&east) && c.holds(&west));
    let c = parse(r#"tier == "high_value""#).unwrap();
    assert!(c.holds(&east) && !c.holds(&west), "no value: false");
    let c = parse("segment != enterprise").unwrap();
    assert!(!c.holds(&east), "no segment: false, also for !=");
    assert!(parse("core == true").is_ok() && parse("lifecycle == new").is_ok());
}

#[test]
fn segments_replace_the_conditions() {
    let v = Vocab {
        windows: &W,
        tiers: &tiers(),
    };
    let r = Rule::parse(
        "high_value",
        &s(&["orders_365d >= 5"]),
        &[],
        &[("enterprise".into(), s(&["orders_365d >= 2"]), vec![])],
        &v,
    )
    .unwrap();
    struct C(Option<&'static str>, f64);
    impl Lookup for C {
        fn num(&self, _: Metric) -> Option<f64> {
            Some(self.1)
        }
        fn label(&self, l: Label) -> Option<&str> {
            (l == Label::Segment).then_some(self.0).flatten()
        }
    }
    assert!(r.matches(&C(Some("enterprise"), 3.0)));
    assert!(!r.matches(&C(Some("consumer"), 3.0)));
    assert!(!r.matches(&C(None, 3.0)));
    assert!(r.matches(&C(None, 5.0)));
    assert_eq!(r.conditions().count(), 2);
    assert_eq!(
        r.to_string(),
        "orders_365d >= 5; for segment enterprise: orders_365d >= 2"
    );
    let bad = Rule::parse(
        "x",
        &s(&["orders_365d >= 5"]),
        &[],
        &[("smb".into(), vec![], vec![])],
        &v,
    );
    assert!(bad.unwrap_err().contains("segment `smb"));
}

#[test]
fn finds_impossible_rules() {
    let clash = rule(&["orders_90d >= 5", "orders_90d < 3"], &[]).unwrap_err();
    assert!(
        clash.contains("never match") && !clash.contains("never negative"),
        "{clash}"
    );
    assert!(rule(&["orders_90d < 0"], &[])
        .unwrap_err()
        .contains("never negative"));
    assert!(rule(&["satisfaction_90d > 5"], &[]).is_err());
    assert!(rule(&["orders_90d == 2", "orders_90d > 2"], &[]).is_err());
    assert!(rule(&["orders_90d >= 1", "orders_90d <= 1"], &[]).is_ok());
    assert!(rule(&["value_score > 100"], &[]).is_err());
    assert!(rule(&[], &[]).is_err());
}

#[test]
fn evaluates_all_and_any() {
    let r = rule(
        &["recency_days <= 180"],
        &["orders_365d >= 3", "monetary_365d >= 50000"],
    )
    .unwrap();
    let get = |rec: f64, o: f64, m: f64| {
        move |metric: Metric| match metric {
            Metric::RecencyDays => Some(rec),
            Metric::Window(WindowMetric::Orders, 3) => Some(o),
            Metric::Window(WindowMetric::Monetary, 3) => Some(m),
            _ => None,
        }
    };
    assert!(r.matches(&get(100.0, 3.0, 0.0)));
    assert!(r.matches(&get(100.0, 1.0, 60_000.0)));
    assert!(!r.matches(&get(100.0, 1.0, 10.0)));
    assert!(!r.matches(&get(200.0, 5.0, 60_000.0)));
    assert!(
        !r.matches(&|_| None),
        "absent metrics make conditions false"
    );
    assert_eq!(
        r.to_string(),
        "recency_days <= 180 AND (orders_365d >= 3 OR monetary_365d >= 50000)"
    );
}
