//! Alert sinks: where alert notifications are delivered.
//!
//! Each sink lives in its own module with its config and its delivery code.
//! [`SinkRunner`] drives one sink from a bounded channel, retrying with
//! backoff, so a slow or dead sink never loses an alert and never blocks
//! another sink.
//!
//! # Layout
//! - [`email`]: SMTP e-mail through lettre (plain, STARTTLS, TLS, auth).
//! - [`webhook`]: a JSON POST to any URL, the alert itself or a template.
//! - [`slack`]: a Slack incoming-webhook message.
//! - [`pagerduty`]: PagerDuty Events API v2 trigger / resolve.
//! - [`ssrf`]: where team-provided webhook URLs may point.
//! - [`runner`]: the retrying delivery loop shared by all sinks.
//!
//! The three HTTP sinks share one client setup and one answer policy
//! (`http` module): a 2xx is delivered; a 3xx (redirects are not followed,
//! so configured secret headers never travel to another host) or a 4xx
//! other than 408, 425 and 429 is [`SinkError::Rejected`], which the runner
//! does not retry, since the same request would be refused again; anything
//! else (no connection, timeout, 408/425/429, 5xx) is retried.

pub mod email;
mod http;
mod links;
pub mod pagerduty;
pub mod runner;
pub mod slack;
pub mod ssrf;
pub mod webhook;

pub use email::{EmailConfig, EmailSink, SmtpSecurity};
pub use lagwatch_model::Secret;
pub use pagerduty::{PagerDutyConfig, PagerDutySeverity, PagerDutySink};
pub use runner::{Delivery, SinkMetrics, SinkRunner};
pub use slack::{SlackConfig, SlackSink};
pub use ssrf::{DestinationPolicy, SinksConfig};
pub use webhook::{MonitorWebhookSink, WebhookConfig, WebhookSink};

use lagwatch_model::AlertEvent;

/// Errors at the sinks' boundary.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid sink configuration: {0}")]
    Config(String),
    #[error("cannot build notification: {0}")]
    Build(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The receiver refused this notification for good (e.g. HTTP 400,
    /// 401, 403, 404): retrying the same request cannot succeed.
    #[error("notification rejected: {0}")]
    Rejected(String),
}

impl SinkError {
    /// Whether retrying is pointless; the runner gives up at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Rejected(_))
    }
}

/// Something that can deliver one alert notification.
pub trait Sink: Send + Sync + 'static {
    /// Short name for logs and metrics (`email`, `webhook`, ...).
    fn name(&self) -> &'static str;

    /// Whether this sink has anything to do with `alert` (e.g. the
    /// per-monitor webhook sink only when the monitor lists URLs); an alert
    /// it does not accept counts as done, not as sent.
    fn accepts(&self, _alert: &AlertEvent) -> bool {
        true
    }

    /// Delivers one notification; an error means "retry later" unless it
    /// is [permanent](SinkError::is_permanent).
    fn deliver(
        &self,
        alert: &AlertEvent,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send;
}
