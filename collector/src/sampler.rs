//! Turns one round of cluster calls into one [`GroupSample`] per group.
//!
//! The sampler asks the cluster for everything a cycle needs in a fixed,
//! small number of batched calls, whatever the number of groups:
//! describe groups, committed offsets (concurrent per group), metadata, and
//! three `ListOffsets` (high watermark, last stable offset, log start).
//! Only `ListOffsets` waits for another call (it needs the partitions the
//! groups have offsets on); the rest run side by side.

use std::collections::{BTreeSet, HashMap};

use lagwatch_model::{GroupSample, PartitionSample, TimeLag, WIRE_VERSION};

use crate::source::{
    GroupDescription, Isolation, NextRecord, OffsetSource, OffsetSpec, OffsetsByPartition,
    RecordPosition, SourceError,
};

/// What to sample for one group: the union of its monitors' interests.
#[derive(Debug, Clone)]
pub struct GroupTarget {
    pub group: String,
    /// Topics asked for explicitly; they are reported even where the group
    /// has no committed offset yet.
    pub topics: BTreeSet<String>,
    /// Topics matching one of these (anchored) patterns are reported where
    /// the group has offsets for them.
    pub topic_patterns: Vec<regex::Regex>,
    /// Whether some monitor wants every topic the group has offsets for.
    pub all_topics: bool,
    /// Selections of monitors whose team may watch only some topics
    /// (`teams.<name>.topics`): a pattern (or every topic) that reports
    /// only topics inside the team's limits.
    pub limited_selections: Vec<LimitedSelection>,
    /// Whether time lag is read from record timestamps (exact mode).
    pub exact_time_lag: bool,
    /// Whether some monitor measures this group against the last stable
    /// offset; the LSO lookup is skipped when no target needs it.
    pub read_committed: bool,
}

impl GroupTarget {
    /// Whether the committed offsets of `topic` belong in the sample.
    pub fn wants(&self, topic: &str) -> bool {
        self.all_topics
            || self.topics.contains(topic)
            || self.topic_patterns.iter().any(|p| p.is_match(topic))
            || self.limited_selections.iter().any(|s| s.wants(topic))
    }
}

/// A topic pattern (or every topic, without one) of a monitor whose team
/// owns only some topics: a pattern never reports a topic outside them.
#[derive(Debug, Clone)]
pub struct LimitedSelection {
    /// `None`: every topic the group has offsets for.
    pub pattern: Option<regex::Regex>,
    pub limits: lagwatch_model::TopicLimits,
}

impl LimitedSelection {
    fn wants(&self, topic: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.is_match(topic)) && self.limits.allows(topic)
    }
}

/// Samples every target group of one cluster at time `ts_ms`.
///
/// Never fails as a whole: a cluster-wide failure yields one sample per
/// group carrying the error, so the evaluator and dashboards see the outage
/// instead of silence.
pub fn sample_cluster(
    source: &dyn OffsetSource,
    cluster: &str,
    targets: &[GroupTarget],
    ts_ms: i64,
) -> Vec<GroupSample> {
    let groups: Vec<String> = targets.iter().map(|t| t.group.clone()).collect();
    // Describing groups does not depend on the offsets: it runs alongside.
    std::thread::scope(|scope| {
        let describe = scope.spawn(|| source.describe_groups(&groups));
        let wait_describe = move || {
            describe
                .join()
                .unwrap_or_else(|_| Err(SourceError::Client("describe thread panicked".into())))
        };
        sample_with(source, cluster, targets, ts_ms, &groups, wait_describe)
    })
}

type Descriptions = Result<HashMap<String, Result<GroupDescription, String>>, SourceError>;

fn sample_with(
    source: &dyn OffsetSource,
    cluster: &str,
    targets: &[GroupTarget],
    ts_ms: i64,
    groups: &[String],
    wait_describe: impl FnOnce() -> Descriptions,
) -> Vec<GroupSample> {
    let empty_sample = |target: &GroupTarget, state: &str, error: Option<String>| GroupSample {
        v: WIRE_VERSION,
        cluster: cluster.to_string(),
        group: target.group.clone(),
        state: state.to_string(),
        members: 0,
        ts_ms,
        error,
        partitions: Vec::new(),
    };

    // Metadata and committed offsets are independent: fetched side by side.
    let (metadata, mut committed) = std::thread::scope(|scope| {
        let committed = scope.spawn(|| source.committed_offsets(groups));
        let metadata = source.topic_partitions();
        // A panicked fetch leaves every group with "no committed offsets".
        (metadata, committed.join().unwrap_or_default())
    });
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(error) => {
            let message = error.to_string();
            return targets
                .iter()
                .map(|t| empty_sample(t, "Unknown", Some(message.clone())))
                .collect();
        }
    };

    // Partitions each group reports, and their union for ListOffsets.
    let mut wanted: Vec<(usize, Vec<WantedPartition>)> = Vec::new();
    let mut union: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut group_errors: HashMap<usize, Vec<String>> = HashMap::new();
    for (index, target) in targets.iter().enumerate() {
        let mut partitions: HashMap<(String, i32), Option<i64>> = HashMap::new();
        match committed.remove(&target.group) {
            Some(Ok(offsets)) => {
                for offset in offsets {
                    if target.wants(&offset.topic) {
                        partitions.insert((offset.topic, offset.partition), offset.offset);
                    }
                }
            }
            Some(Err(error)) => {
                group_errors
                    .entry(index)
                    .or_default()
                    .push(error.to_string());
            }
            None => {
                group_errors
                    .entry(index)
                    .or_default()
                    .push("no committed offsets returned".to_string());
            }
        }
        for topic in &target.topics {
            match metadata.get(topic) {
                Some(count) => {
                    for partition in 0..*count {
                        partitions.entry((topic.clone(), partition)).or_insert(None);
                    }
                }
                None => {
                    group_errors
                        .entry(index)
                        .or_default()
                        .push(format!("topic {topic} does not exist"));
                }
            }
        }
        // Offsets of a deleted topic linger in the group; there is no end
        // offset to compare them with, so they are reported as an error.
        let (present, deleted): (Vec<_>, Vec<_>) = partitions
            .into_iter()
            .partition(|((topic, _), _)| metadata.contains_key(topic));
        if !deleted.is_empty() {
            let topics: BTreeSet<&str> = deleted.iter().map(|((t, _), _)| t.as_str()).collect();
            let note = format!(
                "committed offsets on deleted topics: {}",
                topics.into_iter().collect::<Vec<_>>().join(",")
            );
            group_errors.entry(index).or_default().push(note);
        }
        let mut present: Vec<WantedPartition> =
            present.into_iter().map(|((t, p), c)| (t, p, c)).collect();
        present.sort();
        union.extend(present.iter().map(|(t, p, _)| (t.clone(), *p)));
        wanted.push((index, present));
    }

    let union: Vec<(String, i32)> = union.into_iter().collect();
    let needs_lso = targets.iter().any(|t| t.read_committed);
    let (high, stable, start) = list_all_offsets(source, &union, needs_lso);
    let descriptions = wait_describe();

    let mut samples = Vec::with_capacity(targets.len());
    for (index, partitions) in wanted {
        let target = &targets[index];
        let mut errors: Vec<String> = group_errors.remove(&index).unwrap_or_default();
        let (state, members) = match &descriptions {
            Ok(map) => match map.get(&target.group) {
                Some(Ok(description)) => (description.state.clone(), description.members),
                Some(Err(error)) => {
                    errors.push(format!("describe group: {error}"));
                    ("Unknown".to_string(), 0)
                }
                None => ("Unknown".to_string(), 0),
            },
            Err(error) => {
                errors.push(error.to_string());
                ("Unknown".to_string(), 0)
            }
        };
        let mut sample_partitions = Vec::with_capacity(partitions.len());
        let mut missing_end = 0usize;
        for (topic, partition, committed) in partitions {
            let key = (topic, partition);
            let Some(end) = lookup(&high, &key) else {
                missing_end += 1;
                continue;
            };
            let mut sample = PartitionSample::new(key.0.clone(), key.1, committed, end);
            sample.lso = lookup(&stable, &key);
            sample.log_start = lookup(&start, &key);
            sample_partitions.push(sample);
        }
        if missing_end > 0 {
            let reason = match &high {
                Err(error) => error.to_string(),
                Ok(_) => "partition leader did not answer".to_string(),
            };
            errors.push(format!(
                "end offset unknown for {missing_end} partition(s): {reason}"
            ));
        }
        samples.push(GroupSample {
            v: WIRE_VERSION,
            cluster: cluster.to_string(),
            group: target.group.clone(),
            state,
            members,
            ts_ms,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            partitions: sample_partitions,
        });
    }
    exact_time_lag(source, targets, &mut samples);
    samples
}

/// Exact mode: time lag = sample time − timestamp of the record at the
/// committed offset (0 when caught up or nothing is left to read).
fn exact_time_lag(source: &dyn OffsetSource, targets: &[GroupTarget], samples: &mut [GroupSample]) {
    let exact: BTreeSet<&str> = targets
        .iter()
        .filter(|t| t.exact_time_lag)
        .map(|t| t.group.as_str())
        .collect();
    if exact.is_empty() {
        return;
    }
    let mut positions = Vec::new();
    for sample in samples.iter().filter(|s| exact.contains(s.group.as_str())) {
        for p in &sample.partitions {
            if let Some(committed) = p.committed.filter(|c| *c < p.end) {
                positions.push(RecordPosition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset: committed,
                    end: p.end,
                });
            }
        }
    }
    let next = next_records_at(source, positions);
    for sample in samples
        .iter_mut()
        .filter(|s| exact.contains(s.group.as_str()))
    {
        let ts_ms = sample.ts_ms;
        for p in sample.partitions.iter_mut() {
            let Some(committed) = p.committed else {
                continue;
            };
            if committed >= p.end {
                p.set_time_lag(TimeLag::exact(0));
                continue;
            }
            match next.get(&(p.topic.clone(), p.partition, committed)) {
                Some(NextRecord::NothingUpTo(_)) => p.set_time_lag(TimeLag::exact(0)),
                // Below the log start a later record answered: the
                // committed one was written before it.
                Some(NextRecord::WrittenAt(written)) if p.committed_below_log_start() => {
                    p.set_time_lag(TimeLag::at_least(ts_ms - written))
                }
                Some(NextRecord::WrittenAt(written)) => {
                    p.set_time_lag(TimeLag::exact(ts_ms - written))
                }
                None => {}
            }
        }
    }
}

/// What a consumer placed at each position reads first, by (topic,
/// partition, offset). A partition asked at several offsets is read once
/// per distinct offset; positions without an answer are left out.
pub(crate) fn next_records_at(
    source: &dyn OffsetSource,
    mut positions: Vec<RecordPosition>,
) -> HashMap<(String, i32, i64), NextRecord> {
    positions.sort();
    positions
        .dedup_by(|a, b| (&a.topic, a.partition, a.offset) == (&b.topic, b.partition, b.offset));
    let mut answers = HashMap::new();
    let mut remaining = positions;
    while !remaining.is_empty() {
        let mut batch = Vec::new();
        let mut seen = BTreeSet::new();
        remaining.retain(|position| {
            if seen.insert((position.topic.clone(), position.partition)) {
                batch.push(position.clone());
                false
            } else {
                true
            }
        });
        let found = source.next_records(&batch);
        for position in batch {
            if let Some(next) = found.get(&(position.topic.clone(), position.partition)) {
                answers.insert((position.topic, position.partition, position.offset), *next);
            }
        }
    }
    answers
}

type OffsetsResult = Result<OffsetsByPartition, SourceError>;

/// A partition to report for a group: topic, partition, committed offset.
type WantedPartition = (String, i32, Option<i64>);

/// Runs the ListOffsets calls concurrently (the last stable offset only
/// when `needs_lso`).
fn list_all_offsets(
    source: &dyn OffsetSource,
    partitions: &[(String, i32)],
    needs_lso: bool,
) -> (OffsetsResult, OffsetsResult, OffsetsResult) {
    std::thread::scope(|scope| {
        let stable = scope.spawn(|| {
            if needs_lso {
                source.list_offsets(partitions, OffsetSpec::Latest, Isolation::ReadCommitted)
            } else {
                Ok(OffsetsByPartition::new())
            }
        });
        let start = scope.spawn(|| {
            source.list_offsets(partitions, OffsetSpec::Earliest, Isolation::ReadUncommitted)
        });
        let high = source.list_offsets(partitions, OffsetSpec::Latest, Isolation::ReadUncommitted);
        let panicked = || Err(SourceError::Client("offset lookup thread panicked".into()));
        (
            high,
            stable.join().unwrap_or_else(|_| panicked()),
            start.join().unwrap_or_else(|_| panicked()),
        )
    })
}

fn lookup(offsets: &OffsetsResult, key: &(String, i32)) -> Option<i64> {
    match offsets {
        Ok(map) => map.get(key).and_then(|r| r.as_ref().ok().copied()),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{CommittedByGroup, CommittedOffset, GroupDescription};

    /// An in-memory cluster: one topic `orders` with 2 partitions.
    struct FakeCluster {
        fail_metadata: bool,
    }

    impl OffsetSource for FakeCluster {
        fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
            if self.fail_metadata {
                return Err(SourceError::Metadata("all brokers down".into()));
            }
            Ok(HashMap::from([("orders".to_string(), 2)]))
        }
        fn list_groups(&self) -> Result<(Vec<String>, Vec<String>), SourceError> {
            Ok((vec!["billing".into()], vec![]))
        }
        fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup {
            groups
                .iter()
                .map(|g| {
                    let offsets = vec![
                        CommittedOffset {
                            topic: "orders".into(),
                            partition: 0,
                            offset: Some(40),
                        },
                        CommittedOffset {
                            topic: "gone".into(),
                            partition: 0,
                            offset: Some(1),
                        },
                    ];
                    (g.clone(), Ok(offsets))
                })
                .collect()
        }
        fn describe_groups(
            &self,
            groups: &[String],
        ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
            Ok(groups
                .iter()
                .map(|g| {
                    let d = GroupDescription {
                        group: g.clone(),
                        state: "Stable".into(),
                        members: 3,
                        protocol: "Classic".into(),
                    };
                    (g.clone(), Ok(d))
                })
                .collect())
        }
        fn list_offsets(
            &self,
            partitions: &[(String, i32)],
            spec: OffsetSpec,
            isolation: Isolation,
        ) -> Result<OffsetsByPartition, SourceError> {
            let value = match (spec, isolation) {
                (OffsetSpec::Earliest, _) => 5,
                (OffsetSpec::Latest, Isolation::ReadUncommitted) => 100,
                (OffsetSpec::Latest, Isolation::ReadCommitted) => 98,
            };
            Ok(partitions.iter().map(|p| (p.clone(), Ok(value))).collect())
        }
    }

    fn target(topics: &[&str], all: bool) -> GroupTarget {
        GroupTarget {
            group: "billing".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            topic_patterns: vec![],
            all_topics: all,
            limited_selections: vec![],
            exact_time_lag: false,
            read_committed: true,
        }
    }

    #[test]
    fn reports_lag_and_uncommitted_partitions() {
        let samples = sample_cluster(
            &FakeCluster {
                fail_metadata: false,
            },
            "c",
            &[target(&["orders"], false)],
            7,
        );
        let sample = &samples[0];
        assert_eq!(sample.state, "Stable");
        assert_eq!(sample.members, 3);
        assert_eq!(sample.partitions.len(), 2);
        let p0 = &sample.partitions[0];
        assert_eq!(
            (p0.partition, p0.committed, p0.end, p0.lag),
            (0, Some(40), 100, Some(60))
        );
        assert_eq!((p0.lso, p0.log_start), (Some(98), Some(5)));
        let p1 = &sample.partitions[1];
        assert_eq!((p1.partition, p1.committed, p1.lag), (1, None, None));
        assert_eq!(sample.error, None);
    }

    #[test]
    fn flags_offsets_on_deleted_topics() {
        let samples = sample_cluster(
            &FakeCluster {
                fail_metadata: false,
            },
            "c",
            &[target(&[], true)],
            7,
        );
        let error = samples[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("deleted topics: gone"), "{error}");
        assert_eq!(samples[0].partitions.len(), 1);
    }

    #[test]
    fn cluster_outage_yields_error_samples_not_silence() {
        let samples = sample_cluster(
            &FakeCluster {
                fail_metadata: true,
            },
            "c",
            &[target(&[], true)],
            7,
        );
        assert_eq!(samples.len(), 1);
        assert!(samples[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("all brokers down"));
    }

    #[test]
    fn missing_explicit_topic_is_reported() {
        let samples = sample_cluster(
            &FakeCluster {
                fail_metadata: false,
            },
            "c",
            &[target(&["nope"], false)],
            7,
        );
        assert!(samples[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("topic nope does not exist"));
    }
}
