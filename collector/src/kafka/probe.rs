//! Record timestamps for time lag, read by a plain rdkafka consumer.
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
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::source::{NextRecord, RecordPosition};

/// The lazily created probe consumer of one cluster.
#[derive(Default)]
pub(crate) struct TimestampProbe {
    consumer: Mutex<Option<BaseConsumer>>,
}

impl TimestampProbe {
    /// What a consumer placed at each position reads first; partitions
    /// without an answer within `timeout` are left out. A partition read up
    /// to the sampled end without a record (the consumer's position passes
    /// transaction markers too) answers [`NextRecord::NothingUpTo`].
    pub(crate) fn next_records(
        &self,
        cluster: &ClusterConfig,
        positions: &[RecordPosition],
        timeout: Duration,
    ) -> HashMap<(String, i32), NextRecord> {
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
                // Aborted records are records a read_uncommitted group
                // reads; the estimate's truth is the next record it reads.
                .set("isolation.level", "read_uncommitted")
                .set("enable.partition.eof", "true")
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
        let mut ends = HashMap::new();
        for position in positions {
            if list
                .add_partition_offset(
                    &position.topic,
                    position.partition,
                    Offset::Offset(position.offset),
                )
                .is_ok()
            {
                ends.insert((position.topic.clone(), position.partition), position.end);
            }
        }
        if let Err(error) = consumer.assign(&list) {
            tracing::warn!(error = %error, "cannot assign the time-lag probe");
            return found;
        }
        let deadline = Instant::now() + timeout;
        while found.len() < ends.len() && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let key = (message.topic().to_string(), message.partition());
                    if let Some(ts) = message.timestamp().to_millis() {
                        found.entry(key).or_insert(NextRecord::WrittenAt(ts));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {
                    nothing_left(consumer, &ends, &mut found);
                }
                Some(Err(error)) => tracing::debug!(error = %error, "time-lag probe fetch error"),
            }
        }
        let _ = consumer.unassign();
        found
    }
}

/// Marks the partitions the probe read up to their sampled end without a
/// record: their group has nothing to read.
fn nothing_left(
    consumer: &BaseConsumer,
    ends: &HashMap<(String, i32), i64>,
    found: &mut HashMap<(String, i32), NextRecord>,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for element in positions.elements() {
        let key = (element.topic().to_string(), element.partition());
        let (Some(&end), Offset::Offset(at)) = (ends.get(&key), element.offset()) else {
            continue;
        };
        if at >= end {
            found.entry(key).or_insert(NextRecord::NothingUpTo(end));
        }
    }
}
