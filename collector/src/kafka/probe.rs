//! Record timestamps for exact time lag, read by a plain rdkafka consumer.
//!
//! This is the one sampling read that stays on librdkafka: fetching
//! records is what its consumer does well, and it uses no admin request
//! (the requests that aborted the process on a broker restart). The
//! consumer is created on first use, assigns the asked partitions at the
//! asked offsets, never joins its group and never commits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lagwatch_kafka::ClusterConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The lazily created probe consumer of one cluster.
#[derive(Default)]
pub(crate) struct TimestampProbe {
    consumer: Mutex<Option<BaseConsumer>>,
}

impl TimestampProbe {
    /// Timestamp (ms) of the first record at or after each position;
    /// partitions without an answer within `timeout` are left out.
    pub(crate) fn record_timestamps(
        &self,
        cluster: &ClusterConfig,
        positions: &[(String, i32, i64)],
        timeout: Duration,
    ) -> HashMap<(String, i32), i64> {
        let mut found = HashMap::new();
        if positions.is_empty() {
            return found;
        }
        let Ok(mut probe) = self.consumer.lock() else {
            return found;
        };
        if probe.is_none() {
            match cluster
                .client_config()
                .set("group.id", "lagwatch-timestamp-probe")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "50")
                .set("max.partition.fetch.bytes", "65536")
                .create::<BaseConsumer>()
            {
                Ok(consumer) => *probe = Some(consumer),
                Err(error) => {
                    tracing::warn!(error = %error, "cannot create the time-lag probe consumer");
                    return found;
                }
            }
        }
        let Some(consumer) = probe.as_ref() else {
            return found;
        };
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in positions {
            if list
                .add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                continue;
            }
        }
        if let Err(error) = consumer.assign(&list) {
            tracing::warn!(error = %error, "cannot assign the time-lag probe");
            return found;
        }
        let deadline = Instant::now() + timeout;
        while found.len() < positions.len() && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let key = (message.topic().to_string(), message.partition());
                    if let Some(ts) = message.timestamp().to_millis() {
                        found.entry(key).or_insert(ts);
                    }
                }
                Some(Err(error)) => tracing::debug!(error = %error, "time-lag probe fetch error"),
                None => {}
            }
        }
        let _ = consumer.unassign();
        found
    }
}
