//! The `lagwatch` binary: parses the command line and runs the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use lagwatch::cli::{Cli, Command};
use lagwatch::config::AppConfig;
use lagwatch::topology::Roles;
use lagwatch::{config_path, monitors, silences, status, tokens};

fn main() -> ExitCode {
    lagwatch::allocator::limit_malloc_arenas();
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "lagwatch",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: human text, coloured only when stderr is a terminal
/// (and `NO_COLOR` is unset), so a log file or journal gets no escape codes;
/// `LAGWATCH_LOG_FORMAT=json` writes one JSON object per line for machines.
/// `LAGWATCH_LOG` sets the filter (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_env("LAGWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("LAGWATCH_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        format => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init();
            if let Ok(other) = format {
                if other != "text" {
                    tracing::warn!(
                        value = other,
                        "LAGWATCH_LOG_FORMAT is neither `text` nor `json`; writing text"
                    );
                }
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = config_path::resolve(cli.config.as_deref())?;
    let config = AppConfig::load(&path)?;
    tracing::debug!(config = %path.display(), "configuration loaded");
    match cli.command {
        Command::Completions { .. } => Ok(()),
        Command::CheckConfig => {
            let rules = config.evaluator.load_rules()?;
            println!(
                "{}: ok ({} cluster(s), metrics topic {} on {}, store {}, {} rules file(s) + defaults: {} broker rule(s), {} group override(s))",
                path.display(),
                config.clusters.len(),
                config.metrics_topic.topic,
                config.metrics_topic.cluster,
                lagwatch_store::redact_url(&config.store.url),
                config.evaluator.rules_files.len(),
                rules.broker_rules.len(),
                rules.group_overrides.len()
            );
            Ok(())
        }
        Command::Migrate => {
            if let Some(file) = lagwatch::store_open::sqlite_file(&config.store.url) {
                println!("monitor store: {}", file.display());
            }
            let store = lagwatch_store::MonitorStore::connect(&config.store.url).await?;
            store.migrate().await?;
            println!("monitor store migrated");
            if let Some(clickhouse) = &config.clickhouse {
                let applied = lagwatch_history::migrate(clickhouse).await?;
                println!("ClickHouse migrated (newly applied: {applied:?})");
            }
            Ok(())
        }
        Command::Monitors(command) => monitors::run(&config, &path, command).await,
        Command::Silences(command) => silences::run(&config, &path, command).await,
        Command::Tokens(command) => tokens::run(&config, &path, command).await,
        Command::Status(args) => status::run(&config, &path, args).await,
        Command::Collector => {
            serve(
                config,
                Roles {
                    collector: true,
                    evaluator: false,
                    history: false,
                },
                false,
            )
            .await
        }
        Command::Evaluator => {
            serve(
                config,
                Roles {
                    collector: false,
                    evaluator: true,
                    history: true,
                },
                false,
            )
            .await
        }
        Command::History => {
            serve(
                config,
                Roles {
                    collector: false,
                    evaluator: false,
                    history: true,
                },
                false,
            )
            .await
        }
        Command::All => {
            let api = config.api.enabled;
            serve(
                config,
                Roles {
                    collector: true,
                    evaluator: true,
                    history: true,
                },
                api,
            )
            .await
        }
        Command::Api => {
            serve(
                config,
                Roles {
                    collector: false,
                    evaluator: false,
                    history: false,
                },
                true,
            )
            .await
        }
    }
}

async fn serve(config: AppConfig, roles: Roles, api: bool) -> anyhow::Result<()> {
    lagwatch::shutdown::serve_until_signalled(config, roles, api).await
}
