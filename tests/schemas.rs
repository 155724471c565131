//! Every output kind, produced from a generated workload, validates against its JSON
//! Schema in `schemas/`; generated valid input validates against `input_event.json`.

mod common;
#[path = "support/schema.rs"]
mod schema;

use std::collections::BTreeMap;

use churnwatch::core::time::{parse_rfc3339, DAY_MS};
use churnwatch::gen::{GenOptions, Generator};
use common::*;
use proptest::prelude::*;
use schema::{check, validator};

/// Every output schema's validator, by the `schema` value it validates.
fn validators() -> BTreeMap<&'static str, jsonschema::Validator> {
    [
        ("churnwatch.tier_changed.v2", "tier_changed.v2.json"),
        ("churnwatch.churn_warning.v2", "churn_warning.v2.json"),
        (
            "churnwatch.churn_warning_cleared.v2",
            "churn_warning_cleared.v2.json",
        ),
        ("churnwatch.profile.v2", "profile.v2.json"),
        (
            "churnwatch.profile_tombstone.v1",
            "profile_tombstone.v1.json",
        ),
        ("churnwatch.dead_letter.v2", "dead_letter.v2.json"),
        (
            "churnwatch.churn_warning_overdue.v2",
            "churn_warning_overdue.v2.json",
        ),
    ]
    .into_iter()
    .map(|(k, f)| (k, validator(f)))
    .collect()
}

#[test]
fn real_outputs_match_their_schemas() {
    let validators = validators();
    let input = validator("input_event.json");

    let mut g = Generator::new(GenOptions {
        customers: 400,
        events: 40_000,
        seed: 11,
        duplicates: 0.01,
        bad: 0.01,
        ..Default::default()
    });
    let mut h = Harness::new();
    let mut buf = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut valid_inputs = 0;
    let mut n = 0;
    while g.next_line(&mut buf) {
        let outcome = h.send(&buf);
        if matches!(outcome, churnwatch::core::Outcome::Applied) {
            check(
                &input,
                "a generated event",
                &serde_json::from_slice(&buf).unwrap(),
            );
            valid_inputs += 1;
        }
        n += 1;
        if n % 5000 == 0 {
            // Profiles as the Kafka runtime takes them, once per commit interval.
            let mut outs = h.take();
            h.p.drain_dirty(&mut outs);
            validate_all(&validators, &outs, &mut seen);
        }
    }
    h.advance(parse_rfc3339("2026-06-01T00:00:00Z").unwrap());
    let mut outs = h.take();
    h.p.drain_dirty(&mut outs);
    validate_all(&validators, &outs, &mut seen);
    for p in h.p.profiles_sorted() {
        let v = serde_json::to_value(&p).unwrap();
        check(&validators["churnwatch.profile.v2"], "a final profile", &v);
    }
    let settings = h.p.settings().clone();
    let report =
        h.p.report(parse_rfc3339("2026-06-01T00:00:00Z").unwrap())
            .finish(&settings);
    let v = serde_json::to_value(&report).unwrap();
    check(&validator("report.v2.json"), "the population report", &v);
    assert!(v["overall"]["customers"].as_u64().unwrap() > 300, "{v}");
    assert_eq!(v["currency"], "CNY");
    assert!(
        v["data_quality"]["overall"]["rejected"].as_u64().unwrap() > 0,
        "{v}"
    );
    // A currency without a rate: a dead letter of the v2 contract.
    h.send(br#"{"event_id":"eur","customer_id":"C0000001","type":"order","ts":"2026-06-01T00:00:00Z","amount":1,"currency":"EUR"}"#);
    let outs = h.take();
    validate_all(&validators, &outs, &mut seen);
    assert!(
        matches!(&outs[..], [churnwatch::core::output::Output::DeadLetter(d)] if d.reason == "unknown_currency")
    );
    for k in validators.keys() {
        assert!(
            seen.get(*k).copied().unwrap_or(0) > 0,
            "no {k} was produced: {seen:?}"
        );
    }
    assert!(valid_inputs > 30_000);
}

fn validate_all(
    validators: &BTreeMap<&str, jsonschema::Validator>,
    outs: &[churnwatch::core::Output],
    seen: &mut BTreeMap<String, usize>,
) {
    for v in json(outs) {
        let schema = v["schema"].as_str().unwrap().to_string();
        let val = validators
            .get(schema.as_str())
            .unwrap_or_else(|| panic!("no schema for {schema}"));
        check(val, &schema, &v);
        if schema == "churnwatch.tier_changed.v2" {
            assert!(
                !(v["from"].is_null() && v["to"] == "regular"),
                "a first appearance in the fallback tier is not an alert: {v}"
            );
        }
        *seen.entry(schema).or_default() += 1;
    }
}

#[test]
fn the_schemas_reject_what_they_should() {
    let v = validator("tier_changed.v2.json");
    let mut h = Harness::new();
    h.ev("C1", "order", at(0, 0), r#""amount":10"#);
    let mut good = json(&h.take())[0].clone();
    check(&v, "a tier change", &good);
    let mut bad_time = good.clone();
    bad_time["event_time"] = "yesterday".into();
    assert!(
        !v.is_valid(&bad_time),
        "formats are checked: `yesterday` is no date-time"
    );
    let mut with_windows = good.clone();
    with_windows["facts"]["windows"] = serde_json::json!([]);
    assert!(
        !v.is_valid(&with_windows),
        "alerts carry headline facts only: window arrays are the profile's"
    );
    good["trigger"] = "sometimes".into();
    assert!(!v.is_valid(&good), "an unknown trigger must not validate");
    let input = validator("input_event.json");
    let bad: serde_json::Value = serde_json::from_str(
        r#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert!(
        !input.is_valid(&bad),
        "an order without amount must not validate"
    );
}

/// Dead letters of records carrying personal data, in each `dead_letters.original` mode:
/// they validate against the v2 schema, and only `full` (the documented opt-in) keeps
/// any of the personal values.
#[test]
fn dead_letters_validate_and_keep_no_personal_data_unless_full() {
    let v = validator("dead_letter.v2.json");
    let personal = [
        "Li Wei",
        "+86 138 0013 8000",
        "li.wei@example.com",
        "110101199003074514",
    ];
    let records: Vec<Vec<u8>> = vec![
        // Rejected (negative amount) with personal fields beside the contract's.
        br#"{"event_id":"p1","customer_id":"C9","type":"order","ts":"2026-01-05T10:00:00Z","amount":-5,"name":"Li Wei","phone":"+86 138 0013 8000","email":"li.wei@example.com","id_number":"110101199003074514"}"#.to_vec(),
        // Unknown type, personal data nested.
        br#"{"event_id":"p2","customer_id":"C9","type":"call","ts":"2026-01-05T10:00:00Z","contact":{"name":"Li Wei","phone":"+86 138 0013 8000"}}"#.to_vec(),
        // Not JSON at all.
        b"Li Wei;+86 138 0013 8000;li.wei@example.com;110101199003074514".to_vec(),
        // Personal data in a contract field of the wrong type.
        br#"{"event_id":"p3","customer_id":"C9","type":"survey","ts":"2026-01-05T10:00:00Z","nps":"li.wei@example.com"}"#.to_vec(),
    ];
    for mode in ["redacted", "full", "none"] {
        let mut h = Harness::with_config(|c| c.dead_letters.original = mode.into());
        for r in &records {
            h.send(r);
        }
        let outs = h.take();
        assert_eq!(outs.len(), records.len(), "{mode}: one dead letter each");
        for o in outs {
            let mut b = Vec::new();
            o.write_json(&mut b);
            let json: serde_json::Value = serde_json::from_slice(&b).unwrap();
            check(&v, &format!("a {mode} dead letter"), &json);
            assert_eq!(json["original"]["mode"], mode);
            let text = String::from_utf8(b).unwrap();
            let leaked: Vec<&&str> = personal.iter().filter(|p| text.contains(**p)).collect();
            if mode == "full" {
                assert!(json["original"]["base64"].is_string());
            } else {
                assert!(leaked.is_empty(), "{mode} leaked {leaked:?}: {text}");
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Whatever the workload (customers, volume, duplicates, bad records, how often
    /// profiles are drained, how far time runs past the last event, either profile
    /// publishing setting), every v2 output validates against its schema.
    #[test]
    fn v2_outputs_validate_for_any_workload(
        seed in any::<u64>(),
        customers in 1u32..80,
        events in 1u64..1_500,
        days in 1u32..900,
        duplicates in 0.0f64..0.3,
        bad in 0.0f64..0.3,
        drain_every in 1usize..400,
        silence_days in 0i64..600,
        standing in any::<bool>(),
    ) {
        thread_local!(static V: BTreeMap<&'static str, jsonschema::Validator> = validators());
        let mut g = Generator::new(GenOptions { customers, events, seed, days, duplicates, bad, ..Default::default() });
        let mut h = Harness::with_config(|c| {
            if standing {
                c.outputs.profile_publish = "on_standing_change".into();
            }
        });
        let mut buf = Vec::new();
        let mut seen = BTreeMap::new();
        let mut n = 0;
        let mut check_all = |h: &mut Harness| {
            let mut outs = h.take();
            h.p.drain_dirty(&mut outs);
            V.with(|v| validate_all(v, &outs, &mut seen));
        };
        while g.next_line(&mut buf) {
            h.send(&buf);
            n += 1;
            if n % drain_every == 0 {
                check_all(&mut h);
            }
        }
        let last = h.p.watermark().unwrap_or(0);
        h.advance(last + silence_days * DAY_MS);
        check_all(&mut h);
        for p in h.p.profiles_sorted() {
            let v = serde_json::to_value(&p).unwrap();
            V.with(|val| check(&val["churnwatch.profile.v2"], "a final profile", &v));
        }
    }
}
