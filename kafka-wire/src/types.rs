//! The answers of [`crate::WireClient`], independent of the protocol crate's
//! message types so callers never depend on Kafka protocol versions.

/// One group of a ListGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group: String,
    /// As Kafka's Java admin prints it (`Stable`, `Empty`, `PreparingRebalance`,
    /// `CompletingRebalance`, `Dead`, `Assigning`, `Reconciling`); `None` from
    /// brokers older than ListGroups v4 (Kafka 2.6).
    pub state: Option<String>,
}

/// A group's state from DescribeGroups (classic protocol) or
/// ConsumerGroupDescribe (KIP-848 consumer protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub state: String,
    pub members: u32,
    /// `Classic` or `Consumer`: the rebalance protocol of the group.
    pub protocol: String,
}

/// A group's committed offset for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// `None` when the group has no committed offset for the partition (-1).
    pub offset: Option<i64>,
}

/// Which end of a partition ListOffsets answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The high watermark (or the last stable offset with `ReadCommitted`).
    Latest,
    /// The log start offset.
    Earliest,
}

/// The isolation level of ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}
