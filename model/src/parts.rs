//! Group samples too large for one Kafka message.
//!
//! A group reading thousands of partitions makes a sample of more than the
//! broker's default message limit (1 MB); producing it would fail and the
//! group would never be judged. Such a sample travels as several
//! `group_part` messages with the same key (so the same metrics-topic
//! partition, in order), each carrying some of its partitions and
//! `part`/`parts`. Readers that judge a group as a whole (the evaluator)
//! put the parts back together with [`PartAssembler`]; readers that store
//! per partition (history) can take each part as it comes.
//!
//! A sample whose parts do not all arrive (a reader restarted between
//! them, so the first parts were before its start offset) is dropped when
//! the next sample of the group begins, and counted: the group is judged
//! again one sample interval later.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{GroupSample, MetricsMessage, PartitionSample};

/// Largest metrics-topic message lagwatch writes, bytes of JSON: half the
/// broker's default `message.max.bytes`, leaving room for the record
/// overhead and for brokers configured a little lower.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// Most groups with parts in flight at once in one reader; beyond it the
/// oldest incomplete sample is dropped (bounded memory).
const MAX_PENDING: usize = 1_024;

/// Part `part` (0-based) of `parts` of one group sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPart {
    pub part: u32,
    pub parts: u32,
    /// The sample's fields, with only this part's partitions.
    #[serde(flatten)]
    pub sample: GroupSample,
}

/// The messages that carry `sample`: itself when its JSON fits
/// `max_bytes`, else parts of at most `max_bytes` each (a single partition
/// larger than that still gets a part of its own).
pub fn split_sample(sample: GroupSample, max_bytes: usize) -> Vec<MetricsMessage> {
    let whole = MetricsMessage::Group(sample);
    if whole.to_json().len() <= max_bytes {
        return vec![whole];
    }
    let MetricsMessage::Group(mut sample) = whole else {
        return vec![whole];
    };
    let partitions = std::mem::take(&mut sample.partitions);
    // The envelope: the sample without partitions, plus the part fields.
    let envelope = MetricsMessage::GroupPart(GroupPart {
        part: u32::MAX,
        parts: u32::MAX,
        sample: sample.clone(),
    })
    .to_json()
    .len();
    let budget = max_bytes.saturating_sub(envelope).max(1);
    let mut chunks: Vec<Vec<PartitionSample>> = Vec::new();
    let mut current: Vec<PartitionSample> = Vec::new();
    let mut used = 0;
    for partition in partitions {
        // Each entry costs its JSON plus a separating comma.
        let size = serde_json::to_vec(&partition).map_or(0, |json| json.len()) + 1;
        if !current.is_empty() && used + size > budget {
            chunks.push(std::mem::take(&mut current));
            used = 0;
        }
        used += size;
        current.push(partition);
    }
    chunks.push(current);
    let parts = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, partitions)| {
            MetricsMessage::GroupPart(GroupPart {
                part: u32::try_from(index).unwrap_or(u32::MAX),
                parts,
                sample: GroupSample {
                    partitions,
                    ..sample.clone()
                },
            })
        })
        .collect()
}

/// Parts of one sample received so far.
#[derive(Debug)]
struct Pending {
    ts_ms: i64,
    parts: u32,
    received: Vec<Option<GroupSample>>,
    /// Arrival order, for evicting the oldest.
    started: u64,
}

/// Puts split samples back together, one group at a time.
#[derive(Debug, Default)]
pub struct PartAssembler {
    pending: HashMap<String, Pending>,
    arrivals: u64,
    dropped: u64,
}

impl PartAssembler {
    /// Adds one part; returns the whole sample once its last part arrived.
    /// A part of a newer sample drops the group's incomplete older one.
    pub fn add(&mut self, part: GroupPart) -> Option<GroupSample> {
        let key = part.sample.key();
        let parts = part.parts.max(1);
        let index = usize::try_from(part.part).unwrap_or(usize::MAX);
        if index >= usize::try_from(parts).unwrap_or(usize::MAX) {
            self.dropped += 1;
            return None;
        }
        self.arrivals += 1;
        let replace = self
            .pending
            .get(&key)
            .is_none_or(|p| p.ts_ms != part.sample.ts_ms || p.parts != parts);
        if replace {
            if self.pending.contains_key(&key) {
                self.dropped += 1;
            }
            self.evict_if_full();
            self.pending.insert(
                key.clone(),
                Pending {
                    ts_ms: part.sample.ts_ms,
                    parts,
                    received: vec![None; usize::try_from(parts).unwrap_or(0)],
                    started: self.arrivals,
                },
            );
        }
        let pending = self.pending.get_mut(&key)?;
        if let Some(slot) = pending.received.get_mut(index) {
            *slot = Some(part.sample);
        }
        if pending.received.iter().any(Option::is_none) {
            return None;
        }
        let pending = self.pending.remove(&key)?;
        let mut pieces = pending.received.into_iter().flatten();
        let mut whole = pieces.next()?;
        for piece in pieces {
            whole.partitions.extend(piece.partitions);
        }
        Some(whole)
    }

    /// Incomplete samples dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn evict_if_full(&mut self) {
        if self.pending.len() < MAX_PENDING {
            return;
        }
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.pending.remove(&key);
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_message, WIRE_VERSION};

    fn big_sample(partitions: i32, ts_ms: i64) -> GroupSample {
        GroupSample {
            v: WIRE_VERSION,
            cluster: "local".into(),
            group: "huge \"group\" ünïcode".into(),
            state: "Stable".into(),
            members: 3,
            ts_ms,
            error: None,
            partitions: (0..partitions)
                .map(|p| PartitionSample::new(format!("topic-{}", p % 97), p, Some(10), 20))
                .collect(),
        }
    }

    #[test]
    fn small_samples_travel_whole() {
        let sample = big_sample(10, 1);
        assert_eq!(
            split_sample(sample.clone(), MAX_MESSAGE_BYTES),
            vec![MetricsMessage::Group(sample)]
        );
    }

    #[test]
    fn large_samples_split_within_the_limit_and_reassemble_exactly() {
        let sample = big_sample(20_000, 7);
        assert!(MetricsMessage::Group(sample.clone()).to_json().len() > 1_000_000);
        let messages = split_sample(sample.clone(), MAX_MESSAGE_BYTES);
        assert!(messages.len() >= 2, "{}", messages.len());
        let mut assembler = PartAssembler::default();
        let mut whole = None;
        for message in &messages {
            let json = message.to_json();
            assert!(json.len() <= MAX_MESSAGE_BYTES, "{}", json.len());
            assert_eq!(message.key(), sample.key());
            let MetricsMessage::GroupPart(part) = decode_message(&json).expect("decodes") else {
                panic!("expected parts");
            };
            assert!(whole.is_none(), "complete before the last part");
            whole = assembler.add(part);
        }
        assert_eq!(whole, Some(sample));
        assert_eq!(assembler.dropped(), 0);
    }

    #[test]
    fn an_incomplete_sample_is_dropped_when_the_next_begins() {
        let first = split_sample(big_sample(20_000, 1), MAX_MESSAGE_BYTES);
        let second = split_sample(big_sample(20_000, 2), MAX_MESSAGE_BYTES);
        let mut assembler = PartAssembler::default();
        let parts = |messages: Vec<MetricsMessage>| {
            messages.into_iter().filter_map(|m| match m {
                MetricsMessage::GroupPart(part) => Some(part),
                _ => None,
            })
        };
        // The first part of sample 1 was before this reader's start.
        for part in parts(first).skip(1) {
            assert_eq!(assembler.add(part), None);
        }
        let mut whole = None;
        for part in parts(second) {
            whole = assembler.add(part);
        }
        assert_eq!(whole.map(|s| s.ts_ms), Some(2));
        assert_eq!(assembler.dropped(), 1);
    }

    #[test]
    fn nonsense_part_numbers_are_dropped() {
        let mut assembler = PartAssembler::default();
        let part = GroupPart {
            part: 5,
            parts: 2,
            sample: big_sample(1, 1),
        };
        assert_eq!(assembler.add(part), None);
        assert_eq!(assembler.dropped(), 1);
    }
}
