//! Renders an alert as a text + HTML e-mail.
//!
//! Times are written for the person reading the mail: ISO 8601 in UTC (the
//! zone spelled out, since readers sit in many) plus how long before the
//! mail was written the sample was taken, so a delayed or repeated mail
//! shows its age.

use std::time::{Duration, UNIX_EPOCH};

use lagwatch_model::{now_ms, AlertState, Notification};

use crate::links::dashboard_link;
use crate::status_word::status_word;

/// Plain-text body listing the lagging partitions.
pub fn text_body(notification: &Notification, dashboard_url: Option<&str>) -> String {
    text_body_at(notification, dashboard_url, now_ms())
}

/// [`text_body`] as written at `now_ms`.
pub fn text_body_at(
    notification: &Notification,
    dashboard_url: Option<&str>,
    now_ms: i64,
) -> String {
    let alert = &notification.alert;
    let mut body = String::new();
    body.push_str(&notification.summary());
    body.push_str("\n\n");
    body.push_str(&format!(
        "cluster: {}\nconsumer group: {}\nteam: {}\nmonitor: {}\nrule: {}\nmax partition lag: {}\ntotal lag: {}\nthreshold: {}\nsampled at: {}\n",
        lagwatch_model::printable(&alert.cluster),
        lagwatch_model::printable(&alert.consumer_group),
        alert.team,
        alert.monitor_id,
        alert.rule,
        alert.max_lag,
        alert.total_lag,
        alert.threshold,
        sample_time(alert.ts_ms, now_ms)
    ));
    if let Some(word) = status_word(alert) {
        body.push_str(&format!("consumer status: {word}\n"));
    }
    if alert.state == AlertState::Firing && !alert.partitions.is_empty() {
        body.push_str("\nlagging partitions:\n");
        for p in &alert.partitions {
            body.push_str(&format!(
                "  {}[{}] lag {}\n",
                lagwatch_model::printable(&p.topic),
                p.partition,
                p.lag
            ));
        }
    }
    if let Some(url) = dashboard_url {
        body.push_str(&format!("\ndashboard: {}\n", dashboard_link(url, alert)));
    }
    body.push_str(&format!(
        "\nfingerprint: {}\n",
        lagwatch_model::printable(&alert.fingerprint)
    ));
    body
}

/// `2026-11-30T21:13:19Z (3 min ago)`: the sample time in UTC and its age
/// at `now_ms`.
pub fn sample_time(ts_ms: i64, now_ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ts_ms).unwrap_or(0));
    format!(
        "{} ({})",
        humantime::format_rfc3339_seconds(
            time.min(UNIX_EPOCH + Duration::from_secs(LAST_FORMATTABLE_SECS))
        ),
        age(now_ms.saturating_sub(ts_ms))
    )
}

/// 9999-12-31T23:59:59Z: RFC 3339 has four-digit years.
const LAST_FORMATTABLE_SECS: u64 = 253_402_300_799;

/// `just now`, `42 s ago`, `3 min ago`, `2 h ago`, `4 days ago`.
fn age(ms: i64) -> String {
    let secs = ms / 1_000;
    match secs {
        ..1 => "just now".to_string(),
        1..60 => format!("{secs} s ago"),
        60..3_600 => format!("{} min ago", secs / 60),
        3_600..86_400 => format!("{} h ago", secs / 3_600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// HTML body with the same content.
pub fn html_body(notification: &Notification, dashboard_url: Option<&str>) -> String {
    let alert = &notification.alert;
    let mut rows = String::new();
    for p in &alert.partitions {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&lagwatch_model::printable(&p.topic)),
            p.partition,
            p.lag
        ));
    }
    let table = if rows.is_empty() {
        String::new()
    } else {
        format!("<table border=\"1\"><tr><th>topic</th><th>partition</th><th>lag</th></tr>{rows}</table>")
    };
    let link = dashboard_url
        .map(|url| {
            format!(
                "<p><a href=\"{}\">Open the dashboard</a></p>",
                escape(&dashboard_link(url, alert))
            )
        })
        .unwrap_or_default();
    let status = status_word(alert)
        .map(|word| format!("; consumer status <b>{}</b>", escape(&word)))
        .unwrap_or_default();
    format!(
        "<html><body><h3>{}</h3><p>cluster <b>{}</b>, group <b>{}</b>, team {}; max lag {}, total lag {}, threshold {}; sampled at {}{}</p>{}{}</body></html>",
        escape(&notification.summary()),
        escape(&lagwatch_model::printable(&alert.cluster)),
        escape(&lagwatch_model::printable(&alert.consumer_group)),
        escape(&alert.team),
        alert.max_lag,
        alert.total_lag,
        alert.threshold,
        sample_time(alert.ts_ms, now_ms()),
        status,
        table,
        link
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{AlertEvent, LaggingPartition};

    use super::*;

    fn alert() -> Notification {
        Notification::new(AlertEvent {
            fingerprint: "lag_threshold/1".into(),
            rule: lagwatch_model::Rule::LagThreshold,
            state: AlertState::Firing,
            monitor_id: 1,
            team: "payments".into(),
            cluster: "local".into(),
            consumer_group: "bill<ing>".into(),
            max_lag: 900,
            total_lag: 2700,
            threshold: 500,
            ts_ms: 1,
            partitions: vec![LaggingPartition {
                topic: "orders".into(),
                partition: 2,
                lag: 900,
            }],
            ..Default::default()
        })
    }

    #[test]
    fn every_body_says_the_consumer_status() {
        let mut alert = alert();
        assert!(!text_body(&alert, None).contains("consumer status"));
        alert.alert.group_status = Some("stall".into());
        assert!(text_body(&alert, None).contains("consumer status: STALL\n"));
        assert!(html_body(&alert, None).contains("consumer status <b>STALL</b>"));
    }

    #[test]
    fn text_lists_partitions_and_link() {
        let text = text_body(&alert(), Some("http://grafana/d/lag"));
        assert!(text.contains("orders[2] lag 900"), "{text}");
        assert!(
            text.contains(
                "http://grafana/d/lag?var-cluster=6C6F63616C&var-group=62696C6C3C696E673E"
            ),
            "{text}"
        );
    }

    #[test]
    fn sample_time_is_iso_8601_utc_with_its_age() {
        let mut firing = alert();
        firing.alert.ts_ms = 1_796_073_199_263;
        let text = text_body_at(&firing, None, 1_796_073_199_263 + 185_000);
        assert!(
            text.contains("sampled at: 2026-11-30T21:13:19Z (3 min ago)\n"),
            "{text}"
        );
        assert_eq!(sample_time(1_000, 1_500), "1970-01-01T00:00:01Z (just now)");
        assert_eq!(sample_time(0, 42_000), "1970-01-01T00:00:00Z (42 s ago)");
        assert_eq!(sample_time(0, 7_200_000), "1970-01-01T00:00:00Z (2 h ago)");
        assert_eq!(
            sample_time(0, 3 * 86_400_000),
            "1970-01-01T00:00:00Z (3 days ago)"
        );
    }

    #[test]
    fn html_is_escaped() {
        let html = html_body(&alert(), None);
        assert!(html.contains("bill&lt;ing&gt;"));
        assert!(!html.contains("bill<ing>"));
    }
}
