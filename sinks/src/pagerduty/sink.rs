//! Sends alerts to the PagerDuty Events API v2.

use lagwatch_model::{Notification, Secret};
use reqwest::header::HeaderMap;
use reqwest::{Client, Url};

use super::config::{PagerDutyConfig, PagerDutySeverity};
use super::event::event_body;
use crate::{http, Sink, SinkError};

/// The PagerDuty sink: one client, the endpoint and the routing key.
pub struct PagerDutySink {
    client: Client,
    url: Url,
    headers: HeaderMap,
    routing_key: Secret,
    severity: PagerDutySeverity,
    dashboard_url: Option<String>,
}

impl PagerDutyConfig {
    /// Checks URL, routing key and timeout without building a client.
    pub fn check(&self) -> Result<(), SinkError> {
        check(self).map(|_| ())
    }
}

fn check(config: &PagerDutyConfig) -> Result<Url, SinkError> {
    let url = http::endpoint("pagerduty.url", &config.url, false)?;
    if config.routing_key.expose().trim().is_empty() {
        return Err(SinkError::Config("pagerduty.routing_key is empty".into()));
    }
    if config.timeout.is_zero() {
        return Err(SinkError::Config(
            "pagerduty.timeout must be greater than 0".into(),
        ));
    }
    if let Some(dashboard) = &config.dashboard_url {
        http::endpoint("pagerduty.dashboard_url", dashboard, false)?;
    }
    Ok(url)
}

impl PagerDutySink {
    /// Checks the configuration and builds the client (no connection is
    /// made until the first delivery).
    pub fn build(config: &PagerDutyConfig) -> Result<Self, SinkError> {
        let url = check(config)?;
        let client = http::client("pagerduty", config.timeout)?;
        tracing::info!(sink = "pagerduty", url = %url, severity = config.severity.as_str(), "PagerDuty sink configured");
        Ok(PagerDutySink {
            client,
            url,
            headers: http::json_headers(),
            routing_key: config.routing_key.clone(),
            severity: config.severity,
            dashboard_url: config.dashboard_url.clone(),
        })
    }
}

impl Sink for PagerDutySink {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    async fn deliver(&self, alert: &Notification) -> Result<(), SinkError> {
        let body = event_body(
            alert,
            self.routing_key.expose(),
            self.severity,
            self.dashboard_url.as_deref(),
        );
        let body =
            serde_json::to_vec(&body).map_err(|e| SinkError::Build(format!("pagerduty: {e}")))?;
        http::post(&self.client, &self.url, &self.headers, body, "pagerduty").await
    }
}
