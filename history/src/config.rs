//! Where history goes: the ClickHouse endpoint, batching and retention.

use std::path::PathBuf;
use std::time::Duration;

use lagwatch_model::Secret;
use serde::{Deserialize, Serialize};

/// Where sample and alert history is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint, e.g. `http://127.0.0.1:8123` or
    /// `https://clickhouse.internal:8443`. Credentials belong in `user` and
    /// `password`; any written into the URL are hidden in errors and logs.
    pub url: String,
    /// PEM file with the CA certificate(s) that sign ClickHouse's https
    /// certificate; when set, only these are trusted (default: the
    /// platform's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Compression of inserts and answers: `lz4` (ClickHouse's native LZ4
    /// blocks for inserts, LZ4 frames for answers) or `none`.
    #[serde(default)]
    pub compression: ClickHouseCompression,
    /// Database holding lagwatch's tables (created by `lagwatch migrate`).
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default)]
    pub password: Secret,
    /// Flush a batch once it holds this many rows.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Flush a batch once its rows take about this many bytes (RowBinary).
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Flush a non-empty batch at least this often.
    #[serde(with = "humantime_serde", default = "default_flush_interval")]
    pub flush_interval: Duration,
    /// Days raw samples (and broker metrics) are kept.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Days the 1-minute rollup is kept.
    #[serde(default = "default_rollup_1m_days")]
    pub rollup_1m_retention_days: u32,
    /// Days the 1-hour rollup is kept.
    #[serde(default = "default_rollup_1h_days")]
    pub rollup_1h_retention_days: u32,
    /// Days alert events are kept.
    #[serde(default = "default_alert_days")]
    pub alert_retention_days: u32,
    /// Longest one insert may take; a ClickHouse that accepts and never
    /// answers then counts as down instead of stalling the writer.
    #[serde(with = "humantime_serde", default = "default_insert_timeout")]
    pub insert_timeout: Duration,
    /// Longest one read (the API's status and alert answers) may take.
    #[serde(with = "humantime_serde", default = "default_query_timeout")]
    pub query_timeout: Duration,
    /// Consecutive refusals (ClickHouse answered with an error that is not
    /// about load or availability, e.g. a schema mismatch) after which a
    /// batch goes to the dead-letter topic instead of blocking history.
    #[serde(default = "default_rejections_before_dead_letter")]
    pub rejections_before_dead_letter: u32,
    /// Kafka consumer group of the history stage (its own: history may lag
    /// without delaying alerting).
    #[serde(default = "default_consumer_group")]
    pub consumer_group: String,
    /// Topic (on the metrics-topic cluster) for batches ClickHouse keeps
    /// refusing; empty = keep retrying them.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
}

/// How request and answer bodies travel to and from ClickHouse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClickHouseCompression {
    /// LZ4, what production ClickHouse clients use: fewer bytes on the
    /// wire for little CPU.
    #[default]
    Lz4,
    /// Plain bodies, for HTTP fronts that only speak uncompressed.
    None,
}

impl From<ClickHouseCompression> for clickhouse::Compression {
    fn from(compression: ClickHouseCompression) -> Self {
        match compression {
            ClickHouseCompression::Lz4 => clickhouse::Compression::Lz4,
            ClickHouseCompression::None => clickhouse::Compression::None,
        }
    }
}

fn default_consumer_group() -> String {
    "lagwatch-history".to_string()
}
fn default_dead_letter_topic() -> String {
    "lagwatch-history-dead-letters".to_string()
}

impl ClickHouseConfig {
    /// Defaults for everything but the endpoint.
    pub fn with_url(url: impl Into<String>) -> Self {
        ClickHouseConfig {
            url: url.into(),
            ca_file: None,
            compression: ClickHouseCompression::default(),
            database: default_database(),
            user: default_user(),
            password: Secret::default(),
            batch_rows: default_batch_rows(),
            batch_bytes: default_batch_bytes(),
            flush_interval: default_flush_interval(),
            retention_days: default_retention_days(),
            rollup_1m_retention_days: default_rollup_1m_days(),
            rollup_1h_retention_days: default_rollup_1h_days(),
            alert_retention_days: default_alert_days(),
            insert_timeout: default_insert_timeout(),
            query_timeout: default_query_timeout(),
            rejections_before_dead_letter: default_rejections_before_dead_letter(),
            consumer_group: default_consumer_group(),
            dead_letter_topic: default_dead_letter_topic(),
        }
    }
}

const fn default_insert_timeout() -> Duration {
    Duration::from_secs(30)
}
const fn default_query_timeout() -> Duration {
    Duration::from_secs(10)
}
const fn default_rejections_before_dead_letter() -> u32 {
    5
}

fn default_database() -> String {
    "lagwatch".to_string()
}
fn default_user() -> String {
    "default".to_string()
}
const fn default_batch_rows() -> usize {
    10_000
}
const fn default_batch_bytes() -> usize {
    8 * 1024 * 1024
}
const fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
const fn default_retention_days() -> u32 {
    30
}
const fn default_rollup_1m_days() -> u32 {
    90
}
const fn default_rollup_1h_days() -> u32 {
    730
}
const fn default_alert_days() -> u32 {
    730
}
