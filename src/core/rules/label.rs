//! The labels a rule can test (`segment == "enterprise"`, `tier in [potential, new]`,
//! `core == true`): their names, the values each may take, and the [`Lookup`] a rule is
//! evaluated against (numbers and labels of one customer).

use super::Metric;

/// A per-customer label a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// `segment` of profile events.
    Segment,
    /// `region` of profile events.
    Region,
    /// `industry` of profile events.
    Industry,
    /// `account_manager` of profile events.
    AccountManager,
    /// The tier held (tier rules: before this evaluation; warning rules: after it).
    Tier,
    /// The tier held before the current one.
    PreviousTier,
    /// The best tier ever held, by `tiers.ranking`.
    PeakTier,
    /// `new` (tenure below `facts.new_customer_days`) or `existing`.
    Lifecycle,
    /// Value tier A/B/C/D (needs `[analytics]`).
    ValueTier,
    /// ABC class A/B/C (needs `[analytics]`).
    AbcClass,
    /// Core customer, `true` or `false` (needs `[analytics]`).
    Core,
}

/// Number of labels (the size of a per-customer label table).
pub const LABEL_COUNT: usize = 11;

/// Every label: (label, name, words). docs/RULES.md §1 lists the same names.
pub const LABELS: [(Label, &str, &str); LABEL_COUNT] = [
    (Label::Segment, "segment", "the segment"),
    (Label::Region, "region", "the region"),
    (Label::Industry, "industry", "the industry"),
    (
        Label::AccountManager,
        "account_manager",
        "the account manager",
    ),
    (Label::Tier, "tier", "the tier"),
    (Label::PreviousTier, "previous_tier", "the previous tier"),
    (Label::PeakTier, "peak_tier", "the best tier ever held"),
    (Label::Lifecycle, "lifecycle", "the lifecycle"),
    (Label::ValueTier, "value_tier", "the value tier"),
    (Label::AbcClass, "abc_class", "the ABC class"),
    (Label::Core, "core", "core customer"),
];

/// Every label name, for error messages.
pub fn known_labels() -> String {
    LABELS
        .iter()
        .map(|(_, n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Label {
    /// The label called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Label> {
        LABELS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(l, _, _)| *l)
    }

    /// Index in a label table (`LABELS` order).
    pub fn index(self) -> usize {
        LABELS.iter().position(|(l, _, _)| *l == self).unwrap_or(0)
    }

    /// The name as written in rules.
    pub fn name(self) -> &'static str {
        LABELS[self.index()].1
    }

    /// The label in words.
    pub fn words(self) -> &'static str {
        LABELS[self.index()].2
    }

    /// True for labels ranked among the population (they need `[analytics]`).
    pub fn population(self) -> bool {
        matches!(self, Label::ValueTier | Label::AbcClass | Label::Core)
    }

    /// Checks a value the label is compared with. Free-text labels (profile attributes)
    /// take any value; so do the tier labels: a name that is not a tier of the rule set
    /// never matches, as in owner routing and `tiers.ranking`, so that a file replacing
    /// `[[tiers.rules]]` keeps the default warning rules valid (`check-config` prints the
    /// tiers in effect beside the rules).
    pub fn check(self, v: &str) -> Result<(), String> {
        let closed: Vec<&str> = match self {
            Label::Lifecycle => vec!["new", "existing"],
            Label::ValueTier => vec!["A", "B", "C", "D"],
            Label::AbcClass => vec!["A", "B", "C"],
            Label::Core => vec!["true", "false"],
            _ => return Ok(()),
        };
        if closed.contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "`{}` is never `{v}`; it is one of: {}",
                self.name(),
                closed.join(", ")
            ))
        }
    }
}

/// A label condition: the label's value is (or, negated, is not) one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTest {
    /// What is tested.
    pub label: Label,
    /// The accepted values.
    pub values: Vec<String>,
    /// `!=` / `not in`.
    pub negate: bool,
}

impl LabelTest {
    /// Whether it holds for a label value (`None`: the customer has no value: false).
    #[inline]
    pub fn holds(&self, v: Option<&str>) -> bool {
        v.is_some_and(|v| self.values.iter().any(|x| x == v) != self.negate)
    }
}

/// What a rule reads of one customer: metrics and labels.
pub trait Lookup {
    /// A metric's value (`None`: no value for this customer).
    fn num(&self, m: Metric) -> Option<f64>;
    /// A label's value (`None`: no value for this customer).
    fn label(&self, l: Label) -> Option<&str>;
}

/// Metrics only (labels have no value): for tests and numeric-only callers.
impl<F: Fn(Metric) -> Option<f64>> Lookup for F {
    fn num(&self, m: Metric) -> Option<f64> {
        self(m)
    }
    fn label(&self, _: Label) -> Option<&str> {
        None
    }
}
