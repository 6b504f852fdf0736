//! The [`OffsetSource`] trait: everything the sampler asks of a cluster.
//!
//! Keeping librdkafka behind this trait lets the sampling logic be tested
//! with an in-memory fake, while the real implementation lives in
//! [`crate::kafka`]. Calls block; the poller runs them on a blocking thread.

use std::collections::HashMap;

pub use crate::kafka::admin_ffi::{
    AdminCallError, CommittedByGroup, CommittedOffset, GroupDescription, Isolation, OffsetSpec,
    OffsetsByPartition,
};

/// Failure of a cluster-wide call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("cannot create Kafka client: {0}")]
    Client(String),
    #[error("cannot fetch cluster metadata: {0}")]
    Metadata(String),
    #[error(transparent)]
    Admin(#[from] AdminCallError),
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

    /// Timestamp (ms) of the first record at or after each given offset,
    /// for exact time lag. Partitions without an answer are left out.
    fn record_timestamps(&self, positions: &[(String, i32, i64)]) -> HashMap<(String, i32), i64> {
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
