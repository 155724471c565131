//! The outputs of a warning's life as a task (DOMAIN.md §6): the overdue escalation
//! (`churnwatch.churn_warning_overdue.v2`) and the task state a profile carries.

use serde::Serialize;

use super::super::json::{object, Json};
use super::{Headline, Text};

/// `churnwatch.churn_warning_overdue.v2`: a warning's due time passed without `done` or
/// `dismissed`. Emitted once per warning, at the due time, by time alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningOverdue {
    /// Schema name.
    pub schema: &'static str,
    /// Deterministic id (from the warning's id).
    pub event_id: String,
    /// Customer.
    pub customer_id: Text,
    /// The overdue warning's `event_id`.
    pub warning_id: Text,
    /// Its level.
    pub level: &'static str,
    /// Its rule (the first rule of its level that matched when it was raised).
    pub rule: Text,
    /// The escalation owner (`interventions.escalation.<level>`).
    pub owner: Text,
    /// Who owned the task until now.
    pub task_owner: Text,
    /// The task's status at the due time (`open`, `acknowledged` or `in_progress`).
    pub status: &'static str,
    /// When the warning was raised.
    pub raised_at: Text,
    /// The due time that passed.
    pub due: Text,
    /// Always `time`.
    pub trigger: &'static str,
    /// Event time: the due time.
    pub event_time: Text,
    /// When it was emitted.
    pub emitted_at: Text,
    /// The rule set's version.
    pub rules_version: Text,
    /// Headline facts at the due time.
    pub facts: Headline,
}

/// The task state of a customer's latest warning, on its profile (all `null` when the
/// customer never had a warning).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskState {
    /// The warning's `event_id`.
    pub warning_id: Option<Text>,
    /// Its level.
    pub level: Option<&'static str>,
    /// `open`, `acknowledged`, `in_progress`, `done` or `dismissed`.
    pub status: Option<&'static str>,
    /// Owner.
    pub owner: Option<Text>,
    /// The latest actor's id.
    pub actor: Option<Text>,
    /// The latest outcome code.
    pub outcome: Option<Text>,
    /// When the warning was raised.
    pub raised_at: Option<Text>,
    /// When someone last acted.
    pub acted_at: Option<Text>,
    /// Due time.
    pub due: Option<Text>,
    /// The due time passed without done/dismissed (an escalation was emitted).
    pub overdue: bool,
    /// The warning was cleared (the customer's level fell back to low).
    pub cleared: bool,
    /// The customer ordered again within `interventions.recovery_period`.
    pub recovered: bool,
}

impl Json for WarningOverdue {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b,
            self,
            schema,
            event_id,
            customer_id,
            warning_id,
            level,
            rule,
            owner,
            task_owner,
            status,
            raised_at,
            due,
            trigger,
            event_time,
            emitted_at,
            rules_version,
            facts
        );
    }
}

impl Json for TaskState {
    fn json(&self, b: &mut Vec<u8>) {
        object!(
            b, self, warning_id, level, status, owner, actor, outcome, raised_at, acted_at, due,
            overdue, cleared, recovered
        );
    }
}
