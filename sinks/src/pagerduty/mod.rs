//! PagerDuty incidents through the Events API v2.

mod config;
mod event;
mod sink;

pub use config::{PagerDutyConfig, PagerDutySeverity, DEFAULT_EVENTS_URL};
pub use event::event_body;
pub use sink::PagerDutySink;
