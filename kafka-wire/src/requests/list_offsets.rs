//! ListOffsets (api key 2): the latest (high watermark, or last stable offset
//! with read_committed) or earliest offset of partitions, one request per
//! partition leader, leaders asked concurrently.
//!
//! Leaders come from the cached metadata. Partitions whose leader moved or is
//! unknown (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION, epoch errors, a lost connection) are retried
//! after a metadata refresh, twice at most; those still failing get an error
//! message naming the Kafka error code.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::{codes, error_name, WireError};
use crate::requests::backoff;
use crate::types::{Isolation, OffsetSpec};

/// Attempts per partition: the first plus two after a metadata refresh.
const ATTEMPTS: u32 = 3;

type Key = (String, i32);

fn leader_moved(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_LEADER_OR_FOLLOWER
            | codes::LEADER_NOT_AVAILABLE
            | codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::FENCED_LEADER_EPOCH
            | codes::UNKNOWN_LEADER_EPOCH
            | codes::OFFSET_NOT_AVAILABLE
    )
}

pub(crate) async fn list_offsets(
    cluster: &Cluster,
    partitions: &[(String, i32)],
    spec: OffsetSpec,
    isolation: Isolation,
    deadline: Instant,
) -> HashMap<Key, Result<i64, String>> {
    let mut out: HashMap<Key, Result<i64, String>> = HashMap::new();
    let mut todo: Vec<Key> = Vec::new();
    for p in partitions {
        if !todo.contains(p) {
            todo.push(p.clone());
        }
    }
    let mut attempt = 0;
    while !todo.is_empty() {
        attempt += 1;
        let last = attempt >= ATTEMPTS;
        let metadata = match if attempt == 1 {
            cluster.metadata(deadline).await
        } else {
            cluster.refresh_metadata(deadline).await
        } {
            Ok(md) => md,
            Err(e) => {
                for p in todo {
                    out.insert(p, Err(e.to_string()));
                }
                break;
            }
        };
        let mut retry: Vec<(Key, String)> = Vec::new();
        let mut by_leader: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        for key in todo {
            match metadata.leader(&key.0, key.1) {
                Ok(addr) => by_leader.entry(addr.to_string()).or_default().push(key),
                Err(code) => {
                    let message = format!(
                        "{} ({code}) in the cluster metadata for topic {:?} partition {}",
                        error_name(code),
                        key.0,
                        key.1
                    );
                    retry.push((key, message));
                }
            }
        }
        let requests = by_leader.into_iter().map(|(addr, keys)| async move {
            (
                send(cluster, &addr, &keys, spec, isolation, deadline).await,
                keys,
            )
        });
        for (answer, keys) in join_all(requests).await {
            match answer {
                Err(e) => {
                    let retriable = e.is_transport();
                    for key in keys {
                        if retriable {
                            retry.push((key, e.to_string()));
                        } else {
                            out.insert(key, Err(e.to_string()));
                        }
                    }
                }
                Ok(results) => {
                    for (key, result) in results {
                        match result {
                            Ok(offset) => {
                                out.insert(key, Ok(offset));
                            }
                            Err((code, message)) if leader_moved(code) => {
                                retry.push((key, message))
                            }
                            Err((_, message)) => {
                                out.insert(key, Err(message));
                            }
                        }
                    }
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        if last || !backoff(attempt, deadline).await {
            for (key, message) in retry {
                out.insert(key, Err(message));
            }
            break;
        }
        cluster.invalidate_metadata();
        todo = retry.into_iter().map(|(k, _)| k).collect();
    }
    out
}

type PartitionResult = Result<i64, (i16, String)>;

/// One ListOffsets request to the leader at `addr` for `keys`.
async fn send(
    cluster: &Cluster,
    addr: &str,
    keys: &[Key],
    spec: OffsetSpec,
    isolation: Isolation,
    deadline: Instant,
) -> Result<Vec<(Key, PartitionResult)>, WireError> {
    let conn = cluster.connection(addr, deadline).await?;
    // isolation_level exists from v2 on.
    let min = if isolation == Isolation::ReadCommitted {
        2
    } else {
        1
    };
    let version = conn.version::<ListOffsetsRequest>(min, 10)?;
    let timestamp = match spec {
        OffsetSpec::Latest => -1,
        OffsetSpec::Earliest => -2,
    };
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in keys {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let mut request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string((*topic).to_string())))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    if version >= 2 {
        request = request.with_isolation_level(match isolation {
            Isolation::ReadUncommitted => 0,
            Isolation::ReadCommitted => 1,
        });
    }
    if version >= 10 {
        let ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        request = request.with_timeout_ms(i32::try_from(ms).unwrap_or(i32::MAX));
    }
    let response = conn.send(&request, version, deadline).await?;
    let mut answered: HashMap<Key, PartitionResult> = HashMap::new();
    for t in response.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let key = (topic.clone(), p.partition_index);
            let result = if p.error_code == codes::NONE {
                Ok(p.offset)
            } else {
                let e = WireError::kafka(
                    addr,
                    "ListOffsets",
                    p.error_code,
                    format!("topic {topic:?} partition {}", p.partition_index),
                );
                Err((p.error_code, e.to_string()))
            };
            answered.insert(key, result);
        }
    }
    Ok(keys
        .iter()
        .map(|k| {
            let result = answered.remove(k).unwrap_or_else(|| {
                Err((
                    -1,
                    format!(
                        "ListOffsets to broker {addr}: no answer for topic {:?} partition {}",
                        k.0, k.1
                    ),
                ))
            });
            (k.clone(), result)
        })
        .collect())
}
