//! Topic creation, shared by every stage that owns a topic: the metrics
//! topic (collector), the shard-coordination topic (collector instances)
//! and the compacted alert-state topic (evaluator). One function, so the
//! "already exists is fine" rule and the timeout live in one place.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::{ClusterConfig, KafkaError};

/// How long the brokers may take to create a topic.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the topics lagwatch keeps a week (samples, alert events,
/// dead letters): long enough for the history stage to catch up after a
/// long ClickHouse outage.
pub const KEEP_A_WEEK: &[(&str, &str)] = &[("retention.ms", "604800000")];

/// A topic lagwatch creates when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    /// Replication factor; `-1` takes the brokers' default.
    pub replication: i32,
    /// Topic-level settings (`cleanup.policy`, `retention.ms`, ...).
    pub settings: &'a [(&'a str, &'a str)],
}

impl<'a> TopicSpec<'a> {
    /// A six-partition topic kept a week at the brokers' default
    /// replication: the alert-event and dead-letter topics.
    pub fn kept_a_week(name: &'a str) -> Self {
        TopicSpec {
            name,
            partitions: 6,
            replication: -1,
            settings: KEEP_A_WEEK,
        }
    }
}

/// Creates the topic when it does not exist yet; an existing topic is left
/// as it is (its partition count and settings are the operator's).
pub async fn ensure_topic(cluster: &ClusterConfig, spec: &TopicSpec<'_>) -> Result<(), KafkaError> {
    let create_error = |message: String| KafkaError::CreateTopic {
        topic: spec.name.to_string(),
        message,
    };
    let admin: AdminClient<DefaultClientContext> = cluster
        .client_config()
        .create()
        .map_err(|e| create_error(e.to_string()))?;
    let mut new_topic = NewTopic::new(
        spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in spec.settings {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| create_error(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(create_error(code.to_string())),
        }
    }
    Ok(())
}
