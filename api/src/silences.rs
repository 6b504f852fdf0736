//! Silences: create (starting now), list and expire. A team token sees and
//! expires only its team's silences, and holds at most its quota of
//! unexpired ones. Creating and expiring are audited with the actor.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lagwatch_model::{now_ms, NewSilence, Silence};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::monitors::TeamQuery;
use crate::openapi::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, RateLimited, Unauthorized, Unavailable,
};
use crate::router::ApiState;

/// Longest silence: 90 days, as the store allows.
const MAX_DURATION_SECS: u64 = (lagwatch_store::MAX_SILENCE_MS / 1_000) as u64;

/// A silence as sent by clients, starting now; every matcher left out
/// matches anything.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"duration_secs": 3600, "comment": "deploy"}))]
pub struct SilenceInput {
    /// Required with the admin token; a team token's own team otherwise.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub team: Option<String>,
    /// A monitor of the same team
    #[serde(default)]
    pub monitor_id: Option<i64>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub cluster: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub consumer_group: Option<String>,
    /// Rule name (`lag_threshold`, `lag_status`, ...)
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub rule: Option<String>,
    #[schema(minimum = 1, maximum = 7776000)]
    pub duration_secs: u64,
    #[serde(default)]
    #[schema(max_length = 1024, default = "")]
    pub comment: String,
}

/// The answer of `GET /silences`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceList {
    pub silences: Vec<Silence>,
}

/// `?all=` of `GET /silences`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SilenceQuery {
    /// Also expired silences
    #[param(default = false)]
    pub all: Option<bool>,
}

/// A silence id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SilenceId {
    /// The silence's id.
    pub id: i64,
}

/// Silences that have not ended (all=true: also expired)
#[utoipa::path(
    get,
    path = "/api/v1/silences",
    operation_id = "listSilences",
    params(SilenceQuery, TeamQuery),
    responses(
        (status = 200, description = "Silences, newest first", body = SilenceList),
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
) -> Result<Json<SilenceList>, ApiError> {
    let params = input::params(query)?;
    let all = input::flag(&params, "all")?;
    let team = crate::scope::listed_team(&caller, &params)?;
    let silences = state.store().list_silences(team.as_deref(), all).await?;
    Ok(Json(SilenceList { silences }))
}

/// Mute matching alerts from now on
#[utoipa::path(
    post,
    path = "/api/v1/silences",
    operation_id = "createSilence",
    request_body = SilenceInput,
    responses(
        (status = 201, description = "The silence", body = Silence, links(
            ("expireSilence" = (operation_id = "expireSilence", parameters(("id" = "$response.body#/id")))),
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
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let input: SilenceInput = input::json_body(body, &[])?;
    let team = match (caller.team(), input.team) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::forbidden(
                "a team token can only silence its own team's alerts",
            ))
        }
        (Some(own), _) => own.to_string(),
        (None, Some(asked)) => input::team_name("team", &asked)?,
        (None, None) => {
            return Err(ApiError::invalid_field(
                "team",
                "is required with the admin token",
            ))
        }
    };
    if !(1..=MAX_DURATION_SECS).contains(&input.duration_secs) {
        return Err(ApiError::invalid_field(
            "duration_secs",
            format!("must be 1 to {MAX_DURATION_SECS} (90 days)"),
        ));
    }
    let quota = crate::scope::silence_quota(&caller, &state, &team);
    if let Some(id) = input.monitor_id {
        let owned = state
            .store()
            .get(id)
            .await?
            .is_some_and(|monitor| monitor.team == team);
        if !owned {
            return Err(ApiError::invalid_field(
                "monitor_id",
                format!("team {team} has no monitor {id}"),
            ));
        }
    }
    let now = now_ms();
    let millis = i64::try_from(input.duration_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let actor = caller.actor();
    let silence = state
        .store()
        .add_silence_within(
            &NewSilence {
                team,
                monitor_id: input.monitor_id,
                cluster: input.cluster,
                consumer_group: input.consumer_group,
                rule: input.rule,
                starts_at_ms: now,
                ends_at_ms: now.saturating_add(millis),
                created_by: actor.clone(),
                comment: input.comment,
            },
            quota,
        )
        .await?;
    tracing::info!(silence_id = silence.id, team = %silence.team, actor = %actor, "silence created");
    Ok((StatusCode::CREATED, Json(silence)))
}

/// End a silence now
#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    operation_id = "expireSilence",
    params(SilenceId),
    responses(
        (status = 200, description = "The expired silence", body = Silence),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn expire(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Silence>, ApiError> {
    let id = input::path_id(path)?;
    let not_found = || ApiError::not_found(format!("no silence {id}"));
    match state.store().get_silence(id).await? {
        Some(silence) if caller.owns(&silence.team) => {}
        _ => return Err(not_found()),
    }
    let expired = state
        .store()
        .expire_silence(id, &caller.actor())
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(silence_id = id, team = %expired.team, actor = %caller.actor(), "silence expired");
    Ok(Json(expired))
}
