//! ClickHouse queries behind `lagwatch status` and the API's status answer:
//! the recent samples of every watched partition of a monitor's group(s),
//! enough to replay the evaluator's `lag_status` window, with the group's
//! state and members.
//!
//! The evaluator does not store partition or group statuses; readers
//! derive them from these samples with the same window rules
//! ([`crate::status_replay`]). Lag is not read: it depends on the monitor's
//! isolation, so it is computed from the offsets read (committed, high
//! watermark, last stable offset). Values are always bound, never spliced
//! into the SQL.

use crate::reader::{Bounded, STATUS_WINDOW_SECS};
use crate::rows::SampleRow;
use crate::{ClickHouseConfig, HistoryError};
use lagwatch_model::matching::anchored_pattern;
use lagwatch_model::{GroupMatch, Monitor};

/// Most sample rows one answer reads (partitions × points).
const MAX_ROWS: u32 = 200_000;

/// One stored sample of one partition of one group: a [`SampleRow`] of
/// a known cluster, with the last stable offset as an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPoint {
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub ts_ms: i64,
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    /// Last stable offset, stored for groups a read_committed monitor
    /// watches.
    pub lso_offset: Option<i64>,
    pub time_lag_ms: Option<i64>,
    /// The group's state as the collector last described it (`Stable`,
    /// `Empty`, ...); may be up to a few cycles old.
    pub group_state: String,
    pub members: u32,
}

impl From<SampleRow> for PartitionPoint {
    fn from(row: SampleRow) -> Self {
        PartitionPoint {
            lso_offset: row
                .lso_behind_end
                .map(|behind| row.end_offset.saturating_sub(behind)),
            consumer_group: row.consumer_group,
            topic: row.topic,
            partition: row.partition,
            ts_ms: row.ts,
            committed_offset: row.committed_offset,
            end_offset: row.end_offset,
            time_lag_ms: row.time_lag_ms,
            group_state: row.group_state,
            members: row.members,
        }
    }
}

/// The newest `points` samples (within [`STATUS_WINDOW_SECS`]) of each
/// partition of the group(s) and topics `monitor` watches on its cluster,
/// ordered by group, topic, partition and time, oldest first. Groups and
/// topic patterns match whole names, like the collector.
pub async fn recent_points(
    config: &ClickHouseConfig,
    monitor: &Monitor,
    points: u32,
) -> Result<Vec<PartitionPoint>, HistoryError> {
    let (group_condition, group) = match monitor.group_match {
        GroupMatch::Exact => ("consumer_group = ?", monitor.consumer_group.clone()),
        GroupMatch::Regex => match anchored_pattern(&monitor.consumer_group) {
            Ok(anchored) => ("match(consumer_group, ?)", anchored),
            // Refused by the store; like the collector, it matches nothing.
            Err(_) => return Ok(Vec::new()),
        },
    };
    let topic_regex = match monitor.topic_regex.as_deref().map(anchored_pattern) {
        Some(Ok(anchored)) => Some(anchored),
        Some(Err(_)) => return Ok(Vec::new()),
        None => None,
    };
    let topic_condition = match (monitor.topics.is_empty(), &topic_regex) {
        (true, None) => "1 = 1",
        (false, None) => "has(?, topic)",
        (true, Some(_)) => "match(topic, ?)",
        (false, Some(_)) => "(has(?, topic) OR match(topic, ?))",
    };
    let sql = format!(
        "SELECT * FROM ( \
           SELECT ?fields FROM lag_samples \
           WHERE cluster = ? AND {group_condition} AND {topic_condition} \
             AND ts >= now64(3) - toIntervalSecond(?) \
           ORDER BY consumer_group, topic, partition, ts DESC \
           LIMIT ? BY consumer_group, topic, partition \
           LIMIT {MAX_ROWS} \
         ) ORDER BY consumer_group, topic, partition, ts"
    );
    let mut query = crate::client(config)
        .with_database(&config.database)
        .query(&sql)
        .bind(&monitor.cluster)
        .bind(group);
    if !monitor.topics.is_empty() {
        query = query.bind(&monitor.topics);
    }
    if let Some(regex) = topic_regex {
        query = query.bind(regex);
    }
    let read = query
        .bind(STATUS_WINDOW_SECS)
        .bind(points)
        .fetch_all::<SampleRow>()
        .bounded(config)
        .await?;
    let points = read.into_iter().map(PartitionPoint::from).collect();
    Ok(current_partitions(points, STALE_PARTITION_MS))
}

/// A partition whose newest sample is this much older than its group's
/// newest is no longer sampled (its topic was deleted, or the monitor no
/// longer watches it): status answers leave it out instead of showing it
/// for the whole window. Several cycles, so one incomplete sample does not
/// hide a partition.
pub const STALE_PARTITION_MS: i64 = 60_000;

/// `points` (ordered by group, topic, partition, time) without the
/// partitions whose newest point is more than `stale_ms` older than their
/// group's newest.
pub fn current_partitions(points: Vec<PartitionPoint>, stale_ms: i64) -> Vec<PartitionPoint> {
    use std::collections::HashMap;
    let mut group_newest: HashMap<&str, i64> = HashMap::new();
    let mut partition_newest: HashMap<(&str, &str, i32), i64> = HashMap::new();
    for p in &points {
        let group = group_newest
            .entry(p.consumer_group.as_str())
            .or_insert(p.ts_ms);
        *group = (*group).max(p.ts_ms);
        let partition = partition_newest
            .entry((p.consumer_group.as_str(), p.topic.as_str(), p.partition))
            .or_insert(p.ts_ms);
        *partition = (*partition).max(p.ts_ms);
    }
    let current: std::collections::HashSet<(String, String, i32)> = partition_newest
        .into_iter()
        .filter(|((group, _, _), newest)| {
            group_newest
                .get(group)
                .is_some_and(|group_newest| group_newest - newest <= stale_ms)
        })
        .map(|((group, topic, partition), _)| (group.to_string(), topic.to_string(), partition))
        .collect();
    points
        .into_iter()
        .filter(|p| current.contains(&(p.consumer_group.clone(), p.topic.clone(), p.partition)))
        .collect()
}

#[cfg(test)]
mod current_tests {
    use super::*;

    fn point(topic: &str, partition: i32, ts_ms: i64) -> PartitionPoint {
        PartitionPoint {
            consumer_group: "g".into(),
            topic: topic.into(),
            partition,
            ts_ms,
            committed_offset: Some(1),
            end_offset: 2,
            lso_offset: None,
            time_lag_ms: None,
            group_state: "Stable".into(),
            members: 1,
        }
    }

    #[test]
    fn partitions_of_a_deleted_topic_leave_the_answer() {
        let points = vec![
            point("deleted", 0, 0),
            point("deleted", 0, 10_000),
            point("kept", 0, 10_000),
            point("kept", 0, 80_000),
            // One incomplete sample missed this partition: still current.
            point("kept", 1, 70_000),
        ];
        let kept = current_partitions(points, STALE_PARTITION_MS);
        assert!(kept.iter().all(|p| p.topic == "kept"), "{kept:?}");
        assert_eq!(kept.len(), 3);
    }
}
