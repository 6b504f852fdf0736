//! Sample and alert history in ClickHouse: what the Grafana dashboards,
//! the team API and the web page read.
//!
//! Writers (the evaluator's history feed) and readers (the API) share this
//! crate's row types and configuration, so the API depends on history
//! without depending on the evaluator.
//!
//! # Layout
//! - [`config`]: endpoint, batching and retention settings.
//! - [`schema`]: versioned, idempotent DDL applied by `lagwatch migrate`.
//! - [`rows`]: the row types, one per table.
//! - [`writer`]: the batched, retrying writer.
//! - [`reader`]: the queries behind the API's status and alert answers.
//! - [`monitor_groups`]: mirrors team ↔ group mapping for dashboards.
//! - [`metrics`]: the writer's Prometheus metrics.

pub mod config;
pub mod metrics;
pub mod monitor_groups;
pub mod reader;
pub mod rows;
pub mod schema;
pub mod writer;

pub use config::ClickHouseConfig;
pub use metrics::HistoryMetrics;
pub use schema::migrate;
pub use writer::{Checkpoint, HistoryRecord, HistoryWriter};

/// Errors talking to ClickHouse.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("ClickHouse at {url} failed: {source}")]
    ClickHouse {
        url: String,
        #[source]
        source: clickhouse::error::Error,
    },
}

/// A ClickHouse client for `config` (no compression, so any
/// ClickHouse-HTTP-compatible endpoint works).
pub fn client(config: &ClickHouseConfig) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&config.url)
        .with_user(&config.user)
        .with_password(config.password.expose())
        .with_compression(clickhouse::Compression::None)
        .with_validation(false)
}
