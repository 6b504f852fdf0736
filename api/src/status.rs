//! `GET /monitors/{id}/status`: every watched partition of a monitor's
//! group(s) as the history last saw it, with two separate verdicts:
//!
//! - `status`: the Burrow-style window status (`ok`, `warn`, `stall`,
//!   `stop`, `rewind`, `unknown`), replayed from the newest stored samples
//!   by [`lagwatch_history::status_replay`] — the same replay as `lagwatch
//!   status`, with the rules files' settings for the group;
//! - `threshold_state`: the newest lag against the monitor's
//!   `lag_threshold` (`ok`, `no_offset`, `over_threshold`).
//!
//! Lag is the monitor's own: against the last stable offset for a
//! read_committed monitor, else the high watermark (`lag_basis` says which).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use lagwatch_history::reader::STATUS_WINDOW_SECS;
use lagwatch_history::status_reader::recent_points;
use lagwatch_history::status_replay::{replay, ReplayedGroup, REPLAY_POINTS};
use lagwatch_model::{Isolation, Monitor};
use lagwatch_rules::{RuleSet, Status};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input;
use crate::monitors::{visible_monitor, MonitorId};
use crate::openapi::responses::{BadRequest, NotFound, RateLimited, Unauthorized, Unavailable};
use crate::openapi::schemas::WindowStatus;
use crate::router::ApiState;

/// The answer of `/monitors/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonitorStatus {
    pub monitor_id: i64,
    pub lag_threshold: i64,
    /// The monitor's isolation (`read_uncommitted`, `read_committed`).
    pub isolation: Isolation,
    /// What lag is measured against: the last stable offset for a
    /// read_committed monitor.
    pub lag_basis: LagBasis,
    /// How far back samples are looked for.
    pub window_secs: u32,
    /// One entry per group with samples in the window, by name.
    pub groups: Vec<GroupStatus>,
}

/// What a monitor's lag is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LagBasis {
    HighWatermark,
    LastStableOffset,
}

/// The latest state of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupStatus {
    pub cluster: String,
    pub consumer_group: String,
    /// Time of the newest sample of any of its partitions.
    pub ts_ms: i64,
    pub max_lag: i64,
    pub total_lag: i64,
    #[schema(required = true)]
    pub max_time_lag_ms: Option<i64>,
    /// The worst partition window status.
    #[schema(value_type = WindowStatus)]
    pub status: Status,
    /// The worst partition threshold verdict.
    pub threshold_state: ThresholdState,
    pub partitions: Vec<PartitionStatus>,
}

/// The latest state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    #[schema(required = true)]
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    /// Last stable offset, when sampled (groups of read_committed
    /// monitors).
    #[schema(required = true)]
    pub lso_offset: Option<i64>,
    /// `null` when the group has no committed offset here.
    #[schema(required = true)]
    pub lag: Option<i64>,
    #[schema(required = true)]
    pub time_lag_ms: Option<i64>,
    /// Window status, replayed from `samples` samples.
    #[schema(value_type = WindowStatus)]
    pub status: Status,
    /// How many samples the status was judged from.
    pub samples: usize,
    pub threshold_state: ThresholdState,
}

/// A partition's lag against the monitor's `lag_threshold`, in order of
/// severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdState {
    Ok,
    NoOffset,
    OverThreshold,
}

/// Latest lag per partition of the monitor's group(s), last 5 minutes, from ClickHouse
#[utoipa::path(
    get,
    path = "/api/v1/monitors/{id}/status",
    operation_id = "monitorStatus",
    params(MonitorId),
    responses(
        (status = 200, description = "Status", body = MonitorStatus),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn monitor_status(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MonitorStatus>, ApiError> {
    let id = input::path_id(path)?;
    let monitor = visible_monitor(&caller, &state, id).await?;
    let config = state.clickhouse()?;
    let points = recent_points(config, &monitor, REPLAY_POINTS).await?;
    let mut groups = replay(&monitor, &points, &rules_of(&state));
    // A team's pattern never shows groups it does not own.
    groups.retain(|group| {
        crate::scope::may_see_group(&caller, &state, &monitor.cluster, &group.consumer_group)
    });
    Ok(Json(summarise(&monitor, groups)))
}

fn rules_of(state: &ApiState) -> Arc<RuleSet> {
    state
        .rules()
        .unwrap_or_else(|| Arc::new(RuleSet::defaults()))
}

/// The answer from replayed groups; groups without samples are left out.
pub fn summarise(monitor: &Monitor, groups: Vec<ReplayedGroup>) -> MonitorStatus {
    let groups = groups
        .into_iter()
        .filter_map(|group| {
            let ts_ms = group.newest_ts_ms?;
            let partitions: Vec<PartitionStatus> = group
                .partitions
                .into_iter()
                .map(|p| PartitionStatus {
                    threshold_state: match p.lag {
                        None => ThresholdState::NoOffset,
                        Some(lag) if lag > monitor.lag_threshold => ThresholdState::OverThreshold,
                        Some(_) => ThresholdState::Ok,
                    },
                    topic: p.newest.topic,
                    partition: p.newest.partition,
                    committed_offset: p.newest.committed_offset,
                    end_offset: p.newest.end_offset,
                    lso_offset: p.newest.lso_offset,
                    lag: p.lag,
                    time_lag_ms: p.newest.time_lag_ms,
                    status: p.status,
                    samples: p.samples,
                })
                .collect();
            let lags = || partitions.iter().filter_map(|p| p.lag);
            Some(GroupStatus {
                cluster: monitor.cluster.clone(),
                consumer_group: group.consumer_group,
                ts_ms,
                max_lag: lags().max().unwrap_or(0),
                total_lag: lags().fold(0, i64::saturating_add),
                max_time_lag_ms: partitions.iter().filter_map(|p| p.time_lag_ms).max(),
                status: group.status,
                threshold_state: partitions
                    .iter()
                    .map(|p| p.threshold_state)
                    .max()
                    .unwrap_or(ThresholdState::Ok),
                partitions,
            })
        })
        .collect();
    MonitorStatus {
        monitor_id: monitor.id,
        lag_threshold: monitor.lag_threshold,
        isolation: monitor.isolation,
        lag_basis: match monitor.isolation {
            Isolation::ReadCommitted => LagBasis::LastStableOffset,
            Isolation::ReadUncommitted => LagBasis::HighWatermark,
        },
        window_secs: STATUS_WINDOW_SECS,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_history::status_reader::PartitionPoint;

    use super::*;

    fn point(group: &str, partition: i32, ts_ms: i64, committed: Option<i64>) -> PartitionPoint {
        PartitionPoint {
            consumer_group: group.into(),
            topic: "orders".into(),
            partition,
            ts_ms,
            committed_offset: committed,
            end_offset: 1_000,
            lso_offset: Some(950),
            time_lag_ms: committed.map(|c| (1_000 - c) * 10),
            group_state: "Stable".into(),
            members: 1,
        }
    }

    fn monitor(isolation: Isolation) -> Monitor {
        Monitor {
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
            isolation,
            time_lag: Default::default(),
            alerting: Default::default(),
        }
    }

    #[test]
    fn window_status_and_threshold_verdict_are_separate() {
        let monitor = monitor(Isolation::ReadUncommitted);
        // billing-eu partition 0: stuck 900 behind for six samples (STALL,
        // over the threshold); partition 1: 100 behind once (UNKNOWN: one
        // sample); billing-us: no committed offset.
        let mut points: Vec<_> = (0..6)
            .map(|i| point("billing-eu", 0, i * 5_000, Some(100)))
            .collect();
        points.push(point("billing-eu", 1, 25_000, Some(900)));
        points.push(point("billing-us", 0, 25_000, None));
        let status = summarise(&monitor, replay(&monitor, &points, &RuleSet::defaults()));
        assert_eq!(status.lag_basis, LagBasis::HighWatermark);
        let eu = &status.groups[0];
        assert_eq!(
            (eu.max_lag, eu.total_lag, eu.max_time_lag_ms, eu.ts_ms),
            (900, 1_000, Some(9_000), 25_000)
        );
        assert_eq!(
            (eu.status, eu.threshold_state),
            (Status::Stall, ThresholdState::OverThreshold)
        );
        assert_eq!(
            (eu.partitions[1].status, eu.partitions[1].threshold_state),
            (Status::Unknown, ThresholdState::Ok)
        );
        let us = &status.groups[1];
        assert_eq!(
            (us.max_lag, us.status, us.threshold_state),
            (0, Status::Unknown, ThresholdState::NoOffset)
        );
    }

    #[test]
    fn a_read_committed_monitor_shows_lag_against_the_last_stable_offset() {
        let monitor = monitor(Isolation::ReadCommitted);
        let points = [point("billing-eu", 0, 0, Some(100))];
        let status = summarise(&monitor, replay(&monitor, &points, &RuleSet::defaults()));
        assert_eq!(status.lag_basis, LagBasis::LastStableOffset);
        let partition = &status.groups[0].partitions[0];
        assert_eq!(
            (partition.lag, partition.lso_offset),
            (Some(850), Some(950))
        );
    }
}
