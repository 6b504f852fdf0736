//! Kafka plumbing every stage shares: the cluster connection profile
//! ([`ClusterConfig`], secrets, TLS/SASL start checks, rdkafka client
//! settings), topic creation ([`ensure_topic`]) and a consumer's backlog
//! ([`consumer_backlog`]).
//!
//! The collector, the evaluator and the binary open Kafka clients; the API
//! and the store do not, so they do not depend on this crate.
//!
//! # Layout
//! - `profile`: the connection profile and its start checks.
//! - `topic`: creating the topics lagwatch owns.
//! - `backlog`: how far a consumer is behind, for health and metrics.

mod backlog;
mod profile;
mod topic;

pub use backlog::{consumer_backlog, Progress};
pub use profile::{ClusterConfig, SecretRef};
pub use topic::{ensure_topic, TopicSpec, KEEP_A_WEEK};

/// Errors of this crate's calls.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot create topic {topic}: {message}")]
    CreateTopic { topic: String, message: String },
}
