//! The [`OffsetSource`] of a real cluster: the group and offset requests go
//! through the native wire client ([`wire`]), on a small runtime owned by
//! the source ([`runtime`]); only the `__consumer_offsets` reader and the
//! record-timestamp probe use librdkafka consumers.
//!
//! Besides the requests, this module decides what to ask each cycle:
//! settled groups are described in rotation unless the group listing shows
//! a change, log start offsets are read a third per cycle, and a listing
//! pattern monitors already asked for is reused by the describe step.
//!
//! Errors keep the client's words (a failed TLS handshake, a refused login,
//! the broker that is down), so an error sample says why.

pub mod offsets_topic;
mod outage;
mod probe;
mod rotation;
mod runtime;
mod wire;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lagwatch_kafka::ClusterConfig;

use crate::source::{
    CommittedByGroup, GroupDescription, GroupListing, Isolation, OffsetSource, OffsetSpec,
    OffsetsByPartition, SourceError,
};
use outage::OutageLog;
use probe::TimestampProbe;
use rotation::RotationCache;
use wire::WireCalls;

/// How the collector learns the committed offsets of a cluster's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommittedOffsetsFrom {
    /// One OffsetFetch request per group and cycle, through the admin API.
    /// Needs only DESCRIBE on the groups.
    #[default]
    AdminApi,
    /// Read from `__consumer_offsets` by a background reader (see
    /// [`offsets_topic`]): no per-group requests, the brokers only serve one
    /// fetch stream. Needs READ on `__consumer_offsets`; the admin API
    /// answers while the reader catches up or when it fails.
    OffsetsTopic,
}

impl<'de> serde::Deserialize<'de> for CommittedOffsetsFrom {
    /// Like the derived form, but a wrong value names the right ones.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.as_str() {
            "admin_api" => Ok(CommittedOffsetsFrom::AdminApi),
            "offsets_topic" => Ok(CommittedOffsetsFrom::OffsetsTopic),
            other => Err(serde::de::Error::custom(format!(
                "unknown committed_offsets source `{other}`: expected `admin_api` or `offsets_topic`"
            ))),
        }
    }
}

/// Every how many cycles a settled group (`Stable` or `Empty`) is described
/// again when the group listing gives no state for it. Groups that are new,
/// failed, or not settled (e.g. rebalancing or `Dead`) are described every
/// cycle. DescribeConsumerGroups is the costliest call of a cycle for the
/// brokers after the committed offsets, while a settled group's state and
/// member count change rarely, so settled groups are refreshed in rotation:
/// each cycle re-describes the share of them whose slot ([`refresh_slot`])
/// comes up, which keeps every cycle equally cheap. Offsets and lag are
/// read every cycle.
const DESCRIBE_EVERY: u64 = 3;

/// The rotation period of settled groups whose state the cluster's group
/// listing (one ListGroups request per broker, every cycle) reports: a
/// changed state is seen in the next cycle and makes the group described at
/// once, so only a member count that changed without a visible state change
/// can be up to `DESCRIBE_LISTED_EVERY - 1` cycles old.
const DESCRIBE_LISTED_EVERY: u64 = 6;

/// Every how many cycles a partition's log start offset is read again.
const LOG_START_EVERY: u64 = 3;

/// The cycle slot (`0..period`) in which a settled group is described
/// again: a fixed hash of its name, so the rotation is the same in every
/// process and does not depend on the order of the monitors.
fn refresh_slot(group: &str, period: u64) -> u64 {
    fnv1a(FNV_OFFSET, group.as_bytes()) % period
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`: stable across releases,
/// unlike the std hasher.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Log start offsets are kept between cycles. The log start of a partition
/// moves only when retention deletes a segment or records are deleted, so
/// each partition's is read again every [`LOG_START_EVERY`] cycles, a third
/// of the partitions per cycle (slot [`refresh_slot_of_partition`]);
/// partitions never read, or whose last read failed, are read every cycle.
/// A log start (and the "committed below log start" flag built on it) may
/// therefore lag by up to `LOG_START_EVERY - 1` cycles; the log-start lookup
/// of a cycle asks about a third of the partitions.
type LogStartCache = RotationCache<(String, i32), i64>;

/// Group descriptions kept between cycles (see [`DESCRIBE_EVERY`]).
type DescriptionCache = RotationCache<String, GroupDescription>;

/// The rotation slot of a partition's log start (see [`LogStartCache`]).
fn refresh_slot_of_partition((topic, partition): &(String, i32)) -> u64 {
    fnv1a(
        fnv1a(FNV_OFFSET, topic.as_bytes()),
        &partition.to_le_bytes(),
    ) % LOG_START_EVERY
}

/// Every group of a cluster with its state, and the brokers that failed.
type GroupListingResult = (Vec<GroupListing>, Vec<String>);

/// How long a read waits for the offsets-topic reader to catch up before
/// the admin API answers instead.
const OFFSETS_READER_WAIT: Duration = Duration::from_secs(1);

/// How long after a failed start the offsets-topic reader is tried again.
const OFFSETS_READER_RETRY: Duration = Duration::from_secs(60);

impl OffsetsReaderSlot {
    /// Logs a reader problem once until it changes; the admin API answers.
    fn note_error(&mut self, bootstrap: &str, error: String) {
        if self.last_error.as_deref() != Some(error.as_str()) {
            tracing::warn!(
                bootstrap,
                error = %error,
                "committed offsets from the admin API this cycle; __consumer_offsets unavailable"
            );
            self.last_error = Some(error);
        }
    }

    /// Notes, once, that the reader is still catching up (normal at start).
    fn note_catching_up(&mut self, bootstrap: &str, behind: i64) {
        const CATCHING_UP: &str = "catching up";
        if self.last_error.as_deref() != Some(CATCHING_UP) {
            tracing::info!(
                bootstrap,
                behind,
                "committed offsets from the admin API while the __consumer_offsets reader catches up"
            );
            self.last_error = Some(CATCHING_UP.to_string());
        }
    }
}

/// Whether a described state is stable enough to reuse for a few cycles.
fn is_settled(state: &str) -> bool {
    matches!(state, "Stable" | "Empty")
}

/// Reads offsets and group state from one cluster through one wire client,
/// whatever the number of groups.
pub struct KafkaOffsetSource {
    /// The group and offset requests.
    calls: WireCalls,
    /// Cluster-wide failures, logged on change.
    outage: OutageLog,
    timeout: Duration,
    cluster: ClusterConfig,
    /// Where committed offsets come from.
    committed_from: CommittedOffsetsFrom,
    /// Reads records for exact time lag; created on first use, never joins
    /// a group or commits.
    probe: TimestampProbe,
    /// Descriptions of settled groups, reused between full refreshes.
    descriptions: Mutex<DescriptionCache>,
    /// Log start offsets, refreshed in rotation.
    log_starts: Mutex<LogStartCache>,
    /// The `__consumer_offsets` reader, started on first use when the
    /// profile asks for it (see [`CommittedOffsetsFrom::OffsetsTopic`]).
    offsets_reader: Mutex<OffsetsReaderSlot>,
    /// The group listing of this cycle when pattern monitors already asked
    /// for it ([`OffsetSource::list_groups`]); taken by the describe step
    /// of the same cycle so the cluster is listed once per cycle.
    listing: Mutex<Option<GroupListingResult>>,
}

/// The offsets-topic reader of a source, or why there is none yet.
#[derive(Default)]
struct OffsetsReaderSlot {
    reader: Option<offsets_topic::OffsetsTopicReader>,
    /// The last start or read error, logged once until it changes.
    last_error: Option<String>,
    /// When starting the reader may be tried again.
    retry_at: Option<std::time::Instant>,
}

impl KafkaOffsetSource {
    /// Creates the cluster's client; does not contact the brokers yet.
    ///
    /// Fails when the profile cannot be served: an unsupported SASL
    /// mechanism (GSSAPI, OAUTHBEARER), an unknown `security.protocol`, an
    /// unreadable secret or TLS file, a wrong key password. The error names
    /// the property, never a secret value.
    pub fn new(
        cluster: &ClusterConfig,
        committed_from: CommittedOffsetsFrom,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        Ok(KafkaOffsetSource {
            calls: WireCalls::new(cluster, timeout)?,
            outage: OutageLog::default(),
            timeout,
            cluster: cluster.clone(),
            committed_from,
            probe: TimestampProbe::default(),
            descriptions: Mutex::default(),
            log_starts: Mutex::default(),
            offsets_reader: Mutex::default(),
            listing: Mutex::default(),
        })
    }
}

impl KafkaOffsetSource {
    /// Committed offsets from the `__consumer_offsets` reader (started on
    /// first use, restarted a minute after a failure); `None` when the
    /// reader cannot answer this cycle, so the admin API answers instead.
    fn committed_from_offsets_topic(&self, groups: &[String]) -> Option<CommittedByGroup> {
        let mut slot = self.offsets_reader.lock().ok()?;
        let now = std::time::Instant::now();
        if slot.reader.is_none() && slot.retry_at.is_none_or(|at| now >= at) {
            match offsets_topic::OffsetsTopicReader::start(
                &self.cluster.client_config(),
                self,
                self.timeout,
            ) {
                Ok(reader) => {
                    slot.reader = Some(reader);
                    slot.last_error = None;
                }
                Err(error) => {
                    slot.retry_at = Some(now + OFFSETS_READER_RETRY);
                    slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    return None;
                }
            }
        }
        let reader = slot.reader.as_ref()?;
        match reader.committed_offsets(self, groups, OFFSETS_READER_WAIT.min(self.timeout)) {
            Ok(answer) => {
                if slot.last_error.take().is_some() {
                    tracing::info!(
                        bootstrap = %self.cluster.bootstrap_servers,
                        "committed offsets are read from __consumer_offsets again"
                    );
                }
                drop(slot);
                let mut all: CommittedByGroup = answer
                    .offsets
                    .into_iter()
                    .map(|(group, list)| (group, Ok(list)))
                    .collect();
                if !answer.unsure.is_empty() {
                    tracing::debug!(
                        groups = answer.unsure.len(),
                        "groups behind an open transaction in __consumer_offsets: OffsetFetch"
                    );
                    all.extend(self.calls.committed_offsets(&answer.unsure));
                }
                Some(all)
            }
            Err(error) => {
                match error {
                    offsets_topic::OffsetsTopicError::Behind { behind, .. } => {
                        slot.note_catching_up(&self.cluster.bootstrap_servers, behind);
                    }
                    offsets_topic::OffsetsTopicError::Lookup(_) => {
                        slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    }
                    offsets_topic::OffsetsTopicError::Reader(_) => {
                        // A stopped reader is replaced after the retry delay.
                        slot.reader = None;
                        slot.retry_at = Some(now + OFFSETS_READER_RETRY);
                        slot.note_error(&self.cluster.bootstrap_servers, error.to_string());
                    }
                }
                None
            }
        }
    }

    /// Log start offsets of `partitions`: read for this call's rotation
    /// slot and for partitions not known yet, the rest from the last read
    /// (see [`LogStartCache`]).
    fn log_start_offsets(
        &self,
        partitions: &[(String, i32)],
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, SourceError> {
        let cycle = match self.log_starts.lock() {
            Ok(mut cache) => cache.begin(partitions, |cycle, key, _| {
                refresh_slot_of_partition(key) != cycle % LOG_START_EVERY
            }),
            Err(_) => rotation::CycleStart::asking_all(partitions),
        };
        let read = self
            .calls
            .list_offsets(&cycle.asked, OffsetSpec::Earliest, isolation)?;
        if let Ok(mut cache) = self.log_starts.lock() {
            cache.record(&read);
        }
        tracing::trace!(
            read = cycle.asked.len(),
            reused = cycle.reused.len(),
            cycle = cycle.number,
            "log start offsets"
        );
        let mut all: OffsetsByPartition = cycle
            .reused
            .into_iter()
            .map(|(key, start)| (key, Ok(start)))
            .collect();
        all.extend(read);
        Ok(all)
    }

    /// Describes `groups` now; fails as a whole only when every group
    /// failed, with the first group's reason.
    fn describe_now(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        let all = self.calls.describe_groups(groups);
        if all.values().all(Result::is_err) {
            let first = groups
                .iter()
                .find_map(|group| all.get(group).and_then(|a| a.as_ref().err()))
                .cloned()
                .unwrap_or_else(|| "no group was described".to_string());
            return Err(SourceError::Request(crate::source::RequestError::new(
                "DescribeGroups",
                first,
            )));
        }
        Ok(all)
    }
}

impl OffsetSource for KafkaOffsetSource {
    fn next_records(
        &self,
        positions: &[crate::source::RecordPosition],
    ) -> HashMap<(String, i32), crate::source::NextRecord> {
        self.probe
            .next_records(&self.cluster, positions, self.timeout)
    }

    fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
        let answer = self.calls.topic_partitions();
        match &answer {
            Ok(_) => self.outage.answered(&self.cluster.bootstrap_servers),
            Err(error) => self
                .outage
                .failed(&self.cluster.bootstrap_servers, &error.to_string()),
        }
        answer
    }

    fn list_groups(&self) -> Result<(Vec<String>, Vec<String>), SourceError> {
        let listing = self.calls.list_groups();
        let names = listing
            .as_ref()
            .map(|(listings, errors)| {
                let names = listings.iter().map(|l| l.group.clone()).collect();
                (names, errors.clone())
            })
            .map_err(|error| SourceError::Request(error.clone()));
        if let (Ok(listing), Ok(mut slot)) = (listing, self.listing.lock()) {
            *slot = Some(listing);
        }
        names
    }

    fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup {
        if self.committed_from == CommittedOffsetsFrom::OffsetsTopic {
            if let Some(read) = self.committed_from_offsets_topic(groups) {
                return read;
            }
        }
        self.calls.committed_offsets(groups)
    }

    fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
        // Taken in any case, so a listing never outlives its cycle.
        let this_cycle = self.listing.lock().ok().and_then(|mut slot| slot.take());
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        // The states the group listing reports, to see changes at once.
        // A group missing from a listing every broker answered is gone
        // (deleted): described at once, it shows as Dead.
        let listing = match this_cycle {
            Some(listing) => Ok(listing),
            None => self.calls.list_groups(),
        };
        let (listed, listing_complete): (HashMap<String, Option<String>>, bool) = match listing {
            Ok((listings, errors)) => (
                listings.into_iter().map(|l| (l.group, l.state)).collect(),
                errors.is_empty(),
            ),
            Err(error) => {
                tracing::debug!(error = %error, "group listing failed; descriptions by rotation only");
                (HashMap::new(), false)
            }
        };
        // Which groups to ask about; the lock is not held over the calls.
        let reuse = |cycle: u64, group: &String, cached: &GroupDescription| {
            is_settled(&cached.state)
                && match listed.get(group) {
                    Some(Some(state)) => {
                        *state == cached.state
                            && refresh_slot(group, DESCRIBE_LISTED_EVERY)
                                != cycle % DESCRIBE_LISTED_EVERY
                    }
                    None if listing_complete => false,
                    Some(None) | None => {
                        refresh_slot(group, DESCRIBE_EVERY) != cycle % DESCRIBE_EVERY
                    }
                }
        };
        let cycle = match self.descriptions.lock() {
            Ok(mut cache) => cache.begin(groups, reuse),
            Err(_) => rotation::CycleStart::asking_all(groups),
        };
        let mut all = self.describe_now(&cycle.asked)?;
        if let Ok(mut cache) = self.descriptions.lock() {
            cache.record(&all);
        }
        tracing::trace!(
            described = cycle.asked.len(),
            reused = cycle.reused.len(),
            listed = listed.len(),
            cycle = cycle.number,
            "group descriptions"
        );
        all.extend(cycle.reused.into_iter().map(|(g, d)| (g, Ok(d))));
        Ok(all)
    }

    fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, SourceError> {
        if spec == OffsetSpec::Earliest {
            return self.log_start_offsets(partitions, isolation);
        }
        self.calls
            .list_offsets(partitions, spec, isolation)
            .map_err(SourceError::Request)
    }
}

impl offsets_topic::EndOffsets for KafkaOffsetSource {
    /// Uncached lookups: the reader's positions must match the log.
    fn end_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, String> {
        self.calls
            .list_offsets(partitions, spec, isolation)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_groups_and_log_starts_are_refreshed_in_even_thirds() {
        let mut per_slot = [0usize; DESCRIBE_EVERY as usize];
        for g in 0..3_000 {
            let slot = refresh_slot(&format!("bench_2000g_group_{g}"), DESCRIBE_EVERY);
            per_slot[usize::try_from(slot).expect("small")] += 1;
        }
        assert!(
            per_slot.iter().all(|n| (900..=1_100).contains(n)),
            "{per_slot:?}"
        );
        // The slot is a property of the name alone.
        assert_eq!(
            refresh_slot("orders", DESCRIBE_LISTED_EVERY),
            refresh_slot("orders", DESCRIBE_LISTED_EVERY)
        );
        let mut per_slot = [0usize; LOG_START_EVERY as usize];
        for t in 0..300 {
            for p in 0..10 {
                let slot = refresh_slot_of_partition(&(format!("topic_{t}"), p));
                per_slot[usize::try_from(slot).expect("small")] += 1;
            }
        }
        assert!(
            per_slot.iter().all(|n| (900..=1_100).contains(n)),
            "partitions: {per_slot:?}"
        );
    }
}
