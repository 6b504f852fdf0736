//! Sample and alert history in ClickHouse.
//!
//! - [`schema`]: versioned, idempotent DDL applied by `lagwatch migrate`.
//! - [`rows`]: the row types, one per table.
//! - [`writer`]: the batched, retrying writer.
//! - [`monitor_groups`]: mirrors team ↔ group mapping for dashboards.

pub mod monitor_groups;
pub mod rows;
pub mod schema;
pub mod writer;

pub use schema::migrate;
pub use writer::{Checkpoint, HistoryRecord, HistoryWriter};

use crate::config::ClickHouseConfig;

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
