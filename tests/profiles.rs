//! Profiles (README "Outputs"): as of the customer's last change on the topic, as of now
//! in a look-up and as of the end in `replay --profiles`, and how often they are published.

mod common;

use churnwatch::core::bgnbd;
use churnwatch::core::output::Output;
use churnwatch::core::settings::BgNbdParams;
use churnwatch::core::time::format_rfc3339;
use common::*;

/// Profiles of one drain (one commit interval).
fn drained_profiles(h: &mut Harness) -> Vec<String> {
    let mut outs = Vec::new();
    h.p.drain_dirty(&mut outs);
    outs.iter()
        .filter_map(|o| match o {
            Output::Profile(p) => Some(p.customer_id.to_string()),
            _ => None,
        })
        .collect()
}

/// One run of a generated stream with profiles drained every 1,000 lines: (alerts as JSON
/// lines, per interval the published profiles as JSON lines, per interval the changelog
/// records).
type Drained = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>, Vec<Vec<(String, Vec<u8>)>>);

fn drained_run(publish: &str) -> Drained {
    use churnwatch::gen::{GenOptions, Generator};
    let mut h = Harness::with_config(|c| c.outputs.profile_publish = publish.into());
    h.ctx.emitted_at = Some(0);
    let mut g = Generator::new(GenOptions {
        customers: 300,
        events: 12_000,
        seed: 5,
        ..Default::default()
    });
    let (mut alerts, mut profiles, mut changelog) = (Vec::new(), Vec::new(), Vec::new());
    let mut line = Vec::new();
    let mut n = 0;
    let mut more = true;
    while more {
        more = g.next_line(&mut line);
        if more {
            h.send(&line);
            n += 1;
        } else {
            h.advance(at(800, 0));
        }
        if n % 1000 == 0 || !more {
            alerts.extend(h.take().iter().map(Output::to_json));
            let (mut outs, mut snaps) = (Vec::new(), Vec::new());
            h.p.drain_changes(&mut outs, |id, s| snaps.push((id.to_string(), s)));
            profiles.push(outs.iter().map(Output::to_json).collect());
            changelog.push(snaps);
        }
    }
    (alerts, profiles, changelog)
}

/// Deadlines fire only on days time changes a tier or warning, so a profile output is as
/// of the customer's last change; a look-up shows the facts as of the watermark.
#[test]
fn profiles_are_as_of_the_last_change_and_look_ups_as_of_now() {
    let mut h = Harness::new();
    // Three orders: a "potential" customer from the third on (not "new", whose 30-day
    // boundary would be an outcome change).
    for d in 0..3 {
        h.ev("F1", "order", at(d, 3600), r#""amount":500"#);
    }
    assert_eq!(tier_changes(&h.take()).last().unwrap().to, "potential");
    // Days 30-32: the orders leave the 30-day window, which no default rule reads; no
    // outcome changes until the 90-day silence.
    h.advance(at(40, 0));
    let mut drained = Vec::new();
    h.p.drain_dirty(&mut drained);
    let outputs: Vec<_> = drained
        .iter()
        .filter_map(|o| match o {
            Output::Profile(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(outputs.len(), 1, "the customer changed once: {outputs:?}");
    assert_eq!(outputs[0].facts.as_of, format_rfc3339(at(2, 3600)));
    assert_eq!(outputs[0].facts.windows[0].orders, 3);
    let now = h.profile("F1");
    assert_eq!(now.facts.as_of, format_rfc3339(at(40, 0)));
    assert_eq!(now.facts.recency_days, Some(38));
    assert_eq!(
        now.facts.windows[0].orders, 0,
        "the orders are older than 30 days"
    );
    assert_eq!(now.facts.windows[1].orders, 3);
    assert!(h.take().is_empty(), "time changed no outcome");
    // Day 92: 90 days without an order raise the silence warning and advance the clock.
    h.advance(at(92, 0));
    assert_eq!(warnings(&h.take()).len(), 1);
    h.p.drain_dirty(&mut drained);
    let last = drained.iter().rev().find_map(|o| match o {
        Output::Profile(p) => Some(p),
        _ => None,
    });
    assert_eq!(last.unwrap().facts.as_of, format_rfc3339(at(92, 0)));
}

/// Issue 19 item 6: `replay --profiles` writes each profile as of the end of the replay
/// (`--until`), as the look-up does, not as of the customer's last change;
/// `--profiles-as-published` keeps the latter (the profiles topic's records).
#[test]
fn replay_profiles_are_as_of_until() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    let mut text = String::new();
    for (i, day) in [0, 10].into_iter().enumerate() {
        let l = line(
            &format!("o{i}"),
            "R1",
            "order",
            at(day, 3600),
            r#""amount":50"#,
        );
        text += &(String::from_utf8(l).unwrap() + "\n");
    }
    std::fs::write(&input, text).unwrap();
    let until = at(410, 0);
    let run = |as_published: bool| {
        let profiles = d.path().join(format!("p-{as_published}.jsonl"));
        let opts = churnwatch::replay::ReplayOptions {
            input: input.clone(),
            output: d.path().join("alerts.jsonl"),
            profiles: Some(profiles.clone()),
            profiles_as_published: as_published,
            dead_letters: None,
            report: None,
            until: Some(until),
            print: false,
            progress: false,
        };
        let settings = std::sync::Arc::new(churnwatch::core::Settings::defaults());
        churnwatch::replay::replay(settings, &opts).unwrap();
        let text = std::fs::read_to_string(profiles).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1);
        lines[0]["facts"].clone()
    };
    // x = 1 repeat purchase day, t_x = 10 days, T = 410 days (weeks = days / 7).
    let cdnow = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let end = run(false);
    assert_eq!(end["as_of"], format_rfc3339(until).to_string());
    assert_eq!(end["recency_days"], 400);
    let (t_x, big_t) = (10.0 / 7.0, 410.0 / 7.0);
    assert_eq!(
        end["p_alive"].as_f64(),
        Some(bgnbd::p_alive(&cdnow, 1.0, t_x, big_t))
    );
    assert_eq!(
        end["expected_purchases"].as_f64(),
        Some(bgnbd::expected_purchases(
            &cdnow,
            30.0 / 7.0,
            1.0,
            t_x,
            big_t
        ))
    );
    // As published: as of the last deadline that changed the customer (day 191, when
    // more than 180 days without an order make it churn risk; nothing changes after it).
    let published = run(true);
    assert_eq!(published["as_of"], format_rfc3339(at(191, 0)).to_string());
    assert_eq!(published["recency_days"], 181);
}

/// `outputs.profile_publish`: every change publishes once per interval by default;
/// `on_standing_change` publishes only when the tier, the warning level or a profile
/// label changed (or the customer is new), and still keeps one profile per interval.
#[test]
fn profile_publish_every_change_or_on_standing_change() {
    let script = |h: &mut Harness| -> Vec<Vec<String>> {
        let mut per_interval = Vec::new();
        // New customer: tier `new` (a standing change).
        h.ev("P1", "order", at(0, 0), r#""amount":100"#);
        h.ev("P1", "visit", at(0, 60), "");
        per_interval.push(drained_profiles(h));
        // A visit changes facts only.
        h.ev("P1", "visit", at(1, 0), "");
        per_interval.push(drained_profiles(h));
        // A profile event names an account manager: a standing change.
        h.ev("P1", "profile", at(2, 0), r#""account_manager":"AM7""#);
        per_interval.push(drained_profiles(h));
        // The same manager again changes nothing that counts.
        h.ev("P1", "profile", at(3, 0), r#""account_manager":"AM7""#);
        per_interval.push(drained_profiles(h));
        // Day 30: `new` ends (time changes the tier).
        h.advance(at(31, 0));
        per_interval.push(drained_profiles(h));
        h.take();
        per_interval
    };
    let one = vec!["P1".to_string()];
    let every = script(&mut Harness::new());
    assert_eq!(
        every,
        vec![one.clone(); 5],
        "one profile per changed interval"
    );
    let standing = script(&mut Harness::with_config(|c| {
        c.outputs.profile_publish = "on_standing_change".into()
    }));
    assert_eq!(
        standing,
        vec![one.clone(), vec![], one.clone(), vec![], one],
        "only intervals whose standing changed"
    );
}

/// `on_standing_change` changes only which profiles are published: the alerts and the
/// changelog are the same as with `every_change`, and each interval's published profiles
/// are some of the ones `every_change` published in that interval, byte for byte.
#[test]
fn profile_publish_changes_only_which_profiles_are_published() {
    let (a1, p1, c1) = drained_run("every_change");
    let (a2, p2, c2) = drained_run("on_standing_change");
    assert!(a1.len() > 1000, "the stream produces alerts");
    assert_eq!(a1, a2, "alerts do not depend on the setting");
    assert_eq!(c1, c2, "the changelog does not depend on the setting");
    let (n1, n2): (usize, usize) = (p1.iter().map(Vec::len).sum(), p2.iter().map(Vec::len).sum());
    assert!(n2 > 0 && n2 < n1, "{n2} of {n1} profiles published");
    for (every, standing) in p1.iter().zip(&p2) {
        for p in standing {
            assert!(every.contains(p), "a profile every_change did not publish");
        }
    }
}
