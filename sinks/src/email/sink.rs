//! Delivers alert e-mails through lettre's async SMTP transport.

use lagwatch_model::Notification;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{EmailConfig, SmtpSecurity};
use super::message::{html_body, text_body};
use crate::{Sink, SinkError};

/// The e-mail sink: one pooled SMTP transport.
pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    dashboard_url: Option<String>,
}

impl EmailSink {
    /// Validates the configuration and builds the transport (no connection
    /// is made until the first delivery).
    pub fn build(config: &EmailConfig) -> Result<Self, SinkError> {
        config.check_auth_security().map_err(SinkError::Config)?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| SinkError::Config(format!("email.from `{}`: {e}", config.from)))?;
        let builder = match config.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| SinkError::Config(format!("email starttls: {e}")))?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| SinkError::Config(format!("email tls: {e}")))?,
        };
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some(user) = &config.username {
            let password = config
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(EmailSink {
            transport: builder.build(),
            from,
            dashboard_url: config.dashboard_url.clone(),
        })
    }

    fn message(&self, alert: &Notification) -> Result<Message, SinkError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(alert.summary());
        for address in &alert.recipients.emails {
            let to: Mailbox = address
                .parse()
                // The same address fails the same way on every attempt.
                .map_err(|e| SinkError::Rejected(format!("recipient `{address}`: {e}")))?;
            builder = builder.to(to);
        }
        let dashboard = self.dashboard_url.as_deref();
        builder
            .multipart(MultiPart::alternative_plain_html(
                text_body(alert, dashboard),
                html_body(alert, dashboard),
            ))
            .map_err(|e| SinkError::Build(e.to_string()))
    }
}

impl Sink for EmailSink {
    fn name(&self) -> &'static str {
        "email"
    }

    /// Only alerts with recipients: one without is nothing to deliver, and
    /// is neither logged nor counted as sent.
    fn accepts(&self, alert: &Notification) -> bool {
        !alert.recipients.emails.is_empty()
    }

    async fn deliver(&self, alert: &Notification) -> Result<(), SinkError> {
        let message = self.message(alert)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::Delivery(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};

    use super::*;
    use crate::{Outbox, RetryPolicy, SinkMetrics};

    fn sink() -> EmailSink {
        EmailSink::build(&EmailConfig {
            host: "127.0.0.1".into(),
            // Nothing listens on port 1: a delivery attempt would fail.
            port: 1,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            allow_plaintext_auth: false,
            from: "lagwatch <lagwatch@localhost>".into(),
            timeout: Duration::from_secs(1),
            dashboard_url: None,
        })
        .expect("sink")
    }

    /// An alert without recipients is nothing to deliver: no destination,
    /// nothing queued, nothing counted as sent or undelivered.
    #[tokio::test]
    async fn an_alert_without_recipients_is_neither_queued_nor_counted() {
        let metrics = SinkMetrics::register(&prometheus::Registry::new()).expect("metrics");
        let (mut builder, mut reports) = Outbox::builder(metrics.clone(), RetryPolicy::default());
        tokio::spawn(builder.add(sink()));
        let outbox = builder.build();
        let monitor = MonitorBuilder::new("billing").emails(&[]).build();
        let alert = AlertEventBuilder::firing(&monitor).notification();
        assert!(outbox.destinations(&alert).is_empty());
        outbox.submit(&alert, 1, &["email".to_string()]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(reports.try_recv().is_err(), "nothing delivered or refused");
        assert_eq!(metrics.sent.with_label_values(&["email"]).get(), 0);
        assert_eq!(metrics.undelivered.with_label_values(&["email"]).get(), 0);
        assert!(outbox.status().snapshot().is_empty());

        let mailed =
            AlertEventBuilder::firing(&MonitorBuilder::new("billing").build()).notification();
        assert_eq!(outbox.destinations(&mailed), vec!["email".to_string()]);
    }
}
