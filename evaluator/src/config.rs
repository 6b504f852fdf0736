//! Evaluator settings.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Topic (on the metrics-topic cluster) every notification record is
    /// published to for the history stage; empty = alert events are not
    /// kept in history.
    #[serde(default = "default_events_topic")]
    pub events_topic: String,
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
    /// Longest wait between two delivery attempts of a notification whose
    /// destination keeps failing: it is retried at least this often until
    /// delivered, never given up.
    #[serde(with = "humantime_serde", default = "default_notification_retry_max")]
    pub notification_retry_max: Duration,
    /// Longest one delivery attempt may take before it counts as failed
    /// (a receiver that accepts and never answers).
    #[serde(
        with = "humantime_serde",
        default = "default_notification_attempt_timeout"
    )]
    pub notification_attempt_timeout: Duration,
    /// How long a watched subject must stay gone (topic deleted, group
    /// offsets gone, group no longer in the cluster) before its firing
    /// alerts resolve with the reason.
    #[serde(with = "humantime_serde", default = "default_vanished_after")]
    pub vanished_after: Duration,
}

const fn default_vanished_after() -> Duration {
    Duration::from_secs(120)
}

const fn default_notification_retry_max() -> Duration {
    Duration::from_secs(300)
}
const fn default_notification_attempt_timeout() -> Duration {
    Duration::from_secs(30)
}

impl EvaluatorConfig {
    /// How the outbox retries, from these settings.
    pub fn retry_policy(&self) -> lagwatch_sinks::RetryPolicy {
        lagwatch_sinks::RetryPolicy {
            initial_interval: Duration::from_millis(500).min(self.notification_retry_max),
            max_interval: self.notification_retry_max,
            attempt_timeout: self.notification_attempt_timeout,
        }
    }
}

fn default_events_topic() -> String {
    "lagwatch-alert-events".to_string()
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
            events_topic: default_events_topic(),
            notification_retry_max: default_notification_retry_max(),
            notification_attempt_timeout: default_notification_attempt_timeout(),
            vanished_after: default_vanished_after(),
        }
    }
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
