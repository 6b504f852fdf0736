//! Plain data types shared by every lagwatch stage.
//!
//! Nothing in this crate does I/O: it only describes what flows between the
//! collector, the metrics topic, the evaluator and the sinks.
//!
//! # Layout
//! - [`sample`]: the versioned wire format published on the metrics topic.
//! - [`monitor`]: what a team registered to be watched.
//! - [`matching`]: which groups and topics a monitor covers.
//! - [`alert`]: alerts (what fired or resolved), written to history.
//! - [`notification`]: an alert as sent (reminder, mute reason) and its
//!   recipients, which are never serialized.
//! - [`broker`]: broker health metrics read over JMX.
//! - [`silence`]: a team's request to mute matching alerts for a while.
//! - [`secret`]: a string that never shows up in logs or `Debug` output.
//! - [`redact`]: URLs with their passwords hidden, for errors and logs.
//! - [`validation`]: what a monitor must satisfy before it is stored.
//! - [`tenancy`]: which clusters, groups, topics and shared sinks each team
//!   owns, and its quotas.
//! - [`time`]: wall-clock milliseconds.
//! - [`errors`]: error text with its causes.

pub mod address;
pub mod alert;
pub mod broker;
pub mod errors;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod matching;
pub mod monitor;
pub mod notification;
pub mod parts;
pub mod printable;
pub mod redact;
pub mod rule;
pub mod sample;
pub mod secret;
pub mod silence;
pub mod tenancy;
pub mod time;
pub mod validation;

pub use alert::{AlertEvent, AlertState, LaggingPartition};
pub use broker::{BrokerMetric, BrokerSample};
pub use errors::error_chain;
pub use matching::{compile_pattern, Matcher};
pub use monitor::{AlertSettings, GroupMatch, Isolation, Monitor, NewMonitor, TimeLagMode};
pub use notification::{Notification, Recipients};
pub use parts::{split_sample, GroupPart, PartAssembler, MAX_MESSAGE_BYTES};
pub use printable::printable;
pub use redact::redact_url;
pub use rule::Rule;
pub use sample::{
    decode_message, DecodeError, GroupSample, MetricsMessage, PartitionSample, TimeLag,
    TimeLagKind, WIRE_VERSION,
};
pub use secret::Secret;
pub use silence::{NewSilence, Silence};
pub use tenancy::{Quotas, TeamScope, Tenancy, TopicLimits};
pub use time::now_ms;
pub use validation::{
    is_valid_team_name, is_valid_topic_name, FieldError, MAX_FOR_SECS, MAX_LIST_ITEMS,
};
