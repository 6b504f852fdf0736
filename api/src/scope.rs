//! Team ownership and quotas on what a team token registers.
//!
//! A team token may only create or change monitors inside its team's scope
//! (`[teams.<name>]`: clusters, group and topic patterns); anything else is
//! 403 naming the field, so a team cannot watch (and read the lag and
//! offsets of) another team's consumer groups. Quotas stop one team from
//! filling the store or making every collector cycle expensive. The admin
//! token is the operator's and is not limited by either.
//!
//! Counting then inserting is not one transaction: two requests racing at
//! the limit may both pass, so a quota can be exceeded by the number of
//! concurrent requests of that team (themselves rate limited).

use lagwatch_model::{GroupMatch, Monitor, NewMonitor, TimeLagMode};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ApiState;

/// Checks that a team caller may store `monitor` (replacing monitor
/// `replacing` on update): ownership first, then quotas.
pub async fn check_monitor(
    caller: &Caller,
    state: &ApiState,
    monitor: &NewMonitor,
    replacing: Option<i64>,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    check_ownership(state, monitor)?;
    check_monitor_quotas(state, monitor, replacing).await
}

fn check_ownership(state: &ApiState, monitor: &NewMonitor) -> Result<(), ApiError> {
    let tenancy = state.tenancy();
    let team = &monitor.team;
    if !tenancy.may_use_cluster(team, &monitor.cluster) {
        return Err(ApiError::forbidden_field(
            "cluster",
            format!(
                "team {team} may not monitor cluster {} (see teams.{team}.clusters)",
                monitor.cluster
            ),
        ));
    }
    let group_owned = match monitor.group_match {
        GroupMatch::Exact => tenancy.owns_group(team, &monitor.cluster, &monitor.consumer_group),
        // A pattern only ever matches owned groups (the collector and the
        // status reader filter), but a team with no scope owns none.
        GroupMatch::Regex => tenancy.may_use_cluster(team, &monitor.cluster),
    };
    if !group_owned {
        return Err(ApiError::forbidden_field(
            "consumer_group",
            format!("team {team} does not own this consumer group (see teams.{team}.groups)"),
        ));
    }
    if let Some(index) = monitor
        .topics
        .iter()
        .position(|topic| !tenancy.owns_topic(team, topic))
    {
        return Err(ApiError::forbidden_field(
            format!("topics[{index}]"),
            format!("team {team} may not watch this topic (see teams.{team}.topics)"),
        ));
    }
    Ok(())
}

async fn check_monitor_quotas(
    state: &ApiState,
    monitor: &NewMonitor,
    replacing: Option<i64>,
) -> Result<(), ApiError> {
    let team = &monitor.team;
    let quotas = state.tenancy().quotas(team);
    let others: Vec<Monitor> = state
        .store()
        .list_team(team)
        .await?
        .into_iter()
        .filter(|m| Some(m.id) != replacing)
        .collect();
    let over = |name: &str, have: usize, max: u32| {
        ApiError::quota_exceeded(format!(
            "team {team} has {have} {name}, its quota `max_{}` is {max}",
            name.replace([' ', '-'], "_")
        ))
    };
    if replacing.is_none() && others.len() >= quotas.max_monitors as usize {
        return Err(over("monitors", others.len(), quotas.max_monitors));
    }
    if monitor.group_match == GroupMatch::Regex {
        let have = others
            .iter()
            .filter(|m| m.group_match == GroupMatch::Regex)
            .count();
        if have >= quotas.max_regex_monitors as usize {
            return Err(over("regex monitors", have, quotas.max_regex_monitors));
        }
    }
    if monitor.time_lag == TimeLagMode::Exact {
        let have = others
            .iter()
            .filter(|m| m.time_lag == TimeLagMode::Exact)
            .count();
        if have >= quotas.max_exact_time_lag_monitors as usize {
            return Err(over(
                "exact time-lag monitors",
                have,
                quotas.max_exact_time_lag_monitors,
            ));
        }
    }
    Ok(())
}

/// Checks a team caller's silence quota before `team` adds one.
pub async fn check_silence_quota(
    caller: &Caller,
    state: &ApiState,
    team: &str,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    let max = state.tenancy().quotas(team).max_silences;
    let have = state.store().list_silences(Some(team), false).await?.len();
    if have >= max as usize {
        return Err(ApiError::quota_exceeded(format!(
            "team {team} has {have} unexpired silences, its quota `max_silences` is {max}"
        )));
    }
    Ok(())
}

/// Whether `caller` may see `group` on `cluster` (status, alerts): the
/// admin sees all, a team only its owned groups.
pub fn may_see_group(caller: &Caller, state: &ApiState, cluster: &str, group: &str) -> bool {
    match caller.team() {
        None => true,
        Some(team) => state.tenancy().owns_group(team, cluster, group),
    }
}
