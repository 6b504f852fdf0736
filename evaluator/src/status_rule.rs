//! The `lag_status` rule: Burrow-style window status of a monitored group.
//!
//! For every (monitor, group) the engine keeps one [`GroupWindows`]: a
//! [`Window`] per watched (topic, partition), fed one point per sample with
//! the monitor's isolation, and whether the alert is firing. The group's
//! status is the worst partition status ([`group_status`]) under the default
//! [`WindowRules`].
//!
//! # Alerting
//! - fires when the group status becomes an error (STALL, STOP, REWIND);
//!   WARN never pages;
//! - while firing, a change between error kinds (e.g. STALL → STOP) pages
//!   no one — one incident is one page — but is reported as
//!   [`StatusTransition::Change`]: the evaluator records it in the alert
//!   history (an `alert_events` row with the new status, marked not sent)
//!   and later reminders and the resolve carry the new status;
//! - resolves when the status is back to OK or WARN;
//! - UNKNOWN (too little data, or every window forgotten) neither fires nor
//!   resolves: missing data changes nothing, as for the threshold rule.
//!
//! # Memory bound
//! Each window holds at most [`lagwatch_rules::window::DEFAULT_CAPACITY`]
//! points. A partition's window is dropped once the partition has been
//! absent from the group's samples for [`STALE_AFTER_MS`] of sample time; a
//! group that received no sample for that long is dropped whole by
//! [`GroupWindows::is_stale`] sweeps, except that a firing alert keeps its
//! (window-less) entry so that it can still resolve. Memory is therefore
//! O(watched partitions seen in the last [`STALE_AFTER_MS`] × capacity) plus
//! one small entry per firing alert.

use std::collections::HashMap;

use lagwatch_model::{GroupSample, Isolation, PartitionSample, Rule};
use lagwatch_rules::{evaluate, group_status, GroupStatus, Point, Status, Window, WindowRules};

/// Name of the window-status rule in fingerprints and history.
pub const STATUS_RULE: Rule = Rule::LagStatus;

/// Sample time after which an unseen partition's window, or an unseen
/// group's windows, are forgotten (10 minutes).
pub const STALE_AFTER_MS: i64 = 10 * 60 * 1000;

/// What one observation did to a group's `lag_status` alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusTransition {
    /// The group entered an error status: the partitions at that status.
    Fire(GroupStatus<(String, i32)>),
    /// The group is back to OK or WARN (the status it is back to).
    Resolve(Status),
    /// While firing, the group moved to another error status (STALL →
    /// STOP, STOP → REWIND, ...): the partitions at the new status.
    Change(GroupStatus<(String, i32)>),
}

/// A partition's window and when the partition was last sampled.
#[derive(Debug)]
struct PartitionWindow {
    window: Window,
    last_seen_ms: i64,
}

/// Windows and alert state of one (monitor, group).
#[derive(Debug, Default)]
pub struct GroupWindows {
    partitions: HashMap<(String, i32), PartitionWindow>,
    /// Error status the alert fired with (updated while firing).
    firing: Option<Status>,
    /// The group's status at the latest judged sample.
    status: Status,
    /// Each partition's status at the latest judged sample.
    partition_statuses: Vec<((String, i32), Status)>,
    /// Sample time of the newest sample of the group.
    last_seen_ms: i64,
}

impl GroupWindows {
    /// The group's status at the latest judged sample (`Unknown` before
    /// the windows are full enough).
    pub fn status(&self) -> Status {
        self.status
    }

    /// Each watched partition's status at the latest judged sample, by
    /// topic and partition.
    pub fn partition_statuses(&self) -> &[((String, i32), Status)] {
        &self.partition_statuses
    }

    /// Whether the alert is firing.
    pub fn is_firing(&self) -> bool {
        self.firing.is_some()
    }

    /// The error status of the firing alert (the latest one seen while
    /// firing); `None` when not firing.
    pub fn firing_status(&self) -> Option<Status> {
        self.firing
    }

    /// Number of partition windows held.
    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    /// Whether no partition window is held.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Whether the group has had no sample for [`STALE_AFTER_MS`] before
    /// `now_ms`; a stale group's windows are forgotten.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) > STALE_AFTER_MS
    }

    /// Forgets every window, keeping the alert state.
    /// Takes over a firing state recorded before a restart (`status` as in
    /// [`Status::as_str`]; an unreadable one counts as STOP).
    pub fn restore_firing(&mut self, status: Option<&str>) {
        let status = status
            .and_then(|s| Status::ALL.iter().copied().find(|k| k.as_str() == s))
            .filter(|s| s.is_error())
            .unwrap_or(Status::Stop);
        self.firing = Some(status);
    }

    pub fn forget_windows(&mut self) {
        self.partitions.clear();
    }

    /// Pushes one point per watched partition of `sample` without judging
    /// the group: the warm-up of windows from samples an earlier owner
    /// already judged (after a rebalance).
    pub fn warm<'a>(
        &mut self,
        sample: &GroupSample,
        watched: impl IntoIterator<Item = &'a PartitionSample>,
        isolation: Isolation,
    ) {
        self.push(sample, watched, isolation);
    }

    fn push<'a>(
        &mut self,
        sample: &GroupSample,
        watched: impl IntoIterator<Item = &'a PartitionSample>,
        isolation: Isolation,
    ) {
        let now = sample.ts_ms;
        self.last_seen_ms = self.last_seen_ms.max(now);
        for p in watched {
            let entry = self
                .partitions
                .entry((p.topic.clone(), p.partition))
                .or_insert_with(|| PartitionWindow {
                    window: Window::default(),
                    last_seen_ms: now,
                });
            entry.last_seen_ms = entry.last_seen_ms.max(now);
            entry.window.push(Point {
                ts_ms: now,
                committed: p.committed,
                end: p.end,
                lag: p.lag_for(isolation),
            });
        }
        self.partitions
            .retain(|_, w| now.saturating_sub(w.last_seen_ms) <= STALE_AFTER_MS);
    }

    /// Pushes one point per watched partition of `sample`, drops windows of
    /// partitions unseen for [`STALE_AFTER_MS`], and returns the alert
    /// transition, if any, with the group status behind it.
    pub fn observe<'a>(
        &mut self,
        sample: &GroupSample,
        watched: impl IntoIterator<Item = &'a PartitionSample>,
        isolation: Isolation,
        rules: &WindowRules,
    ) -> Option<StatusTransition> {
        self.push(sample, watched, isolation);

        let mut statuses: Vec<((String, i32), Status)> = self
            .partitions
            .iter()
            .map(|(key, w)| (key.clone(), evaluate(&w.window, rules)))
            .collect();
        statuses.sort();
        let group = group_status(statuses.iter().cloned());
        self.partition_statuses = statuses;
        self.status = group.status;
        match (self.firing, group.status) {
            (_, Status::Unknown) => None,
            (None, status) if status.is_error() => {
                self.firing = Some(status);
                let mut group = group;
                group.partitions.sort();
                Some(StatusTransition::Fire(group))
            }
            (Some(previous), status) if status.is_error() => {
                self.firing = Some(status);
                (previous != status).then_some(StatusTransition::Change(group))
            }
            (Some(_), status) => {
                self.firing = None;
                Some(StatusTransition::Resolve(status))
            }
            (None, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::WIRE_VERSION;

    use super::*;

    fn stuck(ts_ms: i64) -> GroupSample {
        GroupSample {
            v: WIRE_VERSION,
            cluster: "local".into(),
            group: "billing".into(),
            state: "Empty".into(),
            members: 0,
            ts_ms,
            error: None,
            partitions: vec![
                PartitionSample::new("orders", 0, Some(100), 1_000),
                PartitionSample::new("orders", 1, Some(1_000), 1_000),
            ],
        }
    }

    #[test]
    fn stall_fires_then_stop_is_a_change_not_a_second_fire() {
        let mut windows = GroupWindows::default();
        let rules = WindowRules::default();
        let mut transitions = Vec::new();
        for i in 0..12 {
            let sample = stuck(i * 5_000);
            if let Some(t) = windows.observe(
                &sample,
                sample.partitions.iter(),
                Isolation::ReadUncommitted,
                &rules,
            ) {
                transitions.push((i, t));
            }
        }
        let kinds: Vec<_> = transitions
            .iter()
            .map(|(i, t)| match t {
                StatusTransition::Fire(g) => (*i, "fire", g.status),
                StatusTransition::Change(g) => (*i, "change", g.status),
                StatusTransition::Resolve(s) => (*i, "resolve", *s),
            })
            .collect();
        assert_eq!(
            kinds,
            [(4, "fire", Status::Stall), (10, "change", Status::Stop)],
            "{transitions:?}"
        );
        assert_eq!(windows.firing_status(), Some(Status::Stop));
        // Partition 1 is caught up: OK, listed as such.
        assert_eq!(
            windows.partition_statuses(),
            [
                (("orders".to_string(), 0), Status::Stop),
                (("orders".to_string(), 1), Status::Ok)
            ]
        );
    }
}
