//! Where history goes: the ClickHouse endpoint, batching and retention.

use std::time::Duration;

use lagwatch_model::Secret;
use serde::{Deserialize, Serialize};

/// Where sample and alert history is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
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
