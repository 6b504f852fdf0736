//! The metrics-topic consumer loop.
//!
//! Reads samples, runs group samples through the [`Engine`] and broker
//! samples through the [`BrokerEngine`] and hands alert transitions to the
//! [`Notifier`] (silences, inhibition, repeats, the durable alert state,
//! the outbox). A message's offset is committed once it was judged and its
//! transitions recorded in the alert state. Nothing here waits for a sink
//! or for ClickHouse: sinks sit behind the outbox, and history is a stage
//! of its own reading the same topic in its own consumer group.

use lagwatch_kafka::{consumer_backlog, ClusterConfig, Progress};
use lagwatch_store::monitor_watch::MonitorList;
use std::sync::Arc;

use lagwatch_model::{
    decode_message, now_ms, AlertEvent, AlertState, DecodeError, MetricsMessage, Monitor,
    PartAssembler, Silence,
};
use lagwatch_rules::RuleSet;
use lagwatch_sinks::{Outbox, Report};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::alert_state::AlertStateStore;
use crate::broker_rules::{BrokerAlertRouting, BrokerEngine};
use crate::config::EvaluatorConfig;
use crate::engine::{AlertMemory, Engine};
use crate::event_log::EventLog;
use crate::metrics::{EvaluatorMetrics, StatusGauges};
use crate::monitor_index::MonitorIndex;
use crate::notifier::Notifier;

/// Errors that stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot create the metrics-topic consumer: {0}")]
    Create(String),
    #[error("cannot subscribe to metrics topic {topic}: {message}")]
    Subscribe { topic: String, message: String },
}

/// How often the backlog on the metrics topic is measured.
const BACKLOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for one watermark answer while measuring it.
const BACKLOG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the consumer loop hands data to.
pub struct Outputs {
    /// Where notifications go, and the destinations' reports.
    pub outbox: Outbox,
    pub reports: mpsc::UnboundedReceiver<Report>,
    /// Which shared sinks receive which team's alerts.
    pub routing: crate::routing::SharedSinkRouting,
}

/// What decides alerts and their notifications besides the monitors.
pub struct Alerting {
    /// The current monitors (kept fresh from the store).
    pub monitors: MonitorList,
    pub rules: Arc<RuleSet>,
    /// Durable alert state; `None` keeps it in memory only.
    pub state: Option<AlertStateStore>,
    pub silences: watch::Receiver<Vec<Silence>>,
    pub broker_routing: BrokerAlertRouting,
    /// Where notification records go for history; `None` = not kept.
    pub events: Option<EventLog>,
}

/// Consumes `topic` until `shutdown`; dropping the outbox on return lets
/// the sinks stop.
pub async fn run_consumer(
    cluster: &ClusterConfig,
    topic: &str,
    config: &EvaluatorConfig,
    alerting: Alerting,
    outputs: Outputs,
    metrics: EvaluatorMetrics,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let assigned = Arc::new(AtomicBool::new(false));
    let assigned_partitions = Arc::new(Mutex::new(Vec::new()));
    let context = AssignmentWatch {
        assigned: assigned.clone(),
        partitions: assigned_partitions.clone(),
    };
    // Partition → committed offset at assignment: messages before it were
    // judged by the previous owner and only warm the windows up.
    let mut warm_until: HashMap<i32, i64> = HashMap::new();
    // Groups too large for one message arrive in parts, judged whole.
    let mut parts = PartAssembler::default();
    // A killed instance's partitions (and alerts) move within seconds.
    let mut client = cluster.group_member_config();
    let consumer: Arc<StreamConsumer<AssignmentWatch>> = Arc::new(
        client
            .set("group.id", &config.consumer_group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create_with_context(context)
            .map_err(|e| ConsumerError::Create(e.to_string()))?,
    );
    consumer
        .subscribe(&[topic])
        .map_err(|e| ConsumerError::Subscribe {
            topic: topic.to_string(),
            message: e.to_string(),
        })?;
    tracing::info!(topic, group = %config.consumer_group, "evaluator consuming");

    let mut monitors = alerting.monitors.clone();
    let mut index = MonitorIndex::new(monitors.borrow_and_update().clone());
    let mut engine =
        Engine::with_rules(alerting.rules.clone()).with_vanish_grace(config.vanished_after);
    let mut brokers = BrokerEngine::new(alerting.rules.clone(), alerting.broker_routing.clone());
    let mut status_gauges = StatusGauges::default();
    if let Some(state) = &alerting.state {
        let memory: Arc<dyn AlertMemory> = Arc::new(state.clone());
        engine = engine.with_memory(memory.clone());
        brokers = brokers.with_memory(memory);
    }
    let mut reports = outputs.reports;
    let notifier = Notifier::new(
        outputs.outbox,
        alerting.state.clone(),
        alerting.silences.clone(),
        monitors.clone(),
        alerting.rules.clone(),
        metrics.clone(),
    );
    let mut notifier = notifier
        .with_redelivery_grace(config.redelivery_grace)
        .with_routing(outputs.routing)
        .with_broker_recipients(alerting.broker_routing.emails.clone());
    if let Some(events) = alerting.events.clone() {
        notifier = notifier.with_event_log(events);
    }
    let mut reminders = tokio::time::interval(config.repeat_check);
    let mut backlog_ticker = tokio::time::interval(BACKLOG_EVERY);
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(report) = reports.recv() => {
                notifier.report(report).await;
                metrics.notifications_owed.set(i64::try_from(notifier.undelivered()).unwrap_or(i64::MAX));
                continue;
            }
            _ = reminders.tick() => {
                notifier.repeat_due(now_ms()).await;
                continue;
            }
            Ok(()) = monitors.changed() => {
                // Monitors changed: close what they no longer back now,
                // not at the next sample (a deleted monitor has none).
                let current = monitors.borrow_and_update().clone();
                index = MonitorIndex::new(current.clone());
                engine.retain_monitors(&current);
                let resolves = notifier.obsolete(&current, now_ms());
                for resolve in &resolves {
                    engine.forget_group(resolve.monitor_id, &resolve.consumer_group);
                }
                notify_all(&mut notifier, resolves, &metrics).await;
                metrics
                    .firing
                    .set(i64::try_from(engine.firing()).unwrap_or(i64::MAX));
                continue;
            }
            _ = backlog_ticker.tick() => {
                let measured = Arc::clone(&consumer);
                let gauge = metrics.backlog_messages.clone();
                // Off the loop: the watermark requests block.
                tokio::task::spawn_blocking(move || {
                    if let Some(backlog) = consumer_backlog(measured.as_ref(), Progress::Fetched, BACKLOG_TIMEOUT) {
                        gauge.set(backlog);
                    }
                });
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(topic, error = %error, "metrics-topic consumer error");
                continue;
            }
        };
        if assigned.swap(false, Ordering::SeqCst) {
            if let Some(state) = &alerting.state {
                // Partitions moved here: know the previous owner's last
                // records before judging its replayed samples.
                let started = std::time::Instant::now();
                let caught_up = state.catch_up(std::time::Duration::from_secs(10)).await;
                tracing::info!(
                    caught_up,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "partitions assigned; alert state read to its end"
                );
            }
            let partitions: Vec<i32> = assigned_partitions
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            engine.retain_partitions(&partitions);
            let rewound = seek_back(&consumer, topic, &partitions, config.warm_up);
            let held_was_rewound = rewound.contains_key(&message.partition());
            warm_until.extend(rewound);
            if held_was_rewound {
                // Its partition now starts earlier: it comes again.
                continue;
            }
        }
        if let Some(&until) = warm_until.get(&message.partition()) {
            if message.offset() < until {
                // Judged by the previous owner: only fill the windows.
                if let Some(Ok(MetricsMessage::Group(sample))) = whole(
                    &mut parts,
                    decode_message(message.payload().unwrap_or_default()),
                ) {
                    if monitors.has_changed().unwrap_or(false) {
                        index = MonitorIndex::new(monitors.borrow_and_update().clone());
                    }
                    engine.warm_up(&sample, index.candidates(&sample.cluster, &sample.group));
                }
                continue;
            }
            warm_until.remove(&message.partition());
        }
        let payload = message.payload().unwrap_or_default();
        let Some(decoded) = whole(&mut parts, decode_message(payload)) else {
            // More parts of this sample are to come.
            continue;
        };
        match decoded {
            Ok(MetricsMessage::Group(sample)) if !in_time(sample.ts_ms, now_ms()) => {
                refuse_out_of_time(&metrics, &sample.cluster, &sample.group, sample.ts_ms);
            }
            Ok(MetricsMessage::Broker(sample)) if !in_time(sample.ts_ms, now_ms()) => {
                refuse_out_of_time(&metrics, &sample.cluster, "(brokers)", sample.ts_ms);
            }
            Ok(MetricsMessage::Group(sample)) => {
                metrics.samples_consumed.inc();
                metrics.judged_until.set(sample.ts_ms / 1_000);
                if monitors.has_changed().unwrap_or(false) {
                    index = MonitorIndex::new(monitors.borrow_and_update().clone());
                }
                let candidates: Vec<&Monitor> =
                    index.candidates(&sample.cluster, &sample.group).collect();
                engine.set_partition(message.partition());
                let alerts = engine.observe(&sample, candidates.iter().copied());
                let monitor_ids = || candidates.iter().map(|m| &m.id);
                if let Some(status) = engine.status_of(&sample.group, monitor_ids()) {
                    status_gauges.publish(
                        &metrics,
                        &sample.cluster,
                        &sample.group,
                        status,
                        &engine.partition_statuses_of(&sample.group, monitor_ids()),
                        sample.ts_ms,
                    );
                }
                status_gauges.sweep(&metrics, sample.ts_ms);
                for fingerprint in engine.take_recalled() {
                    notifier.adopt(&fingerprint).await;
                }
                notify_all(&mut notifier, alerts, &metrics).await;
                for change in engine.take_status_changes() {
                    notifier.record_status_change(change);
                }
                for gone in engine.take_vanished() {
                    tracing::info!(monitor_id = gone.monitor_id, cluster = %gone.cluster, group = %gone.group, topic = ?gone.topic, reason = %gone.reason, "watched subject vanished; resolving its alerts");
                    let resolves = notifier.vanished(&gone);
                    notify_all(&mut notifier, resolves, &metrics).await;
                }
                for (cluster, group) in engine.take_gone_groups() {
                    // Gone from the cluster: no stale status left behind.
                    status_gauges.forget(&metrics, &cluster, &group);
                }
                metrics
                    .firing
                    .set(i64::try_from(engine.firing()).unwrap_or(i64::MAX));
            }
            Ok(MetricsMessage::Broker(sample)) => {
                metrics.samples_consumed.inc();
                let alerts = brokers.observe(&sample);
                for fingerprint in brokers.take_recalled() {
                    notifier.adopt(&fingerprint).await;
                }
                notify_all(&mut notifier, alerts, &metrics).await;
            }
            // Put together by `whole` above.
            Ok(MetricsMessage::GroupPart(_)) => {}
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
        // Judged, and its transitions recorded in the alert state: the
        // next start may begin after it.
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

/// Notifies each transition (the notifier records it, sent or muted).
async fn notify_all(notifier: &mut Notifier, alerts: Vec<AlertEvent>, metrics: &EvaluatorMetrics) {
    for alert in alerts {
        metrics
            .alerts
            .with_label_values(&[alert.state.as_str()])
            .inc();
        log_transition(&alert);
        notifier.notify(alert).await;
    }
}

/// Notes partition assignments of the metrics-topic consumer.
struct AssignmentWatch {
    assigned: Arc<AtomicBool>,
    /// The partitions of the latest assignment.
    partitions: Arc<Mutex<Vec<i32>>>,
}

impl ClientContext for AssignmentWatch {}

impl ConsumerContext for AssignmentWatch {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                if let Ok(mut list) = self.partitions.lock() {
                    *list = partitions
                        .elements()
                        .iter()
                        .map(|p| p.partition())
                        .collect();
                }
                self.assigned.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Moves each newly assigned partition back to the first sample of the last
/// `span` (when that is before its committed offset); returns the partitions
/// moved with their committed offsets.
fn seek_back(
    consumer: &StreamConsumer<AssignmentWatch>,
    topic: &str,
    partitions: &[i32],
    span: std::time::Duration,
) -> HashMap<i32, i64> {
    let mut moved = HashMap::new();
    if span.is_zero() || partitions.is_empty() {
        return moved;
    }
    let timeout = std::time::Duration::from_secs(10);
    let since = now_ms().saturating_sub(i64::try_from(span.as_millis()).unwrap_or(i64::MAX));
    let mut wanted = TopicPartitionList::new();
    let mut times = TopicPartitionList::new();
    for &partition in partitions {
        wanted.add_partition(topic, partition);
        if times
            .add_partition_offset(topic, partition, Offset::Offset(since))
            .is_err()
        {
            return moved;
        }
    }
    let (committed, found) = match (
        consumer.committed_offsets(wanted, timeout),
        consumer.offsets_for_times(times, timeout),
    ) {
        (Ok(committed), Ok(found)) => (committed, found),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(error = %error, "cannot look up where to warm the windows up from; starting at the committed offsets");
            return moved;
        }
    };
    for &partition in partitions {
        let offset = |list: &TopicPartitionList| {
            list.find_partition(topic, partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
        };
        let (Some(committed), Some(start)) = (offset(&committed), offset(&found)) else {
            continue;
        };
        if start >= committed {
            continue;
        }
        match consumer.seek(topic, partition, Offset::Offset(start), timeout) {
            Ok(()) => {
                tracing::info!(
                    partition,
                    from = start,
                    judged_until = committed,
                    "warming windows up from the recent past"
                );
                moved.insert(partition, committed);
            }
            Err(error) => {
                tracing::warn!(partition, error = %error, "cannot seek back to warm the windows up")
            }
        }
    }
    moved
}

/// Samples judged at most this far ahead of the clock: more means a broken
/// or hostile producer, and judging it would move every alert's
/// judged-until guard (persisted) into the future.
const MAX_FUTURE_MS: i64 = 5 * 60 * 1_000;
/// Samples older than the metrics topic's retention (a week) plus a day
/// cannot come from a working collector.
const MAX_PAST_MS: i64 = 8 * 24 * 3_600 * 1_000;

/// The message as the engine takes it: a group part is held until its
/// sample is complete (`None` meanwhile), then handed on whole.
fn whole(
    parts: &mut PartAssembler,
    decoded: Result<MetricsMessage, DecodeError>,
) -> Option<Result<MetricsMessage, DecodeError>> {
    match decoded {
        Ok(MetricsMessage::GroupPart(part)) => {
            let dropped = parts.dropped();
            let (cluster, group) = (part.sample.cluster.clone(), part.sample.group.clone());
            let assembled = parts.add(part);
            if parts.dropped() > dropped {
                tracing::warn!(%cluster, %group, "an incomplete split sample was dropped (its first parts came before this instance's start); the next sample is judged whole");
            }
            assembled.map(|sample| Ok(MetricsMessage::Group(sample)))
        }
        other => Some(other),
    }
}

fn in_time(ts_ms: i64, now: i64) -> bool {
    ts_ms <= now.saturating_add(MAX_FUTURE_MS) && ts_ms >= now.saturating_sub(MAX_PAST_MS)
}

/// Counts a refused sample; logs the first and then every thousandth.
fn refuse_out_of_time(metrics: &EvaluatorMetrics, cluster: &str, group: &str, ts_ms: i64) {
    let refused = metrics.samples_out_of_time.get();
    metrics.samples_out_of_time.inc();
    if refused.is_multiple_of(1_000) {
        tracing::warn!(
            cluster,
            group,
            ts_ms,
            refused = refused + 1,
            "sample time too far from the clock; sample refused"
        );
    }
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

#[cfg(test)]
mod time_guard_tests {
    use super::*;

    #[test]
    fn samples_far_from_the_clock_are_refused() {
        let now = 1_800_000_000_000;
        assert!(in_time(now, now));
        assert!(in_time(now + MAX_FUTURE_MS, now));
        assert!(!in_time(now + MAX_FUTURE_MS + 1, now), "future");
        assert!(in_time(now - 3_600_000, now), "an hour late is a replay");
        assert!(!in_time(now - MAX_PAST_MS - 1, now), "older than retention");
        assert!(!in_time(i64::MAX, now) && !in_time(i64::MIN, now));
    }
}
