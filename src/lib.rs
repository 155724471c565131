//! churnwatch: real-time customer tiers and churn warnings from a stream of customer events.
//!
//! [`core`] is the pure engine; the other modules are thin adapters around it.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod core;
pub mod demo;
pub mod fit;
pub mod gen;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pretty;
pub mod produce;
pub mod replay;
pub mod rules_diff;
pub mod sys;
