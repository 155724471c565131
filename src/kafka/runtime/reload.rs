//! Rule changes in the running service: reload (SIGHUP or `POST /v1/rules/reload`) and
//! the dry run (`POST /v1/rules/diff`), applied to every held partition's processor of
//! every worker with all the workers' engines locked (so no look-up sees two rule sets),
//! between two records; the reload is checked, counted and reported once.
//!
//! The rule file on disk is the durable record: a reload re-reads the file the service
//! was started with, and a restart or another instance reads it too. Each partition's
//! checkpoint also carries the version its state was last written under; a partition
//! restored under a different version (an instance started with another file, or one that
//! took a partition over from an instance with other rules) is re-evaluated under the
//! rules this instance runs, with a warning in the log, so the state always means what the
//! running rules say.

use super::*;
use crate::core::processor::{check_reload, ReloadError, Reloaded, RulesDiff};

/// Reads and compiles the rule set again (the service's config file and environment).
pub type RulesSource = Arc<dyn Fn() -> Result<Settings, String> + Send + Sync>;

/// Why a rule set was not applied; the running one keeps going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The service was started without a way to read its rules again.
    #[error("this service has no rule file to reload (it was not started by `churnwatch run`)")]
    NoSource,
    /// The new rule set does not validate.
    #[error("the new rule set is invalid: {reason}; the running rules (version {running}) stay")]
    Invalid {
        /// Why, in words.
        reason: String,
        /// The running version.
        running: String,
    },
    /// The new rule set is valid but cannot replace the running one without a restart.
    #[error("{reason}; the running rules (version {running}) stay")]
    Refused {
        /// Why.
        reason: ReloadError,
        /// The running version.
        running: String,
    },
}

/// What a reload did, over every held partition.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadReport {
    /// Version replaced.
    pub from_version: String,
    /// Version now running.
    pub to_version: String,
    /// Partitions re-evaluated.
    pub partitions: usize,
    /// Customers re-evaluated.
    pub customers: u64,
    /// Customers whose tier or warning level changed (their alerts were emitted).
    pub changed: u64,
}

impl ServiceHandle {
    /// The version of the rules running.
    pub fn rules_version(&self) -> String {
        lock(&self.engines[0]).settings.rules_version.clone()
    }

    /// Reads the rule file again and applies it (see [`ServiceHandle::apply_rules`]);
    /// `caller` is logged.
    pub fn reload_rules(&self, caller: &str) -> Result<ReloadReport, RulesError> {
        let (source, running) = {
            let e = lock(&self.engines[0]);
            (e.rules_source.clone(), e.settings.rules_version.clone())
        };
        let Some(source) = source else {
            return Err(RulesError::NoSource);
        };
        // Read and compile outside the lock: processing goes on meanwhile.
        let r = match source() {
            Ok(s) => self.apply_rules(Arc::new(s), caller),
            Err(reason) => Err(RulesError::Invalid { reason, running }),
        };
        if let Err(e) = &r {
            let m = Arc::clone(&lock(&self.engines[0]).metrics);
            m.rules_reloads.with_label_values(&["refused"]).inc();
            tracing::warn!(target: "churnwatch::audit", caller, error = %e, "rules reload refused");
        }
        r
    }

    /// Replaces the running rules with `settings` on every held partition: each customer
    /// is re-evaluated at its partition's watermark and the changes are emitted as alerts.
    pub fn apply_rules(
        &self,
        settings: Arc<Settings>,
        caller: &str,
    ) -> Result<ReloadReport, RulesError> {
        let r = self.with_instance(|i| i.apply_rules(settings));
        if let Ok(rep) = &r {
            tracing::info!(target: "churnwatch::audit", caller, from = %rep.from_version, to = %rep.to_version, partitions = rep.partitions, customers = rep.customers, changed = rep.changed, "rules reloaded");
        }
        r
    }

    /// What applying `settings` would change on the partitions this instance holds (the
    /// dry run: nothing is emitted or changed).
    pub fn rules_diff(
        &self,
        settings: Arc<Settings>,
        samples: usize,
    ) -> Result<RulesDiff, RulesError> {
        self.with_instance(|i| {
            let running = i.settings().rules_version.clone();
            let mut all = RulesDiff {
                from_version: running.clone(),
                to_version: settings.rules_version.clone(),
                ..Default::default()
            };
            for e in &i.engines {
                for part in e.parts.values() {
                    let d = part
                        .proc
                        .rules_diff(Arc::clone(&settings), samples)
                        .map_err(|reason| RulesError::Refused {
                            reason,
                            running: running.clone(),
                        })?;
                    all.merge(d, samples);
                }
            }
            Ok(all)
        })
    }
}

impl Service {
    /// How the service reads its rules again on SIGHUP or `POST /v1/rules/reload`.
    pub fn set_rules_source(&self, source: RulesSource) {
        for e in &self.engines {
            lock(e).rules_source = Some(Arc::clone(&source));
        }
    }
}

impl Instance<'_> {
    /// Checks `settings` against the running rules once, then applies it on every
    /// worker; counted and reported once for the instance.
    fn apply_rules(&mut self, settings: Arc<Settings>) -> Result<ReloadReport, RulesError> {
        let running = self.settings().rules_version.clone();
        check_reload(self.settings(), &settings).map_err(|reason| RulesError::Refused {
            reason,
            running: running.clone(),
        })?;
        let mut rep = ReloadReport {
            from_version: running,
            to_version: settings.rules_version.clone(),
            ..Default::default()
        };
        for e in self.engines.iter_mut() {
            e.apply_rules(&settings, &mut rep);
        }
        let first = self.first();
        first
            .metrics
            .rules_reloads
            .with_label_values(&["applied"])
            .inc();
        first.metrics.set_rules_version(&settings.rules_version);
        *first.report_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(rep)
    }
}

impl Engine {
    /// Applies `settings` (already checked) on this worker's partitions, adding to `rep`.
    fn apply_rules(&mut self, settings: &Arc<Settings>, rep: &mut ReloadReport) {
        let ids: Vec<i32> = self.parts.keys().copied().collect();
        for p in ids {
            let done = self.reconfigure_part(p, settings);
            rep.partitions += 1;
            rep.customers += done.customers;
            rep.changed += done.changed;
        }
        self.retired = self.retired.under(&self.settings, settings);
        self.settings = Arc::clone(settings);
    }

    /// Re-evaluates partition `p` under `settings` and sends the changes on.
    fn reconfigure_part(&mut self, p: i32, settings: &Arc<Settings>) -> Reloaded {
        let now = (self.clock)();
        let ctx = Ctx {
            now: Some(now),
            emitted_at: Some(now),
        };
        let Some(part) = self.parts.get_mut(&p) else {
            return Reloaded::default();
        };
        // `check_reload` passed, so this cannot fail; if it did, the partition keeps its
        // rules and the log says so.
        let done = match part
            .proc
            .reconfigure(Arc::clone(settings), &ctx, &mut self.outs)
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(partition = p, error = %e, "partition kept its rules");
                return Reloaded::default();
            }
        };
        if !self.outs.is_empty() {
            self.route(p);
        }
        done
    }

    /// A restored partition under the running rules: restored with older rules (a reload
    /// during its restore) or last written under another version (its checkpoint's), it is
    /// re-evaluated now and the changes are emitted. Called once it is installed.
    pub(super) fn follow_rules(&mut self, p: i32, written_under: Option<&str>) {
        let Some(part) = self.parts.get(&p) else {
            return;
        };
        let held = part.proc.settings().rules_version.clone();
        let running = self.settings.rules_version.clone();
        let stale = !Arc::ptr_eq(part.proc.settings(), &self.settings);
        let other = written_under.is_some_and(|v| !v.is_empty() && v != running);
        if !stale && !other {
            return;
        }
        tracing::warn!(
            partition = p,
            written_under = written_under.unwrap_or(&held),
            running = %running,
            "partition state was written under other rules: re-evaluating its customers under the running rules (check that every instance of the group runs the same rule file: /v1/status shows each one's rules_version)"
        );
        let settings = Arc::clone(&self.settings);
        let done = self.reconfigure_part(p, &settings);
        tracing::info!(
            partition = p,
            customers = done.customers,
            changed = done.changed,
            "partition re-evaluated under the running rules"
        );
    }
}
