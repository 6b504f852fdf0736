//! A monitor: one team's request to watch one consumer group on one cluster.

use serde::{Deserialize, Serialize};

/// A registered monitor, as stored in the monitor store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub id: i64,
    /// Owning team; used for routing and, later, for API access control.
    pub team: String,
    /// Name of a cluster defined in the lagwatch configuration.
    pub cluster: String,
    /// Consumer group id to watch.
    pub consumer_group: String,
    /// Topics to watch; empty means every topic the group has offsets for.
    pub topics: Vec<String>,
    /// Alert when any watched partition's offset lag exceeds this.
    pub lag_threshold: i64,
    /// How long the threshold must be exceeded before the alert fires.
    pub for_secs: u64,
    /// Who gets the alert e-mails.
    pub emails: Vec<String>,
    /// How the group's consumers read: decides which end offset lag is
    /// measured against.
    #[serde(default)]
    pub isolation: Isolation,
}

/// Isolation level of the monitored consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Lag against the high watermark (Kafka's default consumer setting).
    #[default]
    ReadUncommitted,
    /// Lag against the last stable offset: a read_committed consumer cannot
    /// read past an open transaction, so that part is not its lag.
    ReadCommitted,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "read_uncommitted",
            Isolation::ReadCommitted => "read_committed",
        }
    }
}

impl std::str::FromStr for Isolation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "read_uncommitted" => Ok(Isolation::ReadUncommitted),
            "read_committed" => Ok(Isolation::ReadCommitted),
            other => Err(format!(
                "`{other}` is not an isolation level (read_uncommitted or read_committed)"
            )),
        }
    }
}

impl Monitor {
    /// Whether this monitor covers `topic`.
    pub fn watches_topic(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }
}

/// A monitor about to be registered (no id yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMonitor {
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    pub topics: Vec<String>,
    pub lag_threshold: i64,
    pub for_secs: u64,
    pub emails: Vec<String>,
    #[serde(default)]
    pub isolation: Isolation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_topic_list_watches_everything() {
        let mut monitor = Monitor {
            id: 1,
            team: "t".into(),
            cluster: "c".into(),
            consumer_group: "g".into(),
            topics: vec![],
            lag_threshold: 1,
            for_secs: 0,
            emails: vec![],
            isolation: Isolation::ReadUncommitted,
        };
        assert!(monitor.watches_topic("anything"));
        monitor.topics = vec!["orders".into()];
        assert!(monitor.watches_topic("orders"));
        assert!(!monitor.watches_topic("payments"));
    }
}
