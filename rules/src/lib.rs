//! Alert rules as small pure state machines over samples.
//!
//! No I/O and no clock: every function takes the sample time, so tests
//! control time completely and the evaluator can replay history.
//!
//! # Layout
//! - [`config`]: the rules files (`rules/*.yaml`) — defaults, broker rules,
//!   group-pattern overrides — parsed strictly with file:line errors.
//! - [`threshold`]: Rule 1 — offset lag above a threshold for a duration.
//! - [`window`]: the bounded per-partition window of observations (ring
//!   buffer of committed offset, end offset and lag; ignores stale points,
//!   resets when the end offset rewinds).
//! - [`status`]: Rules 2–7 — Burrow-style partition status from a window
//!   (NO DATA, REWIND, STOP, STALL, WARN, OK), the severity-ordered
//!   [`Status`], and the group status (worst partition).
//! - `tests` (test builds only): the numbered, table-driven cases of the
//!   window rules and seeded property tests.

pub mod config;
pub mod status;
pub mod threshold;
pub mod window;

#[cfg(test)]
mod tests;

pub use config::{
    Aggregate, BrokerRule, Comparison, NotificationSettings, RuleSet, RulesError, StatusSettings,
    ThresholdDefaults,
};
pub use status::{evaluate, group_status, GroupStatus, Status, WindowRules};
pub use threshold::{ThresholdRule, ThresholdState, Transition};
pub use window::{Point, Push, Window};
