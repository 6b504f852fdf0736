//! Collector and metrics-topic settings.

use std::time::Duration;

use lagwatch_kafka::ClusterConfig;
use serde::{Deserialize, Serialize};

use crate::jmx::JmxConfig;
use crate::kafka::CommittedOffsetsFrom;

/// One `[clusters.<name>]` section: the cluster's connection profile and
/// what the collector samples there. The profile is shared with the other
/// stages; the sampling settings are the collector's own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampledCluster {
    /// Brokers, security settings and secrets.
    #[serde(flatten)]
    pub connection: ClusterConfig,
    /// Broker JMX endpoints (Jolokia or Prometheus JMX exporter); no broker
    /// metrics when absent.
    #[serde(default)]
    pub jmx: Option<JmxConfig>,
    /// Where committed offsets come from (see [`CommittedOffsetsFrom`]).
    #[serde(default)]
    pub committed_offsets: CommittedOffsetsFrom,
}

/// How the collector samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Time between two sampling cycles of a cluster.
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// Timeout of each Kafka admin request.
    #[serde(with = "humantime_serde", default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// How often the monitor store is checked for changes.
    #[serde(with = "humantime_serde", default = "default_monitor_refresh")]
    pub monitor_refresh: Duration,
    /// Spread groups over several collector instances; absent = this
    /// instance samples every monitored group.
    #[serde(default)]
    pub sharding: Option<crate::sharding::ShardingConfig>,
    /// Record timestamps read per cluster and cycle for time lags older
    /// than the remembered history (0: report lower bounds there).
    #[serde(default = "default_time_lag_probes")]
    pub time_lag_probes: usize,
}

const fn default_time_lag_probes() -> usize {
    crate::poller::DEFAULT_TIME_LAG_PROBES
}

const fn default_interval() -> Duration {
    Duration::from_secs(10)
}
const fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
const fn default_monitor_refresh() -> Duration {
    Duration::from_secs(10)
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            interval: default_interval(),
            request_timeout: default_request_timeout(),
            monitor_refresh: default_monitor_refresh(),
            sharding: None,
            time_lag_probes: default_time_lag_probes(),
        }
    }
}

/// Where samples are published and read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsTopicConfig {
    /// Name of the configured cluster that hosts the metrics topic.
    pub cluster: String,
    /// Topic name.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Partitions when lagwatch creates the topic; bounds evaluator
    /// scale-out.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor when lagwatch creates the topic.
    #[serde(default = "default_replication")]
    pub replication: i32,
}

fn default_topic() -> String {
    "lagwatch-samples".to_string()
}
const fn default_partitions() -> i32 {
    6
}
const fn default_replication() -> i32 {
    1
}
