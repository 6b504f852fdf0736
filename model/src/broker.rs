//! Broker health read over JMX (Jolokia or a Prometheus JMX exporter).
//!
//! One [`BrokerSample`] per broker and collection cycle travels on the
//! metrics topic next to the group samples, in the same versioned JSON style
//! (`"v": 1`; readers ignore fields they do not know). Each
//! [`BrokerMetric`] becomes one row of the ClickHouse table
//! `broker_metrics`, whose `metric` column holds the names in [`metric`]
//! and whose `topic` column is empty for broker totals.

use serde::{Deserialize, Serialize};

/// The metric names used on the wire, in ClickHouse and by the dashboards.
///
/// Units: partition counts and controller count are plain numbers; the two
/// idle metrics are fractions in `0..=1` (not percent, despite Kafka's
/// names); the `...PerSec` metrics are per-second rates computed by the
/// collector from the counters between two cycles, so a broker's first
/// sample carries none of them.
pub mod metric {
    /// Partitions led by this broker whose ISR is smaller than the replica
    /// set.
    pub const UNDER_REPLICATED_PARTITIONS: &str = "UnderReplicatedPartitions";
    /// Partitions led by this broker whose ISR is below `min.insync.replicas`.
    pub const UNDER_MIN_ISR_PARTITION_COUNT: &str = "UnderMinIsrPartitionCount";
    /// Partitions without an active leader. Reported by the active
    /// controller only (KRaft: controller nodes), 0 elsewhere.
    pub const OFFLINE_PARTITIONS_COUNT: &str = "OfflinePartitionsCount";
    /// 1 on the active controller, 0 on other controllers; absent on
    /// broker-only KRaft nodes. Summed over a cluster it must be 1.
    pub const ACTIVE_CONTROLLER_COUNT: &str = "ActiveControllerCount";
    /// Fraction of time the request handler (I/O) threads are idle, 0..=1.
    pub const REQUEST_HANDLER_AVG_IDLE_PERCENT: &str = "RequestHandlerAvgIdlePercent";
    /// Fraction of time the network processor threads are idle, 0..=1.
    pub const NETWORK_PROCESSOR_AVG_IDLE_PERCENT: &str = "NetworkProcessorAvgIdlePercent";
    /// Bytes per second produced to this broker (total and per topic).
    pub const BYTES_IN_PER_SEC: &str = "BytesInPerSec";
    /// Bytes per second fetched from this broker (total and per topic).
    pub const BYTES_OUT_PER_SEC: &str = "BytesOutPerSec";
    /// Messages per second appended on this broker (total and per topic).
    pub const MESSAGES_IN_PER_SEC: &str = "MessagesInPerSec";
    /// ISR shrinks per second on this broker.
    pub const ISR_SHRINKS_PER_SEC: &str = "IsrShrinksPerSec";
    /// 99th percentile of the total time of a request type in milliseconds,
    /// with the request name (`Produce`, `FetchConsumer`, ...) in the topic
    /// field. Kafka computes it over a recent, exponentially decaying
    /// sample of requests, not since start.
    pub const REQUEST_TOTAL_TIME_MS: &str = "RequestTotalTimeMs";

    /// Every metric name, in the order samples list them.
    pub const ALL: [&str; 11] = [
        UNDER_REPLICATED_PARTITIONS,
        UNDER_MIN_ISR_PARTITION_COUNT,
        OFFLINE_PARTITIONS_COUNT,
        ACTIVE_CONTROLLER_COUNT,
        REQUEST_HANDLER_AVG_IDLE_PERCENT,
        NETWORK_PROCESSOR_AVG_IDLE_PERCENT,
        BYTES_IN_PER_SEC,
        BYTES_OUT_PER_SEC,
        MESSAGES_IN_PER_SEC,
        ISR_SHRINKS_PER_SEC,
        REQUEST_TOTAL_TIME_MS,
    ];

    /// The wire name equal to `name`, if it is one of [`ALL`].
    pub fn known(name: &str) -> Option<&'static str> {
        ALL.iter().copied().find(|known| *known == name)
    }
}

/// Health metrics of one broker at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerSample {
    /// Wire-format version, [`crate::WIRE_VERSION`] when written by this
    /// build.
    pub v: u32,
    /// Cluster name as configured in lagwatch (not the Kafka cluster id).
    pub cluster: String,
    /// Broker (KRaft node) id.
    pub broker: i32,
    /// Sample time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Set when the sample is incomplete or empty: why (endpoint
    /// unreachable, some MBeans could not be read, ...). The metrics that
    /// could be read are still listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The metrics read in this cycle; a metric that could not be read (or
    /// a rate without a previous cycle) is absent, never a made-up 0.
    pub metrics: Vec<BrokerMetric>,
}

/// One value of one broker metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerMetric {
    /// One of the names in [`metric`].
    pub name: String,
    /// Topic for per-topic series, request name for
    /// [`metric::REQUEST_TOTAL_TIME_MS`]; `None` for broker totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The value, always finite (JSON has no NaN).
    pub value: f64,
}

impl BrokerSample {
    /// An empty sample of `broker` at `ts_ms`.
    pub fn new(cluster: impl Into<String>, broker: i32, ts_ms: i64) -> Self {
        BrokerSample {
            v: crate::WIRE_VERSION,
            cluster: cluster.into(),
            broker,
            ts_ms,
            error: None,
            metrics: Vec::new(),
        }
    }

    /// Message key on the metrics topic (`cluster/brokers`): every broker
    /// of a cluster lands on one partition, so one evaluator sees them all
    /// in order and can evaluate cluster-wide broker rules (the active
    /// controller count summed over brokers must be 1).
    pub fn key(&self) -> String {
        format!("{}/brokers", self.cluster)
    }

    /// The value of `name` for `topic` (`None`: the broker total).
    pub fn get(&self, name: &str, topic: Option<&str>) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name && m.topic.as_deref() == topic)
            .map(|m| m.value)
    }

    /// Serialises the sample to its JSON wire form.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, integers and finite floats always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BrokerSample {
        let mut sample = BrokerSample::new("local", 1, 1_700_000_000_000);
        sample.metrics = vec![
            BrokerMetric {
                name: metric::UNDER_REPLICATED_PARTITIONS.into(),
                topic: None,
                value: 0.0,
            },
            BrokerMetric {
                name: metric::BYTES_IN_PER_SEC.into(),
                topic: Some("orders".into()),
                value: 1234.5,
            },
            BrokerMetric {
                name: metric::REQUEST_TOTAL_TIME_MS.into(),
                topic: Some("Produce".into()),
                value: 2.0,
            },
        ];
        sample
    }

    #[test]
    fn round_trips_through_json() {
        let sample = sample();
        let decoded: BrokerSample = serde_json::from_slice(&sample.to_json()).expect("decodes");
        assert_eq!(decoded, sample);
        assert_eq!(sample.key(), "local/brokers");
        assert_eq!(
            decoded.get(metric::BYTES_IN_PER_SEC, Some("orders")),
            Some(1234.5)
        );
        assert_eq!(decoded.get(metric::BYTES_IN_PER_SEC, None), None);
    }

    #[test]
    fn wire_form_is_stable() {
        let mut sample = sample();
        sample.error = Some("1 of 11 metrics failed".into());
        let json: serde_json::Value = serde_json::from_slice(&sample.to_json()).expect("json");
        assert_eq!(json["v"], 1);
        assert_eq!(json["broker"], 1);
        assert_eq!(json["ts_ms"], 1_700_000_000_000_i64);
        assert_eq!(json["error"], "1 of 11 metrics failed");
        assert_eq!(json["metrics"][0]["name"], "UnderReplicatedPartitions");
        // Broker totals carry no topic at all.
        assert!(json["metrics"][0].get("topic").is_none());
        assert_eq!(json["metrics"][1]["topic"], "orders");
        assert_eq!(json["metrics"][2]["value"], 2.0);
    }

    #[test]
    fn error_only_samples_round_trip() {
        let mut sample = BrokerSample::new("prod", 7, 5);
        sample.error = Some("connection refused".into());
        let json = sample.to_json();
        assert!(!String::from_utf8_lossy(&json).contains("topic"));
        let decoded: BrokerSample = serde_json::from_slice(&json).expect("decodes");
        assert_eq!(decoded, sample);
        assert!(decoded.metrics.is_empty());
    }

    #[test]
    fn ignores_unknown_fields_from_newer_producers() {
        let payload = br#"{"v":1,"cluster":"c","broker":3,"ts_ms":9,"extra":{"a":1},
            "metrics":[{"name":"BytesOutPerSec","value":1.5,"unit":"B/s"}]}"#;
        let decoded: BrokerSample = serde_json::from_slice(payload).expect("decodes");
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.get(metric::BYTES_OUT_PER_SEC, None), Some(1.5));
    }

    #[test]
    fn metric_names_are_the_dashboard_names() {
        assert_eq!(metric::ALL.len(), 11);
        assert_eq!(
            metric::known("RequestHandlerAvgIdlePercent"),
            Some(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT)
        );
        assert_eq!(metric::known("BytesIn"), None);
        let mut names = metric::ALL.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 11, "names are unique");
    }
}
