//! Delivers alert e-mails through lettre's async SMTP transport.

use lagwatch_model::AlertEvent;
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

    fn message(&self, alert: &AlertEvent) -> Result<Message, SinkError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(alert.summary());
        for address in &alert.emails {
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
    fn accepts(&self, alert: &AlertEvent) -> bool {
        !alert.emails.is_empty()
    }

    async fn deliver(&self, alert: &AlertEvent) -> Result<(), SinkError> {
        let message = self.message(alert)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::Delivery(e.to_string()))
    }
}
