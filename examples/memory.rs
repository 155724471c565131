//! Where state memory goes (record slab, history blobs, deadline index, hash table), and
//! how long the population report, the P(alive) histogram, and snapshotting and restoring
//! every customer take (the core's share of a changelog restore).
//! `cargo run --release --example memory -- CUSTOMERS EVENTS`
/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use churnwatch::core::{Ctx, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};
use std::sync::Arc;
fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let (customers, events) = (
        a.first().copied().unwrap_or(1_000_000) as u32,
        a.get(1).copied().unwrap_or(5_000_000),
    );
    let mut g = Generator::new(GenOptions {
        customers,
        events,
        seed: 42,
        ..Default::default()
    });
    let mut p = Processor::new(Arc::new(Settings::defaults()));
    let mut outs = Vec::new();
    let mut buf = Vec::new();
    let before = churnwatch::sys::resident_bytes().unwrap_or(0);
    let mut i = 0i64;
    while g.next_line(&mut buf) {
        p.process(
            &buf,
            Source {
                topic: "m",
                partition: 0,
                offset: i,
            },
            &Ctx::default(),
            &mut outs,
        );
        outs.clear();
        i += 1;
    }
    let after = churnwatch::sys::resident_bytes().unwrap_or(0);
    let n = p.customers().max(1) as f64;
    let m = p.memory();
    println!(
        "{} customers after {i} lines: RSS delta {:.0} B/customer",
        p.customers(),
        (after - before) as f64 / n
    );
    println!("  records (slab capacity) {:.0}, history blobs {:.0} (+allocator), id table {:.0}, deadline index {:.0} ({} entries), labels {:.0}, warning tasks and overdue index {:.0}, campaign links {:.0} B/customer",
        m.records as f64 / n, m.histories as f64 / n, m.table as f64 / n, m.timers as f64 / n, m.timer_entries, m.labels as f64 / n, m.tasks as f64 / n, m.campaign_links as f64 / n);
    // The population report is kept live: a request sums the timeline's days and samples
    // the value tiers. The pass it replaced is timed for comparison.
    let t = std::time::Instant::now();
    let as_of = p.watermark().unwrap_or(0);
    let r = p.report(as_of);
    let live = t.elapsed();
    let t = std::time::Instant::now();
    let scan = p.report_by_scan(as_of);
    let scanned = t.elapsed();
    assert_eq!(
        (
            &r.tiers,
            r.customers,
            r.orders,
            r.spend_cents,
            r.repeat_buyers,
            r.nps
        ),
        (
            &scan.tiers,
            scan.customers,
            scan.orders,
            scan.spend_cents,
            scan.repeat_buyers,
            scan.nps
        ),
        "the live report equals a pass over the state"
    );
    assert_eq!(
        (
            r.previous_buyers,
            r.retained,
            r.active,
            r.complainers,
            r.surveys,
            r.sat_tenths
        ),
        (
            scan.previous_buyers,
            scan.retained,
            scan.active,
            scan.complainers,
            scan.surveys,
            scan.sat_tenths
        ),
        "the live report equals a pass over the state"
    );
    let h = std::time::Instant::now();
    let pa = p.p_alive_histogram(as_of, 20_000);
    println!(
        "report over {} customers: {:.4} s live (a pass over the state, without analytics: {:.3} s); P(alive) histogram from a 20,000 sample: {:.4} s ({} buckets)",
        r.customers,
        live.as_secs_f64(),
        scanned.as_secs_f64(),
        h.elapsed().as_secs_f64(),
        pa.map_or(0, |b| b.len())
    );
    let t = std::time::Instant::now();
    let snaps: Vec<Vec<u8>> = p
        .customer_ids()
        .iter()
        .filter_map(|id| p.snapshot(id))
        .collect();
    let snap_secs = t.elapsed().as_secs_f64();
    let bytes: usize = snaps.iter().map(|s| s.len()).sum();
    let t = std::time::Instant::now();
    let mut q = Processor::new(Arc::new(Settings::defaults()));
    for s in &snaps {
        q.restore(s).expect("own snapshots restore");
    }
    println!("snapshot of {} customers: {:.2} s, {:.0} bytes each on average; restore into a new processor: {:.2} s",
        snaps.len(), snap_secs, bytes as f64 / snaps.len().max(1) as f64, t.elapsed().as_secs_f64());
}
