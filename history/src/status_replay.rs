//! The one replay of the `lag_status` window from stored samples, shared
//! by `lagwatch status` and the API's status answer (and so the web page).
//!
//! The evaluator judges each group in memory and stores no status per
//! sample; readers of the history derive the same word by pushing each
//! partition's newest samples through the evaluator's own window rules
//! ([`lagwatch_rules::evaluate`], with the rules files' settings for the
//! group). Lag is the monitor's own: against the last stable offset for a
//! read_committed monitor ([`PartitionSample::lag_for`], the function the
//! evaluator judges with), else the high watermark. Keeping this in one
//! place is what makes the CLI, the API and the page say the same thing.

use std::collections::BTreeMap;

use lagwatch_model::{GroupMatch, Monitor, PartitionSample};
use lagwatch_rules::window::DEFAULT_CAPACITY;
use lagwatch_rules::{evaluate, group_status, Point, RuleSet, Status, Window};

use crate::status_reader::PartitionPoint;

/// How many samples per partition a replay judges: the evaluator's window.
pub const REPLAY_POINTS: u32 = DEFAULT_CAPACITY as u32;

/// One partition as replayed: its status and its newest sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedPartition {
    pub status: Status,
    /// The newest stored sample of the partition.
    pub newest: PartitionPoint,
    /// The monitor's lag at the newest sample (`None` without a committed
    /// offset).
    pub lag: Option<i64>,
    /// How many samples the status was judged from.
    pub samples: usize,
}

/// One consumer group of one monitor as replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedGroup {
    pub consumer_group: String,
    /// The worst partition status; `Unknown` without samples.
    pub status: Status,
    /// The group's newest sample time, members and state, when sampled.
    pub newest_ts_ms: Option<i64>,
    pub members: Option<u32>,
    pub group_state: Option<String>,
    /// By topic and partition.
    pub partitions: Vec<ReplayedPartition>,
}

impl PartitionPoint {
    /// The stored sample as the collector published it (what the
    /// evaluator's lag function takes).
    pub fn as_sample(&self) -> PartitionSample {
        PartitionSample {
            lso: self.lso_offset,
            time_lag_ms: self.time_lag_ms,
            ..PartitionSample::new(
                self.topic.clone(),
                self.partition,
                self.committed_offset,
                self.end_offset,
            )
        }
    }

    /// The lag `monitor` is judged on at this sample.
    pub fn lag_for(&self, monitor: &Monitor) -> Option<i64> {
        self.as_sample().lag_for(monitor.isolation)
    }
}

/// The groups of `monitor` judged from `points` (ordered by group, topic,
/// partition and time, oldest first, as [`crate::status_reader::recent_points`]
/// returns them). An exact-name monitor without samples still gets a group,
/// `Unknown` and without partitions.
pub fn replay(monitor: &Monitor, points: &[PartitionPoint], rules: &RuleSet) -> Vec<ReplayedGroup> {
    let mut by_group: BTreeMap<&str, BTreeMap<(&str, i32), Vec<&PartitionPoint>>> = BTreeMap::new();
    for point in points {
        by_group
            .entry(point.consumer_group.as_str())
            .or_default()
            .entry((point.topic.as_str(), point.partition))
            .or_default()
            .push(point);
    }
    if by_group.is_empty() && monitor.group_match == GroupMatch::Exact {
        by_group.insert(monitor.consumer_group.as_str(), BTreeMap::new());
    }
    by_group
        .into_iter()
        .map(|(group, series)| replay_group(monitor, group, series, rules))
        .collect()
}

fn replay_group(
    monitor: &Monitor,
    group: &str,
    series: BTreeMap<(&str, i32), Vec<&PartitionPoint>>,
    rules: &RuleSet,
) -> ReplayedGroup {
    let window_rules = rules.status_for(&monitor.cluster, group).window_rules();
    let mut partitions = Vec::with_capacity(series.len());
    for points in series.into_values() {
        let mut sorted = points;
        sorted.sort_by_key(|p| p.ts_ms);
        let Some(newest) = sorted.last().copied() else {
            continue;
        };
        let mut window = Window::new(DEFAULT_CAPACITY);
        for p in &sorted {
            window.push(Point {
                ts_ms: p.ts_ms,
                committed: p.committed_offset,
                end: p.end_offset,
                lag: p.lag_for(monitor),
            });
        }
        partitions.push(ReplayedPartition {
            status: evaluate(&window, &window_rules),
            lag: newest.lag_for(monitor),
            newest: newest.clone(),
            samples: sorted.len(),
        });
    }
    let newest = partitions.iter().map(|p| &p.newest).max_by_key(|p| p.ts_ms);
    ReplayedGroup {
        consumer_group: group.to_string(),
        status: group_status(partitions.iter().map(|p| ((), p.status))).status,
        newest_ts_ms: newest.map(|p| p.ts_ms),
        members: newest.map(|p| p.members),
        group_state: newest.map(|p| p.group_state.clone()),
        partitions,
    }
}

/// The upper-case word people read for a status (`OK`, `WARN`, `STALL`,
/// `STOP`, `REWIND`, `UNKNOWN`).
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Unknown => "UNKNOWN",
        Status::Ok => "OK",
        Status::Warn => "WARN",
        Status::Stall => "STALL",
        Status::Stop => "STOP",
        Status::Rewind => "REWIND",
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::fixtures::MonitorBuilder;
    use lagwatch_model::Isolation;

    use super::*;

    fn monitor(isolation: Isolation) -> Monitor {
        MonitorBuilder::new("billing")
            .id(7)
            .team("demo")
            .for_secs(10)
            .emails(&[])
            .isolation(isolation)
            .build()
    }

    fn point(partition: i32, ts_ms: i64, committed: i64, end: i64, lso: i64) -> PartitionPoint {
        PartitionPoint {
            consumer_group: "billing".into(),
            topic: "orders".into(),
            partition,
            ts_ms,
            committed_offset: Some(committed),
            end_offset: end,
            lso_offset: Some(lso),
            time_lag_ms: None,
            group_state: "Stable".into(),
            members: 1,
        }
    }

    #[test]
    fn the_worst_partition_is_the_groups_status() {
        let mut points: Vec<_> = (0..6)
            .map(|i| point(0, i * 5_000, 0, 1_000 + i, 1_000 + i))
            .collect();
        points.extend((0..6).map(|i| point(1, i * 5_000, i * 100, 1_000, 1_000)));
        let groups = replay(
            &monitor(Isolation::ReadUncommitted),
            &points,
            &RuleSet::defaults(),
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].status, Status::Stall);
        let statuses: Vec<_> = groups[0].partitions.iter().map(|p| p.status).collect();
        assert_eq!(statuses, [Status::Stall, Status::Ok]);
        assert_eq!(groups[0].partitions[0].samples, 6);
    }

    #[test]
    fn a_read_committed_monitor_is_judged_on_the_last_stable_offset() {
        // Committed 990 behind an open transaction that holds the LSO at
        // 990 while the high watermark grows: caught up for read_committed,
        // stalled for read_uncommitted.
        let points: Vec<_> = (0..6)
            .map(|i| point(0, i * 5_000, 990, 1_000 + i * 10, 990))
            .collect();
        let rules = RuleSet::defaults();
        let committed = replay(&monitor(Isolation::ReadCommitted), &points, &rules);
        assert_eq!(committed[0].status, Status::Ok);
        assert_eq!(committed[0].partitions[0].lag, Some(0));
        let uncommitted = replay(&monitor(Isolation::ReadUncommitted), &points, &rules);
        assert_eq!(uncommitted[0].status, Status::Stall);
        assert_eq!(uncommitted[0].partitions[0].lag, Some(60));
    }

    #[test]
    fn an_exact_monitor_without_samples_is_unknown() {
        let groups = replay(
            &monitor(Isolation::ReadUncommitted),
            &[],
            &RuleSet::defaults(),
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(
            (groups[0].status, groups[0].newest_ts_ms),
            (Status::Unknown, None)
        );
        assert_eq!(status_word(groups[0].status), "UNKNOWN");
    }
}
