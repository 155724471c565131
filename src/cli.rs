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
        /// Write every customer's final profile here, sorted by customer id.
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Write rejected input here as dead letters.
        #[arg(long)]
        dead_letters: Option<PathBuf>,
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
