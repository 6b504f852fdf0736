//! Broker rules over JMX samples; pure, no I/O.
//!
//! Every broker of a cluster travels on one metrics-topic partition (key
//! `cluster/brokers`), so the instance that owns it sees them all. A
//! `per_broker` rule judges each broker's own value (one alert per
//! broker); `sum` and `max` rules judge the aggregate over the latest
//! sample of every broker heard from within [`BROKER_STALE_MS`] (one alert
//! per cluster). A metric a broker does not report counts as absent: it
//! adds nothing to a sum (broker-only KRaft nodes have no
//! ActiveControllerCount), and a rule without any value changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use lagwatch_model::{AlertEvent, AlertState, BrokerSample, Rule};
use lagwatch_rules::{Aggregate, BrokerRule, RuleSet, ThresholdRule, ThresholdState, Transition};

use crate::engine::{AlertMemory, Remembered};

/// A broker whose latest sample is older than this leaves the aggregates.
pub const BROKER_STALE_MS: i64 = 5 * 60 * 1000;

/// Who broker alerts are addressed to.
#[derive(Debug, Clone, Default)]
pub struct BrokerAlertRouting {
    /// Team recorded on broker alerts (silences match it).
    pub team: String,
    /// Mail recipients of broker alerts (the notifier adds them when it
    /// sends; alerts carry no recipients).
    pub emails: Vec<String>,
}

#[derive(Debug, Default)]
struct RuleAlert {
    state: ThresholdState,
    judged_until_ms: i64,
}

/// State of every broker rule of every cluster this instance evaluates.
pub struct BrokerEngine {
    rules: Arc<RuleSet>,
    routing: BrokerAlertRouting,
    latest: HashMap<(String, i32), BrokerSample>,
    alerts: HashMap<String, RuleAlert>,
    memory: Option<Arc<dyn AlertMemory>>,
    recalled: Vec<String>,
}

impl BrokerEngine {
    pub fn new(rules: Arc<RuleSet>, routing: BrokerAlertRouting) -> Self {
        BrokerEngine {
            rules,
            routing,
            latest: HashMap::new(),
            alerts: HashMap::new(),
            memory: None,
            recalled: Vec::new(),
        }
    }

    /// Restores alert state from `memory` for alerts met the first time.
    pub fn with_memory(mut self, memory: Arc<dyn AlertMemory>) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Fingerprints taken over from the memory since the last call.
    pub fn take_recalled(&mut self) -> Vec<String> {
        std::mem::take(&mut self.recalled)
    }

    /// Applies one broker sample; returns the transitions it caused.
    pub fn observe(&mut self, sample: &BrokerSample) -> Vec<AlertEvent> {
        self.latest
            .insert((sample.cluster.clone(), sample.broker), sample.clone());
        let now = sample.ts_ms;
        self.latest
            .retain(|_, s| now.saturating_sub(s.ts_ms) <= BROKER_STALE_MS);
        let rules = self.rules.clone();
        let mut events = Vec::new();
        for rule in &rules.broker_rules {
            let (broker, value) = match rule.aggregate {
                Aggregate::PerBroker => (Some(sample.broker), sample.get(&rule.metric, None)),
                Aggregate::Sum | Aggregate::Max => (None, self.aggregate(sample, rule)),
            };
            events.extend(self.judge(sample, rule, broker, value));
        }
        events
    }

    fn aggregate(&self, sample: &BrokerSample, rule: &BrokerRule) -> Option<f64> {
        let values = self
            .latest
            .iter()
            .filter(|((cluster, _), _)| *cluster == sample.cluster)
            .filter_map(|(_, s)| s.get(&rule.metric, None));
        match rule.aggregate {
            Aggregate::Sum => values.reduce(|a, b| a + b),
            _ => values.reduce(f64::max),
        }
    }

    fn judge(
        &mut self,
        sample: &BrokerSample,
        rule: &BrokerRule,
        broker: Option<i32>,
        value: Option<f64>,
    ) -> Option<AlertEvent> {
        let alert_rule = Rule::Broker(rule.name.clone());
        let fingerprint = match broker {
            Some(id) => format!("{alert_rule}/{}/{id}", sample.cluster),
            None => format!("{alert_rule}/{}", sample.cluster),
        };
        let memory = self.memory.clone();
        let recalled = &mut self.recalled;
        let alert = self.alerts.entry(fingerprint.clone()).or_insert_with(|| {
            let mut alert = RuleAlert {
                judged_until_ms: i64::MIN,
                ..RuleAlert::default()
            };
            if let Some(Remembered {
                firing, as_of_ms, ..
            }) = memory.and_then(|m| m.recall(&fingerprint))
            {
                recalled.push(fingerprint.clone());
                alert.state.firing = firing;
                alert.judged_until_ms = as_of_ms;
            }
            alert
        });
        // Brokers of one cluster share a tick: a sample as old as the last
        // judged one is judged again (the aggregate changed), older ones
        // are replays.
        if sample.ts_ms < alert.judged_until_ms {
            return None;
        }
        alert.judged_until_ms = sample.ts_ms;
        // The threshold machine on a 0/1 signal: "1 > 0" is a breach.
        let breach = value.map(|v| i64::from(rule.op.holds(v, rule.value)));
        let for_ms = i64::try_from(rule.for_duration.as_millis()).unwrap_or(i64::MAX);
        let state = match alert.state.observe(
            &ThresholdRule {
                threshold: 0,
                for_ms,
            },
            breach,
            sample.ts_ms,
        ) {
            Transition::Unchanged => return None,
            Transition::Fire => AlertState::Firing,
            Transition::Resolve => AlertState::Resolved,
        };
        Some(AlertEvent {
            fingerprint,
            rule: alert_rule,
            state,
            monitor_id: 0,
            team: self.routing.team.clone(),
            cluster: sample.cluster.clone(),
            consumer_group: String::new(),
            max_lag: 0,
            total_lag: 0,
            threshold: rule.value as i64,
            ts_ms: sample.ts_ms,
            partitions: Vec::new(),
            status: None,
            topic: None,
            value,
            broker,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::broker::metric;
    use lagwatch_model::{BrokerMetric, WIRE_VERSION};

    use super::*;

    fn sample(broker: i32, ts_ms: i64, metrics: &[(&str, f64)]) -> BrokerSample {
        BrokerSample {
            v: WIRE_VERSION,
            cluster: "prod".into(),
            broker,
            ts_ms,
            error: None,
            metrics: metrics
                .iter()
                .map(|(name, value)| BrokerMetric {
                    name: name.to_string(),
                    topic: None,
                    value: *value,
                })
                .collect(),
        }
    }

    fn engine() -> BrokerEngine {
        BrokerEngine::new(
            Arc::new(RuleSet::defaults()),
            BrokerAlertRouting {
                team: "platform".into(),
                emails: vec!["kafka-oncall@example.com".into()],
            },
        )
    }

    fn fired(events: &[AlertEvent]) -> Vec<(String, AlertState, Option<i32>)> {
        events
            .iter()
            .map(|e| (e.rule.to_string(), e.state, e.broker))
            .collect()
    }

    /// Numbered cases over the default broker rules: (case, samples as
    /// (broker, ts, metrics), expected events (rule, state, broker) per
    /// sample index).
    #[test]
    fn default_broker_rules_table() {
        use AlertState::{Firing, Resolved};
        let c = metric::ACTIVE_CONTROLLER_COUNT;
        let u = metric::UNDER_REPLICATED_PARTITIONS;
        let o = metric::OFFLINE_PARTITIONS_COUNT;
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Vec<(i32, i64, Vec<(&str, f64)>)>,
            Vec<(usize, &str, AlertState, Option<i32>)>,
        )> = vec![
            (
                "1 one active controller over three nodes: quiet",
                vec![
                    (1, 0, vec![(c, 1.0)]),
                    (2, 0, vec![(c, 0.0)]),
                    (3, 0, vec![]),
                ],
                vec![],
            ),
            (
                "2 no active controller for 1m fires once, then resolves",
                vec![
                    (1, 0, vec![(c, 0.0)]),
                    (1, 30_000, vec![(c, 0.0)]),
                    (1, 60_000, vec![(c, 0.0)]),
                    (1, 90_000, vec![(c, 0.0)]),
                    (1, 120_000, vec![(c, 1.0)]),
                ],
                vec![
                    (2, "broker:active_controller_count", Firing, None),
                    (4, "broker:active_controller_count", Resolved, None),
                ],
            ),
            (
                "3 under-replicated partitions per broker after 2m",
                vec![
                    (1, 0, vec![(c, 1.0), (u, 3.0)]),
                    (2, 0, vec![(u, 0.0)]),
                    (1, 120_000, vec![(c, 1.0), (u, 2.0)]),
                    (1, 180_000, vec![(c, 1.0), (u, 0.0)]),
                ],
                vec![
                    (2, "broker:under_replicated_partitions", Firing, Some(1)),
                    (3, "broker:under_replicated_partitions", Resolved, Some(1)),
                ],
            ),
            (
                "4 offline partitions summed fire at once",
                vec![(1, 0, vec![(c, 1.0), (o, 0.0)]), (2, 10, vec![(o, 4.0)])],
                vec![(1, "broker:offline_partitions", Firing, None)],
            ),
            (
                "5 a missing metric neither fires nor resolves",
                vec![(1, 0, vec![(c, 1.0), (o, 2.0)]), (1, 10, vec![(c, 1.0)])],
                vec![(0, "broker:offline_partitions", Firing, None)],
            ),
        ];
        for (case, samples, expected) in cases {
            let mut engine = engine();
            let mut got = Vec::new();
            for (i, (broker, ts, metrics)) in samples.iter().enumerate() {
                for e in fired(&engine.observe(&sample(*broker, *ts, metrics))) {
                    got.push((i, e.0, e.1, e.2));
                }
            }
            let expected: Vec<_> = expected
                .into_iter()
                .map(|(i, r, s, b)| (i, r.to_string(), s, b))
                .collect();
            assert_eq!(got, expected, "case {case}");
        }
    }

    #[test]
    fn broker_alerts_carry_routing_value_and_summary() {
        let mut engine = engine();
        let events = engine.observe(&sample(1, 0, &[(metric::OFFLINE_PARTITIONS_COUNT, 4.0)]));
        let offline = events
            .iter()
            .find(|e| e.rule == Rule::Broker("offline_partitions".into()))
            .expect("fired");
        assert_eq!(offline.team, "platform");
        assert_eq!(offline.value, Some(4.0));
        assert_eq!(offline.fingerprint, "broker:offline_partitions/prod");
        assert!(offline
            .summary()
            .contains("offline_partitions on cluster prod"));
    }
}
