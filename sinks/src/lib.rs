//! Alert sinks: where alert notifications are delivered.
//!
//! Each sink lives in its own module with its config and its delivery code.
//! The [`outbox`] gives every destination its own queue and retry state, so
//! a slow or dead destination never loses an alert and never delays
//! another.
//!
//! # Layout
//! - [`email`]: SMTP e-mail through lettre (plain, STARTTLS, TLS, auth).
//! - [`webhook`]: a JSON POST to any URL, the alert itself or a template.
//! - [`slack`]: a Slack incoming-webhook message.
//! - [`pagerduty`]: PagerDuty Events API v2 trigger / resolve.
//! - [`outbox`]: per-destination queues, retried until delivered.
//! - [`heartbeat`]: the watchdog POST to an external dead-man's switch.
//! - [`ssrf`]: where team-provided webhook URLs may point.
//! - [`runner`]: sink metrics and a bounded-attempt runner for tests.
//!
//! Sinks take a [`Notification`]: the alert, plus its monitor's own
//! recipients, which only the e-mail and team webhook sinks use and which
//! no sink ever puts into a payload (a configured `[[webhooks]]`, Slack or
//! PagerDuty never learns a team's addresses or URLs).
//!
//! The three HTTP sinks share one client setup and one answer policy
//! (`http` module): a 2xx is delivered; a 3xx (redirects are not followed,
//! so configured secret headers never travel to another host) or a 4xx
//! other than 408, 425 and 429 is [`SinkError::Rejected`], which the runner
//! does not retry, since the same request would be refused again; anything
//! else (no connection, timeout, 408/425/429, 5xx) is retried.

pub mod email;
pub mod heartbeat;
mod http;
mod links;
pub mod outbox;
pub mod pagerduty;
pub mod runner;
pub mod slack;
pub mod ssrf;
mod status_word;
pub mod webhook;

pub use email::{EmailConfig, EmailSink, SmtpSecurity};
pub use lagwatch_model::Secret;
pub use outbox::{Outbox, OutboxBuilder, OutboxStatus, Outcome, Report, RetryPolicy};
pub use pagerduty::{PagerDutyConfig, PagerDutySeverity, PagerDutySink};
pub use runner::{SinkMetrics, SinkRunner};
pub use slack::{SlackConfig, SlackSink};
pub use ssrf::{DestinationPolicy, SinksConfig};
pub use webhook::{MonitorWebhookSink, WebhookConfig, WebhookSink};

use lagwatch_model::Notification;

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
    /// per-monitor webhook sink only when it has recipient URLs); an alert
    /// it does not accept counts as done, not as sent.
    fn accepts(&self, _alert: &Notification) -> bool {
        true
    }

    /// Delivers one notification; an error means "retry later" unless it
    /// is [permanent](SinkError::is_permanent).
    fn deliver(
        &self,
        alert: &Notification,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send;

    /// The sink's destinations for `alert`, each with its own queue in the
    /// outbox: by default the sink itself (an empty key) when it
    /// [accepts](Sink::accepts) the alert. A sink that posts to several
    /// places (team webhook URLs) names each so that one failing place
    /// does not hold up the others. Keys end up in the alert-state topic:
    /// never put a secret in one.
    fn destinations(&self, alert: &Notification) -> Vec<String> {
        if self.accepts(alert) {
            vec![String::new()]
        } else {
            Vec::new()
        }
    }

    /// Delivers `alert` to the destination `key` (from
    /// [`Sink::destinations`]).
    fn deliver_to(
        &self,
        alert: &Notification,
        key: &str,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send {
        let _ = key;
        self.deliver(alert)
    }
}
