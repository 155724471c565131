//! `POST /v1/rules/reload` (apply the rule file again) and `POST /v1/rules/diff` (the dry
//! run of a candidate rule set sent as the body, TOML like a config file): the HTTP half
//! of the dry-run → apply workflow. Both are token-protected like every `/v1/…` call and
//! logged with the caller's name; the engine side is in `kafka/runtime/reload.rs`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::api::json;
use super::{App, Caller};
use crate::kafka::RulesError;

/// Sample ids per move when the caller names none.
pub const DEFAULT_SAMPLES: usize = 10;

/// `?samples=N`.
#[derive(Debug, Deserialize)]
pub(super) struct Samples {
    #[serde(default)]
    samples: Option<usize>,
}

fn refused(e: &RulesError, running: String) -> Response {
    let status = match e {
        RulesError::NoSource => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    json(
        status,
        serde_json::json!({"error": e.to_string(), "running_version": running}),
    )
}

/// Re-reads the rule file the service was started with and applies it.
pub(super) async fn reload(
    State(app): State<App>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Response {
    let h = app.handle.clone();
    let r = tokio::task::spawn_blocking(move || {
        let r = h.reload_rules(&caller);
        (r, h.rules_version())
    })
    .await;
    match r {
        Ok((Ok(rep), _)) => json(StatusCode::OK, serde_json::json!(rep)),
        Ok((Err(e), running)) => refused(&e, running),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "the reload did not finish; the running rules stay"}),
        ),
    }
}

/// What the candidate rule set in the body would change; nothing is applied.
pub(super) async fn diff(
    State(app): State<App>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(q): Query<Samples>,
    body: Bytes,
) -> Response {
    let samples = q.samples.unwrap_or(DEFAULT_SAMPLES).min(1000);
    let h = app.handle.clone();
    let r = tokio::task::spawn_blocking(move || {
        let running = h.rules_version();
        let r = candidate_diff(&h, &body, &caller, samples, running.clone());
        (r, running)
    })
    .await;
    match r {
        Ok((Ok(d), _)) => json(StatusCode::OK, serde_json::json!(d)),
        Ok((Err(e), running)) => refused(&e, running),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "the diff did not finish"}),
        ),
    }
}

fn candidate_diff(
    h: &crate::kafka::ServiceHandle,
    body: &[u8],
    caller: &str,
    samples: usize,
    running: String,
) -> Result<crate::core::processor::RulesDiff, RulesError> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => {
            let reason = "the body is not UTF-8 text; send the candidate rule file (TOML)";
            return Err(RulesError::Invalid {
                reason: reason.into(),
                running,
            });
        }
    };
    let settings = crate::config::Config::from_text(text)
        .and_then(|c| Ok(c.settings()?))
        .map_err(|e| RulesError::Invalid {
            reason: e.to_string(),
            running: running.clone(),
        })?;
    tracing::info!(target: "churnwatch::audit", caller = %caller, candidate = %settings.rules_version, "rules diff");
    h.rules_diff(Arc::new(settings), samples)
}
