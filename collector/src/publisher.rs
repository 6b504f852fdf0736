//! Publishes samples to the metrics topic.

use std::time::Duration;

use futures::future::join_all;
use lagwatch_model::MetricsMessage;
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
        let sends = messages.iter().map(|message| async move {
            let key = message.key();
            let payload = message.to_json();
            let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
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
