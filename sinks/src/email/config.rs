//! SMTP connection and message settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use lagwatch_model::Secret;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain TCP (local relays, test servers).
    #[default]
    None,
    /// Plain TCP upgraded with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// E-mail sink settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP server port.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// SMTP AUTH user; no authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address (`lagwatch <lagwatch@example.com>` or a bare address).
    pub from: String,
    /// Per-delivery timeout.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Base URL of the Grafana lag dashboard, linked from every mail.
    #[serde(default)]
    pub dashboard_url: Option<String>,
}

const fn default_port() -> u16 {
    25
}
const fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
