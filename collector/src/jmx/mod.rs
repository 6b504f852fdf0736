//! Broker health over JMX: Jolokia agents or Prometheus JMX exporters.
//!
//! A [`JmxPoller`] reads every configured broker of one cluster once per
//! cycle, concurrently, with one HTTP request per broker (a Jolokia bulk
//! `read` or one exporter page), and turns each read into a
//! [`BrokerSample`](lagwatch_model::BrokerSample) for the metrics topic.
//! Counters become per-second rates between cycles; a broker that cannot
//! be read yields a sample that says why, never a panic or a gap in the
//! other brokers' samples.
//!
//! ```no_run
//! # async fn demo(config: lagwatch_collector::jmx::JmxConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let mut poller = lagwatch_collector::jmx::JmxPoller::new("prod", config)?;
//! let samples = poller.sample_cluster(1_700_000_000_000).await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: endpoints, interval, timeout, per-metric overrides.
//! - [`spec`]: default MBeans and exporter series for Kafka 4.x.
//! - [`jolokia`]: the bulk read request and its answer.
//! - [`prom_text`]: the Prometheus text format parser and mapping.
//! - [`rates`]: per-second rates from counters.
//! - [`scrape`]: one raw read, before rates.
//! - [`poller`]: HTTP, concurrency, samples, the interval loop.
//! - `tls`: trust for https endpoints (a CA file or the platform's roots).

pub mod config;
pub mod jolokia;
pub mod poller;
pub mod prom_text;
pub mod rates;
pub mod scrape;
pub mod spec;
mod tls;

pub use config::{
    BrokerEndpoint, EndpointKind, IdleCorrection, JmxConfig, JolokiaOverride, PrometheusOverride,
};
pub use poller::JmxPoller;
pub use spec::ValueKind;

/// Why JMX collection could not be set up. Reading brokers never fails:
/// errors of a read end up in the sample.
#[derive(Debug, thiserror::Error)]
pub enum JmxError {
    #[error("invalid JMX setting `{key}`: {reason}")]
    InvalidConfig { key: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}
