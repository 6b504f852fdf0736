//! SMTP connection and message settings, and the one rule about them that
//! is checked before any connection: SMTP AUTH is not sent over a plaintext
//! connection (the password would cross the network in clear) unless the
//! operator says the relay is trusted (`allow_plaintext_auth`).

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
    /// Allow SMTP AUTH over `security = "none"` (a trusted local relay);
    /// otherwise a username without TLS is refused at start.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
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

impl EmailConfig {
    /// Refuses settings that would send credentials in clear: a `username`
    /// with `security = "none"` unless `allow_plaintext_auth`.
    pub fn check_auth_security(&self) -> Result<(), String> {
        if self.username.is_some()
            && self.security == SmtpSecurity::None
            && !self.allow_plaintext_auth
        {
            return Err(format!(
                "email.username is set but email.security = \"none\": SMTP AUTH to {}:{} would send \
                 the password in clear text; use security = \"starttls\" or \"tls\", or set \
                 email.allow_plaintext_auth = true for a trusted local relay",
                self.host, self.port
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(security: SmtpSecurity, username: Option<&str>, allow: bool) -> EmailConfig {
        EmailConfig {
            host: "smtp.example".into(),
            port: 25,
            security,
            username: username.map(String::from),
            password: username.map(|_| Secret::new("hunter2")),
            allow_plaintext_auth: allow,
            from: "lagwatch@example.com".into(),
            timeout: default_timeout(),
            dashboard_url: None,
        }
    }

    #[test]
    fn auth_over_plaintext_is_refused_unless_allowed() {
        let error = config(SmtpSecurity::None, Some("alerts"), false)
            .check_auth_security()
            .expect_err("refused");
        assert!(error.contains("allow_plaintext_auth"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        config(SmtpSecurity::None, Some("alerts"), true)
            .check_auth_security()
            .expect("explicitly allowed");
        config(SmtpSecurity::None, None, false)
            .check_auth_security()
            .expect("no AUTH, nothing to protect");
        for security in [SmtpSecurity::Starttls, SmtpSecurity::Tls] {
            config(security, Some("alerts"), false)
                .check_auth_security()
                .expect("AUTH over TLS");
        }
    }

    #[test]
    fn allow_plaintext_auth_defaults_to_false() {
        let parsed: EmailConfig =
            serde_json::from_str(r#"{"host": "h", "from": "a@b", "username": "u"}"#)
                .expect("parses");
        assert!(!parsed.allow_plaintext_auth);
        assert!(parsed.check_auth_security().is_err());
    }
}
