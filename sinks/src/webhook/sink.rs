//! Posts alerts to a webhook.

use lagwatch_model::Notification;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Url};

use super::config::WebhookConfig;
use super::template::Template;
use crate::{http, Sink, SinkError};

/// The webhook sink: one client, the checked URL, headers and template.
pub struct WebhookSink {
    client: Client,
    url: Url,
    headers: HeaderMap,
    template: Option<Template>,
    label: String,
}

/// What a webhook configuration yields once checked.
struct Checked {
    url: Url,
    headers: HeaderMap,
    template: Option<Template>,
    label: String,
}

fn check(config: &WebhookConfig) -> Result<Checked, SinkError> {
    let url = http::endpoint("webhooks.url", config.url.expose(), true)?;
    let label = match &config.name {
        Some(name) => format!("webhook {name}"),
        None => format!("webhook {}", url.host_str().unwrap_or_default()),
    };
    if config.timeout.is_zero() {
        return Err(SinkError::Config(format!(
            "{label}: timeout must be greater than 0"
        )));
    }
    let mut headers = http::json_headers();
    for (name, value) in &config.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| SinkError::Config(format!("{label}: header name `{name}`: {e}")))?;
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|e| SinkError::Config(format!("{label}: header `{name}` value: {e}")))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    let template = config
        .template
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(|e| match e {
            SinkError::Config(message) => SinkError::Config(format!("{label}: {message}")),
            other => other,
        })?;
    Ok(Checked {
        url,
        headers,
        template,
        label,
    })
}

impl WebhookConfig {
    /// Checks URL, timeout, headers and template without building a client.
    pub fn check(&self) -> Result<(), SinkError> {
        check(self).map(|_| ())
    }
}

impl WebhookSink {
    /// Checks the configuration and builds the client (no connection is
    /// made until the first delivery).
    pub fn build(config: &WebhookConfig) -> Result<Self, SinkError> {
        let Checked {
            url,
            headers,
            template,
            label,
        } = check(config)?;
        let client = http::client("webhooks", config.timeout)?;
        tracing::info!(sink = "webhook", label = %label, scheme = url.scheme(), headers = config.headers.len(), templated = template.is_some(), "webhook sink configured");
        Ok(WebhookSink {
            client,
            url,
            headers,
            template,
            label,
        })
    }

    /// The request body for `alert`: the template, or the notification's
    /// JSON (never its recipients).
    pub fn body(&self, alert: &Notification) -> Result<String, SinkError> {
        match &self.template {
            Some(template) => template.render(alert),
            None => serde_json::to_string(alert)
                .map_err(|e| SinkError::Build(format!("{}: {e}", self.label))),
        }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, alert: &Notification) -> Result<(), SinkError> {
        let body = self.body(alert)?;
        http::post(
            &self.client,
            &self.url,
            &self.headers,
            body.into_bytes(),
            &self.label,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};
    use lagwatch_model::Secret;

    use super::*;

    fn config() -> WebhookConfig {
        WebhookConfig {
            name: None,
            url: Secret::new("http://127.0.0.1:9/hook?token=abc"),
            headers: BTreeMap::from([("Authorization".into(), Secret::new("Bearer xyz"))]),
            template: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn alert() -> Notification {
        let mut monitor = MonitorBuilder::new("g").id(7).lag_threshold(5).build();
        monitor.alerting.webhooks = vec!["https://hooks.example.com/team?token=s3cret".into()];
        AlertEventBuilder::firing(&monitor)
            .lag(1, 1)
            .ts_ms(1)
            .resolved()
            .notification()
    }

    #[test]
    fn default_body_is_the_alert() {
        let sink = WebhookSink::build(&config()).expect("build");
        let body = sink.body(&alert()).expect("body");
        let back: Notification = serde_json::from_str(&body).expect("alert JSON");
        assert_eq!(back.alert, alert().alert);
        assert!(
            !body.contains("oncall@example.com") && !body.contains("s3cret"),
            "{body}"
        );
    }

    #[test]
    fn bad_header_name_is_a_config_error() {
        let mut config = config();
        config.headers.insert("bad header".into(), Secret::new("v"));
        let error = WebhookSink::build(&config).err().expect("bad header");
        assert!(error.to_string().contains("bad header"), "{error}");
    }

    #[test]
    fn url_is_checked_and_not_echoed() {
        let mut config = config();
        config.url = Secret::new("hooks.example.com/secret-token");
        let error = WebhookSink::build(&config).err().expect("no scheme");
        assert!(!error.to_string().contains("secret-token"), "{error}");
    }

    #[test]
    fn config_keeps_secrets_out_of_debug() {
        let text = format!("{:?}", config());
        assert!(
            !text.contains("xyz") && !text.contains("token=abc"),
            "{text}"
        );
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let parsed: Result<WebhookConfig, _> = serde_json::from_value(serde_json::json!({
            "url": "http://x", "timeout": "2s", "tmplate": "{}"
        }));
        assert!(parsed.is_err());
        let ok: WebhookConfig = serde_json::from_value(serde_json::json!({
            "url": "http://x", "timeout": "2s", "headers": {"X-Key": "k"}
        }))
        .expect("valid");
        assert_eq!(ok.timeout, Duration::from_secs(2));
        assert!(ok.check().is_ok());
    }
}
