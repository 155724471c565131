//! Core throughput: decode + apply + encode of a generated event mix over 1 M customers
//! on one core, against serde_json decoding the same bytes alone; and resident memory per
//! customer. Run: `cargo bench --bench core` (scale with BENCH_CUSTOMERS / BENCH_EVENTS).
//!
//! Each measured event is a fresh event applied to a warm state (the first half of the
//! stream populates the customers untimed), since re-applying the same events would only
//! measure the duplicate check.

/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use churnwatch::core::{Ctx, Output, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn events() -> (u32, Vec<Vec<u8>>) {
    let customers = env("BENCH_CUSTOMERS", 1_000_000) as u32;
    let n = env("BENCH_EVENTS", 8_000_000);
    let t = Instant::now();
    let mut g = Generator::new(GenOptions {
        customers,
        events: n,
        seed: 42,
        duplicates: 0.01,
        bad: 0.001,
        ..Default::default()
    });
    let mut v = Vec::with_capacity(n as usize + n as usize / 50);
    let mut buf = Vec::new();
    while g.next_line(&mut buf) {
        v.push(buf.clone());
    }
    eprintln!(
        "generated {} events for {customers} customers in {:.1} s",
        v.len(),
        t.elapsed().as_secs_f64()
    );
    (customers, v)
}

/// The typed decode baseline: the same fields, borrowed, as serde_json does it alone.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Plain<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    customer_id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    amount: Option<f64>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    satisfaction: Option<f64>,
    nps: Option<f64>,
    #[serde(borrow)]
    campaign_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    cost: Option<f64>,
}

struct Run {
    p: Processor,
    next: usize,
    start: usize,
    outs: Vec<Output>,
    json: Vec<u8>,
}

fn warm(settings: &Arc<Settings>, evs: &[Vec<u8>], upto: usize) -> Run {
    let mut r = Run {
        p: Processor::new(settings.clone()),
        next: 0,
        start: upto,
        outs: Vec::new(),
        json: Vec::new(),
    };
    for e in &evs[..upto] {
        step(&mut r, e);
    }
    r.next = upto;
    r
}

#[inline]
fn step(r: &mut Run, e: &[u8]) {
    let src = Source {
        topic: "bench",
        partition: 0,
        offset: r.next as i64,
    };
    r.next += 1;
    black_box(r.p.process(e, src, &Ctx::default(), &mut r.outs));
    for o in r.outs.drain(..) {
        r.json.clear();
        o.write_json(&mut r.json);
        black_box(&r.json);
    }
}

fn bench(c: &mut Criterion) {
    let (customers, evs) = events();
    let settings = Arc::new(Settings::defaults());
    let half = evs.len() / 2;

    let before = churnwatch::sys::resident_bytes().unwrap_or(0);
    let t = Instant::now();
    let mut run = warm(&settings, &evs, half);
    let warm_secs = t.elapsed().as_secs_f64();
    let after = churnwatch::sys::resident_bytes().unwrap_or(0);
    let held = run.p.customers();
    let bytes = after.saturating_sub(before);
    eprintln!(
        "state: {held} customers after {half} events ({:.0} events/s untimed warm-up); resident {:.1} MiB = {:.0} bytes/customer (estimate from the store: {:.0} bytes/customer)",
        half as f64 / warm_secs,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / held.max(1) as f64,
        run.p.state_bytes() as f64 / held.max(1) as f64
    );
    let _ = customers;

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("serde_json_decode_typed", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let e = &evs[i % evs.len()];
            i += 1;
            black_box(serde_json::from_slice::<Plain<'_>>(e).ok());
        })
    });
    g.bench_function("serde_json_decode_value", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let e = &evs[i % evs.len()];
            i += 1;
            black_box(serde_json::from_slice::<serde_json::Value>(e).ok());
        })
    });
    g.bench_function("decode_apply_encode_1M_customers", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if run.next >= evs.len() {
                    run = warm(&settings, &evs, run.start); // untimed: start the second half again
                }
                let n = left.min((evs.len() - run.next) as u64);
                let t = Instant::now();
                for _ in 0..n {
                    let i = run.next;
                    step(&mut run, &evs[i]);
                }
                elapsed += t.elapsed();
                left -= n;
            }
            elapsed
        })
    });
    g.finish();

    // One straight pass over the second half, for a single clear number.
    let mut run = warm(&settings, &evs, half);
    let t = Instant::now();
    for e in &evs[half..] {
        step(&mut run, e);
    }
    let core_rate = (evs.len() - half) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for e in &evs[half..] {
        black_box(serde_json::from_slice::<Plain<'_>>(e).ok());
    }
    let serde_rate = (evs.len() - half) as f64 / t.elapsed().as_secs_f64();
    let s = run.p.stats();
    eprintln!(
        "SUMMARY decode+apply+encode {:.0} events/s; serde_json typed decode alone {:.0} events/s; ratio {:.2}; outputs per event {:.3}; {} customers; {:.0} bytes/customer resident",
        core_rate,
        serde_rate,
        core_rate / serde_rate,
        s.outputs.iter().sum::<u64>() as f64 / run.next as f64,
        run.p.customers(),
        bytes as f64 / held.max(1) as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
