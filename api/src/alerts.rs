//! `GET /alerts` (currently firing) and `GET /alerts/history`, from the
//! ClickHouse `alert_events` table; a team sees only its own, and only for
//! groups it owns (`[teams]`), so an alert recorded before ownership was
//! configured does not show another team's group.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use lagwatch_history::reader::AlertView;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::monitors::TeamQuery;
use crate::openapi::responses::{BadRequest, RateLimited, Unauthorized, Unavailable};
use crate::openapi::schemas::AlertEvent;
use crate::router::ApiState;
use lagwatch_history::reader as history;

/// The answer of `/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FiringAlerts {
    #[schema(value_type = Vec<AlertEvent>)]
    pub alerts: Vec<AlertView>,
}

/// The answer of `/alerts/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEvents {
    #[schema(value_type = Vec<AlertEvent>)]
    pub events: Vec<AlertView>,
}

/// `?limit=&monitor_id=` of `/alerts/history`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
    pub monitor_id: Option<i64>,
}

/// Alerts whose latest event is firing
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "firingAlerts",
    params(TeamQuery),
    responses(
        (status = 200, description = "Firing alerts, newest first", body = FiringAlerts),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn firing(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<FiringAlerts>, ApiError> {
    let params = input::params(query)?;
    let team = crate::scope::listed_team(&caller, &params)?;
    let config = state.clickhouse()?;
    let mut alerts = history::firing_alerts(config, team.as_deref()).await?;
    alerts.retain(|a| crate::scope::may_see_group(&caller, &state, &a.cluster, &a.consumer_group));
    Ok(Json(FiringAlerts { alerts }))
}

/// Most alert rows one history request reads to fill its page with rows
/// the caller may see.
const MAX_SCANNED: u32 = 20_000;

/// Alert events, newest first
#[utoipa::path(
    get,
    path = "/api/v1/alerts/history",
    operation_id = "alertHistory",
    params(HistoryQuery, TeamQuery),
    responses(
        (status = 200, description = "Events", body = AlertEvents),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn history(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<AlertEvents>, ApiError> {
    let params = input::params(query)?;
    let team = crate::scope::listed_team(&caller, &params)?;
    let limit = input::limit(&params, 100, 1_000)?;
    let monitor_id = input::optional_i64(&params, "monitor_id")?;
    let config = state.clickhouse()?;
    // Rows of groups the caller does not own are dropped after the query,
    // so a page can come back short: read further (4x each time, up to
    // MAX_SCANNED rows) until `limit` visible rows or the end.
    let mut scanned = limit;
    let events = loop {
        let mut events =
            history::alert_history(config, team.as_deref(), monitor_id, scanned).await?;
        let exhausted = events.len() < scanned as usize;
        events.retain(|e| {
            crate::scope::may_see_group(&caller, &state, &e.cluster, &e.consumer_group)
        });
        if events.len() >= limit as usize || exhausted || scanned >= MAX_SCANNED {
            events.truncate(limit as usize);
            break events;
        }
        scanned = scanned.saturating_mul(4).min(MAX_SCANNED);
    };
    Ok(Json(AlertEvents { events }))
}
