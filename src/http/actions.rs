//! `POST /v1/interventions`: the console's acknowledge / in progress / done / dismiss,
//! and any API client's, written as an `intervention` event to the input topic keyed by
//! the customer. The action then goes through the same log, dedup, changelog and rules as
//! an event from the CRM, so every instance, a restart and a replay see it alike; the
//! answer (202) says where it landed, and the warning's status changes once the service
//! has consumed it. The actor is the caller's token name unless the body names an
//! account-manager id.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::api::json;
use super::{App, Caller};
use crate::core::time::format_rfc3339;

/// The statuses an intervention event may carry (the input contract's).
pub const STATUSES: [&str; 4] = ["acknowledged", "in_progress", "done", "dismissed"];

/// What a caller posts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    customer_id: String,
    #[serde(default)]
    warning_id: Option<String>,
    status: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

/// Identifier-shaped: what ids, outcome codes and actors must look like (they are stored
/// and published, so they must not be free text that could carry personal data).
fn id_like(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn bad(why: String) -> Response {
    json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": why }))
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The handler.
pub(super) async fn intervention(
    State(app): State<App>,
    Extension(Caller(caller)): Extension<Caller>,
    body: Bytes,
) -> Response {
    let b: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "the body must be JSON like {{\"customer_id\":\"C1\",\"status\":\"acknowledged\",\"warning_id\":\"…\",\"outcome\":\"called\"}}: {e}"
            ))
        }
    };
    if !id_like(&b.customer_id, 128) {
        return bad(
            "customer_id must be 1-128 characters of letters, digits, '.', '_', '-' or ':'".into(),
        );
    }
    if !STATUSES.contains(&b.status.as_str()) {
        return bad(format!("status must be one of {}", STATUSES.join(", ")));
    }
    for (name, v, max) in [
        ("warning_id", &b.warning_id, 128),
        ("outcome", &b.outcome, 40),
        ("actor", &b.actor, 64),
    ] {
        if v.as_deref().is_some_and(|v| !id_like(v, max)) {
            return bad(format!(
                "{name} must be 1-{max} characters of letters, digits, '.', '_', '-' or ':' (an id or a code, never free text)"
            ));
        }
    }
    let now = app.handle.now();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let event_id = format!(
        "api-{:016x}",
        xxhash_rust::xxh3::xxh3_64(
            format!(
                "{caller}\u{1}{}\u{1}{}\u{1}{now}\u{1}{seq}\u{1}{}",
                b.customer_id,
                b.status,
                std::process::id()
            )
            .as_bytes()
        )
    );
    let mut event = serde_json::json!({
        "event_id": event_id,
        "customer_id": b.customer_id,
        "type": "intervention",
        "ts": format_rfc3339(now).as_str(),
        "status": b.status,
        "actor": b.actor.unwrap_or(caller),
    });
    for (k, v) in [("warning_id", b.warning_id), ("outcome", b.outcome)] {
        if let Some(v) = v {
            event[k] = serde_json::Value::String(v);
        }
    }
    let payload = event.to_string();
    match app
        .handle
        .submitter
        .write(&b.customer_id, payload.as_bytes())
        .await
    {
        Ok(w) => json(
            StatusCode::ACCEPTED,
            serde_json::json!({ "event": event, "partition": w.partition, "offset": w.offset }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "an intervention was not written to the input topic");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": e }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_and_codes_cannot_be_free_text() {
        use super::id_like;
        assert!(id_like("C0000042", 128) && id_like("AM-007", 64) && id_like("called_back", 40));
        for bad in ["", "Jane Roe", "+86 138", "a@b.c", "x/y", "é"] {
            assert!(!id_like(bad, 64), "{bad}");
        }
        assert!(!id_like(&"a".repeat(41), 40));
    }
}
