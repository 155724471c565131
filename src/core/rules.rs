//! The rule language: conditions such as `orders_365d >= 5` over named per-customer
//! metrics or `segment == "enterprise"` over labels, grouped into tier and warning rules
//! (optionally with per-segment thresholds). Rules are data from configuration; this
//! module parses them once, evaluates them per customer, explains them in words and finds
//! rules that can never match. The names rules can test are in [`metric`] and [`label`].

use std::fmt;

mod label;
mod metric;

pub use label::{known_labels, Label, LabelTest, Lookup, LABELS, LABEL_COUNT};
pub use metric::{known_metrics, DayAnchor, Metric, WindowMetric, SCALARS};

/// What conditions may name: the configured windows and the rule set's tier names (the
/// tier names are informational: see [`Label::check`]).
#[derive(Debug, Clone, Copy)]
pub struct Vocab<'a> {
    /// `facts.windows_days`.
    pub windows: &'a [u16],
    /// Tier names (rules first, then the fallback).
    pub tiers: &'a [String],
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Op::Lt => "is below",
            Op::Le => "is at most",
            Op::Gt => "is above",
            Op::Ge => "is at least",
            Op::Eq => "is exactly",
            Op::Ne => "is not",
        }
    }
    /// Applies the operator.
    #[inline]
    pub fn test(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// What a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `metric op number`.
    Num {
        /// What is tested.
        metric: Metric,
        /// How.
        op: Op,
        /// Against what.
        value: f64,
    },
    /// `label == value`, `label != value`, `label in [..]`, `label not in [..]`.
    Label(LabelTest),
}

/// One condition. A condition on a metric or label that has no value for the customer
/// (recency for a customer who never ordered, a segment never given) is false.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What it tests.
    pub test: Test,
    /// The text it was parsed from, normalised (for reasons and messages).
    pub text: String,
}

impl Condition {
    /// Parses `metric op number` or a label condition.
    pub fn parse(text: &str, v: &Vocab<'_>) -> Result<Condition, String> {
        let t = text.trim();
        let name_end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        if let Some(label) = Label::parse(&t[..name_end]) {
            return Self::parse_label(label, t[name_end..].trim())
                .map_err(|e| format!("in condition `{t}`: {e}"));
        }
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (pos, sym, op) = ops
            .iter()
            .filter_map(|(s, o)| t.find(s).map(|p| (p, *s, *o)))
            .min_by_key(|(p, s, _)| (*p, std::cmp::Reverse(s.len())))
            .ok_or_else(|| {
                format!("condition `{t}` has no comparison; write it like `orders_365d >= 5` or `segment == \"enterprise\"`")
            })?;
        let name = t[..pos].trim();
        let num = t[pos + sym.len()..].trim().replace('_', "");
        let metric =
            Metric::parse(name, v.windows).map_err(|e| format!("in condition `{t}`: {e}"))?;
        let value: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("in condition `{t}`: `{num}` is not a number"))?;
        Ok(Condition {
            test: Test::Num { metric, op, value },
            text: format!("{} {} {}", name, op.symbol(), fmt_num(value)),
        })
    }

    /// `rest` follows the label's name: `== v`, `!= v`, `in [a, b]`, `not in [a, b]`.
    fn parse_label(label: Label, rest: &str) -> Result<Condition, String> {
        let (negate, list, values) = if let Some(x) = rest.strip_prefix("==") {
            (false, false, x)
        } else if let Some(x) = rest.strip_prefix("!=") {
            (true, false, x)
        } else if let Some(x) = rest.strip_prefix("not in") {
            (true, true, x)
        } else if let Some(x) = rest.strip_prefix("in") {
            (false, true, x)
        } else {
            return Err(format!(
                "`{}` is a label: compare it with ==, !=, in [..] or not in [..]",
                label.name()
            ));
        };
        let values = values.trim();
        let items: Vec<&str> = if list {
            let inner = values
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .ok_or_else(|| {
                    format!(
                        "write the values as a list, like `{} in [\"a\", \"b\"]`",
                        label.name()
                    )
                })?;
            inner
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect()
        } else {
            vec![values]
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let unq = item
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(item);
            if unq.is_empty() || unq.contains(['"', '[', ']', ',']) {
                return Err(format!(
                    "`{item}` is not a value; write a word or a quoted text"
                ));
            }
            label.check(unq)?;
            out.push(unq.to_string());
        }
        if out.is_empty() {
            return Err("the list of values is empty".into());
        }
        let quoted: Vec<String> = out.iter().map(|x| format!("\"{x}\"")).collect();
        let text = match (list, negate) {
            (false, false) => format!("{} == {}", label.name(), quoted[0]),
            (false, true) => format!("{} != {}", label.name(), quoted[0]),
            (true, false) => format!("{} in [{}]", label.name(), quoted.join(", ")),
            (true, true) => format!("{} not in [{}]", label.name(), quoted.join(", ")),
        };
        Ok(Condition {
            test: Test::Label(LabelTest {
                label,
                values: out,
                negate,
            }),
            text,
        })
    }

    /// The metric tested, if it is a numeric condition.
    pub fn metric(&self) -> Option<Metric> {
        match &self.test {
            Test::Num { metric, .. } => Some(*metric),
            Test::Label(_) => None,
        }
    }

    /// The label tested, if it is a label condition.
    pub fn label(&self) -> Option<Label> {
        match &self.test {
            Test::Label(l) => Some(l.label),
            Test::Num { .. } => None,
        }
    }

    /// Evaluates against a customer.
    #[inline]
    pub fn holds(&self, x: &impl Lookup) -> bool {
        match &self.test {
            Test::Num { metric, op, value } => x.num(*metric).is_some_and(|v| op.test(v, *value)),
            Test::Label(l) => l.holds(x.label(l.label)),
        }
    }

    /// The condition in words.
    pub fn describe(&self, windows: &[u16]) -> String {
        match &self.test {
            Test::Num { metric, op, value } => format!(
                "{} {} {}",
                metric.describe(windows),
                op.words(),
                fmt_num(*value)
            ),
            Test::Label(l) => format!(
                "{} is {}{}",
                l.label.words(),
                if l.negate { "not " } else { "" },
                l.values.join(" or ")
            ),
        }
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One condition set: every condition in `all`, and at least one in `any` when `any` is
/// not empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    /// Conditions that must all hold.
    pub all: Vec<Condition>,
    /// Conditions of which one must hold (ignored when empty).
    pub any: Vec<Condition>,
}

impl Body {
    fn parse(name: &str, all: &[String], any: &[String], v: &Vocab<'_>) -> Result<Body, String> {
        let parse = |list: &[String]| -> Result<Vec<Condition>, String> {
            list.iter()
                .map(|c| Condition::parse(c, v).map_err(|e| format!("rule `{name}`: {e}")))
                .collect()
        };
        let body = Body {
            all: parse(all)?,
            any: parse(any)?,
        };
        if body.all.is_empty() && body.any.is_empty() {
            return Err(format!(
                "rule `{name}` has no conditions; give it `all = [...]` and/or `any = [...]`"
            ));
        }
        if let Some(why) = impossible(&body.all) {
            return Err(format!("rule `{name}` can never match: {why}"));
        }
        Ok(body)
    }

    /// Every condition.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.all.iter().chain(self.any.iter())
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<&str> = self.all.iter().map(|c| c.text.as_str()).collect();
        let any: Vec<&str> = self.any.iter().map(|c| c.text.as_str()).collect();
        write!(f, "{}", all.join(" AND "))?;
        if !any.is_empty() {
            if !all.is_empty() {
                write!(f, " AND ")?;
            }
            write!(f, "({})", any.join(" OR "))?;
        }
        Ok(())
    }
}

/// A rule: its conditions, and per-segment conditions that replace them for the
/// customers of that segment (`[tiers.rules.segments.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Rule name (a tier name for tier rules).
    pub name: String,
    /// Conditions that must all hold.
    pub all: Vec<Condition>,
    /// Conditions of which one must hold (ignored when empty).
    pub any: Vec<Condition>,
    /// (segment, conditions for that segment's customers instead).
    pub segments: Vec<(String, Body)>,
}

/// A segment's conditions as written: (segment, all, any).
pub type SegmentSpec = (String, Vec<String>, Vec<String>);

impl Rule {
    /// Parses a rule's condition lists and its per-segment overrides.
    pub fn parse(
        name: &str,
        all: &[String],
        any: &[String],
        segments: &[SegmentSpec],
        v: &Vocab<'_>,
    ) -> Result<Rule, String> {
        let base = Body::parse(name, all, any, v)?;
        let mut out = Vec::with_capacity(segments.len());
        for (seg, all, any) in segments {
            if seg.is_empty() {
                return Err(format!("rule `{name}`: a segment name is empty"));
            }
            let body = Body::parse(&format!("{name}` for segment `{seg}"), all, any, v)?;
            out.push((seg.clone(), body));
        }
        Ok(Rule {
            name: name.to_string(),
            all: base.all,
            any: base.any,
            segments: out,
        })
    }

    /// The conditions that apply to a customer in `segment`.
    #[inline]
    pub fn body_for(&self, segment: Option<&str>) -> (&[Condition], &[Condition]) {
        if let Some(seg) = segment {
            if let Some((_, b)) = self.segments.iter().find(|(s, _)| s == seg) {
                return (&b.all, &b.any);
            }
        }
        (&self.all, &self.any)
    }

    /// Whether the rule matches.
    #[inline]
    pub fn matches(&self, x: &impl Lookup) -> bool {
        let seg = if self.segments.is_empty() {
            None
        } else {
            x.label(Label::Segment)
        };
        let (all, any) = self.body_for(seg);
        all.iter().all(|c| c.holds(x)) && (any.is_empty() || any.iter().any(|c| c.holds(x)))
    }

    /// The conditions that decided for this customer (its segment's, or the rule's).
    pub fn conditions_for<'a>(&'a self, x: &impl Lookup) -> impl Iterator<Item = &'a Condition> {
        let seg = if self.segments.is_empty() {
            None
        } else {
            x.label(Label::Segment)
        };
        let (all, any) = self.body_for(seg);
        all.iter().chain(any.iter())
    }

    /// Every condition, per-segment ones included, for timer derivation and checks.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.all
            .iter()
            .chain(self.any.iter())
            .chain(self.segments.iter().flat_map(|(_, b)| b.conditions()))
    }
}

/// Why the `all` conditions can never hold together, if they cannot: each metric's
/// allowed interval is intersected with its domain. (Label conditions are not checked.)
fn impossible(all: &[Condition]) -> Option<String> {
    /// The values of one metric that every `all` condition on it allows so far.
    struct Allowed<'a> {
        metric: Metric,
        lo: f64,
        lo_inc: bool,
        hi: f64,
        hi_inc: bool,
        texts: Vec<&'a str>,
    }
    let mut seen: Vec<Allowed<'_>> = Vec::new();
    for c in all {
        let Test::Num { metric, op, value } = &c.test else {
            continue;
        };
        let idx = match seen.iter().position(|s| s.metric == *metric) {
            Some(i) => i,
            None => {
                let (lo, hi) = metric.domain();
                seen.push(Allowed {
                    metric: *metric,
                    lo,
                    lo_inc: true,
                    hi,
                    hi_inc: true,
                    texts: Vec::new(),
                });
                seen.len() - 1
            }
        };
        let s = &mut seen[idx];
        s.texts.push(&c.text);
        let v = *value;
        match op {
            Op::Lt if v < s.hi || (v == s.hi && s.hi_inc) => (s.hi, s.hi_inc) = (v, false),
            Op::Le if v < s.hi => (s.hi, s.hi_inc) = (v, true),
            Op::Gt if v > s.lo || (v == s.lo && s.lo_inc) => (s.lo, s.lo_inc) = (v, false),
            Op::Ge if v > s.lo => (s.lo, s.lo_inc) = (v, true),
            Op::Eq => {
                let in_range =
                    (v > s.lo || (v == s.lo && s.lo_inc)) && (v < s.hi || (v == s.hi && s.hi_inc));
                if !in_range {
                    s.lo = f64::INFINITY;
                } else {
                    (s.lo, s.lo_inc, s.hi, s.hi_inc) = (v, true, v, true);
                }
            }
            _ => {}
        }
    }
    for a in seen {
        let empty = a.lo > a.hi || (a.lo == a.hi && !(a.lo_inc && a.hi_inc));
        if empty {
            let (dlo, dhi) = a.metric.domain();
            // Name the metric's range only when it is what makes the conditions
            // impossible (`orders_90d < 0`), not for a plain clash (`>= 5` and `< 3`).
            let at_domain = a.hi <= dlo || a.lo >= dhi;
            let domain = if !at_domain {
                String::new()
            } else if dhi.is_infinite() && dlo == 0.0 {
                " (it is never negative)".to_string()
            } else if dhi.is_finite() && dlo.is_finite() {
                format!(" (it lies between {} and {})", fmt_num(dlo), fmt_num(dhi))
            } else {
                String::new()
            };
            return Some(format!("{} cannot all hold{domain}", a.texts.join(" and ")));
        }
    }
    None
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = Body {
            all: self.all.clone(),
            any: self.any.clone(),
        };
        write!(f, "{base}")?;
        for (seg, b) in &self.segments {
            write!(f, "; for segment {seg}: {b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
