//! FindCoordinator (api key 10) for groups, with the per-group cache of
//! [`crate::cluster::Cluster`]. Brokers with v4+ answer many groups in one
//! request (KIP-699); older ones get one request per group, sent concurrently.
//! Retriable answers (COORDINATOR_NOT_AVAILABLE, e.g. while `__consumer_offsets`
//! is created or loaded) and lost connections are retried within the deadline.

use std::collections::HashMap;

use futures::future::join_all;
use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::cluster::{address, Cluster};
use crate::connection::Connection;
use crate::error::{is_coordinator_error, WireError};
use crate::requests::{backoff, MAX_ATTEMPTS};

/// Groups per batched FindCoordinator request.
const BATCH: usize = 200;

/// What one lookup said about one group.
enum Lookup {
    Found(String),
    Retry(WireError),
    Failed(WireError),
}

/// The coordinator address of each group (cached ones without a request).
pub(crate) async fn coordinators(
    cluster: &Cluster,
    groups: &[String],
    deadline: Instant,
) -> HashMap<String, Result<String, WireError>> {
    let mut out = HashMap::new();
    let mut todo: Vec<String> = Vec::new();
    for g in groups {
        match cluster.cached_coordinator(g) {
            Some(addr) => {
                out.insert(g.clone(), Ok(addr));
            }
            None if !todo.contains(g) => todo.push(g.clone()),
            None => {}
        }
    }
    let mut attempt = 0;
    while !todo.is_empty() {
        attempt += 1;
        let mut retry: Vec<(String, WireError)> = Vec::new();
        match cluster.any_connection(deadline).await {
            Err(e) => retry.extend(todo.iter().map(|g| (g.clone(), e.clone()))),
            Ok(conn) => {
                for (group, lookup) in lookup(&conn, &todo, deadline).await {
                    match lookup {
                        Lookup::Found(addr) => {
                            cluster.set_coordinator(&group, addr.clone());
                            out.insert(group, Ok(addr));
                        }
                        Lookup::Failed(e) => {
                            out.insert(group, Err(e));
                        }
                        Lookup::Retry(e) => retry.push((group, e)),
                    }
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

fn classify(
    conn: &Connection,
    group: &str,
    code: i16,
    message: Option<&StrBytes>,
    host: &str,
    port: i32,
) -> Lookup {
    if code == 0 {
        return Lookup::Found(address(host, port));
    }
    let detail = match message {
        Some(m) if !m.is_empty() => format!("group {group:?}: {}", m.as_str()),
        _ => format!("group {group:?}"),
    };
    let e = WireError::kafka(conn.addr(), "FindCoordinator", code, detail);
    if is_coordinator_error(code) {
        Lookup::Retry(e)
    } else {
        Lookup::Failed(e)
    }
}

async fn lookup(conn: &Connection, groups: &[String], deadline: Instant) -> Vec<(String, Lookup)> {
    let version = match conn.version::<FindCoordinatorRequest>(0, 6) {
        Ok(v) => v,
        Err(e) => {
            return groups
                .iter()
                .map(|g| (g.clone(), Lookup::Failed(e.clone())))
                .collect()
        }
    };
    let transport = |groups: &[String], e: WireError| -> Vec<(String, Lookup)> {
        let retriable = e.is_transport();
        groups
            .iter()
            .map(|g| {
                (
                    g.clone(),
                    if retriable {
                        Lookup::Retry(e.clone())
                    } else {
                        Lookup::Failed(e.clone())
                    },
                )
            })
            .collect()
    };
    if version >= 4 {
        let requests = groups.chunks(BATCH).map(|chunk| async move {
            let request = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(
                    chunk
                        .iter()
                        .map(|g| StrBytes::from_string(g.clone()))
                        .collect(),
                );
            match conn.send(&request, version, deadline).await {
                Err(e) => transport(chunk, e),
                Ok(response) => {
                    let mut answered: HashMap<String, Lookup> = response
                        .coordinators
                        .iter()
                        .map(|c| {
                            let group = c.key.as_str();
                            (
                                group.to_string(),
                                classify(
                                    conn,
                                    group,
                                    c.error_code,
                                    c.error_message.as_ref(),
                                    c.host.as_str(),
                                    c.port,
                                ),
                            )
                        })
                        .collect();
                    chunk
                        .iter()
                        .map(|g| {
                            let lookup = answered.remove(g).unwrap_or_else(|| {
                                Lookup::Retry(WireError::Protocol {
                                    broker: conn.addr().to_string(),
                                    api: "FindCoordinator".to_string(),
                                    message: format!("no answer for group {g:?}"),
                                })
                            });
                            (g.clone(), lookup)
                        })
                        .collect()
                }
            }
        });
        join_all(requests).await.into_iter().flatten().collect()
    } else {
        let requests = groups.iter().map(|g| async move {
            let request =
                FindCoordinatorRequest::default().with_key(StrBytes::from_string(g.clone()));
            match conn.send(&request, version, deadline).await {
                Err(e) => transport(std::slice::from_ref(g), e),
                Ok(r) => vec![(
                    g.clone(),
                    classify(
                        conn,
                        g,
                        r.error_code,
                        r.error_message.as_ref(),
                        r.host.as_str(),
                        r.port,
                    ),
                )],
            }
        });
        join_all(requests).await.into_iter().flatten().collect()
    }
}
