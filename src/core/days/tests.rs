//! The day history's tests: round trips, in-place updates against a model, the format-1
//! reader, sizes and bounds, garbage.

use super::*;
use proptest::prelude::*;

fn day() -> impl Strategy<Value = DayData> {
    (
        0..40_000i32,
        (
            0..5u32,
            -1_000_000_000i64..1_000_000_000,
            0..300u32,
            0..3u32,
        ),
        (0..3u32, 0..200u32, 0..3u32, 0..3u32, 0..3u32),
        proptest::collection::vec((0..1000u32, 1..5u32), 0..3),
        proptest::collection::vec(any::<u32>(), 0..6),
    )
        .prop_map(
            |(day, (o, a, v, c), (s, st, t, cv, p), tags, fps)| DayData {
                day,
                counts: Counts {
                    orders: o,
                    amount: a,
                    visits: v,
                    complaints: c,
                    surveys: s,
                    sat_tenths: if s == 0 { 0 } else { st },
                    touches: t,
                    conversions: cv,
                    participations: p,
                },
                tags: tags.into_iter().collect(),
                fps: fps.into_iter().collect(),
            },
        )
}

fn sorted(mut days: Vec<DayData>) -> Vec<DayData> {
    days.sort_by_key(|d| d.day);
    days.dedup_by_key(|d| d.day);
    days
}

proptest! {
    #[test]
    fn round_trips(days in proptest::collection::vec(day(), 0..12)) {
        let days = sorted(days);
        let mut blob = Vec::new();
        encode_all(&days, &mut blob);
        prop_assert_eq!(decode_all(&blob), days);
    }

    #[test]
    fn copy_mapping_tags_equals_decode_map_encode(days in proptest::collection::vec(day(), 0..12), mul in 0..100_000u32) {
        let days = sorted(days);
        let mut blob = Vec::new();
        encode_all(&days, &mut blob);
        // A map that changes the keys' varint lengths both ways.
        let map = |k: u32| k.wrapping_mul(mul) % 300_000;
        let mut got = Vec::new();
        copy_mapping_tags(&blob, &mut got, map);
        let mut model = decode_all(&blob);
        for d in &mut model {
            for (k, _) in d.tags.iter_mut() {
                *k = map(*k);
            }
        }
        let mut want = Vec::new();
        encode_all(&model, &mut want);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn update_matches_a_model(days in proptest::collection::vec(day(), 0..12), target in 0..40_000i32, keep_from in 0..40_000i32, fp in any::<u32>()) {
        let days = sorted(days);
        let mut blob = Vec::new();
        encode_all(&days, &mut blob);
        let mut out = Vec::new();
        let retained = update(&blob, keep_from, target, &mut out, |d| { d.counts.visits += 1; d.fps.push(fp); });
        let mut model: Vec<DayData> = days.into_iter().filter(|d| d.day >= keep_from).collect();
        if target >= keep_from {
            match model.iter_mut().find(|d| d.day == target) {
                Some(d) => { d.counts.visits += 1; d.fps.push(fp); }
                None => { let mut d = DayData::new(target); d.counts.visits = 1; d.fps.push(fp); model.push(d); model.sort_by_key(|d| d.day); }
            }
        }
        prop_assert_eq!(retained, target >= keep_from);
        prop_assert_eq!(decode_all(&out), model);
        prop_assert_eq!(contains(&out, target, fp), target >= keep_from);
    }

    #[test]
    fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..200), day in 0..100i32) {
        let _ = decode_all(&blob);
        let _ = contains(&blob, day, 7);
        let mut out = Vec::new();
        let _ = update(&blob, 0, day, &mut out, |d| d.counts.orders += 1);
        let _ = prune(&blob, day, &mut out);
    }
}

#[test]
fn format_1_histories_are_read() {
    // Day 300, mask orders|conversions, 2 orders, 1 conversion, no fingerprints.
    let v1 = [0xac, 0x02, 1 | 64, 2, 1, 0];
    let days = decode_all_v1(&v1).expect("format 1");
    assert_eq!(days.len(), 1);
    assert_eq!((days[0].day, days[0].counts.orders), (300, 2));
    assert_eq!(days[0].counts.conversions, 1);
    assert_eq!(days[0].counts.participations, 0);
    assert_eq!(
        decode_all_v1(&v1[..4]),
        None,
        "a truncated history is refused"
    );
}

#[test]
fn a_typical_day_is_small() {
    let mut d = DayData::new(20_500);
    d.counts.visits = 1;
    d.tag(2);
    d.fps.push(7);
    let mut blob = Vec::new();
    d.encode(&mut blob);
    // 3 bytes of day, mask, visits, one tag (3), fingerprint count and 4 bytes.
    assert!(blob.len() <= 13, "{} bytes", blob.len());
}

#[test]
fn a_day_is_bounded() {
    let mut d = DayData::new(1);
    for k in 0..100u32 {
        d.tag((k + 2) << 1); // ids 0 and 1 are "unset" and "other"
        d.remember(k, 16);
    }
    assert_eq!(d.tags.len(), MAX_TAGS_PER_DAY + 1, "eight tags and other");
    assert_eq!(d.tags.iter().map(|(_, n)| n).sum::<u32>(), 100);
    assert_eq!(d.fps.len(), 16);
    assert_eq!(d.fps[0], 84, "the oldest are forgotten first");
}

#[test]
fn prune_drops_old_days_only() {
    let days: Vec<DayData> = [10, 20, 30].iter().map(|&d| DayData::new(d)).collect();
    let mut blob = Vec::new();
    encode_all(&days, &mut blob);
    let mut out = Vec::new();
    assert!(!prune(&blob, 5, &mut out));
    assert!(prune(&blob, 15, &mut out));
    assert_eq!(
        decode_all(&out).iter().map(|d| d.day).collect::<Vec<_>>(),
        vec![20, 30]
    );
}
