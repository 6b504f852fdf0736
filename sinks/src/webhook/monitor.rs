//! Posts each alert to the webhook URLs its monitor lists
//! (`alerting.webhooks`, the notification's recipients, looked up by the
//! evaluator when it sends), as the alert's JSON without its recipients.
//!
//! Unlike a configured `[[webhooks]]` endpoint these URLs come from teams
//! through the monitor store, so they are checked again here and a bad one
//! is a permanent error (no retry), never a panic. They may only reach
//! public addresses unless the operator allows more (`sinks.allow_private`,
//! see the `ssrf` module): a literal address is checked before the request,
//! a host name when the client resolves it, on the address connected to.

use std::sync::Arc;
use std::time::Duration;

use lagwatch_model::Notification;
use reqwest::Client;

use crate::ssrf::DestinationPolicy;
use crate::{http, Sink, SinkError};

/// The per-monitor webhook sink: one client for every team URL.
pub struct MonitorWebhookSink {
    client: Client,
    policy: Arc<DestinationPolicy>,
}

impl MonitorWebhookSink {
    pub fn build(timeout: Duration, policy: DestinationPolicy) -> Result<Self, SinkError> {
        let policy = Arc::new(policy);
        Ok(MonitorWebhookSink {
            client: http::team_client("monitor webhooks", timeout, Arc::clone(&policy))?,
            policy,
        })
    }
}

impl Sink for MonitorWebhookSink {
    fn name(&self) -> &'static str {
        "monitor_webhook"
    }

    fn accepts(&self, alert: &Notification) -> bool {
        !alert.recipients.webhooks.is_empty()
    }

    /// One destination per distinct URL, so one team's unreachable
    /// receiver does not hold up another's. The key is a digest of the URL:
    /// keys are recorded in the shared alert-state topic, URLs are secrets.
    fn destinations(&self, alert: &Notification) -> Vec<String> {
        let mut keys: Vec<String> = alert
            .recipients
            .webhooks
            .iter()
            .map(|url| url_key(url))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Posts to every URL; the first failure is returned.
    async fn deliver(&self, alert: &Notification) -> Result<(), SinkError> {
        for key in self.destinations(alert) {
            self.deliver_to(alert, &key).await?;
        }
        Ok(())
    }

    /// Posts to the URL whose key is `key`.
    async fn deliver_to(&self, alert: &Notification, key: &str) -> Result<(), SinkError> {
        let Some(raw) = alert
            .recipients
            .webhooks
            .iter()
            .find(|url| url_key(url) == key)
        else {
            return Err(SinkError::Rejected(
                "monitor webhook: the monitor no longer lists this URL".into(),
            ));
        };
        let body = serde_json::to_vec(alert)
            .map_err(|e| SinkError::Build(format!("monitor webhook: {e}")))?;
        let url = http::endpoint("monitor webhook", raw, true)
            .map_err(|e| SinkError::Rejected(e.to_string()))?;
        let host = url.host_str().unwrap_or_default();
        let label = format!("monitor webhook {host}");
        if let Err(refused) = self.policy.check_url(&url) {
            tracing::warn!(monitor_id = alert.alert.monitor_id, host, %refused, "team webhook refused");
            return Err(SinkError::Rejected(format!("{label}: {refused}")));
        }
        http::post(&self.client, &url, &http::json_headers(), body, &label).await
    }
}

/// A short, stable digest of a team webhook URL: names its outbox lane
/// without revealing it.
fn url_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
