//! The wire shape of an input event ([`Wire`]) as serde_json decodes it, and the mapping
//! of serde_json's errors to reject reasons without echoing input text.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use super::{RejectReason, Rejection};

/// The text of a JSON value where a number is expected, borrowed from the input. Amounts
/// are read from it exactly ([`crate::core::money::parse_json_number`]), never through
/// `f64`, which cannot hold every cent of a large amount or round a half cent once. Any
/// well-formed JSON value deserializes; a value that is not a number is `wrong_type`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct NumText<'a>(pub(super) &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for NumText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a serde_json::value::RawValue>::deserialize(d).map(|r| NumText(r.get()))
    }
}

/// Deserializes an optional string field, borrowing it from the input when it has no
/// escapes. serde's own `Option<Cow<str>>` always allocates, even with
/// `#[serde(borrow)]`: its borrowing applies only to a bare `Cow<str>` field. That was
/// five allocations per event.
pub(super) fn opt_str<'de, D>(d: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Str;
    impl<'de> serde::de::Visitor<'de> for Str {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
    }
    d.deserialize_option(Str)
}

/// The wire shape. Every field is optional so that a missing field is reported as
/// `missing_field` for that field rather than as a generic parse error.
#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug))]
pub(super) struct Wire<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) customer_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type", deserialize_with = "opt_str")]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) ts: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) amount: Option<NumText<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) currency: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) channel: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) category: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) satisfaction: Option<f64>,
    #[serde(default)]
    pub(super) nps: Option<f64>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) campaign_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) cost: Option<NumText<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) account_manager: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) industry: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) segment: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) warning_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    pub(super) actor: Option<Cow<'a, str>>,
}

/// Maps a serde_json error to a reason without echoing input text: serde's messages quote
/// offending string values, which may be personal data.
pub(super) fn classify_json_error(bytes: &[u8], e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match e.classify() {
        Category::Data if first != Some(b'{') => Rejection::new(
            RejectReason::NotAnObject,
            "the message is JSON but not an object",
        ),
        Category::Data => {
            // serde's message quotes the offending value (`integer `13800138000``) and
            // names Rust types (`expected f64`): the field comes from the input's shape
            // instead, and the expectation is said in words.
            let field = field_at(bytes, e.line(), e.column());
            let detail = match field {
                Some(f) => format!(
                    "field `{f}` has the wrong JSON type: expected {} (column {})",
                    expected_of(f),
                    e.column()
                ),
                None => format!("a field has the wrong JSON type (column {})", e.column()),
            };
            Rejection::new(RejectReason::WrongType, detail)
        }
        _ => Rejection::new(
            RejectReason::InvalidJson,
            format!("not valid JSON at line {} column {}", e.line(), e.column()),
        ),
    }
}

/// The contract field whose value sits at (line, column) of the message: the last
/// `"name":` before that position, if it is one of the input contract's
/// fields ([`crate::core::redact::CONTRACT_FIELDS`]) (any other name could
/// be anything, so it is not repeated).
fn field_at(bytes: &[u8], line: usize, column: usize) -> Option<&'static str> {
    let start = bytes
        .split_inclusive(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(<[u8]>::len)
        .sum::<usize>();
    let before = bytes.get(..(start + column).min(bytes.len()))?;
    let colon = before.iter().rposition(|b| *b == b':')?;
    let key = before[..colon].trim_ascii_end().strip_suffix(b"\"")?;
    let open = key.iter().rposition(|b| *b == b'"')?;
    let name = &key[open + 1..];
    crate::core::redact::CONTRACT_FIELDS
        .iter()
        .copied()
        .find(|f| f.as_bytes() == name)
}

/// What a contract field holds, in words.
fn expected_of(field: &str) -> &'static str {
    match field {
        "amount" | "cost" => "a number",
        "satisfaction" => "a number from 1 to 5",
        "nps" => "a whole number from 0 to 10",
        _ => "a string",
    }
}
