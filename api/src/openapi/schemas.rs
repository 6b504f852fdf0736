//! Schemas of what the API sends that is not a Rust type with a
//! `ToSchema` of its own: the error body (built by [`crate::ApiError`] as
//! JSON), and mirrors of types from crates that do not build utoipa (the
//! history's [`AlertView`], the rules' [`Status`], the model's
//! `LaggingPartition`). Each mirror has a test that serializes the real
//! type and checks it against the mirror, so the two cannot drift apart.
//!
//! [`AlertView`]: lagwatch_history::reader::AlertView
//! [`Status`]: lagwatch_rules::Status

// The types here only describe JSON; they are never built.
#![allow(dead_code)]

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// Every 4xx and 5xx answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// The offending field, e.g. lag_threshold, alerting.webhooks, limit, id
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// The machine-readable `error.code` values, one per kind of error
/// (`overloaded` and `request_timeout` come from the agent's HTTP guard in
/// front of the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidField,
    Unauthorized,
    Forbidden,
    QuotaExceeded,
    RateLimited,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    HistoryUnavailable,
    Overloaded,
    RequestTimeout,
    Internal,
}

/// An alert event from the history (ClickHouse `alert_events`): the JSON
/// of `lagwatch_history::reader::AlertView`.
#[derive(Serialize, ToSchema)]
pub struct AlertEvent {
    pub fingerprint: String,
    pub rule: String,
    pub state: AlertState,
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    pub max_lag: i64,
    pub total_lag: i64,
    pub threshold: i64,
    pub ts_ms: i64,
    pub partitions: Vec<LaggingPartition>,
    /// The group's window status at the event: the lag_status rule's own
    /// status on its events (stall, stop or rewind when firing; ok or warn
    /// when resolved), the group's status at the sample on other monitor
    /// rules' events; absent for broker and self alerts
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status: Option<WindowStatus>,
    /// Why the notification was recorded but not sent: `silence <id>`,
    /// `inhibited by <fingerprint>`, or `refused by <destination>:
    /// <reason>`; absent when it was sent
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub muted_by: Option<String>,
}

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// A partition listed in an alert: over the threshold, or at the group's
/// worst status.
#[derive(Serialize, ToSchema)]
pub struct LaggingPartition {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// Burrow-style window status replayed from the newest stored samples (the
/// same replay as `lagwatch status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Status)]
pub enum WindowStatus {
    Unknown,
    Ok,
    Warn,
    Stall,
    Stop,
    Rewind,
}

/// A Kafka topic name.
#[derive(ToSchema)]
#[schema(pattern = "^[A-Za-z0-9._-]{1,249}$")]
pub struct TopicName(String);

/// An e-mail address (at most 254 characters).
pub struct EmailAddress;

impl utoipa::PartialSchema for EmailAddress {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
            .into()
    }
}

impl ToSchema for EmailAddress {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EmailAddress")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lagwatch_history::reader::AlertView;
    use lagwatch_model::LaggingPartition as ModelPartition;
    use lagwatch_rules::Status;
    use serde_json::{json, Value};

    use super::*;
    use crate::ApiError;

    fn schema_of<T: ToSchema>() -> Value {
        serde_json::to_value(T::schema()).expect("schema JSON")
    }

    fn names(value: &Value) -> BTreeSet<String> {
        match value {
            Value::Object(map) => map.keys().cloned().collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    #[test]
    fn every_error_code_the_api_sends_is_in_the_schema() {
        let errors = [
            ApiError::invalid_json("x"),
            ApiError::invalid_field("f", "x"),
            ApiError::unauthorized("x"),
            ApiError::forbidden("x"),
            ApiError::forbidden_field("f", "x"),
            ApiError::quota_exceeded("x"),
            ApiError::rate_limited("x", std::time::Duration::from_secs(1)),
            ApiError::not_found("x"),
            ApiError::method_not_allowed(),
            ApiError::payload_too_large(1),
            ApiError::history_unavailable("x"),
            ApiError::internal(),
        ];
        for error in errors {
            assert!(
                serde_json::from_value::<ErrorCode>(json!(error.code)).is_ok(),
                "{} is missing from ErrorCode",
                error.code
            );
        }
    }

    #[test]
    fn the_alert_event_schema_is_the_json_of_an_alert_view() {
        let full = AlertView {
            fingerprint: "f".into(),
            rule: "lag_status".into(),
            state: "firing".into(),
            monitor_id: 1,
            team: "t".into(),
            cluster: "c".into(),
            consumer_group: "g".into(),
            max_lag: 1,
            total_lag: 1,
            threshold: 1,
            ts_ms: 1,
            partitions: vec![ModelPartition {
                topic: "o".into(),
                partition: 0,
                lag: 1,
            }],
            status: Some("stall".into()),
            muted_by: Some("silence 1".into()),
        };
        let bare = AlertView {
            status: None,
            muted_by: None,
            ..full.clone()
        };
        let schema = schema_of::<AlertEvent>();
        let full = serde_json::to_value(&full).expect("JSON");
        let bare = serde_json::to_value(&bare).expect("JSON");
        assert_eq!(names(&full), names(&schema["properties"]), "every field");
        assert_eq!(names(&bare), names(&schema["required"]), "required fields");
        let partition = schema_of::<LaggingPartition>();
        assert_eq!(names(&full["partitions"][0]), names(&partition["required"]));
        assert_eq!(
            names(&full["partitions"][0]),
            names(&partition["properties"])
        );
    }

    #[test]
    fn the_status_schema_lists_every_window_status() {
        fn mirror(status: Status) -> WindowStatus {
            match status {
                Status::Unknown => WindowStatus::Unknown,
                Status::Ok => WindowStatus::Ok,
                Status::Warn => WindowStatus::Warn,
                Status::Stall => WindowStatus::Stall,
                Status::Stop => WindowStatus::Stop,
                Status::Rewind => WindowStatus::Rewind,
            }
        }
        let all = [
            Status::Unknown,
            Status::Ok,
            Status::Warn,
            Status::Stall,
            Status::Stop,
            Status::Rewind,
        ];
        for status in all {
            assert_eq!(
                serde_json::to_value(status).expect("JSON"),
                serde_json::to_value(mirror(status)).expect("JSON")
            );
        }
        assert_eq!(
            schema_of::<WindowStatus>()["enum"].as_array().map(Vec::len),
            Some(all.len())
        );
    }
}
