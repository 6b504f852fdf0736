//! Posts each alert to the webhook URLs its monitor lists
//! (`alerting.webhooks`), as the alert's JSON.
//!
//! Unlike a configured `[[webhooks]]` endpoint these URLs come from teams
//! through the monitor store, so they are checked again here and a bad one
//! is a permanent error (no retry), never a panic.

use std::time::Duration;

use lagwatch_model::AlertEvent;
use reqwest::Client;

use crate::{http, Sink, SinkError};

/// The per-monitor webhook sink: one client for every team URL.
pub struct MonitorWebhookSink {
    client: Client,
}

impl MonitorWebhookSink {
    pub fn build(timeout: Duration) -> Result<Self, SinkError> {
        Ok(MonitorWebhookSink {
            client: http::client("monitor webhooks", timeout)?,
        })
    }
}

impl Sink for MonitorWebhookSink {
    fn name(&self) -> &'static str {
        "monitor_webhook"
    }

    fn accepts(&self, alert: &AlertEvent) -> bool {
        !alert.webhooks.is_empty()
    }

    /// Posts to every URL; the first failure is returned (a retry posts to
    /// all of them again).
    async fn deliver(&self, alert: &AlertEvent) -> Result<(), SinkError> {
        let body = serde_json::to_vec(alert)
            .map_err(|e| SinkError::Build(format!("monitor webhook: {e}")))?;
        for raw in &alert.webhooks {
            let url = http::endpoint("monitor webhook", raw, true)
                .map_err(|e| SinkError::Rejected(e.to_string()))?;
            let label = format!("monitor webhook {}", url.host_str().unwrap_or_default());
            http::post(
                &self.client,
                &url,
                &http::json_headers(),
                body.clone(),
                &label,
            )
            .await?;
        }
        Ok(())
    }
}
