//! Command-line interface.
//!
//! The same flags mean the same thing on every subcommand: `--team` narrows
//! (or, on `add`, owns), `--output table|json` (`--json` for short) picks
//! the format of every listing, and `--config` is optional because the file
//! is searched for (see [`crate::config_path`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kafka consumer-lag monitoring and alerting.
#[derive(Debug, Parser)]
#[command(name = "lagwatch", version, about)]
pub struct Cli {
    /// Configuration file (TOML); `LAGWATCH__SECTION__KEY` variables override
    /// it. Without it: ./lagwatch.toml, then ~/.config/lagwatch/lagwatch.toml.
    #[arg(long, short, env = "LAGWATCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// Pretty JSON for scripts.
    Json,
}

/// `--output table|json` and its shorthand `--json`, shared by every listing.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Same as `--output json`.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
}

impl OutputArgs {
    /// The format asked for.
    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.output
        }
    }
}

/// Arguments of `lagwatch status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Only this team's monitors.
    #[arg(long)]
    pub team: Option<String>,
    /// Only this consumer group (the group id as reported, not a pattern).
    #[arg(long)]
    pub group: Option<String>,
    /// Also print every partition.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: sample monitored groups and publish to the metrics topic.
    Collector,
    /// Run the evaluator: consume samples, raise alerts (and, with
    /// `[clickhouse]`, the history stage too, as before).
    Evaluator,
    /// Run only the history stage: its own consumer group on the metrics
    /// and alert-event topics, writing to ClickHouse.
    History,
    /// Run collector, evaluator, history and the team API in one process
    /// (the embedded default; `api.enabled = false` leaves the API out).
    All,
    /// Run only the team REST API and web page on `http.listen`.
    Api,
    /// Apply monitor-store and ClickHouse schema migrations, then exit.
    Migrate,
    /// Validate the configuration file and exit.
    CheckConfig,
    /// Register, list and remove monitors.
    #[command(subcommand)]
    Monitors(MonitorsCommand),
    /// Issue, list and revoke team API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Mute a team's matching alerts for a while; list and expire silences.
    #[command(subcommand)]
    Silences(SilencesCommand),
    /// What lagwatch sees now, per consumer group (from the ClickHouse history).
    Status(StatusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token for a team and print it (shown only this once).
    Add {
        /// The team the token acts for.
        #[arg(long)]
        team: String,
        /// The token stops working this long from now (e.g. `90d`); never
        /// without.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// List tokens (id, team, creation, expiry and last use, last 4 characters).
    List {
        /// Only this team's tokens.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Revoke a token by id.
    Rm { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Create a silence that starts now.
    Add {
        /// Team whose alerts are muted.
        #[arg(long)]
        team: String,
        /// How long (e.g. 30m, 2h; at most 90 days).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Only alerts of this monitor.
        #[arg(long)]
        monitor: Option<i64>,
        /// Only alerts on this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Only alerts of this consumer group.
        #[arg(long)]
        group: Option<String>,
        /// Only alerts of this rule (lag_threshold, lag_status, ...).
        #[arg(long)]
        rule: Option<String>,
        /// Why (shown in listings).
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List silences that have not expired (with --all, expired ones too).
    List {
        /// Only this team's silences.
        #[arg(long)]
        team: Option<String>,
        /// Include expired silences.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// End a silence now.
    Expire { id: i64 },
}

// Parsed once per process; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
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
        /// Also alert when one topic's summed lag exceeds this.
        #[arg(long)]
        topic_threshold: Option<i64>,
        /// Also alert when the group's summed lag exceeds this.
        #[arg(long)]
        total_threshold: Option<i64>,
        /// Also alert when a partition is further behind than this (e.g. 5m).
        #[arg(long, value_parser = humantime::parse_duration)]
        time_lag_threshold: Option<Duration>,
        /// Re-send a still-firing alert after this long (at least 1m).
        #[arg(long, value_parser = humantime::parse_duration)]
        repeat_interval: Option<Duration>,
        /// Webhook URL that receives the alerts as JSON (repeat for several).
        #[arg(long = "webhook")]
        webhooks: Vec<String>,
    },
    /// List monitors with their patterns and every threshold.
    List {
        /// Only this team's monitors.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Remove a monitor by id.
    Rm { id: i64 },
}
