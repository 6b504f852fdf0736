//! Bearer tokens: generation (32 bytes from the OS CSPRNG, shown once as
//! `lw_<base64url>`), SHA-256 at rest, constant-time comparison of the admin
//! token, and the [`Caller`] extractor every handler starts with: it also
//! refuses expired tokens, records a token's last use (at most once a
//! minute) and applies the per-token and failed-authentication rate limits
//! ([`crate::limits`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::router::ApiState;

/// Prefix of team tokens (lets secret scanners recognise them).
pub const TOKEN_PREFIX: &str = "lw_";
/// Length of a team token: prefix + 43 base64url characters.
pub const TOKEN_LEN: usize = 3 + 43;

/// A freshly generated token: the value (shown once) and what is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    pub token: String,
    pub sha256_hex: String,
    pub last4: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("token", &"***")
            .field("last4", &self.last4)
            .finish()
    }
}

/// Why a token could not be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// A new team token from 32 bytes of OS randomness.
pub fn generate_token() -> Result<NewToken, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let last4 = token[token.len() - 4..].to_string();
    Ok(NewToken {
        sha256_hex: sha256_hex(&token),
        token,
        last4,
    })
}

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: every team, token management.
    Admin,
    /// A team token: only that team's objects.
    Team { team: String, token_id: i64 },
}

impl Caller {
    /// The caller's team; `None` for the admin.
    pub fn team(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Team { team, .. } => Some(team),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// How the caller appears in the audit log and `created_by`.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin => "admin".to_string(),
            Caller::Team { team, token_id } => format!("team:{team}:token:{token_id}"),
        }
    }

    /// Fails with 403 unless the caller is the admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this endpoint needs the admin token"))
        }
    }

    /// Whether the caller may see objects of `team`.
    pub fn owns(&self, team: &str) -> bool {
        self.team().is_none_or(|own| own == team)
    }
}

/// How often a token's `last_used` is written at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let address = crate::limits::client_address(&parts.extensions);
        let now = std::time::Instant::now();
        let failures = &state.limiter().auth_failures;
        // An address out of failed attempts is not even looked up.
        if let Some(address) = address {
            if let Err(wait) = failures.check(&address, now) {
                tracing::warn!(client = %address, "failed-authentication limit reached");
                return Err(ApiError::rate_limited(
                    "too many failed authentications from this address; retry later",
                    wait,
                ));
            }
        }
        let caller = match authenticate(parts, state).await {
            Ok(caller) => caller,
            Err(error) => {
                let guessed = parts.headers.contains_key(AUTHORIZATION);
                if let (Some(address), true) = (address, guessed && error.status.as_u16() == 401) {
                    // A token was tried and refused: counted; the answer
                    // stays 401 until the bucket is empty.
                    let _ = failures.take(&address, now);
                    tracing::info!(client = %address, reason = %error.message, "authentication failed");
                }
                return Err(error);
            }
        };
        let key = match &caller {
            Caller::Admin => "admin".to_string(),
            Caller::Team { token_id, .. } => format!("token:{token_id}"),
        };
        if let Err(wait) = state.limiter().per_token.take(&key, now) {
            tracing::warn!(caller = %caller.actor(), "request rate limit per token reached");
            return Err(ApiError::rate_limited(
                "too many requests with this token; retry later",
                wait,
            ));
        }
        Ok(caller)
    }
}

/// Who the bearer token in `parts` belongs to; 401 for none, an unknown or
/// an expired one.
async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
    let digest = sha256_hex(token);
    if let Some(admin) = state.admin_token_sha256() {
        // `subtle`: the time taken does not depend on where the digests differ.
        if bool::from(digest.as_bytes().ct_eq(admin.as_bytes())) {
            return Ok(Caller::Admin);
        }
    }
    if !token.starts_with(TOKEN_PREFIX) || token.len() != TOKEN_LEN {
        return Err(ApiError::unauthorized("unknown token"));
    }
    let Some(found) = state.store().find_token(&digest).await? else {
        return Err(ApiError::unauthorized("unknown token"));
    };
    let now_ms = lagwatch_model::now_ms();
    if found.is_expired(now_ms) {
        return Err(ApiError::unauthorized(
            "this token has expired; ask the operator for a new one",
        ));
    }
    let stale = found
        .last_used_at_ms
        .is_none_or(|at| now_ms.saturating_sub(at) >= LAST_USED_EVERY_MS);
    if stale {
        // Coarse on purpose: a write at most once a minute per token.
        if let Err(error) = state.store().touch_token(found.id, now_ms).await {
            tracing::warn!(token_id = found.id, error = %lagwatch_model::error_chain(&error), "cannot record the token's last use");
        }
    }
    Ok(Caller::Team {
        team: found.team,
        token_id: found.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = generate_token().expect("random");
        let b = generate_token().expect("random");
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), TOKEN_LEN);
        assert!(a.token.starts_with("lw_"));
        assert!(a.token[3..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.sha256_hex, sha256_hex(&a.token));
        assert_eq!(a.sha256_hex.len(), 64);
        assert!(a.token.ends_with(&a.last4));
        assert!(!format!("{a:?}").contains(&a.token));
    }

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn callers_see_only_their_team() {
        let team = Caller::Team {
            team: "payments".into(),
            token_id: 3,
        };
        assert!(team.owns("payments"));
        assert!(!team.owns("search"));
        assert!(Caller::Admin.owns("search"));
        assert_eq!(team.actor(), "team:payments:token:3");
        assert!(team.require_admin().is_err());
    }
}
