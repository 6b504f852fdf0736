//! Alerts: what fired or resolved, for which monitor, group and cluster.
//!
//! An [`AlertEvent`] says only what happened; who is told, whether it is a
//! reminder and why it was muted belong to a
//! [`Notification`](crate::Notification), so that nothing about the
//! recipients travels with the alert into shared topics or payloads.

use serde::{Deserialize, Serialize};

/// Lifecycle state carried by a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    #[default]
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// A partition over the threshold, listed in the notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaggingPartition {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// One alert transition (fired or resolved) for one monitor.
///
/// It names no recipient: a team's e-mail addresses and webhook URLs are
/// looked up by `monitor_id` when a [`Notification`](crate::Notification)
/// is sent. Records of older versions that still carry `emails` and
/// `webhooks` read fine (unknown fields are ignored).
///
/// `Default` is a firing event with every field empty: the base of
/// fixtures and of events built field by field (`..Default::default()`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable identity of the alert: rule + monitor + cluster + group.
    pub fingerprint: String,
    /// The rule that fired or resolved; its name on the wire.
    pub rule: crate::Rule,
    pub state: AlertState,
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    /// Largest partition lag at the time of the transition.
    pub max_lag: i64,
    /// Sum of the watched partitions' lag.
    pub total_lag: i64,
    /// The monitor's lag threshold (`lag_threshold` rule), or the lag
    /// tolerated as caught up (`lag_status` rule).
    pub threshold: i64,
    /// Time of the sample that caused the transition, ms since the epoch.
    pub ts_ms: i64,
    /// Partitions above the threshold (`lag_threshold`) or at the group's
    /// worst status (`lag_status`); empty on resolve.
    pub partitions: Vec<LaggingPartition>,
    /// Group status for window-status alerts (`lag_status` rule), lower-case
    /// as in `lagwatch_rules::Status` (`stall`, `stop`, `rewind` when
    /// firing; `ok` or `warn` when resolved). `None` for threshold alerts,
    /// and then left out of the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The topic of a per-topic alert (`topic_lag_threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The measured value the rule compared with `threshold` when it is not
    /// `max_lag`: summed lag, time lag in ms, or a broker metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The broker of a per-broker broker-rule alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// Why an alert resolved other than by its measurement, e.g. `monitor
    /// 12 was deleted`; shown in the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The group's Burrow-style window status at the sample that caused
    /// the event (`unknown`, `ok`, `warn`, `stall`, `stop`, `rewind`), on
    /// the events of every monitor rule, so each notification says how the
    /// consumer is doing besides what fired. `None` for broker and self
    /// alerts, when the `lag_status` rule is off for the group, and in
    /// records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_status: Option<String>,
}

/// Rule names as they appear in fingerprints, history and notifications.
pub mod rule {
    /// Largest partition offset lag above the monitor's threshold.
    pub const LAG_THRESHOLD: &str = "lag_threshold";
    /// Summed offset lag of one topic above the threshold.
    pub const TOPIC_LAG_THRESHOLD: &str = "topic_lag_threshold";
    /// Summed offset lag of all watched partitions above the threshold.
    pub const TOTAL_LAG_THRESHOLD: &str = "total_lag_threshold";
    /// Largest partition time lag above the threshold (ms).
    pub const TIME_LAG_THRESHOLD: &str = "time_lag_threshold";
    /// Burrow-style window status STALL / STOP / REWIND.
    pub const LAG_STATUS: &str = "lag_status";
    /// Prefix of broker rules (`broker:<name>`).
    pub const BROKER_PREFIX: &str = "broker:";
    /// Prefix of lagwatch's alerts about itself (`self:<check>`, e.g.
    /// `self:collector/prod`, `self:sink/email`).
    pub const SELF_PREFIX: &str = "self:";
}

impl AlertEvent {
    /// A one-line human summary of the transition (a reminder adds its
    /// tag in [`Notification::summary`](crate::Notification::summary)).
    /// Control characters of names are shown escaped
    /// ([`printable`](crate::printable)), so a group id cannot break it
    /// into lines.
    pub fn summary(&self) -> String {
        crate::printable(&self.raw_summary()).into_owned()
    }

    fn raw_summary(&self) -> String {
        if let crate::Rule::SelfCheck(check) = &self.rule {
            return match self.state {
                AlertState::Firing => format!(
                    "[FIRING] lagwatch {check}: {}",
                    self.reason.as_deref().unwrap_or("failing")
                ),
                AlertState::Resolved => format!("[RESOLVED] lagwatch {check} works again"),
            };
        }
        if let (AlertState::Resolved, Some(reason)) = (self.state, &self.reason) {
            return format!(
                "[RESOLVED] {} alert of group {} on {}: {reason}",
                self.rule, self.consumer_group, self.cluster
            );
        }
        self.transition_summary()
    }

    fn transition_summary(&self) -> String {
        let tag = match self.state {
            AlertState::Firing => "[FIRING]",
            AlertState::Resolved => "[RESOLVED]",
        };
        let value = self.value.unwrap_or(self.max_lag as f64);
        match &self.rule {
            crate::Rule::TopicLagThreshold => {
                return format!(
                    "{tag} lag of group {} on topic {} ({}) is {value} (threshold {})",
                    self.consumer_group,
                    self.topic.as_deref().unwrap_or("?"),
                    self.cluster,
                    self.threshold
                )
            }
            crate::Rule::TotalLagThreshold => {
                return format!(
                    "{tag} total lag of group {} on {} is {value} (threshold {})",
                    self.consumer_group, self.cluster, self.threshold
                )
            }
            crate::Rule::TimeLagThreshold => {
                return format!(
                    "{tag} group {} on {} is {}s behind (threshold {}s)",
                    self.consumer_group,
                    self.cluster,
                    (value / 1000.0).round(),
                    self.threshold / 1000
                )
            }
            crate::Rule::Broker(name) => {
                let scope = match self.broker {
                    Some(id) => format!("broker {id} of {}", self.cluster),
                    None => format!("cluster {}", self.cluster),
                };
                return format!("{tag} {name} on {scope}: value {value}");
            }
            _ => {}
        }
        if let Some(status) = &self.status {
            let status = status.to_uppercase();
            return match self.state {
                AlertState::Firing => format!(
                    "[FIRING] group {} on {} is {} ({} partitions)",
                    self.consumer_group,
                    self.cluster,
                    status,
                    self.partitions.len()
                ),
                AlertState::Resolved => format!(
                    "[RESOLVED] group {} on {} is back to {}",
                    self.consumer_group, self.cluster, status
                ),
            };
        }
        match self.state {
            AlertState::Firing => format!(
                "[FIRING] lag of group {} on {} is {} (threshold {})",
                self.consumer_group, self.cluster, self.max_lag, self.threshold
            ),
            AlertState::Resolved => format!(
                "[RESOLVED] lag of group {} on {} is back to {} (threshold {})",
                self.consumer_group, self.cluster, self.max_lag, self.threshold
            ),
        }
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::Rule;

    /// The JSON of an event as every version wrote it, with `{rule}` for
    /// the rule's name.
    const RECORD: &str = concat!(
        r#"{"fingerprint":"f","rule":"{rule}","state":"firing","monitor_id":7,"#,
        r#""team":"billing","cluster":"prod","consumer_group":"g","max_lag":900,"#,
        r#""total_lag":1200,"threshold":500,"ts_ms":1700000000000,"#,
        r#""partitions":[{"topic":"t","partition":0,"lag":900}]}"#
    );

    fn event(rule: Rule) -> AlertEvent {
        AlertEvent {
            fingerprint: "f".into(),
            rule,
            monitor_id: 7,
            team: "billing".into(),
            cluster: "prod".into(),
            consumer_group: "g".into(),
            max_lag: 900,
            total_lag: 1200,
            threshold: 500,
            ts_ms: 1_700_000_000_000,
            partitions: vec![LaggingPartition {
                topic: "t".into(),
                partition: 0,
                lag: 900,
            }],
            ..AlertEvent::default()
        }
    }

    fn every_kind() -> [(Rule, &'static str); 8] {
        [
            (Rule::LagThreshold, "lag_threshold"),
            (Rule::TopicLagThreshold, "topic_lag_threshold"),
            (Rule::TotalLagThreshold, "total_lag_threshold"),
            (Rule::TimeLagThreshold, "time_lag_threshold"),
            (Rule::LagStatus, "lag_status"),
            (
                Rule::Broker("offline_partitions".into()),
                "broker:offline_partitions",
            ),
            (Rule::SelfCheck("sink/email".into()), "self:sink/email"),
            (
                Rule::Other("from_a_newer_version".into()),
                "from_a_newer_version",
            ),
        ]
    }

    #[test]
    fn every_rule_kind_serializes_to_its_name_as_before() {
        for (rule, name) in every_kind() {
            let json = serde_json::to_string(&event(rule.clone())).expect("serializes");
            assert_eq!(json, RECORD.replace("{rule}", name), "{rule:?}");
            let back: AlertEvent = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back.rule, rule);
        }
    }

    #[test]
    fn records_of_older_versions_read_with_a_typed_rule() {
        let old = concat!(
            r#"{"fingerprint":"broker:offline_partitions/prod","#,
            r#""rule":"broker:offline_partitions","state":"resolved","monitor_id":0,"#,
            r#""team":"","cluster":"prod","consumer_group":"","max_lag":0,"#,
            r#""total_lag":0,"threshold":1,"ts_ms":5,"partitions":[],"#,
            r#""value":0.0,"broker":3,"status":"ok","#,
            r#""emails":["oncall@example.com"],"webhooks":["https://hooks.example"]}"#
        );
        let event: AlertEvent = serde_json::from_str(old).expect("old record reads");
        assert_eq!(event.rule, Rule::Broker("offline_partitions".into()));
        assert_eq!(event.state, AlertState::Resolved);
        assert_eq!(event.broker, Some(3));
        assert_eq!(event.status.as_deref(), Some("ok"));
        let json = serde_json::to_string(&event).expect("serializes");
        assert!(
            json.starts_with(
                r#"{"fingerprint":"broker:offline_partitions/prod","rule":"broker:offline_partitions","#
            ),
            "{json}"
        );
        assert!(!json.contains("emails"), "{json}");
    }

    #[test]
    fn an_empty_event_still_has_an_empty_rule_name() {
        let json = serde_json::to_value(AlertEvent::default()).expect("serializes");
        assert_eq!(json["rule"], "");
    }
}
