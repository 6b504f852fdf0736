//! ClickHouse queries behind `/alerts` and the firing column of the status
//! answers: alert events. (The samples behind the status answers are read
//! by [`crate::status_reader`].) Values are always bound, never spliced
//! into the SQL.

use crate::rows::AlertRow;
use crate::{ClickHouseConfig, HistoryError};
use lagwatch_model::LaggingPartition;
use serde::Serialize;

/// How far back the status answers look for a partition's samples.
pub const STATUS_WINDOW_SECS: u32 = 300;
/// Most currently-firing alerts one answer lists.
const MAX_FIRING: u32 = 1_000;

/// An alert event as the API returns it: a projection of an
/// [`AlertRow`] into the JSON shape of [`lagwatch_model::AlertEvent`]
/// (partitions parsed, empty columns absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertView {
    pub fingerprint: String,
    pub rule: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    pub max_lag: i64,
    pub total_lag: i64,
    pub threshold: i64,
    pub ts_ms: i64,
    pub partitions: Vec<LaggingPartition>,
    /// The group's window status at the event (`unknown`, `ok`, `warn`,
    /// `stall`, `stop`, `rewind`): the `lag_status` rule's own status on its
    /// events, the group's status at the sample on other monitor rules';
    /// absent for broker and self alerts and on events stored before the
    /// column existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why this notification was recorded but not sent: `silence <id>`,
    /// `inhibited by <fingerprint>`, or `refused by <destination>:
    /// <reason>` when a destination refused it for good (a bad address, a
    /// 4xx); absent when it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_by: Option<String>,
    // No `emails`: history does not keep who was mailed, and an
    // always-empty list read as "nobody was told". A team reads its
    // recipients from its own monitors (`GET /monitors`); see
    // docs/alert-records.md.
}

impl From<AlertRow> for AlertView {
    fn from(row: AlertRow) -> Self {
        AlertView {
            // Partitions the current schema cannot read are shown as none
            // rather than failing the whole answer.
            partitions: serde_json::from_str::<Vec<LaggingPartition>>(&row.partitions)
                .unwrap_or_default(),
            fingerprint: row.fingerprint,
            rule: row.rule,
            state: row.state,
            monitor_id: row.monitor_id,
            team: row.team,
            cluster: row.cluster,
            consumer_group: row.consumer_group,
            max_lag: row.max_lag,
            total_lag: row.total_lag,
            threshold: row.threshold,
            ts_ms: row.ts,
            status: (!row.status.is_empty()).then_some(row.status),
            muted_by: (!row.muted_by.is_empty()).then_some(row.muted_by),
        }
    }
}

fn client(config: &ClickHouseConfig) -> clickhouse::Client {
    crate::client(config).with_database(&config.database)
}

/// A read that gives up after `query_timeout`: a ClickHouse that accepts
/// and never answers must not hold an API request (and its connection)
/// forever.
pub(crate) trait Bounded<T> {
    async fn bounded(self, config: &ClickHouseConfig) -> Result<T, HistoryError>;
}

impl<T, F> Bounded<T> for F
where
    F: std::future::Future<Output = Result<T, clickhouse::error::Error>>,
{
    async fn bounded(self, config: &ClickHouseConfig) -> Result<T, HistoryError> {
        match tokio::time::timeout(config.query_timeout, self).await {
            Ok(result) => result.map_err(|source| HistoryError::ClickHouse {
                url: config.url.clone(),
                source,
            }),
            Err(_) => Err(HistoryError::Timeout {
                url: config.url.clone(),
                after: config.query_timeout,
            }),
        }
    }
}

/// Alerts whose latest event is `firing`, newest first: one team's or
/// (`None`) every team's. A refusal recorded for a notification carries
/// the notification's own time; of rows with one time, the one saying why
/// it was not sent is shown.
pub async fn firing_alerts(
    config: &ClickHouseConfig,
    team: Option<&str>,
) -> Result<Vec<AlertView>, HistoryError> {
    let (condition, binding) = team_condition(team);
    let sql = format!(
        "SELECT * FROM ( \
           SELECT ?fields FROM alert_events WHERE {condition} \
           ORDER BY fingerprint, ts DESC, muted_by DESC LIMIT 1 BY fingerprint \
         ) WHERE state = 'firing' ORDER BY ts DESC, fingerprint LIMIT {MAX_FIRING}"
    );
    let mut query = client(config).query(&sql);
    if let Some(team) = binding {
        query = query.bind(team);
    }
    let rows = query.fetch_all::<AlertRow>().bounded(config).await?;
    Ok(rows.into_iter().map(AlertView::from).collect())
}

/// Alert events, newest first, optionally of one team and one monitor.
pub async fn alert_history(
    config: &ClickHouseConfig,
    team: Option<&str>,
    monitor_id: Option<i64>,
    limit: u32,
) -> Result<Vec<AlertView>, HistoryError> {
    let (condition, binding) = team_condition(team);
    let monitor_condition = if monitor_id.is_some() {
        " AND monitor_id = ?"
    } else {
        ""
    };
    let sql = format!(
        "SELECT ?fields FROM alert_events WHERE {condition}{monitor_condition} \
         ORDER BY ts DESC, fingerprint LIMIT ?"
    );
    let mut query = client(config).query(&sql);
    if let Some(team) = binding {
        query = query.bind(team);
    }
    if let Some(id) = monitor_id {
        query = query.bind(id);
    }
    let rows = query
        .bind(limit)
        .fetch_all::<AlertRow>()
        .bounded(config)
        .await?;
    Ok(rows.into_iter().map(AlertView::from).collect())
}

fn team_condition(team: Option<&str>) -> (&'static str, Option<&str>) {
    match team {
        Some(team) => ("team = ?", Some(team)),
        None => ("1 = 1", None),
    }
}
