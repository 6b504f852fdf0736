//! The API's one error shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//!
//! Bad input is always a 4xx naming the field; only a failing store is a
//! 500, and a missing or failing ClickHouse a 503.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lagwatch_history::HistoryError;
use lagwatch_store::StoreError;
use serde_json::json;

/// An error answer: status, machine-readable code, human message and the
/// field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds to wait before retrying (429), sent as `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    /// 400 `invalid_json`: the body is not a JSON object.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 400 `invalid_field`: `field` has an unacceptable value.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
        }
    }

    /// 401 `unauthorized`: no or an unknown token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`: the token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 `forbidden` naming `field`: the value is outside what the
    /// caller's team owns.
    pub fn forbidden_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::forbidden(message)
        }
    }

    /// 403 `quota_exceeded`: the team has as many as its quota allows; the
    /// message names the quota.
    pub fn quota_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "quota_exceeded", message)
    }

    /// 429 `rate_limited` with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> Self {
        ApiError {
            retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// 404 `not_found`, also for another team's objects (their existence is
    /// not revealed).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this path",
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 503 `history_unavailable`: ClickHouse is not configured or failed.
    pub fn history_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "history_unavailable",
            message,
        )
    }

    /// 500 `internal`: the details go to the log, not to the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the lagwatch log",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidField { field, message } => ApiError::invalid_field(field, message),
            StoreError::QuotaExceeded(message) => ApiError::quota_exceeded(message),
            other => {
                tracing::error!(error = %lagwatch_model::error_chain(&other), "monitor store failed");
                ApiError::internal()
            }
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(error: HistoryError) -> Self {
        let text = lagwatch_model::error_chain(&error);
        tracing::warn!(error = %text, "history query failed");
        ApiError::history_unavailable("the alert and sample history (ClickHouse) is unavailable")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let mut response = (self.status, Json(json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_field_errors_become_400_with_the_field() {
        let error = ApiError::from(StoreError::InvalidField {
            field: "lag_threshold".into(),
            message: "must be greater than 0".into(),
        });
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "invalid_field");
        assert_eq!(error.field.as_deref(), Some("lag_threshold"));
    }

    #[test]
    fn rate_limits_carry_retry_after_in_whole_seconds() {
        let response = ApiError::rate_limited("slow down", std::time::Duration::from_millis(1_200))
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
    }
}
