//! The lagwatch agent: configuration, wiring and HTTP endpoint shared by the
//! `lagwatch` binary and the end-to-end tests.
//!
//! # Layout
//! - [`cli`]: command-line parsing.
//! - [`config`]: the layered, validated configuration.
//! - [`config_path`]: where the configuration file is found.
//! - [`store_open`]: opens an existing monitor store for the CLI commands.
//! - [`status`]: `lagwatch status`, what lagwatch sees per group.
//! - [`table`]: aligned text tables for the listings.
//! - [`topology`]: wires collector, evaluator, sinks and history together.
//! - [`http`]: `/metrics`, `/healthz` and `/readyz`.
//! - [`readiness`]: each stage's verdict for `/readyz` and the self-alerts.
//! - [`self_alerts`]: lagwatch pages about its own failing checks, and
//!   sends the watchdog heartbeat.
//! - [`shutdown`]: graceful shutdown within `shutdown_timeout`; a second
//!   signal stops at once.
//! - [`supervision`]: a panic anywhere fails the process, never a silent freeze.
//! - [`monitors`]: the `monitors add|list|rm` commands.
//! - [`silences`]: the `silences add|list|expire` commands.
//! - [`tokens`]: the `tokens add|list|rm` commands (team API tokens).

pub mod allocator;
pub mod cli;
pub mod config;
pub mod config_path;
pub mod http;
pub mod monitors;
pub mod readiness;
pub mod self_alerts;
pub mod shutdown;
pub mod silences;
pub mod status;
pub mod store_open;
pub mod supervision;
pub mod table;
pub mod tokens;
pub mod topology;
