//! Settings tests: the default file compiles, bad values are refused with the fix.

use super::*;

#[test]
fn defaults_compile() {
    let s = Settings::defaults();
    assert_eq!(s.windows, vec![30, 90, 180, 365]);
    assert_eq!(s.lengths, vec![30, 90, 120, 180, 365]);
    assert_eq!(s.retention_days, 365);
    assert_eq!(s.tiers.last().unwrap().name, "regular");
    assert_eq!(s.sla_ms[Level::High as usize], 86_400_000);
    assert!(!s.daily);
    let text = s.explain();
    assert!(
        text.contains("high_value when days since the last order is below 90"),
        "{text}"
    );
}

fn with(f: impl FnOnce(&mut CoreConfig)) -> Result<Settings, ConfigError> {
    let mut c = CoreConfig::defaults();
    f(&mut c);
    Settings::compile(&c)
}

#[test]
fn bad_configs_say_what_to_fix() {
    assert!(with(|c| c.facts.windows_days = vec![30, 30, 90])
        .unwrap_err()
        .0
        .contains("remove the duplicate"));
    assert!(with(|c| c.facts.windows_days = vec![90, 30])
        .unwrap_err()
        .0
        .contains("ascending"));
    assert!(with(|c| c.facts.windows_days = vec![]).is_err());
    // Eight distinct lengths fit (seven windows plus the 120-day score period); nine do not.
    assert!(with(|c| c.facts.windows_days = vec![7, 14, 30, 60, 90, 180, 365]).is_ok());
    assert!(
        with(|c| c.facts.windows_days = vec![7, 14, 21, 30, 60, 90, 180, 365])
            .unwrap_err()
            .0
            .contains("at most 8 are supported")
    );
    assert!(with(|c| c.time.allowed_lateness = "soon".into())
        .unwrap_err()
        .0
        .contains("time.allowed_lateness"));
    assert!(with(|c| c.warnings.rules[0].level = "urgent".into())
        .unwrap_err()
        .0
        .contains("use `high` or `medium`"));
    assert!(with(|c| c.tiers.rules[1].name = "high_value".into())
        .unwrap_err()
        .0
        .contains("unique"));
    assert!(
        with(|c| c.tiers.rules[0].all.push("orders_365d < 2".into()))
            .unwrap_err()
            .0
            .contains("never match")
    );
    assert!(with(|c| c.churn_probability.a = 1.0).is_err());
    assert!(with(|c| c.facts.windows_days = vec![30, 5000])
        .unwrap_err()
        .0
        .contains("3660"));
}

/// The version follows the values that decide outputs, and only those.
#[test]
fn rules_version_follows_the_rules() {
    let base = Settings::defaults().rules_version;
    assert_eq!(base.len(), 12);
    assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(base, Settings::defaults().rules_version, "stable");
    let v = |f: fn(&mut CoreConfig)| with(f).unwrap().rules_version;
    assert_ne!(
        v(|c| c.warnings.rules[0].all[0] = "visits_30d < 4".into()),
        base
    );
    assert_ne!(v(|c| c.tiers.rules[0].action = "call them".into()), base);
    assert_ne!(v(|c| c.warnings.high.sla = Some("12h".into())), base);
    assert_eq!(v(|c| c.limits.max_orders_per_minute = 5), base);
    assert_eq!(
        v(|c| c.outputs.profile_publish = "on_standing_change".into()),
        base
    );
}

#[test]
fn profile_publish_is_checked() {
    assert_eq!(
        Settings::defaults().profile_publish,
        ProfilePublish::EveryChange
    );
    assert_eq!(
        with(|c| c.outputs.profile_publish = "on_standing_change".into())
            .unwrap()
            .profile_publish,
        ProfilePublish::OnStandingChange
    );
    assert!(with(|c| c.outputs.profile_publish = "hourly".into())
        .unwrap_err()
        .0
        .contains("on_standing_change"));
}

#[test]
fn unknown_keys_are_errors() {
    let text = DEFAULT_TOML.replace("[limits]", "[limits]\nmax_mesage_bytes = 5");
    let e = toml::from_str::<CoreConfig>(&text).unwrap_err().to_string();
    assert!(e.contains("max_mesage_bytes"), "{e}");
}

#[test]
fn tier_ranking_orders_the_best_tier() {
    let s = Settings::defaults();
    let rank = |n: &str| s.tier_rank[s.tiers.iter().position(|t| t.name == n).unwrap()];
    assert!(rank("high_value") < rank("potential"));
    assert!(rank("potential") < rank("new") && rank("new") < rank("regular"));
    assert!(rank("regular") < rank("churn_risk"));
    let mut c = CoreConfig::defaults();
    c.tiers.ranking = vec!["high_value".into(), "high_value".into()];
    assert!(Settings::compile(&c).unwrap_err().0.contains("twice"));
    // A ranking of other tiers (the default one under a rule set with its own tiers):
    // rule order, the fallback last.
    c.tiers.ranking = vec!["gold".into()];
    let s = Settings::compile(&c).unwrap();
    assert_eq!(s.tier_rank, (0..s.tiers.len() as u8).collect::<Vec<_>>());
    assert!(
        s.explain()
            .contains("Best tier first: high_value, new, potential, churn_risk, regular"),
        "{}",
        s.explain()
    );
}
