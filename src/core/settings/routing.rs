//! `[interventions]`: who owns a warning (owner routing by tier, level and segment, then
//! the account manager, then a default queue), who gets an overdue escalation, and how
//! long after a warning an order counts as the customer recovered (DOMAIN.md §6).

use serde::Deserialize;

use super::{duration, ConfigError, Level, TiersConfig, WarningsConfig};

/// One `[[interventions.owners]]` entry: every list given must contain the customer's
/// value (an empty or absent list matches anything).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OwnerRuleConfig {
    /// The owner (a role queue or an employee handle, never a person's name).
    pub owner: String,
    /// Tier names.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Warning levels (`low`, `medium`, `high`).
    #[serde(default)]
    pub levels: Vec<String>,
    /// Segments (the `segment` of profile events).
    #[serde(default)]
    pub segments: Vec<String>,
    /// Warning rules (the rule that decided the warning's level); a rule with this list
    /// never matches a tier change.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// `[interventions.escalation]`: the owner of an overdue escalation per level.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Medium warnings.
    pub medium: String,
    /// High warnings.
    pub high: String,
}

/// `[interventions]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InterventionsConfig {
    /// Owner when no rule matches and the customer has no account manager.
    pub default_queue: String,
    /// An order within this time after a warning counts the customer as recovered.
    pub recovery_period: String,
    /// Overdue escalation owners.
    pub escalation: EscalationConfig,
    /// Owner rules, first match wins.
    #[serde(default)]
    pub owners: Vec<OwnerRuleConfig>,
}

/// A compiled owner rule.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerRule {
    /// Owner.
    pub owner: String,
    /// Tier indexes (empty: any).
    pub tiers: Vec<usize>,
    /// Levels (empty: any).
    pub levels: Vec<Level>,
    /// Segments (empty: any).
    pub segments: Vec<String>,
    /// Deciding warning rules (empty: any).
    pub rules: Vec<String>,
}

/// The compiled `[interventions]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interventions {
    /// Owner rules in order.
    pub owners: Vec<OwnerRule>,
    /// Fallback owner.
    pub default_queue: String,
    /// Escalation owner by level (low, medium, high; low is never escalated).
    pub escalation: [String; 3],
    /// Recovery period, ms.
    pub recovery_ms: i64,
}

impl Interventions {
    /// The owner of a task about a customer in `tier` at `level` with `segment` and
    /// `account_manager`: the first matching rule, else the account manager, else the
    /// default queue. Never empty.
    pub fn owner<'a>(
        &'a self,
        tier: usize,
        level: Level,
        segment: Option<&str>,
        account_manager: Option<&'a str>,
    ) -> &'a str {
        self.owner_by_rule(tier, level, segment, account_manager, None)
    }

    /// [`Interventions::owner`] of a warning decided by the warning rule `rule`.
    pub fn owner_by_rule<'a>(
        &'a self,
        tier: usize,
        level: Level,
        segment: Option<&str>,
        account_manager: Option<&'a str>,
        rule: Option<&str>,
    ) -> &'a str {
        self.owners
            .iter()
            .find(|r| {
                (r.rules.is_empty() || rule.is_some_and(|x| r.rules.iter().any(|n| n == x)))
                    && (r.tiers.is_empty() || r.tiers.contains(&tier))
                    && (r.levels.is_empty() || r.levels.contains(&level))
                    && (r.segments.is_empty()
                        || segment.is_some_and(|s| r.segments.iter().any(|x| x == s)))
            })
            .map(|r| r.owner.as_str())
            .or(account_manager.filter(|a| !a.is_empty()))
            .unwrap_or(&self.default_queue)
    }

    /// Every owner name the config can produce (interned up front so a flood of other
    /// labels cannot push them out of the label table).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.owners
            .iter()
            .map(|r| r.owner.as_str())
            .chain(self.escalation.iter().map(String::as_str))
            .chain(std::iter::once(self.default_queue.as_str()))
    }
}

/// Validates and compiles `[interventions]` against the tiers.
pub fn compile(
    c: &InterventionsConfig,
    tiers: &TiersConfig,
    warnings: &WarningsConfig,
) -> Result<Interventions, ConfigError> {
    let nonempty = |field: &str, v: &str| {
        if v.trim().is_empty() {
            Err(ConfigError(format!(
                "{field} must not be empty: every task needs an owner"
            )))
        } else {
            Ok(v.to_string())
        }
    };
    let default_queue = nonempty("interventions.default_queue", &c.default_queue)?;
    let escalation = [
        String::new(),
        nonempty("interventions.escalation.medium", &c.escalation.medium)?,
        nonempty("interventions.escalation.high", &c.escalation.high)?,
    ];
    let recovery_ms = duration("interventions.recovery_period", &c.recovery_period)?;
    let mut owners = Vec::new();
    for (i, r) in c.owners.iter().enumerate() {
        let at = format!("interventions.owners[{i}]");
        let owner = nonempty(&format!("{at}.owner"), &r.owner)?;
        // A tier the rule set does not define is left out: a file that replaces
        // [[tiers.rules]] keeps working with the default owner rules, whose rules for
        // tiers it does not have then never match (`check-config` lists the owner rules).
        let tiers_of: Vec<usize> = r
            .tiers
            .iter()
            .filter_map(|name| {
                if *name == tiers.fallback {
                    Some(tiers.rules.len())
                } else {
                    tiers.rules.iter().position(|t| t.name == *name)
                }
            })
            .collect();
        if !r.tiers.is_empty() && tiers_of.is_empty() {
            continue;
        }
        // The same for warning rules a file that replaces [[warnings.rules]] lacks.
        let rules_of: Vec<String> = r
            .rules
            .iter()
            .filter(|n| warnings.rules.iter().any(|w| &w.name == *n))
            .cloned()
            .collect();
        if !r.rules.is_empty() && rules_of.is_empty() {
            continue;
        }
        let level = |name: &String| match name.as_str() {
            "low" => Ok(Level::Low),
            "medium" => Ok(Level::Medium),
            "high" => Ok(Level::High),
            _ => Err(ConfigError(format!(
                "{at}.levels: `{name}` is not a level; use low, medium or high"
            ))),
        };
        owners.push(OwnerRule {
            owner,
            tiers: tiers_of,
            levels: r.levels.iter().map(level).collect::<Result<_, _>>()?,
            segments: r.segments.clone(),
            rules: rules_of,
        });
    }
    Ok(Interventions {
        owners,
        default_queue,
        escalation,
        recovery_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::Settings;

    /// DOMAIN.md §6 with the default config: high-value → key-account director, new →
    /// onboarding specialist, churn risk → sales lead; otherwise the account manager, and
    /// the default queue without one.
    #[test]
    fn default_routing() {
        let s = Settings::defaults();
        let i = &s.interventions;
        let tier = |n: &str| s.tiers.iter().position(|t| t.name == n).unwrap();
        let am = Some("AM-007");
        assert_eq!(
            i.owner(tier("high_value"), Level::High, None, am),
            "key-account-director"
        );
        assert_eq!(
            i.owner(tier("new"), Level::Medium, None, am),
            "onboarding-specialist"
        );
        assert_eq!(
            i.owner(tier("churn_risk"), Level::Medium, None, am),
            "sales-lead"
        );
        assert_eq!(i.owner(tier("potential"), Level::High, None, am), "AM-007");
        assert_eq!(
            i.owner(tier("regular"), Level::Medium, None, None),
            "retention-queue"
        );
        assert_eq!(i.escalation[Level::High as usize], "team-lead");
        // Issue 19: a lapsed former top customer is escalated, not filed with the sales lead.
        assert_eq!(
            i.owner_by_rule(
                tier("churn_risk"),
                Level::High,
                None,
                am,
                Some("lapsed_top_customer")
            ),
            "key-account-director"
        );
        assert_eq!(
            i.owner_by_rule(
                tier("churn_risk"),
                Level::High,
                None,
                am,
                Some("disengaged_with_complaints")
            ),
            "sales-lead"
        );
    }

    /// A rule set with other tiers keeps the default owner rules working: the rules for
    /// tiers it lacks never match.
    #[test]
    fn rules_for_undefined_tiers_never_match() {
        let mut c = crate::core::settings::CoreConfig::defaults();
        let n = c.interventions.owners.len();
        let i = c
            .interventions
            .owners
            .iter()
            .position(|o| o.tiers == ["high_value"])
            .unwrap();
        c.interventions.owners[i].tiers = vec!["vip".into()];
        let s = Settings::compile(&c).unwrap();
        assert_eq!(s.interventions.owners.len(), n - 1);
        let high_value = s.tiers.iter().position(|t| t.name == "high_value").unwrap();
        assert_eq!(
            s.interventions.owner(high_value, Level::High, None, None),
            "retention-queue"
        );
    }
}
