//! Prometheus metrics of the evaluator.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Handles to the evaluator's metrics (cheap to clone).
#[derive(Clone)]
pub struct EvaluatorMetrics {
    pub samples_consumed: IntCounter,
    pub bad_messages: IntCounter,
    pub alerts: IntCounterVec,
    pub firing: IntGauge,
    /// Notifications recorded but not sent, by reason (`silence`, `inhibited`).
    pub notifications_muted: IntCounterVec,
    /// Alert-state records that could not be written.
    pub alert_state_errors: IntCounter,
    /// Notifications a destination refused for good.
    pub notifications_rejected: IntCounter,
    /// Alerts whose latest notification some destination still owes.
    pub notifications_owed: IntGauge,
    /// Alert events that could not be published for history.
    pub event_log_errors: IntCounter,
    /// Metrics-topic messages not yet fetched by this instance.
    pub backlog_messages: IntGauge,
    /// Unix time (s) of the newest sample judged.
    pub judged_until: IntGauge,
    /// Samples refused for a time too far in the future or the past.
    pub samples_out_of_time: IntCounter,
    /// Burrow-style status of each judged group: 0 unknown, 1 ok, 2 warn,
    /// 3 stall, 4 stop, 5 rewind (the order of `lagwatch_rules::Status`).
    pub group_status: IntGaugeVec,
}

impl EvaluatorMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = EvaluatorMetrics {
            notifications_muted: IntCounterVec::new(
                Opts::new(
                    "lagwatch_notifications_muted_total",
                    "Alert notifications recorded but not sent, by reason",
                ),
                &["reason"],
            )?,
            alert_state_errors: IntCounter::new(
                "lagwatch_alert_state_errors_total",
                "Alert-state records that could not be written to the state topic",
            )?,
            notifications_rejected: IntCounter::new(
                "lagwatch_notifications_rejected_total",
                "Notifications a destination refused for good (recorded on the alert)",
            )?,
            notifications_owed: IntGauge::new(
                "lagwatch_notifications_owed",
                "Alerts whose latest notification is not yet confirmed by every destination",
            )?,
            backlog_messages: IntGauge::new(
                "lagwatch_evaluator_backlog_messages",
                "Metrics-topic messages of this instance's partitions not yet read",
            )?,
            judged_until: IntGauge::new(
                "lagwatch_evaluator_judged_until_timestamp_seconds",
                "Unix time of the newest sample the evaluator judged",
            )?,
            group_status: IntGaugeVec::new(
                Opts::new(
                    "lagwatch_group_status",
                    "Status of the group at its latest sample: 0 unknown, 1 ok, 2 warn, 3 stall, 4 stop, 5 rewind",
                ),
                &["cluster", "consumergroup"],
            )?,
            samples_out_of_time: IntCounter::new(
                "lagwatch_evaluator_samples_out_of_time_total",
                "Samples refused because their time is too far in the future or the past",
            )?,
            event_log_errors: IntCounter::new(
                "lagwatch_alert_event_errors_total",
                "Alert events that could not be published to the alert-event topic",
            )?,
            samples_consumed: IntCounter::new(
                "lagwatch_evaluator_samples_consumed_total",
                "Group samples read from the metrics topic",
            )?,
            bad_messages: IntCounter::new(
                "lagwatch_evaluator_bad_messages_total",
                "Metrics-topic messages that could not be decoded (logged, skipped)",
            )?,
            alerts: IntCounterVec::new(
                Opts::new(
                    "lagwatch_evaluator_alert_transitions_total",
                    "Alert transitions",
                ),
                &["state"],
            )?,
            firing: IntGauge::new(
                "lagwatch_evaluator_alerts_firing",
                "Alerts currently firing",
            )?,
        };
        registry.register(Box::new(metrics.notifications_muted.clone()))?;
        registry.register(Box::new(metrics.alert_state_errors.clone()))?;
        registry.register(Box::new(metrics.notifications_rejected.clone()))?;
        registry.register(Box::new(metrics.notifications_owed.clone()))?;
        registry.register(Box::new(metrics.event_log_errors.clone()))?;
        registry.register(Box::new(metrics.samples_out_of_time.clone()))?;
        registry.register(Box::new(metrics.group_status.clone()))?;
        registry.register(Box::new(metrics.backlog_messages.clone()))?;
        registry.register(Box::new(metrics.judged_until.clone()))?;
        registry.register(Box::new(metrics.samples_consumed.clone()))?;
        registry.register(Box::new(metrics.bad_messages.clone()))?;
        registry.register(Box::new(metrics.alerts.clone()))?;
        registry.register(Box::new(metrics.firing.clone()))?;
        Ok(metrics)
    }
}
