//! PagerDuty Events API v2 settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use lagwatch_model::Secret;

/// The public Events API v2 endpoint.
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Severity of the incidents lagwatch triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PagerDutySeverity {
    Critical,
    #[default]
    Error,
    Warning,
    Info,
}

impl PagerDutySeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            PagerDutySeverity::Critical => "critical",
            PagerDutySeverity::Error => "error",
            PagerDutySeverity::Warning => "warning",
            PagerDutySeverity::Info => "info",
        }
    }
}

/// PagerDuty sink settings (`[pagerduty]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Events API v2 endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// Integration key of the PagerDuty service (Events API v2).
    pub routing_key: Secret,
    /// Severity of triggered incidents: critical, error, warning or info.
    #[serde(default)]
    pub severity: PagerDutySeverity,
    /// Whole-request timeout (connect, send, answer).
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Base URL of the Grafana lag dashboard, linked from every incident.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

fn default_url() -> String {
    DEFAULT_EVENTS_URL.to_string()
}

const fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
