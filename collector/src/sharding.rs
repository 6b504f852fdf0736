//! Spreads monitored groups over several collector instances, using Kafka's
//! own group protocol as the membership and failure detector.
//!
//! A small *shards topic* has one partition per shard. Every collector
//! instance subscribes to it in one consumer group; the partitions Kafka
//! assigns to an instance are the shards it owns. A consumer group belongs
//! to shard `fnv1a("cluster/group") % shards`, so every instance computes the
//! same mapping without talking to the others. When an instance stops, it
//! leaves the group and its shards move at once; when it dies, they move
//! after `session_timeout`. Nothing is ever written to the shards topic.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use lagwatch_kafka::{ensure_topic, ClusterConfig, TopicSpec, KEEP_A_WEEK};

use crate::publisher::PublishError;

/// Sharding settings (`[collector.sharding]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardingConfig {
    /// Consumer group shared by all collector instances.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Topic whose partitions are the shards (created if missing, on the
    /// metrics topic's cluster).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Number of shards; more shards than instances spreads load evenly.
    #[serde(default = "default_shards")]
    pub shards: i32,
    /// How fast a dead instance's shards move to the others.
    #[serde(with = "humantime_serde", default = "default_session_timeout")]
    pub session_timeout: Duration,
}

fn default_group() -> String {
    "lagwatch-collectors".to_string()
}
fn default_topic() -> String {
    "lagwatch-shards".to_string()
}
const fn default_shards() -> i32 {
    12
}
const fn default_session_timeout() -> Duration {
    Duration::from_secs(6)
}

/// The shard of a consumer group: stable across instances and restarts.
pub fn shard_of(cluster: &str, group: &str, shards: i32) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in cluster
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(group.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let shards = u64::try_from(shards.max(1)).unwrap_or(1);
    i32::try_from(hash % shards).unwrap_or(0)
}

/// Which shards this instance owns right now.
#[derive(Debug, Clone)]
pub struct Ownership {
    shards: i32,
    owned: watch::Receiver<Arc<BTreeSet<i32>>>,
}

impl Ownership {
    /// Whether this instance samples `group` of `cluster`.
    pub fn owns(&self, cluster: &str, group: &str) -> bool {
        self.owned
            .borrow()
            .contains(&shard_of(cluster, group, self.shards))
    }

    /// The shards owned now.
    pub fn current(&self) -> Arc<BTreeSet<i32>> {
        self.owned.borrow().clone()
    }

    /// Number of shards in the scheme.
    pub fn shards(&self) -> i32 {
        self.shards
    }
}

/// Joins the collector group and keeps [`Ownership`] current until
/// `shutdown`, then leaves the group so the shards move immediately.
pub async fn join(
    cluster: &ClusterConfig,
    config: &ShardingConfig,
    shutdown: CancellationToken,
) -> Result<Ownership, PublishError> {
    let spec = TopicSpec {
        name: &config.topic,
        partitions: config.shards,
        replication: 1,
        settings: KEEP_A_WEEK,
    };
    ensure_topic(cluster, &spec).await?;
    let timeout_ms = config.session_timeout.as_millis().max(6_000).to_string();
    let heartbeat_ms = (config.session_timeout.as_millis() / 3)
        .max(500)
        .to_string();
    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", &timeout_ms)
        .set("heartbeat.interval.ms", &heartbeat_ms)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()
        .map_err(|e| PublishError::Producer(format!("shard consumer: {e}")))?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(|e| PublishError::Producer(format!("shard subscription: {e}")))?;
    let (tx, rx) = watch::channel(Arc::new(BTreeSet::new()));
    let topic = config.topic.clone();
    std::thread::Builder::new()
        .name("lagwatch-shards".into())
        .spawn(move || {
            while !shutdown.is_cancelled() {
                // Nothing is produced to the topic: polling only drives the
                // group protocol (heartbeats, rebalances).
                let _ = consumer.poll(Duration::from_millis(200));
                let owned: BTreeSet<i32> = consumer
                    .assignment()
                    .map(|list| {
                        list.elements_for_topic(&topic)
                            .iter()
                            .map(|e| e.partition())
                            .collect()
                    })
                    .unwrap_or_default();
                if **tx.borrow() != owned {
                    tracing::info!(shards = ?owned, "collector shard assignment changed");
                    if tx.send(Arc::new(owned)).is_err() {
                        break;
                    }
                }
            }
            consumer.unsubscribe();
            tracing::info!("left the collector group");
        })
        .map_err(|e| PublishError::Producer(format!("shard thread: {e}")))?;
    Ok(Ownership {
        shards: config.shards,
        owned: rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_mapping_is_stable_and_spread() {
        assert_eq!(shard_of("c", "g", 12), shard_of("c", "g", 12));
        let used: BTreeSet<i32> = (0..200)
            .map(|i| shard_of("c", &format!("group-{i}"), 12))
            .collect();
        assert_eq!(used.len(), 12, "200 groups cover all 12 shards");
        assert!((0..200).all(|i| (0..12).contains(&shard_of("c", &format!("g{i}"), 12))));
        assert_ne!(
            shard_of("a", "g", 1000),
            shard_of("b", "g", 1000),
            "cluster is part of the key"
        );
    }
}
