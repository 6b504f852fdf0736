//! Mirrors the monitor store's team ↔ group mapping into ClickHouse
//! (`monitor_groups`), so dashboards can filter by team.
//!
//! Each write is a full snapshot sharing one `updated_at`; readers take the
//! rows of the latest snapshot, so removed monitors disappear without
//! deletes.

use std::time::Duration;

use lagwatch_model::Monitor;
use lagwatch_store::monitor_watch::MonitorList;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{client, HistoryError};
use crate::config::ClickHouseConfig;

/// One row of `monitor_groups`.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize)]
pub struct MonitorGroupRow {
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    pub monitor_id: i64,
    /// Snapshot time, ms (`DateTime64(3)`).
    pub updated_at: i64,
}

/// Writes a snapshot at start, after every monitor change, and every
/// `refresh` (so a failed write is repaired), until `shutdown`.
pub async fn mirror_monitors(
    config: ClickHouseConfig,
    mut monitors: MonitorList,
    refresh: Duration,
    shutdown: CancellationToken,
) {
    let client = client(&config).with_database(&config.database);
    loop {
        let current = monitors.borrow_and_update().clone();
        if let Err(error) = write_snapshot(&client, &config.url, &current).await {
            tracing::warn!(error = %error, "cannot mirror monitors to ClickHouse; retrying later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = monitors.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(refresh) => {}
        }
    }
}

async fn write_snapshot(
    client: &clickhouse::Client,
    url: &str,
    monitors: &[Monitor],
) -> Result<(), HistoryError> {
    let fail = |source| HistoryError::ClickHouse {
        url: url.to_string(),
        source,
    };
    let updated_at = lagwatch_model::now_ms();
    let mut insert = client
        .insert::<MonitorGroupRow>("monitor_groups")
        .await
        .map_err(fail)?;
    for monitor in monitors {
        let row = MonitorGroupRow {
            team: monitor.team.clone(),
            cluster: monitor.cluster.clone(),
            consumer_group: monitor.consumer_group.clone(),
            monitor_id: monitor.id,
            updated_at,
        };
        insert.write(&row).await.map_err(fail)?;
    }
    insert.end().await.map_err(fail)
}
