//! The lagwatch collector: samples consumer-group offsets and publishes them.
//!
//! For every configured cluster one [`poller::ClusterPoller`] wakes up every
//! `interval`, merges the monitors of that cluster into one target per
//! group, samples all of them through one shared admin client in a fixed
//! number of batched calls, and publishes one versioned JSON message per
//! group to the metrics topic.
//!
//! # Layout
//! - [`source`]: the `OffsetSource` trait the sampler reads a cluster through.
//! - [`kafka`]: its implementation over the native wire client.
//! - [`sampler`]: one round of calls → one sample per group.
//! - [`poller`]: the interval loop per cluster.
//! - [`time_lag`]: time-lag estimates from end-offset history.
//! - [`publisher`]: the metrics-topic producer.
//! - [`sharding`]: spreads groups over collector instances.
//! - [`metrics`]: Prometheus metrics.
//! - [`exposition`]: lag series on `/metrics`, kafka_exporter-compatible.

pub mod config;
pub mod exposition;
pub mod jmx;
pub mod kafka;
pub mod metrics;
pub mod poller;
pub mod publisher;
pub mod sampler;
pub mod sharding;
pub mod source;
pub mod time_lag;

pub use config::SampledCluster;
pub use config::{CollectorConfig, MetricsTopicConfig};
pub use kafka::{CommittedOffsetsFrom, KafkaOffsetSource};
pub use metrics::CollectorMetrics;
pub use poller::ClusterPoller;
pub use publisher::{PublishError, Publisher};
