//! Silences: a team's request to mute matching alerts for a while.
//!
//! A silence never stops an alert from being evaluated or recorded in
//! history; it only keeps notifications of matching alerts from reaching the
//! sinks while it is active. Every matcher left empty matches anything, so a
//! silence with only `team` set mutes all of that team's alerts.

use serde::{Deserialize, Serialize};

use crate::AlertEvent;

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silence {
    pub id: i64,
    /// Owning team: a silence only ever matches that team's alerts.
    pub team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Rule name (`lag_threshold`, `lag_status`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// Who created it (a team name, `admin`, or `cli`).
    pub created_by: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub comment: String,
    pub created_at_ms: i64,
}

/// A silence about to be created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSilence {
    pub team: String,
    pub monitor_id: Option<i64>,
    pub cluster: Option<String>,
    pub consumer_group: Option<String>,
    pub rule: Option<String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// Whether the silence is in force at `now_ms`.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    /// Whether the silence mutes `alert` at `now_ms`.
    pub fn mutes(&self, alert: &AlertEvent, now_ms: i64) -> bool {
        fn same<T: PartialEq>(matcher: &Option<T>, value: &T) -> bool {
            matcher.as_ref().is_none_or(|expected| expected == value)
        }
        self.is_active(now_ms)
            && self.team == alert.team
            && same(&self.monitor_id, &alert.monitor_id)
            && same(&self.cluster, &alert.cluster)
            && same(&self.consumer_group, &alert.consumer_group)
            && self
                .rule
                .as_deref()
                .is_none_or(|name| alert.rule.to_string() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlertState;

    fn alert() -> AlertEvent {
        AlertEvent {
            fingerprint: "f".into(),
            rule: crate::Rule::LagThreshold,
            state: AlertState::Firing,
            monitor_id: 7,
            team: "payments".into(),
            cluster: "prod".into(),
            consumer_group: "billing".into(),
            max_lag: 10,
            total_lag: 10,
            threshold: 5,
            ts_ms: 1_000,
            ..Default::default()
        }
    }

    fn silence() -> Silence {
        Silence {
            id: 1,
            team: "payments".into(),
            monitor_id: None,
            cluster: None,
            consumer_group: None,
            rule: None,
            starts_at_ms: 500,
            ends_at_ms: 2_000,
            created_by: "payments".into(),
            comment: String::new(),
            created_at_ms: 500,
        }
    }

    #[test]
    fn empty_matchers_mute_all_of_the_teams_alerts_while_active() {
        let s = silence();
        assert!(s.mutes(&alert(), 1_000));
        assert!(!s.mutes(&alert(), 499), "not started");
        assert!(!s.mutes(&alert(), 2_000), "ended");
        let mut other_team = alert();
        other_team.team = "search".into();
        assert!(!s.mutes(&other_team, 1_000));
    }

    #[test]
    fn every_set_matcher_must_equal() {
        let mut s = silence();
        s.consumer_group = Some("billing".into());
        s.rule = Some("lag_threshold".into());
        assert!(s.mutes(&alert(), 1_000));
        s.monitor_id = Some(8);
        assert!(!s.mutes(&alert(), 1_000));
        s.monitor_id = Some(7);
        s.cluster = Some("staging".into());
        assert!(!s.mutes(&alert(), 1_000));
    }
}
