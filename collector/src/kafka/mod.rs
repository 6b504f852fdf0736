//! The rdkafka-backed [`OffsetSource`]: one admin client per cluster.

pub mod admin_ffi;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::source::{OffsetSource, SourceError};
use admin_ffi::{CommittedByGroup, GroupDescription, Isolation, OffsetSpec, OffsetsByPartition};

/// Connection settings of one Kafka cluster.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (e.g. `security.protocol`,
    /// `sasl.mechanism`); values are never logged.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl ClusterConfig {
    /// An rdkafka client configuration for this cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Reads offsets and group state from one cluster through one shared
/// admin client, whatever the number of groups.
pub struct KafkaOffsetSource {
    admin: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

impl KafkaOffsetSource {
    /// Creates the cluster's client; does not contact the brokers yet.
    pub fn new(cluster: &ClusterConfig, timeout: Duration) -> Result<Self, SourceError> {
        let admin = cluster
            .client_config()
            .create()
            .map_err(|error| SourceError::Client(error.to_string()))?;
        Ok(KafkaOffsetSource { admin, timeout })
    }
}

impl OffsetSource for KafkaOffsetSource {
    fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
        let metadata = self
            .admin
            .inner()
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
        admin_ffi::list_consumer_groups(self.admin.inner(), self.timeout)
            .map_err(SourceError::Admin)
    }

    fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup {
        admin_ffi::list_consumer_group_offsets(self.admin.inner(), groups, self.timeout)
    }

    fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
        admin_ffi::describe_consumer_groups(self.admin.inner(), groups, self.timeout)
            .map_err(SourceError::Admin)
    }

    fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, SourceError> {
        admin_ffi::list_offsets(
            self.admin.inner(),
            partitions,
            spec,
            isolation,
            self.timeout,
        )
        .map_err(SourceError::Admin)
    }
}
