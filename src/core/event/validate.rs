//! Validation: a decoded wire record becomes a valid [`Event`] of a known type, or a
//! [`Rejection`] naming the field, the reason code and the limit it broke.

use std::borrow::Cow;

use super::wire::{NumText, Wire};
use super::*;

pub(super) fn validate<'a>(
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

pub(super) fn label<'a>(
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
    use crate::core::money::{
        parse_json_number, ConvertError, Currency, MissingCurrency, NumberError,
    };
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
