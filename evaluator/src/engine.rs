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
//!
//! Alerts whose subject vanished resolve instead of firing forever (see
//! [`Vanished`]): a group whose watched topics were deleted or whose
//! offsets are gone (the collector still samples it, with nothing left to
//! measure), a topic alert whose topic is gone, and a group that stopped
//! being sampled at all while its cluster still is (a pattern monitor's
//! group that was deleted). Each waits out the engine's vanish grace in
//! sample time, so one odd sample does not close an incident; then the
//! engine forgets the group's state and reports it for the notifier to
//! resolve with the reason.

use std::collections::HashMap;
use std::sync::Arc;

use lagwatch_model::{
    AlertEvent, AlertState, GroupSample, LaggingPartition, Matcher, Monitor, PartitionSample, Rule,
};
use lagwatch_rules::{RuleSet, ThresholdRule, ThresholdState, Transition};

pub use crate::status_rule::STATUS_RULE;
use crate::status_rule::{GroupWindows, StatusTransition};

/// Name of the per-partition threshold rule in fingerprints and history.
pub const THRESHOLD_RULE: Rule = Rule::LagThreshold;

/// How often, in sample time, groups without recent samples are swept.
const SWEEP_EVERY_MS: i64 = 60 * 1000;

/// Largest number of partitions listed in one notification; the summary
/// keeps the totals of all.
pub const MAX_LISTED_PARTITIONS: usize = 50;

/// Default time (sample time) a subject must stay gone before its alerts
/// resolve as vanished (see [`Engine::with_vanish_grace`]).
pub const DEFAULT_VANISH_GRACE_MS: i64 = 120 * 1000;

/// The alerts of one monitor on one group (or one topic of it) whose
/// subject is gone; the notifier resolves the firing ones with `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vanished {
    pub monitor_id: i64,
    pub cluster: String,
    pub group: String,
    /// `Some`: only the `topic_lag_threshold` alert of this topic.
    pub topic: Option<String>,
    pub reason: String,
    /// Sample time that ended the grace.
    pub ts_ms: i64,
}

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
    rule: Rule,
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
    /// Status changes of firing `lag_status` alerts (STALL → STOP) since
    /// the last [`Engine::take_status_changes`].
    status_changes: Vec<AlertEvent>,
    /// Sample time of the last sweep of stale groups.
    last_sweep_ms: i64,
    matcher: Matcher,
    /// How long (sample time) a subject stays gone before its alerts
    /// resolve as vanished.
    vanish_grace_ms: i64,
    /// (monitor, group, topic) → sample time since which a conclusive
    /// sample showed nothing to measure while an alert of it was firing.
    vanishing: HashMap<(i64, String, Option<String>), i64>,
    /// (monitor, group) → where its newest sample came from.
    last_sample: HashMap<(i64, String), LastSample>,
    /// Metrics-topic partition of the samples being observed (see
    /// [`Engine::set_partition`]).
    partition: Option<i32>,
    /// Cluster → newest sample time of a sample that was not blind (the
    /// cluster answered): a group unsampled while this moves on is gone.
    cluster_seen_ms: HashMap<String, i64>,
    /// Firing `topic_lag_threshold` alerts per (monitor, group).
    firing_topics: HashMap<(i64, String), std::collections::BTreeSet<String>>,
    /// Vanished subjects since the last [`Engine::take_vanished`].
    vanished: Vec<Vanished>,
    /// (cluster, group) no longer sampled, state forgotten, since the last
    /// [`Engine::take_gone_groups`].
    gone_groups: Vec<(String, String)>,
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
    rule: Rule,
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
            status_changes: Vec::new(),
            last_sweep_ms: 0,
            matcher: Matcher::new(),
            vanish_grace_ms: DEFAULT_VANISH_GRACE_MS,
            vanishing: HashMap::new(),
            last_sample: HashMap::new(),
            partition: None,
            cluster_seen_ms: HashMap::new(),
            firing_topics: HashMap::new(),
            vanished: Vec::new(),
            gone_groups: Vec::new(),
        }
    }

    /// How long (sample time) a deleted topic, a group without offsets or
    /// a group no longer sampled must stay so before its alerts resolve
    /// (default [`DEFAULT_VANISH_GRACE_MS`]).
    pub fn with_vanish_grace(mut self, grace: std::time::Duration) -> Self {
        self.vanish_grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Subjects whose alerts vanished since the last call; hand each to
    /// the notifier's [`vanished`](crate::notifier::Notifier::vanished).
    pub fn take_vanished(&mut self) -> Vec<Vanished> {
        std::mem::take(&mut self.vanished)
    }

    /// (cluster, group) pairs no longer sampled whose state was forgotten
    /// since the last call (their status gauge goes too).
    pub fn take_gone_groups(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.gone_groups)
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

    /// Status changes of firing `lag_status` alerts since the last call
    /// (STALL → STOP, ...): firing events with the new status and its
    /// partitions, for [`crate::notifier::Notifier::record_status_change`]
    /// — recorded in history, never paged.
    pub fn take_status_changes(&mut self) -> Vec<AlertEvent> {
        std::mem::take(&mut self.status_changes)
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
        let conclusive = absence_is_conclusive(sample);
        if !is_blind(sample) {
            let seen = self
                .cluster_seen_ms
                .entry(sample.cluster.clone())
                .or_insert(sample.ts_ms);
            *seen = (*seen).max(sample.ts_ms);
        }
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
            self.last_sample.insert(
                (monitor.id, sample.group.clone()),
                LastSample {
                    cluster: sample.cluster.clone(),
                    ts_ms: sample.ts_ms,
                    partition: self.partition,
                },
            );
            let first = events.len();
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
            // Every notification says how the consumer is doing: the
            // group's window status at this sample.
            let group_status = self
                .status
                .get(&(monitor.id, sample.group.clone()))
                .map(|(windows, _)| windows.status().as_str().to_string());
            for event in events[first..]
                .iter_mut()
                .chain(self.status_changes.iter_mut())
                .filter(|e| e.group_status.is_none())
            {
                event.group_status = group_status.clone();
            }
            if conclusive {
                self.note_absence(sample, monitor, &watched);
            }
        }
        self.sweep(sample.ts_ms);
        events
    }

    /// Whether any alert of `monitor_id` on `group` is firing.
    fn group_firing(&self, monitor_id: i64, group: &str) -> bool {
        let key = (monitor_id, group.to_string());
        if self
            .status
            .get(&key)
            .is_some_and(|(windows, _)| windows.is_firing())
        {
            return true;
        }
        if self.firing_topics.get(&key).is_some_and(|t| !t.is_empty()) {
            return true;
        }
        [
            Rule::LagThreshold,
            Rule::TotalLagThreshold,
            Rule::TimeLagThreshold,
        ]
        .into_iter()
        .any(|rule| {
            self.threshold
                .get(&AlertKey {
                    monitor_id,
                    group: group.to_string(),
                    rule,
                    topic: None,
                })
                .is_some_and(|a| a.state.firing)
        })
    }

    /// On a conclusive sample (the cluster answered and nothing failed but
    /// missing topics): starts, continues or ends the vanish grace of the
    /// monitor's firing alerts on the group, and of each firing topic
    /// alert whose topic has nothing left to measure.
    fn note_absence(
        &mut self,
        sample: &GroupSample,
        monitor: &Monitor,
        watched: &[&PartitionSample],
    ) {
        let measured: std::collections::BTreeSet<&str> = watched
            .iter()
            .filter(|p| p.committed.is_some())
            .map(|p| p.topic.as_str())
            .collect();
        let group = &sample.group;
        let whole = (monitor.id, group.clone(), None);
        if measured.is_empty() && self.group_firing(monitor.id, group) {
            if self.grace_over(whole, sample.ts_ms) {
                let reason = match &sample.error {
                    Some(error) => format!(
                        "group {group} has nothing left to measure on the watched topics ({error})"
                    ),
                    None => format!(
                        "group {group} has no committed offset left on the watched topics (offsets deleted or expired)"
                    ),
                };
                self.forget_group(monitor.id, group);
                self.vanished.push(Vanished {
                    monitor_id: monitor.id,
                    cluster: sample.cluster.clone(),
                    group: group.clone(),
                    topic: None,
                    reason,
                    ts_ms: sample.ts_ms,
                });
            }
            return;
        }
        self.vanishing.remove(&whole);
        let gone_topics: Vec<String> = self
            .firing_topics
            .get(&(monitor.id, group.clone()))
            .map(|topics| {
                topics
                    .iter()
                    .filter(|t| !measured.contains(t.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for topic in gone_topics {
            if !self.grace_over(
                (monitor.id, group.clone(), Some(topic.clone())),
                sample.ts_ms,
            ) {
                continue;
            }
            self.threshold.remove(&AlertKey {
                monitor_id: monitor.id,
                group: group.clone(),
                rule: Rule::TopicLagThreshold,
                topic: Some(topic.clone()),
            });
            if let Some(topics) = self.firing_topics.get_mut(&(monitor.id, group.clone())) {
                topics.remove(&topic);
            }
            self.vanished.push(Vanished {
                monitor_id: monitor.id,
                cluster: sample.cluster.clone(),
                group: group.clone(),
                reason: format!(
                    "topic {topic} has nothing left to measure for group {group} (deleted, or the group's offsets on it are gone)"
                ),
                topic: Some(topic),
                ts_ms: sample.ts_ms,
            });
        }
    }

    /// Notes that `key`'s subject is gone at `ts_ms`; true (and the grace
    /// forgotten) once it has been gone for the whole grace.
    fn grace_over(&mut self, key: (i64, String, Option<String>), ts_ms: i64) -> bool {
        let since = *self.vanishing.entry(key.clone()).or_insert(ts_ms);
        if ts_ms.saturating_sub(since) >= self.vanish_grace_ms {
            self.vanishing.remove(&key);
            true
        } else {
            false
        }
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
            rule: Rule::LagThreshold,
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
                rule: Rule::TopicLagThreshold,
                topic: Some(topic.to_string()),
                threshold,
                value: sum,
            }));
        }
        if let Some(threshold) = monitor.alerting.total_lag_threshold.or(defaults.total_lag) {
            let known = lags().count();
            checks.push(Check {
                rule: Rule::TotalLagThreshold,
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
                rule: Rule::TimeLagThreshold,
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
            rule: check.rule.clone(),
            topic: check.topic.clone(),
        };
        let fingerprint =
            fingerprint_of(&check.rule, monitor, &sample.group, check.topic.as_deref());
        let memory = self.memory.clone();
        let recalled = &mut self.recalled;
        let firing_topics = &mut self.firing_topics;
        let alert = self.threshold.entry(key).or_insert_with(|| {
            let mut alert = ThresholdAlert::default();
            if let Some(remembered) = memory.and_then(|m| m.recall(&fingerprint)) {
                recalled.push(fingerprint.clone());
                if let (true, Some(topic)) = (remembered.firing, &check.topic) {
                    firing_topics
                        .entry((monitor.id, sample.group.clone()))
                        .or_default()
                        .insert(topic.clone());
                }
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
        if let Some(topic) = &check.topic {
            let topics = self
                .firing_topics
                .entry((monitor.id, sample.group.clone()))
                .or_default();
            match alert_state {
                AlertState::Firing => topics.insert(topic.clone()),
                AlertState::Resolved => topics.remove(topic),
            };
        }
        let isolation = monitor.isolation;
        let listed = |p: &&&PartitionSample| match check.rule {
            Rule::LagThreshold => p.lag_for(isolation).is_some_and(|l| l > check.threshold),
            Rule::TimeLagThreshold => p
                .time_lag_at_least_ms()
                .is_some_and(|t| t > check.threshold),
            Rule::TopicLagThreshold => {
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
            check.rule.clone(),
            alert_state,
            check.threshold,
            partitions,
            None,
        );
        event.fingerprint = fingerprint;
        event.topic = check.topic;
        if check.rule != Rule::LagThreshold {
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
        let fingerprint = fingerprint_of(&STATUS_RULE, monitor, &sample.group, None);
        let (group, judged_until_ms) = self.status_entry(monitor, &sample.group, &fingerprint);
        if sample.ts_ms <= *judged_until_ms {
            return None;
        }
        *judged_until_ms = sample.ts_ms;
        let transition = group.observe(sample, watched.iter().copied(), isolation, &rules)?;
        let changed = matches!(transition, StatusTransition::Change(_));
        let (alert_state, status, partitions) = match transition {
            StatusTransition::Fire(worst) | StatusTransition::Change(worst) => {
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
        if changed {
            // Recorded, not paged: see `take_status_changes`.
            self.status_changes.push(event);
            return None;
        }
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
            let fingerprint = fingerprint_of(&STATUS_RULE, monitor, &sample.group, None);
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
    ///
    /// The same sweep (at least four times per vanish grace) finds the
    /// groups no longer sampled for the grace while their cluster still
    /// is: their firing alerts are reported [`Vanished`] and their whole
    /// state (windows, thresholds, grace) is forgotten.
    fn sweep(&mut self, now_ms: i64) {
        let every = SWEEP_EVERY_MS.min(self.vanish_grace_ms / 4).max(1_000);
        if now_ms.saturating_sub(self.last_sweep_ms) < every {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.sweep_gone_groups();
        self.status.retain(|_, (group, _)| {
            if !group.is_stale(now_ms) {
                return true;
            }
            group.forget_windows();
            group.is_firing()
        });
    }

    /// Forgets every (monitor, group) not sampled for the vanish grace
    /// while its cluster was; reports those with a firing alert.
    fn sweep_gone_groups(&mut self) {
        let grace = self.vanish_grace_ms;
        let gone: Vec<(i64, String, String, i64)> = self
            .last_sample
            .iter()
            .filter_map(|((id, group), last)| {
                let seen = *self.cluster_seen_ms.get(&last.cluster)?;
                (seen.saturating_sub(last.ts_ms) >= grace)
                    .then(|| (*id, group.clone(), last.cluster.clone(), seen))
            })
            .collect();
        for (monitor_id, group, cluster, seen) in gone {
            if self.group_firing(monitor_id, &group) {
                let secs = seen.saturating_sub(
                    self.last_sample
                        .get(&(monitor_id, group.clone()))
                        .map_or(seen, |last| last.ts_ms),
                ) / 1_000;
                self.vanished.push(Vanished {
                    monitor_id,
                    reason: format!(
                        "group {group} is no longer on cluster {cluster} (no sample for {secs} s while the cluster was sampled)"
                    ),
                    cluster: cluster.clone(),
                    group: group.clone(),
                    topic: None,
                    ts_ms: seen,
                });
            }
            self.forget_group(monitor_id, &group);
            self.last_sample.remove(&(monitor_id, group.clone()));
            if !self.last_sample.keys().any(|(_, g)| *g == group) {
                self.gone_groups.push((cluster, group));
            }
        }
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

    /// Each watched partition's worst `lag_status` status over
    /// `monitor_ids` at the group's latest sample, by topic and partition.
    pub fn partition_statuses_of<'m>(
        &self,
        group: &str,
        monitor_ids: impl IntoIterator<Item = &'m i64>,
    ) -> Vec<((String, i32), lagwatch_rules::Status)> {
        let mut worst: std::collections::BTreeMap<(String, i32), lagwatch_rules::Status> =
            std::collections::BTreeMap::new();
        for (windows, _) in monitor_ids
            .into_iter()
            .filter_map(|id| self.status.get(&(*id, group.to_string())))
        {
            for (key, status) in windows.partition_statuses() {
                let entry = worst.entry(key.clone()).or_default();
                *entry = (*entry).max(*status);
            }
        }
        worst.into_iter().collect()
    }

    /// Forgets every alert of `monitor_id` on `group` (after the monitor
    /// changed so that they no longer apply): the next sample judges
    /// afresh, so a monitor that moved to another team pages that team.
    pub fn forget_group(&mut self, monitor_id: i64, group: &str) {
        self.threshold
            .retain(|key, _| !(key.monitor_id == monitor_id && key.group == group));
        self.status
            .retain(|(id, g), _| !(*id == monitor_id && g == group));
        self.firing_topics.remove(&(monitor_id, group.to_string()));
        self.vanishing
            .retain(|(id, g, _), _| !(*id == monitor_id && g == group));
    }

    /// Forgets state of monitors that no longer exist.
    pub fn retain_monitors(&mut self, monitors: &[Monitor]) {
        let kept = |id: &i64| monitors.iter().any(|m| m.id == *id);
        self.threshold.retain(|key, _| kept(&key.monitor_id));
        self.status.retain(|(id, _), _| kept(id));
        self.firing_topics.retain(|(id, _), _| kept(id));
        self.vanishing.retain(|(id, _, _), _| kept(id));
        self.last_sample.retain(|(id, _), _| kept(id));
    }

    /// The metrics-topic partition the next samples come from: a group is
    /// only judged gone while its partition is still this instance's.
    pub fn set_partition(&mut self, partition: i32) {
        self.partition = Some(partition);
    }

    /// After a rebalance: silently forgets the groups whose samples came
    /// from partitions no longer `owned` (their new owner judges them; not
    /// being sampled here any more does not make them gone).
    pub fn retain_partitions(&mut self, owned: &[i32]) {
        let moved: Vec<(i64, String)> = self
            .last_sample
            .iter()
            .filter(|(_, last)| last.partition.is_some_and(|p| !owned.contains(&p)))
            .map(|(key, _)| key.clone())
            .collect();
        for (monitor_id, group) in moved {
            self.forget_group(monitor_id, &group);
            self.last_sample.remove(&(monitor_id, group));
        }
    }

    /// Number of (monitor, group) pairs the engine holds any state for.
    pub fn groups(&self) -> usize {
        self.last_sample.len()
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
    rule: Rule,
    state: AlertState,
    threshold: i64,
    partitions: Vec<LaggingPartition>,
    status: Option<String>,
) -> AlertEvent {
    let isolation = monitor.isolation;
    let lags = || watched.iter().filter_map(|p| p.lag_for(isolation));
    AlertEvent {
        fingerprint: fingerprint_of(&rule, monitor, &sample.group, None),
        rule,
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
        status,
        topic: None,
        value: None,
        broker: None,
        reason: None,
        group_status: None,
    }
}

/// Where and when a (monitor, group) was last sampled.
#[derive(Debug, Clone)]
struct LastSample {
    cluster: String,
    ts_ms: i64,
    partition: Option<i32>,
}

/// Whether `sample` tells nothing about the group because the cluster did
/// not answer (metadata or group listing failed): no partition, an error,
/// and no group state. Such samples never count as the group being gone.
fn is_blind(sample: &GroupSample) -> bool {
    sample.partitions.is_empty() && sample.error.is_some() && sample.state == "Unknown"
}

/// Whether a watched partition missing from `sample` really is gone: the
/// sample is complete, or its only errors are the collector's notes that a
/// topic does not exist or that offsets point at deleted topics. A sample
/// with any other error (an unanswered OffsetFetch, a leader that did not
/// give an end offset) proves nothing about what it lacks.
fn absence_is_conclusive(sample: &GroupSample) -> bool {
    match &sample.error {
        None => true,
        Some(error) => error.split("; ").all(|note| {
            (note.starts_with("topic ") && note.ends_with(" does not exist"))
                || note.starts_with("committed offsets on deleted topics:")
        }),
    }
}

/// Stable identity of an alert: rule, monitor, cluster, group and, for
/// per-topic rules, topic.
pub fn fingerprint_of(rule: &Rule, monitor: &Monitor, group: &str, topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("{rule}/{}/{}/{group}/{topic}", monitor.id, monitor.cluster),
        None => format!("{rule}/{}/{}/{group}", monitor.id, monitor.cluster),
    }
}

/// Stable identity of a monitor's threshold alert on one group.
pub fn fingerprint(monitor: &Monitor, group: &str) -> String {
    fingerprint_of(&THRESHOLD_RULE, monitor, group, None)
}

#[cfg(test)]
mod tests {
    use lagwatch_model::alert::rule;
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

    /// A `billing` sample after its only topic was deleted: the collector
    /// notes it and has no partition left to report.
    fn topic_deleted(ts_ms: i64) -> GroupSample {
        let mut s = sample(ts_ms, &[]);
        s.state = "Empty".into();
        s.members = 0;
        s.error = Some("committed offsets on deleted topics: orders".into());
        s
    }

    /// A sample taken while the cluster did not answer at all.
    fn blind(ts_ms: i64) -> GroupSample {
        let mut s = sample(ts_ms, &[]);
        s.state = "Unknown".into();
        s.error = Some("all brokers down".into());
        s
    }

    /// Threshold, total and lag_status alerts firing on a stuck `billing`.
    fn firing_engine(grace_ms: u64) -> (Engine, Vec<Monitor>) {
        let mut m = monitor(&[]);
        m.alerting.total_lag_threshold = Some(100);
        let monitors = vec![m];
        let mut engine =
            Engine::new().with_vanish_grace(std::time::Duration::from_millis(grace_ms));
        for i in 0..12 {
            engine.observe(&offsets(i * 1_000, 100, 1_000), &monitors);
        }
        assert_eq!(engine.firing(), 3, "threshold, total and lag_status fire");
        (engine, monitors)
    }

    #[test]
    fn a_deleted_topic_vanishes_every_alert_of_the_group_after_the_grace() {
        let (mut engine, monitors) = firing_engine(5_000);
        // Blind samples (cluster down) never start the grace.
        for ts in [12_000, 20_000, 30_000] {
            assert!(engine.observe(&blind(ts), &monitors).is_empty());
        }
        assert!(engine.take_vanished().is_empty());
        assert_eq!(engine.firing(), 3, "an outage keeps the alerts firing");
        for ts in [31_000, 33_000, 35_000] {
            engine.observe(&topic_deleted(ts), &monitors);
            assert!(
                engine.take_vanished().is_empty(),
                "within the grace at {ts}"
            );
        }
        engine.observe(&topic_deleted(36_000), &monitors);
        let vanished = engine.take_vanished();
        assert_eq!(vanished.len(), 1, "{vanished:?}");
        assert_eq!(vanished[0].topic, None);
        assert_eq!(vanished[0].ts_ms, 36_000);
        assert!(
            vanished[0].reason.contains("deleted topics: orders"),
            "{}",
            vanished[0].reason
        );
        assert_eq!(engine.firing(), 0, "state forgotten");
        for ts in [40_000, 50_000, 60_000] {
            engine.observe(&topic_deleted(ts), &monitors);
        }
        assert!(engine.take_vanished().is_empty(), "vanished once");
    }

    #[test]
    fn a_group_whose_offsets_are_gone_vanishes_but_one_odd_sample_does_not() {
        let (mut engine, monitors) = firing_engine(5_000);
        // No offsets left, and an unanswered OffsetFetch (inconclusive).
        let mut failed = sample(12_000, &[]);
        failed.error = Some("no committed offsets returned".into());
        engine.observe(&failed, &monitors);
        engine.observe(&sample(13_000, &[]), &monitors);
        // Back with data: the grace starts over.
        engine.observe(&offsets(14_000, 100, 1_000), &monitors);
        engine.observe(&sample(18_000, &[]), &monitors);
        assert!(engine.take_vanished().is_empty());
        engine.observe(&sample(23_000, &[]), &monitors);
        let vanished = engine.take_vanished();
        assert_eq!(vanished.len(), 1);
        assert!(vanished[0].reason.contains("no committed offset left"));
    }

    #[test]
    fn a_deleted_topic_resolves_only_its_own_topic_alert() {
        let mut m = monitor(&[]);
        m.alerting.topic_lag_threshold = Some(100);
        m.lag_threshold = 10_000;
        let monitors = vec![m];
        let mut engine = Engine::new().with_vanish_grace(std::time::Duration::from_secs(2));
        let both = |ts| sample(ts, &[("orders", 900), ("refunds", 900)]);
        let fired = engine.observe(&both(0), &monitors);
        assert_eq!(fired.len(), 2, "{fired:?}");
        for ts in [1_000, 2_000, 3_000, 4_000] {
            let mut only_orders = sample(ts, &[("orders", 900)]);
            only_orders.error = Some("committed offsets on deleted topics: refunds".into());
            engine.observe(&only_orders, &monitors);
        }
        let vanished = engine.take_vanished();
        assert_eq!(vanished.len(), 1, "{vanished:?}");
        assert_eq!(vanished[0].topic.as_deref(), Some("refunds"));
        let still: Vec<&String> = engine
            .firing_topics
            .get(&(7, "billing".to_string()))
            .map(|t| t.iter().collect())
            .unwrap_or_default();
        assert_eq!(still, ["orders"], "the orders alert still fires");
    }

    #[test]
    fn a_pattern_group_no_longer_sampled_vanishes_and_is_forgotten() {
        let mut pattern = monitor(&[]);
        pattern.consumer_group = "bill.*".into();
        pattern.group_match = lagwatch_model::GroupMatch::Regex;
        let monitors = vec![pattern];
        let mut engine = Engine::new().with_vanish_grace(std::time::Duration::from_secs(10));
        engine.set_partition(0);
        let mut gone = sample(0, &[("orders", 900)]);
        gone.group = "billing-old".into();
        assert_eq!(engine.observe(&gone, &monitors).len(), 1);
        let mut other = sample(0, &[("orders", 0)]);
        other.group = "billing-new".into();
        // The cluster answers but billing-old is no longer among its groups.
        for ts in (1..=9).map(|s| s * 1_000) {
            other.ts_ms = ts;
            engine.observe(&other, &monitors);
        }
        assert!(engine.take_vanished().is_empty(), "within the grace");
        // A blind cluster does not count towards the grace.
        for ts in (10..=30).map(|s| s * 1_000) {
            let mut outage = blind(ts);
            outage.group = "billing-new".into();
            engine.observe(&outage, &monitors);
        }
        assert!(
            engine.take_vanished().is_empty(),
            "an outage is no vanishing"
        );
        for ts in (31..=35).map(|s| s * 1_000) {
            other.ts_ms = ts;
            engine.observe(&other, &monitors);
        }
        let vanished = engine.take_vanished();
        assert_eq!(vanished.len(), 1, "{vanished:?}");
        assert_eq!(vanished[0].group, "billing-old");
        assert!(vanished[0].reason.contains("no longer on cluster local"));
        assert_eq!(
            engine.take_gone_groups(),
            vec![("local".to_string(), "billing-old".to_string())]
        );
        assert_eq!(engine.groups(), 1, "only billing-new is held");
        assert_eq!(engine.firing(), 0);
    }

    #[test]
    fn groups_of_partitions_moved_away_are_forgotten_not_vanished() {
        let monitors = vec![monitor(&[])];
        let mut engine = Engine::new().with_vanish_grace(std::time::Duration::from_secs(1));
        engine.set_partition(3);
        assert_eq!(
            engine
                .observe(&sample(0, &[("orders", 900)]), &monitors)
                .len(),
            1
        );
        engine.retain_partitions(&[0, 1]);
        assert_eq!(engine.groups(), 0);
        let mut other = sample(0, &[("orders", 0)]);
        other.group = "shipping".into();
        let mut shipping = monitor(&[]);
        shipping.id = 8;
        shipping.consumer_group = "shipping".into();
        engine.set_partition(0);
        for ts in (1..=20).map(|s| s * 1_000) {
            other.ts_ms = ts;
            engine.observe(&other, std::slice::from_ref(&shipping));
        }
        assert!(engine.take_vanished().is_empty());
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
            Vec<(usize, Rule, AlertState, Option<&str>)>,
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
                .map(|(i, e)| (*i, e.rule.clone(), e.state, e.status.as_deref()))
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
                    got.push((i, e.rule.to_string(), e.topic.clone(), e.state, e.value));
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
        assert_eq!(fired[0].rule, Rule::TimeLagThreshold);
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
