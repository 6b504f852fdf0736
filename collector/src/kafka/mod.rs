//! The [`OffsetSource`] of a real cluster: the group and offset requests go
//! through the native wire client ([`wire`]), on a small runtime owned by
//! the source ([`runtime`]); only the `__consumer_offsets` reader and the
//! record-timestamp probe use librdkafka consumers.
//!
//! Besides the requests, this module decides what to ask each cycle:
//! settled groups are described in rotation unless the group listing shows
//! a change, log start offsets are read a third per cycle (the slots are in
//! [`schedule`]), and a listing pattern monitors already asked for is
//! reused by the describe step. Where committed offsets come from is
//! [`committed_from`]; the `__consumer_offsets` reader's upkeep is
//! [`offsets_reader`].
//!
//! Errors keep the client's words (a failed TLS handshake, a refused login,
//! the broker that is down), so an error sample says why.

mod committed_from;
mod offsets_reader;
pub mod offsets_topic;
mod outage;
mod probe;
mod rotation;
mod runtime;
mod schedule;
mod wire;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lagwatch_kafka::ClusterConfig;

use crate::source::{
    CommittedByGroup, GroupDescription, GroupListing, Isolation, OffsetSource, OffsetSpec,
    OffsetsByPartition, SourceError,
};
pub use committed_from::CommittedOffsetsFrom;
use offsets_reader::OffsetsReaderSlot;
use outage::OutageLog;
use probe::TimestampProbe;
use schedule::{
    is_settled, refresh_slot, refresh_slot_of_partition, DescriptionCache, LogStartCache,
    DESCRIBE_EVERY, DESCRIBE_LISTED_EVERY, LOG_START_EVERY,
};
use wire::WireCalls;

/// Every group of a cluster with its state, and the brokers that failed.
type GroupListingResult = (Vec<GroupListing>, Vec<String>);

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
