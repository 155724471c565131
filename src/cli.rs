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
    /// Write synthetic events (seeded, reproducible) to a file.
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
        #[arg(long)]
        out: PathBuf,
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
