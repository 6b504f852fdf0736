//! `GET /audit`: who created, changed or deleted which monitor, newest
//! first; a team sees its own monitors' entries.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::router::ApiState;

/// `GET /audit?limit=&team=`.
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = input::params(query)?;
    let limit = input::limit(&params, 100, 1_000)?;
    // Checked for every caller, used only by the admin.
    let asked = input::optional_team(&params, "team")?;
    let team = match caller.team() {
        Some(own) => Some(own.to_string()),
        None => asked,
    };
    let entries = state.store().list_audit(team.as_deref(), limit).await?;
    Ok(Json(json!({ "entries": entries })))
}
