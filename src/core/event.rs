//! Input events: decoding JSON bytes into a validated [`Event`], or a [`Rejection`]
//! with a machine-readable reason.
//!
//! Decoding never panics and never trusts the input: bytes need not be UTF-8, fields may
//! have any type, numbers may be absurd. Everything that is not a well-formed event of a
//! known type becomes data (a rejection), so the caller can dead-letter it and move on.

use std::borrow::Cow;

use super::settings::Limits;
use super::time::{parse_rfc3339, Ts, MAX_TS, MIN_TS};

mod intervention;
mod scan;
mod wire;

use wire::{classify_json_error, NumText, Wire};

pub(crate) use intervention::is_token;
pub use intervention::{parse_warning_id, InterventionStatus};

/// Why an input was rejected. The `code()` strings are a stable, documented contract:
/// they appear in dead letters and as metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectReason {
    /// Larger than `limits.max_message_bytes`.
    TooLarge,
    /// Not parseable as JSON (including invalid UTF-8, and numbers out of `f64` range in
    /// fields other than amounts, which are read exactly from their text).
    InvalidJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// A field has the wrong JSON type (e.g. `"amount": "12"`).
    WrongType,
    /// A required field is absent or empty.
    MissingField,
    /// `ts` is not an RFC 3339 timestamp between 1970 and 2099.
    BadTimestamp,
    /// `ts` is further ahead of the current time than `limits.max_future_skew` allows.
    FutureTimestamp,
    /// A negative order or refund amount (a refund is its own event type).
    NegativeAmount,
    /// A number outside its allowed range (amount above `limits.max_amount`,
    /// satisfaction outside 1–5, NPS outside 0–10, …).
    OutOfRange,
    /// A field with a value outside its fixed set (e.g. campaign `action`).
    InvalidValue,
    /// `type` is not one of the known event types.
    UnknownType,
    /// `customer_id` or `event_id` longer than `limits.max_id_bytes`.
    IdTooLong,
    /// A label (channel, category, account manager, …) longer than `limits.max_label_bytes`.
    LabelTooLong,
    /// More orders from one customer within one minute than `limits.max_orders_per_minute`.
    AbnormalFrequency,
    /// A `currency` that is not an ISO 4217 code, or one without a rate
    /// (`[[money.rates]]`) at the event's time.
    UnknownCurrency,
}

impl RejectReason {
    /// Every reason, in a fixed order (for metrics and docs).
    pub const ALL: [RejectReason; 15] = [
        RejectReason::TooLarge,
        RejectReason::InvalidJson,
        RejectReason::NotAnObject,
        RejectReason::WrongType,
        RejectReason::MissingField,
        RejectReason::BadTimestamp,
        RejectReason::FutureTimestamp,
        RejectReason::NegativeAmount,
        RejectReason::OutOfRange,
        RejectReason::InvalidValue,
        RejectReason::UnknownType,
        RejectReason::IdTooLong,
        RejectReason::LabelTooLong,
        RejectReason::AbnormalFrequency,
        RejectReason::UnknownCurrency,
    ];

    /// The stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::WrongType => "wrong_type",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::NegativeAmount => "negative_amount",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::IdTooLong => "id_too_long",
            RejectReason::LabelTooLong => "label_too_long",
            RejectReason::AbnormalFrequency => "abnormal_frequency",
            RejectReason::UnknownCurrency => "unknown_currency",
        }
    }

    /// Position in [`RejectReason::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// A rejected input: the reason and a human-readable detail free of input values
/// (details never echo strings from the message, which might hold personal data).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// What exactly was wrong, without quoting input values.
    pub detail: String,
    /// The customer id, when the message got far enough to have a valid one.
    pub customer_id: Option<String>,
    /// The event type, when the message has a known `type` (data-quality figures count
    /// rejections by type; `None` counts as `unknown`).
    pub kind: Option<EventKind>,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
            customer_id: None,
            kind: None,
        }
    }
}

/// The event types of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A purchase; `amount` ≥ 0.
    Order,
    /// Money given back; `amount` ≥ 0 is subtracted from monetary value.
    Refund,
    /// A website or app visit.
    Visit,
    /// A complaint opened.
    Complaint,
    /// A complaint closed.
    ComplaintResolved,
    /// A survey answer: satisfaction 1–5 and/or NPS 0–10.
    Survey,
    /// A campaign touch or conversion.
    Campaign,
    /// Profile attributes (account manager, industry, region, segment).
    Profile,
    /// Forget the customer.
    Erase,
    /// What the CRM did about a churn warning (DOMAIN.md §6).
    Intervention,
}

impl EventKind {
    /// Every kind, in a fixed order (for metrics).
    pub const ALL: [EventKind; 10] = [
        EventKind::Order,
        EventKind::Refund,
        EventKind::Visit,
        EventKind::Complaint,
        EventKind::ComplaintResolved,
        EventKind::Survey,
        EventKind::Campaign,
        EventKind::Profile,
        EventKind::Erase,
        EventKind::Intervention,
    ];

    /// The wire name (`type` field).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Order => "order",
            EventKind::Refund => "refund",
            EventKind::Visit => "visit",
            EventKind::Complaint => "complaint",
            EventKind::ComplaintResolved => "complaint_resolved",
            EventKind::Survey => "survey",
            EventKind::Campaign => "campaign",
            EventKind::Profile => "profile",
            EventKind::Erase => "erase",
            EventKind::Intervention => "intervention",
        }
    }

    /// Position in [`EventKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind of a wire name, if it is one.
    pub fn from_name(s: &str) -> Option<EventKind> {
        Some(match s {
            "order" => EventKind::Order,
            "refund" => EventKind::Refund,
            "visit" => EventKind::Visit,
            "complaint" => EventKind::Complaint,
            "complaint_resolved" => EventKind::ComplaintResolved,
            "survey" => EventKind::Survey,
            "campaign" => EventKind::Campaign,
            "profile" => EventKind::Profile,
            "erase" => EventKind::Erase,
            "intervention" => EventKind::Intervention,
            _ => return None,
        })
    }
}

/// Campaign actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// The customer was reached by the campaign.
    Touched,
    /// The customer took part (joined, attended, responded): counts in the activity
    /// score (DOMAIN.md §6).
    Participated,
    /// The customer converted (bought, registered); a conversion is also a participation.
    Converted,
}

/// Type-specific payload of a valid event.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'a> {
    /// `amount_cents` ≥ 0.
    Order {
        /// Order value in minor units (cents).
        amount_cents: i64,
        /// Sales channel, if given.
        channel: Option<Cow<'a, str>>,
        /// Product category, if given.
        category: Option<Cow<'a, str>>,
    },
    /// `amount_cents` ≥ 0, subtracted from monetary value.
    Refund {
        /// Refunded value in minor units.
        amount_cents: i64,
    },
    /// A visit.
    Visit {
        /// Channel (web, app, …), if given.
        channel: Option<Cow<'a, str>>,
    },
    /// A complaint opened.
    Complaint,
    /// A complaint resolved.
    ComplaintResolved,
    /// A survey answer.
    Survey {
        /// Satisfaction in tenths (10–50), if answered.
        satisfaction_tenths: Option<u32>,
        /// NPS answer 0–10, if answered.
        nps: Option<u8>,
    },
    /// A campaign touch or conversion.
    Campaign {
        /// Campaign identifier.
        campaign_id: Cow<'a, str>,
        /// Touched or converted.
        action: CampaignAction,
        /// Cost in minor units, if given.
        cost_cents: Option<i64>,
    },
    /// Profile attributes; absent ones are left unchanged.
    Profile {
        /// Owner of the customer relationship (an employee handle).
        account_manager: Option<Cow<'a, str>>,
        /// Industry.
        industry: Option<Cow<'a, str>>,
        /// Region.
        region: Option<Cow<'a, str>>,
        /// Segment.
        segment: Option<Cow<'a, str>>,
    },
    /// Forget the customer.
    Erase,
    /// What was done about a churn warning.
    Intervention {
        /// The warning's `event_id` (16 bytes of its 32 hex digits); `None` = the
        /// customer's open warning.
        warning_id: Option<[u8; 16]>,
        /// Never [`InterventionStatus::Open`].
        status: InterventionStatus,
        /// Outcome code (a short token, never free text), if given.
        outcome: Option<Cow<'a, str>>,
        /// The acting account manager's id (a token, never a name), if given.
        actor: Option<Cow<'a, str>>,
    },
}

/// A decoded, validated event. Borrows from the input bytes where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Producer-assigned id, used to drop re-deliveries.
    pub event_id: Cow<'a, str>,
    /// The customer (also the Kafka key).
    pub customer_id: Cow<'a, str>,
    /// Event time.
    pub ts: Ts,
    /// What happened.
    pub payload: Payload<'a>,
}

impl Event<'_> {
    /// The event's type.
    pub fn kind(&self) -> EventKind {
        match self.payload {
            Payload::Order { .. } => EventKind::Order,
            Payload::Refund { .. } => EventKind::Refund,
            Payload::Visit { .. } => EventKind::Visit,
            Payload::Complaint => EventKind::Complaint,
            Payload::ComplaintResolved => EventKind::ComplaintResolved,
            Payload::Survey { .. } => EventKind::Survey,
            Payload::Campaign { .. } => EventKind::Campaign,
            Payload::Profile { .. } => EventKind::Profile,
            Payload::Erase => EventKind::Erase,
            Payload::Intervention { .. } => EventKind::Intervention,
        }
    }
}

/// Decodes and validates one message. `now` is the current time if the caller knows it
/// (wall clock in the service, `--until` in replay); events further ahead than
/// `limits.max_future_skew_ms` are rejected so one bad clock cannot fire every timer.
pub fn decode<'a>(
    bytes: &'a [u8],
    limits: &Limits,
    now: Option<Ts>,
) -> Result<Event<'a>, Rejection> {
    decode_by(bytes, limits, now, scan::scan)
}

/// [`decode`] with the given fast path (tests compare it with none).
fn decode_by<'a>(
    bytes: &'a [u8],
    limits: &Limits,
    now: Option<Ts>,
    fast: fn(&'a [u8]) -> Option<Wire<'a>>,
) -> Result<Event<'a>, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "message is {} bytes; the limit (limits.max_message_bytes) is {}",
                bytes.len(),
                limits.max_message_bytes
            ),
        ));
    }
    // Flat events take the scanner; anything it does not decode exactly as serde_json
    // would (escapes, nesting, exponents, errors) goes to serde_json, which also
    // classifies rejections.
    let wire: Wire<'a> = match fast(bytes) {
        Some(w) => w,
        None => serde_json::from_slice(bytes).map_err(|e| classify_json_error(bytes, &e))?,
    };
    let mut customer_id = None;
    let kind = wire.kind.as_deref().and_then(EventKind::from_name);
    let result = validate(wire, limits, now, &mut customer_id);
    result.map_err(|mut r| {
        r.customer_id = customer_id.map(|c| c.into_owned());
        r.kind = kind;
        r
    })
}

fn validate<'a>(
    wire: Wire<'a>,
    limits: &Limits,
    now: Option<Ts>,
    valid_customer: &mut Option<Cow<'a, str>>,
) -> Result<Event<'a>, Rejection> {
    // A money field of the wrong JSON type is `wrong_type` before anything else, on any
    // event type, as when serde typed it as a number (it is now kept as text).
    for (v, field) in [(wire.amount, "amount"), (wire.cost, "cost")] {
        if v.is_some_and(|t| !t.0.starts_with(|c: char| c == '-' || c.is_ascii_digit())) {
            return Err(Rejection::new(
                RejectReason::WrongType,
                format!("field `{field}` has the wrong JSON type: expected a number"),
            ));
        }
    }
    let customer_id = required_id(wire.customer_id, "customer_id", limits)?;
    // A clone of a borrowed id is a pointer copy; only a rejection makes it owned.
    *valid_customer = Some(customer_id.clone());
    let event_id = required_id(wire.event_id, "event_id", limits)?;
    let kind_name = wire
        .kind
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Rejection::new(RejectReason::MissingField, "field `type` is required"))?;
    let kind = EventKind::from_name(&kind_name).ok_or_else(|| {
        let shown = if kind_name.len() <= 32
            && kind_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            kind_name.to_string()
        } else {
            "(not shown)".to_string()
        };
        Rejection::new(
            RejectReason::UnknownType,
            format!("unknown event type `{shown}`; known: order, refund, visit, complaint, complaint_resolved, survey, campaign, profile, intervention, erase"),
        )
    })?;
    let ts_text = wire
        .ts
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Rejection::new(RejectReason::MissingField, "field `ts` is required"))?;
    let ts = parse_rfc3339(&ts_text).ok_or_else(|| {
        Rejection::new(
            RejectReason::BadTimestamp,
            "field `ts` is not an RFC 3339 timestamp such as 2026-03-15T09:30:00Z",
        )
    })?;
    if !(MIN_TS..MAX_TS).contains(&ts) {
        return Err(Rejection::new(
            RejectReason::BadTimestamp,
            "field `ts` is outside 1970-01-01 .. 2099-12-31",
        ));
    }
    if let Some(now) = now {
        if ts > now.saturating_add(limits.max_future_skew_ms) {
            return Err(Rejection::new(
                RejectReason::FutureTimestamp,
                format!(
                    "`ts` is {} s ahead of the current time; the limit (limits.max_future_skew) is {} s",
                    (ts - now) / 1000,
                    limits.max_future_skew_ms / 1000
                ),
            ));
        }
    }
    let payload = match kind {
        EventKind::Order => Payload::Order {
            amount_cents: money(wire.amount, "amount", &wire.currency, ts, limits)?,
            channel: label(wire.channel, "channel", limits)?,
            category: label(wire.category, "category", limits)?,
        },
        EventKind::Refund => Payload::Refund {
            amount_cents: money(wire.amount, "amount", &wire.currency, ts, limits)?,
        },
        EventKind::Visit => Payload::Visit {
            channel: label(wire.channel, "channel", limits)?,
        },
        EventKind::Complaint => Payload::Complaint,
        EventKind::ComplaintResolved => Payload::ComplaintResolved,
        EventKind::Survey => {
            if wire.satisfaction.is_none() && wire.nps.is_none() {
                return Err(Rejection::new(
                    RejectReason::MissingField,
                    "a survey needs `satisfaction` (1–5) or `nps` (0–10)",
                ));
            }
            let satisfaction_tenths = match wire.satisfaction {
                None => None,
                Some(s) if (1.0..=5.0).contains(&s) => Some((s * 10.0).round() as u32),
                Some(_) => {
                    return Err(Rejection::new(
                        RejectReason::OutOfRange,
                        "`satisfaction` must be between 1 and 5",
                    ))
                }
            };
            let nps = match wire.nps {
                None => None,
                Some(n) if (0.0..=10.0).contains(&n) && n.fract() == 0.0 => Some(n as u8),
                Some(_) => {
                    return Err(Rejection::new(
                        RejectReason::OutOfRange,
                        "`nps` must be a whole number between 0 and 10",
                    ))
                }
            };
            Payload::Survey {
                satisfaction_tenths,
                nps,
            }
        }
        EventKind::Campaign => {
            let campaign_id = label(wire.campaign_id, "campaign_id", limits)?.ok_or_else(|| {
                Rejection::new(
                    RejectReason::MissingField,
                    "field `campaign_id` is required for a campaign event",
                )
            })?;
            let action = match wire.action.as_deref() {
                Some("touched") => CampaignAction::Touched,
                Some("participated") => CampaignAction::Participated,
                Some("converted") => CampaignAction::Converted,
                None | Some("") => {
                    return Err(Rejection::new(
                        RejectReason::MissingField,
                        "field `action` (touched | participated | converted) is required for a campaign event",
                    ))
                }
                Some(_) => {
                    return Err(Rejection::new(
                        RejectReason::InvalidValue,
                        "field `action` must be `touched`, `participated` or `converted`",
                    ))
                }
            };
            let cost_cents = match wire.cost {
                None => None,
                Some(_) => Some(money(wire.cost, "cost", &wire.currency, ts, limits)?),
            };
            Payload::Campaign {
                campaign_id,
                action,
                cost_cents,
            }
        }
        EventKind::Profile => Payload::Profile {
            account_manager: label(wire.account_manager, "account_manager", limits)?,
            industry: label(wire.industry, "industry", limits)?,
            region: label(wire.region, "region", limits)?,
            segment: label(wire.segment, "segment", limits)?,
        },
        EventKind::Erase => Payload::Erase,
        EventKind::Intervention => intervention::intervention(
            [wire.warning_id, wire.status, wire.outcome, wire.actor],
            limits,
        )?,
    };
    Ok(Event {
        event_id,
        customer_id,
        ts,
        payload,
    })
}

fn required_id<'a>(
    v: Option<Cow<'a, str>>,
    field: &str,
    limits: &Limits,
) -> Result<Cow<'a, str>, Rejection> {
    match v {
        None => Err(Rejection::new(
            RejectReason::MissingField,
            format!("field `{field}` is required"),
        )),
        Some(s) if s.is_empty() => Err(Rejection::new(
            RejectReason::MissingField,
            format!("field `{field}` is empty"),
        )),
        Some(s) if s.len() > limits.max_id_bytes => Err(Rejection::new(
            RejectReason::IdTooLong,
            format!(
                "field `{field}` is {} bytes; the limit (limits.max_id_bytes) is {}",
                s.len(),
                limits.max_id_bytes
            ),
        )),
        Some(s) => Ok(s),
    }
}

fn label<'a>(
    v: Option<Cow<'a, str>>,
    field: &str,
    limits: &Limits,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    match v {
        Some(s) if s.len() > limits.max_label_bytes => Err(Rejection::new(
            RejectReason::LabelTooLong,
            format!(
                "field `{field}` is {} bytes; the limit (limits.max_label_bytes) is {}",
                s.len(),
                limits.max_label_bytes
            ),
        )),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A money field in hundredths of the reporting currency: read exactly from the number's
/// text, converted at the rate of the event's time ([`crate::core::money`]).
fn money(
    v: Option<NumText<'_>>,
    field: &str,
    currency: &Option<Cow<'_, str>>,
    ts: Ts,
    limits: &Limits,
) -> Result<i64, Rejection> {
    use super::money::{parse_json_number, ConvertError, Currency, MissingCurrency, NumberError};
    let text = v.ok_or_else(|| {
        Rejection::new(
            RejectReason::MissingField,
            format!("field `{field}` is required"),
        )
    })?;
    let amount = parse_json_number(text.0).map_err(|e| match e {
        NumberError::NotANumber => Rejection::new(
            RejectReason::WrongType,
            format!("field `{field}` has the wrong JSON type: expected a number"),
        ),
        NumberError::Negative => Rejection::new(
            RejectReason::NegativeAmount,
            format!("field `{field}` is negative; send a `refund` event to give money back"),
        ),
        NumberError::OutOfRange => Rejection::new(
            RejectReason::OutOfRange,
            format!("field `{field}` has more than 19 significant digits or is at least 1e40"),
        ),
    })?;
    let m = &limits.money;
    let code = match currency.as_deref() {
        Some(c) if !c.is_empty() => Currency::parse(c).ok_or_else(|| {
            Rejection::new(
                RejectReason::UnknownCurrency,
                "field `currency` is not an ISO 4217 code (three capital letters, e.g. \"CNY\")",
            )
        })?,
        _ => match m.missing {
            MissingCurrency::Reporting => m.reporting,
            MissingCurrency::Reject => {
                return Err(Rejection::new(
                    RejectReason::MissingField,
                    format!("field `currency` is required with `{field}` (money.missing_currency = \"reject\")"),
                ))
            }
        },
    };
    let cents = m.to_cents(amount, code, ts).map_err(|e| match e {
        ConvertError::NoRate => Rejection::new(
            RejectReason::UnknownCurrency,
            format!(
                "no rate for {} to {} at the event's time; add a [[money.rates]] entry for it with `from` at or before the event",
                code.as_str(),
                m.reporting.as_str()
            ),
        ),
        ConvertError::TooLarge => too_large(field, limits),
    })?;
    if cents as f64 / 100.0 > limits.max_amount {
        return Err(too_large(field, limits));
    }
    Ok(cents)
}

fn too_large(field: &str, limits: &Limits) -> Rejection {
    Rejection::new(
        RejectReason::OutOfRange,
        format!(
            "field `{field}` exceeds the limit (limits.max_amount = {}, in the reporting currency)",
            limits.max_amount
        ),
    )
}

#[cfg(test)]
mod tests;
