//! Sample and alert history in ClickHouse: what the Grafana dashboards,
//! the team API and the web page read.
//!
//! Writers (the evaluator's history feed) and readers (the API) share this
//! crate's row types and configuration, so the API depends on history
//! without depending on the evaluator.
//!
//! # Layout
//! - [`config`]: endpoint, TLS, compression, batching and retention
//!   settings.
//! - [`transport`]: the HTTP(S) client (rustls, custom CA) under every
//!   ClickHouse client.
//! - [`schema`]: versioned, idempotent DDL applied by `lagwatch migrate`.
//! - [`rows`]: the row types, one per table.
//! - [`writer`]: the batched, retrying writer.
//! - [`marks`]: what is already stored, so records read again are not
//!   stored twice.
//! - [`reader`]: the queries behind the API's alert answers.
//! - [`status_reader`], [`status_replay`]: recent samples of a monitor's
//!   partitions and the one replay of the `lag_status` window over them
//!   (the status word of `lagwatch status`, the API and the page).
//! - `stage` (feature `stage`): the history stage's consumer group, which
//!   feeds the writer from the metrics and alert-event topics.
//! - [`monitor_groups`]: mirrors team ↔ group mapping for dashboards.
//! - [`metrics`]: the writer's Prometheus metrics.

pub mod config;
pub mod marks;
pub mod metrics;
pub mod monitor_groups;
pub mod reader;
pub mod rows;
pub mod schema;
#[cfg(feature = "stage")]
pub mod stage;
pub mod status_reader;
pub mod status_replay;
pub mod transport;
pub mod writer;

pub use config::{ClickHouseCompression, ClickHouseConfig};
pub use metrics::HistoryMetrics;
pub use schema::migrate;
pub use writer::{Checkpoint, DeadLetters, HistoryRecord, HistoryWriter};

/// Errors talking to ClickHouse. Display and Debug show the URL with its
/// credentials hidden.
#[derive(thiserror::Error)]
pub enum HistoryError {
    #[error("ClickHouse at {} failed: {source}", lagwatch_model::redact_url(.url))]
    ClickHouse {
        url: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse at {} did not answer within {after:?}", lagwatch_model::redact_url(.url))]
    Timeout {
        url: String,
        after: std::time::Duration,
    },
}

impl std::fmt::Debug for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HistoryError::ClickHouse { url, source } => f
                .debug_struct("ClickHouse")
                .field("url", &lagwatch_model::redact_url(url))
                .field("source", source)
                .finish(),
            HistoryError::Timeout { url, after } => f
                .debug_struct("Timeout")
                .field("url", &lagwatch_model::redact_url(url))
                .field("after", after)
                .finish(),
        }
    }
}

/// ClickHouse error codes that say "later", not "never": load, limits,
/// timeouts, replicas catching up.
const TRANSIENT_CODES: &[&str] = &[
    "Code: 159.", // TIMEOUT_EXCEEDED
    "Code: 202.", // TOO_MANY_SIMULTANEOUS_QUERIES
    "Code: 209.", // SOCKET_TIMEOUT
    "Code: 210.", // NETWORK_ERROR
    "Code: 241.", // MEMORY_LIMIT_EXCEEDED
    "Code: 242.", // TABLE_IS_READ_ONLY
    "Code: 252.", // TOO_MANY_PARTS
    "Code: 319.", // UNKNOWN_STATUS_OF_INSERT
    "Code: 425.", // SYSTEM_ERROR
];

impl HistoryError {
    /// Whether ClickHouse answered and refused the data for a reason that
    /// retrying will not change (schema, types, a failing view), as opposed
    /// to being down, slow or overloaded.
    pub fn is_refusal(&self) -> bool {
        use clickhouse::error::Error;
        match self {
            HistoryError::ClickHouse { source, .. } => match source {
                Error::BadResponse(text) => {
                    !TRANSIENT_CODES.iter().any(|code| text.contains(code)) && !text.contains("503")
                }
                Error::SchemaMismatch(_)
                | Error::NotEnoughData
                | Error::DataFormat(_)
                | Error::Custom(_) => true,
                _ => false,
            },
            HistoryError::Timeout { .. } => false,
        }
    }
}

/// A ClickHouse client for `config`: http or https (see [`transport`]),
/// compressed as `clickhouse.compression` says.
pub fn client(config: &ClickHouseConfig) -> clickhouse::Client {
    transport::clickhouse_client(config)
        .with_url(&config.url)
        .with_user(&config.user)
        .with_password(config.password.expose())
        .with_compression(config.compression.into())
        .with_validation(false)
}

#[cfg(test)]
mod tests {
    use super::HistoryError;

    #[test]
    fn errors_hide_credentials_in_the_url() {
        let error = HistoryError::Timeout {
            url: "https://lagwatch:p@ss@ch.internal:8443".into(),
            after: std::time::Duration::from_secs(10),
        };
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(shown.contains("lagwatch:***@ch.internal:8443"), "{shown}");
            assert!(!shown.contains("p@ss") && !shown.contains("ss@"), "{shown}");
        }
    }
}
