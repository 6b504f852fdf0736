//! Prometheus metrics of the evaluator, and [`StatusGauges`]: the window
//! status of every judged group (and of its partitions that are not OK) on
//! `/metrics`, with a log line at each group status transition.

use std::collections::{BTreeSet, HashMap};

use lagwatch_rules::Status;
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
    /// Notifications of a monitor's alert sent without the monitor's own
    /// recipients: the monitor was deleted and this process never knew
    /// them (recipients are not recorded), so only global destinations
    /// were told.
    pub notifications_without_recipients: IntCounter,
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
    /// The same number per partition, only for partitions whose status is
    /// not OK (see [`StatusGauges`]).
    pub partition_status: IntGaugeVec,
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
            notifications_without_recipients: IntCounter::new(
                "lagwatch_notifications_without_recipients_total",
                "Notifications of a deleted monitor's alert whose recipients this process never knew (sent to global destinations only)",
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
            partition_status: IntGaugeVec::new(
                Opts::new(
                    "lagwatch_partition_status",
                    "Status of a partition of the group at its latest sample, only while not ok: 0 unknown, 2 warn, 3 stall, 4 stop, 5 rewind",
                ),
                &["cluster", "consumergroup", "topic", "partition"],
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
        registry.register(Box::new(metrics.notifications_without_recipients.clone()))?;
        registry.register(Box::new(metrics.event_log_errors.clone()))?;
        registry.register(Box::new(metrics.samples_out_of_time.clone()))?;
        registry.register(Box::new(metrics.group_status.clone()))?;
        registry.register(Box::new(metrics.partition_status.clone()))?;
        registry.register(Box::new(metrics.backlog_messages.clone()))?;
        registry.register(Box::new(metrics.judged_until.clone()))?;
        registry.register(Box::new(metrics.samples_consumed.clone()))?;
        registry.register(Box::new(metrics.bad_messages.clone()))?;
        registry.register(Box::new(metrics.alerts.clone()))?;
        registry.register(Box::new(metrics.firing.clone()))?;
        Ok(metrics)
    }
}

/// `lagwatch_group_status`'s number of a status: its rank, least severe
/// first (0 unknown … 5 rewind).
pub fn status_code(status: Status) -> i64 {
    Status::ALL
        .iter()
        .position(|s| *s == status)
        .map_or(0, |rank| rank as i64)
}

/// What [`StatusGauges`] exported for one group.
#[derive(Debug, Default)]
struct Exported {
    status: Option<Status>,
    /// Partitions with a `lagwatch_partition_status` series.
    partitions: BTreeSet<(String, i32)>,
    /// Sample time of the group's latest published status.
    seen_ms: i64,
}

/// Keeps `lagwatch_group_status` and `lagwatch_partition_status` equal to
/// the engine's statuses, and logs each group status transition once.
///
/// Cardinality: a group has one series; a partition has one only while its
/// status is not OK (a healthy group of 500 partitions adds nothing), so
/// the partition family is bounded by the partitions that need a look.
/// Series of a group are removed when it is forgotten (gone from the
/// cluster, its monitor deleted) or has had no judged sample for
/// [`crate::status_rule::STALE_AFTER_MS`] of sample time.
#[derive(Debug, Default)]
pub struct StatusGauges {
    groups: HashMap<(String, String), Exported>,
    /// Sample time of the last sweep.
    last_sweep_ms: i64,
}

/// How often, in sample time, [`StatusGauges::sweep`] looks for stale groups.
const SWEEP_EVERY_MS: i64 = 60_000;

impl StatusGauges {
    /// Publishes the status of `group` judged at `ts_ms` and of its
    /// partitions; logs `from`/`to` when the group's status changed.
    pub fn publish(
        &mut self,
        metrics: &EvaluatorMetrics,
        cluster: &str,
        group: &str,
        status: Status,
        partitions: &[((String, i32), Status)],
        ts_ms: i64,
    ) {
        let exported = self
            .groups
            .entry((cluster.to_string(), group.to_string()))
            .or_default();
        if exported.status != Some(status) {
            tracing::info!(
                cluster,
                group,
                from = exported.status.map_or("none", Status::as_str),
                to = status.as_str(),
                "group status changed"
            );
            exported.status = Some(status);
        }
        exported.seen_ms = exported.seen_ms.max(ts_ms);
        metrics
            .group_status
            .with_label_values(&[cluster, group])
            .set(status_code(status));
        let mut now = BTreeSet::new();
        for ((topic, partition), status) in partitions {
            if *status == Status::Ok {
                continue;
            }
            let number = partition.to_string();
            metrics
                .partition_status
                .with_label_values(&[cluster, group, topic, &number])
                .set(status_code(*status));
            now.insert((topic.clone(), *partition));
        }
        for (topic, partition) in exported.partitions.difference(&now) {
            let _ = metrics.partition_status.remove_label_values(&[
                cluster,
                group,
                topic,
                &partition.to_string(),
            ]);
        }
        exported.partitions = now;
    }

    /// Removes every series of `group`.
    pub fn forget(&mut self, metrics: &EvaluatorMetrics, cluster: &str, group: &str) {
        let Some(exported) = self
            .groups
            .remove(&(cluster.to_string(), group.to_string()))
        else {
            return;
        };
        let _ = metrics.group_status.remove_label_values(&[cluster, group]);
        for (topic, partition) in &exported.partitions {
            let _ = metrics.partition_status.remove_label_values(&[
                cluster,
                group,
                topic,
                &partition.to_string(),
            ]);
        }
    }

    /// Removes the series of groups without a judged sample for
    /// [`crate::status_rule::STALE_AFTER_MS`] before `now_ms`; looks at
    /// most once a minute of sample time, so it is cheap per sample.
    pub fn sweep(&mut self, metrics: &EvaluatorMetrics, now_ms: i64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        let stale: Vec<(String, String)> = self
            .groups
            .iter()
            .filter(|(_, e)| now_ms.saturating_sub(e.seen_ms) > crate::status_rule::STALE_AFTER_MS)
            .map(|(key, _)| key.clone())
            .collect();
        for (cluster, group) in stale {
            self.forget(metrics, &cluster, &group);
        }
    }

    /// Number of groups with series.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group has series.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn scrape(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf8")
    }

    fn key(partition: i32) -> (String, i32) {
        ("orders".to_string(), partition)
    }

    #[test]
    fn status_codes_follow_severity() {
        assert_eq!(status_code(Status::Unknown), 0);
        assert_eq!(status_code(Status::Ok), 1);
        assert_eq!(status_code(Status::Warn), 2);
        assert_eq!(status_code(Status::Rewind), 5);
    }

    #[test]
    fn only_partitions_that_are_not_ok_have_series_and_they_go_away() {
        let registry = Registry::new();
        let metrics = EvaluatorMetrics::register(&registry).expect("register");
        let mut gauges = StatusGauges::default();
        let partitions = [(key(0), Status::Stall), (key(1), Status::Ok)];
        gauges.publish(&metrics, "c", "g", Status::Stall, &partitions, 1_000);
        let text = scrape(&registry);
        assert!(
            text.contains(r#"lagwatch_group_status{cluster="c",consumergroup="g"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"lagwatch_partition_status{cluster="c",consumergroup="g",partition="0",topic="orders"} 3"#), "{text}");
        assert!(
            !text.contains(r#"partition="1""#),
            "an OK partition has no series: {text}"
        );

        // Partition 0 recovers, partition 1 starts to fall behind.
        let partitions = [(key(0), Status::Ok), (key(1), Status::Warn)];
        gauges.publish(&metrics, "c", "g", Status::Warn, &partitions, 2_000);
        let text = scrape(&registry);
        assert!(!text.contains(r#"partition="0""#), "{text}");
        assert!(text.contains(r#"lagwatch_partition_status{cluster="c",consumergroup="g",partition="1",topic="orders"} 2"#), "{text}");

        // No sample for longer than the stale horizon: every series goes.
        gauges.sweep(&metrics, 2_000 + crate::status_rule::STALE_AFTER_MS + 1);
        let text = scrape(&registry);
        assert!(!text.contains("lagwatch_partition_status{"), "{text}");
        assert!(!text.contains("lagwatch_group_status{"), "{text}");
        assert!(gauges.is_empty());
    }

    #[test]
    fn a_forgotten_group_leaves_no_series() {
        let registry = Registry::new();
        let metrics = EvaluatorMetrics::register(&registry).expect("register");
        let mut gauges = StatusGauges::default();
        gauges.publish(
            &metrics,
            "c",
            "g",
            Status::Stop,
            &[(key(0), Status::Stop)],
            1,
        );
        gauges.publish(&metrics, "c", "h", Status::Ok, &[(key(0), Status::Ok)], 1);
        gauges.forget(&metrics, "c", "g");
        let text = scrape(&registry);
        assert!(!text.contains(r#"consumergroup="g""#), "{text}");
        assert!(
            text.contains(r#"lagwatch_group_status{cluster="c",consumergroup="h"} 1"#),
            "{text}"
        );
        assert_eq!(gauges.len(), 1);
    }
}
