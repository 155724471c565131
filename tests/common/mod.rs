//! Shared helpers for integration tests: building event lines and driving a processor.
#![allow(dead_code)]

use std::sync::Arc;

use churnwatch::core::output::{Output, Profile};
use churnwatch::core::time::{format_rfc3339, parse_rfc3339, Ts, DAY_MS};
use churnwatch::core::{CoreConfig, Ctx, Outcome, Processor, Settings, Source};

/// Day 0 of the test calendar: 2026-01-01T00:00:00Z.
pub fn t0() -> Ts {
    parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

/// Instant `days` days and `secs` seconds after [`t0`].
pub fn at(days: i64, secs: i64) -> Ts {
    t0() + days * DAY_MS + secs * 1000
}

/// One event line.
pub fn line(id: &str, cust: &str, kind: &str, ts: Ts, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"{id}","customer_id":"{cust}","type":"{kind}","ts":"{}"{}{extra}}}"#,
        format_rfc3339(ts),
        if extra.is_empty() { "" } else { "," }
    )
    .into_bytes()
}

/// Drives a processor like the replay adapter does, collecting outputs.
pub struct Harness {
    pub p: Processor,
    pub offset: i64,
    pub outs: Vec<Output>,
    pub ctx: Ctx,
    seq: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Settings::defaults())
    }

    pub fn with(s: Settings) -> Harness {
        Harness {
            p: Processor::new(Arc::new(s)),
            offset: 0,
            outs: Vec::new(),
            ctx: Ctx::default(),
            seq: 0,
        }
    }

    pub fn with_config(f: impl FnOnce(&mut CoreConfig)) -> Harness {
        let mut c = CoreConfig::defaults();
        f(&mut c);
        Harness::with(Settings::compile(&c).unwrap())
    }

    pub fn send(&mut self, bytes: &[u8]) -> Outcome {
        self.offset += 1;
        let src = Source {
            topic: "test",
            partition: 0,
            offset: self.offset,
        };
        self.p.process(bytes, src, &self.ctx, &mut self.outs)
    }

    /// Sends an event with a fresh id.
    pub fn ev(&mut self, cust: &str, kind: &str, ts: Ts, extra: &str) -> Outcome {
        self.seq += 1;
        let id = format!("e{}", self.seq);
        let l = line(&id, cust, kind, ts, extra);
        self.send(&l)
    }

    pub fn advance(&mut self, ts: Ts) {
        let ctx = self.ctx;
        self.p.advance_to(ts, &ctx, &mut self.outs);
    }

    pub fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outs)
    }

    pub fn profile(&mut self, cust: &str) -> Profile {
        self.p.profile(cust).expect("customer exists")
    }
}

/// Outputs as JSON values.
pub fn json(outs: &[Output]) -> Vec<serde_json::Value> {
    outs.iter()
        .map(|o| serde_json::from_slice(&o.to_json()).unwrap())
        .collect()
}

/// The warnings (raised) among outputs.
pub fn warnings(outs: &[Output]) -> Vec<&churnwatch::core::output::ChurnWarning> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Warning(w) => Some(&**w),
            _ => None,
        })
        .collect()
}

/// The tier changes among outputs.
pub fn tier_changes(outs: &[Output]) -> Vec<&churnwatch::core::output::TierChanged> {
    outs.iter()
        .filter_map(|o| match o {
            Output::TierChanged(t) => Some(&**t),
            _ => None,
        })
        .collect()
}
