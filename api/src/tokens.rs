//! Admin-only token management: issue a team token (shown once, optionally
//! expiring: `?expires_in_secs=`), list a team's tokens (never the token
//! itself; with expiry and last use), revoke one. Issue and revoke are
//! audited with the actor.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lagwatch_store::ApiToken;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{generate_token, Caller};
use crate::error::ApiError;
use crate::input::{self, Params};
use crate::openapi::responses::{
    AdminOnly, BadRequest, NotFound, RateLimited, Unauthorized, Unavailable,
};
use crate::router::ApiState;

/// Longest expiry accepted: ten years.
const MAX_EXPIRES_IN_SECS: i64 = 10 * 366 * 24 * 3_600;

/// The answer of `POST /teams/{team}/tokens`: the only time the token is
/// shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub id: i64,
    pub team: String,
    /// Shown only in this answer
    #[schema(pattern = "^lw_[A-Za-z0-9_-]{43}$")]
    pub token: String,
    /// When the token stops working; null: never
    #[schema(required = true)]
    pub expires_at_ms: Option<i64>,
}

/// The answer of `GET /teams/{team}/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<ApiToken>,
}

/// A team name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TeamName {
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub team: String,
}

/// `?expires_in_secs=` of `POST /teams/{team}/tokens`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiryQuery {
    /// The token stops working this many seconds from now; never without
    #[param(minimum = 1, maximum = 316224000)]
    pub expires_in_secs: Option<i64>,
}

/// A token id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenId {
    /// The token's id.
    pub id: i64,
}

fn team_from_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(team) = path.map_err(|_| ApiError::invalid_field("team", "bad team in the path"))?;
    input::team_name("team", &team)
}

/// Admin: issue a team token (shown once)
#[utoipa::path(
    post,
    path = "/api/v1/teams/{team}/tokens",
    operation_id = "createToken",
    params(TeamName, ExpiryQuery),
    responses(
        (status = 201, description = "The new token", body = IssuedToken, links(
            ("revokeToken" = (operation_id = "revokeToken", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
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
        Json(IssuedToken {
            id: stored.id,
            team: stored.team,
            token: token.token,
            expires_at_ms: stored.expires_at_ms,
        }),
    ))
}

/// Admin: a team's tokens (never the tokens themselves)
#[utoipa::path(
    get,
    path = "/api/v1/teams/{team}/tokens",
    operation_id = "listTokens",
    params(TeamName),
    responses(
        (status = 200, description = "Tokens", body = TokenList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TokenList>, ApiError> {
    caller.require_admin()?;
    let team = team_from_path(path)?;
    let tokens = state.store().list_tokens(Some(&team)).await?;
    Ok(Json(TokenList { tokens }))
}

/// Admin: revoke a token
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "revokeToken",
    params(TokenId),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = AdminOnly),
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
    caller.require_admin()?;
    let id = input::path_id(path)?;
    if let Some(revoked) = state.store().remove_token(id, &caller.actor()).await? {
        tracing::info!(token_id = id, team = %revoked.team, "team token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no token {id}")))
    }
}
