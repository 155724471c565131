//! The Kafka adapter: configuration, the changelog format and restore, the service loop
//! (consumer group, commit protocol, rebalance hand-over) and warm standbys.

pub mod changelog;
pub mod config;
pub mod members;
pub mod partitioner;
pub mod runtime;
pub mod standby;

pub use config::{KafkaConfig, KafkaSettings, TopicsConfig};
pub use runtime::{
    wall_clock, Clock, OutputHook, Route, RunError, RunOptions, RunSummary, Service, ServiceHandle,
    Status, Submitter, Written,
};
pub use runtime::{ReloadReport, RulesError, RulesSource};
