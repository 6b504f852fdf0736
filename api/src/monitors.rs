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
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::openapi::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
};
use crate::openapi::schemas::{EmailAddress, TopicName};
use crate::router::ApiState;

/// A monitor without `id`. `team` is optional for team tokens (forced to
/// the token's team; another team is 403) and required for the admin on
/// create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "cluster": "local",
    "consumer_group": "billing",
    "topics": ["orders"],
    "lag_threshold": 500,
    "for_secs": 60,
    "emails": ["oncall@example.com"]
}))]
pub struct MonitorInput {
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub team: Option<String>,
    /// A configured cluster (GET /api/v1/clusters)
    #[schema(min_length = 1, max_length = 255)]
    pub cluster: String,
    /// Group id, or an anchored regular expression (at most 255
    /// characters) with group_match=regex
    #[schema(min_length = 1, max_length = 255)]
    pub consumer_group: String,
    #[serde(default)]
    #[schema(default = "exact")]
    pub group_match: GroupMatch,
    /// Empty (and no topic_regex) = every topic of the group
    #[serde(default)]
    #[schema(value_type = Vec<TopicName>, max_items = 50)]
    pub topics: Vec<String>,
    /// Anchored regular expression; compiled with a size limit
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub topic_regex: Option<String>,
    #[schema(minimum = 1)]
    pub lag_threshold: i64,
    #[serde(default)]
    #[schema(maximum = 604800, default = 0)]
    pub for_secs: u64,
    #[serde(default)]
    #[schema(value_type = Vec<EmailAddress>, max_items = 50)]
    pub emails: Vec<String>,
    #[serde(default)]
    #[schema(default = "read_uncommitted")]
    pub isolation: Isolation,
    #[serde(default)]
    #[schema(default = "estimate")]
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

/// The answer of `/whoami`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's team; `null` for the admin token.
    #[schema(required = true)]
    pub team: Option<String>,
    pub admin: bool,
    /// Where the web page links to Grafana.
    #[schema(required = true)]
    pub grafana_url: Option<String>,
}

/// The answer of `/clusters`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterList {
    pub clusters: Vec<String>,
}

/// The answer of `GET /monitors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorList {
    pub monitors: Vec<Monitor>,
}

/// `?team=` of the list endpoints.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// Admin only: one team (ignored for team tokens)
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub team: Option<String>,
}

/// A monitor id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MonitorId {
    /// The monitor's id.
    pub id: i64,
}

/// Who the token belongs to
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    operation_id = "whoami",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn whoami(caller: Caller, State(state): State<ApiState>) -> Json<WhoAmI> {
    Json(WhoAmI {
        team: caller.team().map(String::from),
        admin: caller.is_admin(),
        grafana_url: state.grafana_url().map(String::from),
    })
}

/// Configured cluster names (never their settings)
#[utoipa::path(
    get,
    path = "/api/v1/clusters",
    operation_id = "listClusters",
    responses(
        (status = 200, description = "Cluster names", body = ClusterList),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn clusters(_caller: Caller, State(state): State<ApiState>) -> Json<ClusterList> {
    Json(ClusterList {
        clusters: state.clusters().to_vec(),
    })
}

/// The team's monitors (admin: all, or ?team=)
#[utoipa::path(
    get,
    path = "/api/v1/monitors",
    operation_id = "listMonitors",
    params(TeamQuery),
    responses(
        (status = 200, description = "Monitors by id", body = MonitorList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<MonitorList>, ApiError> {
    let params = input::params(query)?;
    let monitors = match crate::scope::listed_team(&caller, &params)? {
        Some(team) => state.store().list_team(&team).await?,
        None => state.store().list().await?,
    };
    Ok(Json(MonitorList { monitors }))
}

/// Register a monitor (audited)
#[utoipa::path(
    post,
    path = "/api/v1/monitors",
    operation_id = "createMonitor",
    request_body = MonitorInput,
    responses(
        (status = 201, description = "The stored monitor", body = Monitor, links(
            ("getMonitor" = (operation_id = "getMonitor", parameters(("id" = "$response.body#/id")))),
            ("updateMonitor" = (operation_id = "updateMonitor", parameters(("id" = "$response.body#/id")))),
            ("deleteMonitor" = (operation_id = "deleteMonitor", parameters(("id" = "$response.body#/id")))),
            ("monitorStatus" = (operation_id = "monitorStatus", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
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

/// One monitor
#[utoipa::path(
    get,
    path = "/api/v1/monitors/{id}",
    operation_id = "getMonitor",
    params(MonitorId),
    responses(
        (status = 200, description = "The monitor", body = Monitor),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_one(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Monitor>, ApiError> {
    let id = input::path_id(path)?;
    Ok(Json(visible_monitor(&caller, &state, id).await?))
}

/// Replace a monitor (audited)
#[utoipa::path(
    put,
    path = "/api/v1/monitors/{id}",
    operation_id = "updateMonitor",
    params(MonitorId),
    request_body = MonitorInput,
    responses(
        (status = 200, description = "The stored monitor", body = Monitor),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
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

/// Delete a monitor (audited)
#[utoipa::path(
    delete,
    path = "/api/v1/monitors/{id}",
    operation_id = "deleteMonitor",
    params(MonitorId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
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
