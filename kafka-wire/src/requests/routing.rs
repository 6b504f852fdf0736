//! Sends group requests to the groups' coordinators: looks the coordinators
//! up, sends one batch per coordinator (concurrently), and re-routes the
//! groups whose coordinator moved, was loading or could not be reached,
//! within the call's deadline. Shared by DescribeGroups and OffsetFetch.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::WireError;
use crate::requests::find_coordinator::coordinators;
use crate::requests::{backoff, MAX_ATTEMPTS};

/// What a coordinator said about one group.
pub(crate) enum Outcome<T> {
    /// Final: the answer, or an error that a retry would not change.
    Done(Result<T, WireError>),
    /// The coordinator moved, is loading, or the connection failed: look it up again.
    Retry(WireError),
}

/// Runs `per_broker(connection, groups)` for the groups of each coordinator.
pub(crate) async fn by_coordinator<T, F, Fut>(
    cluster: &Cluster,
    groups: &[String],
    deadline: Instant,
    per_broker: F,
) -> HashMap<String, Result<T, WireError>>
where
    F: Fn(Arc<Connection>, Vec<String>) -> Fut,
    Fut: Future<Output = Vec<(String, Outcome<T>)>>,
{
    let mut out = HashMap::new();
    let mut todo: Vec<String> = Vec::new();
    for g in groups {
        if !todo.contains(g) {
            todo.push(g.clone());
        }
    }
    let mut attempt = 0;
    while !todo.is_empty() {
        attempt += 1;
        let mut by_addr: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, found) in coordinators(cluster, &todo, deadline).await {
            match found {
                Ok(addr) => by_addr.entry(addr).or_default().push(group),
                Err(e) => {
                    out.insert(group, Err(e));
                }
            }
        }
        let batches = by_addr.into_iter().map(|(addr, groups)| {
            let per_broker = &per_broker;
            async move {
                match cluster.connection(&addr, deadline).await {
                    Ok(conn) => per_broker(conn, groups).await,
                    Err(e) => groups
                        .into_iter()
                        .map(|g| (g, Outcome::Retry(e.clone())))
                        .collect(),
                }
            }
        });
        let mut retry = Vec::new();
        for (group, outcome) in join_all(batches).await.into_iter().flatten() {
            match outcome {
                Outcome::Done(result) => {
                    out.insert(group, result);
                }
                Outcome::Retry(e) => {
                    cluster.invalidate_coordinator(&group);
                    retry.push((group, e));
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        if attempt >= MAX_ATTEMPTS || !backoff(attempt, deadline).await {
            for (group, e) in retry {
                out.insert(group, Err(e));
            }
            break;
        }
        todo = retry.into_iter().map(|(g, _)| g).collect();
    }
    out
}
