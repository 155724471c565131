//! Command-line interface (the command contract of DESIGN.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Real-time customer tiers and churn warnings from a stream of customer events.
#[derive(Debug, Parser)]
#[command(name = "churnwatch", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the core over a file of events: deterministic, no broker.
    Replay {
        /// Configuration file layered over the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Input events, one JSON object per line (`-` = stdin).
        #[arg(long)]
        input: PathBuf,
        /// Alerts (tier changes, warnings, clearances, erasures), one per line (`-` = stdout).
        #[arg(long)]
        output: PathBuf,
        /// Write every customer's profile as of the end of the replay (`--until`, else the
        /// final watermark) here, sorted by customer id: what the look-up would show.
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Write `--profiles` as last published instead: each as of its customer's last
        /// event or fired deadline, like the compacted profiles topic.
        #[arg(long, requires = "profiles")]
        profiles_as_published: bool,
        /// Write rejected input here as dead letters.
        #[arg(long)]
        dead_letters: Option<PathBuf>,
        /// Write the population report (per tier and overall; docs/RULES.md §5) here as JSON, as
        /// of the final watermark (or `--until`).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Advance time to this RFC 3339 instant at the end, so due deadlines fire
        /// (also the "now" of the future-timestamp check).
        #[arg(long)]
        until: Option<String>,
        /// Print alerts in a readable one-line form on stderr as they happen.
        #[arg(long)]
        print: bool,
        /// No progress or summary lines on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// The service: consume events from Kafka as a consumer group, keep per-customer
    /// state with exactly-once semantics, produce alerts and profiles, serve HTTP.
    Run {
        /// Configuration file layered over the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The embedded default: an in-process Kafka-protocol broker, generated events on a
    /// compressed clock, the service and its HTTP endpoints, alerts printed as they happen.
    Demo {
        /// Configuration file layered over the defaults (its `[kafka]` section is replaced
        /// by the embedded broker's).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Customers in the generated population.
        #[arg(long, default_value_t = 5000)]
        customers: u32,
        /// Events per second produced to the embedded broker (default: what keeps each
        /// customer at ~0.25 events per simulated day, ~90 a year, at this time
        /// compression: 6,250 with the other defaults).
        #[arg(long)]
        rate: Option<f64>,
        /// Simulated days per real second (time compression).
        #[arg(long, default_value_t = 5.0)]
        days_per_second: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<f64>,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Random seed of the generated population.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print every alert (medium warnings, clearances, every tier change), not only
        /// high warnings and changes into or out of the top tier.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Fit the BG/NBD and Gamma-Gamma parameters to an event history (maximum
    /// likelihood) and print them with a config snippet.
    Fit {
        /// Event history, one JSON object per line (`-` = stdin); orders are used.
        #[arg(long)]
        input: PathBuf,
        /// Last day of the calibration period (YYYY-MM-DD or RFC 3339); later events are
        /// ignored and customer ages are measured to this day.
        #[arg(long)]
        as_of: String,
        /// Time unit of the parameters.
        #[arg(long, value_parser = ["days", "weeks"], default_value = "weeks")]
        unit: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (its limits apply to reading the input).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rule changes: `rules diff` is the dry run of a candidate rule set.
    Rules {
        /// What to do.
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Validate a rule set and print it in words.
    CheckConfig {
        /// Configuration file (layered over the defaults); leave out to check the defaults.
        file: Option<PathBuf>,
    },
    /// Write synthetic events (seeded, reproducible) to a file or a Kafka topic.
    Gen {
        /// Number of customers.
        #[arg(long, default_value_t = 1000)]
        customers: u32,
        /// Number of valid events (duplicates and bad records come on top).
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (`-` = stdout).
        #[arg(long, required_unless_present = "topic", conflicts_with = "topic")]
        out: Option<PathBuf>,
        /// Kafka bootstrap servers (with --topic: produce instead of writing a file).
        #[arg(long, requires = "topic")]
        brokers: Option<String>,
        /// Kafka topic to produce to (keyed by customer id).
        #[arg(long, requires = "brokers")]
        topic: Option<String>,
        /// Events per second when producing (default: as fast as the broker takes them).
        #[arg(long)]
        rate: Option<f64>,
        /// Extra librdkafka setting KEY=VALUE (repeatable), e.g. security.protocol=SASL_SSL;
        /// write VALUE as env:NAME to read it from the environment (for secrets).
        #[arg(long = "client", value_name = "KEY=VALUE")]
        client: Vec<String>,
        /// First event time (RFC 3339).
        #[arg(long, default_value = "2024-01-01T00:00:00Z")]
        start: String,
        /// Days the events are spread over.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Fraction of events delivered twice.
        #[arg(long, default_value_t = 0.01)]
        duplicates: f64,
        /// Fraction of extra bad records.
        #[arg(long, default_value_t = 0.001)]
        bad: f64,
    },
}

/// `churnwatch rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// What the candidate rule set would change (tier and warning-level moves with sample
    /// ids, rules that start or stop matching), against a running instance (`--url`) or a
    /// replay of an event file (`--input`); nothing is emitted or applied.
    Diff {
        /// The candidate configuration file (layered over the defaults).
        #[arg(long)]
        config: PathBuf,
        /// A running instance's HTTP address, e.g. http://127.0.0.1:8080.
        #[arg(long, conflicts_with_all = ["input", "until", "current"], required_unless_present = "input")]
        url: Option<String>,
        /// The environment variable holding the API token (with --url).
        #[arg(long, requires = "url")]
        token_env: Option<String>,
        /// Replay this event file under the current rules, then compare.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Advance the replay's time to this RFC 3339 instant (or date) before comparing.
        #[arg(long)]
        until: Option<String>,
        /// The rules running now, for --input (default: the built-in defaults).
        #[arg(long)]
        current: Option<PathBuf>,
        /// Sample ids per move.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
    },
}
