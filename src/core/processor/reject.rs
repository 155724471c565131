//! Rejected input as data: a dead letter with a reason code, the redacted original
//! (`dead_letters.original`) and its source position; the counters move and the offset
//! advances like for any other event.

use super::{Ctx, Processor, Source};
use crate::core::event::{Event, EventKind, Payload, RejectReason};
use crate::core::output::{schema, stable_id, DeadLetter, Output};
use crate::core::time::format_rfc3339;

impl Processor {
    /// Dead-letters a message the adapter did not read whole because it is larger than
    /// `limits.max_message_bytes`: `prefix` is what was read, `total_len` its real size.
    pub fn reject_too_large(
        &mut self,
        prefix: &[u8],
        total_len: usize,
        src: Source<'_>,
        ctx: &Ctx,
        out: &mut Vec<Output>,
    ) {
        let detail = format!(
            "message is {total_len} bytes; the limit (limits.max_message_bytes) is {}",
            self.s.limits.max_message_bytes
        );
        self.reject_sized(
            prefix,
            total_len,
            src,
            ctx,
            None,
            RejectReason::TooLarge,
            detail,
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &mut self,
        bytes: &[u8],
        src: Source<'_>,
        ctx: &Ctx,
        kind: Option<EventKind>,
        reason: RejectReason,
        detail: String,
        out: &mut Vec<Output>,
    ) {
        self.reject_sized(bytes, bytes.len(), src, ctx, kind, reason, detail, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn reject_sized(
        &mut self,
        bytes: &[u8],
        total_len: usize,
        src: Source<'_>,
        ctx: &Ctx,
        kind: Option<EventKind>,
        reason: RejectReason,
        detail: String,
        out: &mut Vec<Output>,
    ) {
        self.stats.rejected[reason.index()] += 1;
        self.stats.quality.rejected(kind, reason);
        let dl = DeadLetter {
            schema: schema::DEAD_LETTER,
            event_id: stable_id(&[
                "dead_letter",
                src.topic,
                &src.partition.to_string(),
                &src.offset.to_string(),
            ]),
            reason: reason.code(),
            detail,
            original: crate::core::redact::keep(
                bytes,
                total_len,
                self.s.dead_letter_original,
                self.s.limits.max_message_bytes,
            ),
            source: src.to_ref(),
            emitted_at: format_rfc3339(ctx.emitted_at.or(self.max_ts).unwrap_or(0)),
        };
        self.emit(out, Output::DeadLetter(Box::new(dl)));
    }
}

/// A decoded event re-encoded for a dead letter raised after decoding, when the caller
/// applied an already-decoded event and so the original bytes are not at hand.
pub(super) fn serialize_for_dead_letter(ev: &Event<'_>) -> Vec<u8> {
    let amount = match ev.payload {
        Payload::Order { amount_cents, .. } => amount_cents as f64 / 100.0,
        _ => 0.0,
    };
    serde_json::to_vec(&serde_json::json!({
        "event_id": ev.event_id,
        "customer_id": ev.customer_id,
        "type": ev.kind().name(),
        "ts": format_rfc3339(ev.ts),
        "amount": amount,
    }))
    .unwrap_or_default()
}
