//! The pure core: events, per-customer state, rules, scores, timers and the processor.
//!
//! Nothing in here reads a clock, touches the network or the file system, or knows about
//! Kafka or Prometheus: time arrives as values and outputs leave as values, so every
//! business rule is unit-, property- and benchmark-testable without a broker.

pub mod analytics;
pub mod bgnbd;
pub mod campaign;
pub mod care;
pub mod days;
pub mod event;
pub mod facts;
pub mod fit;
pub mod json;
pub mod money;
pub mod output;
pub mod processor;
pub mod quality;
pub mod redact;
pub mod report;
pub mod rules;
pub mod scores;
pub mod settings;
pub mod sketch;
pub mod snapshot;
pub mod store;
pub mod subject;
pub mod time;
pub mod timers;

pub use event::{EventKind, RejectReason};
pub use output::{Output, OutputKind};
pub use processor::{Ctx, Outcome, Processor, Source, Stats};
pub use settings::{CoreConfig, Settings};
