//! Phase 3: restore of a compacted changelog holding RESTORE_CUSTOMERS customers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::core::{Ctx, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};
use churnwatch::kafka::changelog;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::broker::{rss_and_load, Kafka, PARTITIONS};

/// Writes the snapshots of `customers` generated customers (a quarter per partition) to a
/// compacted 4-partition changelog, then restores all partitions with the service's
/// default parallelism, one at a time, and the default again (so a warmer page cache
/// cannot flatter either), checking that every customer comes back.
pub fn restore(customers: u32) {
    let kafka = Kafka::start();
    let topic = "bench-changelog";
    kafka.create_topics(&[(topic, true)]);
    let settings = Arc::new(Settings::defaults());
    let by_hash = |k: &str| (xxhash_rust::xxh3::xxh3_64(k.as_bytes()) % PARTITIONS as u64) as usize;
    let (written, _) = write_changelog(&kafka, topic, customers, &settings, by_hash);
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", kafka.brokers());
    let default_parallelism = Config::load_with_env(None, false)
        .unwrap()
        .kafka
        .restore_parallelism as usize;
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    for parallelism in [default_parallelism, 1, default_parallelism] {
        let t0 = Instant::now();
        let results = changelog::restore_partitions(
            &base,
            topic,
            &partitions,
            &settings,
            Duration::from_secs(30),
            parallelism,
            &|| false,
        );
        let secs = t0.elapsed().as_secs_f64();
        let restored: usize = results
            .iter()
            .map(|(_, r)| r.as_ref().expect("restored").0.customers())
            .sum();
        println!(
            "restore: {restored} customers from {PARTITIONS} changelog partitions, {parallelism} at a time, in {secs:.2} s = {:.0} customers/s (target <= 10 s per 1 M); {}",
            restored as f64 / secs,
            rss_and_load()
        );
        assert_eq!(restored as u64, written, "every written customer restored");
        drop(results);
    }
}

/// Generates `customers` customers (a quarter in each of the [`PARTITIONS`] partitions,
/// by `partition_of` their id), processes their events, and writes each one's snapshot to
/// its partition of the compacted changelog `topic` with the producer settings the
/// service uses. Returns the snapshots written and each partition's processor (its
/// stream time and watermark are what a checkpoint would carry).
pub fn write_changelog(
    kafka: &Kafka,
    topic: &str,
    customers: u32,
    settings: &Arc<Settings>,
    partition_of: impl Fn(&str) -> usize,
) -> (u64, Vec<Processor>) {
    let mut procs: Vec<Processor> = (0..PARTITIONS)
        .map(|_| Processor::new(Arc::clone(settings)))
        .collect();
    // Two events per customer reach ~86 % of the generator's customers: 20 % more of them
    // leaves enough in every partition.
    let pool = customers + customers / 5;
    let mut g = Generator::new(GenOptions {
        customers: pool,
        events: pool as u64 * 2,
        seed: 5,
        duplicates: 0.0,
        bad: 0.0,
        ..Default::default()
    });
    let (mut buf, mut outs, mut off) = (Vec::new(), Vec::new(), 0i64);
    while g.next_line(&mut buf) {
        let p = g.key().map_or(0, &partition_of);
        let src = Source {
            topic: "bench",
            partition: p as i32,
            offset: off,
        };
        procs[p].process(&buf, src, &Ctx::default(), &mut outs);
        outs.clear();
        off += 1;
    }
    // The producer the service uses for its changelog: idempotent, LZ4.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()
        .unwrap();
    let t0 = Instant::now();
    let mut written = 0u64;
    for (p, proc) in procs.iter().enumerate() {
        let share =
            customers / PARTITIONS as u32 + u32::from((p as u32) < customers % PARTITIONS as u32);
        let ids = proc.customer_ids();
        assert!(
            ids.len() >= share as usize,
            "partition {p} holds {} customers, fewer than its share {share}",
            ids.len()
        );
        for id in ids.into_iter().take(share as usize) {
            let snap = proc.snapshot(&id).unwrap();
            let mut record = BaseRecord::to(topic)
                .partition(p as i32)
                .key(&id)
                .payload(&snap);
            while let Err((_, r)) = producer.send(record) {
                record = r;
                std::thread::sleep(Duration::from_millis(2));
            }
            written += 1;
        }
    }
    producer.flush(Duration::from_secs(600)).unwrap();
    println!(
        "changelog: {written} customer snapshots written in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    (written, procs)
}
