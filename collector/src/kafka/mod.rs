//! The rdkafka-backed [`OffsetSource`]: one admin handle per cluster.

pub mod admin_ffi;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::source::{OffsetSource, SourceError};
use admin_ffi::{CommittedByGroup, GroupDescription, Isolation, OffsetSpec, OffsetsByPartition};

/// Connection settings of one Kafka cluster (its auth profile included).
#[derive(Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (e.g. `security.protocol = "SASL_SSL"`,
    /// `sasl.mechanism = "SCRAM-SHA-512"`, `ssl.ca.location`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties whose values are secrets, read from an
    /// environment variable or a file at start (e.g. `"sasl.password" =
    /// { file = "/run/secrets/kafka" }`). Never logged.
    #[serde(default)]
    pub secret_properties: BTreeMap<String, SecretRef>,
    /// Broker JMX endpoints (Jolokia or Prometheus JMX exporter); no broker
    /// metrics when absent.
    #[serde(default)]
    pub jmx: Option<crate::jmx::JmxConfig>,
}

/// Where a secret property's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable's value.
    Env(String),
    /// A file's content, trailing newline removed.
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret; the error names the source, never the value.
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// Property names whose values are hidden in `Debug` output.
fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|word| key.contains(word))
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_sensitive(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("ClusterConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &properties)
            .field(
                "secret_properties",
                &self.secret_properties.keys().collect::<Vec<_>>(),
            )
            .field("jmx", &self.jmx)
            .finish()
    }
}

impl ClusterConfig {
    /// Checks that every secret property can be read (run at start, so a
    /// missing secret is a clear startup error, not an auth failure later).
    pub fn check_secrets(&self) -> Result<(), String> {
        for (key, secret) in &self.secret_properties {
            secret
                .resolve()
                .map_err(|e| format!("secret property `{key}`: {e}"))?;
        }
        Ok(())
    }

    /// An rdkafka client configuration for this cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        for (key, secret) in &self.secret_properties {
            match secret.resolve() {
                Ok(value) => {
                    config.set(key, value);
                }
                Err(error) => {
                    tracing::error!(property = %key, error = %error, "secret property unavailable")
                }
            }
        }
        config
    }
}

/// Group id of the admin handle. It never joins or commits; it only exists
/// so that librdkafka has a consumer-group object to notify. librdkafka
/// 2.12 dereferences that object when an OffsetFetch answer says the
/// coordinator moved (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) and
/// crashes a client that has none — found by tests/tests/recovery.rs.
const ADMIN_HANDLE_GROUP: &str = "lagwatch-admin-handle";

/// Admin handles per cluster. librdkafka serves all admin requests of a
/// client on that client's one main thread, so at thousands of groups the
/// committed-offset requests are CPU-bound there; a small fixed pool spreads
/// them over threads. The count does not depend on the number of groups.
const ADMIN_HANDLES: usize = 3;

/// Reads offsets and group state from one cluster through a small fixed
/// pool of admin handles, whatever the number of groups.
pub struct KafkaOffsetSource {
    /// Consumer-type handles used only for admin calls and metadata;
    /// `handles[0]` also serves metadata and group descriptions.
    handles: Vec<BaseConsumer>,
    timeout: Duration,
    cluster: ClusterConfig,
    /// Reads records for exact time lag; created on first use, never joins
    /// a group or commits.
    probe: std::sync::Mutex<Option<BaseConsumer>>,
}

impl KafkaOffsetSource {
    /// Creates the cluster's client; does not contact the brokers yet.
    pub fn new(cluster: &ClusterConfig, timeout: Duration) -> Result<Self, SourceError> {
        let handles = (0..ADMIN_HANDLES)
            .map(|_| {
                cluster
                    .client_config()
                    .set("group.id", ADMIN_HANDLE_GROUP)
                    .set("enable.auto.commit", "false")
                    .create::<BaseConsumer>()
                    .map_err(|error| SourceError::Client(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KafkaOffsetSource {
            handles,
            timeout,
            cluster: cluster.clone(),
            probe: std::sync::Mutex::new(None),
        })
    }
}

impl KafkaOffsetSource {
    /// The handle for metadata and listings.
    fn admin(&self) -> &BaseConsumer {
        &self.handles[0]
    }

    /// Splits `groups` over the handles and runs `call` for each share on
    /// its own thread (librdkafka serves each handle on its own thread).
    fn spread<T: Send>(
        &self,
        groups: &[String],
        call: impl Fn(&BaseConsumer, &[String]) -> T + Sync,
    ) -> Vec<T> {
        let share = groups.len().div_ceil(self.handles.len()).max(1);
        let call = &call;
        std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .handles
                .iter()
                .zip(groups.chunks(share))
                .map(|(handle, chunk)| scope.spawn(move || call(handle, chunk)))
                .collect();
            workers
                .into_iter()
                .filter_map(|worker| worker.join().ok())
                .collect()
        })
    }
}

impl OffsetSource for KafkaOffsetSource {
    fn record_timestamps(&self, positions: &[(String, i32, i64)]) -> HashMap<(String, i32), i64> {
        let mut found = HashMap::new();
        if positions.is_empty() {
            return found;
        }
        let Ok(mut probe) = self.probe.lock() else {
            return found;
        };
        if probe.is_none() {
            match self
                .cluster
                .client_config()
                .set("group.id", "lagwatch-timestamp-probe")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "50")
                .set("max.partition.fetch.bytes", "65536")
                .create::<BaseConsumer>()
            {
                Ok(consumer) => *probe = Some(consumer),
                Err(error) => {
                    tracing::warn!(error = %error, "cannot create the time-lag probe consumer");
                    return found;
                }
            }
        }
        let Some(consumer) = probe.as_ref() else {
            return found;
        };
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in positions {
            if list
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                continue;
            }
        }
        if let Err(error) = consumer.assign(&list) {
            tracing::warn!(error = %error, "cannot assign the time-lag probe");
            return found;
        }
        let deadline = std::time::Instant::now() + self.timeout;
        while found.len() < positions.len() && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let key = (message.topic().to_string(), message.partition());
                    if let Some(ts) = message.timestamp().to_millis() {
                        found.entry(key).or_insert(ts);
                    }
                }
                Some(Err(error)) => tracing::debug!(error = %error, "time-lag probe fetch error"),
                None => {}
            }
        }
        let _ = consumer.unassign();
        found
    }

    fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
        // Serve the handle's event queue (errors, logs) once per cycle, so
        // nothing piles up; it has no assignment, so no records arrive.
        for handle in &self.handles {
            let _ = handle.poll(Duration::ZERO);
        }
        let metadata = self
            .admin()
            .fetch_metadata(None, self.timeout)
            .map_err(|error| SourceError::Metadata(error.to_string()))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| {
                let count = i32::try_from(topic.partitions().len()).unwrap_or(i32::MAX);
                (topic.name().to_string(), count)
            })
            .collect())
    }

    fn list_groups(&self) -> Result<(Vec<String>, Vec<String>), SourceError> {
        admin_ffi::list_consumer_groups(self.admin().client(), self.timeout)
            .map_err(SourceError::Admin)
    }

    fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup {
        // Each handle's main thread works through its share concurrently.
        let mut all = CommittedByGroup::with_capacity(groups.len());
        for part in self.spread(groups, |handle, chunk| {
            admin_ffi::list_consumer_group_offsets(handle.client(), chunk, self.timeout)
        }) {
            all.extend(part);
        }
        all
    }

    fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
        let parts = self.spread(groups, |handle, chunk| {
            admin_ffi::describe_consumer_groups(handle.client(), chunk, self.timeout)
        });
        let mut all = HashMap::with_capacity(groups.len());
        let mut first_error = None;
        for part in parts {
            match part {
                Ok(part) => all.extend(part),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if all.is_empty() => Err(SourceError::Admin(error)),
            Some(error) => {
                for group in groups {
                    all.entry(group.clone())
                        .or_insert_with(|| Err(error.to_string()));
                }
                Ok(all)
            }
            None => Ok(all),
        }
    }

    fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, SourceError> {
        // Each kind of offset has its own handle, so the three lookups of a
        // cycle run on different librdkafka threads.
        let index = match (spec, isolation) {
            (OffsetSpec::Latest, Isolation::ReadUncommitted) => 0,
            (OffsetSpec::Latest, Isolation::ReadCommitted) => 1,
            (OffsetSpec::Earliest, _) => 2,
        } % self.handles.len();
        admin_ffi::list_offsets(
            self.handles[index].client(),
            partitions,
            spec,
            isolation,
            self.timeout,
        )
        .map_err(SourceError::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_never_show_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        let cluster = ClusterConfig {
            bootstrap_servers: "b:9092".into(),
            properties: BTreeMap::from([
                ("sasl.username".to_string(), "svc".to_string()),
                ("ssl.key.password".to_string(), "inline-secret".to_string()),
            ]),
            secret_properties: BTreeMap::from([(
                "sasl.password".to_string(),
                SecretRef::File(path),
            )]),
            jmx: None,
        };
        assert_eq!(cluster.check_secrets(), Ok(()));
        assert_eq!(cluster.client_config().get("sasl.password"), Some("s3cr3t"));
        let shown = format!("{cluster:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("inline-secret"),
            "{shown}"
        );
        assert!(shown.contains("svc"));
    }

    #[test]
    fn missing_secret_is_named_without_value() {
        let cluster = ClusterConfig {
            bootstrap_servers: "b:9092".into(),
            secret_properties: BTreeMap::from([(
                "sasl.password".to_string(),
                SecretRef::Env("LAGWATCH_TEST_SURELY_UNSET".into()),
            )]),
            ..ClusterConfig::default()
        };
        let error = cluster.check_secrets().expect_err("unset");
        assert!(
            error.contains("sasl.password") && error.contains("LAGWATCH_TEST_SURELY_UNSET"),
            "{error}"
        );
    }
}
