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
mod validate;
mod wire;

use validate::{label, validate};
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

#[cfg(test)]
mod tests;
