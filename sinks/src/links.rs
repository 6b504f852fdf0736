//! Links to the Grafana lag dashboard, shared by the sinks that show one.

use lagwatch_model::AlertEvent;

/// `base` with the alert's cluster and group as dashboard variables.
pub(crate) fn dashboard_link(base: &str, alert: &AlertEvent) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{separator}var-cluster={}&var-group={}",
        url_component(&alert.cluster),
        url_component(&alert.consumer_group)
    )
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
fn url_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
