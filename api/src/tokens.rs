//! Admin-only token management: issue a team token (shown once), list a
//! team's tokens (never the token itself), revoke one.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{generate_token, Caller};
use crate::error::ApiError;
use crate::input;
use crate::router::ApiState;

fn team_from_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(team) = path.map_err(|_| ApiError::invalid_field("team", "bad team in the path"))?;
    input::team_name("team", &team)
}

/// `POST /teams/{team}/tokens`.
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let team = team_from_path(path)?;
    let token = generate_token().map_err(|error| {
        tracing::error!(error = %error, "cannot generate a token");
        ApiError::internal()
    })?;
    let stored = state
        .store()
        .add_token(&team, &token.sha256_hex, &token.last4)
        .await?;
    tracing::info!(token_id = stored.id, team = %team, last4 = %stored.last4, "team token issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": stored.id, "team": stored.team, "token": token.token })),
    ))
}

/// `GET /teams/{team}/tokens`.
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let team = team_from_path(path)?;
    let tokens = state.store().list_tokens(Some(&team)).await?;
    Ok(Json(json!({ "tokens": tokens })))
}

/// `DELETE /tokens/{id}`.
pub async fn remove(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = input::path_id(path)?;
    if state.store().remove_token(id).await? {
        tracing::info!(token_id = id, "team token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no token {id}")))
    }
}
