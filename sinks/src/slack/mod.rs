//! Slack notifications through an incoming webhook.

mod config;
mod message;
mod sink;

pub use config::SlackConfig;
pub use message::{message_text, MAX_LISTED_PARTITIONS};
pub use sink::SlackSink;
