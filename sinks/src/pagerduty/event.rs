//! Builds Events API v2 bodies: `trigger` for a firing alert, `resolve`
//! for a resolved one, both keyed by the alert's fingerprint so PagerDuty
//! folds repeats into one incident and the resolve closes it.

use std::time::{Duration, UNIX_EPOCH};

use lagwatch_model::{AlertState, Notification};
use serde_json::{json, Value};

use super::config::PagerDutySeverity;
use crate::links::dashboard_link;
use crate::status_word::status_word;

/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY_CHARS: usize = 1024;
/// Partitions listed in `custom_details`; the count covers the rest.
const MAX_DETAIL_PARTITIONS: usize = 100;

/// The request body for `alert`.
pub fn event_body(
    notification: &Notification,
    routing_key: &str,
    severity: PagerDutySeverity,
    dashboard_url: Option<&str>,
) -> Value {
    let alert = &notification.alert;
    if alert.state == AlertState::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.fingerprint,
        });
    }
    let summary: String = notification
        .summary()
        .chars()
        .take(MAX_SUMMARY_CHARS)
        .collect();
    let partitions: Vec<Value> = alert
        .partitions
        .iter()
        .take(MAX_DETAIL_PARTITIONS)
        .map(|p| json!({"topic": p.topic, "partition": p.partition, "lag": p.lag}))
        .collect();
    let mut payload = json!({
        "summary": summary,
        "source": alert.cluster,
        "severity": severity.as_str(),
        "component": alert.consumer_group,
        "group": alert.team,
        "class": alert.rule.to_string(),
        "custom_details": {
            "cluster": alert.cluster,
            "consumer_group": alert.consumer_group,
            "team": alert.team,
            "monitor_id": alert.monitor_id,
            "rule": alert.rule.to_string(),
            "max_lag": alert.max_lag,
            "total_lag": alert.total_lag,
            "threshold": alert.threshold,
            "lagging_partition_count": alert.partitions.len(),
            "lagging_partitions": partitions,
        },
    });
    if let Some(timestamp) = timestamp(alert.ts_ms) {
        payload["timestamp"] = Value::String(timestamp);
    }
    if let Some(word) = status_word(alert) {
        payload["custom_details"]["status"] = Value::String(word);
    }
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "client": "lagwatch",
        "payload": payload,
    });
    if let Some(base) = dashboard_url {
        body["links"] = json!([{
            "href": dashboard_link(base, alert),
            "text": "Consumer lag dashboard",
        }]);
    }
    body
}

/// RFC 3339 time of the sample, when it is a positive epoch time.
fn timestamp(ts_ms: i64) -> Option<String> {
    let ms = u64::try_from(ts_ms).ok().filter(|ms| *ms > 0)?;
    let time = UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    Some(humantime::format_rfc3339_millis(time).to_string())
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{AlertEvent, LaggingPartition};

    use super::*;

    fn alert(state: AlertState) -> Notification {
        Notification::new(AlertEvent {
            fingerprint: "lag_threshold/3".into(),
            rule: lagwatch_model::Rule::LagThreshold,
            state,
            monitor_id: 3,
            team: "payments".into(),
            cluster: "prod".into(),
            consumer_group: "billing".into(),
            max_lag: 900,
            total_lag: 2700,
            threshold: 500,
            ts_ms: 1_700_000_000_000,
            partitions: (0..150)
                .map(|i| LaggingPartition {
                    topic: "orders".into(),
                    partition: i,
                    lag: 600,
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn trigger_body() {
        let body = event_body(
            &alert(AlertState::Firing),
            "key",
            PagerDutySeverity::Critical,
            Some("http://grafana/d/lag"),
        );
        assert_eq!(body["routing_key"], "key");
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], "lag_threshold/3");
        let payload = &body["payload"];
        assert_eq!(
            payload["summary"],
            "[FIRING] lag of group billing on prod is 900 (threshold 500)"
        );
        assert_eq!(payload["source"], "prod");
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["component"], "billing");
        assert_eq!(payload["timestamp"], "2023-11-14T22:13:20.000Z");
        let details = &payload["custom_details"];
        assert_eq!(details["max_lag"], 900);
        assert_eq!(details["threshold"], 500);
        assert_eq!(details["lagging_partition_count"], 150);
        assert_eq!(
            details["lagging_partitions"]
                .as_array()
                .map(Vec::len)
                .unwrap_or_default(),
            MAX_DETAIL_PARTITIONS
        );
        assert_eq!(
            body["links"][0]["href"],
            "http://grafana/d/lag?var-cluster=70726F64&var-group=62696C6C696E67"
        );
    }

    #[test]
    fn resolve_body_has_only_the_key() {
        let body = event_body(
            &alert(AlertState::Resolved),
            "key",
            PagerDutySeverity::Error,
            Some("http://grafana/d/lag"),
        );
        assert_eq!(
            body,
            json!({"routing_key": "key", "event_action": "resolve", "dedup_key": "lag_threshold/3"})
        );
    }

    #[test]
    fn long_summary_is_cut() {
        let mut firing = alert(AlertState::Firing);
        firing.alert.consumer_group = "g".repeat(2000);
        let body = event_body(&firing, "key", PagerDutySeverity::Error, None);
        let summary = body["payload"]["summary"].as_str().unwrap_or_default();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS);
        assert!(body.get("links").is_none());
    }

    #[test]
    fn no_timestamp_for_zero_time() {
        let mut firing = alert(AlertState::Firing);
        firing.alert.ts_ms = 0;
        let body = event_body(&firing, "key", PagerDutySeverity::Error, None);
        assert!(body["payload"].get("timestamp").is_none());
    }
}
