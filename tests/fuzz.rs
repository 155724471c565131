//! Fuzzing decode + apply + encode with arbitrary and mutated input: nothing may panic,
//! and every output must still serialize. Bounded for CI; for a longer run:
//! `FUZZ_CASES=200000 cargo test --release --test fuzz`.

mod common;

use churnwatch::core::output::Output;
use common::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

const SEEDS: [&str; 13] = [
    r#"{"event_id":"a1","customer_id":"C1","type":"order","ts":"2026-03-15T09:30:00Z","amount":18750.00,"currency":"CNY","channel":"web","category":"wealth"}"#,
    r#"{"event_id":"a2","customer_id":"C1","type":"refund","ts":"2026-03-16T09:30:00Z","amount":50}"#,
    r#"{"event_id":"a3","customer_id":"C2","type":"visit","ts":"2026-03-17T09:30:00+08:00","channel":"app"}"#,
    r#"{"event_id":"a4","customer_id":"C2","type":"complaint","ts":"2026-03-18T09:30:00Z"}"#,
    r#"{"event_id":"a5","customer_id":"C2","type":"complaint_resolved","ts":"2026-03-19T09:30:00Z"}"#,
    r#"{"event_id":"a6","customer_id":"C1","type":"survey","ts":"2026-03-20T09:30:00Z","satisfaction":2.5,"nps":3}"#,
    r#"{"event_id":"a7","customer_id":"C3","type":"campaign","ts":"2026-03-21T09:30:00Z","campaign_id":"X","action":"converted","cost":3.5}"#,
    r#"{"event_id":"a8","customer_id":"C3","type":"profile","ts":"2026-03-22T09:30:00Z","account_manager":"AM-1","industry":"retail","region":"north","segment":"smb"}"#,
    r#"{"event_id":"a9","customer_id":"C3","type":"erase","ts":"2026-03-23T09:30:00Z"}"#,
    r#"{"event_id":"a10","customer_id":"C4","type":"order","ts":"2099-12-31T23:59:59.999Z","amount":9999999999}"#,
    r#"{"event_id":"a11","customer_id":"C4","type":"order","ts":"2026-03-15T09:30:00Z","amount":100.005,"currency":"USD"}"#,
    r#"{"event_id":"a12","customer_id":"C4","type":"refund","ts":"2026-03-15T09:31:00Z","amount":1.5e3,"currency":"JPY"}"#,
    r#"{"event_id":"a13","customer_id":"C5","type":"campaign","ts":"2026-03-21T09:30:00Z","campaign_id":"X","action":"touched","cost":0.123,"currency":"KWD"}"#,
];

/// A harness with conversion rates, so currencies reach the conversion code.
fn harness() -> Harness {
    Harness::with_config(|c| {
        for (cur, rate, from) in [
            ("USD", "7.1234", None),
            ("USD", "7.2", Some("2026-03-15T09:30:30Z")),
            ("JPY", "0.04831", None),
            ("KWD", "21.5678", None),
        ] {
            c.money.rates.push(churnwatch::core::settings::RateConfig {
                currency: cur.into(),
                rate: rate.into(),
                from: from.map(Into::into),
            });
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens: Vec<Vec<u8>> = [
        "1e308",
        "-0",
        "NaN",
        "null",
        "\"\"",
        "[]",
        "{}",
        "\\u0000",
        "\u{1F600}",
        "9223372036854775808",
        "-1e-320",
        "1e999",
        "123456789012345678901234567890",
        "0.00000000000000000000000000000000000000001",
        "\"USD\"",
        "\"usd\"",
        "\"XYZ\"",
        "\"2026-02-30T00:00:00Z\"",
        "true",
        "\"order\"",
        "\"\\ud800\"",
        "0.0000001",
        ",",
        ":",
        "\"",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 0usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), proptest::sample::select(tokens))
            .prop_map(|(i, t)| Mutation::Splice(i, t)),
    ]
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = b.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    let i = i % n;
                    b[i] ^= x;
                }
            }
            Mutation::Insert(i, x) => b.insert(i % (b.len() + 1), *x),
            Mutation::Delete(i, k) => {
                let i = i % n;
                let end = (i + k).min(b.len());
                if i < end {
                    b.drain(i..end);
                }
            }
            Mutation::Splice(i, t) => {
                let i = i % (b.len() + 1);
                b.splice(i..i, t.iter().copied());
            }
        }
    }
    b
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        proptest::sample::select(vec![
            "order",
            "visit",
            "survey",
            "campaign",
            "profile",
            "erase",
            "touched",
            "converted",
            "2026-01-01T00:00:00Z",
            "C1",
            "USD",
            "JPY",
            "CNY",
            "usd",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The input contract's fields: random values under the names the parser reads.
const KEYS: &[&str] = churnwatch::core::redact::CONTRACT_FIELDS;

fn exercise(h: &mut Harness, msgs: &[Vec<u8>]) {
    for m in msgs {
        h.send(m);
    }
    h.advance(at(2000, 0));
    let mut outs = h.take();
    h.p.drain_dirty(&mut outs);
    for o in &outs {
        let v: serde_json::Value =
            serde_json::from_slice(&o.to_json()).expect("outputs are valid JSON");
        assert!(v["schema"].is_string());
        if let Output::DeadLetter(d) = o {
            assert!(!d.reason.is_empty());
        }
    }
    let _ = h.p.profiles_sorted();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        exercise(&mut harness(), &msgs);
    }

    #[test]
    fn mutated_valid_events(picks in proptest::collection::vec((0usize..SEEDS.len(), proptest::collection::vec(mutation(), 0..4)), 1..30)) {
        let msgs: Vec<Vec<u8>> = picks.iter().map(|(i, ms)| mutate(SEEDS[*i].as_bytes().to_vec(), ms)).collect();
        exercise(&mut harness(), &msgs);
    }

    #[test]
    fn random_field_values(objs in proptest::collection::vec(proptest::collection::vec((0usize..KEYS.len(), json_value()), 0..10), 1..20)) {
        let msgs: Vec<Vec<u8>> = objs
            .iter()
            .map(|fields| {
                let mut m = serde_json::Map::new();
                m.insert("event_id".into(), "x".into());
                m.insert("customer_id".into(), "C".into());
                m.insert("type".into(), "order".into());
                m.insert("ts".into(), "2026-01-01T00:00:00Z".into());
                m.insert("amount".into(), 1.into());
                for (k, v) in fields {
                    m.insert(KEYS[*k].to_string(), v.clone());
                }
                serde_json::to_vec(&m).unwrap()
            })
            .collect();
        exercise(&mut harness(), &msgs);
    }
}
