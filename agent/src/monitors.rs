//! `lagwatch monitors add|list|rm`: manage monitors without writing SQL.

use lagwatch_model::{AlertSettings, GroupMatch, NewMonitor};
use lagwatch_store::MonitorStore;

use crate::cli::MonitorsCommand;
use crate::config::AppConfig;

/// How command-line changes appear in the audit log.
const CLI_ACTOR: &str = "cli";

pub async fn run(config: &AppConfig, command: MonitorsCommand) -> anyhow::Result<()> {
    let store = MonitorStore::connect(&config.store.url).await?;
    store.migrate().await?;
    match command {
        MonitorsCommand::Add {
            team,
            cluster,
            group,
            topics,
            threshold,
            for_duration,
            emails,
            isolation,
            time_lag,
            group_regex,
            topic_regex,
            topic_threshold,
            total_threshold,
            time_lag_threshold,
            repeat_interval,
            webhooks,
        } => {
            if !config.clusters.contains_key(&cluster) {
                anyhow::bail!(
                    "cluster `{cluster}` is not configured; configured clusters: {}",
                    config
                        .clusters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let monitor = store
                .add_audited(
                    &NewMonitor {
                        team,
                        cluster,
                        consumer_group: group,
                        group_match: if group_regex {
                            GroupMatch::Regex
                        } else {
                            GroupMatch::Exact
                        },
                        topics,
                        topic_regex,
                        lag_threshold: threshold,
                        for_secs: for_duration.as_secs(),
                        emails,
                        isolation,
                        time_lag,
                        alerting: AlertSettings {
                            topic_lag_threshold: topic_threshold,
                            total_lag_threshold: total_threshold,
                            time_lag_threshold_secs: time_lag_threshold.map(|d| d.as_secs()),
                            repeat_interval_secs: repeat_interval.map(|d| d.as_secs()),
                            webhooks,
                        },
                    },
                    CLI_ACTOR,
                )
                .await?;
            println!("added monitor {}", monitor.id);
        }
        MonitorsCommand::List { json } => {
            let monitors = store.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&monitors)?);
            } else {
                println!(
                    "{:<5} {:<12} {:<10} {:<24} {:<20} {:>10} {:>6}  emails",
                    "id", "team", "cluster", "group", "topics", "threshold", "for"
                );
                for m in monitors {
                    let topics = if m.topics.is_empty() {
                        "*".to_string()
                    } else {
                        m.topics.join(",")
                    };
                    println!(
                        "{:<5} {:<12} {:<10} {:<24} {:<20} {:>10} {:>5}s  {}",
                        m.id,
                        m.team,
                        m.cluster,
                        m.consumer_group,
                        topics,
                        m.lag_threshold,
                        m.for_secs,
                        m.emails.join(",")
                    );
                }
            }
        }
        MonitorsCommand::Rm { id } => {
            if store.remove_audited(id, None, CLI_ACTOR).await?.is_some() {
                println!("removed monitor {id}");
            } else {
                anyhow::bail!("no monitor with id {id}");
            }
        }
    }
    store.close().await;
    Ok(())
}
