//! Where the time goes: the same replay with and without building/encoding outputs.
use churnwatch::core::{Ctx, Processor, Settings, Source};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let data = std::fs::read(&path).unwrap();
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let s = Arc::new(Settings::defaults());
    // `split FILE apply` runs only the pass without encoding (for profiling).
    let modes: &[bool] = if std::env::args().nth(2).as_deref() == Some("apply") {
        &[false]
    } else {
        &[true, false]
    };
    for &encode in modes {
        let mut p = Processor::new(s.clone());
        let mut outs = Vec::new();
        let mut buf = Vec::new();
        let t = Instant::now();
        for (i, l) in lines.iter().enumerate() {
            p.process(
                l,
                Source {
                    topic: "x",
                    partition: 0,
                    offset: i as i64,
                },
                &Ctx::default(),
                &mut outs,
            );
            if encode {
                for o in outs.drain(..) {
                    buf.clear();
                    o.write_json(&mut buf);
                }
            } else {
                outs.clear();
            }
        }
        let d = t.elapsed().as_secs_f64();
        println!(
            "encode={encode}: {:.0} events/s, {} fired",
            lines.len() as f64 / d,
            p.stats().timers_fired
        );
    }
    let limits = s.limits.clone();
    let t = Instant::now();
    let mut n = 0;
    for l in &lines {
        if churnwatch::core::event::decode(l, &limits, None).is_ok() {
            n += 1;
        }
    }
    println!(
        "churnwatch decode + validate: {:.0}/s ({n})",
        lines.len() as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut n = 0;
    for l in &lines {
        if serde_json::from_slice::<serde_json::Value>(l).is_ok() {
            n += 1;
        }
    }
    println!(
        "serde Value decode: {:.0}/s ({n})",
        lines.len() as f64 / t.elapsed().as_secs_f64()
    );
}
