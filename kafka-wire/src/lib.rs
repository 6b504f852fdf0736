//! A small native async Kafka protocol client for the read-only admin requests
//! of lagwatch's lag collector: topic partition counts, group listings and
//! descriptions, committed offsets and partition offsets.
//!
//! It exists because librdkafka's admin API aborts the whole process when a
//! broker restarts during a coordinator-targeted admin request (the assertion
//! `eonce->refcnt > 0` in `rd_kafka_enq_once_del_source_return`). Here a broker
//! restart is a handful of calls that return an error, and the same client
//! works again once the broker is back. librdkafka stays in use for producing
//! and consuming.
//!
//! Messages are encoded and decoded by the `kafka-protocol` crate; this crate
//! does the connections, version negotiation, routing and retries.
//!
//! # Layout
//! - `config`: `WireConfig` from a librdkafka-style profile.
//! - `tls`: the rustls client configuration (CA, mTLS, host name check).
//! - `sasl`: PLAIN and SCRAM-SHA-256/512 message builders.
//! - `connection`: one broker connection: TCP/TLS, ApiVersions, SASL,
//!   pipelined requests (writer and reader tasks, correlation ids, timeouts,
//!   broken-connection detection).
//! - `cluster`: connection per broker (lazy, reconnecting, reachability
//!   logged on change), metadata and broker map, coordinator cache.
//! - `requests`: one module per API (`metadata`, `find_coordinator`,
//!   `list_groups`, `describe_groups`, `offset_fetch`, `list_offsets`) and
//!   `routing` (per-coordinator batches with retries).
//! - `error`: `WireError`.
//! - `types`: the answer types.
//!
//! # Not supported
//! GSSAPI and OAUTHBEARER SASL, legacy OpenSSL-encrypted PEM keys
//! (`Proc-Type: 4,ENCRYPTED`; encrypted PKCS#8 keys are supported), SASLprep
//! of SCRAM passwords, brokers older than Kafka 1.0 (SaslHandshake v1,
//! OffsetFetch v2 and ListOffsets v1 are the oldest versions spoken).

pub mod config;
pub mod error;

mod cluster;
mod connection;
mod requests;
mod sasl;
mod tls;
mod types;

use std::collections::HashMap;
use std::sync::Arc;

pub use config::{SaslConfig, SaslMechanism, SecurityProtocol, WireConfig};
pub use error::{error_name, WireError};
pub use types::{CommittedOffset, GroupDescription, GroupListing, Isolation, OffsetSpec};

use cluster::Cluster;

/// The client. Cheap to clone (one shared cluster view); connects lazily.
///
/// Every call is bounded by the configured request timeout, retries included,
/// and never panics on a broker's answer.
#[derive(Clone)]
pub struct WireClient {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for WireClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireClient")
            .field("config", &self.cluster.config)
            .finish_non_exhaustive()
    }
}

impl WireClient {
    /// A client for `config`; nothing is connected until the first call.
    pub fn new(config: WireConfig) -> Self {
        WireClient {
            cluster: Arc::new(Cluster::new(config)),
        }
    }

    /// Partition count of every topic (internal topics included), from a fresh Metadata answer.
    /// Topics the broker reports with an error (e.g. being deleted) are left out.
    pub async fn topic_partitions(&self) -> Result<HashMap<String, i32>, WireError> {
        let deadline = self.cluster.deadline();
        let md = self.cluster.refresh_metadata(deadline).await?;
        Ok(md
            .topics
            .iter()
            .map(|(topic, partitions)| {
                (
                    topic.clone(),
                    i32::try_from(partitions.len()).unwrap_or(i32::MAX),
                )
            })
            .collect())
    }

    /// Every group of the cluster (ListGroups to every broker), sorted by
    /// group, with the state from brokers with ListGroups v4+. The second vec
    /// has one message per broker that failed; the call fails only when the
    /// broker list cannot be had or every broker failed.
    pub async fn list_groups(&self) -> Result<(Vec<GroupListing>, Vec<String>), WireError> {
        requests::list_groups::list_groups(&self.cluster, self.cluster.deadline()).await
    }

    /// Each group's state, member count and protocol (`Classic` or `Consumer`),
    /// asked of its coordinator. A group that does not exist is `Dead` with no members.
    pub async fn describe_groups(
        &self,
        groups: &[String],
    ) -> HashMap<String, Result<GroupDescription, WireError>> {
        requests::describe_groups::describe_groups(&self.cluster, groups, self.cluster.deadline())
            .await
    }

    /// Each group's committed offsets for all its partitions, sorted by topic and
    /// partition. A group without commits (or unknown) has an empty list.
    pub async fn committed_offsets(
        &self,
        groups: &[String],
    ) -> HashMap<String, Result<Vec<CommittedOffset>, WireError>> {
        requests::offset_fetch::committed_offsets(&self.cluster, groups, self.cluster.deadline())
            .await
    }

    /// The latest or earliest offset of each partition, asked of its leader.
    pub async fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> HashMap<(String, i32), Result<i64, String>> {
        requests::list_offsets::list_offsets(
            &self.cluster,
            partitions,
            spec,
            isolation,
            self.cluster.deadline(),
        )
        .await
    }
}
