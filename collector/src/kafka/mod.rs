//! The rdkafka-backed [`OffsetSource`]: a small fixed pool of admin handles
//! per cluster.
//!
//! Client-level errors (a failed TLS handshake, a refused login) are logged
//! with the bootstrap list and attached to the error of the request that
//! then times out, so an error sample says why.

pub mod admin_ffi;
pub mod offsets_topic;
mod rotation;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};

use lagwatch_kafka::ClusterConfig;

use crate::source::{OffsetSource, SourceError};
use admin_ffi::{CommittedByGroup, GroupDescription, Isolation, OffsetSpec, OffsetsByPartition};
use rotation::RotationCache;

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

/// Group id of the admin handle. It never joins or commits; it only exists
/// so that librdkafka has a consumer-group object to notify. librdkafka
/// 2.12 dereferences that object when an OffsetFetch answer says the
/// coordinator moved (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) and
/// crashes a client that has none — found by tests/tests/recovery.rs.
const ADMIN_HANDLE_GROUP: &str = "lagwatch-admin-handle";

/// Admin handles per cluster. librdkafka serves all admin requests of a
/// client on that client's one main thread, so at thousands of groups the
/// committed-offset requests are CPU-bound there; a small fixed pool spreads
/// them over threads. The count does not depend on the number of groups.
const ADMIN_HANDLES: usize = 3;

/// Most events drained from one handle's queue per call, so a flood of
/// connection errors cannot hold up a cycle.
const MAX_EVENTS_PER_DRAIN: usize = 1_000;

/// Client-level errors of one cluster's handles, shared by the pool.
#[derive(Debug, Default)]
struct ClientErrors {
    /// The latest error that says why brokers cannot be used (TLS
    /// handshake, authentication, connection refused); cleared when a
    /// request succeeds.
    last_cause: Mutex<Option<String>>,
}

impl ClientErrors {
    fn last_cause(&self) -> Option<String> {
        self.last_cause.lock().ok().and_then(|cause| cause.clone())
    }

    fn clear(&self) {
        if let Ok(mut cause) = self.last_cause.lock() {
            *cause = None;
        }
    }
}

/// Context of the admin handles: logs librdkafka's client-level errors with
/// the cluster's bootstrap list (once per distinct message) and remembers
/// the latest cause, so a request that then times out can say why.
pub struct SourceContext {
    bootstrap: String,
    errors: Arc<ClientErrors>,
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // "N/N brokers are down" follows the real cause; keep the cause.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            tracing::debug!(bootstrap = %self.bootstrap, reason, "all brokers down");
            return;
        }
        let Ok(mut cause) = self.errors.last_cause.lock() else {
            return;
        };
        if cause.as_deref() != Some(reason) {
            tracing::warn!(
                bootstrap = %self.bootstrap,
                error = %error,
                reason,
                "kafka client error"
            );
            *cause = Some(reason.to_string());
        }
    }
}

impl ConsumerContext for SourceContext {}

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
type GroupListingResult = (Vec<admin_ffi::GroupListing>, Vec<String>);

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

/// Reads offsets and group state from one cluster through a small fixed
/// pool of admin handles, whatever the number of groups.
pub struct KafkaOffsetSource {
    /// Consumer-type handles used only for admin calls and metadata;
    /// `handles[0]` also serves metadata and group descriptions.
    handles: Vec<BaseConsumer<SourceContext>>,
    /// Client-level errors reported by the handles.
    errors: Arc<ClientErrors>,
    timeout: Duration,
    cluster: ClusterConfig,
    /// Where committed offsets come from.
    committed_from: CommittedOffsetsFrom,
    /// Reads records for exact time lag; created on first use, never joins
    /// a group or commits.
    probe: std::sync::Mutex<Option<BaseConsumer>>,
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
    /// Fails when librdkafka rejects the profile, e.g. an unreadable TLS
    /// key or a wrong key password; the error names the setting, never a
    /// secret value.
    pub fn new(
        cluster: &ClusterConfig,
        committed_from: CommittedOffsetsFrom,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let errors = Arc::new(ClientErrors::default());
        let handles = (0..ADMIN_HANDLES)
            .map(|_| {
                cluster
                    .client_config()
                    .set("group.id", ADMIN_HANDLE_GROUP)
                    .set("enable.auto.commit", "false")
                    .create_with_context::<_, BaseConsumer<SourceContext>>(SourceContext {
                        bootstrap: cluster.bootstrap_servers.clone(),
                        errors: Arc::clone(&errors),
                    })
                    .map_err(|error| SourceError::Client(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KafkaOffsetSource {
            handles,
            errors,
            timeout,
            cluster: cluster.clone(),
            committed_from,
            probe: std::sync::Mutex::new(None),
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
        match reader.committed_offsets(
            self.admin().client(),
            groups,
            OFFSETS_READER_WAIT.min(self.timeout),
        ) {
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
                        "groups behind an open transaction in __consumer_offsets: admin API"
                    );
                    all.extend(self.committed_by_admin(&answer.unsure));
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

    /// Committed offsets through the admin API (one OffsetFetch per group);
    /// each handle's main thread works through its share concurrently.
    fn committed_by_admin(&self, groups: &[String]) -> CommittedByGroup {
        let mut all = CommittedByGroup::with_capacity(groups.len());
        for part in self.spread(groups, |handle, chunk| {
            admin_ffi::list_consumer_group_offsets(handle.client(), chunk, self.timeout)
        }) {
            all.extend(part);
        }
        all
    }

    /// The handle for metadata and listings.
    fn admin(&self) -> &BaseConsumer<SourceContext> {
        &self.handles[0]
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
        let read = admin_ffi::list_offsets(
            self.handles[2 % self.handles.len()].client(),
            &cycle.asked,
            OffsetSpec::Earliest,
            isolation,
            self.timeout,
        )
        .map_err(SourceError::Admin)?;
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

    /// Serves every handle's event queue (errors, logs): nothing piles up,
    /// and reported errors reach [`SourceContext`]. The handles have no
    /// assignment, so no records arrive.
    fn drain_events(&self) {
        for handle in &self.handles {
            let queued = admin_ffi::queued_events(handle.client()).min(MAX_EVENTS_PER_DRAIN);
            for _ in 0..queued {
                let _ = handle.poll(Duration::ZERO);
            }
        }
    }

    /// Describes `groups` now, spread over the handles.
    fn describe_now(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError> {
        if groups.is_empty() {
            return Ok(HashMap::new());
        }
        let parts = self.spread(groups, |handle, chunk| {
            admin_ffi::describe_consumer_groups(handle.client(), chunk, self.timeout)
        });
        let mut all = HashMap::with_capacity(groups.len());
        let mut first_error = None;
        for part in parts {
            match part {
                Ok(part) => all.extend(part),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if all.is_empty() => Err(SourceError::Admin(error)),
            Some(error) => {
                for group in groups {
                    all.entry(group.clone())
                        .or_insert_with(|| Err(error.to_string()));
                }
                Ok(all)
            }
            None => Ok(all),
        }
    }

    /// The latest client-level error (e.g. a failed TLS handshake), for
    /// the message of a request that failed.
    pub fn last_client_error(&self) -> Option<String> {
        self.drain_events();
        self.errors.last_cause()
    }

    /// Splits `groups` over the handles and runs `call` for each share on
    /// its own thread (librdkafka serves each handle on its own thread).
    fn spread<T: Send>(
        &self,
        groups: &[String],
        call: impl Fn(&BaseConsumer<SourceContext>, &[String]) -> T + Sync,
    ) -> Vec<T> {
        let share = groups.len().div_ceil(self.handles.len()).max(1);
        let call = &call;
        std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .handles
                .iter()
                .zip(groups.chunks(share))
                .map(|(handle, chunk)| scope.spawn(move || call(handle, chunk)))
                .collect();
            workers
                .into_iter()
                .filter_map(|worker| worker.join().ok())
                .collect()
        })
    }
}

impl OffsetSource for KafkaOffsetSource {
    fn record_timestamps(&self, positions: &[(String, i32, i64)]) -> HashMap<(String, i32), i64> {
        let mut found = HashMap::new();
        if positions.is_empty() {
            return found;
        }
        let Ok(mut probe) = self.probe.lock() else {
            return found;
        };
        if probe.is_none() {
            match self
                .cluster
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
        let deadline = std::time::Instant::now() + self.timeout;
        while found.len() < positions.len() && std::time::Instant::now() < deadline {
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

    fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError> {
        self.drain_events();
        let metadata = match self.admin().fetch_metadata(None, self.timeout) {
            Ok(metadata) => {
                self.errors.clear();
                metadata
            }
            Err(error) => {
                return Err(SourceError::Metadata(match self.last_client_error() {
                    Some(cause) => format!("{error}; last client error: {cause}"),
                    None => error.to_string(),
                }))
            }
        };
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| {
                let count = i32::try_from(topic.partitions().len()).unwrap_or(i32::MAX);
                (topic.name().to_string(), count)
            })
            .collect())
    }

    fn list_groups(&self) -> Result<(Vec<String>, Vec<String>), SourceError> {
        let listing = admin_ffi::list_consumer_groups(self.admin().client(), self.timeout);
        let names = listing
            .as_ref()
            .map(|(listings, errors)| {
                let names = listings.iter().map(|l| l.group.clone()).collect();
                (names, errors.clone())
            })
            .map_err(|error| SourceError::Admin(error.clone()));
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
        self.committed_by_admin(groups)
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
            None => admin_ffi::list_consumer_groups(self.admin().client(), self.timeout),
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
        // Each kind of offset has its own handle, so the three lookups of a
        // cycle run on different librdkafka threads.
        let index = match (spec, isolation) {
            (OffsetSpec::Latest, Isolation::ReadUncommitted) => 0,
            (OffsetSpec::Latest, Isolation::ReadCommitted) => 1,
            (OffsetSpec::Earliest, _) => 2,
        } % self.handles.len();
        admin_ffi::list_offsets(
            self.handles[index].client(),
            partitions,
            spec,
            isolation,
            self.timeout,
        )
        .map_err(SourceError::Admin)
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
