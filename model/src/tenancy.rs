//! Which Kafka resources each team owns, which shared (operator) sinks may
//! receive its alerts, and how much it may register.
//!
//! lagwatch is shared by many teams, and a team token must not let one team
//! watch (and so read the offsets and lag of) another team's consumer
//! groups, nor page the platform on-call through the operator's PagerDuty.
//! The operator states ownership in the configuration (`[teams.<name>]`);
//! the API refuses monitors outside it, the collector never expands a
//! team's pattern to a group it does not own, status and alert history
//! show only owned groups, and the notifier sends a team's alerts to the
//! shared sinks only where its `routes` say so.
//!
//! Without any `[teams]` section nothing is restricted (existing setups keep
//! working); once one exists, a team without its own section owns nothing.
//!
//! Name patterns are exact names or globs where `*` stands for any run of
//! characters (`pay-*`, `*.orders`, `*`); nothing else is special, so a
//! pattern cannot be made to match more than it shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The operator's settings for one team (`[teams.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamScope {
    /// Clusters the team may monitor; every configured cluster when absent.
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    /// Consumer groups the team owns (exact names or `*` globs).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Topics the team may watch (exact names or `*` globs); any topic of
    /// an owned group when absent.
    #[serde(default = "any_name")]
    pub topics: Vec<String>,
    /// Shared sinks that receive this team's alerts: `pagerduty`, `slack`,
    /// `webhooks` (every `[[webhooks]]` entry) or `webhook:<name>` (one
    /// entry by its `name`). None by default: a team's alerts go only to
    /// its own recipients (e-mail addresses and webhook URLs).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Overrides of the `[quotas]` defaults for this team.
    #[serde(default)]
    pub max_monitors: Option<u32>,
    #[serde(default)]
    pub max_silences: Option<u32>,
    #[serde(default)]
    pub max_regex_monitors: Option<u32>,
    #[serde(default)]
    pub max_exact_time_lag_monitors: Option<u32>,
}

fn any_name() -> Vec<String> {
    vec!["*".to_string()]
}

/// Default per-team limits (`[quotas]`), so one team cannot fill the store
/// or make the collector's cycle expensive for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Monitors per team.
    #[serde(default = "default_max_monitors")]
    pub max_monitors: u32,
    /// Unexpired silences per team.
    #[serde(default = "default_max_silences")]
    pub max_silences: u32,
    /// Monitors with a group pattern per team (each may cover many groups).
    #[serde(default = "default_max_regex_monitors")]
    pub max_regex_monitors: u32,
    /// Monitors with `time_lag = "exact"` per team (each costs a record
    /// fetch per lagging partition and cycle).
    #[serde(default = "default_max_exact_time_lag_monitors")]
    pub max_exact_time_lag_monitors: u32,
}

const fn default_max_monitors() -> u32 {
    200
}
const fn default_max_silences() -> u32 {
    100
}
const fn default_max_regex_monitors() -> u32 {
    20
}
const fn default_max_exact_time_lag_monitors() -> u32 {
    20
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_monitors: default_max_monitors(),
            max_silences: default_max_silences(),
            max_regex_monitors: default_max_regex_monitors(),
            max_exact_time_lag_monitors: default_max_exact_time_lag_monitors(),
        }
    }
}

/// Every team's scope and quotas, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tenancy {
    /// `None`: no `[teams]` section, nothing is restricted.
    teams: Option<BTreeMap<String, TeamScope>>,
    quotas: Quotas,
}

/// What a team may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// No `[teams]` section: everything.
    Unrestricted,
    /// The team's own section.
    Scoped(&'a TeamScope),
    /// `[teams]` exists but has no section for this team: nothing.
    Denied,
}

impl Tenancy {
    /// Ownership from `teams` (`None` when the configuration has no
    /// `[teams]` section) with `quotas` as every team's defaults.
    pub fn new(teams: Option<BTreeMap<String, TeamScope>>, quotas: Quotas) -> Self {
        Tenancy { teams, quotas }
    }

    /// Whether ownership is enforced at all.
    pub fn is_enforced(&self) -> bool {
        self.teams.is_some()
    }

    /// What `team` may touch.
    pub fn access(&self, team: &str) -> Access<'_> {
        match &self.teams {
            None => Access::Unrestricted,
            Some(teams) => teams.get(team).map_or(Access::Denied, Access::Scoped),
        }
    }

    /// Whether `team` may monitor groups on `cluster`.
    pub fn may_use_cluster(&self, team: &str, cluster: &str) -> bool {
        match self.access(team) {
            Access::Unrestricted => true,
            Access::Denied => false,
            Access::Scoped(scope) => scope
                .clusters
                .as_ref()
                .is_none_or(|clusters| clusters.iter().any(|c| c == cluster)),
        }
    }

    /// Whether `team` owns consumer group `group` on `cluster`.
    pub fn owns_group(&self, team: &str, cluster: &str, group: &str) -> bool {
        match self.access(team) {
            Access::Unrestricted => true,
            Access::Denied => false,
            Access::Scoped(scope) => {
                self.may_use_cluster(team, cluster) && matches_any(&scope.groups, group)
            }
        }
    }

    /// Whether `team` may watch topic `topic`.
    pub fn owns_topic(&self, team: &str, topic: &str) -> bool {
        match self.access(team) {
            Access::Unrestricted => true,
            Access::Denied => false,
            Access::Scoped(scope) => matches_any(&scope.topics, topic),
        }
    }

    /// The topic patterns `team` is limited to, for filtering what a
    /// pattern (or "every topic") monitor reports: `None` when the team may
    /// watch any topic (no `[teams]` section, or its `topics` include `*`);
    /// an empty list when it owns nothing.
    pub fn topic_limits(&self, team: &str) -> Option<TopicLimits> {
        match self.access(team) {
            Access::Unrestricted => None,
            Access::Denied => Some(TopicLimits(Vec::new())),
            Access::Scoped(scope) if scope.topics.iter().any(|t| t == "*") => None,
            Access::Scoped(scope) => Some(TopicLimits(scope.topics.clone())),
        }
    }

    /// Whether a shared sink destination (`pagerduty`, `slack`, `webhook`
    /// with the entry's `name`) may receive `team`'s alerts. Without a
    /// `[teams]` section every shared sink receives every alert.
    pub fn routes_to(&self, team: &str, sink: &str, name: Option<&str>) -> bool {
        match self.access(team) {
            Access::Unrestricted => true,
            Access::Denied => false,
            Access::Scoped(scope) => scope.routes.iter().any(|route| match route.as_str() {
                "webhooks" => sink == "webhook",
                other => match other.strip_prefix("webhook:") {
                    Some(wanted) => sink == "webhook" && name == Some(wanted),
                    None => other == sink,
                },
            }),
        }
    }

    /// The quotas of `team`: its overrides over the defaults.
    pub fn quotas(&self, team: &str) -> Quotas {
        let defaults = self.quotas;
        match self.access(team) {
            Access::Scoped(scope) => Quotas {
                max_monitors: scope.max_monitors.unwrap_or(defaults.max_monitors),
                max_silences: scope.max_silences.unwrap_or(defaults.max_silences),
                max_regex_monitors: scope
                    .max_regex_monitors
                    .unwrap_or(defaults.max_regex_monitors),
                max_exact_time_lag_monitors: scope
                    .max_exact_time_lag_monitors
                    .unwrap_or(defaults.max_exact_time_lag_monitors),
            },
            _ => defaults,
        }
    }

    /// Checks the configured names: routes must be known sink kinds and
    /// patterns non-empty; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        let Some(teams) = &self.teams else {
            return Ok(());
        };
        for (team, scope) in teams {
            for (key, patterns) in [("groups", &scope.groups), ("topics", &scope.topics)] {
                if let Some(bad) = patterns.iter().find(|p| p.is_empty()) {
                    return Err(format!("`teams.{team}.{key}` has an empty pattern {bad:?}"));
                }
            }
            for route in &scope.routes {
                let known = matches!(route.as_str(), "pagerduty" | "slack" | "webhooks")
                    || route
                        .strip_prefix("webhook:")
                        .is_some_and(|name| !name.is_empty());
                if !known {
                    return Err(format!(
                        "`teams.{team}.routes` has `{route}`: use pagerduty, slack, webhooks or webhook:<name>"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The topics one team may watch (its `teams.<name>.topics` globs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLimits(Vec<String>);

impl TopicLimits {
    /// Whether `topic` is inside the limits.
    pub fn allows(&self, topic: &str) -> bool {
        matches_any(&self.0, topic)
    }
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|pattern| glob_matches(pattern, name))
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and
/// every other character stands for itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear in
    // practice, never exponential.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(groups: &[&str]) -> TeamScope {
        TeamScope {
            clusters: Some(vec!["local".into()]),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            topics: vec!["pay.*".into()],
            routes: vec!["slack".into(), "webhook:ops".into()],
            max_monitors: Some(3),
            max_silences: None,
            max_regex_monitors: None,
            max_exact_time_lag_monitors: None,
        }
    }

    fn tenancy() -> Tenancy {
        let mut teams = BTreeMap::new();
        teams.insert("payments".to_string(), scope(&["pay-*", "billing"]));
        Tenancy::new(Some(teams), Quotas::default())
    }

    #[test]
    fn globs_match_whole_names_with_star_only() {
        for (pattern, name, expected) in [
            ("pay-*", "pay-eu", true),
            ("pay-*", "pay-", true),
            ("pay-*", "xpay-eu", false),
            ("*.orders", "eu.orders", true),
            ("*.orders", "eu.orders.x", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("billing", "billing", true),
            ("billing", "billing2", false),
            ("pay.*", "payX", false),
            ("pay-?", "pay-1", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn a_team_owns_only_its_scope_and_others_nothing_once_teams_exist() {
        let tenancy = tenancy();
        assert!(tenancy.owns_group("payments", "local", "pay-eu"));
        assert!(tenancy.owns_group("payments", "local", "billing"));
        assert!(!tenancy.owns_group("payments", "local", "search-indexer"));
        assert!(!tenancy.owns_group("payments", "prod", "pay-eu"), "cluster");
        assert!(!tenancy.may_use_cluster("payments", "prod"));
        assert!(tenancy.owns_topic("payments", "pay.orders"));
        assert!(!tenancy.owns_topic("payments", "search.docs"));
        assert!(
            !tenancy.owns_group("search", "local", "pay-eu"),
            "no section"
        );
        assert_eq!(tenancy.access("search"), Access::Denied);
        let open = Tenancy::default();
        assert!(!open.is_enforced());
        assert!(open.owns_group("anyone", "any", "anything"));
        assert!(open.routes_to("anyone", "pagerduty", None));
    }

    #[test]
    fn shared_sinks_receive_a_team_only_where_routed() {
        let tenancy = tenancy();
        assert!(tenancy.routes_to("payments", "slack", None));
        assert!(!tenancy.routes_to("payments", "pagerduty", None));
        assert!(tenancy.routes_to("payments", "webhook", Some("ops")));
        assert!(!tenancy.routes_to("payments", "webhook", Some("platform")));
        assert!(!tenancy.routes_to("search", "slack", None));
    }

    #[test]
    fn quotas_are_the_defaults_with_team_overrides() {
        let tenancy = tenancy();
        assert_eq!(tenancy.quotas("payments").max_monitors, 3);
        assert_eq!(tenancy.quotas("payments").max_silences, 100);
        assert_eq!(tenancy.quotas("search"), Quotas::default());
    }

    #[test]
    fn unknown_routes_and_empty_patterns_are_refused_by_key() {
        let mut bad = scope(&["pay-*"]);
        bad.routes = vec!["pager".into()];
        let mut teams = BTreeMap::new();
        teams.insert("payments".to_string(), bad);
        let error = Tenancy::new(Some(teams), Quotas::default())
            .check()
            .expect_err("unknown route");
        assert!(error.contains("teams.payments.routes"), "{error}");
        let mut teams = BTreeMap::new();
        teams.insert("payments".to_string(), scope(&[""]));
        let error = Tenancy::new(Some(teams), Quotas::default())
            .check()
            .expect_err("empty");
        assert!(error.contains("teams.payments.groups"), "{error}");
    }
}
