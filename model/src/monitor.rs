//! A monitor: one team's request to watch one consumer group on one cluster.

use serde::{Deserialize, Serialize};

/// A registered monitor, as stored in the monitor store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Monitor {
    pub id: i64,
    /// Owning team; used for routing and, later, for API access control.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub team: String,
    /// Name of a cluster defined in the lagwatch configuration.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub cluster: String,
    /// Consumer group id to watch, or a pattern when `group_match` is
    /// `regex`.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub consumer_group: String,
    /// How `consumer_group` is matched.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub group_match: GroupMatch,
    /// Topics to watch. With `topic_regex` also empty, every topic the group
    /// has offsets for.
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub topics: Vec<String>,
    /// Also watch topics matching this pattern (whole-name match).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, max_length = 1000))]
    pub topic_regex: Option<String>,
    /// Alert when any watched partition's offset lag exceeds this.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub lag_threshold: i64,
    /// How long the threshold must be exceeded before the alert fires.
    #[cfg_attr(feature = "openapi", schema(maximum = 604800))]
    pub for_secs: u64,
    /// Who gets the alert e-mails.
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub emails: Vec<String>,
    /// How the group's consumers read: decides which end offset lag is
    /// measured against.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub isolation: Isolation,
    /// How time lag is measured for this monitor's groups.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub time_lag: TimeLagMode,
    /// Further thresholds, repeat interval and webhook receivers; each
    /// unset value falls back to the rules file's default.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub alerting: AlertSettings,
}

/// A monitor's own alerting settings: overrides of the rules-file defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Alert when the summed lag of one topic's watched partitions exceeds
    /// this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub topic_lag_threshold: Option<i64>,
    /// Alert when the summed lag of all watched partitions exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub total_lag_threshold: Option<i64>,
    /// Alert when any watched partition is more than this many seconds
    /// behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2592000))]
    pub time_lag_threshold_secs: Option<u64>,
    /// Re-send a still-firing alert after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 2592000))]
    pub repeat_interval_secs: Option<u64>,
    /// Webhook URLs that receive this monitor's alerts as JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub webhooks: Vec<String>,
}

/// How time lag is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TimeLagMode {
    /// Interpolated from the history of end offsets (free, approximate).
    #[default]
    Estimate,
    /// Read from the timestamp of the record at the committed offset (one
    /// small fetch per partition and cycle; exact to the producer's clock).
    Exact,
}

impl TimeLagMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeLagMode::Estimate => "estimate",
            TimeLagMode::Exact => "exact",
        }
    }
}

impl std::str::FromStr for TimeLagMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "estimate" => Ok(TimeLagMode::Estimate),
            "exact" => Ok(TimeLagMode::Exact),
            other => Err(format!(
                "`{other}` is not a time-lag mode (estimate or exact)"
            )),
        }
    }
}

/// How a monitor names its consumer group(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupMatch {
    /// `consumer_group` is the group id.
    #[default]
    Exact,
    /// `consumer_group` is a regular expression matched against the whole
    /// group id; each matching group is watched (and alerted) separately.
    Regex,
}

impl GroupMatch {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMatch::Exact => "exact",
            GroupMatch::Regex => "regex",
        }
    }
}

impl std::str::FromStr for GroupMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "exact" => Ok(GroupMatch::Exact),
            "regex" => Ok(GroupMatch::Regex),
            other => Err(format!(
                "`{other}` is not a group match kind (exact or regex)"
            )),
        }
    }
}

/// Isolation level of the monitored consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A monitor about to be registered (no id yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMonitor {
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    #[serde(default)]
    pub group_match: GroupMatch,
    pub topics: Vec<String>,
    #[serde(default)]
    pub topic_regex: Option<String>,
    pub lag_threshold: i64,
    pub for_secs: u64,
    pub emails: Vec<String>,
    #[serde(default)]
    pub isolation: Isolation,
    #[serde(default)]
    pub time_lag: TimeLagMode,
    #[serde(default)]
    pub alerting: AlertSettings,
}
