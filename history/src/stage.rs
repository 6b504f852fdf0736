//! The history stage: its own consumer group on the metrics topic and the
//! alert-event topic, writing to ClickHouse and committing only what
//! ClickHouse has acknowledged.
//!
//! Why a stage of its own: alerting must never wait for history. With its
//! own consumer group, a ClickHouse outage (or a ClickHouse that accepts
//! and never answers) only makes this group lag — the topics keep the
//! samples and events within their retention — while the evaluator pages
//! on time. Several instances share the partitions like any consumer group.
//!
//! The stage also measures its own backlog (messages not stored yet, and
//! the time of the newest stored sample) in its metrics, which `/metrics`,
//! `/readyz` and the self-alerts read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lagwatch_kafka::{consumer_backlog, ensure_topic, ClusterConfig, Progress, TopicSpec};
use lagwatch_model::{decode_message, now_ms, MetricsMessage, Notification};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::marks::StoredMarks;
use crate::writer::{Checkpoint, DeadLetters, HistoryRecord, HistoryWriter};
use crate::{ClickHouseConfig, HistoryMetrics};

/// How often the backlog is measured.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);

/// Rows per dead-letter record (a row is a few hundred bytes of JSON).
const DEAD_LETTER_ROWS: usize = 1_000;

/// Where the history stage reads and what it reads.
#[derive(Debug, Clone)]
pub struct StageSettings {
    pub cluster: ClusterConfig,
    /// The metrics topic (samples of groups and brokers).
    pub metrics_topic: String,
    /// The alert-event topic the evaluator publishes every notification
    /// record to; empty = samples only.
    pub events_topic: String,
    /// Batches ClickHouse keeps refusing go here; empty = keep retrying.
    pub dead_letter_topic: String,
    /// The stage's consumer group.
    pub consumer_group: String,
    pub clickhouse: ClickHouseConfig,
}

/// Why the stage could not start.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("history stage: cannot create its Kafka client: {0}")]
    Client(String),
    #[error("history stage: cannot subscribe to {topics}: {message}")]
    Subscribe { topics: String, message: String },
    #[error("history stage: {0}")]
    Topic(#[from] lagwatch_kafka::KafkaError),
}

/// Runs the stage until `shutdown`; then stops reading, lets the writer
/// flush (within its retries) and commits what was stored.
pub async fn run_stage(
    settings: StageSettings,
    metrics: HistoryMetrics,
    shutdown: CancellationToken,
) -> Result<(), StageError> {
    let mut topics = vec![settings.metrics_topic.clone()];
    if !settings.events_topic.is_empty() {
        ensure_topic(
            &settings.cluster,
            &TopicSpec::kept_a_week(&settings.events_topic),
        )
        .await?;
        topics.push(settings.events_topic.clone());
    }
    let assigned = Arc::new(AtomicBool::new(false));
    let consumer: Arc<StreamConsumer<Reassigned>> = Arc::new(
        settings
            .cluster
            .group_member_config()
            .set("group.id", &settings.consumer_group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(Reassigned(Arc::clone(&assigned)))
            .map_err(|e| StageError::Client(e.to_string()))?,
    );
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(|e| StageError::Subscribe {
            topics: topics.join(", "),
            message: e.to_string(),
        })?;
    let mut writer = HistoryWriter::new(settings.clickhouse.clone(), metrics.clone());
    if !settings.dead_letter_topic.is_empty() {
        ensure_topic(
            &settings.cluster,
            &TopicSpec::kept_a_week(&settings.dead_letter_topic),
        )
        .await?;
        let producer: FutureProducer = settings
            .cluster
            .client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .map_err(|e| StageError::Client(e.to_string()))?;
        writer = writer.with_dead_letters(Arc::new(DeadLetterTopic {
            producer,
            topic: settings.dead_letter_topic.clone(),
        }));
    }
    tracing::info!(topics = ?topics, group = %settings.consumer_group, "history stage consuming");

    let (records, records_rx) = mpsc::channel(10_000);
    let (acks_tx, mut acks) = mpsc::channel(1_000);
    let writer_shutdown = shutdown.clone();
    let writer_task = tokio::spawn(async move {
        writer.run(records_rx, acks_tx, writer_shutdown).await;
    });
    let topic_names: HashMap<String, Arc<str>> = topics
        .iter()
        .map(|t| (t.clone(), Arc::from(t.as_str())))
        .collect();
    let mut backlog_ticker = tokio::time::interval(BACKLOG_EVERY);
    let mut stored_until_ms: Option<i64> = None;
    let mut marks = StoredMarks::default();
    let mut skipped = 0u64;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(stored) = acks.recv() => {
                stored_until_ms = stored.iter().map(|c| c.ts_ms).max().max(stored_until_ms);
                store_offsets(&consumer, &stored);
                if let Some(until) = stored_until_ms {
                    metrics.stored_until.set(until / 1_000);
                }
                continue;
            }
            _ = backlog_ticker.tick() => {
                measure_backlog(&consumer, &metrics).await;
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(error = %error, "history consumer error");
                continue;
            }
        };
        if assigned.swap(false, Ordering::SeqCst) {
            // New partitions start at their committed offsets, which may be
            // behind what an earlier owner stored: learn what is there.
            if skipped > 0 {
                tracing::info!(skipped, "samples read again and found stored were skipped");
                skipped = 0;
            }
            marks = match StoredMarks::load(&settings.clickhouse).await {
                Ok(marks) => marks,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read what history already stored; records read again may be stored twice");
                    StoredMarks::default()
                }
            };
        }
        let topic = topic_names
            .get(message.topic())
            .cloned()
            .unwrap_or_else(|| Arc::from(message.topic()));
        let payload = message.payload().unwrap_or_default();
        let (record, ts_ms) = if *topic == *settings.metrics_topic {
            match decode_message(payload) {
                Ok(MetricsMessage::Group(sample)) => {
                    let ts = sample.ts_ms;
                    if marks.has_sample(&sample.cluster, &sample.group, ts) {
                        skipped += 1;
                        (None, ts)
                    } else {
                        (Some(HistoryRecord::Sample(sample)), ts)
                    }
                }
                // Rows are per partition: each part is stored as it comes.
                // Another part of the newest stored sample may still be
                // missing, so only older samples count as stored.
                Ok(MetricsMessage::GroupPart(part)) => {
                    let ts = part.sample.ts_ms;
                    if marks.has_sample(
                        &part.sample.cluster,
                        &part.sample.group,
                        ts.saturating_add(1),
                    ) {
                        skipped += 1;
                        (None, ts)
                    } else {
                        (Some(HistoryRecord::Sample(part.sample)), ts)
                    }
                }
                Ok(MetricsMessage::Broker(sample)) => {
                    let ts = sample.ts_ms;
                    if marks.has_broker(&sample.cluster, sample.broker, ts) {
                        skipped += 1;
                        (None, ts)
                    } else {
                        (Some(HistoryRecord::Broker(sample)), ts)
                    }
                }
                Err(error) => {
                    tracing::warn!(topic = %topic, partition = message.partition(), offset = message.offset(), error = %error, "skipping undecodable metrics-topic message");
                    (None, 0)
                }
            }
        } else {
            match serde_json::from_slice::<Notification>(payload) {
                Ok(event) => {
                    let ts = event.alert.ts_ms;
                    (Some(HistoryRecord::Alert(Box::new(event))), ts)
                }
                Err(error) => {
                    tracing::warn!(topic = %topic, partition = message.partition(), offset = message.offset(), error = %error, "skipping undecodable alert event");
                    (None, 0)
                }
            }
        };
        let checkpoint = Checkpoint {
            topic,
            partition: message.partition(),
            offset: message.offset() + 1,
            ts_ms,
        };
        let sent = match record {
            Some(record) => records.send(record).await.is_ok(),
            None => true,
        };
        if !sent
            || records
                .send(HistoryRecord::Checkpoint(checkpoint))
                .await
                .is_err()
        {
            tracing::error!("history writer stopped");
            break;
        }
    }
    // Let the writer flush what it holds; its acknowledgements still count.
    drop(records);
    let drain = async {
        while let Some(stored) = acks.recv().await {
            store_offsets(&consumer, &stored);
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), drain)
        .await
        .is_err()
    {
        tracing::warn!("history writer did not finish within 20 s; unstored rows are read again at the next start");
    }
    writer_task.abort();
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %error, "final history offset commit failed");
    }
    tracing::info!("history stage stopped");
    Ok(())
}

/// Raises a flag when the member is assigned partitions.
struct Reassigned(Arc<AtomicBool>);

impl ClientContext for Reassigned {}

impl ConsumerContext for Reassigned {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// Stores each checkpoint's offset (the next one to read) for the next
/// commit, exactly as given (`rd_kafka_offsets_store` takes it as is).
fn store_offsets(consumer: &StreamConsumer<Reassigned>, checkpoints: &[Checkpoint]) {
    let mut positions = TopicPartitionList::with_capacity(checkpoints.len());
    for checkpoint in checkpoints {
        if let Err(error) = positions.add_partition_offset(
            &checkpoint.topic,
            checkpoint.partition,
            Offset::Offset(checkpoint.offset),
        ) {
            tracing::warn!(error = %error, "cannot store history offset");
        }
    }
    if positions.count() > 0 {
        if let Err(error) = consumer.store_offsets(&positions) {
            tracing::warn!(error = %error, "cannot store history offsets");
        }
    }
}

/// Messages of the assigned partitions not yet stored.
async fn measure_backlog(consumer: &Arc<StreamConsumer<Reassigned>>, metrics: &HistoryMetrics) {
    let consumer = Arc::clone(consumer);
    let measured = tokio::task::spawn_blocking(move || {
        consumer_backlog(
            consumer.as_ref(),
            Progress::Committed,
            Duration::from_secs(5),
        )
    })
    .await
    .ok()
    .flatten();
    if let Some(backlog) = measured {
        metrics.backlog_messages.set(backlog);
    }
}

/// Dead letters as JSON records on a topic, keyed by table.
struct DeadLetterTopic {
    producer: FutureProducer,
    topic: String,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    table: &'a str,
    reason: &'a str,
    ts_ms: i64,
    rows: &'a [String],
}

impl DeadLetters for DeadLetterTopic {
    fn keep(
        &self,
        table: &str,
        rows: Vec<String>,
        reason: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        // Chunks small enough for the default 1 MB message size.
        let payloads: Vec<Vec<u8>> = rows
            .chunks(DEAD_LETTER_ROWS)
            .map(|chunk| {
                let letter = DeadLetter {
                    table,
                    reason,
                    ts_ms: now_ms(),
                    rows: chunk,
                };
                serde_json::to_vec(&letter).unwrap_or_default()
            })
            .collect();
        let table = table.to_string();
        Box::pin(async move {
            for payload in payloads {
                let record = FutureRecord::to(&self.topic).key(&table).payload(&payload);
                if let Err((error, _)) = self.producer.send(record, Duration::from_secs(30)).await {
                    tracing::error!(topic = %self.topic, error = %error, "cannot write a dead letter; the batch stays pending");
                    return false;
                }
            }
            true
        })
    }
}
