//! The [`OffsetSource`] trait: everything the sampler asks of a cluster,
//! and the collector's own types for the answers.
//!
//! Keeping the Kafka client behind this trait lets the sampling logic be
//! tested with an in-memory fake, while the real implementation lives in
//! [`crate::kafka`]. The answer types belong to the collector, not to a
//! client library: the client's types are mapped into these, so changing
//! the client never reaches the sampler. Calls block; the poller runs them
//! on a blocking thread.

use std::collections::HashMap;

/// Which end of the log `ListOffsets` should report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Next offset to be written (high watermark or last stable offset).
    Latest,
    /// First offset still in the log.
    Earliest,
}

/// Isolation level of a `ListOffsets` request: the monitor's own type
/// (read_uncommitted: latest = high watermark; read_committed: latest =
/// last stable offset), mapped to the wire's at the Kafka edge.
pub use lagwatch_model::Isolation;

/// One committed offset of a group; `offset` is `None` when nothing was
/// committed on that partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
}

/// State of one group as described by its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub state: String,
    pub members: u32,
    /// `Classic` or `Consumer` (KIP-848) protocol.
    pub protocol: String,
}

/// One group of the cluster's group listing, with its state when the
/// brokers report it (ListGroups v4+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    pub state: Option<String>,
}

/// Failure of one request (for one group, or a whole lookup): which
/// request, and why, in the client's words (broker, Kafka error name,
/// TLS or login failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct RequestError {
    pub operation: &'static str,
    pub message: String,
}

impl RequestError {
    pub fn new(operation: &'static str, message: impl Into<String>) -> Self {
        RequestError {
            operation,
            message: message.into(),
        }
    }
}

/// A position whose next record is wanted (time lag): a consumer placed at
/// `offset` reads the first record at or after it. `end` is the end offset
/// the sample saw: reading up to it without meeting a record means there is
/// nothing to read (only transaction markers or aborted data remained).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub end: i64,
}

/// What a consumer placed at a [`RecordPosition`] reads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRecord {
    /// A record with this timestamp (ms).
    WrittenAt(i64),
    /// Nothing up to this end offset: the group has nothing to read.
    NothingUpTo(i64),
}

/// Committed offsets of each requested group, by group id.
pub type CommittedByGroup = HashMap<String, Result<Vec<CommittedOffset>, RequestError>>;

/// Offsets by (topic, partition), each possibly failed on its own.
pub type OffsetsByPartition = HashMap<(String, i32), Result<i64, String>>;

/// Failure of a cluster-wide call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("cannot create Kafka client: {0}")]
    Client(String),
    #[error("cannot fetch cluster metadata: {0}")]
    Metadata(String),
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// Offsets and group state of one Kafka cluster.
pub trait OffsetSource: Send + Sync + 'static {
    /// Partition count of every topic in the cluster.
    fn topic_partitions(&self) -> Result<HashMap<String, i32>, SourceError>;

    /// Every consumer group id of the cluster, plus per-broker errors.
    fn list_groups(&self) -> Result<(Vec<String>, Vec<String>), SourceError>;

    /// Committed offsets of each group, each group failing on its own.
    fn committed_offsets(&self, groups: &[String]) -> CommittedByGroup;

    /// State and membership of each group.
    fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<HashMap<String, Result<GroupDescription, String>>, SourceError>;

    /// What a consumer placed at each position reads first, for time lag;
    /// at most one position per (topic, partition). Partitions without an
    /// answer are left out.
    fn next_records(&self, positions: &[RecordPosition]) -> HashMap<(String, i32), NextRecord> {
        let _ = positions;
        HashMap::new()
    }

    /// The `spec` offset of each partition under `isolation`.
    fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetsByPartition, SourceError>;
}
