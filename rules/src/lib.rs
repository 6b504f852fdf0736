//! Alert rules as small pure state machines over samples.
//!
//! No I/O and no clock: every function takes the sample time, so tests
//! control time completely and the evaluator can replay history.
//!
//! # Layout
//! - [`threshold`]: Rule 1 — offset lag above a threshold for a duration.

pub mod threshold;

pub use threshold::{ThresholdRule, ThresholdState, Transition};
