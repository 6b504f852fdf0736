//! The lagwatch evaluator: turns the stream of samples into alerts (and
//! feeds the history writer of the `lagwatch-history` crate).
//!
//! Instances form one Kafka consumer group on the metrics topic; because
//! samples are keyed by `cluster/group`, each group's samples reach exactly
//! one instance, which owns that group's alert state.
//!
//! # Layout
//! - [`config`]: evaluator settings and the rules files.
//! - [`engine`]: matches samples to monitors and runs the rules (pure, no I/O).
//! - [`status_rule`]: the `lag_status` rule's per-partition windows and
//!   alert state (used by the engine).
//! - [`consumer`]: the metrics-topic consumer loop.
//! - [`event_log`]: every notification record onto the alert-event topic,
//!   which the history stage stores.
//! - [`metrics`]: Prometheus metrics.
//! - [`monitor_index`]: which monitors a sample can concern (hash lookup).
//! - [`broker_rules`]: rules over broker JMX samples (pure).
//! - [`notifier`]: silences, inhibition, repeats and delivery records
//!   between the engine and the sinks.
//! - [`alert_state`]: the compacted alert-state topic that makes restarts
//!   and rebalances safe.

pub mod alert_state;
pub mod broker_rules;
pub mod config;
pub mod consumer;
pub mod engine;
pub mod event_log;
pub mod metrics;
pub mod monitor_index;
pub mod notifier;
pub mod routing;
pub mod status_rule;
pub mod tail_progress;

pub use config::{EvaluatorConfig, RulesLoadError};
pub use consumer::{run_consumer, ConsumerError, Outputs};
pub use engine::Engine;
pub use metrics::EvaluatorMetrics;
