//! The lagwatch agent: configuration, wiring and HTTP endpoint shared by the
//! `lagwatch` binary and the end-to-end tests.
//!
//! # Layout
//! - [`cli`]: command-line parsing.
//! - [`config`]: the layered, validated configuration.
//! - [`topology`]: wires collector, evaluator, sinks and history together.
//! - [`http`]: `/metrics` and `/healthz`.
//! - [`monitors`]: the `monitors add|list|rm` commands.
//! - [`silences`]: the `silences add|list|expire` commands.
//! - [`tokens`]: the `tokens add|list|rm` commands (team API tokens).

pub mod cli;
pub mod config;
pub mod http;
pub mod monitors;
pub mod silences;
pub mod tokens;
pub mod topology;
