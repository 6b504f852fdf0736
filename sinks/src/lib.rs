//! Alert sinks: where alert notifications are delivered.
//!
//! Each sink lives in its own module with its config and its delivery code.
//! [`SinkRunner`] drives one sink from a bounded channel, retrying with
//! backoff, so a slow or dead sink never loses an alert and never blocks
//! another sink.
//!
//! # Layout
//! - [`email`]: SMTP e-mail through lettre (plain, STARTTLS, TLS, auth).
//! - [`runner`]: the retrying delivery loop shared by all sinks.

pub mod email;
pub mod runner;

pub use email::{EmailConfig, EmailSink, SmtpSecurity};
pub use lagwatch_model::Secret;
pub use runner::{SinkMetrics, SinkRunner};

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
}

/// Something that can deliver one alert notification.
pub trait Sink: Send + Sync + 'static {
    /// Short name for logs and metrics (`email`, `webhook`, ...).
    fn name(&self) -> &'static str;

    /// Delivers one notification; an error means "retry later".
    fn deliver(
        &self,
        alert: &AlertEvent,
    ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send;
}
