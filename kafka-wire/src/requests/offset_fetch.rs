//! OffsetFetch (api key 9): all committed offsets of groups, per coordinator.
//!
//! v8+ (KIP-709) asks for all of a coordinator's groups in one request; older
//! brokers get one request per group (v2+, where a null topic list means all
//! partitions), sent concurrently. `require_stable` is false: a pending
//! transactional commit does not block the answer.
//!
//! Errors: a group-level error (GROUP_AUTHORIZATION_FAILED...) is that group's
//! `Err`; the coordinator errors are retried on the new coordinator. A
//! partition-level error (rare with `require_stable = false`, e.g.
//! UNKNOWN_TOPIC_OR_PARTITION from old brokers for a deleted topic) leaves the
//! partition out of the group's list (logged at debug level, once per group
//! and call): the list holds only offsets the broker vouched for. A group that
//! does not exist has an empty list, as Kafka answers.

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseTopics;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{error_name, is_coordinator_error, WireError};
use crate::requests::routing::{by_coordinator, Outcome};
use crate::types::CommittedOffset;

/// Groups per batched (v8+) request.
const BATCH: usize = 200;

pub(crate) async fn committed_offsets(
    cluster: &Cluster,
    groups: &[String],
    deadline: Instant,
) -> std::collections::HashMap<String, Result<Vec<CommittedOffset>, WireError>> {
    by_coordinator(cluster, groups, deadline, |conn, groups| {
        fetch_on(conn, groups, deadline)
    })
    .await
}

type Answer = (String, Outcome<Vec<CommittedOffset>>);

async fn fetch_on(conn: Arc<Connection>, groups: Vec<String>, deadline: Instant) -> Vec<Answer> {
    let version = match conn.version::<OffsetFetchRequest>(2, 9) {
        Ok(v) => v,
        Err(e) => {
            return groups
                .into_iter()
                .map(|g| (g, Outcome::Done(Err(e.clone()))))
                .collect()
        }
    };
    if version >= 8 {
        let batches = groups
            .chunks(BATCH)
            .map(|chunk| batched(&conn, chunk, version, deadline));
        join_all(batches).await.into_iter().flatten().collect()
    } else {
        let singles = groups.iter().map(|g| single(&conn, g, version, deadline));
        join_all(singles).await
    }
}

fn transport_failure(groups: &[String], e: &WireError) -> Vec<Answer> {
    groups
        .iter()
        .map(|g| {
            let o = if e.is_transport() {
                Outcome::Retry(e.clone())
            } else {
                Outcome::Done(Err(e.clone()))
            };
            (g.clone(), o)
        })
        .collect()
}

fn group_error(conn: &Connection, group: &str, code: i16) -> Outcome<Vec<CommittedOffset>> {
    let e = WireError::kafka(conn.addr(), "OffsetFetch", code, format!("group {group:?}"));
    if is_coordinator_error(code) {
        Outcome::Retry(e)
    } else {
        Outcome::Done(Err(e))
    }
}

/// Collects `(topic, partition, offset, error)` rows into the group's list.
fn collect(
    group: &str,
    rows: impl Iterator<Item = (String, i32, i64, i16)>,
) -> Vec<CommittedOffset> {
    let mut out = Vec::new();
    let mut skipped = 0usize;
    let mut first_error = 0i16;
    for (topic, partition, offset, error) in rows {
        if error != 0 {
            skipped += 1;
            if first_error == 0 {
                first_error = error;
            }
            continue;
        }
        out.push(CommittedOffset {
            topic,
            partition,
            offset: (offset >= 0).then_some(offset),
        });
    }
    if skipped > 0 {
        tracing::debug!(group = %group, partitions = skipped, error = %error_name(first_error), "offset fetch partition errors, partitions left out");
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

async fn batched(
    conn: &Connection,
    groups: &[String],
    version: i16,
    deadline: Instant,
) -> Vec<Answer> {
    let request = OffsetFetchRequest::default().with_groups(
        groups
            .iter()
            .map(|g| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(g.clone())))
                    .with_topics(None)
            })
            .collect(),
    );
    let response = match conn.send(&request, version, deadline).await {
        Ok(r) => r,
        Err(e) => return transport_failure(groups, &e),
    };
    let mut answered: std::collections::HashMap<String, Outcome<Vec<CommittedOffset>>> = response
        .groups
        .into_iter()
        .map(|g| {
            let group = g.group_id.0.to_string();
            let outcome = if g.error_code != 0 {
                group_error(conn, &group, g.error_code)
            } else {
                Outcome::Done(Ok(collect(&group, rows_v8(g.topics))))
            };
            (group, outcome)
        })
        .collect();
    groups
        .iter()
        .map(|g| {
            let outcome = answered.remove(g).unwrap_or_else(|| {
                Outcome::Done(Err(WireError::Protocol {
                    broker: conn.addr().to_string(),
                    api: "OffsetFetch".to_string(),
                    message: format!("no answer for group {g:?}"),
                }))
            });
            (g.clone(), outcome)
        })
        .collect()
}

fn rows_v8(
    topics: Vec<OffsetFetchResponseTopics>,
) -> impl Iterator<Item = (String, i32, i64, i16)> {
    topics.into_iter().flat_map(|t| {
        let topic = t.name.0.to_string();
        t.partitions.into_iter().map(move |p| {
            (
                topic.clone(),
                p.partition_index,
                p.committed_offset,
                p.error_code,
            )
        })
    })
}

async fn single(conn: &Connection, group: &str, version: i16, deadline: Instant) -> Answer {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(None);
    let response = match conn.send(&request, version, deadline).await {
        Ok(r) => r,
        Err(e) => {
            let o = if e.is_transport() {
                Outcome::Retry(e)
            } else {
                Outcome::Done(Err(e))
            };
            return (group.to_string(), o);
        }
    };
    if response.error_code != 0 {
        return (
            group.to_string(),
            group_error(conn, group, response.error_code),
        );
    }
    let rows = response.topics.into_iter().flat_map(|t| {
        let topic = t.name.0.to_string();
        t.partitions.into_iter().map(move |p| {
            (
                topic.clone(),
                p.partition_index,
                p.committed_offset,
                p.error_code,
            )
        })
    });
    (group.to_string(), Outcome::Done(Ok(collect(group, rows))))
}
