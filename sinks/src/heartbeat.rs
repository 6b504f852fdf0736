//! The watchdog heartbeat: a POST to an external dead-man's switch every
//! interval, so that a lagwatch that is down entirely — which cannot alert
//! about itself — is noticed by the switch not hearing from it.

use std::time::Duration;

use lagwatch_model::Secret;
use reqwest::{Client, Url};

use crate::{http, SinkError};

/// Posts heartbeats to one operator-configured URL (trusted, like the
/// other operator sinks: it may be internal).
pub struct Heartbeat {
    client: Client,
    url: Url,
}

impl Heartbeat {
    pub fn build(url: &Secret, timeout: Duration) -> Result<Self, SinkError> {
        Ok(Heartbeat {
            client: http::client("self_alerts.heartbeat_url", timeout)?,
            url: http::endpoint("self_alerts.heartbeat_url", url.expose(), true)?,
        })
    }

    /// One heartbeat with `body` (the readiness summary).
    pub async fn send(&self, body: &serde_json::Value) -> Result<(), SinkError> {
        let payload =
            serde_json::to_vec(body).map_err(|e| SinkError::Build(format!("heartbeat: {e}")))?;
        http::post(
            &self.client,
            &self.url,
            &http::json_headers(),
            payload,
            "heartbeat",
        )
        .await
    }
}
