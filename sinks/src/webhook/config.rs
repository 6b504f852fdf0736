//! Webhook endpoint, headers and body settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use lagwatch_model::Secret;

/// One webhook (`[[webhooks]]` in the agent's configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Label in logs and errors; the URL's host when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// `http://` or `https://` endpoint. Redacted, as such URLs often
    /// carry a token.
    pub url: Secret,
    /// Extra request headers, e.g. `Authorization`; values are secrets.
    /// `Content-Type` defaults to `application/json`.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Body template with `{{field}}` placeholders (see
    /// [`Template`](super::Template)); the alert as JSON when absent.
    #[serde(default)]
    pub template: Option<String>,
    /// Whole-request timeout (connect, send, answer).
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
}

const fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
