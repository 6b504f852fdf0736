//! The cluster requests of a source, through the native wire client
//! (`lagwatch-kafka-wire`), as blocking calls returning the collector's own
//! types.
//!
//! librdkafka's admin API aborted the whole process when a broker
//! restarted during a coordinator-targeted request (confluentinc/librdkafka
//! #4605); through the wire client a broker restart is a few failed calls
//! and the same client works again once the broker is back. This module
//! builds the client from the cluster profile, runs its futures on the
//! source's own runtime ([`SourceRuntime`]) and maps its answers and errors
//! into [`crate::source`] types. Errors keep the client's words (broker
//! address, Kafka error name, TLS or login failure), so error samples say
//! why.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lagwatch_kafka::ClusterConfig;
use lagwatch_kafka_wire as wire;
use lagwatch_kafka_wire::{WireClient, WireConfig};

use super::runtime::SourceRuntime;
use crate::source::{
    CommittedByGroup, CommittedOffset, GroupDescription, GroupListing, Isolation, OffsetSpec,
    OffsetsByPartition, RequestError, SourceError,
};

/// The wire client's configuration for `cluster`: its properties with the
/// secret properties resolved (as `ClusterConfig::client_config` does for
/// librdkafka). Profiles the wire client cannot serve (GSSAPI, OAUTHBEARER,
/// an unknown protocol, unusable TLS files, a wrong key password) are
/// refused here, naming the property and never a secret value.
pub(crate) fn wire_config(
    cluster: &ClusterConfig,
    timeout: Duration,
) -> Result<WireConfig, SourceError> {
    let mut properties: BTreeMap<String, String> = cluster.properties.clone();
    for (key, secret) in &cluster.secret_properties {
        let value = secret
            .resolve()
            .map_err(|e| SourceError::Client(format!("secret property `{key}`: {e}")))?;
        properties.insert(key.clone(), value);
    }
    WireConfig::from_properties(&cluster.bootstrap_servers, &properties, timeout)
        .map_err(|e| SourceError::Client(e.to_string()))
}

/// One cluster's wire client and the runtime it runs on.
pub(crate) struct WireCalls {
    runtime: SourceRuntime,
    client: WireClient,
}

impl WireCalls {
    pub(crate) fn new(cluster: &ClusterConfig, timeout: Duration) -> Result<Self, SourceError> {
        let config = wire_config(cluster, timeout)?;
        Ok(WireCalls {
            runtime: SourceRuntime::new(timeout)?,
            client: WireClient::new(config),
        })
    }

    /// Partition count of every topic.
    pub(crate) fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
        let client = self.client.clone();
        self.runtime
            .run("Metadata", async move { client.topic_partitions().await })
            .map_err(|e| SourceError::Metadata(e.message))?
            .map_err(|e| SourceError::Metadata(e.to_string()))
    }

    /// Every group with its state, and the brokers that failed to list.
    pub(crate) fn list_groups(&self) -> Result<(Vec<GroupListing>, Vec<String>), RequestError> {
        const OP: &str = "ListGroups";
        let client = self.client.clone();
        let (listings, failed) = self
            .runtime
            .run(OP, async move { client.list_groups().await })?
            .map_err(|e| RequestError::new(OP, e.to_string()))?;
        let listings = listings
            .into_iter()
            .map(|l| GroupListing {
                group: l.group,
                state: l.state,
            })
            .collect();
        Ok((listings, failed))
    }

    /// State and membership of each group, each failing on its own.
    pub(crate) fn describe_groups(
        &self,
        groups: &[String],
    ) -> HashMap<String, Result<GroupDescription, String>> {
        const OP: &str = "DescribeGroups";
        let client = self.client.clone();
        let asked = groups.to_vec();
        match self
            .runtime
            .run(OP, async move { client.describe_groups(&asked).await })
        {
            Ok(answers) => answers
                .into_iter()
                .map(|(group, answer)| {
                    let answer = answer
                        .map(|d| GroupDescription {
                            group: d.group,
                            state: d.state,
                            members: d.members,
                            protocol: d.protocol,
                        })
                        .map_err(|e| e.to_string());
                    (group, answer)
                })
                .collect(),
            Err(error) => groups
                .iter()
                .map(|group| (group.clone(), Err(error.to_string())))
                .collect(),
        }
    }

    /// Committed offsets of each group (one OffsetFetch per coordinator
    /// batch), each group failing on its own.
    pub(crate) fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup {
        const OP: &str = "OffsetFetch";
        let client = self.client.clone();
        let asked = groups.to_vec();
        match self
            .runtime
            .run(OP, async move { client.committed_offsets(&asked).await })
        {
            Ok(answers) => answers
                .into_iter()
                .map(|(group, answer)| {
                    let answer = answer
                        .map(|offsets| offsets.into_iter().map(committed).collect())
                        .map_err(|e| RequestError::new(OP, e.to_string()));
                    (group, answer)
                })
                .collect(),
            Err(error) => groups
                .iter()
                .map(|group| (group.clone(), Err(error.clone())))
                .collect(),
        }
    }

    /// The `spec` offset of each partition. Fails as a whole only when
    /// every partition failed, with the first partition's reason, so an
    /// error sample says why (e.g. the leader's broker is unreachable).
    pub(crate) fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, RequestError> {
        const OP: &str = "ListOffsets";
        if partitions.is_empty() {
            return Ok(OffsetsByPartition::new());
        }
        let client = self.client.clone();
        let asked = partitions.to_vec();
        let spec = match spec {
            OffsetSpec::Latest => wire::OffsetSpec::Latest,
            OffsetSpec::Earliest => wire::OffsetSpec::Earliest,
        };
        let isolation = match isolation {
            Isolation::ReadUncommitted => wire::Isolation::ReadUncommitted,
            Isolation::ReadCommitted => wire::Isolation::ReadCommitted,
        };
        let answers = self.runtime.run(OP, async move {
            client.list_offsets(&asked, spec, isolation).await
        })?;
        if answers.values().all(Result::is_err) {
            let first = partitions
                .iter()
                .find_map(|key| answers.get(key).and_then(|a| a.as_ref().err()))
                .or_else(|| answers.values().find_map(|a| a.as_ref().err()));
            let reason = first.map_or_else(|| "no partition answered".to_string(), Clone::clone);
            return Err(RequestError::new(OP, reason));
        }
        Ok(answers)
    }
}

fn committed(offset: wire::CommittedOffset) -> CommittedOffset {
    CommittedOffset {
        topic: offset.topic,
        partition: offset.partition,
        offset: offset.offset,
    }
}
