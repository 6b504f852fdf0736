//! The monitor row codec: topic, e-mail and webhook lists as JSON text,
//! enums as their names, durations as signed seconds; a column that does
//! not decode is reported as corrupt with the row's id.

use lagwatch_model::{AlertSettings, Monitor, NewMonitor};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::StoreError;

/// The encoded forms of a monitor's non-scalar columns.
pub(super) struct MonitorRow {
    pub(super) topics: String,
    pub(super) emails: String,
    pub(super) webhooks: String,
    pub(super) for_secs: i64,
    pub(super) time_lag_threshold_secs: Option<i64>,
    pub(super) repeat_interval_secs: Option<i64>,
}

impl MonitorRow {
    pub(super) fn encode(monitor: &NewMonitor) -> Result<Self, StoreError> {
        let secs = |value: u64, field: &str| {
            i64::try_from(value).map_err(|_| StoreError::invalid(field, "is too large"))
        };
        Ok(MonitorRow {
            topics: encode_list(&monitor.topics),
            emails: encode_list(&monitor.emails),
            webhooks: encode_list(&monitor.alerting.webhooks),
            for_secs: secs(monitor.for_secs, "for_secs")?,
            time_lag_threshold_secs: monitor
                .alerting
                .time_lag_threshold_secs
                .map(|v| secs(v, "alerting.time_lag_threshold_secs"))
                .transpose()?,
            repeat_interval_secs: monitor
                .alerting
                .repeat_interval_secs
                .map(|v| secs(v, "alerting.repeat_interval_secs"))
                .transpose()?,
        })
    }
}

/// `monitor` as stored under `id`.
pub(super) fn with_id(id: i64, monitor: NewMonitor) -> Monitor {
    Monitor {
        id,
        team: monitor.team,
        cluster: monitor.cluster,
        consumer_group: monitor.consumer_group,
        group_match: monitor.group_match,
        topics: monitor.topics,
        topic_regex: monitor.topic_regex,
        lag_threshold: monitor.lag_threshold,
        for_secs: monitor.for_secs,
        emails: monitor.emails,
        isolation: monitor.isolation,
        time_lag: monitor.time_lag,
        alerting: monitor.alerting,
    }
}

/// A list column as JSON text.
pub(super) fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

fn decode_list(id: i64, column: &'static str, text: &str) -> Result<Vec<String>, StoreError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        id,
        column,
        reason: error.to_string(),
    })
}

fn parse_column<T: std::str::FromStr<Err = String>>(
    row: &AnyRow,
    id: i64,
    column: &'static str,
) -> Result<T, StoreError> {
    row.try_get::<String, _>(column)?
        .parse()
        .map_err(|reason| StoreError::Corrupt { id, column, reason })
}

fn optional_secs(row: &AnyRow, column: &str) -> Result<Option<u64>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(|v| u64::try_from(v).unwrap_or(0)))
}

/// Decodes a row selected with [`COLUMNS`](super::sql::COLUMNS).
pub(super) fn monitor_from_row(row: &AnyRow) -> Result<Monitor, StoreError> {
    let id: i64 = row.try_get("id")?;
    let for_secs: i64 = row.try_get("for_secs")?;
    Ok(Monitor {
        id,
        team: row.try_get("team")?,
        cluster: row.try_get("cluster")?,
        consumer_group: row.try_get("consumer_group")?,
        group_match: parse_column(row, id, "group_match")?,
        topics: decode_list(id, "topics", &row.try_get::<String, _>("topics")?)?,
        topic_regex: Some(row.try_get::<String, _>("topic_regex")?).filter(|p| !p.is_empty()),
        lag_threshold: row.try_get("lag_threshold")?,
        for_secs: u64::try_from(for_secs).unwrap_or(0),
        emails: decode_list(id, "emails", &row.try_get::<String, _>("emails")?)?,
        time_lag: parse_column(row, id, "time_lag_mode")?,
        isolation: parse_column(row, id, "isolation")?,
        alerting: AlertSettings {
            topic_lag_threshold: row.try_get("topic_lag_threshold")?,
            total_lag_threshold: row.try_get("total_lag_threshold")?,
            time_lag_threshold_secs: optional_secs(row, "time_lag_threshold_secs")?,
            repeat_interval_secs: optional_secs(row, "repeat_interval_secs")?,
            webhooks: decode_list(id, "webhooks", &row.try_get::<String, _>("webhooks")?)?,
        },
    })
}
