//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Kafka consumer-lag monitoring and alerting.
#[derive(Debug, Parser)]
#[command(name = "lagwatch", version, about)]
pub struct Cli {
    /// Configuration file (TOML); `LAGWATCH__SECTION__KEY` variables override it.
    #[arg(
        long,
        short,
        env = "LAGWATCH_CONFIG",
        default_value = "lagwatch.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: sample monitored groups and publish to the metrics topic.
    Collector,
    /// Run the evaluator: consume samples, raise alerts, write history.
    Evaluator,
    /// Run collector and evaluator in one process (the embedded default).
    All,
    /// Apply monitor-store and ClickHouse schema migrations, then exit.
    Migrate,
    /// Validate the configuration file and exit.
    CheckConfig,
    /// Register, list and remove monitors.
    #[command(subcommand)]
    Monitors(MonitorsCommand),
}

#[derive(Debug, Subcommand)]
pub enum MonitorsCommand {
    /// Register a monitor.
    Add {
        /// Owning team.
        #[arg(long)]
        team: String,
        /// Cluster name from the configuration.
        #[arg(long)]
        cluster: String,
        /// Consumer group id (a regular expression with --group-regex).
        #[arg(long)]
        group: String,
        /// Treat --group as a regular expression matched against whole group
        /// ids; every matching group is watched and alerted separately.
        #[arg(long)]
        group_regex: bool,
        /// Topic to watch (repeat for several; none and no --topic-regex =
        /// every topic of the group).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Also watch topics whose whole name matches this regular expression.
        #[arg(long)]
        topic_regex: Option<String>,
        /// Alert when a partition's lag exceeds this many messages.
        #[arg(long)]
        threshold: i64,
        /// How long the lag must stay above the threshold (e.g. 30s, 5m).
        #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "0s")]
        for_duration: Duration,
        /// E-mail recipient (repeat for several).
        #[arg(long = "email")]
        emails: Vec<String>,
        /// How the group reads: read_uncommitted (lag vs high watermark) or
        /// read_committed (lag vs last stable offset).
        #[arg(long, default_value = "read_uncommitted")]
        isolation: lagwatch_model::Isolation,
        /// Time lag: `estimate` (from end-offset history) or `exact` (from the
        /// timestamp of the record at the committed offset).
        #[arg(long, default_value = "estimate")]
        time_lag: lagwatch_model::TimeLagMode,
    },
    /// List monitors.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a monitor by id.
    Rm { id: i64 },
}
