//! DescribeGroups (api key 15) and, for KIP-848 consumer-protocol groups,
//! ConsumerGroupDescribe (api key 69), per coordinator.
//!
//! A group is described with the classic API first, unless the last ListGroups
//! (v5+) said it is a `consumer` group. A classic answer of GROUP_ID_NOT_FOUND
//! or `Dead` may be a consumer-protocol group, which the classic API does not
//! show: when the broker offers ConsumerGroupDescribe those groups are asked
//! again with it. A group unknown to both is `Dead` with no members (what the
//! classic API has always answered), not an error.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DescribeGroupsRequest, GroupId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{codes, is_coordinator_error, WireError};
use crate::requests::canonical_state;
use crate::requests::routing::{by_coordinator, Outcome};
use crate::types::GroupDescription;

const CLASSIC: &str = "Classic";
const CONSUMER: &str = "Consumer";

pub(crate) async fn describe_groups(
    cluster: &Cluster,
    groups: &[String],
    deadline: Instant,
) -> HashMap<String, Result<GroupDescription, WireError>> {
    by_coordinator(cluster, groups, deadline, |conn, groups| {
        describe_on(cluster, conn, groups, deadline)
    })
    .await
}

fn dead(group: &str) -> GroupDescription {
    GroupDescription {
        group: group.to_string(),
        state: "Dead".to_string(),
        members: 0,
        protocol: CLASSIC.to_string(),
    }
}

fn group_ids(groups: &[String]) -> Vec<GroupId> {
    groups
        .iter()
        .map(|g| GroupId(StrBytes::from_string(g.clone())))
        .collect()
}

fn detail(group: &str, message: Option<&StrBytes>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!("group {group:?}: {}", m.as_str()),
        _ => format!("group {group:?}"),
    }
}

async fn describe_on(
    cluster: &Cluster,
    conn: Arc<Connection>,
    groups: Vec<String>,
    deadline: Instant,
) -> Vec<(String, Outcome<GroupDescription>)> {
    let consumer_api = conn.supports(ApiKey::ConsumerGroupDescribe);
    let (known_consumer, classic): (Vec<String>, Vec<String>) = groups.into_iter().partition(|g| {
        consumer_api
            && cluster
                .group_type(g)
                .is_some_and(|t| t.eq_ignore_ascii_case("consumer"))
    });
    let mut out = Vec::new();
    // Classic answers that may hide a consumer-protocol group, kept as the fallback answer.
    let mut maybe_consumer: Vec<(String, Outcome<GroupDescription>)> = Vec::new();
    if !classic.is_empty() {
        for (group, outcome, not_found) in classic_describe(&conn, &classic, deadline).await {
            if not_found && consumer_api {
                maybe_consumer.push((group, outcome));
            } else {
                out.push((group, outcome));
            }
        }
    }
    let mut ask: Vec<String> = known_consumer;
    ask.extend(maybe_consumer.iter().map(|(g, _)| g.clone()));
    if !ask.is_empty() {
        let mut answers: HashMap<String, Outcome<GroupDescription>> =
            consumer_describe(&conn, &ask, deadline)
                .await
                .into_iter()
                .collect();
        for (group, fallback) in maybe_consumer {
            match answers.remove(&group) {
                Some(Outcome::Done(Ok(d))) => out.push((group, Outcome::Done(Ok(d)))),
                Some(Outcome::Retry(e)) => out.push((group, Outcome::Retry(e))),
                // Not a consumer-protocol group either: the classic answer stands.
                _ => out.push((group, fallback)),
            }
        }
        // Groups ListGroups called `consumer`: their answer, or the classic API's if it failed.
        let mut again = Vec::new();
        for (group, outcome) in answers {
            match outcome {
                Outcome::Done(Err(ref e)) if e.kafka_code() == Some(codes::GROUP_ID_NOT_FOUND) => {
                    again.push(group)
                }
                other => out.push((group, other)),
            }
        }
        if !again.is_empty() {
            out.extend(
                classic_describe(&conn, &again, deadline)
                    .await
                    .into_iter()
                    .map(|(g, o, _)| (g, o)),
            );
        }
    }
    out
}

/// DescribeGroups v0..=6; the flag marks answers that may be a consumer-protocol group.
async fn classic_describe(
    conn: &Connection,
    groups: &[String],
    deadline: Instant,
) -> Vec<(String, Outcome<GroupDescription>, bool)> {
    let version = match conn.version::<DescribeGroupsRequest>(0, 6) {
        Ok(v) => v,
        Err(e) => {
            return groups
                .iter()
                .map(|g| (g.clone(), Outcome::Done(Err(e.clone())), false))
                .collect()
        }
    };
    let request = DescribeGroupsRequest::default().with_groups(group_ids(groups));
    let response = match conn.send(&request, version, deadline).await {
        Ok(r) => r,
        Err(e) => {
            let retry = e.is_transport();
            return groups
                .iter()
                .map(|g| {
                    let o = if retry {
                        Outcome::Retry(e.clone())
                    } else {
                        Outcome::Done(Err(e.clone()))
                    };
                    (g.clone(), o, false)
                })
                .collect();
        }
    };
    let mut answered: HashMap<String, (Outcome<GroupDescription>, bool)> = HashMap::new();
    for d in response.groups {
        let group = d.group_id.0.to_string();
        let (outcome, not_found) = match d.error_code {
            codes::NONE => {
                let state = canonical_state(d.group_state.as_str());
                let dead = state == "Dead";
                (
                    Outcome::Done(Ok(GroupDescription {
                        group: group.clone(),
                        state,
                        members: u32::try_from(d.members.len()).unwrap_or(u32::MAX),
                        protocol: CLASSIC.to_string(),
                    })),
                    dead,
                )
            }
            codes::GROUP_ID_NOT_FOUND => (Outcome::Done(Ok(dead(&group))), true),
            code => {
                let e = WireError::kafka(
                    conn.addr(),
                    "DescribeGroups",
                    code,
                    detail(&group, d.error_message.as_ref()),
                );
                if is_coordinator_error(code) {
                    (Outcome::Retry(e), false)
                } else {
                    (Outcome::Done(Err(e)), false)
                }
            }
        };
        answered.insert(group, (outcome, not_found));
    }
    groups
        .iter()
        .map(|g| match answered.remove(g) {
            Some((o, nf)) => (g.clone(), o, nf),
            None => (
                g.clone(),
                Outcome::Done(Err(WireError::Protocol {
                    broker: conn.addr().to_string(),
                    api: "DescribeGroups".to_string(),
                    message: format!("no answer for group {g:?}"),
                })),
                false,
            ),
        })
        .collect()
}

/// ConsumerGroupDescribe v0..=1.
async fn consumer_describe(
    conn: &Connection,
    groups: &[String],
    deadline: Instant,
) -> Vec<(String, Outcome<GroupDescription>)> {
    let failed = |e: WireError| -> Vec<(String, Outcome<GroupDescription>)> {
        let retry = e.is_transport();
        groups
            .iter()
            .map(|g| {
                (
                    g.clone(),
                    if retry {
                        Outcome::Retry(e.clone())
                    } else {
                        Outcome::Done(Err(e.clone()))
                    },
                )
            })
            .collect()
    };
    let version = match conn.version::<ConsumerGroupDescribeRequest>(0, 1) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(group_ids(groups));
    let response = match conn.send(&request, version, deadline).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    response
        .groups
        .into_iter()
        .map(|d| {
            let group = d.group_id.0.to_string();
            let outcome = match d.error_code {
                codes::NONE => Outcome::Done(Ok(GroupDescription {
                    group: group.clone(),
                    state: canonical_state(d.group_state.as_str()),
                    members: u32::try_from(d.members.len()).unwrap_or(u32::MAX),
                    protocol: CONSUMER.to_string(),
                })),
                code => {
                    let e = WireError::kafka(
                        conn.addr(),
                        "ConsumerGroupDescribe",
                        code,
                        detail(&group, d.error_message.as_ref()),
                    );
                    if is_coordinator_error(code) {
                        Outcome::Retry(e)
                    } else {
                        Outcome::Done(Err(e))
                    }
                }
            };
            (group, outcome)
        })
        .collect()
}
