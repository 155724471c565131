//! JSON encoding of the outputs, written by hand.
//!
//! Why not serde_json's serializer: a profile carries ~70 keys (and a v1 alert did), and
//! serde_json escapes each key at run time and goes through its `Serializer`/`io::Write`
//! layers per field. Measured on replay of 600 k events with v1 alerts (0.95 outputs per
//! event, ~1.7 KB each), that was ~45 % of the time. Here keys are literals known at compile time, strings are copied in
//! runs between the few bytes that need escaping, and numbers use the same formatters
//! serde_json uses (`itoa`, `zmij`).
//!
//! The bytes are identical to `serde_json::to_writer` of the same structs (the outputs
//! keep their `Serialize` derives for the HTTP API): a property test in this module
//! compares the two on arbitrary values, including strings that need escaping and
//! non-finite numbers.

use std::sync::Arc;

/// A value that appends its JSON encoding to a buffer.
pub trait Json {
    /// Appends the encoding to `b`.
    fn json(&self, b: &mut Vec<u8>);
}

/// Writes `{"a":…,"b":…}` for the named fields of a struct, in the given order (which
/// must be the declaration order, as serde's derive writes them).
macro_rules! object {
    ($b:expr, $o:expr, $first:ident $(, $f:ident)* $(,)?) => {{
        let b: &mut Vec<u8> = $b;
        b.extend_from_slice(concat!("{\"", stringify!($first), "\":").as_bytes());
        $crate::core::json::Json::json(&$o.$first, b);
        $(
            b.extend_from_slice(concat!(",\"", stringify!($f), "\":").as_bytes());
            $crate::core::json::Json::json(&$o.$f, b);
        )*
        b.push(b'}');
    }};
}
pub(crate) use object;

/// Escape class per byte, as serde_json's table: 0 = copied as it is.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `s` as a JSON string.
#[inline]
pub fn string(b: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    b.reserve(bytes.len() + 2);
    b.push(b'"');
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let e = ESCAPE[c as usize];
        if e == 0 {
            continue;
        }
        b.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match e {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                b.extend_from_slice(b"\\u00");
                b.push(HEX[(c >> 4) as usize]);
                b.push(HEX[(c & 0xf) as usize]);
            }
            _ => {
                b.push(b'\\');
                b.push(e);
            }
        }
    }
    b.extend_from_slice(&bytes[start..]);
    b.push(b'"');
}

impl Json for str {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        string(b, self)
    }
}

impl Json for String {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        string(b, self)
    }
}

impl Json for compact_str::CompactString {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        string(b, self)
    }
}

impl Json for &str {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        string(b, self)
    }
}

impl Json for f64 {
    /// serde_json writes non-finite numbers as `null`, finite ones with zmij.
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        if self.to_bits() == 0 {
            // +0.0, as zmij writes it: ~16 % of the numbers in an output (empty windows'
            // sums), and a constant copy instead of formatting and a length-unknown copy.
            b.extend_from_slice(b"0.0");
        } else if self.is_finite() {
            b.extend_from_slice(zmij::Buffer::new().format_finite(*self).as_bytes());
        } else {
            b.extend_from_slice(b"null");
        }
    }
}

impl Json for bool {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Json for $t {
            #[inline]
            fn json(&self, b: &mut Vec<u8>) {
                // One digit (~70 % of an output's numbers are 0: empty windows' counts)
                // is one byte pushed, not itoa and a length-unknown copy.
                match u8::try_from(*self) {
                    Ok(d) if d < 10 => b.push(b'0' + d),
                    _ => b.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes()),
                }
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, usize, i32, i64);

impl<T: Json> Json for Option<T> {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        match self {
            Some(v) => v.json(b),
            None => b.extend_from_slice(b"null"),
        }
    }
}

impl<T: Json> Json for [T] {
    fn json(&self, b: &mut Vec<u8>) {
        b.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            v.json(b);
        }
        b.push(b']');
    }
}

impl<T: Json> Json for Vec<T> {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        self.as_slice().json(b)
    }
}

impl<T: Json + ?Sized> Json for Arc<T> {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        (**self).json(b)
    }
}

impl<T: Json + ?Sized> Json for Box<T> {
    #[inline]
    fn json(&self, b: &mut Vec<u8>) {
        (**self).json(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::output::*;
    use proptest::prelude::*;

    fn same<T: Json + serde::Serialize>(v: &T) -> Result<(), TestCaseError> {
        let mut ours = Vec::new();
        v.json(&mut ours);
        let theirs = serde_json::to_vec(v).unwrap();
        prop_assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        Ok(())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_ 0-9]{0,12}",
            any::<String>(),
            proptest::collection::vec(0u8..0x80, 0..12).prop_map(|v| String::from_utf8(v).unwrap()),
        ]
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            -1e6..1e6f64,
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            (0i64..10_000_000).prop_map(|c| c as f64 / 100.0),
        ]
    }

    fn window() -> impl Strategy<Value = WindowOut> {
        (
            any::<u16>(),
            any::<u32>(),
            number(),
            proptest::option::of(number()),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(number()),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    days,
                    orders,
                    monetary,
                    aov,
                    visits,
                    complaints,
                    surveys,
                    satisfaction,
                    t,
                    c,
                    p,
                )| {
                    WindowOut {
                        days,
                        orders,
                        monetary,
                        aov,
                        visits,
                        complaints,
                        surveys,
                        satisfaction,
                        campaign_touches: t,
                        campaign_conversions: c,
                        campaign_participations: p,
                    }
                },
            )
    }

    fn facts() -> impl Strategy<Value = FactsOut> {
        (
            (
                text(),
                proptest::option::of(any::<i64>()),
                any::<i64>(),
                any::<i64>(),
            ),
            (
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
            ),
            (
                any::<u32>(),
                number(),
                any::<u32>(),
                any::<u16>(),
                proptest::option::of(any::<u8>()),
            ),
            proptest::collection::vec(window(), 0..4),
            (
                number(),
                number(),
                proptest::option::of(number()),
                any::<u32>(),
            ),
            proptest::collection::vec(proptest::option::of(number()), 5),
            proptest::collection::vec(proptest::option::of(text()), 6),
            any::<u16>(),
        )
            .prop_map(|(a, b, c, windows, d, opt, labels, horizon)| FactsOut {
                as_of: a.0.into(),
                recency_days: a.1,
                days_without_order: a.2,
                tenure_days: a.3,
                lifecycle: "new",
                first_seen: b.0.clone().into(),
                first_order: b.1.map(Into::into),
                last_order: b.2.map(Into::into),
                last_interaction: b.0.into(),
                days_since_last_interaction: a.2,
                lifetime_orders: c.0,
                lifetime_value: c.1,
                currency: "CNY".into(),
                purchase_days: c.2,
                open_complaints: c.3,
                last_nps: c.4,
                windows,
                activity_score: d.0,
                churn_risk_index: d.1,
                visit_drop_pct: d.2,
                visits_baseline: d.3,
                p_alive: opt[0],
                expected_purchases: opt[1],
                expected_order_value: opt[2],
                clv: opt[3],
                horizon_days: horizon,
                preferred_channel: labels[0].clone().map(Into::into),
                preferred_category: labels[1].clone().map(Into::into),
                account_manager: labels[2].clone().map(Into::into),
                industry: labels[3].clone().map(Into::into),
                region: labels[4].clone().map(Into::into),
                segment: labels[5].clone().map(Into::into),
            })
    }

    fn source() -> impl Strategy<Value = SourceRef> {
        (text(), any::<i32>(), any::<i64>()).prop_map(|(topic, partition, offset)| SourceRef {
            topic: topic.into(),
            partition,
            offset,
        })
    }

    fn reasons() -> impl Strategy<Value = Vec<Reason>> {
        proptest::collection::vec(
            (
                text(),
                proptest::collection::vec((text(), proptest::option::of(number())), 0..3),
            )
                .prop_map(|(rule, conds)| Reason {
                    rule: rule.into(),
                    level: "high",
                    conditions: conds
                        .into_iter()
                        .map(|(condition, value)| ConditionValue {
                            condition: condition.into(),
                            value,
                        })
                        .collect(),
                }),
            0..3,
        )
    }

    /// The one-digit and zero fast paths, at and around their edges, for every type.
    #[test]
    fn small_numbers_match_serde_json() {
        fn check<T: Json + serde::Serialize>(v: T) {
            let mut ours = Vec::new();
            v.json(&mut ours);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap());
        }
        for n in -300i64..=300 {
            check(n);
            check(n as i32);
            check(n as f64);
            check(n as f64 / 10.0);
            if n >= 0 {
                check(n as u8);
                check(n as u16);
                check(n as u32);
                check(n as u64);
                check(n as usize);
            }
        }
        for x in [0.0, -0.0, f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 5e-324] {
            check(x);
        }
        check(u64::MAX);
        check(i64::MIN);
    }

    proptest! {
        #[test]
        fn strings_and_numbers_match_serde_json(s in text(), x in number(), n in any::<i64>()) {
            same(&s)?;
            same(&x)?;
            same(&n)?;
            same(&Some(x))?;
            same(&None::<f64>)?;
        }

        #[test]
        fn outputs_match_serde_json(
            f in facts(),
            src in proptest::option::of(source()),
            rs in reasons(),
            t in proptest::collection::vec(text(), 8),
            x in number(),
            h in (any::<u16>(), any::<u32>(), proptest::option::of(number()), proptest::option::of(number())),
            original_bytes in any::<usize>(),
            truncated in any::<bool>(),
        ) {
            let facts = f;
            let head = Headline {
                recency_days: facts.recency_days,
                window_days: h.0,
                orders: h.1,
                monetary: x,
                currency: "USD".into(),
                p_alive: h.2,
                clv: h.3,
                tier: t[5].clone().into(),
            };
            let head2 = head.clone();
            let conds: Vec<ConditionValue> = rs.iter().flat_map(|r| r.conditions.clone()).collect();
            let tc = TierChanged {
                schema: schema::TIER_CHANGED,
                event_id: t[0].clone(),
                customer_id: t[1].clone().into(),
                from: Some(t[2].clone().into()),
                to: t[3].clone().into(),
                rule: t[4].clone().into(),
                reasons: conds,
                action: t[6].as_str().into(),
                owner: t[7].clone().into(),
                due: Some(t[6].clone().into()),
                trigger: "event",
                event_time: t[7].clone().into(),
                emitted_at: t[0].clone().into(),
                source: src.clone(),
                rules_version: t[2].clone().into(),
                facts: head.clone(),
            };
            let w = ChurnWarning {
                schema: schema::CHURN_WARNING,
                event_id: t[0].clone(),
                customer_id: t[1].clone().into(),
                level: "high",
                previous_level: "low",
                reasons: rs.clone(),
                risk_index: x,
                owner: t[2].clone().into(),
                due: t[3].clone().into(),
                action: t[4].as_str().into(),
                trigger: "time",
                event_time: t[6].clone().into(),
                emitted_at: t[7].clone().into(),
                source: src.clone(),
                rules_version: t[5].clone().into(),
                facts: head.clone(),
            };
            let c = WarningCleared {
                schema: schema::CHURN_WARNING_CLEARED,
                event_id: t[0].clone(),
                customer_id: t[1].clone().into(),
                previous_level: "medium",
                owner: t[5].clone().into(),
                trigger: "event",
                event_time: t[3].clone().into(),
                emitted_at: t[4].clone().into(),
                source: src.clone(),
                rules_version: t[6].clone().into(),
                facts: head,
            };
            let p = Profile {
                schema: schema::PROFILE,
                customer_id: t[1].clone().into(),
                tier: t[2].clone().into(),
                tier_since: truncated.then(|| t[7].clone().into()),
                peak_tier: (original_bytes % 2 == 0).then(|| t[5].clone().into()),
                previous_tier: (original_bytes % 3 == 0).then(|| t[4].clone().into()),
                action: t[3].as_str().into(),
                warning: WarningState {
                    level: "medium",
                    reasons: rs,
                    task: crate::core::output::TaskState {
                        warning_id: Some(t[0].clone().into()),
                        level: Some("high"),
                        status: Some("in_progress"),
                        owner: Some(t[1].clone().into()),
                        actor: None,
                        outcome: Some(t[2].clone().into()),
                        raised_at: Some(t[3].clone().into()),
                        acted_at: None,
                        due: Some(t[4].clone().into()),
                        overdue: true,
                        cleared: false,
                        recovered: x > 0.5,
                    },
                },
                rules_version: t[4].clone().into(),
                facts,
            };
            let ts = Tombstone {
                schema: schema::PROFILE_TOMBSTONE,
                event_id: t[0].clone(),
                customer_id: t[1].clone().into(),
                event_time: t[2].clone().into(),
                emitted_at: t[3].clone().into(),
                source: src.clone(),
            };
            let dl = DeadLetter {
                schema: schema::DEAD_LETTER,
                event_id: t[0].clone(),
                reason: "invalid_json",
                detail: t[1].clone(),
                original: crate::core::redact::keep(
                    t[2].as_bytes(),
                    t[2].len() + original_bytes % 7,
                    if truncated {
                        crate::core::redact::OriginalMode::Full
                    } else {
                        crate::core::redact::OriginalMode::Redacted
                    },
                    1 << 20,
                ),
                source: src.unwrap_or(SourceRef { topic: t[3].clone().into(), partition: 1, offset: 2 }),
                emitted_at: t[4].clone().into(),
            };
            for o in [
                Output::TierChanged(Box::new(tc)),
                Output::Warning(Box::new(w)),
                Output::Cleared(Box::new(c)),
                Output::Profile(Box::new(p)),
                Output::Tombstone(ts),
                Output::DeadLetter(Box::new(dl)),
                Output::Overdue(Box::new(crate::core::output::WarningOverdue {
                    schema: schema::CHURN_WARNING_OVERDUE,
                    event_id: t[0].clone(),
                    customer_id: t[1].clone().into(),
                    warning_id: t[2].clone().into(),
                    level: "medium",
                    rule: t[3].clone().into(),
                    owner: t[4].clone().into(),
                    task_owner: t[5].clone().into(),
                    status: "open",
                    raised_at: t[6].clone().into(),
                    due: t[7].clone().into(),
                    trigger: "time",
                    event_time: t[7].clone().into(),
                    emitted_at: t[0].clone().into(),
                    rules_version: t[1].clone().into(),
                    facts: head2,
                })),
            ] {
                let mut ours = Vec::new();
                o.write_json(&mut ours);
                let theirs = match &o {
                    Output::TierChanged(v) => serde_json::to_vec(v),
                    Output::Warning(v) => serde_json::to_vec(v),
                    Output::Cleared(v) => serde_json::to_vec(v),
                    Output::Profile(v) => serde_json::to_vec(v),
                    Output::Tombstone(v) => serde_json::to_vec(v),
                    Output::DeadLetter(v) => serde_json::to_vec(v),
                    Output::Overdue(v) => serde_json::to_vec(v),
                }
                .unwrap();
                prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
            }
        }
    }
}
