//! Issue 19 item 5: rule changes without a restart. The dry run (`rules diff`) over a
//! small hand-made replay, with every count worked out by hand, and the apply
//! (`Processor::reconfigure`): the changes come out as ordinary alerts with the new
//! version, and a change the state cannot follow is refused.

use std::sync::Arc;

use churnwatch::core::output::Output;
use churnwatch::core::processor::{check_reload, Move, ReloadError, RuleDelta};
use churnwatch::core::time::{format_rfc3339, parse_rfc3339, Ts};
use churnwatch::core::{CoreConfig, Ctx, Settings};
use churnwatch::rules_diff::{diff_replay, replay_state};

const DAY: i64 = 86_400_000;

fn until() -> Ts {
    parse_rfc3339("2026-06-30T00:00:00Z").unwrap()
}

/// Orders of 30,000 CNY `days` days before `until`, at noon.
fn orders(out: &mut String, id: &str, days: &[i64]) {
    for (i, d) in days.iter().enumerate() {
        let ts = format_rfc3339(until() - d * DAY + DAY / 2);
        out.push_str(&format!(
            "{{\"event_id\":\"{id}-{i}\",\"customer_id\":\"{id}\",\"type\":\"order\",\"ts\":\"{ts}\",\"amount\":30000,\"currency\":\"CNY\"}}\n"
        ));
    }
}

/// Five customers, as of 2026-06-30 (days before it):
/// - A: 5 orders (150,000) at 55…15 days: `high_value` under both rule sets;
/// - B, C: 4 orders (120,000) at 50…20 days: `potential` now (3+ orders), `high_value`
///   once `high_value` asks for 4 orders instead of 5;
/// - D: 1 order 70 days ago: `regular`, low now; medium once `silence` fires at 60 days
///   instead of 90;
/// - E: 1 order 100 days ago: `regular`, medium (`silence`) under both.
fn events() -> String {
    let mut s = String::new();
    orders(&mut s, "A", &[55, 45, 35, 25, 15]);
    orders(&mut s, "B", &[50, 40, 30, 20]);
    orders(&mut s, "C", &[50, 40, 30, 20]);
    orders(&mut s, "D", &[70]);
    orders(&mut s, "E", &[100]);
    s
}

/// The defaults with `high_value` at 4 orders and `silence` at 60 days.
fn candidate() -> Settings {
    let mut c = CoreConfig::defaults();
    let hv = c
        .tiers
        .rules
        .iter_mut()
        .find(|r| r.name == "high_value")
        .unwrap();
    for cond in hv.all.iter_mut() {
        if cond == "orders_365d >= 5" {
            *cond = "orders_365d >= 4".into();
        }
    }
    let silence = c
        .warnings
        .rules
        .iter_mut()
        .find(|r| r.name == "silence")
        .unwrap();
    silence.all = vec!["days_without_order >= 60".into()];
    Settings::compile(&c).unwrap()
}

fn input() -> tempfile_path::Path {
    tempfile_path::Path::with(&events())
}

/// A file removed when dropped (no temp-file crate needed).
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Path {
        pub fn with(text: &str) -> Path {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "churnwatch-reload-{}-{n}.jsonl",
                std::process::id()
            ));
            std::fs::write(&p, text).unwrap();
            Path(p)
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn mv(from: &str, to: &str, ids: &[&str]) -> Move {
    Move {
        from: from.into(),
        to: to.into(),
        customers: ids.len() as u64,
        sample: ids.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn rules_diff_on_a_replay_counts_what_was_worked_out_by_hand() {
    let f = input();
    let running = Arc::new(Settings::defaults());
    let new = Arc::new(candidate());
    let d = diff_replay(
        Arc::clone(&running),
        Arc::clone(&new),
        &f.0,
        Some(until()),
        10,
    )
    .unwrap();
    assert_eq!(d.from_version, running.rules_version);
    assert_eq!(d.to_version, new.rules_version);
    assert_ne!(d.from_version, d.to_version);
    assert_eq!(d.as_of.as_deref(), Some("2026-06-30T00:00:00Z"));
    assert_eq!(d.customers, 5);
    assert_eq!(d.tiers, vec![mv("potential", "high_value", &["B", "C"])]);
    assert_eq!(d.levels, vec![mv("low", "medium", &["D"])]);
    let rule = |kind: &str, rule: &str, before, after, started, stopped| RuleDelta {
        kind: kind.into(),
        rule: rule.into(),
        before,
        after,
        started,
        stopped,
    };
    assert_eq!(
        d.rules,
        vec![
            rule("tier", "high_value", 1, 3, 2, 0),
            rule("warning", "silence", 1, 2, 1, 0),
        ]
    );
    // One sample id per move when asked for one.
    let d1 = diff_replay(running, new, &f.0, Some(until()), 1).unwrap();
    assert_eq!(
        d1.tiers,
        vec![Move {
            customers: 2,
            ..mv("potential", "high_value", &["B"])
        }]
    );
}

#[test]
fn a_diff_emits_nothing_and_changes_nothing() {
    let f = input();
    let p = replay_state(Arc::new(Settings::defaults()), &f.0, Some(until())).unwrap();
    let state = |p: &churnwatch::core::Processor| -> Vec<Option<Vec<u8>>> {
        ["A", "B", "C", "D", "E"]
            .iter()
            .map(|id| p.snapshot(id))
            .collect()
    };
    let before = state(&p);
    let pending = p.pending_changes();
    let _ = p.rules_diff(Arc::new(candidate()), 10).unwrap();
    assert_eq!(state(&p), before);
    assert_eq!(p.pending_changes(), pending);
}

#[test]
fn reconfigure_emits_the_diffs_changes_as_alerts_with_the_new_version() {
    let f = input();
    let mut p = replay_state(Arc::new(Settings::defaults()), &f.0, Some(until())).unwrap();
    // Drain the replay's changes, so what the reload marks is its own.
    p.drain_changes(&mut Vec::new(), |_, _| {});
    let new = Arc::new(candidate());
    let mut out = Vec::new();
    let done = p
        .reconfigure(Arc::clone(&new), &Ctx::default(), &mut out)
        .unwrap();
    assert_eq!((done.customers, done.changed), (5, 3));
    assert_eq!(p.settings().rules_version, new.rules_version);
    let mut seen: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::TierChanged(t) => {
                assert_eq!(
                    (t.trigger, t.rules_version.as_str()),
                    ("rules", new.rules_version.as_str())
                );
                Some(format!(
                    "{} tier {} -> {}",
                    t.customer_id,
                    t.from.as_deref().unwrap_or("-"),
                    t.to
                ))
            }
            Output::Warning(w) => {
                assert_eq!(
                    (w.trigger, w.rules_version.as_str()),
                    ("rules", new.rules_version.as_str())
                );
                Some(format!("{} warning {}", w.customer_id, w.level))
            }
            _ => None,
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "B tier potential -> high_value",
            "C tier potential -> high_value",
            "D warning medium"
        ]
    );
    // The changed customers (and any whose next deadline moved) are owed to the
    // changelog; a second reload of the same rules changes nothing and says nothing.
    assert!(p.pending_changes() >= 3);
    let mut again = Vec::new();
    let done = p.reconfigure(new, &Ctx::default(), &mut again).unwrap();
    assert_eq!(done.changed, 0);
    assert!(
        again.iter().all(|o| !matches!(
            o,
            Output::TierChanged(_) | Output::Warning(_) | Output::Cleared(_)
        )),
        "no alerts"
    );
}

#[test]
fn a_reload_may_not_change_the_facts_periods() {
    let mut c = CoreConfig::defaults();
    c.facts.windows_days.push(730);
    let longer = Settings::compile(&c).unwrap();
    let err = check_reload(&Settings::defaults(), &longer).unwrap_err();
    assert!(matches!(err, ReloadError::Periods { .. }));
    assert!(err.to_string().contains("[facts] periods"), "{err}");
    assert!(check_reload(&Settings::defaults(), &candidate()).is_ok());
}
