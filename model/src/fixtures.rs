//! Test fixtures: builders for the monitors and alert events that tests of
//! every crate need, so a test names only the fields it is about and every
//! other field has one plausible value (team `payments`, cluster `local`,
//! topic `orders`, threshold 500, recipient `oncall@example.com`) instead
//! of a struct literal repeated, and kept in step with new fields, in each
//! test. Built for this crate's tests and, with the `fixtures` feature,
//! for other crates' (as a dev-dependency only).

use crate::alert::rule;
use crate::{
    AlertEvent, AlertSettings, AlertState, GroupMatch, Monitor, NewMonitor, Notification,
    Recipients, Rule,
};

/// A [`Monitor`] (or [`NewMonitor`]) of group `group` with the defaults of
/// the module docs, changed field by field.
#[derive(Debug, Clone)]
pub struct MonitorBuilder {
    id: i64,
    monitor: NewMonitor,
}

impl MonitorBuilder {
    pub fn new(group: &str) -> Self {
        MonitorBuilder {
            id: 1,
            monitor: NewMonitor {
                team: "payments".into(),
                cluster: "local".into(),
                consumer_group: group.into(),
                group_match: GroupMatch::default(),
                topics: vec!["orders".into()],
                topic_regex: None,
                lag_threshold: 500,
                for_secs: 0,
                emails: vec!["oncall@example.com".into()],
                isolation: Default::default(),
                time_lag: Default::default(),
                alerting: AlertSettings::default(),
            },
        }
    }

    pub fn id(mut self, id: i64) -> Self {
        self.id = id;
        self
    }

    pub fn team(mut self, team: &str) -> Self {
        self.monitor.team = team.into();
        self
    }

    pub fn cluster(mut self, cluster: &str) -> Self {
        self.monitor.cluster = cluster.into();
        self
    }

    /// `consumer_group` is a whole-name pattern.
    pub fn group_regex(mut self) -> Self {
        self.monitor.group_match = GroupMatch::Regex;
        self
    }

    pub fn topics(mut self, topics: &[&str]) -> Self {
        self.monitor.topics = topics.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn topic_regex(mut self, pattern: &str) -> Self {
        self.monitor.topic_regex = Some(pattern.into());
        self
    }

    pub fn lag_threshold(mut self, threshold: i64) -> Self {
        self.monitor.lag_threshold = threshold;
        self
    }

    pub fn for_secs(mut self, secs: u64) -> Self {
        self.monitor.for_secs = secs;
        self
    }

    pub fn emails(mut self, emails: &[&str]) -> Self {
        self.monitor.emails = emails.iter().map(|e| e.to_string()).collect();
        self
    }

    pub fn isolation(mut self, isolation: crate::Isolation) -> Self {
        self.monitor.isolation = isolation;
        self
    }

    pub fn time_lag(mut self, mode: crate::TimeLagMode) -> Self {
        self.monitor.time_lag = mode;
        self
    }

    pub fn alerting(mut self, alerting: AlertSettings) -> Self {
        self.monitor.alerting = alerting;
        self
    }

    /// The monitor as registered, with its id.
    pub fn build(self) -> Monitor {
        let m = self.monitor;
        Monitor {
            id: self.id,
            team: m.team,
            cluster: m.cluster,
            consumer_group: m.consumer_group,
            group_match: m.group_match,
            topics: m.topics,
            topic_regex: m.topic_regex,
            lag_threshold: m.lag_threshold,
            for_secs: m.for_secs,
            emails: m.emails,
            isolation: m.isolation,
            time_lag: m.time_lag,
            alerting: m.alerting,
        }
    }

    /// The monitor about to be registered (no id).
    pub fn build_new(self) -> NewMonitor {
        self.monitor
    }
}

/// An [`AlertEvent`] of a monitor's `lag_threshold` rule, firing, changed
/// field by field; every field not set stays empty (`AlertEvent::default`).
#[derive(Debug, Clone)]
pub struct AlertEventBuilder {
    event: AlertEvent,
    /// The monitor's receivers, for [`AlertEventBuilder::notification`].
    recipients: Recipients,
}

impl AlertEventBuilder {
    /// A firing `lag_threshold` event of `monitor` with its team, cluster,
    /// group, threshold and recipients.
    pub fn firing(monitor: &Monitor) -> Self {
        AlertEventBuilder {
            event: AlertEvent {
                fingerprint: format!(
                    "{}:{}:{}",
                    rule::LAG_THRESHOLD,
                    monitor.id,
                    monitor.consumer_group
                ),
                rule: Rule::LagThreshold,
                state: AlertState::Firing,
                monitor_id: monitor.id,
                team: monitor.team.clone(),
                cluster: monitor.cluster.clone(),
                consumer_group: monitor.consumer_group.clone(),
                threshold: monitor.lag_threshold,
                ..AlertEvent::default()
            },
            recipients: Recipients::of(monitor),
        }
    }

    pub fn resolved(mut self) -> Self {
        self.event.state = AlertState::Resolved;
        self
    }

    pub fn rule(mut self, rule: Rule) -> Self {
        self.event.rule = rule;
        self
    }

    pub fn fingerprint(mut self, fingerprint: &str) -> Self {
        self.event.fingerprint = fingerprint.into();
        self
    }

    /// The largest and the summed lag.
    pub fn lag(mut self, max_lag: i64, total_lag: i64) -> Self {
        self.event.max_lag = max_lag;
        self.event.total_lag = total_lag;
        self
    }

    pub fn ts_ms(mut self, ts_ms: i64) -> Self {
        self.event.ts_ms = ts_ms;
        self
    }

    pub fn partition(mut self, topic: &str, partition: i32, lag: i64) -> Self {
        self.event.partitions.push(crate::LaggingPartition {
            topic: topic.into(),
            partition,
            lag,
        });
        self
    }

    pub fn build(self) -> AlertEvent {
        self.event
    }

    /// A transition of the alert to the monitor's receivers.
    pub fn notification(self) -> Notification {
        Notification::new(self.event).to(self.recipients)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_defaults_and_change_only_what_is_named() {
        let monitor = MonitorBuilder::new("billing")
            .id(7)
            .team("search")
            .lag_threshold(900)
            .build();
        assert_eq!(
            (monitor.id, monitor.team.as_str(), monitor.cluster.as_str()),
            (7, "search", "local")
        );
        assert_eq!(monitor.topics, vec!["orders".to_string()]);
        assert_eq!(monitor.lag_threshold, 900);
        let new = MonitorBuilder::new("billing").topics(&[]).build_new();
        assert!(new.topics.is_empty());

        let event = AlertEventBuilder::firing(&monitor)
            .lag(1_200, 1_500)
            .partition("orders", 0, 1_200)
            .resolved()
            .build();
        assert_eq!(event.state, AlertState::Resolved);
        assert_eq!((event.monitor_id, event.threshold), (7, 900));
        assert_eq!(event.partitions.len(), 1);
        assert_eq!(event.topic, None);
        let notification = AlertEventBuilder::firing(&monitor).notification();
        assert_eq!(
            notification.recipients.emails,
            vec!["oncall@example.com".to_string()]
        );
        assert!(!notification.repeat);
    }
}
