//! What a monitor must satisfy before it is stored: names, list sizes,
//! thresholds, durations, e-mail and webhook shapes. Kept on the model type
//! ([`NewMonitor::validate`]) so the CLI, the API and the store apply the
//! same rules; errors name the field as the API's JSON spells it.

use crate::{AlertSettings, GroupMatch, NewMonitor};

/// A value that is not acceptable, named the way the API's JSON names it
/// (`lag_threshold`, `alerting.webhooks`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// `field` refused with `message`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl NewMonitor {
    /// Checks everything a stored monitor must satisfy.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_monitor(self)
    }
}

/// The JSON text a list is stored as (its size is limited by the column).
fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// Longest accepted `for`: 7 days.
pub const MAX_FOR_SECS: u64 = 7 * 24 * 3_600;
/// Most topics, e-mail addresses or webhooks one monitor may list.
pub const MAX_LIST_ITEMS: usize = 50;
/// Longest accepted time-lag threshold or repeat interval: 30 days.
const MAX_ALERT_SECS: u64 = 30 * 24 * 3_600;
/// Size of the `webhooks` column (MySQL `VARCHAR(8192)`).
const MAX_WEBHOOKS_JSON: usize = 8_192;

/// Checks everything a monitor row must satisfy; the error names the field
/// as the API's JSON spells it.
fn validate_monitor(monitor: &NewMonitor) -> Result<(), FieldError> {
    if !is_valid_team_name(&monitor.team) {
        return Err(FieldError::new(
            "team",
            "must be 1 to 64 characters of a-z A-Z 0-9 . _ -",
        ));
    }
    check_name("cluster", &monitor.cluster)?;
    match monitor.group_match {
        GroupMatch::Exact => check_name("consumer_group", &monitor.consumer_group)?,
        GroupMatch::Regex => {
            check_name("consumer_group", &monitor.consumer_group)?;
            crate::compile_pattern(&monitor.consumer_group).map_err(|e| {
                FieldError::new("consumer_group", format!("is not a valid pattern: {e}"))
            })?;
        }
    }
    if let Some(pattern) = &monitor.topic_regex {
        if pattern.is_empty() {
            return Err(FieldError::new(
                "topic_regex",
                "must not be empty (leave it out or null instead)",
            ));
        }
        crate::compile_pattern(pattern)
            .map_err(|e| FieldError::new("topic_regex", format!("is not a valid pattern: {e}")))?;
    }
    if monitor.lag_threshold <= 0 {
        return Err(FieldError::new("lag_threshold", "must be greater than 0"));
    }
    if monitor.for_secs > MAX_FOR_SECS {
        return Err(FieldError::new(
            "for_secs",
            format!("must be at most {MAX_FOR_SECS} (7 days)"),
        ));
    }
    check_list("topics", &monitor.topics)?;
    for topic in &monitor.topics {
        if !is_valid_topic_name(topic) {
            return Err(FieldError::new(
                "topics",
                format!(
                    "`{}` is not a valid Kafka topic name (1-249 chars of a-z A-Z 0-9 . _ -, not . or ..)",
                    shorten(topic)
                ),
            ));
        }
    }
    check_list("emails", &monitor.emails)?;
    for email in &monitor.emails {
        if !is_plausible_email(email) {
            return Err(FieldError::new(
                "emails",
                format!("`{}` is not an e-mail address", shorten(email)),
            ));
        }
    }
    validate_alerting(&monitor.alerting)
}

fn validate_alerting(alerting: &AlertSettings) -> Result<(), FieldError> {
    let positive = |value: Option<i64>, field: &str| match value {
        Some(v) if v <= 0 => Err(FieldError::new(field, "must be greater than 0")),
        _ => Ok(()),
    };
    positive(alerting.topic_lag_threshold, "alerting.topic_lag_threshold")?;
    positive(alerting.total_lag_threshold, "alerting.total_lag_threshold")?;
    if let Some(secs) = alerting.time_lag_threshold_secs {
        if secs == 0 || secs > MAX_ALERT_SECS {
            return Err(FieldError::new(
                "alerting.time_lag_threshold_secs",
                format!("must be 1 to {MAX_ALERT_SECS} (30 days)"),
            ));
        }
    }
    if let Some(secs) = alerting.repeat_interval_secs {
        if !(60..=MAX_ALERT_SECS).contains(&secs) {
            return Err(FieldError::new(
                "alerting.repeat_interval_secs",
                format!("must be 60 to {MAX_ALERT_SECS} (30 days)"),
            ));
        }
    }
    check_list("alerting.webhooks", &alerting.webhooks)?;
    for url in &alerting.webhooks {
        if !is_webhook_url(url) {
            return Err(FieldError::new(
                "alerting.webhooks",
                format!(
                    "`{}` is not a webhook URL (http:// or https:// with a host, at most 2048 characters)",
                    shorten(url)
                ),
            ));
        }
        // Checked again at delivery, on the address connected to.
        if let Some(reason) = crate::address::webhook_url_refusal(url) {
            return Err(FieldError::new("alerting.webhooks", reason));
        }
    }
    if encode_list(&alerting.webhooks).chars().count() > MAX_WEBHOOKS_JSON {
        return Err(FieldError::new(
            "alerting.webhooks",
            format!("the URLs together must stay under {MAX_WEBHOOKS_JSON} characters"),
        ));
    }
    Ok(())
}

/// A cluster or group name: 1 to 255 bytes, not blank, no control
/// characters.
fn check_name(field: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() || value.len() > 255 {
        return Err(FieldError::new(field, "must be 1 to 255 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_list(field: &str, items: &[String]) -> Result<(), FieldError> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_LIST_ITEMS} entries"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        if items[..index].contains(item) {
            return Err(FieldError::new(
                field,
                format!("`{}` is listed twice", shorten(item)),
            ));
        }
    }
    Ok(())
}

/// A value quoted in an error message, cut to 80 characters.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 80 {
        value.to_string()
    } else {
        format!("{}...", value.chars().take(80).collect::<String>())
    }
}

/// Team names: 1..=64 chars of `[a-zA-Z0-9._-]` (they appear in URLs and
/// logs).
pub fn is_valid_team_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Kafka's topic name rule: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.`/`..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// `local@domain.tld`-shaped, no whitespace or control characters, at most
/// 254 characters.
fn is_plausible_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && !address.contains(char::is_whitespace)
        && !address.contains(char::is_control)
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// An absolute http(s) URL with a non-empty host and no whitespace.
fn is_webhook_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            url.len() <= 2048
                && !host.is_empty()
                && !url.contains(char::is_whitespace)
                && !url.contains(char::is_control)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        assert!(is_valid_topic_name("orders.v1_a-b"));
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_name(".."));
        assert!(!is_valid_topic_name(&"a".repeat(250)));
        assert!(!is_valid_topic_name("a/b"));
    }

    #[test]
    fn email_and_webhook_shapes() {
        assert!(is_plausible_email("a.b@example.com"));
        assert!(!is_plausible_email("a@b"));
        assert!(!is_plausible_email("a b@example.com"));
        assert!(is_webhook_url("http://127.0.0.1:8080/hook"));
        assert!(is_webhook_url("https://user:pw@hooks.example.com"));
        assert!(!is_webhook_url("https:///path"));
        assert!(!is_webhook_url("javascript:alert(1)"));
    }
}
