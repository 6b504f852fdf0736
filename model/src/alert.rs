//! Alert notifications: what the evaluator hands to sinks and history.

use serde::{Deserialize, Serialize};

/// Lifecycle state carried by a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// A partition over the threshold, listed in the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaggingPartition {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// One alert transition (fired or resolved) for one monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable identity of the alert: rule + monitor + cluster + group.
    pub fingerprint: String,
    pub rule: String,
    pub state: AlertState,
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    /// Largest partition lag at the time of the transition.
    pub max_lag: i64,
    /// Sum of the watched partitions' lag.
    pub total_lag: i64,
    /// The monitor's lag threshold (`lag_threshold` rule), or the lag
    /// tolerated as caught up (`lag_status` rule).
    pub threshold: i64,
    /// Time of the sample that caused the transition, ms since the epoch.
    pub ts_ms: i64,
    /// Partitions above the threshold (`lag_threshold`) or at the group's
    /// worst status (`lag_status`); empty on resolve.
    pub partitions: Vec<LaggingPartition>,
    /// Recipients of the e-mail notification.
    pub emails: Vec<String>,
    /// Group status for window-status alerts (`lag_status` rule), lower-case
    /// as in `lagwatch_rules::Status` (`stall`, `stop`, `rewind` when
    /// firing; `ok` or `warn` when resolved). `None` for threshold alerts,
    /// and then left out of the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl AlertEvent {
    /// A one-line human summary, used as the e-mail subject.
    pub fn summary(&self) -> String {
        if let Some(status) = &self.status {
            let status = status.to_uppercase();
            return match self.state {
                AlertState::Firing => format!(
                    "[FIRING] group {} on {} is {} ({} partitions)",
                    self.consumer_group,
                    self.cluster,
                    status,
                    self.partitions.len()
                ),
                AlertState::Resolved => format!(
                    "[RESOLVED] group {} on {} is back to {}",
                    self.consumer_group, self.cluster, status
                ),
            };
        }
        match self.state {
            AlertState::Firing => format!(
                "[FIRING] lag of group {} on {} is {} (threshold {})",
                self.consumer_group, self.cluster, self.max_lag, self.threshold
            ),
            AlertState::Resolved => format!(
                "[RESOLVED] lag of group {} on {} is back to {} (threshold {})",
                self.consumer_group, self.cluster, self.max_lag, self.threshold
            ),
        }
    }
}
