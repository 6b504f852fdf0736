//! The monitor statements: one column list, and the select, insert and
//! update every [`MonitorStore`](crate::MonitorStore) method goes through,
//! so both dialects see the same SQL.

use lagwatch_model::{now_ms, Monitor, NewMonitor};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::row::{monitor_from_row, with_id, MonitorRow};
use crate::StoreError;

/// Every column of a monitor row, in the order [`monitor_from_row`] reads them.
pub(super) const COLUMNS: &str =
    "id, team, cluster, consumer_group, group_match, topics, topic_regex, \
     lag_threshold, for_secs, emails, isolation, time_lag_mode, topic_lag_threshold, \
     total_lag_threshold, time_lag_threshold_secs, repeat_interval_secs, webhooks";

/// Monitor `id`, row-locked until the transaction ends on MySQL (SQLite
/// transactions from [`MonitorStore::begin_write`](crate::MonitorStore::begin_write) already hold the write
/// lock).
pub(super) async fn select_for_update(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    id: i64,
) -> Result<Option<Monitor>, StoreError> {
    let lock = match backend {
        crate::Backend::MySql => " FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitors WHERE id = ?{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(monitor_from_row).transpose()
}

/// Holds `team`'s write lock until the transaction ends, so quota checks
/// of one team run one after the other. MySQL: the upsert takes an
/// exclusive lock on the team's row (created on first use); SQLite's
/// `BEGIN IMMEDIATE` already serialises every write, the row is only
/// touched to keep both schemas alike.
pub(crate) async fn lock_team(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    team: &str,
) -> Result<(), StoreError> {
    let upsert = match backend {
        crate::Backend::MySql => {
            "INSERT INTO team_locks (team, writes) VALUES (?, 1) \
             ON DUPLICATE KEY UPDATE writes = writes + 1"
        }
        crate::Backend::Sqlite => {
            "INSERT INTO team_locks (team, writes) VALUES (?, 1) \
             ON CONFLICT (team) DO UPDATE SET writes = writes + 1"
        }
    };
    sqlx::query(upsert).bind(team).execute(&mut *conn).await?;
    Ok(())
}

/// The monitors of `team`, read inside the caller's transaction.
pub(super) async fn team_monitors(
    conn: &mut AnyConnection,
    team: &str,
) -> Result<Vec<Monitor>, StoreError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitors WHERE team = ? ORDER BY id"
    )))
    .bind(team)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(monitor_from_row).collect()
}

pub(super) async fn select_monitor(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<Monitor>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitors WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(monitor_from_row).transpose()
}

pub(super) async fn insert_monitor(
    conn: &mut AnyConnection,
    monitor: &NewMonitor,
) -> Result<Monitor, StoreError> {
    let row = MonitorRow::encode(monitor)?;
    let now = now_ms();
    let insert = sqlx::query(
        "INSERT INTO monitors (team, cluster, consumer_group, group_match, topics, \
         topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode, \
         topic_lag_threshold, total_lag_threshold, time_lag_threshold_secs, \
         repeat_interval_secs, webhooks, created_at_ms, updated_at_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    let result = bind_monitor(insert, monitor, row)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let id = match result.last_insert_id() {
        Some(id) => id,
        None => sqlx::query("SELECT MAX(id) AS id FROM monitors")
            .fetch_one(&mut *conn)
            .await?
            .try_get::<i64, _>("id")?,
    };
    Ok(with_id(id, monitor.clone()))
}

/// Binds the monitor's columns in the order both the INSERT and the UPDATE
/// name them: team, cluster, consumer_group, group_match, topics,
/// topic_regex, lag_threshold, for_secs, emails, isolation, time_lag_mode,
/// topic_lag_threshold, total_lag_threshold, time_lag_threshold_secs,
/// repeat_interval_secs, webhooks.
fn bind_monitor<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    monitor: &'q NewMonitor,
    row: MonitorRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&monitor.team)
        .bind(&monitor.cluster)
        .bind(&monitor.consumer_group)
        .bind(monitor.group_match.as_str())
        .bind(row.topics)
        .bind(monitor.topic_regex.as_deref().unwrap_or(""))
        .bind(monitor.lag_threshold)
        .bind(row.for_secs)
        .bind(row.emails)
        .bind(monitor.isolation.as_str())
        .bind(monitor.time_lag.as_str())
        .bind(monitor.alerting.topic_lag_threshold)
        .bind(monitor.alerting.total_lag_threshold)
        .bind(row.time_lag_threshold_secs)
        .bind(row.repeat_interval_secs)
        .bind(row.webhooks)
}

pub(super) async fn update_monitor(
    conn: &mut AnyConnection,
    id: i64,
    monitor: &NewMonitor,
) -> Result<Option<Monitor>, StoreError> {
    let row = MonitorRow::encode(monitor)?;
    let update = sqlx::query(
        "UPDATE monitors SET team = ?, cluster = ?, consumer_group = ?, group_match = ?, \
         topics = ?, topic_regex = ?, lag_threshold = ?, for_secs = ?, emails = ?, \
         isolation = ?, time_lag_mode = ?, topic_lag_threshold = ?, \
         total_lag_threshold = ?, time_lag_threshold_secs = ?, repeat_interval_secs = ?, \
         webhooks = ?, updated_at_ms = ? WHERE id = ?",
    );
    let result = bind_monitor(update, monitor, row)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if result.rows_affected() > 0 {
        return Ok(Some(with_id(id, monitor.clone())));
    }
    // MySQL counts only changed rows: an identical update affects none.
    Ok(select_monitor(conn, id)
        .await?
        .map(|_| with_id(id, monitor.clone())))
}
