//! Generic webhook: a JSON POST of each alert to a URL.

mod config;
mod sink;
mod template;

pub use config::WebhookConfig;
pub use sink::WebhookSink;
pub use template::Template;
