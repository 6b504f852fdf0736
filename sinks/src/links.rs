//! Links to the Grafana lag dashboard, shared by the sinks that show one.
//!
//! The dashboard's variable values are the hex of the names (upper case, as
//! ClickHouse's `hex()` makes them), so that no name can break or inject
//! into its SQL (see dashboards/README.md); links carry the same form.

use lagwatch_model::AlertEvent;

/// `base` with the alert's cluster and group as dashboard variables.
pub(crate) fn dashboard_link(base: &str, alert: &AlertEvent) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{separator}var-cluster={}&var-group={}",
        hex(&alert.cluster),
        hex(&alert.consumer_group)
    )
}

/// Upper-case hex of the UTF-8 bytes (URL-safe as it is).
fn hex(value: &str) -> String {
    value.bytes().map(|b| format!("{b:02X}")).collect()
}
