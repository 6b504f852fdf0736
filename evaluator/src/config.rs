//! Evaluator and ClickHouse settings.

use std::path::PathBuf;
use std::time::Duration;

use lagwatch_model::Secret;
use serde::{Deserialize, Serialize};

/// How the evaluator consumes the metrics topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorConfig {
    /// Kafka consumer group shared by all evaluator instances.
    #[serde(default = "default_consumer_group")]
    pub consumer_group: String,
    /// Rules files read after the compiled-in `rules/default.yaml`; each
    /// replaces the sections it sets (see `rules/default.yaml`).
    #[serde(default)]
    pub rules_files: Vec<PathBuf>,
    /// Compacted topic (on the metrics-topic cluster) holding alert state
    /// across restarts; empty = keep alert state in memory only.
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// How often silences are re-read from the monitor store.
    #[serde(with = "humantime_serde", default = "default_silence_refresh")]
    pub silence_refresh: Duration,
    /// After a restart or rebalance, how long the previous owner of an
    /// alert gets to confirm a notification before it is sent again.
    #[serde(with = "humantime_serde", default = "default_redelivery_grace")]
    pub redelivery_grace: Duration,
    /// After a rebalance, how much of the recent past a new owner replays
    /// into its `lag_status` windows (without judging it); 0 = none.
    #[serde(with = "humantime_serde", default = "default_warm_up")]
    pub warm_up: Duration,
    /// How often firing alerts are checked for a due reminder.
    #[serde(with = "humantime_serde", default = "default_repeat_check")]
    pub repeat_check: Duration,
    /// Team recorded on broker alerts (silences match it).
    #[serde(default = "default_broker_team")]
    pub broker_alert_team: String,
    /// Mail recipients of broker alerts.
    #[serde(default)]
    pub broker_alert_emails: Vec<String>,
}

fn default_state_topic() -> String {
    "lagwatch-alert-state".to_string()
}
const fn default_silence_refresh() -> Duration {
    Duration::from_secs(10)
}
const fn default_redelivery_grace() -> Duration {
    Duration::from_secs(30)
}
const fn default_warm_up() -> Duration {
    Duration::from_secs(10 * 60)
}
const fn default_repeat_check() -> Duration {
    Duration::from_secs(5)
}
fn default_broker_team() -> String {
    "platform".to_string()
}

fn default_consumer_group() -> String {
    "lagwatch-evaluator".to_string()
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            consumer_group: default_consumer_group(),
            rules_files: Vec::new(),
            state_topic: default_state_topic(),
            silence_refresh: default_silence_refresh(),
            redelivery_grace: default_redelivery_grace(),
            warm_up: default_warm_up(),
            repeat_check: default_repeat_check(),
            broker_alert_team: default_broker_team(),
            broker_alert_emails: Vec::new(),
        }
    }
}

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

impl EvaluatorConfig {
    /// Reads and checks the configured rules files on top of the defaults.
    pub fn load_rules(&self) -> Result<lagwatch_rules::RuleSet, RulesLoadError> {
        let mut files = Vec::with_capacity(self.rules_files.len());
        for path in &self.rules_files {
            let text = std::fs::read_to_string(path).map_err(|source| RulesLoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            files.push((path.display().to_string(), text));
        }
        Ok(lagwatch_rules::RuleSet::load(&files)?)
    }
}

/// Why the rules files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    #[error("cannot read rules file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid rules file {0}")]
    Invalid(#[from] lagwatch_rules::RulesError),
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
