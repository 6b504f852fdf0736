//! E-mail notifications over SMTP.

mod config;
mod message;
mod sink;

pub use config::{EmailConfig, SmtpSecurity};
pub use sink::EmailSink;
