//! Team ownership and quotas on what a team token registers.
//!
//! A team token may only create or change monitors inside its team's scope
//! (`[teams.<name>]`: clusters, group and topic patterns); anything else is
//! 403 naming the field, so a team cannot watch (and read the lag and
//! offsets of) another team's consumer groups. Quotas stop one team from
//! filling the store or making every collector cycle expensive. The admin
//! token is the operator's and is not limited by either.
//!
//! Quotas are checked by the store inside the write's own transaction with
//! the team's write lock held ([`lagwatch_store::QuotaCheck`]), so requests
//! racing at a team's limit cannot both pass.

use lagwatch_model::{GroupMatch, Monitor, NewMonitor, TimeLagMode};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ApiState;

/// Checks that a team caller may store `monitor`: its cluster, group and
/// topics are inside the team's scope (403 naming the field otherwise).
pub fn check_monitor_owner(
    caller: &Caller,
    state: &ApiState,
    monitor: &NewMonitor,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    check_ownership(state, monitor)
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
        // status reader filter; topic patterns likewise only report owned
        // topics), but a team with no scope owns none.
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

/// The team quotas `monitor` must fit in, as a check the store runs on
/// the team's other monitors inside the write's transaction. `creating`:
/// a new monitor (counts against `max_monitors`), else a replacement.
/// The admin token is not limited.
pub fn monitor_quota(
    caller: &Caller,
    state: &ApiState,
    monitor: &NewMonitor,
    creating: bool,
) -> impl Fn(&[Monitor]) -> Result<(), String> + Send + Sync {
    let limited = !caller.is_admin();
    let team = monitor.team.clone();
    let quotas = state.tenancy().quotas(&team);
    let (group_match, time_lag) = (monitor.group_match, monitor.time_lag);
    move |others: &[Monitor]| {
        if !limited {
            return Ok(());
        }
        let over = |name: &str, have: usize, max: u32| {
            format!(
                "team {team} has {have} {name}, its quota `max_{}` is {max}",
                name.replace([' ', '-'], "_")
            )
        };
        if creating && others.len() >= quotas.max_monitors as usize {
            return Err(over("monitors", others.len(), quotas.max_monitors));
        }
        if group_match == GroupMatch::Regex {
            let have = others
                .iter()
                .filter(|m| m.group_match == GroupMatch::Regex)
                .count();
            if have >= quotas.max_regex_monitors as usize {
                return Err(over("regex monitors", have, quotas.max_regex_monitors));
            }
        }
        if time_lag == TimeLagMode::Exact {
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
}

/// The unexpired-silence quota of `team` for `caller`, which the store
/// checks inside the silence's transaction; `None` for the admin.
pub fn silence_quota(caller: &Caller, state: &ApiState, team: &str) -> Option<u32> {
    (!caller.is_admin()).then(|| state.tenancy().quotas(team).max_silences)
}

/// Whether `caller` may see `group` on `cluster` (status, alerts): the
/// admin sees all, a team only its owned groups.
pub fn may_see_group(caller: &Caller, state: &ApiState, cluster: &str, group: &str) -> bool {
    match caller.team() {
        None => true,
        Some(team) => state.tenancy().owns_group(team, cluster, group),
    }
}

/// The team whose records a list request reads: a team token's own; for
/// the admin the optional `?team=`, else every team (`None`). `?team=` is
/// checked for every caller, used only by the admin.
pub fn listed_team(
    caller: &Caller,
    params: &crate::input::Params,
) -> Result<Option<String>, ApiError> {
    let asked = crate::input::optional_team(params, "team")?;
    Ok(match caller.team() {
        Some(own) => Some(own.to_string()),
        None => asked,
    })
}
