//! Metadata (api key 3) for all topics: the broker map, each partition's
//! leader, and the partition counts of [`crate::WireClient::topic_partitions`].

use std::collections::BTreeMap;

use kafka_protocol::messages::MetadataRequest;
use tokio::time::Instant;

use crate::cluster::address;
use crate::connection::Connection;
use crate::error::{codes, WireError};

/// One Metadata answer, reduced to what the requests need.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    /// Node id -> `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Topic -> partition -> leader node id (-1: no leader).
    pub topics: BTreeMap<String, BTreeMap<i32, i32>>,
    /// Topics the broker answered with an error for (e.g. being deleted), with the code.
    pub topic_errors: BTreeMap<String, i16>,
}

impl Metadata {
    /// The leader's address of `topic`/`partition`, or the Kafka error code explaining why not.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Result<&str, i16> {
        let Some(partitions) = self.topics.get(topic) else {
            return Err(self
                .topic_errors
                .get(topic)
                .copied()
                .unwrap_or(codes::UNKNOWN_TOPIC_OR_PARTITION));
        };
        let leader = partitions
            .get(&partition)
            .ok_or(codes::UNKNOWN_TOPIC_OR_PARTITION)?;
        self.brokers
            .get(leader)
            .map(String::as_str)
            .ok_or(codes::LEADER_NOT_AVAILABLE)
    }
}

/// Metadata v1..=13 for all topics, no auto-creation.
pub(crate) async fn fetch(conn: &Connection, deadline: Instant) -> Result<Metadata, WireError> {
    let version = conn.version::<MetadataRequest>(1, 13)?;
    let mut request = MetadataRequest::default().with_topics(None);
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    let response = conn.send(&request, version, deadline).await?;
    let mut md = Metadata::default();
    for b in &response.brokers {
        md.brokers
            .insert(b.node_id.0, address(b.host.as_str(), b.port));
    }
    for t in response.topics {
        let Some(name) = t.name else { continue };
        let name = name.0.to_string();
        if t.error_code != codes::NONE {
            md.topic_errors.insert(name, t.error_code);
            continue;
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        md.topics.insert(name, partitions);
    }
    if md.brokers.is_empty() {
        return Err(WireError::Protocol {
            broker: conn.addr().to_string(),
            api: "Metadata".to_string(),
            message: "answer lists no broker".to_string(),
        });
    }
    Ok(md)
}
