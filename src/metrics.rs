//! Prometheus metrics (prefix `churnwatch_`) in an owned [`Registry`]. The core only
//! counts (`core::Stats`); this facade turns those counts into metrics at scrape time, and
//! the runtime observes the few things only it sees (latency, commit and restore
//! durations). Labels come from small fixed sets: event types, reason codes, output
//! kinds, configured tier names, warning levels, partition numbers. Never a customer id.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod report;

use crate::core::event::{EventKind, RejectReason};
use crate::core::output::OutputKind;
use crate::core::quality;
use crate::core::{Settings, Stats};

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    events: IntCounterVec,
    rejected: IntCounterVec,
    duplicates: IntCounter,
    skipped: IntCounter,
    late: IntCounter,
    beyond_retention: IntCounter,
    outputs: IntCounterVec,
    transitions: IntCounterVec,
    warnings_raised: IntCounterVec,
    warnings_cleared: IntCounter,
    deadlines: IntCounter,
    customers_by_tier: IntGaugeVec,
    warnings_open: IntGaugeVec,
    customers: IntGauge,
    p_alive: prometheus::GaugeVec,
    state_bytes: IntGauge,
    partitions: IntGauge,
    lag: IntGaugeVec,
    watermark_delay: prometheus::GaugeVec,
    ready: IntGauge,
    commits: IntCounter,
    input_events: IntCounterVec,
    input_rejected: IntCounterVec,
    input_duplicates: IntCounterVec,
    input_late: IntCounterVec,
    /// Event → output latency (input CreateTime to the output's send).
    pub latency: Histogram,
    /// Cut → durable time of a commit interval.
    pub commit_duration: Histogram,
    /// Time to rebuild a partition from the changelog.
    pub restore_duration: Histogram,
    /// Changelog records read by restores.
    pub restore_records: IntCounter,
    /// Restores that started from a warm standby copy (only its tail was read).
    pub standby_promotions: IntCounter,
    /// Warm standby copies held (`kafka.standby_replicas`).
    pub standby_partitions: IntGauge,
    /// Changelog records the warm copies have yet to read, summed.
    pub standby_lag: IntGauge,
    /// Records the brokers refused for good.
    pub delivery_failures: IntCounter,
    /// Bytes written per output kind, for capacity planning.
    pub output_bytes: IntCounterVec,
    /// Poll-loop errors from the consumer.
    pub consumer_errors: IntCounter,
    /// Transactions aborted (`exactly_once`): their partitions were rebuilt from the
    /// changelog and re-read from the last commit.
    pub transactions_aborted: IntCounter,
    /// Rule reloads, by result (`applied`, `refused`).
    pub rules_reloads: IntCounterVec,
    /// 1, labelled with the running rules version.
    rules_version: IntGaugeVec,
    report_overall: prometheus::GaugeVec,
    report_value_tier: IntGaugeVec,
    report_abc_customers: IntGaugeVec,
    report_abc_spend_share: prometheus::GaugeVec,
    report_core: IntGauge,
    report_core_spend_share: prometheus::Gauge,
    report_campaign: prometheus::GaugeVec,
    interventions: IntCounterVec,
    overdue: IntCounterVec,
    recovered: IntCounterVec,
    report_interventions: prometheus::GaugeVec,
}

/// Figures per warning rule exported as `churnwatch_report_interventions` (README
/// "Interventions"): over each customer's latest warning.
pub(crate) const INTERVENTION_FIGURES: [&str; 10] = [
    "raised",
    "acted",
    "acknowledged",
    "done",
    "dismissed",
    "overdue",
    "overdue_open",
    "recovered",
    "recovery_rate",
    "median_hours_to_first_action",
];

/// Label values of `churnwatch_interventions_total`: the statuses an intervention sets
/// (indexed like `Stats::interventions` from 1), then `unmatched`.
const INTERVENTION_STATUSES: [&str; 5] = [
    "acknowledged",
    "in_progress",
    "done",
    "dismissed",
    "unmatched",
];

fn fgv(name: &str, help: &str, labels: &[&str]) -> prometheus::GaugeVec {
    prometheus::GaugeVec::new(Opts::new(format!("churnwatch_{name}"), help), labels)
        .expect("valid metric")
}

fn c(name: &str, help: &str) -> IntCounter {
    IntCounter::new(format!("churnwatch_{name}"), help).expect("valid metric")
}

fn cv(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(format!("churnwatch_{name}"), help), labels).expect("valid metric")
}

fn g(name: &str, help: &str) -> IntGauge {
    IntGauge::new(format!("churnwatch_{name}"), help).expect("valid metric")
}

fn gv(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(format!("churnwatch_{name}"), help), labels).expect("valid metric")
}

fn h(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(format!("churnwatch_{name}"), help).buckets(buckets))
        .expect("valid metric")
}

/// Raises a counter to `total` (counters only move up; totals are cumulative).
fn raise(counter: &IntCounter, total: u64) {
    let cur = counter.get();
    if total > cur {
        counter.inc_by(total - cur);
    }
}

/// Label values of the P(alive) deciles.
pub const P_ALIVE_RANGES: [&str; 10] = [
    "0.0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6", "0.6-0.7", "0.7-0.8",
    "0.8-0.9", "0.9-1.0",
];

/// What the metrics read from the engine at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Cumulative core counters (including partitions this instance gave up).
    pub stats: Stats,
    /// Customers per tier (indexed like `Settings::tiers`).
    pub tiers: Vec<i64>,
    /// Customers per warning level (low, medium, high).
    pub levels: [i64; 3],
    /// Customers held.
    pub customers: i64,
    /// Customers per P(alive) decile (`None` when churn probability is disabled).
    pub p_alive: Option<[f64; 10]>,
    /// Estimated state bytes.
    pub state_bytes: i64,
    /// Per partition: (partition, lag, watermark delay in seconds).
    pub partitions: Vec<(i32, Option<i64>, Option<f64>)>,
    /// Ready?
    pub ready: bool,
    /// Intervals made durable.
    pub commits: u64,
    /// The latest population report (see `REPORT_METRICS_EVERY`).
    pub report: Option<std::sync::Arc<crate::core::report::Report>>,
}

impl Metrics {
    /// Registers every metric; `settings` gives the tier names.
    pub fn new(settings: &Settings) -> Metrics {
        let ms = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let m = Metrics {
            registry: Registry::new(),
            events: cv("events_consumed_total", "Valid input events consumed, by type (duplicates included).", &["type"]),
            rejected: cv("events_rejected_total", "Input records rejected to the dead-letter topic, by reason.", &["reason"]),
            duplicates: c("events_duplicate_total", "Events whose event_id was already applied for the customer (no-ops)."),
            skipped: c("events_already_applied_total", "Events at or below a customer's restored offset, skipped after a restore."),
            late: c("events_late_total", "Events older than the partition's watermark."),
            beyond_retention: c("events_beyond_retention_total", "Events older than the retained history (lifetime totals only)."),
            outputs: cv("outputs_total", "Outputs produced, by kind.", &["kind"]),
            transitions: cv("tier_transitions_total", "Tier changes, by previous (none for new customers) and new tier.", &["from", "to"]),
            warnings_raised: cv("warnings_raised_total", "Churn warnings raised (or raised to a higher level), by level.", &["level"]),
            warnings_cleared: c("warnings_cleared_total", "Churn warnings cleared."),
            deadlines: c("deadlines_fired_total", "Time-driven re-evaluations (silence, decay, window expiry)."),
            customers_by_tier: gv("customers", "Customers held by this instance, by tier.", &["tier"]),
            warnings_open: gv("warnings_open", "Customers whose current warning level is medium or high, by level.", &["level"]),
            customers: g("state_customers", "Customers held by this instance."),
            p_alive: prometheus::GaugeVec::new(
                Opts::new(
                    "churnwatch_p_alive_customers",
                    "Customers who ordered, by BG/NBD P(alive) decile as of the watermark (estimated from a sample of up to 20,000 per partition).",
                ),
                &["range"],
            )
            .expect("valid metric"),
            state_bytes: g("state_bytes", "Estimated bytes of customer state held."),
            partitions: g("partitions_assigned", "Input partitions held by this instance."),
            lag: gv("consumer_lag", "Records between the partition's position and its high watermark.", &["partition"]),
            watermark_delay: prometheus::GaugeVec::new(
                Opts::new("churnwatch_watermark_delay_seconds", "Clock minus the partition's watermark."),
                &["partition"],
            )
            .expect("valid metric"),
            ready: g("ready", "1 when /readyz answers 200."),
            commits: c("commits_total", "Commit intervals made durable (outputs, changelog and checkpoint acknowledged)."),
            input_events: cv("input_events_total", "Data quality: input messages by event type, valid (duplicates included) and rejected; `unknown` for rejected messages without a readable known type.", &["type"]),
            input_rejected: cv("input_rejected_total", "Data quality: input messages rejected to the dead-letter topic, by event type (`unknown` if unreadable) and reason (abnormal_frequency and unknown_currency included).", &["type", "reason"]),
            input_duplicates: cv("input_duplicates_total", "Data quality: duplicate events (same event_id for the customer), by event type.", &["type"]),
            input_late: cv("input_late_total", "Data quality: events older than the partition's watermark, by event type.", &["type"]),
            latency: h("event_to_output_seconds", "From the input record's produce time to the output's produce, for events that produced output.", ms.to_vec()),
            commit_duration: h("commit_duration_seconds", "From cutting a commit interval to its checkpoint being acknowledged.", ms.to_vec()),
            restore_duration: h("restore_duration_seconds", "Time to rebuild one partition's state from the changelog.", vec![0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            restore_records: c("restore_records_total", "Changelog records read while restoring."),
            standby_promotions: c("standby_promotions_total", "Partition restores that started from a warm standby copy and read only the changelog's tail."),
            standby_partitions: g("standby_partitions", "Warm standby copies of partitions held by other instances."),
            standby_lag: g("standby_lag_records", "Changelog records the warm standby copies have yet to read, summed over them."),
            delivery_failures: c("delivery_failures_total", "Records the brokers refused for good."),
            output_bytes: cv("output_bytes_total", "Bytes of output payloads produced, by kind.", &["kind"]),
            report_overall: fgv("report_overall", "Population report, overall figures (rates 0-1, NPS -100..100); refreshed at most every minute.", &["figure"]),
            report_value_tier: gv("report_value_tier_customers", "Customers by value tier (A >= 85, B 70-85, C < 70, D churn risk >= 50).", &["value_tier"]),
            report_abc_customers: gv("report_abc_customers", "Customers by ABC class of 365-day spend.", &["class"]),
            report_abc_spend_share: fgv("report_abc_spend_share", "Share of 365-day spend by ABC class (0-1).", &["class"]),
            report_core: g("report_core_customers", "Core customers: the top 10 % by 365-day spend."),
            report_core_spend_share: prometheus::Gauge::new("churnwatch_report_core_spend_share", "Share of 365-day spend made by core customers (0-1).").expect("valid metric"),
            report_campaign: fgv("report_campaign", "Campaign effect by campaign (tracked campaigns and `other`).", &["campaign", "figure"]),
            interventions: cv("interventions_total", "Intervention events applied to a warning, by status; `unmatched`: no open warning of the customer matched (counted, no change).", &["status"]),
            overdue: cv("warnings_overdue_total", "Warnings escalated because their due time passed without done or dismissed, by level.", &["level"]),
            recovered: cv("warnings_recovered_total", "Warned customers who ordered again within interventions.recovery_period, by level.", &["level"]),
            report_interventions: fgv("report_interventions", "Saved customers per warning rule over each customer's latest warning: counts, recovery_rate (0-1), median_hours_to_first_action.", &["rule", "level", "figure"]),
            consumer_errors: c("consumer_errors_total", "Errors reported by the consumer's poll (retried)."),
            transactions_aborted: c("transactions_aborted_total", "Transactions aborted (exactly_once); their partitions are rebuilt from the changelog."),
            rules_reloads: cv("rules_reloads_total", "Rule reloads (SIGHUP, POST /v1/rules/reload), by result: applied or refused (invalid, or a change a reload cannot make).", &["result"]),
            rules_version: gv("rules_version_info", "1, labelled with the version of the rules running (the rules_version on alerts).", &["version"]),
        };
        let r = &m.registry;
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.events.clone()),
            Box::new(m.rejected.clone()),
            Box::new(m.duplicates.clone()),
            Box::new(m.skipped.clone()),
            Box::new(m.late.clone()),
            Box::new(m.beyond_retention.clone()),
            Box::new(m.outputs.clone()),
            Box::new(m.transitions.clone()),
            Box::new(m.warnings_raised.clone()),
            Box::new(m.warnings_cleared.clone()),
            Box::new(m.deadlines.clone()),
            Box::new(m.customers_by_tier.clone()),
            Box::new(m.warnings_open.clone()),
            Box::new(m.customers.clone()),
            Box::new(m.p_alive.clone()),
            Box::new(m.state_bytes.clone()),
            Box::new(m.partitions.clone()),
            Box::new(m.lag.clone()),
            Box::new(m.watermark_delay.clone()),
            Box::new(m.ready.clone()),
            Box::new(m.commits.clone()),
            Box::new(m.input_events.clone()),
            Box::new(m.input_rejected.clone()),
            Box::new(m.input_duplicates.clone()),
            Box::new(m.input_late.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.commit_duration.clone()),
            Box::new(m.restore_duration.clone()),
            Box::new(m.restore_records.clone()),
            Box::new(m.standby_promotions.clone()),
            Box::new(m.standby_partitions.clone()),
            Box::new(m.standby_lag.clone()),
            Box::new(m.delivery_failures.clone()),
            Box::new(m.output_bytes.clone()),
            Box::new(m.consumer_errors.clone()),
            Box::new(m.transactions_aborted.clone()),
            Box::new(m.report_overall.clone()),
            Box::new(m.report_value_tier.clone()),
            Box::new(m.report_abc_customers.clone()),
            Box::new(m.report_abc_spend_share.clone()),
            Box::new(m.report_core.clone()),
            Box::new(m.report_core_spend_share.clone()),
            Box::new(m.report_campaign.clone()),
            Box::new(m.interventions.clone()),
            Box::new(m.overdue.clone()),
            Box::new(m.recovered.clone()),
            Box::new(m.report_interventions.clone()),
            Box::new(m.rules_reloads.clone()),
            Box::new(m.rules_version.clone()),
        ];
        for col in all {
            r.register(col).expect("unique metric names");
        }
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        // Every label value exists from the start, so rates work from the first scrape
        // and dashboards show zeros instead of gaps.
        for k in EventKind::ALL {
            m.events.with_label_values(&[k.name()]);
        }
        for r in ["applied", "refused"] {
            m.rules_reloads.with_label_values(&[r]);
        }
        m.set_rules_version(&settings.rules_version);
        for reason in RejectReason::ALL {
            m.rejected.with_label_values(&[reason.code()]);
        }
        // 10 types × 15 reasons: a fixed set, created up front so the rejected-share
        // alert's rate() sees a type's first rejection.
        for t in (0..quality::TYPES).map(quality::type_name) {
            m.input_events.with_label_values(&[t]);
            m.input_duplicates.with_label_values(&[t]);
            m.input_late.with_label_values(&[t]);
            for reason in RejectReason::ALL {
                m.input_rejected.with_label_values(&[t, reason.code()]);
            }
        }
        for k in OutputKind::ALL {
            m.outputs.with_label_values(&[k.name()]);
            m.output_bytes.with_label_values(&[k.name()]);
        }
        for l in ["medium", "high"] {
            m.warnings_raised.with_label_values(&[l]);
            m.warnings_open.with_label_values(&[l]);
            m.overdue.with_label_values(&[l]);
            m.recovered.with_label_values(&[l]);
        }
        for st in INTERVENTION_STATUSES {
            m.interventions.with_label_values(&[st]);
        }
        for w in &settings.warnings {
            for f in INTERVENTION_FIGURES {
                m.report_interventions
                    .with_label_values(&[&w.rule.name, w.level.name(), f])
                    .set(0.0);
            }
        }
        for t in &settings.tiers {
            m.customers_by_tier.with_label_values(&[&t.name]);
        }
        if settings.analytics.is_some() {
            for t in ["A", "B", "C", "D"] {
                m.report_value_tier.with_label_values(&[t]);
            }
            for c in ["A", "B", "C"] {
                m.report_abc_customers.with_label_values(&[c]);
                m.report_abc_spend_share.with_label_values(&[c]);
            }
        }
        if settings.bgnbd.is_some() {
            for r in P_ALIVE_RANGES {
                m.p_alive.with_label_values(&[r]);
            }
        }
        m
    }

    /// Brings the scrape-time metrics up to date.
    pub fn update(&self, settings: &Settings, s: &Snapshot) {
        for k in EventKind::ALL {
            raise(
                &self.events.with_label_values(&[k.name()]),
                s.stats.consumed[k.index()],
            );
        }
        for r in RejectReason::ALL {
            raise(
                &self.rejected.with_label_values(&[r.code()]),
                s.stats.rejected[r.index()],
            );
        }
        for (i, q) in s.stats.quality.types.iter().enumerate() {
            let t = quality::type_name(i);
            raise(&self.input_events.with_label_values(&[t]), q.seen);
            raise(&self.input_duplicates.with_label_values(&[t]), q.duplicates);
            raise(&self.input_late.with_label_values(&[t]), q.late);
            for r in RejectReason::ALL {
                raise(
                    &self.input_rejected.with_label_values(&[t, r.code()]),
                    q.rejected[r.index()],
                );
            }
        }
        raise(&self.duplicates, s.stats.duplicates);
        raise(&self.skipped, s.stats.already_applied);
        raise(&self.late, s.stats.late);
        raise(&self.beyond_retention, s.stats.beyond_retention);
        for k in OutputKind::ALL {
            raise(
                &self.outputs.with_label_values(&[k.name()]),
                s.stats.outputs[k as usize],
            );
        }
        let n = settings.tiers.len();
        for (i, total) in s.stats.transitions.iter().enumerate() {
            if *total == 0 {
                continue;
            }
            let (from, to) = (i / n, i % n);
            let from = settings.tiers.get(from).map_or("none", |t| t.name.as_str());
            raise(
                &self
                    .transitions
                    .with_label_values(&[from, &settings.tiers[to].name]),
                *total,
            );
        }
        for (i, l) in ["low", "medium", "high"].iter().enumerate().skip(1) {
            raise(
                &self.warnings_raised.with_label_values(&[l]),
                s.stats.warnings_raised[i],
            );
            self.warnings_open.with_label_values(&[l]).set(s.levels[i]);
        }
        raise(&self.warnings_cleared, s.stats.warnings_cleared);
        for (i, st) in INTERVENTION_STATUSES.iter().enumerate() {
            let n = match i {
                4 => s.stats.interventions_unmatched,
                _ => s.stats.interventions[i + 1],
            };
            raise(&self.interventions.with_label_values(&[st]), n);
        }
        for (i, l) in ["medium", "high"].iter().enumerate() {
            raise(
                &self.overdue.with_label_values(&[l]),
                s.stats.overdue[i + 1],
            );
            raise(
                &self.recovered.with_label_values(&[l]),
                s.stats.recovered[i + 1],
            );
        }
        raise(&self.deadlines, s.stats.timers_fired);
        for (i, t) in settings.tiers.iter().enumerate() {
            self.customers_by_tier
                .with_label_values(&[&t.name])
                .set(s.tiers.get(i).copied().unwrap_or(0));
        }
        self.customers.set(s.customers);
        if let Some(b) = &s.p_alive {
            for (i, v) in b.iter().enumerate() {
                self.p_alive
                    .with_label_values(&[P_ALIVE_RANGES[i]])
                    .set(v.round());
            }
        }
        if let Some(r) = &s.report {
            self.update_report(r);
        }
        self.state_bytes.set(s.state_bytes);
        self.partitions.set(s.partitions.len() as i64);
        self.lag.reset();
        self.watermark_delay.reset();
        for (p, lag, delay) in &s.partitions {
            let label = p.to_string();
            if let Some(l) = lag {
                self.lag.with_label_values(&[&label]).set(*l);
            }
            if let Some(d) = delay {
                self.watermark_delay.with_label_values(&[&label]).set(*d);
            }
        }
        self.ready.set(i64::from(s.ready));
        raise(&self.commits, s.commits);
    }

    /// Marks `version` as the rules running (the only series of `rules_version_info`).
    pub fn set_rules_version(&self, version: &str) {
        self.rules_version.reset();
        self.rules_version.with_label_values(&[version]).set(1);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_cumulative_totals_and_names_follow_conventions() {
        let s = Settings::defaults();
        let m = Metrics::new(&s);
        let mut snap = Snapshot {
            stats: Stats {
                transitions: vec![0; (s.tiers.len() + 1) * s.tiers.len()],
                ..Default::default()
            },
            tiers: vec![0; s.tiers.len()],
            ..Default::default()
        };
        snap.stats.consumed[EventKind::Order.index()] = 5;
        snap.stats.transitions[s.tiers.len() * s.tiers.len()] = 2; // none -> first tier
        m.update(&s, &snap);
        snap.stats.consumed[EventKind::Order.index()] = 7;
        snap.stats
            .quality
            .rejected(Some(EventKind::Order), RejectReason::UnknownCurrency);
        snap.stats.quality.rejected(None, RejectReason::InvalidJson);
        m.update(&s, &snap);
        let text = m.encode();
        for line in [
            "churnwatch_input_rejected_total{reason=\"unknown_currency\",type=\"order\"} 1",
            "churnwatch_input_rejected_total{reason=\"invalid_json\",type=\"unknown\"} 1",
            "churnwatch_input_events_total{type=\"unknown\"} 1",
            "churnwatch_input_late_total{type=\"visit\"} 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(
            text.contains("churnwatch_events_consumed_total{type=\"order\"} 7"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "churnwatch_tier_transitions_total{{from=\"none\",to=\"{}\"}} 2",
                s.tiers[0].name
            )),
            "{text}"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE churnwatch_")) {
            let mut it = line.split_whitespace().skip(2);
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                _ => assert!(!name.ends_with("_total"), "{name}"),
            }
        }
    }
}
