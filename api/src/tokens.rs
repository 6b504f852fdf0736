//! Admin-only token management: issue a team token (shown once, optionally
//! expiring: `?expires_in_secs=`), list a team's tokens (never the token
//! itself; with expiry and last use), revoke one. Issue and revoke are
//! audited with the actor.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{generate_token, Caller};
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::router::ApiState;

/// Longest expiry accepted: ten years.
const MAX_EXPIRES_IN_SECS: i64 = 10 * 366 * 24 * 3_600;

fn team_from_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(team) = path.map_err(|_| ApiError::invalid_field("team", "bad team in the path"))?;
    input::team_name("team", &team)
}

/// `POST /teams/{team}/tokens`.
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let team = team_from_path(path)?;
    let params = input::params(query)?;
    let expires_at_ms = match input::optional_i64(&params, "expires_in_secs")? {
        None => None,
        Some(secs) if (1..=MAX_EXPIRES_IN_SECS).contains(&secs) => {
            Some(lagwatch_model::now_ms().saturating_add(secs.saturating_mul(1_000)))
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "expires_in_secs",
                format!("must be 1 to {MAX_EXPIRES_IN_SECS} seconds"),
            ))
        }
    };
    let token = generate_token().map_err(|error| {
        tracing::error!(error = %error, "cannot generate a token");
        ApiError::internal()
    })?;
    let stored = state
        .store()
        .add_token(
            &team,
            &token.sha256_hex,
            &token.last4,
            expires_at_ms,
            &caller.actor(),
        )
        .await?;
    tracing::info!(token_id = stored.id, team = %team, last4 = %stored.last4, expires_at_ms = ?stored.expires_at_ms, "team token issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": stored.id,
            "team": stored.team,
            "token": token.token,
            "expires_at_ms": stored.expires_at_ms,
        })),
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
    if let Some(revoked) = state.store().remove_token(id, &caller.actor()).await? {
        tracing::info!(token_id = id, team = %revoked.team, "team token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no token {id}")))
    }
}
