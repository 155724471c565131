//! `churnwatch rules diff`: what a candidate rule set would change, against a replay of
//! an event file (`--input`, `--until`) or a running instance (`--url`, through
//! `POST /v1/rules/diff`), printed in words or as JSON. Nothing is emitted or applied.

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use crate::core::processor::{ReloadError, RulesDiff};
use crate::core::time::Ts;
use crate::core::{Ctx, Processor, Settings, Source};
use crate::replay::{read_line_bounded, ReplayError};

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The replay's input could not be read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The candidate cannot replace the running rules by a reload.
    #[error(transparent)]
    Refused(#[from] ReloadError),
    /// The instance could not be asked, or refused.
    #[error("{0}")]
    Remote(String),
}

/// The state a replay of `input` under `settings` ends with, time advanced to `until`
/// (outputs are dropped).
pub fn replay_state(
    settings: Arc<Settings>,
    input: &Path,
    until: Option<Ts>,
) -> Result<Processor, ReplayError> {
    let f = std::fs::File::open(input).map_err(|source| ReplayError::Open {
        path: input.into(),
        source,
    })?;
    let mut r: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 20, f));
    let topic = format!(
        "file:{}",
        input.file_name().unwrap_or_default().to_string_lossy()
    );
    let max = settings.limits.max_message_bytes;
    let mut p = Processor::new(settings);
    let ctx = Ctx {
        now: until,
        emitted_at: None,
    };
    let (mut line, mut outs, mut offset) = (Vec::new(), Vec::new(), -1i64);
    while let Some(len) = read_line_bounded(&mut *r, &mut line, max)? {
        offset += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) && len <= max {
            continue;
        }
        let src = Source {
            topic: &topic,
            partition: 0,
            offset,
        };
        if len > max {
            p.reject_too_large(&line, len, src, &ctx, &mut outs);
        } else {
            p.process(&line, src, &ctx, &mut outs);
        }
        outs.clear();
    }
    if let Some(t) = until {
        p.advance_to(t, &ctx, &mut outs);
    }
    Ok(p)
}

/// The diff of `candidate` against `running` over a replay of `input` to `until`.
pub fn diff_replay(
    running: Arc<Settings>,
    candidate: Arc<Settings>,
    input: &Path,
    until: Option<Ts>,
    samples: usize,
) -> Result<RulesDiff, DiffError> {
    let p = replay_state(running, input, until)?;
    Ok(p.rules_diff(candidate, samples)?)
}

/// The diff a running instance at `url` computes for the candidate file's text.
pub fn diff_remote(
    url: &str,
    token: Option<&str>,
    candidate_toml: &str,
    samples: usize,
) -> Result<RulesDiff, DiffError> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let target = format!(
        "{}/v1/rules/diff?samples={samples}",
        url.trim_end_matches('/')
    );
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri(&target)
        .header("content-type", "application/toml");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(axum::body::Bytes::from(
            candidate_toml.to_string(),
        )))
        .map_err(|_| DiffError::Remote(format!("{url} is not a valid URL")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DiffError::Remote(e.to_string()))?;
    let (status, body) = rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let r = client
            .request(req)
            .await
            .map_err(|e| DiffError::Remote(format!("cannot reach {target}: {e}")))?;
        let status = r.status();
        let body = r
            .into_body()
            .collect()
            .await
            .map_err(|e| DiffError::Remote(e.to_string()))?
            .to_bytes();
        Ok::<_, DiffError>((status, body))
    })?;
    if !status.is_success() {
        let why = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(DiffError::Remote(format!(
            "{target} answered {status}: {why}"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| {
        DiffError::Remote(format!("{target} answered something else than a diff: {e}"))
    })
}

/// The diff in words.
pub fn describe(d: &RulesDiff) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rules {} -> {}: {} customers compared as of {}",
        d.from_version,
        d.to_version,
        d.customers,
        d.as_of.as_deref().unwrap_or("(no events yet)")
    );
    for (what, n, moves) in [
        ("tier changes", d.tier_changes(), &d.tiers),
        ("warning-level changes", d.level_changes(), &d.levels),
    ] {
        let _ = writeln!(s, "{what}: {n} customers");
        for m in moves {
            let _ = writeln!(
                s,
                "  {:>7}  {} -> {}   e.g. {}",
                m.customers,
                m.from,
                m.to,
                m.sample.join(", ")
            );
        }
    }
    let _ = writeln!(s, "rules whose matches change:");
    if d.rules.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for r in &d.rules {
        let _ = writeln!(
            s,
            "  {:<8} {:<32} {:>7} -> {:<7} (+{} started, -{} stopped)",
            r.kind, r.rule, r.before, r.after, r.started, r.stopped
        );
    }
    let _ = writeln!(
        s,
        "nothing was emitted; apply with SIGHUP or POST /v1/rules/reload after installing the file"
    );
    s
}

/// Reads a token from the environment variable `var`.
pub fn token_from_env(var: &str) -> io::Result<String> {
    std::env::var(var).map_err(|_| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("environment variable {var} (--token-env) is not set"),
        )
    })
}
