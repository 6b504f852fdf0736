//! Where each broker metric is read from: the defaults for Kafka 4.x and
//! their merge with the configured overrides.
//!
//! Jolokia defaults are the broker's own MBeans (checked against Kafka
//! 4.1.2 in KRaft combined mode). Prometheus defaults are the series names
//! that the Prometheus JMX exporter's example Kafka rules
//! (`kafka-2_0_0.yml`, `kafka-kraft-3_0_0.yml`, `lowercaseOutputName: true`)
//! produce from those MBeans, for exporter 0.x and 1.x alike (1.x appends
//! `_total` to every counter, so the idle meter's `_count` becomes
//! `_count_total`). Checked against the real exporter 1.0.1 on the test
//! broker (`tests/tests/jmx.rs`), whose rules name series the same way.

use std::collections::BTreeMap;

use lagwatch_model::broker::metric;
use serde::{Deserialize, Serialize};

use super::config::{BrokerEndpoint, JmxConfig};

/// How a read value turns into the published value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Published as read (times `scale`).
    Gauge,
    /// A monotonically increasing count: published as its per-second rate
    /// between two cycles (times `scale`).
    Counter,
}

/// How one metric is read from a Jolokia agent.
#[derive(Debug, Clone, PartialEq)]
pub struct JolokiaSpec {
    pub metric: &'static str,
    /// MBean name or pattern.
    pub mbean: String,
    pub attribute: String,
    /// MBean key holding the topic (or request) name.
    pub topic_key: Option<String>,
    pub kind: ValueKind,
    pub scale: f64,
    /// Keep only these topic-key values (empty: all).
    pub only: Vec<String>,
    /// A missing MBean is not an error.
    pub optional: bool,
}

/// How one metric is read from a Prometheus JMX exporter.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSpec {
    pub metric: &'static str,
    /// Accepted series names (exporter versions differ in suffixes).
    pub names: Vec<String>,
    /// Label holding the topic (or request) name.
    pub topic_label: Option<String>,
    /// Labels a series must carry with these values.
    pub labels: BTreeMap<String, String>,
    pub kind: ValueKind,
    pub scale: f64,
    /// Keep only these topic-label values (empty: all).
    pub only: Vec<String>,
    /// A missing series is not an error.
    pub optional: bool,
}

/// Everything read from one endpoint in one cycle.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricPlan {
    pub jolokia: Vec<JolokiaSpec>,
    pub prometheus: Vec<PrometheusSpec>,
}

/// Default Jolokia read of `name`, before overrides.
fn default_jolokia(name: &'static str, request_types: &[String]) -> JolokiaSpec {
    use ValueKind::{Counter, Gauge};
    let (mbean, attribute, topic_key, kind, scale, optional) = match name {
        metric::UNDER_REPLICATED_PARTITIONS => (
            "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions",
            "Value",
            None,
            Gauge,
            1.0,
            false,
        ),
        metric::UNDER_MIN_ISR_PARTITION_COUNT => (
            "kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount",
            "Value",
            None,
            Gauge,
            1.0,
            false,
        ),
        // KRaft registers the KafkaController MBeans on controller nodes only.
        metric::OFFLINE_PARTITIONS_COUNT => (
            "kafka.controller:type=KafkaController,name=OfflinePartitionsCount",
            "Value",
            None,
            Gauge,
            1.0,
            true,
        ),
        metric::ACTIVE_CONTROLLER_COUNT => (
            "kafka.controller:type=KafkaController,name=ActiveControllerCount",
            "Value",
            None,
            Gauge,
            1.0,
            true,
        ),
        // A meter of idle nanoseconds per handler thread: its rate is the
        // idle fraction.
        metric::REQUEST_HANDLER_AVG_IDLE_PERCENT => (
            "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
            "OneMinuteRate",
            None,
            Gauge,
            1.0,
            false,
        ),
        metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT => (
            "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent",
            "Value",
            None,
            Gauge,
            1.0,
            false,
        ),
        // `,*` matches the broker total (no topic key) and every topic.
        metric::BYTES_IN_PER_SEC => (
            "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,*",
            "Count",
            Some("topic"),
            Counter,
            1.0,
            false,
        ),
        metric::BYTES_OUT_PER_SEC => (
            "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec,*",
            "Count",
            Some("topic"),
            Counter,
            1.0,
            false,
        ),
        metric::MESSAGES_IN_PER_SEC => (
            "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,*",
            "Count",
            Some("topic"),
            Counter,
            1.0,
            false,
        ),
        metric::ISR_SHRINKS_PER_SEC => (
            "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec",
            "Count",
            None,
            Counter,
            1.0,
            false,
        ),
        metric::REQUEST_TOTAL_TIME_MS => (
            "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=*",
            "99thPercentile",
            Some("request"),
            Gauge,
            1.0,
            false,
        ),
        // `metric::ALL` is the only caller's source of names.
        _ => ("", "", None, Gauge, 1.0, true),
    };
    JolokiaSpec {
        metric: name,
        mbean: mbean.to_string(),
        attribute: attribute.to_string(),
        topic_key: topic_key.map(String::from),
        kind,
        scale,
        only: only_for(name, request_types),
        optional,
    }
}

/// Default exporter series of `name`, before overrides.
fn default_prometheus(name: &'static str, request_types: &[String]) -> PrometheusSpec {
    use ValueKind::{Counter, Gauge};
    let gauge = |series: &str| (vec![series.to_string()], None, Gauge, 1.0);
    let counter = |series: &str| (vec![series.to_string()], Some("topic"), Counter, 1.0);
    let mut labels = BTreeMap::new();
    let (names, topic_label, kind, scale) = match name {
        metric::UNDER_REPLICATED_PARTITIONS => {
            gauge("kafka_server_replicamanager_underreplicatedpartitions")
        }
        metric::UNDER_MIN_ISR_PARTITION_COUNT => {
            gauge("kafka_server_replicamanager_underminisrpartitioncount")
        }
        metric::OFFLINE_PARTITIONS_COUNT => {
            gauge("kafka_controller_kafkacontroller_offlinepartitionscount")
        }
        metric::ACTIVE_CONTROLLER_COUNT => {
            gauge("kafka_controller_kafkacontroller_activecontrollercount")
        }
        // The example rules export the meter's Count (idle nanoseconds per
        // handler thread), not its rates: the per-second rate of the count,
        // in seconds, is the idle fraction over the interval. Exporter 1.x
        // appends `_total` to counters.
        metric::REQUEST_HANDLER_AVG_IDLE_PERCENT => (
            vec![
                "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count".into(),
                "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count_total"
                    .into(),
            ],
            None,
            Counter,
            1e-9,
        ),
        metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT => {
            gauge("kafka_network_socketserver_networkprocessoravgidlepercent")
        }
        metric::BYTES_IN_PER_SEC => counter("kafka_server_brokertopicmetrics_bytesin_total"),
        metric::BYTES_OUT_PER_SEC => counter("kafka_server_brokertopicmetrics_bytesout_total"),
        metric::MESSAGES_IN_PER_SEC => counter("kafka_server_brokertopicmetrics_messagesin_total"),
        metric::ISR_SHRINKS_PER_SEC => (
            vec!["kafka_server_replicamanager_isrshrinks_total".into()],
            None,
            Counter,
            1.0,
        ),
        metric::REQUEST_TOTAL_TIME_MS => {
            labels.insert("quantile".to_string(), "0.99".to_string());
            (
                vec!["kafka_network_requestmetrics_totaltimems".into()],
                Some("request"),
                Gauge,
                1.0,
            )
        }
        _ => (Vec::new(), None, Gauge, 1.0),
    };
    PrometheusSpec {
        metric: name,
        names,
        topic_label: topic_label.map(String::from),
        labels,
        kind,
        scale,
        only: only_for(name, request_types),
        optional: matches!(
            name,
            metric::OFFLINE_PARTITIONS_COUNT | metric::ACTIVE_CONTROLLER_COUNT
        ),
    }
}

fn only_for(name: &str, request_types: &[String]) -> Vec<String> {
    if name == metric::REQUEST_TOTAL_TIME_MS {
        request_types.to_vec()
    } else {
        Vec::new()
    }
}

/// An empty override string clears an optional key.
fn key_override(value: &Option<String>, current: Option<String>) -> Option<String> {
    match value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.clone()),
        None => current,
    }
}

impl MetricPlan {
    /// The reads for `endpoint`: defaults, then the configured overrides,
    /// restricted to the endpoint's metric list.
    pub fn for_endpoint(config: &JmxConfig, endpoint: &BrokerEndpoint) -> MetricPlan {
        let wanted = |name: &str| {
            endpoint
                .metrics
                .as_ref()
                .is_none_or(|list| list.iter().any(|m| m == name))
        };
        let mut plan = MetricPlan::default();
        for name in metric::ALL.into_iter().filter(|n| wanted(n)) {
            let mut j = default_jolokia(name, &config.request_types);
            if let Some(o) = config.jolokia.get(name) {
                if o.enabled == Some(false) {
                    continue;
                }
                j.mbean = o.mbean.clone().unwrap_or(j.mbean);
                j.attribute = o.attribute.clone().unwrap_or(j.attribute);
                j.topic_key = key_override(&o.topic_key, j.topic_key);
                j.kind = o.kind.unwrap_or(j.kind);
                j.scale = o.scale.unwrap_or(j.scale);
                j.optional = o.optional.unwrap_or(j.optional);
            }
            plan.jolokia.push(j);
        }
        for name in metric::ALL.into_iter().filter(|n| wanted(n)) {
            let mut p = default_prometheus(name, &config.request_types);
            if let Some(o) = config.prometheus.get(name) {
                if o.enabled == Some(false) {
                    continue;
                }
                if let Some(series) = &o.name {
                    p.names = vec![series.clone()];
                }
                p.topic_label = key_override(&o.topic_label, p.topic_label);
                p.labels = o.labels.clone().unwrap_or(p.labels);
                p.kind = o.kind.unwrap_or(p.kind);
                p.scale = o.scale.unwrap_or(p.scale);
                p.optional = o.optional.unwrap_or(p.optional);
            }
            plan.prometheus.push(p);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jmx::config::{EndpointKind, JolokiaOverride, PrometheusOverride};

    fn endpoint(metrics: Option<Vec<String>>) -> BrokerEndpoint {
        BrokerEndpoint {
            broker: 1,
            kind: EndpointKind::Jolokia,
            url: "http://h/jolokia".into(),
            username: None,
            password: None,
            metrics,
        }
    }

    #[test]
    fn every_metric_has_a_default_source() {
        let config = JmxConfig::new(vec![endpoint(None)]);
        let plan = MetricPlan::for_endpoint(&config, &endpoint(None));
        assert_eq!(plan.jolokia.len(), metric::ALL.len());
        assert_eq!(plan.prometheus.len(), metric::ALL.len());
        for spec in &plan.jolokia {
            crate::jmx::config::check_mbean(&spec.mbean).expect("default MBeans are valid");
            assert!(!spec.attribute.is_empty());
        }
        assert!(plan.prometheus.iter().all(|p| !p.names.is_empty()));
        let request = &plan.jolokia[10];
        assert_eq!(request.metric, metric::REQUEST_TOTAL_TIME_MS);
        assert_eq!(request.only, ["Produce", "FetchConsumer", "FetchFollower"]);
        assert_eq!(request.attribute, "99thPercentile");
    }

    #[test]
    fn overrides_merge_onto_defaults() {
        let mut config = JmxConfig::new(vec![endpoint(None)]);
        config.jolokia.insert(
            metric::BYTES_IN_PER_SEC.into(),
            JolokiaOverride {
                mbean: Some("kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec".into()),
                topic_key: Some(String::new()),
                ..Default::default()
            },
        );
        config.jolokia.insert(
            metric::ISR_SHRINKS_PER_SEC.into(),
            JolokiaOverride {
                enabled: Some(false),
                ..Default::default()
            },
        );
        config.prometheus.insert(
            metric::REQUEST_TOTAL_TIME_MS.into(),
            PrometheusOverride {
                name: Some("kafka_network_requestmetrics_totaltimems_ms".into()),
                ..Default::default()
            },
        );
        let plan = MetricPlan::for_endpoint(&config, &endpoint(None));
        let bytes_in = plan
            .jolokia
            .iter()
            .find(|s| s.metric == metric::BYTES_IN_PER_SEC)
            .expect("bytes in");
        assert_eq!(bytes_in.attribute, "Count", "unset fields keep the default");
        assert_eq!(bytes_in.topic_key, None);
        assert_eq!(bytes_in.kind, ValueKind::Counter);
        assert!(plan
            .jolokia
            .iter()
            .all(|s| s.metric != metric::ISR_SHRINKS_PER_SEC));
        let request = plan
            .prometheus
            .iter()
            .find(|s| s.metric == metric::REQUEST_TOTAL_TIME_MS)
            .expect("request time");
        assert_eq!(
            request.names,
            ["kafka_network_requestmetrics_totaltimems_ms"]
        );
        assert_eq!(request.labels["quantile"], "0.99");
    }

    #[test]
    fn endpoint_metric_list_restricts_the_plan() {
        let only = endpoint(Some(vec![metric::ACTIVE_CONTROLLER_COUNT.into()]));
        let config = JmxConfig::new(vec![only.clone()]);
        let plan = MetricPlan::for_endpoint(&config, &only);
        assert_eq!(plan.jolokia.len(), 1);
        assert_eq!(plan.jolokia[0].metric, metric::ACTIVE_CONTROLLER_COUNT);
    }
}
