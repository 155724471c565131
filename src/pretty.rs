//! One-line, human-readable forms of alerts, for terminals (`replay --print`, `demo`).

use crate::core::output::Output;

fn short_time(t: &str) -> &str {
    t.get(..16).unwrap_or(t)
}

/// A one-line description of an alert, or `None` for outputs that are not alerts.
pub fn line(o: &Output) -> Option<String> {
    Some(match o {
        Output::TierChanged(t) => format!(
            "{}  {:<10} tier     {} -> {}  | {}",
            short_time(&t.event_time),
            t.customer_id,
            t.from.as_deref().unwrap_or("(new)"),
            t.to,
            t.action
        ),
        Output::Warning(w) => {
            let reasons: Vec<String> = w
                .reasons
                .iter()
                .map(|r| {
                    let vals: Vec<String> = r
                        .conditions
                        .iter()
                        .map(|c| match c.value {
                            Some(v) => format!("{} [{}]", c.condition, trim(v)),
                            None => c.condition.to_string(),
                        })
                        .collect();
                    format!("{}: {}", r.rule, vals.join(", "))
                })
                .collect();
            format!(
                "{}  {:<10} WARNING  {} (was {}) owner {} due {}  | {}",
                short_time(&w.event_time),
                w.customer_id,
                w.level.to_uppercase(),
                w.previous_level,
                w.owner,
                short_time(&w.due),
                reasons.join("; ")
            )
        }
        Output::Cleared(c) => format!(
            "{}  {:<10} cleared  {} warning, owner {}",
            short_time(&c.event_time),
            c.customer_id,
            c.previous_level,
            c.owner
        ),
        Output::Overdue(o) => format!(
            "{}  {:<10} OVERDUE  {} warning ({}, {}) was due {}, status {}: escalated to {} (owner {})",
            short_time(&o.event_time),
            o.customer_id,
            o.level.to_uppercase(),
            o.rule,
            short_time(&o.raised_at),
            short_time(&o.due),
            o.status,
            o.owner,
            o.task_owner
        ),
        Output::Tombstone(t) => format!(
            "{}  {:<10} erased",
            short_time(&t.event_time),
            t.customer_id
        ),
        Output::DeadLetter(d) => format!(
            "{}  rejected {}:{}:{} {}: {}",
            short_time(&d.emitted_at),
            d.source.topic,
            d.source.partition,
            d.source.offset,
            d.reason,
            d.detail
        ),
        Output::Profile(_) => return None,
    })
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}
