//! The rules files (`rules/*.yaml`): defaults every monitor inherits, broker
//! rules and per-group-pattern overrides.
//!
//! Parsing is strict: unknown fields, bad durations, bad regular
//! expressions, non-positive thresholds and unknown operators are errors
//! that name the file, line and column. The compiled-in
//! [`DEFAULT_RULES_YAML`] is read first; each later file replaces the
//! sections it sets and appends to the lists.

use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use crate::WindowRules;

/// The rules shipped with lagwatch (`rules/default.yaml`).
pub const DEFAULT_RULES_YAML: &str = include_str!("../default.yaml");

/// A rules file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct RulesError {
    pub file: String,
    /// 1-based; 0 when the problem has no single position.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Default thresholds; each unset one is off unless a monitor sets it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDefaults {
    #[serde(default, deserialize_with = "positive_opt")]
    pub topic_lag: Option<i64>,
    #[serde(default, deserialize_with = "positive_opt")]
    pub total_lag: Option<i64>,
    #[serde(default, with = "humantime_serde")]
    pub time_lag: Option<Duration>,
}

/// Settings of the `lag_status` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_allowed_lag")]
    pub allowed_lag: i64,
    #[serde(default = "default_min_points")]
    pub min_points: usize,
    #[serde(default, with = "humantime_serde")]
    pub stop_after: Option<Duration>,
}

fn yes() -> bool {
    true
}
fn default_allowed_lag() -> i64 {
    WindowRules::default().allowed_lag
}
fn default_min_points() -> usize {
    WindowRules::default().min_points
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            enabled: true,
            allowed_lag: default_allowed_lag(),
            min_points: default_min_points(),
            stop_after: None,
        }
    }
}

impl StatusSettings {
    /// The window-rule parameters these settings describe.
    pub fn window_rules(&self) -> WindowRules {
        WindowRules {
            allowed_lag: self.allowed_lag,
            min_points: self.min_points,
            stop_after_ms: self
                .stop_after
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// How notifications are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    #[serde(with = "humantime_serde", default = "default_repeat")]
    pub repeat_interval: Duration,
}

fn default_repeat() -> Duration {
    Duration::from_secs(4 * 3600)
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            repeat_interval: default_repeat(),
        }
    }
}

/// How a broker rule combines the brokers of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Each broker on its own: one alert per broker.
    PerBroker,
    /// Sum over the latest sample of every broker: one alert per cluster.
    Sum,
    /// Maximum over the latest sample of every broker.
    Max,
}

/// Comparison of a broker metric with the rule's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
}

impl Comparison {
    /// Whether `value <op> limit` holds.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Greater => value > limit,
            Comparison::GreaterOrEqual => value >= limit,
            Comparison::Less => value < limit,
            Comparison::LessOrEqual => value <= limit,
            Comparison::Equal => value == limit,
            Comparison::NotEqual => value != limit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

/// A rule over broker JMX samples.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRule {
    pub name: String,
    /// A metric name of `lagwatch_model::broker::metric` (broker totals).
    #[serde(deserialize_with = "known_metric")]
    pub metric: String,
    #[serde(default = "default_aggregate")]
    pub aggregate: Aggregate,
    pub op: Comparison,
    pub value: f64,
    #[serde(rename = "for", with = "humantime_serde", default)]
    pub for_duration: Duration,
    #[serde(default)]
    pub inhibits_lag_alerts: bool,
}

fn default_aggregate() -> Aggregate {
    Aggregate::PerBroker
}

/// Defaults for the groups matching a pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupOverride {
    /// Whole-id regular expression.
    pub group: Pattern,
    /// Only on this cluster (any when absent).
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub thresholds: Option<ThresholdDefaults>,
    #[serde(default)]
    pub lag_status: Option<StatusSettings>,
}

impl PartialEq for GroupOverride {
    fn eq(&self, other: &Self) -> bool {
        self.group.0.as_str() == other.group.0.as_str()
            && self.cluster == other.cluster
            && self.thresholds == other.thresholds
            && self.lag_status == other.lag_status
    }
}

/// A compiled, anchored regular expression read from a rules file.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        lagwatch_model::compile_pattern(&text)
            .map(Pattern)
            .map_err(|e| serde::de::Error::custom(format!("bad regular expression `{text}`: {e}")))
    }
}

fn positive_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Option::<i64>::deserialize(deserializer)? {
        Some(v) if v <= 0 => Err(serde::de::Error::custom(format!(
            "threshold must be greater than 0, got {v}"
        ))),
        other => Ok(other),
    }
}

fn known_metric<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    match lagwatch_model::broker::metric::known(&name) {
        Some(known) => Ok(known.to_string()),
        None => Err(serde::de::Error::custom(format!(
            "unknown broker metric `{name}`; known: {}",
            lagwatch_model::broker::metric::ALL.join(", ")
        ))),
    }
}

/// One parsed file: every section optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    thresholds: Option<ThresholdDefaults>,
    #[serde(default)]
    lag_status: Option<StatusSettings>,
    #[serde(default)]
    notifications: Option<NotificationSettings>,
    #[serde(default)]
    broker_rules: Vec<BrokerRule>,
    #[serde(default)]
    group_overrides: Vec<GroupOverride>,
}

/// The effective rules: the default file plus every configured file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    pub thresholds: ThresholdDefaults,
    pub lag_status: StatusSettings,
    pub notifications: NotificationSettings,
    pub broker_rules: Vec<BrokerRule>,
    pub group_overrides: Vec<GroupOverride>,
}

impl RuleSet {
    /// The compiled-in defaults.
    pub fn defaults() -> Self {
        // The shipped file is checked by a unit test; fall back to the
        // built-in values rather than fail if it ever did not parse.
        RuleSet::load(&[]).unwrap_or_default()
    }

    /// The default file followed by `files` (`(name, content)` pairs, name
    /// used in errors).
    pub fn load(files: &[(String, String)]) -> Result<Self, RulesError> {
        let mut rules = RuleSet::default();
        rules.apply(parse("rules/default.yaml", DEFAULT_RULES_YAML)?);
        for (name, text) in files {
            let file = parse(name, text)?;
            // Broker rule names must stay unique across files: a later file
            // replaces a default rule of the same name.
            rules
                .broker_rules
                .retain(|r| !file.broker_rules.iter().any(|n| n.name == r.name));
            rules.apply(file);
        }
        Ok(rules)
    }

    fn apply(&mut self, file: RulesFile) {
        if let Some(t) = file.thresholds {
            self.thresholds = t;
        }
        if let Some(s) = file.lag_status {
            self.lag_status = s;
        }
        if let Some(n) = file.notifications {
            self.notifications = n;
        }
        self.broker_rules.extend(file.broker_rules);
        self.group_overrides.extend(file.group_overrides);
    }

    fn matching_override(&self, cluster: &str, group: &str) -> Option<&GroupOverride> {
        self.group_overrides.iter().find(|o| {
            o.cluster.as_deref().is_none_or(|c| c == cluster) && o.group.0.is_match(group)
        })
    }

    /// Threshold defaults for a group (its override's, else the file's).
    pub fn thresholds_for(&self, cluster: &str, group: &str) -> &ThresholdDefaults {
        self.matching_override(cluster, group)
            .and_then(|o| o.thresholds.as_ref())
            .unwrap_or(&self.thresholds)
    }

    /// `lag_status` settings for a group (its override's, else the file's).
    pub fn status_for(&self, cluster: &str, group: &str) -> StatusSettings {
        self.matching_override(cluster, group)
            .and_then(|o| o.lag_status)
            .unwrap_or(self.lag_status)
    }
}

fn parse(name: &str, text: &str) -> Result<RulesFile, RulesError> {
    if text.trim().is_empty() {
        return Ok(RulesFile::default());
    }
    let file: RulesFile = yaml_serde::from_str(text).map_err(|error| {
        let (line, column) = error.location().map_or((0, 0), |l| (l.line(), l.column()));
        RulesError {
            file: name.to_string(),
            line,
            column,
            message: strip_location(&error.to_string()),
        }
    })?;
    let mut names = std::collections::HashSet::new();
    for rule in &file.broker_rules {
        if !names.insert(rule.name.as_str()) {
            return Err(RulesError {
                file: name.to_string(),
                line: line_of(text, &format!("name: {}", rule.name)),
                column: 0,
                message: format!("broker rule `{}` is defined twice", rule.name),
            });
        }
    }
    Ok(file)
}

/// yaml_serde appends " at line L column C"; the location is printed in
/// front instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// 1-based line of the first occurrence of `needle`, 0 if absent.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_one(text: &str) -> Result<RuleSet, RulesError> {
        RuleSet::load(&[("team.yaml".to_string(), text.to_string())])
    }

    #[test]
    fn shipped_defaults_parse() {
        let rules = RuleSet::load(&[]).expect("rules/default.yaml parses");
        assert_eq!(rules.thresholds.time_lag, Some(Duration::from_secs(900)));
        assert_eq!(rules.thresholds.total_lag, None);
        assert!(rules.lag_status.enabled);
        assert_eq!(
            rules.notifications.repeat_interval,
            Duration::from_secs(4 * 3600)
        );
        let names: Vec<_> = rules.broker_rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "under_replicated_partitions",
                "offline_partitions",
                "active_controller_count"
            ]
        );
        assert_eq!(rules, RuleSet::defaults());
    }

    /// Numbered cases: (file content, expected line, words in the message).
    const BAD_FILES: &[(&str, usize, &str)] = &[
        // 1 unknown top-level field
        ("thresholds: {}\nsurprise: 1\n", 2, "unknown field `surprise`"),
        // 2 unknown nested field
        ("lag_status:\n  enabled: true\n  alowed_lag: 3\n", 3, "unknown field `alowed_lag`"),
        // 3 bad duration
        ("notifications:\n  repeat_interval: soon\n", 2, "repeat_interval"),
        // 4 bad regular expression
        ("group_overrides:\n  - group: \"pay(\"\n", 2, "bad regular expression"),
        // 5 non-positive threshold
        ("thresholds:\n  total_lag: 0\n", 2, "greater than 0"),
        // 6 unknown operator
        (
            "broker_rules:\n  - name: x\n    metric: OfflinePartitionsCount\n    op: \"=~\"\n    value: 1\n",
            4,
            "unknown variant",
        ),
        // 7 unknown metric
        (
            "broker_rules:\n  - name: x\n    metric: Nope\n    op: \">\"\n    value: 1\n",
            2, // custom errors point at the rule that holds the field
            "unknown broker metric `Nope`",
        ),
        // 8 duplicate broker rule name
        (
            "broker_rules:\n  - name: x\n    metric: OfflinePartitionsCount\n    op: \">\"\n    value: 0\n  - name: x\n    metric: OfflinePartitionsCount\n    op: \">\"\n    value: 1\n",
            2,
            "defined twice",
        ),
        // 9 wrong type
        ("lag_status:\n  min_points: many\n", 2, "invalid type"),
    ];

    #[test]
    fn bad_files_name_file_line_and_reason() {
        for (number, (text, line, words)) in BAD_FILES.iter().enumerate() {
            let error = load_one(text).expect_err(&format!("case {}", number + 1));
            assert_eq!(error.file, "team.yaml", "case {}", number + 1);
            assert_eq!(error.line, *line, "case {}: {error}", number + 1);
            assert!(
                error.message.contains(words),
                "case {}: {error}",
                number + 1
            );
            assert!(error.to_string().starts_with(&format!("team.yaml:{line}:")));
        }
    }

    #[test]
    fn later_files_replace_sections_and_rules_of_the_same_name() {
        let rules = load_one(
            "thresholds:\n  total_lag: 5000\nbroker_rules:\n  - name: offline_partitions\n    metric: OfflinePartitionsCount\n    aggregate: sum\n    op: \">\"\n    value: 5\n",
        )
        .expect("valid");
        assert_eq!(rules.thresholds.total_lag, Some(5000));
        assert_eq!(rules.thresholds.time_lag, None, "section replaced whole");
        assert_eq!(rules.broker_rules.len(), 3);
        let offline = rules
            .broker_rules
            .iter()
            .find(|r| r.name == "offline_partitions")
            .expect("kept");
        assert_eq!(offline.value, 5.0);
        assert!(
            !offline.inhibits_lag_alerts,
            "replaced rule keeps its own fields"
        );
    }

    #[test]
    fn group_overrides_apply_to_matching_groups_first_match_wins() {
        let rules = load_one(
            "group_overrides:\n  - group: \"pay-.*\"\n    cluster: prod\n    lag_status:\n      allowed_lag: 10\n  - group: \"pay-.*\"\n    thresholds:\n      total_lag: 7\n",
        )
        .expect("valid");
        assert_eq!(rules.status_for("prod", "pay-eu").allowed_lag, 10);
        assert_eq!(rules.status_for("dev", "pay-eu"), rules.lag_status);
        assert_eq!(
            rules.status_for("prod", "xpay-eu"),
            rules.lag_status,
            "anchored"
        );
        assert_eq!(rules.thresholds_for("dev", "pay-eu").total_lag, Some(7));
        assert_eq!(
            rules.thresholds_for("prod", "pay-eu"),
            &rules.thresholds,
            "first match has no thresholds section"
        );
    }

    #[test]
    fn comparisons() {
        assert!(Comparison::NotEqual.holds(2.0, 1.0));
        assert!(!Comparison::NotEqual.holds(1.0, 1.0));
        assert!(Comparison::GreaterOrEqual.holds(1.0, 1.0));
        assert!(Comparison::Less.holds(0.5, 1.0));
    }
}
