//! Validation of the settings sections that compile to their own types: the `[analytics]`
//! score numbers, the `[money]` rates, the `[tiers] ranking`, durations; and the rule-set
//! version hash. Each error names the
//! setting and the fix.

use super::*;

/// The score numbers of `[analytics]`, validated.
pub(super) fn compile_cuts(an: &AnalyticsConfig) -> Result<crate::core::scores::Cuts, ConfigError> {
    let bad = |what: &str| Err(ConfigError(format!("analytics.{what}")));
    let w = an.value_score_weights;
    if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || (w.iter().sum::<f64>() - 1.0).abs() > 1e-6
    {
        return bad(&format!(
            "value_score_weights = {w:?} must be three non-negative weights (spend, activity, tenure) that add up to 1, e.g. [0.5, 0.3, 0.2]"
        ));
    }
    let [a, b] = an.value_tiers;
    if !(a.is_finite() && b.is_finite() && 0.0 <= b && b < a && a <= 100.0) {
        return bad(&format!(
            "value_tiers = [{a}, {b}] must be the A and B thresholds of the 0-100 value score, A above B, e.g. [85, 70]"
        ));
    }
    if !an.risk_override.is_finite() || an.risk_override < 0.0 {
        return bad(&format!(
            "risk_override = {} must be a churn risk index of 0 or more, e.g. 50",
            an.risk_override
        ));
    }
    let p = an.abc_percent;
    if p.iter().any(|x| !(x.is_finite() && *x >= 0.0))
        || p[0] <= 0.0
        || (p.iter().sum::<f64>() - 100.0).abs() > 1e-6
    {
        return bad(&format!(
            "abc_percent = {p:?} must be the shares of spend of classes A, B and C in percent, A above 0, adding up to 100, e.g. [70, 20, 10]"
        ));
    }
    if !(an.core_percent > 0.0 && an.core_percent <= 100.0) {
        return bad(&format!(
            "core_percent = {} must be in (0, 100]: the top share of customers by spend, e.g. 10",
            an.core_percent
        ));
    }
    Ok(crate::core::scores::Cuts {
        weights: w,
        tier_a: a,
        tier_b: b,
        risk_d: an.risk_override,
        abc_a: p[0] / 100.0,
        abc_b: (p[0] + p[1]) / 100.0,
        core_from: 100.0 - an.core_percent,
    })
}

/// The `[money]` section, validated ([`crate::core::money::Money::compile`] says what is checked).
pub(super) fn compile_money(m: &MoneyConfig) -> Result<crate::core::money::Money, ConfigError> {
    let rates: Vec<(String, String, Option<String>)> = m
        .rates
        .iter()
        .map(|r| (r.currency.clone(), r.rate.clone(), r.from.clone()))
        .collect();
    crate::core::money::Money::compile(&m.currency, &m.missing_currency, &rates)
        .map_err(ConfigError)
}

/// Ranks tiers by `ranking` (best first); unlisted tiers follow in rule order, the
/// fallback last. Names that are not tiers are skipped: a rule set that replaces the tiers
/// inherits the default file's ranking, which must not make it invalid (`check-config`
/// prints the order in effect, so a misspelt name shows there).
pub(super) fn tier_ranking(tiers: &[Tier], ranking: &[String]) -> Result<Vec<u8>, ConfigError> {
    let mut order: Vec<usize> = Vec::with_capacity(tiers.len());
    for name in ranking {
        let Some(i) = tiers.iter().position(|t| &t.name == name) else {
            continue;
        };
        if order.contains(&i) {
            return Err(ConfigError(format!("tiers.ranking lists `{name}` twice")));
        }
        order.push(i);
    }
    let rest: Vec<usize> = (0..tiers.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let mut rank = vec![0u8; tiers.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = r as u8;
    }
    Ok(rank)
}

/// [`Settings::rules_version`]: the sections' values through their `Debug` form (fields
/// in declaration order, numbers exactly), so the text of a file (comments, key order,
/// `1e5` vs `100000.0`) does not matter, only the values do.
pub(super) fn rules_version(c: &CoreConfig) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        c.facts,
        c.tiers,
        c.warnings,
        c.churn_probability,
        c.clv,
        c.analytics,
        c.money,
        c.interventions
    );
    let h = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    format!("{:012x}", h >> 16)
}

pub(super) fn duration(field: &str, v: &str) -> Result<i64, ConfigError> {
    parse_duration_ms(v).ok_or_else(|| {
        ConfigError(format!(
            "{field} = \"{v}\" is not a duration; write it like \"90s\", \"5m\", \"24h\" or \"7d\""
        ))
    })
}
