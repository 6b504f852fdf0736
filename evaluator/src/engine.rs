//! Matches samples to monitors and runs the rules; pure, no I/O.

use std::collections::HashMap;

use lagwatch_model::{AlertEvent, AlertState, GroupSample, LaggingPartition, Matcher, Monitor};
use lagwatch_rules::{ThresholdRule, ThresholdState, Transition};

/// Name of the threshold rule in fingerprints and history.
pub const THRESHOLD_RULE: &str = "lag_threshold";

/// Alert state of every (monitor, group) this instance has seen samples
/// for; a monitor naming groups by pattern has one alert per group.
#[derive(Debug, Default)]
pub struct Engine {
    threshold: HashMap<(i64, String), ThresholdState>,
    matcher: Matcher,
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    /// Number of alerts currently firing.
    pub fn firing(&self) -> usize {
        self.threshold.values().filter(|s| s.firing).count()
    }

    /// Applies one sample to every monitor of its group; returns the alert
    /// transitions it caused.
    pub fn observe(&mut self, sample: &GroupSample, monitors: &[Monitor]) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        for monitor in monitors {
            if monitor.cluster != sample.cluster
                || !self.matcher.covers_group(monitor, &sample.group)
            {
                continue;
            }
            let watched: Vec<_> = sample
                .partitions
                .iter()
                .filter(|p| self.matcher.covers_topic(monitor, &p.topic))
                .collect();
            let isolation = monitor.isolation;
            let max_lag = watched.iter().filter_map(|p| p.lag_for(isolation)).max();
            let total_lag: i64 = watched.iter().filter_map(|p| p.lag_for(isolation)).sum();
            let rule = ThresholdRule {
                threshold: monitor.lag_threshold,
                for_ms: i64::try_from(monitor.for_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            };
            let state = self
                .threshold
                .entry((monitor.id, sample.group.clone()))
                .or_default();
            let alert_state = match state.observe(&rule, max_lag, sample.ts_ms) {
                Transition::None => continue,
                Transition::Fire => AlertState::Firing,
                Transition::Resolve => AlertState::Resolved,
            };
            let partitions = watched
                .iter()
                .filter_map(|p| {
                    let lag = p.lag_for(isolation)?;
                    (lag > monitor.lag_threshold).then(|| LaggingPartition {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        lag,
                    })
                })
                .collect();
            events.push(AlertEvent {
                fingerprint: fingerprint(monitor, &sample.group),
                rule: THRESHOLD_RULE.to_string(),
                state: alert_state,
                monitor_id: monitor.id,
                team: monitor.team.clone(),
                cluster: sample.cluster.clone(),
                consumer_group: sample.group.clone(),
                max_lag: max_lag.unwrap_or(0),
                total_lag,
                threshold: monitor.lag_threshold,
                ts_ms: sample.ts_ms,
                partitions,
                emails: monitor.emails.clone(),
            });
        }
        events
    }

    /// Forgets state of monitors that no longer exist.
    pub fn retain_monitors(&mut self, monitors: &[Monitor]) {
        self.threshold
            .retain(|(id, _), _| monitors.iter().any(|m| m.id == *id));
    }
}

/// Stable identity of a monitor's threshold alert on one group.
pub fn fingerprint(monitor: &Monitor, group: &str) -> String {
    format!(
        "{THRESHOLD_RULE}/{}/{}/{group}",
        monitor.id, monitor.cluster
    )
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{PartitionSample, WIRE_VERSION};

    use super::*;

    fn monitor(topics: &[&str]) -> Monitor {
        Monitor {
            id: 7,
            team: "payments".into(),
            cluster: "local".into(),
            consumer_group: "billing".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            lag_threshold: 500,
            for_secs: 0,
            emails: vec!["oncall@example.com".into()],
            isolation: Default::default(),
            time_lag: Default::default(),
            group_match: Default::default(),
            topic_regex: None,
        }
    }

    fn sample(ts_ms: i64, lags: &[(&str, i64)]) -> GroupSample {
        GroupSample {
            v: WIRE_VERSION,
            cluster: "local".into(),
            group: "billing".into(),
            state: "Stable".into(),
            members: 1,
            ts_ms,
            error: None,
            partitions: lags
                .iter()
                .enumerate()
                .map(|(i, (topic, lag))| PartitionSample::new(*topic, i as i32, Some(0), *lag))
                .collect(),
        }
    }

    #[test]
    fn fires_once_and_resolves_once() {
        let monitors = vec![monitor(&[])];
        let mut engine = Engine::new();
        let fired = engine.observe(&sample(0, &[("orders", 900), ("orders", 10)]), &monitors);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, AlertState::Firing);
        assert_eq!(fired[0].max_lag, 900);
        assert_eq!(fired[0].total_lag, 910);
        assert_eq!(fired[0].partitions.len(), 1);
        assert!(engine
            .observe(&sample(10, &[("orders", 950)]), &monitors)
            .is_empty());
        assert_eq!(engine.firing(), 1);
        let resolved = engine.observe(&sample(20, &[("orders", 0)]), &monitors);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(engine.firing(), 0);
    }

    #[test]
    fn topic_filter_ignores_other_topics() {
        let monitors = vec![monitor(&["orders"])];
        let mut engine = Engine::new();
        assert!(engine
            .observe(&sample(0, &[("payments", 10_000)]), &monitors)
            .is_empty());
    }

    #[test]
    fn group_pattern_alerts_per_matching_group() {
        let mut pattern = monitor(&[]);
        pattern.consumer_group = "bill.*".into();
        pattern.group_match = lagwatch_model::GroupMatch::Regex;
        let monitors = vec![pattern];
        let mut engine = Engine::new();
        let mut eu = sample(0, &[("orders", 900)]);
        eu.group = "billing-eu".into();
        let mut us = sample(0, &[("orders", 900)]);
        us.group = "billing-us".into();
        let mut other = sample(0, &[("orders", 900)]);
        other.group = "shipping".into();
        let fired: Vec<_> = [eu, us, other]
            .iter()
            .flat_map(|s| engine.observe(s, &monitors))
            .collect();
        assert_eq!(fired.len(), 2);
        assert_ne!(fired[0].fingerprint, fired[1].fingerprint);
        assert_eq!(fired[1].consumer_group, "billing-us");
    }

    #[test]
    fn other_groups_do_not_match() {
        let monitors = vec![monitor(&[])];
        let mut engine = Engine::new();
        let mut other = sample(0, &[("orders", 10_000)]);
        other.group = "other".into();
        assert!(engine.observe(&other, &monitors).is_empty());
    }
}
