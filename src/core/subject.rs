//! What the rules read of one customer at one evaluation: its [`Facts`], its profile
//! labels, its tier history (tier, previous and best tier), its lifecycle and, when a rule
//! needs it, its standing in the population (value score, value tier, ABC class, core).
//!
//! Tier rules see the tiers the customer held *before* the evaluation (so a rule can keep
//! a tier with looser bars, `tier == "high_value"`); warning rules see them *after* the
//! evaluation set the new tier ([`Held::after`]).

use super::analytics::{Population, Standing};
use super::facts::Facts;
use super::rules::{Label, Lookup, Metric};
use super::settings::{Level, Settings};
use super::store::{label, pack, Interner, Record, NO_TIER};

/// The labels and tier history a customer holds (copied from its record: no borrow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Profile labels (interned ids, 0 = none), indexed like [`Record::labels`].
    pub attrs: [u16; 4],
    /// Current tier or [`NO_TIER`].
    pub tier: u8,
    /// The tier before the current one or [`NO_TIER`].
    pub previous: u8,
    /// The best tier ever held or [`NO_TIER`].
    pub peak: u8,
}

impl Held {
    /// What `rec` holds.
    pub fn of(rec: &Record) -> Held {
        Held {
            attrs: rec.labels,
            tier: rec.tier,
            previous: rec.previous_tier,
            peak: rec.peak_tier,
        }
    }

    /// What the customer holds once its tier is `tier`.
    pub fn after(self, tier: usize, s: &Settings) -> Held {
        let t = tier as u8;
        if t == self.tier {
            return self;
        }
        let better =
            self.peak == NO_TIER || s.tier_rank.get(tier) < s.tier_rank.get(self.peak as usize);
        Held {
            attrs: self.attrs,
            tier: t,
            previous: self.tier,
            peak: if better { t } else { self.peak },
        }
    }
}

/// One customer as rules see it.
pub struct Subject<'a> {
    /// Its facts.
    pub facts: &'a Facts,
    /// The rule set.
    pub s: &'a Settings,
    /// The label names.
    pub names: &'a Interner,
    /// Labels and tier history.
    pub held: Held,
    /// Standing in the population (computed only when a rule reads it).
    pub standing: Option<Standing>,
}

impl<'a> Subject<'a> {
    /// The subject, with its standing in `pop` when a rule needs it.
    pub fn new(
        facts: &'a Facts,
        s: &'a Settings,
        names: &'a Interner,
        held: Held,
        pop: Option<&Population>,
    ) -> Subject<'a> {
        let standing = match pop {
            Some(pop) if s.uses_standing => Some(standing(facts, s, pop)),
            _ => None,
        };
        Subject {
            facts,
            s,
            names,
            held,
            standing,
        }
    }

    fn tier_name(&self, t: u8) -> Option<&'a str> {
        (t != NO_TIER)
            .then(|| self.s.tiers.get(t as usize).map(|t| t.name.as_str()))
            .flatten()
    }
}

/// Where the customer with these facts stands in `pop`.
pub fn standing(f: &Facts, s: &Settings, pop: &Population) -> Standing {
    let spend = f.window(s, s.windows.len().saturating_sub(1)).amount;
    let a = &f.sums[s.activity_len];
    let keys = pop.keys(
        spend,
        a.visits.saturating_add(a.conversions),
        pack(f.first_seen_day),
    );
    pop.standing(keys, f.churn_risk_index(s))
}

impl Lookup for Subject<'_> {
    fn num(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::ValueScore => self.standing.as_ref().map(|s| s.value_score),
            m => self.facts.get(m, self.s),
        }
    }

    fn label(&self, l: Label) -> Option<&str> {
        let attr = |i: usize| self.names.name(self.held.attrs[i] as u32);
        match l {
            Label::Segment => attr(label::SEGMENT),
            Label::Region => attr(label::REGION),
            Label::Industry => attr(label::INDUSTRY),
            Label::AccountManager => attr(label::ACCOUNT_MANAGER),
            Label::Tier => self.tier_name(self.held.tier),
            Label::PreviousTier => self.tier_name(self.held.previous),
            Label::PeakTier => self.tier_name(self.held.peak),
            Label::Lifecycle => {
                let tenure = self.facts.today - self.facts.first_seen_day;
                Some(if tenure < self.s.new_customer_days as i32 {
                    "new"
                } else {
                    "existing"
                })
            }
            Label::ValueTier => self.standing.as_ref().map(|s| s.value_tier),
            Label::AbcClass => self.standing.as_ref().map(|s| s.abc_class),
            Label::Core => {
                self.standing
                    .as_ref()
                    .map(|s| if s.core_customer { "true" } else { "false" })
            }
        }
    }
}

/// The tier and warning level the rules give: tiers by what the customer held before,
/// warnings by what it holds after the new tier.
pub fn outcome(
    facts: &Facts,
    s: &Settings,
    names: &Interner,
    held: Held,
    pop: Option<&Population>,
) -> (usize, Level) {
    let mut x = Subject::new(facts, s, names, held, pop);
    let tier = s
        .tiers
        .iter()
        .position(|t| t.rule.as_ref().is_none_or(|r| r.matches(&x)))
        .unwrap_or(s.fallback_tier());
    x.held = held.after(tier, s);
    let mut level = Level::Low;
    for w in &s.warnings {
        if w.level > level && w.rule.matches(&x) {
            level = w.level;
        }
    }
    (tier, level)
}
