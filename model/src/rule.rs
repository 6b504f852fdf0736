//! [`Rule`]: which rule raised an alert, parsed once from the rule name an
//! [`AlertEvent`](crate::AlertEvent) carries on the wire, so code matches on
//! a type (exhaustively) instead of testing string prefixes.
//!
//! On the wire (alert-event and alert-state topics, webhook payloads,
//! history rows) a rule is still its name, a plain JSON string: the serde
//! impls go through `Display`/`FromStr`, so records of every version read
//! and write the same bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::rule;

/// The rule of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Largest partition lag above the monitor's threshold.
    LagThreshold,
    /// Summed lag of one topic above its threshold.
    TopicLagThreshold,
    /// Summed lag of all watched partitions above its threshold.
    TotalLagThreshold,
    /// Largest partition time lag above its threshold.
    TimeLagThreshold,
    /// Burrow-style window status (STALL, STOP, REWIND).
    LagStatus,
    /// A broker rule of the rules files, by name.
    Broker(String),
    /// One of lagwatch's checks of itself (`collector/<cluster>`, `sink/<id>`).
    SelfCheck(String),
    /// A name this build does not know (written by a newer version).
    Other(String),
}

/// No rule named: the rule of an empty event (`AlertEvent::default()`),
/// written as the empty name.
impl Default for Rule {
    fn default() -> Self {
        Rule::Other(String::new())
    }
}

impl Rule {
    /// Whether the rule belongs to a monitor (lag rules), as opposed to the
    /// brokers or lagwatch itself.
    pub fn is_monitor_rule(&self) -> bool {
        matches!(
            self,
            Rule::LagThreshold
                | Rule::TopicLagThreshold
                | Rule::TotalLagThreshold
                | Rule::TimeLagThreshold
                | Rule::LagStatus
        )
    }
}

impl FromStr for Rule {
    type Err = std::convert::Infallible;

    /// Never fails: unknown names are [`Rule::Other`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            rule::LAG_THRESHOLD => Rule::LagThreshold,
            rule::TOPIC_LAG_THRESHOLD => Rule::TopicLagThreshold,
            rule::TOTAL_LAG_THRESHOLD => Rule::TotalLagThreshold,
            rule::TIME_LAG_THRESHOLD => Rule::TimeLagThreshold,
            rule::LAG_STATUS => Rule::LagStatus,
            other => match (
                other.strip_prefix(rule::BROKER_PREFIX),
                other.strip_prefix(rule::SELF_PREFIX),
            ) {
                (Some(broker), _) => Rule::Broker(broker.to_string()),
                (_, Some(check)) => Rule::SelfCheck(check.to_string()),
                _ => Rule::Other(other.to_string()),
            },
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::LagThreshold => f.write_str(rule::LAG_THRESHOLD),
            Rule::TopicLagThreshold => f.write_str(rule::TOPIC_LAG_THRESHOLD),
            Rule::TotalLagThreshold => f.write_str(rule::TOTAL_LAG_THRESHOLD),
            Rule::TimeLagThreshold => f.write_str(rule::TIME_LAG_THRESHOLD),
            Rule::LagStatus => f.write_str(rule::LAG_STATUS),
            Rule::Broker(name) => write!(f, "{}{name}", rule::BROKER_PREFIX),
            Rule::SelfCheck(check) => write!(f, "{}{check}", rule::SELF_PREFIX),
            Rule::Other(name) => f.write_str(name),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    /// Any string reads: unknown names are [`Rule::Other`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(name.parse().unwrap_or_else(|never| match never {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "lag_threshold",
            "topic_lag_threshold",
            "total_lag_threshold",
            "time_lag_threshold",
            "lag_status",
            "broker:offline_partitions",
            "self:sink/email",
            "from_a_newer_version",
        ] {
            let parsed: Rule = name.parse().unwrap_or_else(|never| match never {});
            assert_eq!(parsed.to_string(), name);
        }
        let broker: Rule = "broker:x".parse().unwrap_or_else(|never| match never {});
        assert_eq!(broker, Rule::Broker("x".into()));
        assert!(!broker.is_monitor_rule());
        assert!(Rule::LagStatus.is_monitor_rule());
    }
}
