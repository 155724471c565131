//! The `intervention` event (DOMAIN.md §6): the statuses a warning's task can take and
//! the validation of the CRM's fields, which must be codes and ids, never free text.

use std::borrow::Cow;

use super::{label, Payload, RejectReason, Rejection};
use crate::core::settings::Limits;

/// Status of a warning's intervention, as the CRM reports it (DOMAIN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterventionStatus {
    /// Nobody acted yet (never sent: the state of a new warning).
    Open = 0,
    /// Someone took the task.
    Acknowledged = 1,
    /// Work started.
    InProgress = 2,
    /// Done: the warning is closed.
    Done = 3,
    /// Judged not to need action: the warning is closed.
    Dismissed = 4,
}

impl InterventionStatus {
    /// Every status, in a fixed order (for metrics).
    pub const ALL: [InterventionStatus; 5] = [
        InterventionStatus::Open,
        InterventionStatus::Acknowledged,
        InterventionStatus::InProgress,
        InterventionStatus::Done,
        InterventionStatus::Dismissed,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            InterventionStatus::Open => "open",
            InterventionStatus::Acknowledged => "acknowledged",
            InterventionStatus::InProgress => "in_progress",
            InterventionStatus::Done => "done",
            InterventionStatus::Dismissed => "dismissed",
        }
    }

    /// From the stored byte (unknown values read as open).
    pub fn from_u8(v: u8) -> InterventionStatus {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(InterventionStatus::Open)
    }

    /// Done or dismissed: no escalation is due any more.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            InterventionStatus::Done | InterventionStatus::Dismissed
        )
    }
}

/// The payload of an `intervention`. Its strings are tokens, not text: the CRM's free
/// text (notes, names, e-mail addresses) must not reach the state or the outputs, so an
/// outcome or actor with spaces, `@` or other punctuation is rejected.
pub(super) fn intervention<'a>(
    [warning_id, status, outcome, actor]: [Option<Cow<'a, str>>; 4],
    limits: &Limits,
) -> Result<Payload<'a>, Rejection> {
    let status = match status.as_deref() {
        Some("acknowledged") => InterventionStatus::Acknowledged,
        Some("in_progress") => InterventionStatus::InProgress,
        Some("done") => InterventionStatus::Done,
        Some("dismissed") => InterventionStatus::Dismissed,
        None | Some("") => {
            return Err(Rejection::new(
                RejectReason::MissingField,
                "field `status` (acknowledged | in_progress | done | dismissed) is required for an intervention",
            ))
        }
        Some(_) => {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                "field `status` must be `acknowledged`, `in_progress`, `done` or `dismissed`",
            ))
        }
    };
    let warning_id = match warning_id.as_deref() {
        None | Some("") => None,
        Some(h) => Some(parse_warning_id(h).ok_or_else(|| {
            Rejection::new(
                RejectReason::InvalidValue,
                "field `warning_id` must be a warning's `event_id` (32 lowercase hex digits)",
            )
        })?),
    };
    let token = |v: Option<Cow<'a, str>>, field: &str| -> Result<Option<Cow<'a, str>>, Rejection> {
        let v = label(v, field, limits)?;
        if let Some(t) = &v {
            if !is_token(t) {
                return Err(Rejection::new(
                    RejectReason::InvalidValue,
                    format!("field `{field}` must be a code or id (letters, digits, `_`, `-`, `.`, `:`; at most 64 bytes), not free text"),
                ));
            }
        }
        Ok(v)
    };
    Ok(Payload::Intervention {
        warning_id,
        status,
        outcome: token(outcome, "outcome")?,
        actor: token(actor, "actor")?,
    })
}

/// A code or an id: what an outcome or an actor may be.
pub(crate) fn is_token(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// A warning id (32 lowercase hex digits, as [`super::output::stable_id`] writes them)
/// as its 16 bytes.
pub fn parse_warning_id(h: &str) -> Option<[u8; 16]> {
    let b = h.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let d = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *o = d(b[2 * i])? << 4 | d(b[2 * i + 1])?;
    }
    Some(out)
}
