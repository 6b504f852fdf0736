//! The `lagwatch` binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use lagwatch::cli::{Cli, Command};
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch::{monitors, silences, tokens};

fn main() -> ExitCode {
    lagwatch_collector::allocator::limit_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LAGWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = AppConfig::load(&cli.config)?;
    match cli.command {
        Command::CheckConfig => {
            let rules = config.evaluator.load_rules()?;
            println!(
                "{}: ok ({} cluster(s), metrics topic {} on {}, store {}, {} rules file(s) + defaults: {} broker rule(s), {} group override(s))",
                cli.config.display(),
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
            let store = lagwatch_store::MonitorStore::connect(&config.store.url).await?;
            store.migrate().await?;
            println!("monitor store migrated");
            if let Some(clickhouse) = &config.clickhouse {
                let applied = lagwatch_history::migrate(clickhouse).await?;
                println!("ClickHouse migrated (newly applied: {applied:?})");
            }
            Ok(())
        }
        Command::Monitors(command) => monitors::run(&config, command).await,
        Command::Silences(command) => silences::run(&config, command).await,
        Command::Tokens(command) => tokens::run(&config, command).await,
        Command::Collector => {
            serve(
                config,
                Roles {
                    collector: true,
                    evaluator: false,
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
                },
                true,
            )
            .await
        }
    }
}

async fn serve(config: AppConfig, roles: Roles, api: bool) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signal.cancel();
    });
    topology::run_with_api(config, roles, api, shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
