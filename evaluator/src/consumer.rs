//! The metrics-topic consumer loop.
//!
//! Reads samples, runs them through the [`Engine`], hands alert transitions
//! to every sink and samples plus transitions to the history writer. The
//! consumer's offset for a message is stored only after the message was
//! fully handed on; the channels are bounded, so a slow sink or ClickHouse
//! slows consumption instead of losing data.

use lagwatch_collector::monitor_watch::MonitorList;
use lagwatch_collector::ClusterConfig;
use lagwatch_model::{decode_message, AlertEvent, AlertState, MetricsMessage};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::EvaluatorConfig;
use crate::engine::Engine;
use crate::history::HistoryRecord;
use crate::metrics::EvaluatorMetrics;

/// Errors that stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot create the metrics-topic consumer: {0}")]
    Create(String),
    #[error("cannot subscribe to metrics topic {topic}: {message}")]
    Subscribe { topic: String, message: String },
}

/// Everything the consumer loop hands data to.
pub struct Outputs {
    pub history: mpsc::Sender<HistoryRecord>,
    pub sinks: Vec<mpsc::Sender<AlertEvent>>,
}

/// Consumes `topic` until `shutdown`; dropping the outputs on return lets
/// the sinks and the history writer drain.
pub async fn run_consumer(
    cluster: &ClusterConfig,
    topic: &str,
    config: &EvaluatorConfig,
    monitors: MonitorList,
    outputs: Outputs,
    metrics: EvaluatorMetrics,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let consumer: StreamConsumer = cluster
        .client_config()
        .set("group.id", &config.consumer_group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| ConsumerError::Create(e.to_string()))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| ConsumerError::Subscribe {
            topic: topic.to_string(),
            message: e.to_string(),
        })?;
    tracing::info!(topic, group = %config.consumer_group, "evaluator consuming");

    let mut engine = Engine::new();
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(topic, error = %error, "metrics-topic consumer error");
                continue;
            }
        };
        let payload = message.payload().unwrap_or_default();
        match decode_message(payload) {
            Ok(MetricsMessage::Group(sample)) => {
                metrics.samples_consumed.inc();
                let current = monitors.borrow().clone();
                let alerts = engine.observe(&sample, &current);
                metrics
                    .firing
                    .set(i64::try_from(engine.firing()).unwrap_or(i64::MAX));
                for alert in alerts {
                    metrics
                        .alerts
                        .with_label_values(&[alert.state.as_str()])
                        .inc();
                    log_transition(&alert);
                    for sink in &outputs.sinks {
                        if sink.send(alert.clone()).await.is_err() {
                            tracing::error!(fingerprint = %alert.fingerprint, "a sink stopped; alert not handed to it");
                        }
                    }
                    if outputs
                        .history
                        .send(HistoryRecord::Alert(alert))
                        .await
                        .is_err()
                    {
                        tracing::error!("history writer stopped; alert event not recorded");
                    }
                }
                if outputs
                    .history
                    .send(HistoryRecord::Sample(sample))
                    .await
                    .is_err()
                {
                    tracing::error!("history writer stopped; sample not recorded");
                }
            }
            Err(error) => {
                metrics.bad_messages.inc();
                tracing::error!(
                    topic,
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %error,
                    "skipping undecodable metrics-topic message"
                );
            }
        }
        if let Err(error) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %error, "cannot store consumer offset");
        }
    }
    if let Err(error) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %error, "final offset commit failed");
    }
    tracing::info!("evaluator stopped");
    Ok(())
}

fn log_transition(alert: &AlertEvent) {
    match alert.state {
        AlertState::Firing => tracing::warn!(
            fingerprint = %alert.fingerprint,
            cluster = %alert.cluster,
            group = %alert.consumer_group,
            max_lag = alert.max_lag,
            threshold = alert.threshold,
            "alert firing"
        ),
        AlertState::Resolved => tracing::info!(
            fingerprint = %alert.fingerprint,
            cluster = %alert.cluster,
            group = %alert.consumer_group,
            max_lag = alert.max_lag,
            "alert resolved"
        ),
    }
}
