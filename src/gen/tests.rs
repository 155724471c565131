//! The generator's tests: reproducibility and the mix of event types.

use super::*;
use crate::core::{Ctx, Outcome, Processor, Settings, Source};
use std::sync::Arc;

fn lines(opts: GenOptions) -> Vec<Vec<u8>> {
    let mut g = Generator::new(opts);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while g.next_line(&mut buf) {
        out.push(buf.clone());
    }
    out
}

#[test]
fn seeded_and_reproducible() {
    let o = GenOptions {
        customers: 50,
        events: 2000,
        ..Default::default()
    };
    assert_eq!(lines(o.clone()), lines(o.clone()));
    let other = lines(GenOptions { seed: 2, ..o });
    assert_ne!(
        other,
        lines(GenOptions {
            customers: 50,
            events: 2000,
            ..Default::default()
        })
    );
}

#[test]
fn the_mix_is_complete_and_mostly_valid() {
    let all = lines(GenOptions {
        customers: 300,
        events: 30_000,
        duplicates: 0.02,
        bad: 0.01,
        ..Default::default()
    });
    let mut p = Processor::new(Arc::new(Settings::defaults()));
    let mut out = Vec::new();
    let (mut dup, mut bad, mut kinds) = (0, 0, std::collections::BTreeSet::new());
    for (i, l) in all.iter().enumerate() {
        let src = Source {
            topic: "t",
            partition: 0,
            offset: i as i64,
        };
        match p.process(l, src, &Ctx::default(), &mut out) {
            Outcome::Duplicate => dup += 1,
            Outcome::Rejected(_) => bad += 1,
            _ => {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                kinds.insert(v["type"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(all.len() > 30_000);
    assert!((400..900).contains(&dup), "duplicates: {dup}");
    assert!((150..500).contains(&bad), "bad: {bad}");
    for k in [
        "order",
        "refund",
        "visit",
        "complaint",
        "complaint_resolved",
        "survey",
        "campaign",
        "profile",
    ] {
        assert!(kinds.contains(k), "missing {k}");
    }
    let s = p.stats();
    assert!(
        s.warnings_raised[2] > 0 && s.warnings_raised[1] > 0 && s.warnings_cleared > 0,
        "{s:?}"
    );
}
