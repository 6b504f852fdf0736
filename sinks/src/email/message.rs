//! Renders an alert as a text + HTML e-mail.

use lagwatch_model::{AlertEvent, AlertState};

use crate::links::dashboard_link;

/// Plain-text body listing the lagging partitions.
pub fn text_body(alert: &AlertEvent, dashboard_url: Option<&str>) -> String {
    let mut body = String::new();
    body.push_str(&alert.summary());
    body.push_str("\n\n");
    body.push_str(&format!(
        "cluster: {}\nconsumer group: {}\nteam: {}\nmonitor: {}\nrule: {}\nmax partition lag: {}\ntotal lag: {}\nthreshold: {}\nsample time (ms): {}\n",
        alert.cluster,
        alert.consumer_group,
        alert.team,
        alert.monitor_id,
        alert.rule,
        alert.max_lag,
        alert.total_lag,
        alert.threshold,
        alert.ts_ms
    ));
    if alert.state == AlertState::Firing && !alert.partitions.is_empty() {
        body.push_str("\nlagging partitions:\n");
        for p in &alert.partitions {
            body.push_str(&format!("  {}[{}] lag {}\n", p.topic, p.partition, p.lag));
        }
    }
    if let Some(url) = dashboard_url {
        body.push_str(&format!("\ndashboard: {}\n", dashboard_link(url, alert)));
    }
    body.push_str(&format!("\nfingerprint: {}\n", alert.fingerprint));
    body
}

/// HTML body with the same content.
pub fn html_body(alert: &AlertEvent, dashboard_url: Option<&str>) -> String {
    let mut rows = String::new();
    for p in &alert.partitions {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.topic),
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
    format!(
        "<html><body><h3>{}</h3><p>cluster <b>{}</b>, group <b>{}</b>, team {}; max lag {}, total lag {}, threshold {}</p>{}{}</body></html>",
        escape(&alert.summary()),
        escape(&alert.cluster),
        escape(&alert.consumer_group),
        escape(&alert.team),
        alert.max_lag,
        alert.total_lag,
        alert.threshold,
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
    use lagwatch_model::LaggingPartition;

    use super::*;

    fn alert() -> AlertEvent {
        AlertEvent {
            fingerprint: "lag_threshold/1".into(),
            rule: "lag_threshold".into(),
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
            emails: vec![],
            status: None,
            topic: None,
            value: None,
            broker: None,
            repeat: false,
            muted_by: None,
            webhooks: Vec::new(),
        }
    }

    #[test]
    fn text_lists_partitions_and_link() {
        let text = text_body(&alert(), Some("http://grafana/d/lag"));
        assert!(text.contains("orders[2] lag 900"), "{text}");
        assert!(
            text.contains("http://grafana/d/lag?var-cluster=6C6F63616C&var-group=62696C6C3C696E673E"),
            "{text}"
        );
    }

    #[test]
    fn html_is_escaped() {
        let html = html_body(&alert(), None);
        assert!(html.contains("bill&lt;ing&gt;"));
        assert!(!html.contains("bill<ing>"));
    }
}
