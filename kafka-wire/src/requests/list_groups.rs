//! ListGroups (api key 16) to every broker: each broker lists only the groups
//! it coordinates. v4+ answers each group's state, v5+ its type (`classic`,
//! `consumer`), which is remembered for DescribeGroups.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use kafka_protocol::messages::ListGroupsRequest;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::{is_coordinator_error, WireError};
use crate::requests::{backoff, canonical_state, MAX_ATTEMPTS};
use crate::types::GroupListing;

/// One broker's groups: `(group, state, type)`.
type Listed = Vec<(String, Option<String>, Option<String>)>;

/// All groups of the cluster, sorted by name, and one message per broker that failed.
/// Fails only when the broker list cannot be had or every broker failed.
pub(crate) async fn list_groups(
    cluster: &Cluster,
    deadline: Instant,
) -> Result<(Vec<GroupListing>, Vec<String>), WireError> {
    let metadata = cluster.refresh_metadata(deadline).await?;
    let answers = join_all(metadata.brokers.iter().map(|(node, addr)| async move {
        (*node, addr.clone(), list_on(cluster, addr, deadline).await)
    }))
    .await;
    let mut groups: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut errors = Vec::new();
    let mut first_error = None;
    let brokers = answers.len();
    for (node, addr, answer) in answers {
        match answer {
            Ok(listed) => {
                for (group, state, kind) in listed {
                    if let Some(kind) = kind {
                        types.insert(group.clone(), kind);
                    }
                    let entry = groups.entry(group).or_default();
                    if entry.is_none() {
                        *entry = state;
                    }
                }
            }
            Err(e) => {
                errors.push(format!("broker {node} ({addr}): {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    if errors.len() == brokers {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    if errors.is_empty() {
        cluster.set_group_types(types);
    }
    let listing = groups
        .into_iter()
        .map(|(group, state)| GroupListing { group, state })
        .collect();
    Ok((listing, errors))
}

async fn list_on(cluster: &Cluster, addr: &str, deadline: Instant) -> Result<Listed, WireError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = list_once(cluster, addr, deadline).await;
        let retriable = match &result {
            Ok(_) => false,
            Err(e) => e.is_transport() || e.kafka_code().is_some_and(is_coordinator_error),
        };
        if !retriable || attempt >= MAX_ATTEMPTS || !backoff(attempt, deadline).await {
            return result;
        }
    }
}

async fn list_once(cluster: &Cluster, addr: &str, deadline: Instant) -> Result<Listed, WireError> {
    let conn = cluster.connection(addr, deadline).await?;
    let version = conn.version::<ListGroupsRequest>(0, 5)?;
    let response = conn
        .send(&ListGroupsRequest::default(), version, deadline)
        .await?;
    if response.error_code != 0 {
        return Err(WireError::kafka(
            addr,
            "ListGroups",
            response.error_code,
            "",
        ));
    }
    Ok(response
        .groups
        .into_iter()
        .map(|g| {
            let state = (version >= 4).then(|| canonical_state(g.group_state.as_str()));
            let kind = (version >= 5 && !g.group_type.is_empty()).then(|| g.group_type.to_string());
            (g.group_id.0.to_string(), state, kind)
        })
        .collect())
}
