//! Slack incoming-webhook settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use lagwatch_model::Secret;

/// Slack sink settings (`[slack]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Incoming-webhook URL (`https://hooks.slack.com/services/...`); the
    /// URL is the credential, so it is a secret.
    pub webhook_url: Secret,
    /// Whole-request timeout (connect, send, answer).
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Base URL of the Grafana lag dashboard, linked from every message.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

const fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
