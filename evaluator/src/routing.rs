//! Which of the operator's shared sinks (PagerDuty, Slack, the configured
//! `[[webhooks]]`) receive a team's alerts.
//!
//! A team registers its own recipients (e-mail addresses, webhook URLs);
//! the shared sinks belong to the operator, and without routing every
//! team's monitor would page the platform on-call. Once `[teams]` is
//! configured, a team's alerts reach a shared sink only when its
//! `teams.<name>.routes` names it. The operator's own alerts (broker rules,
//! lagwatch's checks of itself) always go everywhere. Without `[teams]`,
//! every shared sink receives every alert, as before.

use std::sync::Arc;

use lagwatch_model::{AlertEvent, Rule, Tenancy};

/// The sink kinds that are the operator's, not a team's.
const SHARED_SINKS: [&str; 3] = ["pagerduty", "slack", "webhook"];

/// Decides per destination whether an alert may be sent there.
#[derive(Debug, Clone, Default)]
pub struct SharedSinkRouting {
    tenancy: Arc<Tenancy>,
    /// The `name` of each `[[webhooks]]` entry, in the order the sinks were
    /// added to the outbox (`webhook`, `webhook#2`, ...).
    webhook_names: Vec<Option<String>>,
}

impl SharedSinkRouting {
    pub fn new(tenancy: Arc<Tenancy>, webhook_names: Vec<Option<String>>) -> Self {
        SharedSinkRouting {
            tenancy,
            webhook_names,
        }
    }

    /// Whether `event` may go to outbox destination `destination`
    /// (`pagerduty`, `webhook#2`, `email`, `monitor_webhook:<key>`).
    pub fn allows(&self, event: &AlertEvent, destination: &str) -> bool {
        if !self.tenancy.is_enforced() {
            return true;
        }
        if matches!(event.rule, Rule::Broker(_) | Rule::SelfCheck(_)) {
            return true;
        }
        let sink_id = destination.split(':').next().unwrap_or(destination);
        let (sink, ordinal) = match sink_id.split_once('#') {
            Some((sink, n)) => (sink, n.parse::<usize>().unwrap_or(0)),
            None => (sink_id, 1),
        };
        if !SHARED_SINKS.contains(&sink) {
            return true;
        }
        let name = match sink {
            "webhook" => ordinal
                .checked_sub(1)
                .and_then(|i| self.webhook_names.get(i))
                .and_then(|n| n.as_deref()),
            _ => None,
        };
        self.tenancy.routes_to(&event.team, sink, name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lagwatch_model::{AlertState, Quotas, TeamScope};

    use super::*;

    fn event(team: &str, rule: &str) -> AlertEvent {
        AlertEvent {
            team: team.into(),
            rule: rule.parse().unwrap_or_else(|never| match never {}),
            state: AlertState::Firing,
            ..Default::default()
        }
    }

    fn routing() -> SharedSinkRouting {
        let scope = |routes: &[&str]| TeamScope {
            clusters: None,
            groups: vec!["*".into()],
            topics: vec!["*".into()],
            routes: routes.iter().map(|r| r.to_string()).collect(),
            max_monitors: None,
            max_silences: None,
            max_regex_monitors: None,
            max_exact_time_lag_monitors: None,
        };
        let mut teams = BTreeMap::new();
        teams.insert("payments".to_string(), scope(&["slack", "webhook:ops"]));
        teams.insert("search".to_string(), scope(&[]));
        SharedSinkRouting::new(
            Arc::new(Tenancy::new(Some(teams), Quotas::default())),
            vec![Some("platform".into()), Some("ops".into())],
        )
    }

    #[test]
    fn a_team_reaches_only_the_shared_sinks_it_is_routed_to() {
        let routing = routing();
        let pay = event("payments", "lag_threshold");
        assert!(routing.allows(&pay, "slack"));
        assert!(!routing.allows(&pay, "pagerduty"));
        assert!(!routing.allows(&pay, "webhook"), "the platform webhook");
        assert!(routing.allows(&pay, "webhook#2"), "the ops webhook");
        assert!(routing.allows(&pay, "email"), "its own recipients");
        assert!(routing.allows(&pay, "monitor_webhook:1f2e"));
        let search = event("search", "lag_status");
        assert!(!routing.allows(&search, "pagerduty"));
        assert!(!routing.allows(&search, "slack"));
        assert!(routing.allows(&search, "email"));
        let stranger = event("nobody", "lag_threshold");
        assert!(!routing.allows(&stranger, "pagerduty"));
    }

    #[test]
    fn operator_alerts_and_unconfigured_tenancy_go_everywhere() {
        let routing = routing();
        assert!(routing.allows(&event("platform", "broker:offline_partitions"), "pagerduty"));
        assert!(routing.allows(&event("platform", "self:history"), "pagerduty"));
        let open = SharedSinkRouting::default();
        assert!(open.allows(&event("search", "lag_threshold"), "pagerduty"));
    }
}
