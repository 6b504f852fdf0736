//! Renders an alert as Slack `mrkdwn` text.

use std::fmt::Write as _;

use lagwatch_model::{AlertState, Notification};

use crate::links::dashboard_link;
use crate::status_word::status_word;

/// Lagging partitions listed in a message; the rest are counted.
pub const MAX_LISTED_PARTITIONS: usize = 10;

/// The message: summary, figures, up to [`MAX_LISTED_PARTITIONS`]
/// partitions plus "and N more", and the dashboard link.
pub fn message_text(notification: &Notification, dashboard_url: Option<&str>) -> String {
    let alert = &notification.alert;
    let icon = match alert.state {
        AlertState::Firing => ":rotating_light:",
        AlertState::Resolved => ":white_check_mark:",
    };
    let mut text = format!("{icon} *{}*\n", escape(&notification.summary()));
    let _ = writeln!(
        text,
        "cluster: {} | group: {} | team: {} | rule: {}",
        escape(&lagwatch_model::printable(&alert.cluster)),
        escape(&lagwatch_model::printable(&alert.consumer_group)),
        escape(&alert.team),
        escape(&alert.rule.to_string())
    );
    let _ = writeln!(
        text,
        "max partition lag: {} | total lag: {} | threshold: {}",
        alert.max_lag, alert.total_lag, alert.threshold
    );
    if let Some(word) = status_word(alert) {
        let _ = writeln!(text, "consumer status: *{}*", escape(&word));
    }
    if !alert.partitions.is_empty() {
        text.push_str("lagging partitions:\n");
        for p in alert.partitions.iter().take(MAX_LISTED_PARTITIONS) {
            let _ = writeln!(
                text,
                "• {}[{}] lag {}",
                escape(&p.topic),
                p.partition,
                p.lag
            );
        }
        let more = alert.partitions.len().saturating_sub(MAX_LISTED_PARTITIONS);
        if more > 0 {
            let _ = writeln!(text, "_and {more} more_");
        }
    }
    if let Some(base) = dashboard_url {
        let _ = writeln!(
            text,
            "<{}|Open the dashboard>",
            link_target(&dashboard_link(base, alert))
        );
    }
    text.truncate(text.trim_end().len());
    text
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL safe inside `<url|label>`.
fn link_target(url: &str) -> String {
    url.replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{AlertEvent, LaggingPartition};

    use super::*;

    fn alert(partitions: usize) -> Notification {
        Notification::new(AlertEvent {
            fingerprint: "lag_threshold/1".into(),
            rule: lagwatch_model::Rule::LagThreshold,
            state: AlertState::Firing,
            monitor_id: 1,
            team: "payments".into(),
            cluster: "local".into(),
            consumer_group: "bill<ing>&co".into(),
            max_lag: 900,
            total_lag: 2700,
            threshold: 500,
            ts_ms: 1,
            partitions: (0..partitions)
                .map(|i| LaggingPartition {
                    topic: "orders".into(),
                    partition: i32::try_from(i).unwrap_or(i32::MAX),
                    lag: 600,
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn lists_ten_partitions_and_counts_the_rest() {
        let text = message_text(&alert(13), None);
        assert!(text.contains("orders[9] lag 600"), "{text}");
        assert!(!text.contains("orders[10]"), "{text}");
        assert!(text.contains("and 3 more"), "{text}");
        assert_eq!(text.matches('•').count(), MAX_LISTED_PARTITIONS);
    }

    #[test]
    fn exactly_ten_has_no_more_line() {
        let text = message_text(&alert(10), None);
        assert!(text.contains("orders[9]"), "{text}");
        assert!(!text.contains("more"), "{text}");
    }

    #[test]
    fn escapes_and_links() {
        let text = message_text(&alert(1), Some("http://grafana/d/lag"));
        assert!(text.contains("bill&lt;ing&gt;&amp;co"), "{text}");
        assert!(!text.contains("bill<ing>"), "{text}");
        assert!(
            text.contains(
                "<http://grafana/d/lag?var-cluster=6C6F63616C&var-group=62696C6C3C696E673E26636F|Open the dashboard>"
            ),
            "{text}"
        );
    }

    #[test]
    fn resolved_has_no_partitions() {
        let mut resolved = alert(0);
        resolved.alert.state = AlertState::Resolved;
        let text = message_text(&resolved, None);
        assert!(text.starts_with(":white_check_mark: *[RESOLVED]"), "{text}");
        assert!(!text.contains("lagging partitions"), "{text}");
    }
}
