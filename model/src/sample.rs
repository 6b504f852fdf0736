//! The metrics-topic wire format, version 1.
//!
//! Every message is a JSON object carrying `"v": 1` and a `"kind"` tag. The
//! message key is `cluster/group` so that one evaluator instance owns every
//! sample of a group. Readers ignore fields they do not know, so producers may
//! add optional fields without bumping the version; a change that alters the
//! meaning of an existing field bumps `v`, and readers reject versions newer
//! than they understand with [`DecodeError::UnsupportedVersion`].
//!
//! See `docs/wire-format.md` for the field reference.

use serde::{Deserialize, Serialize};

/// Wire-format version written by this build.
pub const WIRE_VERSION: u32 = 1;

/// One message on the metrics topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricsMessage {
    /// Offsets and lag of one consumer group at one sample time.
    Group(GroupSample),
    /// Health metrics of one broker (JMX) at one sample time.
    Broker(crate::BrokerSample),
    /// Part of a group sample too large for one message
    /// ([`crate::parts`]).
    GroupPart(crate::parts::GroupPart),
}

impl MetricsMessage {
    /// Message key on the metrics topic (`cluster/group`).
    pub fn key(&self) -> String {
        match self {
            MetricsMessage::Group(sample) => sample.key(),
            MetricsMessage::Broker(sample) => sample.key(),
            MetricsMessage::GroupPart(part) => part.sample.key(),
        }
    }

    /// Serialises the message to its JSON wire form.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Offsets of one consumer group on one cluster at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSample {
    /// Wire-format version, always [`WIRE_VERSION`] when written by this build.
    pub v: u32,
    /// Cluster name as configured in lagwatch (not the Kafka cluster id).
    pub cluster: String,
    /// Consumer group id.
    pub group: String,
    /// Group state as reported by the coordinator (`Stable`, `Empty`, `Dead`,
    /// ...), or `Unknown` when it could not be described.
    pub state: String,
    /// Number of members currently in the group.
    pub members: u32,
    /// Sample time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Set when the sample is incomplete: why (e.g. broker unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One entry per partition the group has committed offsets for or that a
    /// monitor asked about.
    pub partitions: Vec<PartitionSample>,
}

impl GroupSample {
    /// Message key on the metrics topic.
    pub fn key(&self) -> String {
        format!("{}/{}", self.cluster, self.group)
    }
}

/// Offsets of one partition as seen by one consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSample {
    pub topic: String,
    pub partition: i32,
    /// Committed offset of the group; `None` when the group never committed
    /// on this partition (then `lag` is `None` too, never a made-up number).
    pub committed: Option<i64>,
    /// High watermark (end offset for read_uncommitted consumers).
    pub end: i64,
    /// Last stable offset (end offset for read_committed consumers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lso: Option<i64>,
    /// Earliest offset still in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_start: Option<i64>,
    /// `end - committed`, clamped at zero; `None` without a committed offset.
    pub lag: Option<i64>,
    /// Milliseconds the committed offset is behind the producer: the best
    /// value the collector has (see `time_lag_kind`); `None` when nothing
    /// is known. Never negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_lag_ms: Option<i64>,
    /// How `time_lag_ms` was obtained; absent from collectors before this
    /// field existed (read as an estimate without a bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_lag_kind: Option<TimeLagKind>,
    /// A value the true time lag is known to be at least, written only
    /// when it differs from `time_lag_ms` (interpolated values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_lag_min_ms: Option<i64>,
}

/// How a partition's time lag was obtained; decides how far it can be
/// trusted (see the README's time-lag section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeLagKind {
    /// Sample time minus the timestamp of the record at the committed
    /// offset (or 0: caught up). Exact up to the producer's clock.
    Exact,
    /// Interpolated between two remembered (time, end offset) points; the
    /// truth lies between `time_lag_min_ms` and `time_lag_min_ms` plus the
    /// gap between those points (one sample interval when sampling is
    /// regular).
    Interpolated,
    /// Only a lower bound is known: the committed offset is older than the
    /// remembered history and its record's timestamp was not read this
    /// cycle (probe budget spent, probe failed, or the record is gone).
    AtLeast,
}

/// A partition's time lag as the collector knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLag {
    /// Best value, milliseconds.
    pub ms: i64,
    /// The truth is at least this, milliseconds (`<= ms`).
    pub min_ms: i64,
    pub kind: TimeLagKind,
}

impl TimeLag {
    /// A value read from the record itself.
    pub fn exact(ms: i64) -> Self {
        let ms = ms.max(0);
        TimeLag {
            ms,
            min_ms: ms,
            kind: TimeLagKind::Exact,
        }
    }

    /// Only `ms` as a lower bound is known.
    pub fn at_least(ms: i64) -> Self {
        let ms = ms.max(0);
        TimeLag {
            ms,
            min_ms: ms,
            kind: TimeLagKind::AtLeast,
        }
    }
}

impl PartitionSample {
    /// Offset lag as seen by a consumer with `isolation`: against the last
    /// stable offset for read_committed (when known), else the high
    /// watermark. Never negative; `None` without a committed offset.
    pub fn lag_for(&self, isolation: crate::Isolation) -> Option<i64> {
        let committed = self.committed?;
        let end = match (isolation, self.lso) {
            (crate::Isolation::ReadCommitted, Some(lso)) => lso,
            _ => self.end,
        };
        // Saturating: a hostile or corrupt sample cannot overflow it.
        Some(end.saturating_sub(committed).max(0))
    }

    /// Stores `lag` as this partition's time lag.
    pub fn set_time_lag(&mut self, lag: TimeLag) {
        self.time_lag_ms = Some(lag.ms);
        self.time_lag_kind = Some(lag.kind);
        self.time_lag_min_ms = (lag.min_ms != lag.ms).then_some(lag.min_ms);
    }

    /// The time lag the partition is known to have at least: what alerts
    /// compare with their threshold, so an estimate never pages on its own
    /// error. Samples without `time_lag_kind` (older collectors) count with
    /// their value.
    pub fn time_lag_at_least_ms(&self) -> Option<i64> {
        self.time_lag_min_ms.or(self.time_lag_ms)
    }

    /// Whether the committed offset points before the log start: the data
    /// the group would read next is gone (past retention).
    pub fn committed_below_log_start(&self) -> bool {
        matches!((self.committed, self.log_start), (Some(c), Some(start)) if c < start)
    }

    /// Builds a partition sample, computing the lag against `end`.
    pub fn new(topic: impl Into<String>, partition: i32, committed: Option<i64>, end: i64) -> Self {
        PartitionSample {
            topic: topic.into(),
            partition,
            committed,
            end,
            lso: None,
            log_start: None,
            lag: committed.map(|c| (end - c).max(0)),
            time_lag_ms: None,
            time_lag_kind: None,
            time_lag_min_ms: None,
        }
    }
}

/// Why a metrics-topic message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid lagwatch JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("message has wire version {found}, this build reads up to {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
}

/// Decodes one metrics-topic message, checking its version.
pub fn decode_message(payload: &[u8]) -> Result<MetricsMessage, DecodeError> {
    let message: MetricsMessage = serde_json::from_slice(payload)?;
    let found = match &message {
        MetricsMessage::Group(sample) => sample.v,
        MetricsMessage::Broker(sample) => sample.v,
        MetricsMessage::GroupPart(part) => part.sample.v,
    };
    if found > WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found,
            supported: WIRE_VERSION,
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupSample {
        GroupSample {
            v: WIRE_VERSION,
            cluster: "local".into(),
            group: "billing".into(),
            state: "Stable".into(),
            members: 2,
            ts_ms: 1_700_000_000_000,
            error: None,
            partitions: vec![PartitionSample::new("orders", 0, Some(100), 1000)],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let message = MetricsMessage::Group(sample());
        let decoded = decode_message(&message.to_json()).expect("decodes");
        assert_eq!(decoded, message);
        assert_eq!(message.key(), "local/billing");
    }

    #[test]
    fn wire_form_is_stable() {
        let json: serde_json::Value =
            serde_json::from_slice(&MetricsMessage::Group(sample()).to_json()).expect("json");
        assert_eq!(json["v"], 1);
        assert_eq!(json["kind"], "group");
        assert_eq!(json["partitions"][0]["lag"], 900);
        assert_eq!(json["partitions"][0]["committed"], 100);
    }

    #[test]
    fn ignores_unknown_fields_from_newer_producers() {
        let payload = br#"{"v":1,"kind":"group","cluster":"c","group":"g","state":"Empty",
            "members":0,"ts_ms":5,"future_field":{"x":1},
            "partitions":[{"topic":"t","partition":3,"committed":null,"end":7,"lag":null,"new":true}]}"#;
        let MetricsMessage::Group(decoded) = decode_message(payload).expect("decodes") else {
            panic!("not a group sample");
        };
        assert_eq!(decoded.partitions[0].committed, None);
        assert_eq!(decoded.partitions[0].lag, None);
        assert_eq!(decoded.partitions[0].end, 7);
    }

    #[test]
    fn broker_samples_share_the_topic() {
        let mut sample = crate::BrokerSample::new("local", 1, 5);
        sample.metrics.push(crate::BrokerMetric {
            name: "UnderReplicatedPartitions".into(),
            topic: None,
            value: 2.0,
        });
        let message = MetricsMessage::Broker(sample);
        assert_eq!(message.key(), "local/brokers");
        let json: serde_json::Value = serde_json::from_slice(&message.to_json()).expect("json");
        assert_eq!(json["kind"], "broker");
        assert_eq!(
            decode_message(&message.to_json()).expect("decodes"),
            message
        );
    }

    #[test]
    fn rejects_newer_versions_clearly() {
        let payload = br#"{"v":2,"kind":"group","cluster":"c","group":"g","state":"Empty",
            "members":0,"ts_ms":5,"partitions":[]}"#;
        let error = decode_message(payload).expect_err("must reject");
        assert!(error.to_string().contains("wire version 2"), "{error}");
    }

    #[test]
    fn read_committed_lag_uses_the_last_stable_offset() {
        let mut p = PartitionSample::new("t", 0, Some(90), 100);
        p.lso = Some(95);
        assert_eq!(p.lag_for(crate::Isolation::ReadUncommitted), Some(10));
        assert_eq!(p.lag_for(crate::Isolation::ReadCommitted), Some(5));
        p.lso = None;
        assert_eq!(p.lag_for(crate::Isolation::ReadCommitted), Some(10));
    }

    #[test]
    fn flags_commits_behind_retention() {
        let mut p = PartitionSample::new("t", 0, Some(10), 100);
        p.log_start = Some(50);
        assert!(p.committed_below_log_start());
        p.log_start = Some(10);
        assert!(!p.committed_below_log_start());
    }

    #[test]
    fn lag_is_never_negative() {
        // A commit racing ahead of a stale end offset must not report -5.
        assert_eq!(PartitionSample::new("t", 0, Some(105), 100).lag, Some(0));
        assert_eq!(PartitionSample::new("t", 0, None, 100).lag, None);
    }

    #[test]
    fn hostile_offsets_saturate_instead_of_overflowing() {
        let partition = PartitionSample {
            committed: Some(i64::MIN),
            ..sample().partitions[0].clone()
        };
        assert_eq!(
            partition.lag_for(crate::Isolation::ReadUncommitted),
            Some(i64::MAX)
        );
    }
}
