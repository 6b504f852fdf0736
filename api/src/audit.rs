//! `GET /audit`: who created, changed or deleted which monitor, newest
//! first; a team sees its own monitors' entries.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use lagwatch_store::AuditEntry;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::monitors::TeamQuery;
use crate::openapi::responses::{BadRequest, RateLimited, Unauthorized, Unavailable};
use crate::router::ApiState;

/// The answer of `/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

/// `?limit=` of `/audit`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
}

/// Monitor, silence and token changes, newest first
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "auditLog",
    params(AuditQuery, TeamQuery),
    responses(
        (status = 200, description = "Entries", body = AuditLog),
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
) -> Result<Json<AuditLog>, ApiError> {
    let params = input::params(query)?;
    let limit = input::limit(&params, 100, 1_000)?;
    // Checked for every caller, used only by the admin.
    let asked = input::optional_team(&params, "team")?;
    let team = match caller.team() {
        Some(own) => Some(own.to_string()),
        None => asked,
    };
    let entries = state.store().list_audit(team.as_deref(), limit).await?;
    Ok(Json(AuditLog { entries }))
}
