//! Matches samples to monitors and runs the rules; pure, no I/O.
//!
//! Two rules run per (monitor, group):
//! - `lag_threshold` ([`THRESHOLD_RULE`]): the largest watched partition lag
//!   above the monitor's threshold for `for_secs`;
//! - `lag_status` ([`STATUS_RULE`]): the Burrow-style window status of the
//!   watched partitions, firing on STALL, STOP or REWIND (see
//!   [`crate::status_rule`] for the transitions and the memory bound).

use std::collections::HashMap;

use lagwatch_model::{
    AlertEvent, AlertState, GroupSample, LaggingPartition, Matcher, Monitor, PartitionSample,
};
use lagwatch_rules::{ThresholdRule, ThresholdState, Transition, WindowRules};

pub use crate::status_rule::STATUS_RULE;
use crate::status_rule::{GroupWindows, StatusTransition};

/// Name of the threshold rule in fingerprints and history.
pub const THRESHOLD_RULE: &str = "lag_threshold";

/// How often, in sample time, groups without recent samples are swept.
const SWEEP_EVERY_MS: i64 = 60 * 1000;

/// Alert state of every (monitor, group) this instance has seen samples
/// for; a monitor naming groups by pattern has one alert per group and rule.
#[derive(Debug, Default)]
pub struct Engine {
    threshold: HashMap<(i64, String), ThresholdState>,
    status: HashMap<(i64, String), GroupWindows>,
    status_rules: WindowRules,
    /// Sample time of the last sweep of stale groups.
    last_sweep_ms: i64,
    matcher: Matcher,
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    /// Number of alerts currently firing (both rules).
    pub fn firing(&self) -> usize {
        self.threshold.values().filter(|s| s.firing).count()
            + self.status.values().filter(|g| g.is_firing()).count()
    }

    /// Number of partition windows held by the `lag_status` rule.
    pub fn windows(&self) -> usize {
        self.status.values().map(GroupWindows::len).sum()
    }

    /// Applies one sample to every monitor of its group; returns the alert
    /// transitions it caused (per monitor: threshold first, then status).
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
            events.extend(self.observe_threshold(sample, monitor, &watched));
            events.extend(self.observe_status(sample, monitor, &watched));
        }
        self.sweep(sample.ts_ms);
        events
    }

    fn observe_threshold(
        &mut self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
    ) -> Option<AlertEvent> {
        let isolation = monitor.isolation;
        let max_lag = watched.iter().filter_map(|p| p.lag_for(isolation)).max();
        let rule = ThresholdRule {
            threshold: monitor.lag_threshold,
            for_ms: i64::try_from(monitor.for_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        };
        let state = self
            .threshold
            .entry((monitor.id, sample.group.clone()))
            .or_default();
        let alert_state = match state.observe(&rule, max_lag, sample.ts_ms) {
            Transition::None => return None,
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
        Some(event(
            sample,
            monitor,
            watched,
            THRESHOLD_RULE,
            alert_state,
            monitor.lag_threshold,
            partitions,
            None,
        ))
    }

    fn observe_status(
        &mut self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
    ) -> Option<AlertEvent> {
        let isolation = monitor.isolation;
        let rules = self.status_rules;
        let group = self
            .status
            .entry((monitor.id, sample.group.clone()))
            .or_default();
        let (alert_state, status, partitions) =
            match group.observe(sample, watched.iter().copied(), isolation, &rules)? {
                StatusTransition::Fire(worst) => {
                    let partitions = worst
                        .partitions
                        .iter()
                        .map(|(topic, partition)| LaggingPartition {
                            topic: topic.clone(),
                            partition: *partition,
                            lag: watched
                                .iter()
                                .find(|p| &p.topic == topic && p.partition == *partition)
                                .and_then(|p| p.lag_for(isolation))
                                .unwrap_or(0),
                        })
                        .collect();
                    (AlertState::Firing, worst.status, partitions)
                }
                StatusTransition::Resolve(status) => (AlertState::Resolved, status, Vec::new()),
            };
        Some(event(
            sample,
            monitor,
            watched,
            STATUS_RULE,
            alert_state,
            rules.allowed_lag,
            partitions,
            Some(status.as_str().to_string()),
        ))
    }

    /// Every [`SWEEP_EVERY_MS`] of sample time, forgets the windows of
    /// groups without a sample for
    /// [`STALE_AFTER_MS`](crate::status_rule::STALE_AFTER_MS); entries of firing
    /// alerts stay (window-less) so that the alert can still resolve.
    fn sweep(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.status.retain(|_, group| {
            if !group.is_stale(now_ms) {
                return true;
            }
            group.forget_windows();
            group.is_firing()
        });
    }

    /// Forgets state of monitors that no longer exist.
    pub fn retain_monitors(&mut self, monitors: &[Monitor]) {
        self.threshold
            .retain(|(id, _), _| monitors.iter().any(|m| m.id == *id));
        self.status
            .retain(|(id, _), _| monitors.iter().any(|m| m.id == *id));
    }
}

/// An alert event of `rule` for `monitor` on the sample's group.
#[allow(clippy::too_many_arguments)]
fn event(
    sample: &GroupSample,
    monitor: &Monitor,
    watched: &[&PartitionSample],
    rule: &str,
    state: AlertState,
    threshold: i64,
    partitions: Vec<LaggingPartition>,
    status: Option<String>,
) -> AlertEvent {
    let isolation = monitor.isolation;
    let lags = || watched.iter().filter_map(|p| p.lag_for(isolation));
    AlertEvent {
        fingerprint: format!("{rule}/{}/{}/{}", monitor.id, monitor.cluster, sample.group),
        rule: rule.to_string(),
        state,
        monitor_id: monitor.id,
        team: monitor.team.clone(),
        cluster: sample.cluster.clone(),
        consumer_group: sample.group.clone(),
        max_lag: lags().max().unwrap_or(0),
        total_lag: lags().sum(),
        threshold,
        ts_ms: sample.ts_ms,
        partitions,
        emails: monitor.emails.clone(),
        status,
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
    use crate::status_rule::STALE_AFTER_MS;

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
            alerting: Default::default(),
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

    /// One sample of `billing` on partition `orders[0]`, `(committed, end)`.
    fn offsets(ts_ms: i64, committed: i64, end: i64) -> GroupSample {
        let mut s = sample(ts_ms, &[]);
        s.partitions = vec![PartitionSample::new("orders", 0, Some(committed), end)];
        s
    }

    /// A stuck consumer: committed at 100 of 1,000 for `stuck` samples, then
    /// caught up for `after` samples.
    fn stuck_then_caught_up(stuck: usize, after: usize) -> Vec<(i64, i64)> {
        let mut steps = vec![(100, 1_000); stuck];
        steps.extend(vec![(1_000, 1_000); after]);
        steps
    }

    #[test]
    fn lag_status_table() {
        use AlertState::{Firing, Resolved};
        // (case, monitor threshold, per-second (committed, end) samples,
        // expected (sample index, rule, state, status) events in order).
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            i64,
            Vec<(i64, i64)>,
            Vec<(usize, &str, AlertState, Option<&str>)>,
        )> = vec![
            (
                "stuck consumer fires once (STALL, then STOP silently) and resolves once",
                1_000_000,
                stuck_then_caught_up(14, 4),
                vec![
                    (4, STATUS_RULE, Firing, Some("stall")),
                    (14, STATUS_RULE, Resolved, Some("ok")),
                ],
            ),
            (
                "caught-up quiet group never fires",
                1_000_000,
                vec![(1_000, 1_000); 20],
                vec![],
            ),
            (
                "a transaction marker (lag 1) is caught up",
                1_000_000,
                vec![(999, 1_000); 20],
                vec![],
            ),
            (
                "growing lag (WARN) does not page",
                1_000_000,
                (0..20).map(|i| (100 + 10 * i, 1_000 + 100 * i)).collect(),
                vec![],
            ),
            (
                "too few samples (UNKNOWN) do not page",
                1_000_000,
                vec![(100, 1_000); 4],
                vec![],
            ),
            (
                "threshold rule keeps working alongside",
                500,
                stuck_then_caught_up(8, 2),
                vec![
                    (0, THRESHOLD_RULE, Firing, None),
                    (4, STATUS_RULE, Firing, Some("stall")),
                    (8, THRESHOLD_RULE, Resolved, None),
                    (8, STATUS_RULE, Resolved, Some("ok")),
                ],
            ),
        ];
        for (name, threshold, steps, expected) in cases {
            let mut m = monitor(&[]);
            m.lag_threshold = threshold;
            let monitors = vec![m];
            let mut engine = Engine::new();
            let mut seen = Vec::new();
            for (i, (committed, end)) in steps.iter().enumerate() {
                let ts = 1_000 * i as i64;
                for e in engine.observe(&offsets(ts, *committed, *end), &monitors) {
                    seen.push((i, e));
                }
            }
            let got: Vec<_> = seen
                .iter()
                .map(|(i, e)| (*i, e.rule.as_str(), e.state, e.status.as_deref()))
                .collect();
            assert_eq!(got, expected, "case: {name}");
            assert_eq!(engine.firing(), 0, "case: {name}");
        }
    }

    #[test]
    fn lag_status_event_lists_worst_partitions() {
        let mut m = monitor(&[]);
        m.lag_threshold = 1_000_000;
        let monitors = vec![m];
        let mut engine = Engine::new();
        let mut fired = Vec::new();
        for i in 0..5 {
            let mut s = sample(i * 1_000, &[]);
            s.partitions = vec![
                PartitionSample::new("orders", 0, Some(100), 1_000),
                PartitionSample::new("orders", 1, Some(i * 10), 1_000 + i * 10),
                PartitionSample::new("orders", 2, Some(50), 950),
            ];
            fired.extend(engine.observe(&s, &monitors));
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        let alert = &fired[0];
        assert_eq!(alert.fingerprint, "lag_status/7/local/billing");
        assert_eq!(alert.status.as_deref(), Some("stall"));
        let parts: Vec<_> = alert
            .partitions
            .iter()
            .map(|p| (p.partition, p.lag))
            .collect();
        assert_eq!(parts, vec![(0, 900), (2, 900)]);
        assert_eq!(
            alert.summary(),
            "[FIRING] group billing on local is STALL (2 partitions)"
        );
        assert_eq!(engine.firing(), 1);
        // Stuck past the window: STALL becomes STOP without a new page.
        for i in 5..12 {
            let mut s = sample(i * 1_000, &[]);
            s.partitions = vec![PartitionSample::new("orders", 0, Some(100), 1_000)];
            assert!(engine.observe(&s, &monitors).is_empty(), "sample {i}");
        }
        let firing: Vec<_> = engine
            .status
            .values()
            .filter_map(GroupWindows::firing_status)
            .collect();
        assert_eq!(firing, vec![lagwatch_rules::Status::Stop]);
    }

    #[test]
    fn windows_are_bounded_in_time() {
        let mut m = monitor(&[]);
        m.lag_threshold = 1_000_000;
        let monitors = vec![m];
        let mut engine = Engine::new();
        let mut s = sample(0, &[]);
        s.partitions = vec![
            PartitionSample::new("orders", 0, Some(5), 5),
            PartitionSample::new("orders", 1, Some(5), 5),
        ];
        engine.observe(&s, &monitors);
        assert_eq!(engine.windows(), 2);
        // Partition 1 disappears from the group's samples: dropped once stale.
        let later = STALE_AFTER_MS + 1;
        engine.observe(&offsets(later, 5, 5), &monitors);
        assert_eq!(engine.windows(), 1);
        // The group stops being sampled: swept once stale.
        let mut other = offsets(2 * later + SWEEP_EVERY_MS, 5, 5);
        other.group = "other".into();
        engine.observe(&other, &monitors);
        assert_eq!(engine.windows(), 0);
        // Deleted monitors take their windows along.
        engine.observe(&offsets(3 * later, 5, 5), &monitors);
        engine.retain_monitors(&[]);
        assert_eq!(engine.windows(), 0);
    }
}
