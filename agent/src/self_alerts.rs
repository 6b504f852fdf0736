//! lagwatch alerts about itself: when a `/readyz` check has failed for
//! `after` (a cluster not sampled, the evaluator behind, history behind, a
//! sink destination that cannot deliver), a `self:<check>` alert goes to
//! the operators (`evaluator.broker_alert_team` / `broker_alert_emails`)
//! through the outbox — through every destination except a failing sink
//! itself — and resolves when the check passes again.
//!
//! And because a lagwatch that is entirely down cannot say so, an optional
//! heartbeat goes to an external dead-man's switch every interval.

use std::collections::HashMap;
use std::time::Duration;

use lagwatch_model::{now_ms, AlertEvent, AlertState, Notification, Recipients, Rule, Secret};
use lagwatch_sinks::heartbeat::Heartbeat;
use lagwatch_sinks::Outbox;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::readiness::{Check, Readiness};

/// `[self_alerts]`: alerts about lagwatch itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfAlertsConfig {
    /// Raise self-alerts at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// How long a check must fail before it pages (short blips do not).
    #[serde(with = "humantime_serde", default = "default_after")]
    pub after: Duration,
    /// How often the checks are looked at.
    #[serde(with = "humantime_serde", default = "default_check_every")]
    pub check_every: Duration,
    /// A dead-man's switch to POST a heartbeat to (its URL usually carries
    /// a token, hence a secret); none when absent.
    #[serde(default)]
    pub heartbeat_url: Option<Secret>,
    /// Time between two heartbeats.
    #[serde(with = "humantime_serde", default = "default_heartbeat_interval")]
    pub heartbeat_interval: Duration,
}

const fn default_enabled() -> bool {
    true
}
const fn default_after() -> Duration {
    Duration::from_secs(60)
}
const fn default_check_every() -> Duration {
    Duration::from_secs(15)
}
const fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(60)
}

impl Default for SelfAlertsConfig {
    fn default() -> Self {
        SelfAlertsConfig {
            enabled: default_enabled(),
            after: default_after(),
            check_every: default_check_every(),
            heartbeat_url: None,
            heartbeat_interval: default_heartbeat_interval(),
        }
    }
}

/// Who self-alerts go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operators {
    pub team: String,
    pub emails: Vec<String>,
}

/// A failing check's life: when it started failing, whether it paged.
#[derive(Debug)]
struct Failing {
    since_ms: i64,
    fired: Option<AlertEvent>,
}

/// What turns check verdicts into self-alert transitions (pure: the
/// caller supplies time and verdicts).
#[derive(Debug)]
pub struct SelfWatch {
    after_ms: i64,
    operators: Operators,
    failing: HashMap<String, Failing>,
}

impl SelfWatch {
    pub fn new(after: Duration, operators: Operators) -> Self {
        SelfWatch {
            after_ms: i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            operators,
            failing: HashMap::new(),
        }
    }

    /// The transitions the verdicts at `now` cause.
    pub fn observe<'c>(
        &mut self,
        checks: impl IntoIterator<Item = (&'c String, &'c Check)>,
        now: i64,
    ) -> Vec<AlertEvent> {
        let mut transitions = Vec::new();
        let mut seen = Vec::new();
        for (name, check) in checks {
            seen.push(name.clone());
            if check.ok {
                if let Some(Failing {
                    fired: Some(fired), ..
                }) = self.failing.remove(name)
                {
                    transitions.push(resolve(fired, now));
                }
                continue;
            }
            let failing = self.failing.entry(name.clone()).or_insert(Failing {
                since_ms: now,
                fired: None,
            });
            if failing.fired.is_none() && now - failing.since_ms >= self.after_ms {
                let problem = check.problem.clone().unwrap_or_else(|| "failing".into());
                let event = firing(&self.operators, name, problem, now);
                failing.fired = Some(event.clone());
                transitions.push(event);
            }
        }
        // A check that is gone (its stage stopped) resolves too.
        let gone: Vec<String> = self
            .failing
            .keys()
            .filter(|name| !seen.contains(name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(Failing {
                fired: Some(fired), ..
            }) = self.failing.remove(&name)
            {
                transitions.push(resolve(fired, now));
            }
        }
        transitions
    }
}

fn resolve(mut fired: AlertEvent, now: i64) -> AlertEvent {
    fired.state = AlertState::Resolved;
    fired.ts_ms = now;
    fired.reason = None;
    fired
}

/// The firing self-alert of `check`.
fn firing(operators: &Operators, check: &str, problem: String, now: i64) -> AlertEvent {
    {
        let cluster = check
            .strip_prefix("collector/")
            .unwrap_or("lagwatch")
            .to_string();
        AlertEvent {
            fingerprint: Rule::SelfCheck(check.to_string()).to_string(),
            rule: Rule::SelfCheck(check.to_string()),
            state: AlertState::Firing,
            monitor_id: 0,
            team: operators.team.clone(),
            cluster,
            consumer_group: String::new(),
            max_lag: 0,
            total_lag: 0,
            threshold: 0,
            ts_ms: now,
            partitions: Vec::new(),
            status: None,
            topic: None,
            value: None,
            broker: None,
            reason: Some(problem),
            group_status: None,
        }
    }
}

/// Looks at the checks every `check_every` and sends self-alert
/// transitions through `outbox`, until `shutdown`.
pub async fn run(
    config: SelfAlertsConfig,
    operators: Operators,
    readiness: Readiness,
    outbox: Outbox,
    shutdown: CancellationToken,
) {
    // The operators' addresses, added when sent (alerts carry none).
    let recipients = Recipients {
        emails: operators.emails.clone(),
        webhooks: Vec::new(),
    };
    let mut watch = SelfWatch::new(config.after, operators);
    let mut ticker = tokio::time::interval(config.check_every);
    // Self-alert sequences live apart from the notifier's.
    let mut sequence = u64::MAX / 2;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let report = readiness.report();
        for event in watch.observe(&report.checks, now_ms()) {
            sequence += 1;
            // A failing sink cannot carry its own alert: all the others.
            let failing_sink = match &event.rule {
                Rule::SelfCheck(check) => check.strip_prefix("sink/").map(str::to_string),
                _ => None,
            };
            let notification = Notification::new(event).to(recipients.clone());
            let destinations: Vec<String> = outbox
                .destinations(&notification)
                .into_iter()
                .filter(|d| Some(d) != failing_sink.as_ref())
                .collect();
            let event = &notification.alert;
            tracing::warn!(rule = %event.rule, state = event.state.as_str(), reason = ?event.reason, destinations = destinations.len(), "self-alert");
            outbox.submit(&notification, sequence, &destinations);
        }
    }
}

/// Posts a heartbeat every `heartbeat_interval` until `shutdown`; a failed
/// post is logged once per change.
pub async fn heartbeats(
    heartbeat: Heartbeat,
    interval: Duration,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let report = readiness.report();
        let failing_checks: Vec<&String> = report
            .checks
            .iter()
            .filter(|(_, check)| !check.ok)
            .map(|(name, _)| name)
            .collect();
        let body = serde_json::json!({
            "status": if report.ready { "ok" } else { "degraded" },
            "failing": failing_checks,
            "ts_ms": now_ms(),
        });
        match heartbeat.send(&body).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeat delivered again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(error = %error, "heartbeat not delivered");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn check(ok: bool) -> Check {
        Check {
            ok,
            problem: (!ok).then(|| "not sampled for 40 s".to_string()),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_check_pages_once_after_the_grace_and_resolves_once() {
        let operators = Operators {
            team: "platform".into(),
            emails: vec!["oncall@example.com".into()],
        };
        let mut watch = SelfWatch::new(Duration::from_secs(60), operators);
        let name = "collector/prod".to_string();
        let failing = BTreeMap::from([(name.clone(), check(false))]);
        let fine = BTreeMap::from([(name.clone(), check(true))]);
        assert!(
            watch.observe(&failing, 0).is_empty(),
            "not before the grace"
        );
        assert!(watch.observe(&failing, 59_999).is_empty());
        let fired = watch.observe(&failing, 60_000);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule, Rule::SelfCheck("collector/prod".into()));
        assert_eq!(fired[0].cluster, "prod");
        assert_eq!(
            fired[0].summary(),
            "[FIRING] lagwatch collector/prod: not sampled for 40 s"
        );
        assert!(watch.observe(&failing, 120_000).is_empty(), "pages once");
        let resolved = watch.observe(&fine, 130_000);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(
            resolved[0].summary(),
            "[RESOLVED] lagwatch collector/prod works again"
        );
        assert!(watch.observe(&fine, 140_000).is_empty());
    }

    #[test]
    fn a_blip_shorter_than_the_grace_never_pages() {
        let operators = Operators {
            team: "platform".into(),
            emails: vec![],
        };
        let mut watch = SelfWatch::new(Duration::from_secs(60), operators);
        let name = "evaluator".to_string();
        let failing = BTreeMap::from([(name.clone(), check(false))]);
        let fine = BTreeMap::from([(name.clone(), check(true))]);
        assert!(watch.observe(&failing, 0).is_empty());
        assert!(watch.observe(&fine, 30_000).is_empty());
        assert!(
            watch.observe(&failing, 70_000).is_empty(),
            "grace starts over"
        );
        assert_eq!(watch.observe(&failing, 130_000).len(), 1);
    }
}
