//! What the population analytics (sketches, campaign figures) cost the core: the same
//! generated mix decoded, applied and encoded with `[analytics]` and `[clv]` on and off,
//! alternating runs on one core. (Memory per customer: `examples/memory`, analytics on.)
//!
//! `cargo run --release --example analytics_cost -- [CUSTOMERS] [EVENTS] [ROUNDS]`
//! (defaults 1,000,000 customers, 4,000,000 events, 2 rounds). The first half of the
//! events populates the state untimed; the second half is timed.

/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use churnwatch::core::{CoreConfig, Ctx, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};

fn run(settings: &Arc<Settings>, evs: &[Vec<u8>]) -> f64 {
    let mut p = Processor::new(Arc::clone(settings));
    let (mut outs, mut json) = (Vec::new(), Vec::new());
    let half = evs.len() / 2;
    let mut step = |p: &mut Processor, i: usize| {
        let src = Source {
            topic: "bench",
            partition: 0,
            offset: i as i64,
        };
        black_box(p.process(&evs[i], src, &Ctx::default(), &mut outs));
        for o in outs.drain(..) {
            json.clear();
            o.write_json(&mut json);
            black_box(&json);
        }
    };
    for i in 0..half {
        step(&mut p, i);
    }
    let t = Instant::now();
    for i in half..evs.len() {
        step(&mut p, i);
    }
    (evs.len() - half) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let customers = a.first().copied().unwrap_or(1_000_000) as u32;
    let events = a.get(1).copied().unwrap_or(4_000_000);
    let rounds = a.get(2).copied().unwrap_or(2);
    let mut g = Generator::new(GenOptions {
        customers,
        events,
        seed: 42,
        duplicates: 0.01,
        bad: 0.001,
        ..Default::default()
    });
    let mut evs = Vec::new();
    let mut buf = Vec::new();
    while g.next_line(&mut buf) {
        evs.push(buf.clone());
    }
    let on = Arc::new(Settings::defaults());
    let mut c = CoreConfig::defaults();
    c.analytics.enabled = false;
    c.clv.enabled = false;
    let off = Arc::new(Settings::compile(&c).unwrap());
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let w = run(&on, &evs);
        let wo = run(&off, &evs);
        eprintln!("round {r}: with analytics {w:.0} events/s, without {wo:.0} events/s");
        with.push(w);
        without.push(wo);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (w, wo) = (best(&with), best(&without));

    println!(
        "SUMMARY {} events, {customers} customers: with analytics {w:.0} events/s, without {wo:.0} events/s (best of {rounds}); analytics cost {:.1} % of throughput",
        evs.len(),
        100.0 * (1.0 - w / wo),
    );
}
