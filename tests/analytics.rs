//! The population sketches against exact ranks on generated data (`churnwatch gen`'s
//! generator: Pareto spend, silent, complaining and recovering customers).
//!
//! Stated bound (src/core/sketch.rs): the estimated spend percentile of x lies between the
//! exact percentiles of x/γ and x·γ, γ = (1 + α)/(1 − α); activity and tenure are exact.

use std::sync::Arc;

use churnwatch::core::{Ctx, Processor, Settings, Source};
use churnwatch::gen::{GenOptions, Generator};

/// Exact mid-rank percentile of `x` among `all` (sorted).
fn exact(all: &[f64], x: f64) -> f64 {
    let below = all.partition_point(|v| *v < x) as f64;
    let upto = all.partition_point(|v| *v <= x) as f64;
    100.0 * (below + 0.5 * (upto - below)) / all.len() as f64
}

#[test]
fn sketch_ranks_stay_within_the_stated_bound_on_generated_data() {
    let mut g = Generator::new(GenOptions {
        customers: 20_000,
        events: 200_000,
        seed: 7,
        ..Default::default()
    });
    let settings = Arc::new(Settings::defaults());
    let alpha = settings.analytics.unwrap().relative_accuracy;
    let gamma = (1.0 + alpha) / (1.0 - alpha);
    let mut p = Processor::new(Arc::clone(&settings));
    let (mut outs, mut buf, mut offset) = (Vec::new(), Vec::new(), 0i64);
    while g.next_line(&mut buf) {
        offset += 1;
        let src = Source {
            topic: "t",
            partition: 0,
            offset,
        };
        p.process(&buf, src, &Ctx::default(), &mut outs);
        outs.clear();
    }
    // Each customer's sketch entry is its facts at its own clock: exactly its profile's.
    let profiles = p.profiles_sorted();
    assert!(profiles.len() > 15_000, "{}", profiles.len());
    let longest = profiles[0].facts.windows.len() - 1;
    let activity_window = profiles[0]
        .facts
        .windows
        .iter()
        .position(|w| w.days == 90)
        .unwrap();
    let values = |f: &dyn Fn(&churnwatch::core::output::Profile) -> f64| {
        let mut v: Vec<f64> = profiles.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let spend_of = |p: &churnwatch::core::output::Profile| p.facts.windows[longest].monetary;
    let activity_of = |p: &churnwatch::core::output::Profile| {
        let w = &p.facts.windows[activity_window];
        (w.visits + w.campaign_participations + w.campaign_conversions).min(255) as f64
    };
    // Later first-seen = shorter tenure; rank the negated day.
    let tenure_of = |p: &churnwatch::core::output::Profile| {
        -(churnwatch::core::time::parse_rfc3339(&format!("{}T00:00:00Z", p.facts.first_seen))
            .unwrap() as f64)
    };
    let (spend, activity, tenure) = (values(&spend_of), values(&activity_of), values(&tenure_of));
    let mut worst = 0f64;
    for prof in &profiles {
        let st = p.standing(&prof.customer_id, None).unwrap();
        let x = spend_of(prof).max(0.0);
        let (lo, hi) = if x > 0.0 {
            (exact(&spend, x / gamma), exact(&spend, x * gamma))
        } else {
            // No spend (or net refunds): one bucket, ranked like the exact ties at ≤ 0.
            let zero_or_less = spend.partition_point(|v| *v <= 0.0) as f64;
            let mid = 100.0 * 0.5 * zero_or_less / spend.len() as f64;
            (mid, mid)
        };
        assert!(
            lo - 1e-9 <= st.spend_percentile && st.spend_percentile <= hi + 1e-9,
            "spend {x}: {lo} ≤ {} ≤ {hi}",
            st.spend_percentile
        );
        worst = worst.max((st.spend_percentile - exact(&spend, x)).abs());
        assert!(
            (st.activity_percentile - exact(&activity, activity_of(prof))).abs() < 1e-9,
            "activity is exact"
        );
        assert!(
            (st.tenure_percentile - exact(&tenure, tenure_of(prof))).abs() < 1e-9,
            "tenure is exact"
        );
    }
    eprintln!(
        "{} customers: largest spend-percentile error {worst:.3} points",
        profiles.len()
    );
    // What the bound means on this data (measured 1.0 point): a few ranks at most.
    assert!(worst < 2.0, "{worst}");
}
