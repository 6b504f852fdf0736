//! `/whoami`, `/clusters` and monitor CRUD. A team token sees and changes
//! only its team's monitors (others are 404, as if they did not exist); the
//! admin sees all. Every change is written with its audit-log row. A team
//! may only register monitors inside its scope and quotas
//! ([`crate::scope`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lagwatch_model::{AlertSettings, GroupMatch, Isolation, Monitor, NewMonitor, TimeLagMode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::router::ApiState;

/// A monitor as sent by clients: [`Monitor`] without `id`; `team` optional
/// for team tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    #[serde(default)]
    pub team: Option<String>,
    pub cluster: String,
    pub consumer_group: String,
    #[serde(default)]
    pub group_match: GroupMatch,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub topic_regex: Option<String>,
    pub lag_threshold: i64,
    #[serde(default)]
    pub for_secs: u64,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub isolation: Isolation,
    #[serde(default)]
    pub time_lag: TimeLagMode,
    #[serde(default)]
    pub alerting: AlertSettings,
}

impl MonitorInput {
    /// The monitor to store for `caller`; `current_team` is the team of the
    /// monitor being replaced (kept when the admin leaves `team` out).
    fn into_new(
        self,
        caller: &Caller,
        current_team: Option<&str>,
        state: &ApiState,
    ) -> Result<NewMonitor, ApiError> {
        let team = match (caller.team(), self.team) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(ApiError::forbidden(
                    "a team token can only manage its own team's monitors",
                ))
            }
            (Some(own), _) => own.to_string(),
            (None, Some(asked)) => asked,
            (None, None) => match current_team {
                Some(team) => team.to_string(),
                None => {
                    return Err(ApiError::invalid_field(
                        "team",
                        "is required with the admin token",
                    ))
                }
            },
        };
        if !state.clusters().contains(&self.cluster) {
            return Err(ApiError::invalid_field(
                "cluster",
                format!(
                    "is not a configured cluster (configured: {})",
                    state.clusters().join(", ")
                ),
            ));
        }
        Ok(NewMonitor {
            team,
            cluster: self.cluster,
            consumer_group: self.consumer_group,
            group_match: self.group_match,
            topics: self.topics,
            // The web form sends an empty field as "".
            topic_regex: self.topic_regex.filter(|p| !p.is_empty()),
            lag_threshold: self.lag_threshold,
            for_secs: self.for_secs,
            emails: self.emails,
            isolation: self.isolation,
            time_lag: self.time_lag,
            alerting: self.alerting,
        })
    }
}

/// `GET /whoami`.
pub async fn whoami(caller: Caller, State(state): State<ApiState>) -> Json<Value> {
    Json(json!({
        "team": caller.team(),
        "admin": caller.is_admin(),
        "grafana_url": state.grafana_url(),
    }))
}

/// `GET /clusters`: names only, never connection settings.
pub async fn clusters(_caller: Caller, State(state): State<ApiState>) -> Json<Value> {
    Json(json!({ "clusters": state.clusters() }))
}

/// `GET /monitors[?team=]`.
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = input::params(query)?;
    // Checked for every caller, used only by the admin.
    let asked = input::optional_team(&params, "team")?;
    let monitors = match (caller.team(), asked) {
        (Some(own), _) => state.store().list_team(own).await?,
        (None, Some(team)) => state.store().list_team(&team).await?,
        (None, None) => state.store().list().await?,
    };
    Ok(Json(json!({ "monitors": monitors })))
}

/// `POST /monitors`.
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Monitor>), ApiError> {
    let input: MonitorInput = input::json_body(body, &["alerting"])?;
    let monitor = input.into_new(&caller, None, &state)?;
    crate::scope::check_monitor_owner(&caller, &state, &monitor)?;
    let quota = crate::scope::monitor_quota(&caller, &state, &monitor, true);
    let actor = caller.actor();
    let added = state
        .store()
        .add_audited_within(&monitor, &actor, &quota)
        .await?;
    tracing::info!(monitor_id = added.id, team = %added.team, actor = %actor, "monitor created");
    Ok((StatusCode::CREATED, Json(added)))
}

/// `GET /monitors/{id}`.
pub async fn get_one(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Monitor>, ApiError> {
    let id = input::path_id(path)?;
    Ok(Json(visible_monitor(&caller, &state, id).await?))
}

/// `PUT /monitors/{id}`.
pub async fn update(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Monitor>, ApiError> {
    let id = input::path_id(path)?;
    let current = visible_monitor(&caller, &state, id).await?;
    let input: MonitorInput = input::json_body(body, &["alerting"])?;
    let monitor = input.into_new(&caller, Some(&current.team), &state)?;
    crate::scope::check_monitor_owner(&caller, &state, &monitor)?;
    let quota = crate::scope::monitor_quota(&caller, &state, &monitor, false);
    let actor = caller.actor();
    let updated = state
        .store()
        .update_audited_within(id, caller.team(), &monitor, &actor, &quota)
        .await?
        .ok_or_else(|| no_monitor(id))?;
    tracing::info!(monitor_id = id, team = %updated.team, actor = %actor, "monitor updated");
    Ok(Json(updated))
}

/// `DELETE /monitors/{id}`.
pub async fn remove(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = input::path_id(path)?;
    let actor = caller.actor();
    let removed = state
        .store()
        .remove_audited(id, caller.team(), &actor)
        .await?
        .ok_or_else(|| no_monitor(id))?;
    tracing::info!(monitor_id = id, team = %removed.team, actor = %actor, "monitor deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Monitor `id` if it exists and the caller may see it; 404 otherwise.
pub async fn visible_monitor(
    caller: &Caller,
    state: &ApiState,
    id: i64,
) -> Result<Monitor, ApiError> {
    match state.store().get(id).await? {
        Some(monitor) if caller.owns(&monitor.team) => Ok(monitor),
        _ => Err(no_monitor(id)),
    }
}

fn no_monitor(id: i64) -> ApiError {
    ApiError::not_found(format!("no monitor {id}"))
}
