//! The one error type of the crate.
//!
//! Every variant says what failed and where: the broker address, the Kafka API
//! and, for errors a broker answered with, the error code by its Kafka name
//! (`NOT_COORDINATOR`), so a log line or a collector status is enough to act on.
//! It is `Clone` because one failure (e.g. an unreachable coordinator) is the
//! answer for every group that broker serves.

use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// Errors of [`crate::WireClient`] and [`crate::WireConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A profile property is missing, unknown or unusable.
    #[error("invalid kafka client configuration: {property}: {message}")]
    Config { property: String, message: String },

    /// The TCP connection (or its TLS handshake) could not be established.
    #[error("cannot connect to broker {broker}: {message}")]
    Connect { broker: String, message: String },

    /// SASL authentication was refused or could not be completed.
    #[error("sasl authentication with broker {broker} failed: {message}")]
    Auth { broker: String, message: String },

    /// The connection broke while a request was in flight or being sent.
    #[error("{api} request to broker {broker} failed: {message}")]
    Io {
        broker: String,
        api: String,
        message: String,
    },

    /// No response within the request timeout.
    #[error("{api} request to broker {broker} timed out after {timeout:?}")]
    Timeout {
        broker: String,
        api: String,
        timeout: Duration,
    },

    /// A response that could not be decoded (or a request that could not be encoded).
    #[error("{api} with broker {broker}: malformed message: {message}")]
    Protocol {
        broker: String,
        api: String,
        message: String,
    },

    /// The broker does not support a version of the API this crate can speak.
    #[error("{api} is not supported by broker {broker}: {message}")]
    Unsupported {
        broker: String,
        api: String,
        message: String,
    },

    /// The broker answered with a Kafka error code.
    #[error("{api} to broker {broker} returned {name} ({code}){}", detail_suffix(.detail))]
    Kafka {
        broker: String,
        api: String,
        /// The numeric Kafka error code.
        code: i16,
        /// The error code's Kafka name, e.g. `GROUP_AUTHORIZATION_FAILED`.
        name: String,
        /// What the error is about (a group, a topic-partition) and any message of the broker.
        detail: String,
    },

    /// No broker of the bootstrap list or of the cluster metadata could answer.
    #[error("no kafka broker reachable (tried {tried}): {last}")]
    NoBroker { tried: String, last: String },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl WireError {
    /// A `Kafka` error for the non-zero `code` a broker answered with.
    pub(crate) fn kafka(broker: &str, api: &str, code: i16, detail: impl Into<String>) -> Self {
        WireError::Kafka {
            broker: broker.to_string(),
            api: api.to_string(),
            code,
            name: error_name(code),
            detail: detail.into(),
        }
    }

    /// A `Config` error about `property`.
    pub(crate) fn config(property: &str, message: impl Into<String>) -> Self {
        WireError::Config {
            property: property.to_string(),
            message: message.into(),
        }
    }

    /// The Kafka error code, for errors a broker answered with.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            WireError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the broker connection failed (connect, IO, timeout), as opposed to
    /// an answer of the broker: the broker may be down or restarting.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            WireError::Connect { .. }
                | WireError::Io { .. }
                | WireError::Timeout { .. }
                | WireError::NoBroker { .. }
        )
    }
}

/// Kafka error codes this crate acts on.
pub(crate) mod codes {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
}

/// The coordinator errors after which the group's coordinator is looked up again.
pub(crate) fn is_coordinator_error(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_COORDINATOR
            | codes::COORDINATOR_NOT_AVAILABLE
            | codes::COORDINATOR_LOAD_IN_PROGRESS
    )
}

/// The Kafka name of an error code as Kafka's `Errors` enum spells it
/// (`NOT_COORDINATOR`), `UNKNOWN_ERROR_CODE_<n>` for codes this crate does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(err) => screaming_snake(&format!("{err:?}")),
    }
}

/// `NotCoordinator` -> `NOT_COORDINATOR`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafka_names() {
        assert_eq!(error_name(16), "NOT_COORDINATOR");
        assert_eq!(error_name(30), "GROUP_AUTHORIZATION_FAILED");
        assert_eq!(error_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE_30000");
    }

    #[test]
    fn kafka_error_message_names_broker_api_and_code() {
        let e = WireError::kafka("b:9092", "OffsetFetch", 16, "group g");
        assert_eq!(
            e.to_string(),
            "OffsetFetch to broker b:9092 returned NOT_COORDINATOR (16): group g"
        );
        assert_eq!(e.kafka_code(), Some(16));
    }
}
