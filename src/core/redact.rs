//! What a dead letter keeps of the record it rejects (DOMAIN.md §7: a rejected record's
//! personal fields — names, phones, e-mails, id numbers — are never republished).
//!
//! `redacted` (the default) keeps, of a JSON object, only the fields of the input contract
//! (identifiers, type, timestamps, amounts, labels, ids of campaigns and account managers)
//! that have the contract's type, and the *names* of the others; of anything else (not JSON, not an object) only its
//! length and a hash. `full` keeps the original bytes (base64, cut at the message limit)
//! and carries whatever personal data the producer put in them. `none` keeps the length
//! and the hash. The hash (xxh3-128 of the whole record) tells repeats of the same bad
//! record apart without its content.

use xxhash_rust::xxh3::xxh3_128;

use super::json::{string, Json};

/// How much of a rejected record a dead letter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginalMode {
    /// Contract fields and the names of the others (no values outside the contract).
    #[default]
    Redacted,
    /// The original bytes (may contain personal data).
    Full,
    /// Length and hash only.
    None,
}

impl OriginalMode {
    /// Parses the `dead_letters.original` setting.
    pub fn parse(s: &str) -> Option<OriginalMode> {
        match s {
            "redacted" => Some(OriginalMode::Redacted),
            "full" => Some(OriginalMode::Full),
            "none" => Some(OriginalMode::None),
            _ => None,
        }
    }

    /// The setting's text.
    pub fn name(self) -> &'static str {
        match self {
            OriginalMode::Redacted => "redacted",
            OriginalMode::Full => "full",
            OriginalMode::None => "none",
        }
    }
}

/// The numeric fields of the input contract; every other contract field is a string. A
/// value of the other type is not kept (a phone number or e-mail sent as `nps` would
/// otherwise pass as a contract field).
const NUMERIC_FIELDS: &[&str] = &["amount", "satisfaction", "nps", "cost"];

/// Contract fields that hold codes or ids written by people in a CRM (an intervention's
/// outcome and actor, its status and warning id): their values are kept only when they
/// are tokens (`event::is_token`), since a rejected one may be exactly the free text, name
/// or e-mail address the contract forbids there.
const TOKEN_FIELDS: &[&str] = &["outcome", "actor", "status", "warning_id"];

/// The fields of the input contract (schemas/input_event.json): the only ones whose values
/// a redacted dead letter keeps, when they have the contract's type.
pub const CONTRACT_FIELDS: &[&str] = &[
    "event_id",
    "customer_id",
    "type",
    "ts",
    "amount",
    "currency",
    "channel",
    "category",
    "satisfaction",
    "nps",
    "campaign_id",
    "action",
    "cost",
    "account_manager",
    "industry",
    "region",
    "segment",
    "warning_id",
    "status",
    "outcome",
    "actor",
];

/// Longest string value kept from a contract field (longer ones are cut, on a character
/// boundary): a contract field holds an id, a label or a timestamp.
const MAX_VALUE_BYTES: usize = 256;

/// Most field names listed for the fields that were left out.
const MAX_OTHER_FIELDS: usize = 64;

/// Longest field name listed.
const MAX_NAME_BYTES: usize = 64;

/// What a dead letter keeps of the rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct Original {
    /// How it was kept.
    pub mode: OriginalMode,
    /// Length of the whole record in bytes.
    pub bytes: usize,
    /// xxh3-128 of the whole record, 32 hex digits.
    pub xxh3: String,
    /// `redacted`, for a JSON object: its contract fields that have the contract's type
    /// (strings cut at 256 bytes), sorted by name.
    pub fields: Option<Vec<(String, serde_json::Value)>>,
    /// `redacted`, for a JSON object: the names of the fields left out, sorted.
    pub other_fields: Option<Vec<String>>,
    /// `full`: the bytes, base64 (cut at `limits.max_message_bytes`).
    pub base64: Option<String>,
    /// `full`: whether `base64` was cut.
    pub truncated: Option<bool>,
}

/// Keeps what `mode` allows of `bytes` (the first `bytes.len()` of a record of
/// `total_len` bytes, at most `max_bytes` of them in `full` mode).
pub fn keep(bytes: &[u8], total_len: usize, mode: OriginalMode, max_bytes: usize) -> Original {
    let mut o = Original {
        mode,
        bytes: total_len,
        xxh3: format!("{:032x}", xxh3_128(bytes)),
        fields: None,
        other_fields: None,
        base64: None,
        truncated: None,
    };
    match mode {
        OriginalMode::None => {}
        OriginalMode::Full => {
            use base64::Engine as _;
            let cut = bytes.len().min(max_bytes);
            o.base64 = Some(base64::engine::general_purpose::STANDARD.encode(&bytes[..cut]));
            o.truncated = Some(cut < total_len);
        }
        OriginalMode::Redacted => {
            if let Ok(serde_json::Value::Object(map)) =
                serde_json::from_slice::<serde_json::Value>(bytes)
            {
                let mut fields = Vec::new();
                let mut others = Vec::new();
                for (k, v) in map {
                    let typed = if NUMERIC_FIELDS.contains(&k.as_str()) {
                        v.is_number()
                    } else if k == "currency" {
                        // A code, even a wrong one ("usd", "EURO"), says what the
                        // producer meant; anything else there is not kept.
                        v.as_str().is_some_and(|c| {
                            (1..=8).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphabetic())
                        })
                    } else if TOKEN_FIELDS.contains(&k.as_str()) {
                        v.as_str().is_some_and(super::event::is_token)
                    } else {
                        v.is_string()
                    };
                    if typed && CONTRACT_FIELDS.contains(&k.as_str()) {
                        let v = match v {
                            serde_json::Value::String(s) => {
                                serde_json::Value::String(cut_str(&s, MAX_VALUE_BYTES).to_string())
                            }
                            other => other,
                        };
                        fields.push((k, v));
                    } else if others.len() < MAX_OTHER_FIELDS {
                        others.push(cut_str(&k, MAX_NAME_BYTES).to_string());
                    }
                }
                others.sort();
                others.dedup();
                o.fields = Some(fields);
                o.other_fields = Some(others);
            }
        }
    }
    o
}

fn cut_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn write_scalar(b: &mut Vec<u8>, v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => string(b, s),
        // Numbers, booleans and null as serde_json writes them.
        other => {
            let _ = serde_json::to_writer(&mut *b, other);
        }
    }
}

impl serde::Serialize for Original {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        /// The kept fields as one JSON object.
        struct Fields<'a>(&'a [(String, serde_json::Value)]);
        impl serde::Serialize for Fields<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("mode", self.mode.name())?;
        m.serialize_entry("bytes", &self.bytes)?;
        m.serialize_entry("xxh3", &self.xxh3)?;
        if let Some(f) = &self.fields {
            m.serialize_entry("fields", &Fields(f))?;
        }
        if let Some(o) = &self.other_fields {
            m.serialize_entry("other_fields", o)?;
        }
        if let Some(b) = &self.base64 {
            m.serialize_entry("base64", b)?;
        }
        if let Some(t) = &self.truncated {
            m.serialize_entry("truncated", t)?;
        }
        m.end()
    }
}

impl Json for Original {
    fn json(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(b"{\"mode\":");
        string(b, self.mode.name());
        b.extend_from_slice(b",\"bytes\":");
        self.bytes.json(b);
        b.extend_from_slice(b",\"xxh3\":");
        string(b, &self.xxh3);
        if let Some(f) = &self.fields {
            b.extend_from_slice(b",\"fields\":{");
            for (i, (k, v)) in f.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                string(b, k);
                b.push(b':');
                write_scalar(b, v);
            }
            b.push(b'}');
        }
        if let Some(o) = &self.other_fields {
            b.extend_from_slice(b",\"other_fields\":");
            o.json(b);
        }
        if let Some(s) = &self.base64 {
            b.extend_from_slice(b",\"base64\":");
            string(b, s);
        }
        if let Some(t) = self.truncated {
            b.extend_from_slice(b",\"truncated\":");
            t.json(b);
        }
        b.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(o: &Original) -> serde_json::Value {
        let mut b = Vec::new();
        o.json(&mut b);
        serde_json::from_slice(&b).expect("valid JSON")
    }

    const PERSONAL: &[u8] = br#"{"event_id":"e1","customer_id":"C1","type":"order","ts":"2026-01-05T10:00:00Z","amount":-5,"name":"Li Wei","phone":"+86 138 0013 8000","email":"li.wei@example.com","id_number":"110101199003074514","address":{"city":"Beijing"},"channel":["web"]}"#;

    #[test]
    fn redacted_keeps_contract_fields_and_only_the_names_of_the_others() {
        let o = keep(PERSONAL, PERSONAL.len(), OriginalMode::Redacted, 1 << 20);
        let v = json(&o);
        assert_eq!(v["mode"], "redacted");
        assert_eq!(v["bytes"], PERSONAL.len());
        assert_eq!(
            v["fields"],
            serde_json::json!({"event_id":"e1","customer_id":"C1","type":"order","ts":"2026-01-05T10:00:00Z","amount":-5})
        );
        assert_eq!(
            v["other_fields"],
            serde_json::json!(["address", "channel", "email", "id_number", "name", "phone"])
        );
        let text = String::from_utf8(serde_json::to_vec(&v).unwrap()).unwrap();
        for secret in ["Li Wei", "138", "li.wei", "110101199003074514", "Beijing"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(v.get("base64").is_none());
    }

    #[test]
    fn non_objects_keep_length_and_hash_only() {
        for raw in [
            &b"Li Wei, +86 138 0013 8000"[..],
            b"\xff\xfe binary",
            b"[\"Li Wei\"]",
            b"\"Li Wei\"",
        ] {
            let v = json(&keep(raw, raw.len(), OriginalMode::Redacted, 1 << 20));
            assert_eq!(
                v.as_object().unwrap().keys().collect::<Vec<_>>(),
                vec!["bytes", "mode", "xxh3"],
                "{v}"
            );
            assert_eq!(v["xxh3"].as_str().unwrap().len(), 32);
        }
    }

    #[test]
    fn full_keeps_the_bytes_and_none_keeps_nothing() {
        let v = json(&keep(PERSONAL, PERSONAL.len(), OriginalMode::Full, 10));
        assert_eq!(v["mode"], "full");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["base64"], "eyJldmVudF9pZA=="); // the first 10 bytes: {"event_id
        let v = json(&keep(PERSONAL, PERSONAL.len(), OriginalMode::None, 1 << 20));
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["bytes", "mode", "xxh3"]
        );
    }

    #[test]
    fn the_encoder_writes_what_serde_json_writes() {
        for mode in [
            OriginalMode::Redacted,
            OriginalMode::Full,
            OriginalMode::None,
        ] {
            for raw in [
                PERSONAL,
                b"not json",
                br#"{"nps":9,"x":null,"ts":"1.5e3","cost":1.5e3,"segment":"a\"b\u0001"}"#,
            ] {
                let o = keep(raw, raw.len(), mode, 1 << 20);
                let mut ours = Vec::new();
                o.json(&mut ours);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&o).unwrap()
                );
            }
        }
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let long = format!(r#"{{"customer_id":"{}"}}"#, "é".repeat(300));
        let v = json(&keep(
            long.as_bytes(),
            long.len(),
            OriginalMode::Redacted,
            1 << 20,
        ));
        let id = v["fields"]["customer_id"].as_str().unwrap();
        assert!(id.len() <= MAX_VALUE_BYTES && id.chars().all(|c| c == 'é'));
    }
}
