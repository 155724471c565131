//! Where the time goes: the same replay without encoding outputs, with the hand-written
//! encoder (what churnwatch uses), and with serde_json's serializer (the reference the
//! hand-written encoder matches byte for byte).
//!
//! `split FILE` runs all three passes; `split FILE apply|encode|serde` only that one (for
//! profiling). Further modes:
//! - `json`: times only the encoding of the outputs (and profiles), kept in memory;
//! - `floor`: the floor under any in-memory design: decode, and one customer's state read
//!   and rewritten per event, no rules;
//! - `service`: the service loop's and encoder's work without Kafka: every output
//!   encoded, and every [`INTERVAL`] events the changed customers' profiles (encoded) and
//!   changelog snapshots drained, as a commit interval does.
//!
//! `SPLIT_DIGEST=1` prints a digest of everything written, to check that a change which
//! should not alter the output did not. `SPLIT_CONFIG=FILE.toml` runs under that
//! configuration instead of the defaults (for example `[outputs] profile_publish =
//! "on_standing_change"`, whose cost `service` mode shows as profile bytes).

/// The allocator the `churnwatch` binary uses (see `src/main.rs`), so this measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use churnwatch::core::{Ctx, Output, Processor, Settings, Source};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Apply,
    Encode,
    Serde,
    Service,
    /// Only the encoding: outputs (with the interval's profiles) kept, then encoded
    /// [`JSON_PASSES`] times, so an encoder change is measured without apply's noise.
    Json,
    /// The floor under any in-memory design: decode, find or create the customer in the
    /// store, read its record and history bytes, write its clock and a new history (one
    /// allocation, as `days::update` does). No rules, no outputs.
    Floor,
}

/// Encoding passes over the kept outputs in `json` mode.
const JSON_PASSES: usize = 5;

/// Events per drain in `service` mode: about one 100 ms commit interval of a catch-up.
const INTERVAL: usize = 4_096;

fn serde_encode(o: &Output, buf: &mut Vec<u8>) {
    let r = match o {
        Output::TierChanged(v) => serde_json::to_writer(&mut *buf, v),
        Output::Warning(v) => serde_json::to_writer(&mut *buf, v),
        Output::Cleared(v) => serde_json::to_writer(&mut *buf, v),
        Output::Overdue(v) => serde_json::to_writer(&mut *buf, v),
        Output::Profile(v) => serde_json::to_writer(&mut *buf, v),
        Output::Tombstone(v) => serde_json::to_writer(&mut *buf, v),
        Output::DeadLetter(v) => serde_json::to_writer(&mut *buf, v),
    };
    r.expect("plain structs serialize");
}

/// [`Mode::Floor`]: what every event costs before any rule runs, at the file's customer
/// count (the store's hash-table probe and the record and history reads miss the caches
/// at 1 M customers; the decode is the real one).
fn floor(lines: &[&[u8]], s: &Settings) {
    let mut store = churnwatch::core::store::Store::default();
    let mut touched = 0u64;
    let t = Instant::now();
    for l in lines {
        let Ok(e) = churnwatch::core::event::decode(l, &s.limits, None) else {
            continue;
        };
        let (slot, _) = store.get_or_insert(&e.customer_id, e.ts);
        let rec = store.rec_mut(slot);
        touched += rec.days.iter().map(|&b| b as u64).sum::<u64>() + rec.lifetime_orders as u64;
        rec.clock = rec.clock.max(e.ts);
        // A history rewritten per event, as `days::update` does: ~8 bytes a day, the
        // oldest dropped past 64 (the generated mix's histories are 40-70 bytes).
        let old = &rec.days[rec.days.len().saturating_sub(56)..];
        let mut new = Vec::with_capacity(old.len() + 8);
        new.extend_from_slice(old);
        new.extend_from_slice(&e.ts.to_le_bytes());
        rec.days = new.into_boxed_slice();
    }
    println!(
        "floor (decode + find or create the customer + touch its state): {:.0} events/s, {} customers ({touched})",
        lines.len() as f64 / t.elapsed().as_secs_f64(),
        store.len()
    );
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: split EVENTS.jsonl [apply|encode|serde]");
    let data = std::fs::read(&path).expect("readable events file");
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let s = Arc::new(match std::env::var_os("SPLIT_CONFIG") {
        Some(path) => churnwatch::config::Config::load_with_env(Some(path.as_ref()), false)
            .and_then(|c| Ok(c.settings()?))
            .unwrap_or_else(|e| panic!("SPLIT_CONFIG: {e}")),
        None => Settings::defaults(),
    });
    let modes: &[Mode] = match std::env::args().nth(2).as_deref() {
        Some("apply") => &[Mode::Apply],
        Some("encode") => &[Mode::Encode],
        Some("serde") => &[Mode::Serde],
        Some("service") => &[Mode::Service],
        Some("json") => &[Mode::Json],
        Some("floor") => &[Mode::Floor],
        _ => &[Mode::Encode, Mode::Serde, Mode::Apply],
    };
    for &mode in modes {
        if mode == Mode::Floor {
            floor(&lines, &s);
            continue;
        }
        let mut p = Processor::new(s.clone());
        let mut outs = Vec::new();
        let mut kept = Vec::new();
        let mut buf = Vec::new();
        let mut bytes = 0usize;
        // Bytes by destination (service mode): alerts, profiles, changelog snapshots.
        let (mut alert_bytes, mut profile_bytes, mut snapshot_bytes) = (0usize, 0usize, 0usize);
        // Digest of every byte written (outputs and snapshots), with SPLIT_DIGEST=1: a
        // change that should not alter the output can be checked against the binary
        // before it. Off by default: hashing ~15 GB would be part of the measurement.
        let digest = std::env::var_os("SPLIT_DIGEST").is_some_and(|v| v == "1");
        let mut h = 0u64;
        let fold = |h: &mut u64, b: &[u8]| {
            if digest {
                *h = xxhash_rust::xxh3::xxh3_64_with_seed(b, *h);
            }
        };
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
            if matches!(mode, Mode::Service | Mode::Json) && i % INTERVAL == INTERVAL - 1 {
                p.drain_changes(&mut outs, |_, snap| {
                    bytes += snap.len();
                    snapshot_bytes += snap.len();
                    fold(&mut h, &snap);
                });
            }
            if mode == Mode::Json {
                kept.append(&mut outs);
            }
            for o in outs.drain(..) {
                buf.clear();
                match mode {
                    Mode::Apply | Mode::Json | Mode::Floor => {}
                    Mode::Encode | Mode::Service => o.write_json(&mut buf),
                    Mode::Serde => serde_encode(&o, &mut buf),
                }
                bytes += buf.len();
                match o {
                    Output::Profile(_) => profile_bytes += buf.len(),
                    Output::DeadLetter(_) => {}
                    _ => alert_bytes += buf.len(),
                }
                fold(&mut h, &buf);
            }
        }
        if mode == Mode::Json {
            let t = Instant::now();
            bytes = 0;
            for _ in 0..JSON_PASSES {
                for o in &kept {
                    buf.clear();
                    o.write_json(&mut buf);
                    bytes += buf.len();
                    fold(&mut h, &buf);
                }
            }
            let d = t.elapsed().as_secs_f64();
            println!(
                "encoding only: {} outputs x {JSON_PASSES}, {:.0} k outputs/s, {:.0} MB/s of JSON",
                kept.len(),
                (kept.len() * JSON_PASSES) as f64 / d / 1e3,
                bytes as f64 / d / 1e6
            );
            if digest {
                println!("digest of everything written: {h:016x}");
            }
            continue;
        }
        let d = t.elapsed().as_secs_f64();
        let name = match mode {
            Mode::Apply => "no encoding",
            Mode::Encode => "encoded (churnwatch)",
            Mode::Serde => "encoded (serde_json)",
            Mode::Service => "encoded, with profiles and snapshots per interval",
            Mode::Json | Mode::Floor => continue, // reported above
        };
        println!(
            "{name}: {:.0} events/s, {:.0} MB of JSON, {} deadlines fired",
            lines.len() as f64 / d,
            bytes as f64 / 1e6,
            p.stats().timers_fired
        );
        if mode == Mode::Service {
            let n = lines.len() as f64;
            println!(
                "  per input line: alerts {:.0} B, profiles {:.0} B, changelog snapshots {:.0} B",
                alert_bytes as f64 / n,
                profile_bytes as f64 / n,
                snapshot_bytes as f64 / n
            );
        }
        if digest {
            println!("digest of everything written: {h:016x}");
        }
    }
    if std::env::args().nth(2).is_some() {
        return; // one pass only, for profiling
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
