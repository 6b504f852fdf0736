//! Publishes every notification record (transition, muted transition,
//! reminder, re-send) to the alert-event topic, which the history stage
//! stores in ClickHouse's `alert_events`.
//!
//! Why a topic and not a direct write: evaluation must never wait for
//! ClickHouse, and an event must survive a crash of either side. The
//! record is queued on an idempotent producer before the alert state is
//! written and awaited, so by the time a notification is recorded its
//! event is on its way; the history stage commits it only once stored.

use std::time::Duration;

use lagwatch_kafka::{ensure_topic, ClusterConfig, TopicSpec};
use lagwatch_model::Notification;
use prometheus::IntCounter;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Handle to the alert-event topic; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    producer: FutureProducer,
    topic: String,
    errors: IntCounter,
}

impl EventLog {
    /// Creates the topic when missing and the producer.
    pub async fn open(
        cluster: &ClusterConfig,
        topic: &str,
        errors: IntCounter,
    ) -> Result<Self, String> {
        ensure_topic(cluster, &TopicSpec::kept_a_week(topic))
            .await
            .map_err(|e| e.to_string())?;
        let producer: FutureProducer = cluster
            .client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .map_err(|e| format!("alert-event producer: {e}"))?;
        Ok(EventLog {
            producer,
            topic: topic.to_string(),
            errors,
        })
    }

    /// Queues `event` without waiting; a failure is logged and counted.
    pub fn publish(&self, notification: &Notification) {
        let event = &notification.alert;
        let payload = match serde_json::to_vec(notification) {
            Ok(payload) => payload,
            Err(error) => {
                self.errors.inc();
                tracing::error!(fingerprint = %event.fingerprint, error = %error, "cannot encode alert event");
                return;
            }
        };
        let record = FutureRecord::to(&self.topic)
            .key(&event.fingerprint)
            .payload(&payload);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                let errors = self.errors.clone();
                let fingerprint = event.fingerprint.clone();
                tokio::spawn(async move {
                    let failed =
                        match tokio::time::timeout(Duration::from_secs(300), delivery).await {
                            Ok(Ok(Ok(_))) => None,
                            Ok(Ok(Err((error, _)))) => Some(error.to_string()),
                            Ok(Err(_)) => Some("producer dropped".to_string()),
                            Err(_) => Some("no acknowledgement within 300 s".to_string()),
                        };
                    if let Some(error) = failed {
                        errors.inc();
                        tracing::error!(fingerprint = %fingerprint, error = %error, "alert event not recorded for history");
                    }
                });
            }
            Err((error, _)) => {
                self.errors.inc();
                tracing::error!(fingerprint = %event.fingerprint, error = %error, "alert event not queued for history");
            }
        }
    }
}
