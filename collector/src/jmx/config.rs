//! JMX collection settings of one cluster.
//!
//! ```toml
//! interval = "30s"
//! timeout = "5s"
//! brokers = [
//!   { broker = 1, kind = "jolokia", url = "https://kafka-1:8778/jolokia", username = "monitor" },
//!   { broker = 2, kind = "prometheus", url = "http://kafka-2:7071/metrics" },
//! ]
//! # optional: the CA that signs the endpoints' https certificates
//! ca_file = "/etc/lagwatch/jmx-ca.pem"
//! # optional: where a metric is read from, when the defaults do not fit
//! [jolokia.UnderReplicatedPartitions]
//! mbean = "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions"
//! attribute = "Value"
//! [prometheus.BytesInPerSec]
//! name = "kafka_server_brokertopicmetrics_bytesin_total"
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use lagwatch_model::broker::metric;
use lagwatch_model::Secret;
use serde::{Deserialize, Serialize};

use super::spec::ValueKind;
use super::JmxError;

/// How the brokers of one cluster are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JmxConfig {
    /// One endpoint per broker (KRaft node) to read.
    pub brokers: Vec<BrokerEndpoint>,
    /// Time between two reads of every broker; the per-second rates are
    /// averages over this interval.
    #[serde(with = "humantime_serde", default = "default_interval")]
    pub interval: Duration,
    /// Timeout of one HTTP request to one endpoint (connect included).
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// PEM file with the CA certificate(s) that sign the https endpoints'
    /// certificates; when set, only these are trusted (default: the
    /// platform's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Request types reported as `RequestTotalTimeMs` (values of the
    /// `request` key of `kafka.network:type=RequestMetrics`); an empty list
    /// reports all of them (about 90 in Kafka 4).
    #[serde(default = "default_request_types")]
    pub request_types: Vec<String>,
    /// Correction of `RequestHandlerAvgIdlePercent` on KRaft combined nodes.
    #[serde(default)]
    pub idle_correction: IdleCorrection,
    /// Per-metric overrides of where Jolokia endpoints read a metric,
    /// keyed by metric name (e.g. `UnderReplicatedPartitions`).
    #[serde(default)]
    pub jolokia: BTreeMap<String, JolokiaOverride>,
    /// Per-metric overrides of which exporter series a metric is read from,
    /// keyed by metric name.
    #[serde(default)]
    pub prometheus: BTreeMap<String, PrometheusOverride>,
}

/// One broker's JMX endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerEndpoint {
    /// Broker (KRaft node) id, as in `node.id`; samples carry it.
    pub broker: i32,
    /// What serves `url`.
    pub kind: EndpointKind,
    /// Jolokia agent base URL (`http://host:8778/jolokia`) or the
    /// exporter's metrics URL (`http://host:7071/metrics`); `https` with a
    /// certificate the platform or `ca_file` trusts. Credentials belong in
    /// `username`/`password`; any written into the URL are hidden in
    /// samples and logs.
    pub url: String,
    /// HTTP basic-auth user, for a secured agent (use https: basic auth
    /// over http shows the password to the network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic-auth password (pass it as an environment override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Only these metrics are read from this endpoint; all when absent.
    /// Useful for dedicated KRaft controllers, which have the controller
    /// metrics but none of the broker ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
}

/// The kind of HTTP endpoint a broker's MBeans are read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// A Jolokia JVM agent: one bulk POST of `read` requests per cycle.
    Jolokia,
    /// A Prometheus JMX exporter (text format 0.0.4): one GET per cycle.
    Prometheus,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Jolokia => "jolokia",
            EndpointKind::Prometheus => "prometheus",
        }
    }
}

/// What to do about KAFKA-19606: before Kafka 4.2, a node running as broker
/// and controller (`process.roles=broker,controller`) adds the idle time of
/// both request handler pools into one meter, so `RequestHandlerAvgIdlePercent`
/// reads up to 2.0. Halving it gives the mean idle fraction of the two pools
/// (both have `num.io.threads` threads), which is what Kafka 4.2 reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleCorrection {
    /// Halve when the node reports both broker and controller metrics and
    /// its Kafka version is older than 4.2 or unknown (exporters do not
    /// expose the version).
    #[default]
    Auto,
    /// Always halve (every node is combined and older than 4.2).
    Halve,
    /// Never correct. Values are still clamped to 0..=1.
    None,
}

/// Where a Jolokia endpoint reads one metric; unset fields keep the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JolokiaOverride {
    /// MBean name or pattern (`*`, `?`), e.g.
    /// `kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,*`.
    pub mbean: Option<String>,
    /// Attribute to read (`Value`, `Count`, `OneMinuteRate`, `99thPercentile`, ...).
    pub attribute: Option<String>,
    /// MBean key whose value becomes the sample's topic field (`topic`,
    /// `request`); an empty string means none.
    pub topic_key: Option<String>,
    /// `gauge`: the value as read; `counter`: a per-second rate of it.
    pub kind: Option<ValueKind>,
    /// Factor applied to the value (or rate).
    pub scale: Option<f64>,
    /// A missing MBean is normal (metrics of one node role only).
    pub optional: Option<bool>,
    /// `false` stops reading the metric.
    pub enabled: Option<bool>,
}

/// Which exporter series one metric is read from; unset fields keep the
/// default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusOverride {
    /// Series name, e.g. `kafka_server_brokertopicmetrics_bytesin_total`.
    pub name: Option<String>,
    /// Label whose value becomes the sample's topic field; an empty string
    /// means none.
    pub topic_label: Option<String>,
    /// Labels a series must have (e.g. `{ quantile = "0.99" }`).
    pub labels: Option<BTreeMap<String, String>>,
    /// `gauge`: the value as read; `counter`: a per-second rate of it.
    pub kind: Option<ValueKind>,
    /// Factor applied to the value (or rate).
    pub scale: Option<f64>,
    /// A missing series is normal (metrics of one node role only).
    pub optional: Option<bool>,
    /// `false` stops reading the metric.
    pub enabled: Option<bool>,
}

const fn default_interval() -> Duration {
    Duration::from_secs(30)
}
const fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_request_types() -> Vec<String> {
    ["Produce", "FetchConsumer", "FetchFollower"]
        .map(String::from)
        .to_vec()
}

impl JmxConfig {
    /// A configuration with default settings for `brokers`.
    pub fn new(brokers: Vec<BrokerEndpoint>) -> Self {
        JmxConfig {
            brokers,
            interval: default_interval(),
            timeout: default_timeout(),
            ca_file: None,
            request_types: default_request_types(),
            idle_correction: IdleCorrection::default(),
            jolokia: BTreeMap::new(),
            prometheus: BTreeMap::new(),
        }
    }

    /// Checks everything that would otherwise fail at run time. Errors name
    /// the offending key relative to this section.
    pub fn validate(&self) -> Result<(), JmxError> {
        let invalid = |key: String, reason: String| Err(JmxError::InvalidConfig { key, reason });
        if self.interval.is_zero() {
            return invalid("interval".into(), "must be greater than 0".into());
        }
        if self.timeout.is_zero() {
            return invalid("timeout".into(), "must be greater than 0".into());
        }
        let mut ids = HashSet::new();
        for (i, endpoint) in self.brokers.iter().enumerate() {
            let key = |field: &str| format!("brokers[{i}].{field}");
            if !ids.insert(endpoint.broker) {
                return invalid(
                    key("broker"),
                    format!("broker {} is listed twice", endpoint.broker),
                );
            }
            if let Err(reason) = check_url(&endpoint.url) {
                return invalid(key("url"), reason);
            }
            for name in endpoint.metrics.iter().flatten() {
                if metric::known(name).is_none() {
                    return invalid(key("metrics"), unknown_metric(name));
                }
            }
            if endpoint.password.is_some() && endpoint.username.is_none() {
                return invalid(key("password"), "needs a username".into());
            }
        }
        for (name, o) in &self.jolokia {
            if metric::known(name).is_none() {
                return invalid(format!("jolokia.{name}"), unknown_metric(name));
            }
            if let Some(mbean) = &o.mbean {
                if let Err(reason) = check_mbean(mbean) {
                    return invalid(format!("jolokia.{name}.mbean"), reason);
                }
            }
            if o.attribute.as_deref().is_some_and(|a| a.trim().is_empty()) {
                return invalid(format!("jolokia.{name}.attribute"), "is empty".into());
            }
            if let Err(reason) = check_scale(o.scale) {
                return invalid(format!("jolokia.{name}.scale"), reason);
            }
        }
        for (name, o) in &self.prometheus {
            if metric::known(name).is_none() {
                return invalid(format!("prometheus.{name}"), unknown_metric(name));
            }
            if let Some(series) = &o.name {
                if !super::prom_text::is_metric_name(series) {
                    return invalid(
                        format!("prometheus.{name}.name"),
                        format!("{series:?} is not a Prometheus metric name"),
                    );
                }
            }
            if let Err(reason) = check_scale(o.scale) {
                return invalid(format!("prometheus.{name}.scale"), reason);
            }
        }
        Ok(())
    }
}

fn unknown_metric(name: &str) -> String {
    format!("unknown metric {name:?}; known: {}", metric::ALL.join(", "))
}

fn check_scale(scale: Option<f64>) -> Result<(), String> {
    match scale {
        Some(s) if !s.is_finite() || s == 0.0 => Err(format!("{s} is not a usable factor")),
        _ => Ok(()),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("{:?} is not a URL: {e}", lagwatch_model::redact_url(url)))?;
    let shown = lagwatch_model::redact_url(url);
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(format!("{shown:?}: unsupported scheme {other:?}")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} has no host"));
    }
    Ok(())
}

/// Rejects what the agent would answer with a 400 for the whole bulk
/// request: `domain:key=value[,key=value...][,*]`.
pub(crate) fn check_mbean(mbean: &str) -> Result<(), String> {
    let Some((domain, properties)) = mbean.split_once(':') else {
        return Err(format!("{mbean:?} has no ':' between domain and keys"));
    };
    if domain.is_empty() {
        return Err(format!("{mbean:?} has an empty domain"));
    }
    let parts = super::jolokia::split_properties(properties)
        .ok_or_else(|| format!("{mbean:?} has an unterminated quoted value"))?;
    if parts.is_empty() {
        return Err(format!("{mbean:?} has no key properties"));
    }
    for part in parts {
        if part == "*" {
            continue;
        }
        match part.split_once('=') {
            Some((key, value)) if !key.is_empty() && !value.is_empty() => {}
            _ => return Err(format!("{mbean:?}: {part:?} is not key=value")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<JmxConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_apply() {
        let config = parse(
            r#"brokers = [{ broker = 1, kind = "jolokia", url = "http://127.0.0.1:8778/jolokia" }]"#,
        )
        .expect("parses");
        assert_eq!(config.interval, Duration::from_secs(30));
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(
            config.request_types,
            ["Produce", "FetchConsumer", "FetchFollower"]
        );
        assert_eq!(config.idle_correction, IdleCorrection::Auto);
        assert_eq!(config.brokers[0].kind, EndpointKind::Jolokia);
        config.validate().expect("valid");
    }

    #[test]
    fn full_example_parses() {
        let config = parse(
            r#"
            interval = "15s"
            timeout = "2s"
            request_types = []
            idle_correction = "halve"
            brokers = [
              { broker = 1, kind = "jolokia", url = "http://k1:8778/jolokia", username = "mon", password = "pw" },
              { broker = 2, kind = "prometheus", url = "http://k2:7071/metrics" },
              { broker = 3000, kind = "jolokia", url = "http://c1:8778/jolokia", metrics = ["ActiveControllerCount"] },
            ]
            [jolokia.BytesInPerSec]
            mbean = "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=*"
            attribute = "Count"
            [jolokia.IsrShrinksPerSec]
            enabled = false
            [prometheus.RequestTotalTimeMs]
            name = "kafka_network_requestmetrics_totaltimems"
            labels = { quantile = "0.999" }
            "#,
        )
        .expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.interval, Duration::from_secs(15));
        assert_eq!(
            config.brokers[0].password.as_ref().map(Secret::expose),
            Some("pw")
        );
        assert_eq!(format!("{:?}", config.brokers[0].password), "Some(***)");
        assert_eq!(config.jolokia["IsrShrinksPerSec"].enabled, Some(false));
    }

    #[test]
    fn rejects_unknown_keys_and_kinds() {
        let unknown_key =
            parse(r#"brokers = [{ broker = 1, kind = "jolokia", url = "http://h/j", port = 1 }]"#);
        assert!(unknown_key.is_err());
        let bad_kind = parse(r#"brokers = [{ broker = 1, kind = "jmx", url = "http://h/j" }]"#);
        assert!(bad_kind.is_err());
        let bad_duration = parse("brokers = []\ninterval = \"soon\"");
        assert!(bad_duration.is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let endpoint = |broker, url: &str| BrokerEndpoint {
            broker,
            kind: EndpointKind::Jolokia,
            url: url.into(),
            username: None,
            password: None,
            metrics: None,
        };
        let error = |config: JmxConfig| config.validate().expect_err("invalid").to_string();

        let twice = JmxConfig::new(vec![endpoint(1, "http://a/j"), endpoint(1, "http://b/j")]);
        assert!(error(twice).contains("brokers[1].broker"));

        JmxConfig::new(vec![endpoint(1, "https://a/j")])
            .validate()
            .expect("https is supported");
        let ftp = JmxConfig::new(vec![endpoint(1, "ftp://user:s3cret@a/j")]);
        let message = error(ftp);
        assert!(message.contains("unsupported scheme"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");

        let not_url = JmxConfig::new(vec![endpoint(1, "a:8778")]);
        assert!(error(not_url).contains("brokers[0].url"));

        let mut bad_mbean = JmxConfig::new(vec![endpoint(1, "http://a/j")]);
        bad_mbean.jolokia.insert(
            "UnderReplicatedPartitions".into(),
            JolokiaOverride {
                mbean: Some("bad mbean name".into()),
                ..Default::default()
            },
        );
        assert!(error(bad_mbean).contains("jolokia.UnderReplicatedPartitions.mbean"));

        let mut unknown = JmxConfig::new(vec![endpoint(1, "http://a/j")]);
        unknown
            .prometheus
            .insert("BytesIn".into(), PrometheusOverride::default());
        let message = error(unknown);
        assert!(message.contains("prometheus.BytesIn"), "{message}");
        assert!(
            message.contains("BytesInPerSec"),
            "lists the known names: {message}"
        );
    }

    #[test]
    fn mbean_syntax() {
        assert!(
            check_mbean("kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions").is_ok()
        );
        assert!(check_mbean("kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,*").is_ok());
        assert!(check_mbean("kafka.server:type=x,name=\"a,b\"").is_ok());
        assert!(check_mbean("kafka.server").is_err());
        assert!(check_mbean(":type=x").is_err());
        assert!(check_mbean("kafka.server:").is_err());
        assert!(check_mbean("kafka.server:type").is_err());
        assert!(check_mbean("kafka.server:type=,name=x").is_err());
        assert!(check_mbean("kafka.server:name=\"open").is_err());
    }
}
