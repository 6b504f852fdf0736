//! Posts alerts to a Slack incoming webhook.

use lagwatch_model::Notification;
use reqwest::header::HeaderMap;
use reqwest::{Client, Url};

use super::config::SlackConfig;
use super::message::message_text;
use crate::{http, Sink, SinkError};

/// The Slack sink: one client and the webhook URL.
pub struct SlackSink {
    client: Client,
    url: Url,
    headers: HeaderMap,
    dashboard_url: Option<String>,
}

impl SlackConfig {
    /// Checks the URLs and the timeout without building a client.
    pub fn check(&self) -> Result<(), SinkError> {
        check(self).map(|_| ())
    }
}

fn check(config: &SlackConfig) -> Result<Url, SinkError> {
    let url = http::endpoint("slack.webhook_url", config.webhook_url.expose(), true)?;
    if config.timeout.is_zero() {
        return Err(SinkError::Config(
            "slack.timeout must be greater than 0".into(),
        ));
    }
    if let Some(dashboard) = &config.dashboard_url {
        http::endpoint("slack.dashboard_url", dashboard, false)?;
    }
    Ok(url)
}

impl SlackSink {
    /// Checks the configuration and builds the client (no connection is
    /// made until the first delivery).
    pub fn build(config: &SlackConfig) -> Result<Self, SinkError> {
        let url = check(config)?;
        let client = http::client("slack", config.timeout)?;
        tracing::info!(
            sink = "slack",
            host = url.host_str().unwrap_or_default(),
            "Slack sink configured"
        );
        Ok(SlackSink {
            client,
            url,
            headers: http::json_headers(),
            dashboard_url: config.dashboard_url.clone(),
        })
    }

    /// The JSON payload for `alert`: `{"text": ...}`.
    pub fn payload(&self, alert: &Notification) -> serde_json::Value {
        serde_json::json!({
            "text": message_text(alert, self.dashboard_url.as_deref()),
        })
    }
}

impl Sink for SlackSink {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn deliver(&self, alert: &Notification) -> Result<(), SinkError> {
        let body = serde_json::to_vec(&self.payload(alert))
            .map_err(|e| SinkError::Build(format!("slack: {e}")))?;
        http::post(&self.client, &self.url, &self.headers, body, "slack").await
    }
}
