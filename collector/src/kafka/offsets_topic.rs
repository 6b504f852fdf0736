//! Committed offsets read from Kafka's own `__consumer_offsets` topic, the
//! alternative to one OffsetFetch request per group and cycle.
//!
//! Every offset commit of every group is a record in `__consumer_offsets`:
//! the key names group, topic and partition, the value starts with the
//! offset, and a record without a value (a tombstone) removes the offset
//! (group deleted, offset expired or deleted). A background thread reads
//! the topic from the beginning with `isolation.level = read_committed`
//! (transactional offset commits count once their transaction commits, as
//! with OffsetFetch) and keeps the latest offset of each group partition.
//!
//! A cycle then costs the brokers nothing for committed offsets: at 2,000
//! groups the per-group requests were the largest share of the brokers' CPU
//! per cycle. To be as fresh as an OffsetFetch, a read first asks for the
//! last stable offsets of `__consumer_offsets` and waits until the reader's
//! positions reach them, so every commit acknowledged before the cycle
//! began is seen, except in a partition an open transaction holds back
//! (its last stable offset below its end): groups stored there are left to
//! the admin API ([`ReaderAnswer::unsure`], placement by [`partition_for`]).
//! When the reader cannot catch up in time (starting, broker trouble) or its
//! thread stopped, the caller falls back to the admin API for that cycle.
//!
//! The reader needs READ (and DESCRIBE) on the `__consumer_offsets` topic,
//! which clusters with ACLs often do not grant; that is why it is opt-in per
//! cluster (`committed_offsets = "offsets_topic"`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::source::{CommittedOffset, Isolation, OffsetSpec, OffsetsByPartition};

/// Looks up offsets of `__consumer_offsets` partitions for the reader: its
/// start positions and the topic's ends a read waits for. The source
/// implements it with its wire client; lookups must not be cached.
pub trait EndOffsets: Sync {
    /// The `spec` offset of each partition under `isolation`; an error
    /// says why no partition could be looked up.
    fn end_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, String>;
}

/// Kafka's internal topic of group offsets and metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Records applied under one lock acquisition at most.
const APPLY_BATCH: usize = 2_000;

/// What one `__consumer_offsets` record means for committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    /// `group` committed `offset` on `topic`/`partition`.
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// The committed offset of `group` on `topic`/`partition` is gone.
    Removed {
        group: String,
        topic: String,
        partition: i32,
    },
    /// A record of another kind (group metadata, KIP-848 group records,
    /// share groups): nothing to do.
    Other,
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct MalformedRecord(&'static str);

/// Decodes one record of `__consumer_offsets`.
///
/// Keys of version 0 and 1 are offset commits (group, topic, partition as
/// length-prefixed strings and an `i32`); every value version (0 to 4,
/// including the flexible v4) starts with the `i64` offset right after its
/// `i16` version. Other key versions are other record kinds.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<OffsetRecord, MalformedRecord> {
    let mut reader = Reader(key);
    let version = reader
        .i16()
        .ok_or(MalformedRecord("key shorter than its version"))?;
    if !(0..=1).contains(&version) {
        return Ok(OffsetRecord::Other);
    }
    let group = reader.string().ok_or(MalformedRecord("key group"))?;
    let topic = reader.string().ok_or(MalformedRecord("key topic"))?;
    let partition = reader.i32().ok_or(MalformedRecord("key partition"))?;
    let Some(value) = value else {
        return Ok(OffsetRecord::Removed {
            group,
            topic,
            partition,
        });
    };
    let mut reader = Reader(value);
    let _value_version = reader.i16().ok_or(MalformedRecord("value version"))?;
    let offset = reader.i64().ok_or(MalformedRecord("value offset"))?;
    Ok(OffsetRecord::Commit {
        group,
        topic,
        partition,
        offset,
    })
}

/// Big-endian reads from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    /// An `i16`-length-prefixed UTF-8 string.
    fn string(&mut self) -> Option<String> {
        let length = usize::try_from(self.i16()?).ok()?;
        if self.0.len() < length {
            return None;
        }
        let (text, rest) = self.0.split_at(length);
        self.0 = rest;
        String::from_utf8(text.to_vec()).ok()
    }
}

/// Committed offsets by group, then by (topic, partition).
type OffsetsByGroup = HashMap<String, HashMap<(String, i32), i64>>;

/// What the reader thread has seen so far.
#[derive(Debug, Default)]
struct ReaderState {
    offsets: OffsetsByGroup,
    /// Next offset to read, per `__consumer_offsets` partition.
    positions: HashMap<i32, i64>,
    /// Why the reader stopped, when it did.
    failed: Option<String>,
}

impl ReaderState {
    fn apply(&mut self, record: OffsetRecord) {
        match record {
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                offset,
            } => {
                self.offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), offset);
            }
            OffsetRecord::Removed {
                group,
                topic,
                partition,
            } => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        self.offsets.remove(&group);
                    }
                }
            }
            OffsetRecord::Other => {}
        }
    }
}

/// Why a read from the offsets topic could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetsTopicError {
    /// The reader could not start or stopped; it must be started again.
    #[error("cannot read __consumer_offsets: {0}")]
    Reader(String),
    /// The topic's last stable offsets could not be looked up this time.
    #[error("cannot look up the end of __consumer_offsets: {0}")]
    Lookup(String),
    #[error("the __consumer_offsets reader is {behind} record(s) behind after {waited:?}")]
    Behind { behind: i64, waited: Duration },
}

/// Shared between the reader thread and the callers.
struct Shared {
    state: Mutex<ReaderState>,
    /// Signalled whenever positions advance.
    advanced: Condvar,
    stop: AtomicBool,
    /// Records read and decoded so far (all kinds; malformed ones not
    /// counted).
    records: AtomicU64,
}

/// A background reader of `__consumer_offsets` (see the module docs).
pub struct OffsetsTopicReader {
    shared: Arc<Shared>,
    partitions: Vec<i32>,
    thread: Option<JoinHandle<()>>,
}

impl OffsetsTopicReader {
    /// Starts reading the topic from its beginning with a client built
    /// from `config` (the cluster's connection profile); `lookup` gives the
    /// partitions' log starts.
    pub fn start(
        config: &ClientConfig,
        lookup: &dyn EndOffsets,
        timeout: Duration,
    ) -> Result<Self, OffsetsTopicError> {
        let reader_error = |e: KafkaError| OffsetsTopicError::Reader(e.to_string());
        let mut config = config.clone();
        // librdkafka's assign() needs a group id; the reader never joins
        // the group nor commits.
        config
            .set("group.id", "lagwatch-offsets-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "100")
            // After a position falls out of range, start over rather
            // than jump to the end and skip commits.
            .set("auto.offset.reset", "earliest")
            // Bounded prefetch: the defaults queue up to 64 MB of records.
            .set("queued.max.messages.kbytes", "4096");
        // librdkafka wants fetch.max.bytes >= message.max.bytes.
        let message_max = config
            .get("message.max.bytes")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        config.set("fetch.max.bytes", message_max.max(4_194_304).to_string());
        let consumer: BaseConsumer = config.create().map_err(reader_error)?;
        let metadata = consumer
            .fetch_metadata(Some(OFFSETS_TOPIC), timeout)
            .map_err(reader_error)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == OFFSETS_TOPIC && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(OffsetsTopicError::Reader(format!(
                "{OFFSETS_TOPIC} has no readable partitions (not created yet, or no DESCRIBE permission)"
            )));
        }
        let mut assignment = TopicPartitionList::new();
        for partition in &partitions {
            assignment
                .add_partition_offset(OFFSETS_TOPIC, *partition, Offset::Beginning)
                .map_err(reader_error)?;
        }
        consumer.assign(&assignment).map_err(reader_error)?;
        // Reading starts at each partition's log start; a partition with
        // nothing to read (log start = end) is caught up from the outset.
        let wanted: Vec<(String, i32)> = partitions
            .iter()
            .map(|p| (OFFSETS_TOPIC.to_string(), *p))
            .collect();
        let starts = lookup
            .end_offsets(&wanted, OffsetSpec::Earliest, Isolation::ReadCommitted)
            .map_err(OffsetsTopicError::Reader)?;
        let mut state = ReaderState::default();
        for ((_, partition), start) in starts {
            state
                .positions
                .insert(partition, start.map_err(OffsetsTopicError::Reader)?);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            advanced: Condvar::new(),
            stop: AtomicBool::new(false),
            records: AtomicU64::new(0),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            let partitions = partitions.clone();
            std::thread::Builder::new()
                .name("offsets-reader".into())
                .spawn(move || read_loop(&consumer, &partitions, &shared))
                .map_err(|e| OffsetsTopicError::Reader(e.to_string()))?
        };
        tracing::info!(
            partitions = partitions.len(),
            "reading committed offsets from {OFFSETS_TOPIC}"
        );
        Ok(OffsetsTopicReader {
            shared,
            partitions,
            thread: Some(thread),
        })
    }

    /// Committed offsets of `groups` as of now: waits (up to `timeout`)
    /// until every commit acknowledged before the call has been read.
    /// A group without offsets gets an empty list, as from OffsetFetch.
    /// `lookup` (the cluster's wire client) gives the topic's ends.
    ///
    /// A transaction open in a partition of the topic (an exactly-once
    /// application committing offsets) holds that partition's last stable
    /// offset back: plain commits of other groups written after it are
    /// acknowledged but cannot be read yet. Groups stored in such a
    /// partition are returned in [`ReaderAnswer::unsure`] instead, for the
    /// caller to ask the admin API.
    pub fn committed_offsets(
        &self,
        lookup: &dyn EndOffsets,
        groups: &[String],
        timeout: Duration,
    ) -> Result<ReaderAnswer, OffsetsTopicError> {
        let started = Instant::now();
        if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(OffsetsTopicError::Reader(
                "the reader thread stopped".into(),
            ));
        }
        let wanted: Vec<(String, i32)> = self
            .partitions
            .iter()
            .map(|p| (OFFSETS_TOPIC.to_string(), *p))
            .collect();
        let ends = |isolation| -> Result<HashMap<i32, i64>, OffsetsTopicError> {
            let found = lookup
                .end_offsets(&wanted, OffsetSpec::Latest, isolation)
                .map_err(OffsetsTopicError::Lookup)?;
            found
                .into_iter()
                .map(|((_, partition), end)| {
                    Ok((partition, end.map_err(OffsetsTopicError::Lookup)?))
                })
                .collect()
        };
        let targets = ends(Isolation::ReadCommitted)?;
        let high = ends(Isolation::ReadUncommitted)?;
        let held: std::collections::HashSet<i32> = targets
            .iter()
            .filter(|(partition, stable)| high.get(partition).is_some_and(|end| end > stable))
            .map(|(partition, _)| *partition)
            .collect();
        let count = i32::try_from(self.partitions.len()).unwrap_or(i32::MAX);
        let deadline = started + timeout;
        let mut state = self
            .shared
            .state
            .lock()
            .map_err(|_| OffsetsTopicError::Reader("reader state poisoned".into()))?;
        loop {
            if let Some(failed) = &state.failed {
                return Err(OffsetsTopicError::Reader(failed.clone()));
            }
            let behind: i64 = targets
                .iter()
                .map(|(partition, end)| {
                    let position = state.positions.get(partition).copied().unwrap_or(0);
                    (end - position).max(0)
                })
                .sum();
            if behind == 0 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(OffsetsTopicError::Behind {
                    behind,
                    waited: now - started,
                });
            }
            state = self
                .shared
                .advanced
                .wait_timeout(state, deadline - now)
                .map_err(|_| OffsetsTopicError::Reader("reader state poisoned".into()))?
                .0;
        }
        let (unsure, sure): (Vec<&String>, Vec<&String>) = groups
            .iter()
            .partition(|group| held.contains(&partition_for(group, count)));
        let offsets = sure
            .into_iter()
            .map(|group| {
                let offsets = state
                    .offsets
                    .get(group)
                    .map(|offsets| {
                        offsets
                            .iter()
                            .map(|((topic, partition), offset)| CommittedOffset {
                                topic: topic.clone(),
                                partition: *partition,
                                offset: Some(*offset),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (group.clone(), offsets)
            })
            .collect();
        Ok(ReaderAnswer {
            offsets,
            unsure: unsure.into_iter().cloned().collect(),
        })
    }
}

/// What the reader could answer for a set of groups.
#[derive(Debug, Clone, Default)]
pub struct ReaderAnswer {
    /// Committed offsets by group, as fresh as an OffsetFetch.
    pub offsets: HashMap<String, Vec<CommittedOffset>>,
    /// Groups stored in a partition held back by an open transaction:
    /// ask the admin API for these.
    pub unsure: Vec<String>,
}

/// The `__consumer_offsets` partition that stores `group`'s records, as
/// the brokers choose it: the absolute value of Java's `String.hashCode`
/// of the id (0 for `i32::MIN`) modulo the partition count.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

impl OffsetsTopicReader {
    /// Records of `__consumer_offsets` read so far (all kinds, skipped
    /// ones excluded).
    pub fn records_read(&self) -> u64 {
        self.shared.records.load(Ordering::Relaxed)
    }
}

impl Drop for OffsetsTopicReader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Errors after which reading cannot go on: no permission to read the
/// topic (the admin API answers instead, and the start is retried later).
fn is_fatal(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(Code::TopicAuthorizationFailed)
    )
}

/// The reader thread: polls, decodes, applies in batches, and publishes
/// the consumer's positions (which step over transaction markers).
fn read_loop(consumer: &BaseConsumer, partitions: &[i32], shared: &Shared) {
    let mut batch: Vec<OffsetRecord> = Vec::with_capacity(APPLY_BATCH);
    let mut malformed = 0u64;
    let mut last_error: Option<String> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let mut polled = consumer.poll(Duration::from_millis(100));
        while let Some(result) = polled {
            match result {
                Ok(message) => {
                    match decode_record(message.key().unwrap_or_default(), message.payload()) {
                        Ok(record) => batch.push(record),
                        Err(error) => {
                            malformed += 1;
                            if malformed.is_power_of_two() {
                                tracing::warn!(
                                    partition = message.partition(),
                                    offset = message.offset(),
                                    error = %error,
                                    malformed,
                                    "skipping an unreadable {OFFSETS_TOPIC} record"
                                );
                            }
                        }
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(error) if is_fatal(&error) => {
                    if let Ok(mut state) = shared.state.lock() {
                        state.failed = Some(error.to_string());
                    }
                    shared.advanced.notify_all();
                    return;
                }
                Err(error) => {
                    // Logged once per distinct error, not on every poll.
                    let text = error.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        if error.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed)
                        {
                            // librdkafka looks up the coordinator of the
                            // reader's group id; reading needs no group.
                            tracing::debug!(error = %text, "{OFFSETS_TOPIC} reader has no group rights (none needed)");
                        } else {
                            tracing::warn!(error = %text, "{OFFSETS_TOPIC} reader error");
                        }
                        last_error = Some(text);
                    }
                }
            }
            if batch.len() >= APPLY_BATCH {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }
        let positions = consumer.position().ok();
        let Ok(mut state) = shared.state.lock() else {
            return;
        };
        shared
            .records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for record in batch.drain(..) {
            state.apply(record);
        }
        if let Some(positions) = positions {
            for partition in partitions {
                if let Some(Offset::Offset(next)) = positions
                    .find_partition(OFFSETS_TOPIC, *partition)
                    .map(|p| p.offset())
                {
                    state.positions.insert(*partition, next);
                }
            }
        }
        drop(state);
        shared.advanced.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> Vec<u8> {
        let mut bytes = i16::try_from(text.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    fn key(version: i16, group: &str, topic: &str, partition: i32) -> Vec<u8> {
        let mut key = version.to_be_bytes().to_vec();
        key.extend(string(group));
        key.extend(string(topic));
        key.extend(partition.to_be_bytes());
        key
    }

    fn value(version: i16, offset: i64) -> Vec<u8> {
        let mut value = version.to_be_bytes().to_vec();
        value.extend(offset.to_be_bytes());
        // The rest (metadata, timestamps, leader epoch) is not read.
        value.extend([0u8; 16]);
        value
    }

    #[test]
    fn decodes_commits_of_every_value_version_and_tombstones() {
        for version in 0..=4 {
            let record = decode_record(&key(1, "g", "orders", 7), Some(&value(version, 1234)));
            assert_eq!(
                record,
                Ok(OffsetRecord::Commit {
                    group: "g".into(),
                    topic: "orders".into(),
                    partition: 7,
                    offset: 1234
                }),
                "value version {version}"
            );
        }
        assert_eq!(
            decode_record(&key(0, "g", "t", 0), None),
            Ok(OffsetRecord::Removed {
                group: "g".into(),
                topic: "t".into(),
                partition: 0
            })
        );
    }

    #[test]
    fn other_record_kinds_are_ignored_and_garbage_is_an_error() {
        // Key version 2 is group metadata; 3 and up are KIP-848 records.
        for version in [2, 3, 11] {
            let mut key = i16::to_be_bytes(version).to_vec();
            key.extend(string("g"));
            assert_eq!(decode_record(&key, Some(b"xx")), Ok(OffsetRecord::Other));
            assert_eq!(decode_record(&key, None), Ok(OffsetRecord::Other));
        }
        assert!(decode_record(&[0], None).is_err());
        let mut truncated = key(1, "group", "topic", 3);
        truncated.truncate(9);
        assert!(decode_record(&truncated, None).is_err());
        assert!(decode_record(&key(1, "g", "t", 0), Some(&[0, 3, 1])).is_err());
    }

    #[test]
    fn groups_map_to_the_partition_the_brokers_use() {
        // Expected values from Java: abs(id.hashCode()) % 50 (with
        // Integer.MIN_VALUE mapped to 0, as Kafka's Utils.abs does).
        for (group, partition) in [
            ("", 0),
            ("hello", 22),
            ("lagwatch-evaluator", 1),
            ("polygenelubricants", 0),
            ("größe-群組", 46),
            ("orders-billing", 11),
        ] {
            assert_eq!(partition_for(group, 50), partition, "{group}");
        }
    }

    #[test]
    fn state_keeps_the_latest_offset_and_forgets_removed_ones() {
        let mut state = ReaderState::default();
        let commit = |offset| OffsetRecord::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            offset,
        };
        state.apply(commit(5));
        state.apply(commit(9));
        assert_eq!(state.offsets["g"][&("t".to_string(), 0)], 9);
        state.apply(OffsetRecord::Removed {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        });
        assert!(state.offsets.is_empty());
    }
}
