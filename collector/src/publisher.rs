//! Publishes samples to the metrics topic.

use std::time::Duration;

use futures::future::join_all;
use lagwatch_model::{split_sample, MetricsMessage, MAX_MESSAGE_BYTES};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::metrics::CollectorMetrics;
use lagwatch_kafka::ClusterConfig;

/// Errors while setting up the metrics topic or its producer.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot create the metrics-topic producer: {0}")]
    Producer(String),
    #[error(transparent)]
    CreateTopic(#[from] lagwatch_kafka::KafkaError),
}

/// Producer for the metrics topic.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    metrics: CollectorMetrics,
}

impl Publisher {
    /// Creates an idempotent producer (no duplicates from retries) with
    /// unlimited retries within `delivery.timeout.ms`.
    pub fn new(
        cluster: &ClusterConfig,
        topic: &str,
        metrics: CollectorMetrics,
    ) -> Result<Self, PublishError> {
        let producer = cluster
            .client_config()
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "120000")
            .create()
            .map_err(|e| PublishError::Producer(e.to_string()))?;
        Ok(Publisher {
            producer,
            topic: topic.to_string(),
            metrics,
        })
    }

    /// Sends every message and waits for the broker's acknowledgement.
    /// Returns how many were not delivered (each is logged and counted).
    pub async fn publish(&self, messages: &[MetricsMessage]) -> usize {
        // Serialised once; a group too large for one message travels in
        // parts (same key, so same partition, in order).
        let mut records: Vec<(String, Vec<u8>)> = Vec::with_capacity(messages.len());
        for message in messages {
            let payload = message.to_json();
            match message {
                MetricsMessage::Group(sample) if payload.len() > MAX_MESSAGE_BYTES => {
                    let parts = split_sample(sample.clone(), MAX_MESSAGE_BYTES);
                    tracing::debug!(group = %sample.group, bytes = payload.len(), parts = parts.len(), "sample split into parts");
                    records.extend(parts.iter().map(|part| (part.key(), part.to_json())));
                }
                _ => records.push((message.key(), payload)),
            }
        }
        let sends = records.iter().map(|(key, payload)| async move {
            let record = FutureRecord::to(&self.topic).key(key).payload(payload);
            let result = self
                .producer
                .send(record, Timeout::After(Duration::from_secs(120)))
                .await;
            (key, result)
        });
        let mut failed = 0;
        for (key, result) in join_all(sends).await {
            match result {
                Ok(_) => self.metrics.samples_published.inc(),
                Err((error, _)) => {
                    failed += 1;
                    self.metrics.publish_errors.inc();
                    tracing::error!(topic = %self.topic, key = %key, error = %error, "sample not delivered to the metrics topic");
                }
            }
        }
        failed
    }
}
