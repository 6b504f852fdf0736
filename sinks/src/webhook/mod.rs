//! Generic webhook: a JSON POST of each alert to a URL.

mod config;
mod monitor;
mod sink;
mod template;

pub use config::WebhookConfig;
pub use monitor::MonitorWebhookSink;
pub use sink::WebhookSink;
pub use template::Template;
