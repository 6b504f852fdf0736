//! `GET /monitors/{id}/status`: the latest lag of every watched partition
//! of a monitor's group(s), from ClickHouse, with a per-partition verdict
//! against the monitor's threshold.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use lagwatch_model::{Matcher, Monitor};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input;
use crate::monitors::visible_monitor;
use crate::router::ApiState;
use lagwatch_history::reader::{self as history, LatestPartition};

/// The answer of `/monitors/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorStatus {
    pub monitor_id: i64,
    pub lag_threshold: i64,
    /// How far back samples are looked for.
    pub window_secs: u32,
    /// One entry per group with samples in the window, by name.
    pub groups: Vec<GroupStatus>,
}

/// The latest state of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    pub cluster: String,
    pub consumer_group: String,
    /// Time of the newest sample of any of its partitions.
    pub ts_ms: i64,
    pub max_lag: i64,
    pub total_lag: i64,
    pub max_time_lag_ms: Option<i64>,
    /// The worst partition status.
    pub status: PartitionState,
    pub partitions: Vec<PartitionStatus>,
}

/// The latest state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    /// `null` when the group has no committed offset here.
    pub lag: Option<i64>,
    pub time_lag_ms: Option<i64>,
    pub status: PartitionState,
}

/// A partition's lag against the monitor's `lag_threshold`, in order of
/// severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    Ok,
    NoOffset,
    OverThreshold,
}

/// `GET /monitors/{id}/status`.
pub async fn monitor_status(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MonitorStatus>, ApiError> {
    let id = input::path_id(path)?;
    let monitor = visible_monitor(&caller, &state, id).await?;
    let config = state.clickhouse()?;
    let rows = history::latest_partitions(config, &monitor).await?;
    let mut status = summarise(&monitor, rows);
    // A team's pattern never shows groups it does not own.
    status.groups.retain(|group| {
        crate::scope::may_see_group(&caller, &state, &monitor.cluster, &group.consumer_group)
    });
    Ok(Json(status))
}

/// Groups partition rows by consumer group, keeping the topics the monitor
/// watches.
pub fn summarise(monitor: &Monitor, rows: Vec<LatestPartition>) -> MonitorStatus {
    let mut matcher = Matcher::new();
    let mut groups: BTreeMap<String, GroupStatus> = BTreeMap::new();
    for row in rows {
        if !matcher.covers_topic(monitor, &row.topic) {
            continue;
        }
        let status = match row.lag {
            None => PartitionState::NoOffset,
            Some(lag) if lag > monitor.lag_threshold => PartitionState::OverThreshold,
            Some(_) => PartitionState::Ok,
        };
        let group = groups
            .entry(row.consumer_group.clone())
            .or_insert_with(|| GroupStatus {
                cluster: monitor.cluster.clone(),
                consumer_group: row.consumer_group.clone(),
                ts_ms: row.ts_ms,
                max_lag: 0,
                total_lag: 0,
                max_time_lag_ms: None,
                status: PartitionState::Ok,
                partitions: Vec::new(),
            });
        group.ts_ms = group.ts_ms.max(row.ts_ms);
        let lag = row.lag.unwrap_or(0);
        group.max_lag = group.max_lag.max(lag);
        group.total_lag = group.total_lag.saturating_add(lag);
        group.max_time_lag_ms = match (group.max_time_lag_ms, row.time_lag_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        group.status = group.status.max(status);
        group.partitions.push(PartitionStatus {
            topic: row.topic,
            partition: row.partition,
            committed_offset: row.committed_offset,
            end_offset: row.end_offset,
            lag: row.lag,
            time_lag_ms: row.time_lag_ms,
            status,
        });
    }
    MonitorStatus {
        monitor_id: monitor.id,
        lag_threshold: monitor.lag_threshold,
        window_secs: history::STATUS_WINDOW_SECS,
        groups: groups.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: &str, topic: &str, partition: i32, lag: Option<i64>) -> LatestPartition {
        LatestPartition {
            consumer_group: group.into(),
            topic: topic.into(),
            partition,
            ts_ms: 1_000 + i64::from(partition),
            committed_offset: lag.map(|l| 1_000 - l),
            end_offset: 1_000,
            lag,
            time_lag_ms: lag.map(|l| l * 10),
        }
    }

    #[test]
    fn groups_sum_and_judge_partitions() {
        let monitor = Monitor {
            id: 7,
            team: "payments".into(),
            cluster: "local".into(),
            consumer_group: "billing-.*".into(),
            group_match: lagwatch_model::GroupMatch::Regex,
            topics: vec!["orders".into()],
            topic_regex: None,
            lag_threshold: 500,
            for_secs: 0,
            emails: vec![],
            isolation: Default::default(),
            time_lag: Default::default(),
            alerting: Default::default(),
        };
        let status = summarise(
            &monitor,
            vec![
                row("billing-eu", "orders", 0, Some(900)),
                row("billing-eu", "orders", 1, Some(100)),
                row("billing-eu", "audit", 0, Some(5_000)),
                row("billing-us", "orders", 0, None),
            ],
        );
        assert_eq!(status.groups.len(), 2);
        let eu = &status.groups[0];
        assert_eq!(
            (eu.max_lag, eu.total_lag, eu.max_time_lag_ms, eu.ts_ms),
            (900, 1_000, Some(9_000), 1_001)
        );
        assert_eq!(eu.status, PartitionState::OverThreshold);
        assert_eq!(eu.partitions.len(), 2, "unwatched topic left out");
        assert_eq!(eu.partitions[1].status, PartitionState::Ok);
        let us = &status.groups[1];
        assert_eq!((us.max_lag, us.status), (0, PartitionState::NoOffset));
    }
}
