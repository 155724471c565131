//! Decoder tests: every reject reason, the accepted shapes, and the fuzz-style checks.

use super::*;

#[test]
fn wrong_types_are_said_in_words_without_the_value() {
    let d = |b: &[u8]| decode(b, &Limits::default(), None).unwrap_err().detail;
    let x = d(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":"12"}"#);
    assert!(
        x.starts_with("field `amount` has the wrong JSON type: expected a number"),
        "{x}"
    );
    let x = d(
        br#"{"event_id":"e","customer_id":13800138000,"type":"visit","ts":"2026-01-01T00:00:00Z"}"#,
    );
    assert!(
        x.starts_with("field `customer_id` has the wrong JSON type: expected a string"),
        "{x}"
    );
    assert!(!x.contains("1380"), "{x}");
    let x = d(b"{\"event_id\":\"e\",\n\"nps\": [1]}");
    assert!(x.contains("`nps`") && x.contains("whole number"), "{x}");
    for x in [x, d(br#"{"phone":13800138000,"x":1}"#)] {
        for rust in ["f64", "u8", "i64", "u32", "struct", "Option", "1380"] {
            assert!(!x.contains(rust), "{x}");
        }
    }
}

fn limits() -> Limits {
    Limits::default()
}

fn reason(bytes: &[u8]) -> RejectReason {
    decode(bytes, &limits(), None).unwrap_err().reason
}

#[test]
fn decodes_an_order() {
    let e = decode(
        br#"{"event_id":"e1","customer_id":"C001","type":"order","ts":"2026-03-15T09:30:00Z","amount":18750.00,"currency":"CNY","channel":"web","category":"wealth","unknown":[1,2]}"#,
        &limits(),
        None,
    )
    .unwrap();
    assert_eq!(e.customer_id, "C001");
    assert_eq!(e.kind(), EventKind::Order);
    match e.payload {
        Payload::Order {
            amount_cents,
            channel,
            category,
        } => {
            assert_eq!(amount_cents, 1_875_000);
            assert_eq!(channel.as_deref(), Some("web"));
            assert_eq!(category.as_deref(), Some("wealth"));
        }
        other => panic!("unexpected payload {other:?}"),
    }
}

#[test]
fn amounts_are_exact_and_converted_at_the_rate_of_their_time() {
    let mut l = limits();
    l.money = crate::core::money::Money::compile(
        "CNY",
        "reporting",
        &[(
            "USD".into(),
            "7.1234".into(),
            Some("2026-01-01T00:00:00Z".into()),
        )],
    )
    .unwrap();
    let cents = |b: &[u8]| match decode(b, &l, None).map(|e| e.payload) {
        Ok(Payload::Order { amount_cents, .. }) | Ok(Payload::Refund { amount_cents }) => {
            Ok(amount_cents)
        }
        Ok(Payload::Campaign { cost_cents, .. }) => Ok(cost_cents.unwrap_or(-1)),
        Ok(other) => panic!("{other:?}"),
        Err(r) => Err((r.reason, r.kind)),
    };
    let o = |rest: &str| {
        format!(
            r#"{{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z",{rest}}}"#
        )
    };
    assert_eq!(
        cents(o(r#""amount":100.00,"currency":"USD""#).as_bytes()),
        Ok(71_234)
    );
    // 2.345 CNY: half a fen, to even (the fast path and serde both keep the text).
    assert_eq!(cents(o(r#""amount":2.345"#).as_bytes()), Ok(234));
    assert_eq!(
        cents(o(r#""amount": 2.355 ,"currency":"CNY""#).as_bytes()),
        Ok(236)
    );
    assert_eq!(cents(o(r#""amount":0.1e1"#).as_bytes()), Ok(100));
    // 1.015 is 1.01499999999999990230 as an f64: through f64 × 100 it rounded to 101.
    assert_eq!(cents(o(r#""amount":1.015"#).as_bytes()), Ok(102));
    assert_eq!(
        cents(o(r#""amount":1e999"#).as_bytes()),
        Err((RejectReason::OutOfRange, Some(EventKind::Order)))
    );
    assert_eq!(
        cents(br#"{"event_id":"e","customer_id":"C","type":"refund","ts":"2025-12-31T23:59:59Z","amount":1,"currency":"USD"}"#),
        Err((RejectReason::UnknownCurrency, Some(EventKind::Refund)))
    );
    assert_eq!(
        cents(br#"{"event_id":"e","customer_id":"C","type":"campaign","ts":"2026-01-02T00:00:00Z","campaign_id":"x","action":"touched","cost":0.07,"currency":"USD"}"#),
        Ok(50)
    );
}

#[test]
fn rejects_with_reason_codes() {
    assert_eq!(reason(b"{not json"), RejectReason::InvalidJson);
    assert_eq!(reason(b"\xff\xfe{}"), RejectReason::InvalidJson);
    assert_eq!(reason(b"[1,2]"), RejectReason::NotAnObject);
    assert_eq!(reason(b"42"), RejectReason::NotAnObject);
    assert_eq!(
        reason(br#"{"event_id":"e","type":"visit","ts":"2026-01-01T00:00:00Z"}"#),
        RejectReason::MissingField
    );
    assert_eq!(
        reason(br#"{"event_id":"e","customer_id":"","type":"visit","ts":"2026-01-01T00:00:00Z"}"#),
        RejectReason::MissingField
    );
    assert_eq!(
        reason(br#"{"event_id":"e","customer_id":"C","type":"visit","ts":"yesterday"}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(
        reason(br#"{"event_id":"e","customer_id":"C","type":"visit","ts":"2200-01-01T00:00:00Z"}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":-5}"#), RejectReason::NegativeAmount);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":1e300}"#), RejectReason::OutOfRange);
    // Amounts are read from the number's text: one beyond f64 is out of range, not invalid JSON.
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":1e999}"#), RejectReason::OutOfRange);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"survey","ts":"2026-01-01T00:00:00Z","nps":1e999}"#), RejectReason::InvalidJson);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":1,"currency":"EUR"}"#), RejectReason::UnknownCurrency);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":1,"currency":"eur"}"#), RejectReason::UnknownCurrency);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":1,"currency":7}"#), RejectReason::WrongType);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":"12"}"#), RejectReason::WrongType);
    assert_eq!(
        reason(br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z"}"#),
        RejectReason::MissingField
    );
    assert_eq!(
        reason(
            br#"{"event_id":"e","customer_id":"C","type":"teleport","ts":"2026-01-01T00:00:00Z"}"#
        ),
        RejectReason::UnknownType
    );
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"survey","ts":"2026-01-01T00:00:00Z","satisfaction":6}"#), RejectReason::OutOfRange);
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"survey","ts":"2026-01-01T00:00:00Z","nps":7.5}"#), RejectReason::OutOfRange);
    assert_eq!(
        reason(
            br#"{"event_id":"e","customer_id":"C","type":"survey","ts":"2026-01-01T00:00:00Z"}"#
        ),
        RejectReason::MissingField
    );
    assert_eq!(reason(br#"{"event_id":"e","customer_id":"C","type":"campaign","ts":"2026-01-01T00:00:00Z","campaign_id":"X","action":"liked"}"#), RejectReason::InvalidValue);
    let long_id = format!(
        r#"{{"event_id":"e","customer_id":"{}","type":"visit","ts":"2026-01-01T00:00:00Z"}}"#,
        "x".repeat(300)
    );
    assert_eq!(reason(long_id.as_bytes()), RejectReason::IdTooLong);
    let big = vec![b' '; limits().max_message_bytes + 1];
    assert_eq!(reason(&big), RejectReason::TooLarge);
}

#[test]
fn future_events_are_rejected_against_the_given_clock() {
    let now = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let ev = br#"{"event_id":"e","customer_id":"C","type":"visit","ts":"2026-01-01T02:00:00Z"}"#;
    assert_eq!(
        decode(ev, &limits(), Some(now)).unwrap_err().reason,
        RejectReason::FutureTimestamp
    );
    assert!(
        decode(ev, &limits(), None).is_ok(),
        "no clock, no skew check"
    );
}

#[test]
fn details_never_quote_input_strings() {
    let r = decode(
        br#"{"event_id":"e","customer_id":"C","type":"order","ts":"2026-01-01T00:00:00Z","amount":"+86 138 0000 0000"}"#,
        &limits(),
        None,
    )
    .unwrap_err();
    assert_eq!(r.reason, RejectReason::WrongType);
    assert!(!r.detail.contains("138"), "{}", r.detail);
    let r = decode(
        br#"{"event_id":"e","customer_id":"C","type":"jane.doe@example.com","ts":"2026-01-01T00:00:00Z"}"#,
        &limits(),
        None,
    )
    .unwrap_err();
    assert!(!r.detail.contains("jane"), "{}", r.detail);
    assert_eq!(r.customer_id.as_deref(), Some("C"));
}

mod scanner {
    //! The scanner must decode exactly as serde_json does wherever it answers.
    use super::*;
    use proptest::prelude::*;

    fn both(bytes: &[u8]) -> Result<(), TestCaseError> {
        let shown = String::from_utf8_lossy(bytes);
        // Where the scanner answers, its wire struct is serde_json's, compared before
        // validation turns amounts into cents (which could hide a last-ulp difference);
        // Debug output tells -0.0 from 0.0 and shows every digit of a float.
        if let Some(ours) = scan::scan(bytes) {
            let theirs = serde_json::from_slice::<Wire<'_>>(bytes);
            prop_assert!(
                theirs.is_ok(),
                "serde_json rejects what the scanner took: {}",
                shown
            );
            prop_assert_eq!(
                format!("{ours:?}"),
                format!("{:?}", theirs.unwrap()),
                "{}",
                shown
            );
        }
        // And the whole decode, rejections included, is the same either way.
        let l = limits();
        let fast = decode(bytes, &l, None);
        let slow = decode_by(bytes, &l, None, |_| None);
        prop_assert_eq!(&fast, &slow, "{}", shown);
        Ok(())
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "event_id", "customer_id", "type", "ts", "amount", "channel", "category",
                "satisfaction", "nps", "campaign_id", "action", "cost", "account_manager",
                "industry", "region", "segment", "currency", "extra",
            ]).prop_map(str::to_string),
            1 => "[a-z_\\\\\"]{0,8}".prop_map(|k| k.replace('\\', "\\\\")),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            // Strings the fields expect, and awkward ones.
            prop::sample::select(vec![
                "\"order\"",
                "\"visit\"",
                "\"survey\"",
                "\"campaign\"",
                "\"profile\"",
                "\"refund\"",
                "\"erase\"",
                "\"complaint\"",
                "\"touched\"",
                "\"converted\"",
                "\"2026-03-15T09:30:00Z\"",
                "\"2026-03-15T09:30:00.123+08:00\"",
                "\"C001\"",
                "\"\"",
                "\"a\\\"b\"",
                "\"\\u0041\"",
                "\"caf\u{e9}\"",
                "\"tab\there\"",
                "null",
                "true",
                "false",
                "[]",
                "{}",
                "[1,{\"a\":2}]",
                "{\"x\":null}",
            ])
            .prop_map(str::to_string),
            // Numbers in every JSON form and some that are not JSON.
            prop::sample::select(vec![
                "0",
                "-0",
                "0.0",
                "5",
                "3.5",
                "18750.00",
                "0.1",
                "0.30000000000000004",
                "123456789012345",
                "1234567890123456",
                "12345678901234567890",
                "1e3",
                "2.5E-1",
                "-12.5",
                "01",
                "1.",
                ".5",
                "+1",
                "1e400",
                "9007199254740993",
                "0.000000000000000000000001",
                "1.7976931348623157e308",
                "NaN",
            ])
            .prop_map(str::to_string),
            (0u64..10_000_000_000, 0u32..4).prop_map(|(v, f)| match f {
                0 => v.to_string(),
                f => format!(
                    "{}.{:0width$}",
                    v / 10u64.pow(f),
                    v % 10u64.pow(f),
                    width = f as usize
                ),
            }),
            any::<f64>().prop_map(|x| x.to_string()),
            "\"[ -~]{0,10}\"",
        ]
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", "", "", " ", "\n", " \t\r\n"])
    }

    fn object() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec((key(), value(), ws(), ws()), 0..10),
            ws(),
            prop::sample::select(vec!["", "", "", " ", "x", "}", ",", "\n"]),
        )
            .prop_map(|(fields, w, tail)| {
                let body: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v, a, b)| format!("{a}\"{k}\"{b}:{a}{v}{b}"))
                    .collect();
                format!("{w}{{{}}}{w}{tail}", body.join(",")).into_bytes()
            })
    }

    fn valid_line(seed: u64) -> Vec<u8> {
        let mut g = crate::gen::Generator::new(crate::gen::GenOptions {
            customers: 50,
            events: 200,
            seed,
            ..Default::default()
        });
        let mut line = Vec::new();
        for _ in 0..(seed % 150) {
            g.next_line(&mut line);
        }
        line.clear();
        g.next_line(&mut line);
        line
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_objects(bytes in object()) {
            both(&bytes)?;
        }

        #[test]
        fn valid_and_mutated_events(seed in any::<u64>(), at in any::<usize>(), b in any::<u8>(), cut in any::<bool>()) {
            let mut line = valid_line(seed);
            both(&line)?;
            if !line.is_empty() {
                let i = at % line.len();
                if cut {
                    line.truncate(i);
                } else {
                    line[i] = b;
                }
            }
            both(&line)?;
        }

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            both(&bytes)?;
        }
    }

    #[test]
    fn generated_events_take_the_fast_path() {
        // The speed-up only exists if ordinary events are scanned, not handed on.
        for seed in 0..200 {
            let line = valid_line(seed);
            if decode(&line, &limits(), None).is_ok() {
                assert!(
                    scan::scan(&line).is_some(),
                    "{}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
    }
}
