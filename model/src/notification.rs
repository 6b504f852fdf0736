//! A notification: one [`AlertEvent`] as it is sent — a transition or a
//! reminder, possibly muted — together with who receives it.
//!
//! Why apart from the alert: the alert is what every destination and every
//! reader of lagwatch's topics may see; the monitor's e-mail addresses and
//! webhook URLs (which may carry a token in their query string) are for
//! the monitor's own sinks only. So [`Recipients`] are never serialized:
//! the JSON of a notification is the alert's fields plus `repeat` and
//! `muted_by` (the shape the alert-event topic, the alert-state topic and
//! webhook payloads have always had, minus `emails` and `webhooks`), and
//! the evaluator looks recipients up by monitor id when it sends.

use serde::{Deserialize, Serialize};

use crate::{AlertEvent, AlertState, Monitor, Rule};

/// One notification of one alert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Notification {
    /// What happened; its fields sit at the top level of the JSON.
    #[serde(flatten)]
    pub alert: AlertEvent,
    /// A reminder of a still-firing alert (repeat interval), not a
    /// transition.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// Why the notification was recorded but not sent (`silence <id>`,
    /// `inhibited by <fingerprint>`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_by: Option<String>,
    /// The monitor's own receivers, looked up when it is sent; never
    /// written anywhere.
    #[serde(skip)]
    pub recipients: Recipients,
}

/// A monitor's own receivers of its alerts.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Recipients {
    /// Mail recipients.
    pub emails: Vec<String>,
    /// Team webhook URLs (`alerting.webhooks`).
    pub webhooks: Vec<String>,
}

impl Recipients {
    /// The receivers `monitor` lists now.
    pub fn of(monitor: &Monitor) -> Self {
        Recipients {
            emails: monitor.emails.clone(),
            webhooks: monitor.alerting.webhooks.clone(),
        }
    }

    /// Whether nobody of the monitor's own is to be told.
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.webhooks.is_empty()
    }
}

/// Counts only: webhook URLs may carry tokens, and notifications are
/// logged with `?`.
impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipients")
            .field("emails", &self.emails.len())
            .field("webhooks", &self.webhooks.len())
            .finish()
    }
}

impl Notification {
    /// A transition of `alert`, to nobody yet.
    pub fn new(alert: AlertEvent) -> Self {
        Notification {
            alert,
            ..Default::default()
        }
    }

    /// The same notification, to `recipients`.
    pub fn to(mut self, recipients: Recipients) -> Self {
        self.recipients = recipients;
        self
    }

    /// A one-line human summary, used as the e-mail subject: the alert's,
    /// tagged `[REPEAT]` on a reminder.
    pub fn summary(&self) -> String {
        let text = self.alert.summary();
        let firing = self.alert.state == AlertState::Firing;
        if !self.repeat || !firing {
            return text;
        }
        match self.alert.rule {
            Rule::SelfCheck(_) => format!("[REPEAT]{text}"),
            _ => format!("[REPEAT] {}", text.trim_start_matches("[FIRING] ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{AlertEventBuilder, MonitorBuilder};

    fn monitor() -> Monitor {
        let mut monitor = MonitorBuilder::new("billing")
            .emails(&["oncall@example.com"])
            .build();
        monitor.alerting.webhooks = vec!["https://hooks.example.com/x?token=s3cret".into()];
        monitor
    }

    #[test]
    fn recipients_are_never_serialized() {
        let monitor = monitor();
        let mut notification = AlertEventBuilder::firing(&monitor).notification();
        notification.repeat = true;
        notification.muted_by = Some("silence 3".into());
        assert_eq!(notification.recipients, Recipients::of(&monitor));
        let json = serde_json::to_string(&notification).expect("json");
        assert!(!json.contains("oncall@example.com"), "{json}");
        assert!(!json.contains("s3cret"), "{json}");
        assert!(!json.contains("\"emails\"") && !json.contains("\"webhooks\""));
        let value: serde_json::Value = serde_json::from_str(&json).expect("value");
        assert_eq!(
            value["fingerprint"],
            notification.alert.fingerprint.as_str()
        );
        assert_eq!(value["repeat"], true);
        assert_eq!(value["muted_by"], "silence 3");
        let back: Notification = serde_json::from_str(&json).expect("back");
        assert_eq!(back.alert, notification.alert);
        assert!(back.recipients.is_empty());
        let debug = format!("{notification:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("oncall@"),
            "{debug}"
        );
    }

    #[test]
    fn records_of_older_versions_with_recipients_still_read() {
        let old = serde_json::json!({
            "fingerprint": "lag_threshold/1/local/billing", "rule": "lag_threshold",
            "state": "firing", "monitor_id": 1, "team": "payments", "cluster": "local",
            "consumer_group": "billing", "max_lag": 900, "total_lag": 900,
            "threshold": 500, "ts_ms": 5, "partitions": [],
            "emails": ["oncall@example.com"], "webhooks": ["https://hooks.example.com/x"],
            "repeat": true, "value": 900
        });
        let read: Notification = serde_json::from_value(old).expect("old record");
        assert_eq!(read.alert.max_lag, 900);
        assert_eq!(read.alert.value, Some(900.0));
        assert!(read.repeat);
        assert!(read.recipients.is_empty(), "recipients are not read back");
    }

    #[test]
    fn reminders_are_tagged_in_the_summary() {
        let monitor = monitor();
        let mut reminder = AlertEventBuilder::firing(&monitor)
            .lag(900, 900)
            .notification();
        let first = reminder.summary();
        assert!(first.starts_with("[FIRING] "), "{first}");
        reminder.repeat = true;
        assert_eq!(
            reminder.summary(),
            first.replacen("[FIRING] ", "[REPEAT] ", 1)
        );
        reminder.alert.rule = Rule::SelfCheck("history".into());
        reminder.alert.reason = Some("behind".into());
        assert_eq!(
            reminder.summary(),
            "[REPEAT][FIRING] lagwatch history: behind"
        );
    }
}
