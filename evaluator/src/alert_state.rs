//! Alert state that outlives an evaluator process: a compacted Kafka topic
//! keyed by fingerprint.
//!
//! Every instance reads the whole topic at start (before it consumes any
//! sample) and keeps tailing it, so it knows every alert's last recorded
//! state, whichever instance wrote it. That serves three purposes:
//! - after a restart or a rebalance the [`Engine`](crate::Engine) takes over
//!   firing alerts instead of paging again ([`AlertMemory`]);
//! - a record whose notification was not confirmed delivered (`delivered:
//!   false`) is sent again by the instance that starts up — the outbox that
//!   keeps a kill -9 between "decided" and "sent" from losing a page;
//! - firing broker alerts that inhibit lag alerts are visible to every
//!   instance, not only the one evaluating the broker samples.
//!
//! Writes are awaited (acks=all) before the notification leaves, and the
//! metrics-topic offset of the sample that caused it is committed even
//! later (after history), so a crash at any point either replays the sample
//! (nothing was recorded) or finds the record.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lagwatch_kafka::{ensure_topic, ClusterConfig, TopicSpec};
use lagwatch_model::{AlertState, Notification};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::{AlertMemory, Remembered};
use crate::tail_progress::TailProgress;

/// Why the alert-state topic cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertStateError {
    #[error("alert-state topic {topic}: {message}")]
    Kafka { topic: String, message: String },
}

/// The last recorded state of one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Record format version ([`STATE_VERSION`]); records of the first
    /// format carry none and read as 1. Readers ignore unknown fields, so
    /// additions stay compatible; a change in meaning raises it.
    #[serde(default = "first_version")]
    pub v: u32,
    /// The latest notification of the alert (transition or reminder) as
    /// recorded: the alert, `repeat` and `muted_by`, never its recipients
    /// (every evaluator reads this topic; recipients are looked up by
    /// monitor id when a notification is sent again).
    pub event: Notification,
    /// Whether every destination has finished with the notification
    /// (confirmed it, or refused it for good); `false` means "still owed:
    /// send again after a crash".
    pub delivered: bool,
    /// Wall time the notification was last sent (transition or repeat).
    pub last_sent_ms: i64,
    /// A firing broker alert that mutes its cluster's lag alerts.
    #[serde(default)]
    pub inhibits: bool,
    /// Process that wrote the record (its own records are not re-read).
    pub writer: String,
    /// Destinations (outbox ids, no secrets) that still owe the
    /// notification; empty in records of older versions, which means all.
    #[serde(default)]
    pub pending: Vec<String>,
    /// Destinations that refused the notification for good, and why.
    #[serde(default)]
    pub failures: Vec<DeliveryFailure>,
}

/// A destination's permanent refusal of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    pub destination: String,
    pub reason: String,
}

/// The alert-state record format written by this build (docs/alert-records.md):
/// 3 since the `event` no longer carries recipients (`emails`, `webhooks`).
pub const STATE_VERSION: u32 = 3;

const fn first_version() -> u32 {
    1
}

impl StoredAlert {
    pub fn is_firing(&self) -> bool {
        self.event.alert.state == AlertState::Firing
    }
}

type Records = Arc<RwLock<HashMap<String, StoredAlert>>>;

/// Handle to the alert-state topic; cheap to clone.
#[derive(Clone)]
pub struct AlertStateStore {
    producer: FutureProducer,
    topic: String,
    records: Records,
    writer: String,
    /// The tailing consumer (its positions tell how far the map is).
    tail: Arc<BaseConsumer>,
    /// The tail thread's heartbeat and backlog (for `/readyz`).
    progress: TailProgress,
}

impl AlertStateStore {
    /// Creates the compacted topic when missing, reads it to its end, and
    /// tails it until `shutdown`.
    pub async fn open(
        cluster: &ClusterConfig,
        topic: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, AlertStateError> {
        let error = |message: String| AlertStateError::Kafka {
            topic: topic.to_string(),
            message,
        };
        let spec = TopicSpec {
            name: topic,
            partitions: 6,
            replication: -1,
            settings: &[
                ("cleanup.policy", "compact"),
                ("min.compaction.lag.ms", "60000"),
            ],
        };
        ensure_topic(cluster, &spec)
            .await
            .map_err(|e| error(e.to_string()))?;
        let producer: FutureProducer = cluster
            .client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| error(e.to_string()))?;
        let writer = format!("{}-{}", std::process::id(), lagwatch_model::now_ms());
        let records: Records = Arc::default();
        let consumer: BaseConsumer = cluster
            .client_config()
            .set("group.id", format!("lagwatch-alert-state-{writer}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(|e| error(e.to_string()))?;
        let consumer = Arc::new(consumer);
        let (reader, reader_records, reader_topic) =
            (consumer.clone(), records.clone(), topic.to_string());
        let loaded = tokio::task::spawn_blocking(move || {
            read_to_end(&reader, &reader_topic, &reader_records)
        })
        .await
        .map_err(|e| error(e.to_string()))?
        .map_err(error)?;
        tracing::info!(topic, records = loaded, "alert state loaded");
        let (tail_records, tail_writer, tail_topic, tail) = (
            records.clone(),
            writer.clone(),
            topic.to_string(),
            consumer.clone(),
        );
        let progress = TailProgress::default();
        let tail_progress = progress.clone();
        std::thread::Builder::new()
            .name("alert-state-tail".into())
            .spawn(move || {
                let mut measured_at = std::time::Instant::now();
                while !shutdown.is_cancelled() {
                    let now = lagwatch_model::now_ms();
                    tail_progress.beat(now);
                    if measured_at.elapsed() >= Duration::from_secs(5) {
                        measured_at = std::time::Instant::now();
                        if let Some((at, high)) = tail_offsets(&consumer, &tail_topic) {
                            tail_progress.observe(at, high, now);
                        }
                    }
                    if let Some(result) = consumer.poll(Duration::from_millis(200)) {
                        match result {
                            Ok(message) => apply(&tail_records, &tail_writer, &message),
                            Err(e) => {
                                tracing::warn!(topic = %tail_topic, error = %e, "alert-state tail error")
                            }
                        }
                    }
                }
            })
            .map_err(|e| error(e.to_string()))?;
        Ok(AlertStateStore {
            producer,
            topic: topic.to_string(),
            records,
            writer,
            tail,
            progress,
        })
    }

    /// The tail's heartbeat and backlog, kept fresh by its thread.
    pub fn progress(&self) -> TailProgress {
        self.progress.clone()
    }

    /// Waits until the map holds everything written to the topic before
    /// this call (at most `timeout`). The evaluator calls it when it is
    /// assigned metrics-topic partitions: the previous owner recorded its
    /// last transitions before giving them up, and they must be known before
    /// the replayed samples are judged. Returns whether it caught up.
    pub async fn catch_up(&self, timeout: Duration) -> bool {
        let (tail, topic) = (self.tail.clone(), self.topic.clone());
        let result = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + timeout;
            let targets: Vec<(i32, i64)> = watermarks_once_led(&tail, &topic, timeout)
                .ok()?
                .into_iter()
                .map(|(partition, _, high)| (partition, high))
                .collect();
            loop {
                let positions = tail.position().ok()?;
                let behind = targets.iter().any(|(partition, high)| {
                    let at = positions
                        .find_partition(&topic, *partition)
                        .and_then(|p| p.offset().to_raw())
                        .unwrap_or(0);
                    *high > 0 && at < *high
                });
                if !behind {
                    return Some(());
                }
                if std::time::Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .await;
        matches!(result, Ok(Some(())))
    }

    /// Records `alert` durably (awaits the broker's acknowledgement).
    pub async fn put(&self, mut alert: StoredAlert) -> Result<(), AlertStateError> {
        alert.writer = self.writer.clone();
        let payload = serde_json::to_vec(&alert).map_err(|e| AlertStateError::Kafka {
            topic: self.topic.clone(),
            message: e.to_string(),
        })?;
        let key = alert.event.alert.fingerprint.clone();
        if let Ok(mut records) = self.records.write() {
            records.insert(key.clone(), alert);
        }
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(&key).payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| AlertStateError::Kafka {
                topic: self.topic.clone(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// The last record of one alert.
    pub fn get(&self, fingerprint: &str) -> Option<StoredAlert> {
        self.records.read().ok()?.get(fingerprint).cloned()
    }

    /// This process's writer id (records it wrote carry it).
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The fingerprint of a firing broker alert that inhibits `cluster`'s
    /// lag alerts, if any.
    pub fn inhibitor(&self, cluster: &str) -> Option<String> {
        let records = self.records.read().ok()?;
        records
            .values()
            .find(|r| r.inhibits && r.is_firing() && r.event.alert.cluster == cluster)
            .map(|r| r.event.alert.fingerprint.clone())
    }
}

impl AlertMemory for AlertStateStore {
    fn recall(&self, fingerprint: &str) -> Option<Remembered> {
        let records = self.records.read().ok()?;
        let record = records.get(fingerprint)?;
        Some(Remembered {
            firing: record.is_firing(),
            as_of_ms: record.event.alert.ts_ms,
            status: record.event.alert.status.clone(),
        })
    }
}

/// The tail's position and the topic's high watermarks, each summed over
/// the assigned partitions whose position is known. One short watermark
/// request per partition; `None` as soon as one is not answered (a broker
/// outage must not hold the tail thread for long).
fn tail_offsets(consumer: &BaseConsumer, topic: &str) -> Option<(i64, i64)> {
    let positions = consumer.position().ok()?;
    let (mut at, mut high) = (0i64, 0i64);
    for partition in positions.elements_for_topic(topic) {
        // A position not known yet (negative) says nothing.
        let Some(position) = partition.offset().to_raw().filter(|p| *p >= 0) else {
            continue;
        };
        let (_, end) = consumer
            .fetch_watermarks(topic, partition.partition(), Duration::from_secs(1))
            .ok()?;
        at = at.saturating_add(position);
        high = high.saturating_add(end.max(position));
    }
    Some((at, high))
}

/// The partition ids of `topic`.
fn partitions_of(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// `(partition, low, high)` of every partition of `topic`. A topic just
/// created may have no partitions or no leaders yet (NOT_LEADER,
/// LEADER_NOT_AVAILABLE): retried until `patience` runs out, then the last
/// error.
fn watermarks_once_led(
    consumer: &BaseConsumer,
    topic: &str,
    patience: Duration,
) -> Result<Vec<(i32, i64, i64)>, String> {
    let deadline = std::time::Instant::now() + patience;
    let timeout = Duration::from_secs(10);
    loop {
        let attempt = partitions_of(consumer, topic, timeout)
            .map_err(|e| format!("metadata: {e}"))
            .and_then(|partitions| {
                if partitions.is_empty() {
                    return Err("topic has no partitions (not created yet?)".to_string());
                }
                partitions
                    .into_iter()
                    .map(|partition| {
                        consumer
                            .fetch_watermarks(topic, partition, timeout)
                            .map(|(low, high)| (partition, low, high))
                            .map_err(|e| format!("watermarks of partition {partition}: {e}"))
                    })
                    .collect()
            });
        match attempt {
            Ok(watermarks) => return Ok(watermarks),
            Err(error) if std::time::Instant::now() >= deadline => return Err(error),
            Err(error) => {
                tracing::debug!(topic, error = %error, "alert-state topic not ready yet, retrying");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// Assigns every partition from the beginning and reads up to the high
/// watermarks seen now; returns how many records were read.
fn read_to_end(consumer: &BaseConsumer, topic: &str, records: &Records) -> Result<usize, String> {
    let watermarks = watermarks_once_led(consumer, topic, Duration::from_secs(30))?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for (partition, low, high) in watermarks {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| e.to_string())?;
        if high > low {
            remaining.insert(partition, high);
        }
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut read = 0;
    while !remaining.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "not read to its end within 120 s ({} partitions left)",
                remaining.len()
            ));
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                apply(records, "", &message);
                read += 1;
                let partition = message.partition();
                if remaining
                    .get(&partition)
                    .is_some_and(|high| message.offset() + 1 >= *high)
                {
                    remaining.remove(&partition);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {}
        }
    }
    Ok(read)
}

/// Applies one topic record to the map: latest wins, a tombstone deletes,
/// this process's own records are skipped (its map is already newer).
fn apply(records: &Records, own_writer: &str, message: &rdkafka::message::BorrowedMessage<'_>) {
    let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
        return;
    };
    let Ok(mut map) = records.write() else {
        return;
    };
    match message.payload() {
        None => {
            map.remove(key);
        }
        Some(payload) => match serde_json::from_slice::<StoredAlert>(payload) {
            Ok(record) if !own_writer.is_empty() && record.writer == own_writer => {}
            Ok(record) => {
                map.insert(key.to_string(), record);
            }
            Err(e) => tracing::warn!(key, error = %e, "skipping unreadable alert-state record"),
        },
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};

    use super::*;

    /// The record every evaluator reads names no recipient, and records of
    /// version 2 (which did) still read.
    #[test]
    fn records_carry_no_recipient_and_old_ones_read() {
        let mut monitor = MonitorBuilder::new("billing")
            .emails(&["oncall@example.com"])
            .build();
        monitor.alerting.webhooks = vec!["https://hooks.example.com/t?token=s3cret".into()];
        let record = StoredAlert {
            v: STATE_VERSION,
            event: AlertEventBuilder::firing(&monitor).notification(),
            delivered: false,
            last_sent_ms: 1,
            inhibits: false,
            writer: "w".into(),
            pending: vec!["email".into(), "monitor_webhook:0011223344556677".into()],
            failures: Vec::new(),
        };
        assert!(!record.event.recipients.is_empty());
        let bytes = serde_json::to_string(&record).expect("json");
        assert!(!bytes.contains("oncall@example.com"), "{bytes}");
        assert!(!bytes.contains("s3cret") && !bytes.contains("hooks.example.com"));
        let v2 = serde_json::json!({
            "v": 2, "delivered": false, "last_sent_ms": 1, "writer": "w",
            "event": {
                "fingerprint": "lag_threshold/1/local/billing", "rule": "lag_threshold",
                "state": "firing", "monitor_id": 1, "team": "payments", "cluster": "local",
                "consumer_group": "billing", "max_lag": 900, "total_lag": 900,
                "threshold": 500, "ts_ms": 5, "partitions": [],
                "emails": ["oncall@example.com"], "webhooks": ["https://hooks.example.com/x"],
                "muted_by": "silence 2"
            }
        });
        let old: StoredAlert = serde_json::from_value(v2).expect("version 2 record");
        assert!(old.is_firing());
        assert_eq!(old.event.muted_by.as_deref(), Some("silence 2"));
        assert!(old.event.recipients.is_empty());
    }
}
