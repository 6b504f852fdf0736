//! Matches samples to monitors and runs the rules; pure, no I/O.
//!
//! Rules run per (monitor, group), each with its own alert:
//! - `lag_threshold`: the largest watched partition lag above the monitor's
//!   threshold for `for_secs`;
//! - `topic_lag_threshold` (one alert per topic), `total_lag_threshold` and
//!   `time_lag_threshold`: summed lag per topic, summed lag of the group and
//!   the largest time lag, each above the monitor's own value or else the
//!   rules file's default (off when neither sets one), with the monitor's
//!   `for`;
//! - `lag_status` ([`STATUS_RULE`]): the Burrow-style window status of the
//!   watched partitions, firing on STALL, STOP or REWIND (see
//!   [`crate::status_rule`] for the transitions and the memory bound).
//!
//! Alert state survives restarts through an [`AlertMemory`]: when the engine
//! meets an alert it holds no state for, it asks the memory what was last
//! recorded for that fingerprint, takes over its firing state, and ignores
//! samples not newer than the recorded transition, so replayed samples
//! neither repeat nor undo a notification.

use std::collections::HashMap;
use std::sync::Arc;

use lagwatch_model::alert::rule;
use lagwatch_model::{
    AlertEvent, AlertState, GroupSample, LaggingPartition, Matcher, Monitor, PartitionSample,
};
use lagwatch_rules::{RuleSet, ThresholdRule, ThresholdState, Transition};

pub use crate::status_rule::STATUS_RULE;
use crate::status_rule::{GroupWindows, StatusTransition};

/// Name of the per-partition threshold rule in fingerprints and history.
pub const THRESHOLD_RULE: &str = rule::LAG_THRESHOLD;

/// How often, in sample time, groups without recent samples are swept.
const SWEEP_EVERY_MS: i64 = 60 * 1000;

/// Largest number of partitions listed in one notification; the summary
/// keeps the totals of all.
pub const MAX_LISTED_PARTITIONS: usize = 50;

/// What was last recorded about an alert, as far as the engine cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub firing: bool,
    /// Sample time of the recorded transition.
    pub as_of_ms: i64,
    /// Group status of a firing `lag_status` alert (`stall`, ...).
    pub status: Option<String>,
}

/// Where the engine looks up alerts it has no state for (after a restart
/// or a rebalance).
pub trait AlertMemory: Send + Sync {
    fn recall(&self, fingerprint: &str) -> Option<Remembered>;
}

/// Identity of one threshold alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AlertKey {
    monitor_id: i64,
    group: String,
    rule: &'static str,
    topic: Option<String>,
}

/// A threshold rule's state plus the replay guard.
#[derive(Debug)]
struct ThresholdAlert {
    state: ThresholdState,
    /// Samples at or before this time were already judged, here or (taken
    /// over from the memory) by a previous owner: replays after a
    /// rebalance or restart, and duplicates, change nothing.
    judged_until_ms: i64,
}

impl Default for ThresholdAlert {
    fn default() -> Self {
        ThresholdAlert {
            state: ThresholdState::default(),
            judged_until_ms: i64::MIN,
        }
    }
}

/// Alert state of every (monitor, group) this instance has seen samples
/// for; a monitor naming groups by pattern has one alert per group and rule.
pub struct Engine {
    threshold: HashMap<AlertKey, ThresholdAlert>,
    status: HashMap<(i64, String), (GroupWindows, i64)>,
    rules: Arc<RuleSet>,
    memory: Option<Arc<dyn AlertMemory>>,
    /// Fingerprints taken over from the memory since the last
    /// [`Engine::take_recalled`].
    recalled: Vec<String>,
    /// Sample time of the last sweep of stale groups.
    last_sweep_ms: i64,
    matcher: Matcher,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threshold_alerts", &self.threshold.len())
            .field("status_groups", &self.status.len())
            .finish()
    }
}

/// One threshold rule instance to evaluate for a sample.
struct Check {
    rule: &'static str,
    topic: Option<String>,
    threshold: i64,
    value: Option<i64>,
}

impl Engine {
    /// An engine with the compiled-in default rules and no memory.
    pub fn new() -> Self {
        Engine::with_rules(Arc::new(RuleSet::defaults()))
    }

    pub fn with_rules(rules: Arc<RuleSet>) -> Self {
        Engine {
            threshold: HashMap::new(),
            status: HashMap::new(),
            rules,
            memory: None,
            recalled: Vec::new(),
            last_sweep_ms: 0,
            matcher: Matcher::new(),
        }
    }

    /// Restores alert state from `memory` for alerts met for the first time.
    pub fn with_memory(mut self, memory: Arc<dyn AlertMemory>) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Number of alerts currently firing (all rules).
    pub fn firing(&self) -> usize {
        self.threshold.values().filter(|s| s.state.firing).count()
            + self.status.values().filter(|(g, _)| g.is_firing()).count()
    }

    /// Fingerprints whose state was taken over from the memory since the
    /// last call (the notifier adopts them).
    pub fn take_recalled(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recalled)
    }

    /// Number of partition windows held by the `lag_status` rule.
    pub fn windows(&self) -> usize {
        self.status.values().map(|(g, _)| g.len()).sum()
    }

    /// Applies one sample to every monitor of its group; returns the alert
    /// transitions it caused (per monitor: thresholds first, then status).
    pub fn observe<'m>(
        &mut self,
        sample: &GroupSample,
        monitors: impl IntoIterator<Item = &'m Monitor>,
    ) -> Vec<AlertEvent> {
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
            for check in self.checks(sample, monitor, &watched) {
                events.extend(self.observe_threshold(sample, monitor, &watched, check));
            }
            if self
                .rules
                .status_for(&sample.cluster, &sample.group)
                .enabled
            {
                events.extend(self.observe_status(sample, monitor, &watched));
            }
        }
        self.sweep(sample.ts_ms);
        events
    }

    /// The threshold rules that apply to `monitor` on this sample.
    fn checks(
        &self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
    ) -> Vec<Check> {
        let isolation = monitor.isolation;
        let defaults = self.rules.thresholds_for(&sample.cluster, &sample.group);
        let lags = || watched.iter().filter_map(|p| p.lag_for(isolation));
        let mut checks = vec![Check {
            rule: rule::LAG_THRESHOLD,
            topic: None,
            threshold: monitor.lag_threshold,
            value: lags().max(),
        }];
        if let Some(threshold) = monitor.alerting.topic_lag_threshold.or(defaults.topic_lag) {
            let mut per_topic: Vec<(&str, Option<i64>)> = Vec::new();
            for p in watched {
                let lag = p.lag_for(isolation);
                match per_topic.iter_mut().find(|(t, _)| *t == p.topic) {
                    Some((_, sum)) => {
                        *sum = sum.zip(lag).map(|(a, b)| a.saturating_add(b)).or(*sum)
                    }
                    None => per_topic.push((&p.topic, lag)),
                }
            }
            checks.extend(per_topic.into_iter().map(|(topic, sum)| Check {
                rule: rule::TOPIC_LAG_THRESHOLD,
                topic: Some(topic.to_string()),
                threshold,
                value: sum,
            }));
        }
        if let Some(threshold) = monitor.alerting.total_lag_threshold.or(defaults.total_lag) {
            let known = lags().count();
            checks.push(Check {
                rule: rule::TOTAL_LAG_THRESHOLD,
                topic: None,
                threshold,
                value: (known > 0).then(|| lags().fold(0i64, i64::saturating_add)),
            });
        }
        let time_threshold_ms = monitor
            .alerting
            .time_lag_threshold_secs
            .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
            .or(defaults
                .time_lag
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        if let Some(threshold) = time_threshold_ms {
            checks.push(Check {
                rule: rule::TIME_LAG_THRESHOLD,
                topic: None,
                threshold,
                // The proven part only: an estimate never pages on its error.
                value: watched
                    .iter()
                    .filter_map(|p| p.time_lag_at_least_ms())
                    .max(),
            });
        }
        checks
    }

    fn observe_threshold(
        &mut self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
        check: Check,
    ) -> Option<AlertEvent> {
        let key = AlertKey {
            monitor_id: monitor.id,
            group: sample.group.clone(),
            rule: check.rule,
            topic: check.topic.clone(),
        };
        let fingerprint =
            fingerprint_of(check.rule, monitor, &sample.group, check.topic.as_deref());
        let memory = self.memory.clone();
        let recalled = &mut self.recalled;
        let alert = self.threshold.entry(key).or_insert_with(|| {
            let mut alert = ThresholdAlert::default();
            if let Some(remembered) = memory.and_then(|m| m.recall(&fingerprint)) {
                recalled.push(fingerprint.clone());
                alert.state.firing = remembered.firing;
                alert.judged_until_ms = remembered.as_of_ms;
            }
            alert
        });
        if sample.ts_ms <= alert.judged_until_ms {
            return None;
        }
        alert.judged_until_ms = sample.ts_ms;
        let rule = ThresholdRule {
            threshold: check.threshold,
            for_ms: i64::try_from(monitor.for_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        };
        let alert_state = match alert.state.observe(&rule, check.value, sample.ts_ms) {
            Transition::Unchanged => return None,
            Transition::Fire => AlertState::Firing,
            Transition::Resolve => AlertState::Resolved,
        };
        let isolation = monitor.isolation;
        let listed = |p: &&&PartitionSample| match check.rule {
            rule::LAG_THRESHOLD => p.lag_for(isolation).is_some_and(|l| l > check.threshold),
            rule::TIME_LAG_THRESHOLD => p
                .time_lag_at_least_ms()
                .is_some_and(|t| t > check.threshold),
            rule::TOPIC_LAG_THRESHOLD => {
                Some(&p.topic) == check.topic.as_ref()
                    && p.lag_for(isolation).is_some_and(|l| l > 0)
            }
            _ => p.lag_for(isolation).is_some_and(|l| l > 0),
        };
        let partitions = if alert_state == AlertState::Firing {
            lagging(watched.iter().filter(listed), isolation)
        } else {
            Vec::new()
        };
        let mut event = event(
            sample,
            monitor,
            watched,
            check.rule,
            alert_state,
            check.threshold,
            partitions,
            None,
        );
        event.fingerprint = fingerprint;
        event.topic = check.topic;
        if check.rule != rule::LAG_THRESHOLD {
            event.value = check.value.map(|v| v as f64);
        }
        Some(event)
    }

    fn observe_status(
        &mut self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
    ) -> Option<AlertEvent> {
        let isolation = monitor.isolation;
        let rules = self
            .rules
            .status_for(&sample.cluster, &sample.group)
            .window_rules();
        let fingerprint = fingerprint_of(STATUS_RULE, monitor, &sample.group, None);
        let (group, judged_until_ms) = self.status_entry(monitor, &sample.group, &fingerprint);
        if sample.ts_ms <= *judged_until_ms {
            return None;
        }
        *judged_until_ms = sample.ts_ms;
        let (alert_state, status, partitions) =
            match group.observe(sample, watched.iter().copied(), isolation, &rules)? {
                StatusTransition::Fire(worst) => {
                    let partitions = worst
                        .partitions
                        .iter()
                        .take(MAX_LISTED_PARTITIONS)
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
        let mut event = event(
            sample,
            monitor,
            watched,
            STATUS_RULE,
            alert_state,
            rules.allowed_lag,
            partitions,
            Some(status.as_str().to_string()),
        );
        event.fingerprint = fingerprint;
        Some(event)
    }

    /// The `lag_status` state of (monitor, group), created (and taken over
    /// from the memory) on first use.
    fn status_entry(
        &mut self,
        monitor: &Monitor,
        group: &str,
        fingerprint: &str,
    ) -> &mut (GroupWindows, i64) {
        let memory = self.memory.clone();
        let recalled = &mut self.recalled;
        self.status
            .entry((monitor.id, group.to_string()))
            .or_insert_with(|| {
                let mut windows = GroupWindows::default();
                let mut until = i64::MIN;
                if let Some(remembered) = memory.and_then(|m| m.recall(fingerprint)) {
                    recalled.push(fingerprint.to_string());
                    if remembered.firing {
                        windows.restore_firing(remembered.status.as_deref());
                    }
                    until = remembered.as_of_ms;
                }
                (windows, until)
            })
    }

    /// Feeds a sample an earlier owner already judged into the `lag_status`
    /// windows only (no rule is judged, nothing is notified): after a
    /// rebalance the new owner replays the recent past this way so that its
    /// windows are as full as the previous owner's were.
    pub fn warm_up<'m>(
        &mut self,
        sample: &GroupSample,
        monitors: impl IntoIterator<Item = &'m Monitor>,
    ) {
        if !self
            .rules
            .status_for(&sample.cluster, &sample.group)
            .enabled
        {
            return;
        }
        for monitor in monitors {
            if monitor.cluster != sample.cluster
                || !self.matcher.covers_group(monitor, &sample.group)
            {
                continue;
            }
            let watched: Vec<PartitionSample> = sample
                .partitions
                .iter()
                .filter(|p| self.matcher.covers_topic(monitor, &p.topic))
                .cloned()
                .collect();
            let fingerprint = fingerprint_of(STATUS_RULE, monitor, &sample.group, None);
            let (windows, resolved_until) = self.status_entry(monitor, &sample.group, &fingerprint);
            // A remembered resolve at T was judged on the samples up to T:
            // refilling the windows with them would bring back the evidence
            // of the incident it closed (a REWIND paged again after every
            // restart). Firing alerts and groups never alerted on warm with
            // everything, so a new owner still judges with full windows.
            if !windows.is_firing() && sample.ts_ms <= *resolved_until {
                continue;
            }
            windows.warm(sample, watched.iter(), monitor.isolation);
        }
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
        self.status.retain(|_, (group, _)| {
            if !group.is_stale(now_ms) {
                return true;
            }
            group.forget_windows();
            group.is_firing()
        });
    }

    /// The worst `lag_status` status of `group` over `monitor_ids` (the
    /// monitors that judged its latest sample); `None` when none did.
    pub fn status_of<'m>(
        &self,
        group: &str,
        monitor_ids: impl IntoIterator<Item = &'m i64>,
    ) -> Option<lagwatch_rules::Status> {
        monitor_ids
            .into_iter()
            .filter_map(|id| self.status.get(&(*id, group.to_string())))
            .map(|(windows, _)| windows.status())
            .max()
    }

    /// Forgets every alert of `monitor_id` on `group` (after the monitor
    /// changed so that they no longer apply): the next sample judges
    /// afresh, so a monitor that moved to another team pages that team.
    pub fn forget_group(&mut self, monitor_id: i64, group: &str) {
        self.threshold
            .retain(|key, _| !(key.monitor_id == monitor_id && key.group == group));
        self.status
            .retain(|(id, g), _| !(*id == monitor_id && g == group));
    }

    /// Forgets state of monitors that no longer exist.
    pub fn retain_monitors(&mut self, monitors: &[Monitor]) {
        self.threshold
            .retain(|key, _| monitors.iter().any(|m| m.id == key.monitor_id));
        self.status
            .retain(|(id, _), _| monitors.iter().any(|m| m.id == *id));
    }
}

/// The partitions to list, largest lag first, at most
/// [`MAX_LISTED_PARTITIONS`].
fn lagging<'a>(
    partitions: impl Iterator<Item = &'a &'a PartitionSample>,
    isolation: lagwatch_model::Isolation,
) -> Vec<LaggingPartition> {
    let mut listed: Vec<LaggingPartition> = partitions
        .filter_map(|p| {
            Some(LaggingPartition {
                topic: p.topic.clone(),
                partition: p.partition,
                lag: p.lag_for(isolation)?,
            })
        })
        .collect();
    listed.sort_by(|a, b| b.lag.cmp(&a.lag).then(a.partition.cmp(&b.partition)));
    listed.truncate(MAX_LISTED_PARTITIONS);
    listed
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
        fingerprint: fingerprint_of(rule, monitor, &sample.group, None),
        rule: rule.to_string(),
        state,
        monitor_id: monitor.id,
        team: monitor.team.clone(),
        cluster: sample.cluster.clone(),
        consumer_group: sample.group.clone(),
        max_lag: lags().max().unwrap_or(0),
        total_lag: lags().fold(0i64, i64::saturating_add),
        threshold,
        ts_ms: sample.ts_ms,
        partitions,
        emails: monitor.emails.clone(),
        status,
        topic: None,
        value: None,
        broker: None,
        repeat: false,
        muted_by: None,
        reason: None,
        webhooks: monitor.alerting.webhooks.clone(),
    }
}

/// Stable identity of an alert: rule, monitor, cluster, group and, for
/// per-topic rules, topic.
pub fn fingerprint_of(rule: &str, monitor: &Monitor, group: &str, topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("{rule}/{}/{}/{group}/{topic}", monitor.id, monitor.cluster),
        None => format!("{rule}/{}/{}/{group}", monitor.id, monitor.cluster),
    }
}

/// Stable identity of a monitor's threshold alert on one group.
pub fn fingerprint(monitor: &Monitor, group: &str) -> String {
    fingerprint_of(THRESHOLD_RULE, monitor, group, None)
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
            .filter_map(|(g, _)| g.firing_status())
            .collect();
        assert_eq!(firing, vec![lagwatch_rules::Status::Stop]);
        // The status users see (lagwatch_group_status) is the same.
        let ids: Vec<i64> = monitors.iter().map(|m| m.id).collect();
        assert_eq!(
            engine.status_of("billing", &ids),
            Some(lagwatch_rules::Status::Stop)
        );
        assert_eq!(engine.status_of("other", &ids), None);
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

    /// A sample whose partitions are `(topic, lag, time_lag_ms)`.
    fn timed(ts_ms: i64, parts: &[(&str, i64, Option<i64>)]) -> GroupSample {
        let mut s = sample(ts_ms, &[]);
        s.partitions = parts
            .iter()
            .enumerate()
            .map(|(i, (topic, lag, time_lag))| {
                let mut p = PartitionSample::new(*topic, i as i32, Some(0), *lag);
                p.time_lag_ms = *time_lag;
                p
            })
            .collect();
        s
    }

    /// Numbered cases for the threshold rules next to `lag_threshold`:
    /// (case, monitor alerting, samples, expected (sample index, rule,
    /// topic, state, value)). The monitor's partition threshold is 500 and
    /// `for` is 0; `lag_status` is switched off to keep the table small.
    #[test]
    fn threshold_rules_table() {
        use lagwatch_model::AlertSettings;
        use AlertState::{Firing, Resolved};
        type Expected = (
            usize,
            &'static str,
            Option<&'static str>,
            AlertState,
            Option<f64>,
        );
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            AlertSettings,
            Vec<Vec<(&str, i64, Option<i64>)>>,
            Vec<Expected>,
        )> = vec![
            (
                "1 total lag fires on the sum although no partition passes 500",
                AlertSettings {
                    total_lag_threshold: Some(1_000),
                    ..Default::default()
                },
                vec![
                    vec![("a", 400, None), ("a", 400, None), ("b", 400, None)],
                    vec![("a", 100, None), ("a", 100, None), ("b", 100, None)],
                ],
                vec![
                    (0, rule::TOTAL_LAG_THRESHOLD, None, Firing, Some(1_200.0)),
                    (1, rule::TOTAL_LAG_THRESHOLD, None, Resolved, Some(300.0)),
                ],
            ),
            (
                "2 topic lag alerts per topic, each with its own fingerprint",
                AlertSettings {
                    topic_lag_threshold: Some(600),
                    ..Default::default()
                },
                vec![
                    vec![("a", 400, None), ("a", 400, None), ("b", 400, None)],
                    vec![("a", 400, None), ("a", 400, None), ("b", 700, None)],
                ],
                vec![
                    (0, rule::TOPIC_LAG_THRESHOLD, Some("a"), Firing, Some(800.0)),
                    (1, rule::LAG_THRESHOLD, None, Firing, None),
                    (1, rule::TOPIC_LAG_THRESHOLD, Some("b"), Firing, Some(700.0)),
                ],
            ),
            (
                "3 time lag uses the largest partition time lag in ms",
                AlertSettings {
                    time_lag_threshold_secs: Some(60),
                    ..Default::default()
                },
                vec![
                    vec![("a", 10, Some(30_000)), ("a", 10, Some(61_000))],
                    vec![("a", 10, Some(30_000)), ("a", 10, Some(60_000))],
                ],
                vec![
                    (0, rule::TIME_LAG_THRESHOLD, None, Firing, Some(61_000.0)),
                    (1, rule::TIME_LAG_THRESHOLD, None, Resolved, Some(60_000.0)),
                ],
            ),
            (
                "4 unknown time lag neither fires nor resolves",
                AlertSettings {
                    time_lag_threshold_secs: Some(60),
                    ..Default::default()
                },
                vec![
                    vec![("a", 10, Some(90_000))],
                    vec![("a", 10, None)],
                    vec![("a", 10, Some(1_000))],
                ],
                vec![
                    (0, rule::TIME_LAG_THRESHOLD, None, Firing, Some(90_000.0)),
                    (2, rule::TIME_LAG_THRESHOLD, None, Resolved, Some(1_000.0)),
                ],
            ),
            (
                "5 no monitor value and no file default: rules stay off",
                AlertSettings::default(),
                vec![vec![("a", 400, Some(10_000_000)), ("b", 400, None)]],
                vec![],
            ),
        ];
        for (case, alerting, samples, expected) in cases {
            let mut m = monitor(&[]);
            m.alerting = alerting;
            let monitors = vec![m];
            let mut rules = RuleSet::defaults();
            rules.lag_status.enabled = false;
            rules.thresholds = Default::default();
            let mut engine = Engine::with_rules(Arc::new(rules));
            let mut got = Vec::new();
            for (i, parts) in samples.iter().enumerate() {
                for e in engine.observe(&timed(i as i64 * 1_000, parts), &monitors) {
                    got.push((i, e.rule.clone(), e.topic.clone(), e.state, e.value));
                }
            }
            let expected: Vec<_> = expected
                .into_iter()
                .map(|(i, r, t, s, v)| (i, r.to_string(), t.map(str::to_string), s, v))
                .collect();
            assert_eq!(got, expected, "case {case}");
        }
    }

    #[test]
    fn file_defaults_apply_when_the_monitor_sets_nothing() {
        let monitors = vec![monitor(&[])];
        let mut engine = Engine::new(); // default.yaml: time_lag 15m
        let fired = engine.observe(&timed(0, &[("a", 1, Some(16 * 60_000))]), &monitors);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule, rule::TIME_LAG_THRESHOLD);
        assert_eq!(fired[0].threshold, 15 * 60_000);
        assert!(
            fired[0].summary().contains("960s behind"),
            "{}",
            fired[0].summary()
        );
    }

    struct Recorded(HashMap<String, Remembered>);

    impl AlertMemory for Recorded {
        fn recall(&self, fingerprint: &str) -> Option<Remembered> {
            self.0.get(fingerprint).cloned()
        }
    }

    #[test]
    fn remembered_alerts_are_neither_repeated_nor_undone_by_replayed_samples() {
        let monitors = vec![monitor(&[])];
        let firing_at = 5_000;
        let memory = Recorded(HashMap::from([(
            fingerprint(&monitors[0], "billing"),
            Remembered {
                firing: true,
                as_of_ms: firing_at,
                status: None,
            },
        )]));
        let mut engine = Engine::new().with_memory(Arc::new(memory));
        // Replayed samples from before the recorded transition: one below
        // the threshold (would resolve) and one above (would fire again).
        assert!(engine
            .observe(&sample(4_000, &[("orders", 10)]), &monitors)
            .is_empty());
        assert!(engine
            .observe(&sample(5_000, &[("orders", 900)]), &monitors)
            .is_empty());
        assert_eq!(engine.firing(), 1, "firing state taken over");
        assert!(engine
            .observe(&sample(6_000, &[("orders", 950)]), &monitors)
            .is_empty());
        let resolved = engine.observe(&sample(7_000, &[("orders", 0)]), &monitors);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
    }

    #[test]
    fn remembered_resolution_keeps_replayed_breaches_quiet() {
        let monitors = vec![monitor(&[])];
        let memory = Recorded(HashMap::from([(
            fingerprint(&monitors[0], "billing"),
            Remembered {
                firing: false,
                as_of_ms: 5_000,
                status: None,
            },
        )]));
        let mut engine = Engine::new().with_memory(Arc::new(memory));
        assert!(engine
            .observe(&sample(3_000, &[("orders", 900)]), &monitors)
            .is_empty());
        let fired = engine.observe(&sample(6_000, &[("orders", 900)]), &monitors);
        assert_eq!(fired.len(), 1, "a new breach after the record fires");
    }

    #[test]
    fn samples_replayed_after_a_rebalance_change_nothing() {
        let monitors = vec![monitor(&[])];
        let mut engine = Engine::new();
        assert_eq!(
            engine
                .observe(&sample(1_000, &[("orders", 900)]), &monitors)
                .len(),
            1
        );
        assert_eq!(
            engine
                .observe(&sample(3_000, &[("orders", 0)]), &monitors)
                .len(),
            1
        );
        // The partition comes back from its committed offset: older samples
        // (and a duplicate of the newest) are judged already.
        for ts in [1_000, 2_000, 3_000] {
            assert!(
                engine
                    .observe(&sample(ts, &[("orders", 900)]), &monitors)
                    .is_empty(),
                "replayed sample at {ts}"
            );
        }
        assert_eq!(
            engine
                .observe(&sample(4_000, &[("orders", 900)]), &monitors)
                .len(),
            1
        );
    }

    #[test]
    fn warmed_up_windows_judge_at_once_without_notifying_the_past() {
        let monitors = vec![monitor(&[])];
        let stalled = |ts| offsets(ts, 100, 1_000);
        let mut cold = Engine::new();
        let mut warm = Engine::new();
        for i in 0..4 {
            warm.warm_up(&stalled(i * 1_000), &monitors);
            assert!(cold
                .observe(&stalled(i * 1_000), &monitors)
                .iter()
                .all(|e| e.rule != STATUS_RULE));
        }
        assert_eq!(warm.firing(), 0, "warm-up notifies nothing");
        let fired = warm.observe(&stalled(4_000), &monitors);
        assert!(
            fired
                .iter()
                .any(|e| e.rule == STATUS_RULE && e.status.as_deref() == Some("stall")),
            "the first judged sample sees the warmed-up window: {fired:?}"
        );
    }
}
