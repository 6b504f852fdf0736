//! `lagwatch monitors add|list|rm`: manage monitors without writing SQL.

use std::path::Path;
use std::time::Duration;

use lagwatch_model::{AlertSettings, GroupMatch, Isolation, Monitor, NewMonitor, TimeLagMode};
use lagwatch_store::MonitorStore;

use crate::cli::{MonitorsCommand, OutputFormat};
use crate::config::AppConfig;
use crate::table::{plain, Table};

/// How command-line changes appear in the audit log.
const CLI_ACTOR: &str = "cli";

pub async fn run(
    config: &AppConfig,
    config_path: &Path,
    command: MonitorsCommand,
) -> anyhow::Result<()> {
    let store = crate::store_open::open_existing(config, config_path).await?;
    let result = execute(config, &store, command).await;
    store.close().await;
    result
}

async fn execute(
    config: &AppConfig,
    store: &MonitorStore,
    command: MonitorsCommand,
) -> anyhow::Result<()> {
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
        MonitorsCommand::List { team, output } => {
            let monitors: Vec<Monitor> = store
                .list()
                .await?
                .into_iter()
                .filter(|m| team.as_deref().is_none_or(|t| m.team == t))
                .collect();
            match output.format() {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&monitors)?),
                OutputFormat::Table => print!("{}", table(&monitors).render(&plain)),
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
    Ok(())
}

/// The listing: patterns written `/like this/`, every threshold (lag,
/// `for`, per-topic and total lag, time lag, repeat interval), `-` for unset
/// ones (the rules files decide those).
fn table(monitors: &[Monitor]) -> Table {
    let mut table = Table::new(&[
        "id",
        "team",
        "cluster",
        "group",
        "topics",
        ">lag",
        ">for",
        ">topic-lag",
        ">total-lag",
        ">time-lag",
        ">repeat",
        "reads",
        "notify",
    ]);
    for m in monitors {
        let group = match m.group_match {
            GroupMatch::Exact => m.consumer_group.clone(),
            GroupMatch::Regex => format!("/{}/", m.consumer_group),
        };
        let mut topics = m.topics.clone();
        if let Some(regex) = &m.topic_regex {
            topics.push(format!("/{regex}/"));
        }
        let topics = if topics.is_empty() {
            "(all)".to_string()
        } else {
            topics.join(",")
        };
        let number = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let duration = |secs: Option<u64>| {
            secs.map_or_else(
                || "-".to_string(),
                |s| humantime::format_duration(Duration::from_secs(s)).to_string(),
            )
        };
        let mut reads = Vec::new();
        if m.isolation != Isolation::default() {
            reads.push(m.isolation.as_str());
        }
        if m.time_lag != TimeLagMode::default() {
            reads.push(if m.time_lag == TimeLagMode::Exact {
                "exact-time-lag"
            } else {
                m.time_lag.as_str()
            });
        }
        let mut notify = m.emails.clone();
        if !m.alerting.webhooks.is_empty() {
            notify.push(format!("{} webhook(s)", m.alerting.webhooks.len()));
        }
        table.row(vec![
            m.id.to_string(),
            m.team.clone(),
            m.cluster.clone(),
            group,
            topics,
            m.lag_threshold.to_string(),
            duration(Some(m.for_secs)),
            number(m.alerting.topic_lag_threshold),
            number(m.alerting.total_lag_threshold),
            duration(m.alerting.time_lag_threshold_secs),
            duration(m.alerting.repeat_interval_secs),
            if reads.is_empty() {
                "-".to_string()
            } else {
                reads.join(",")
            },
            if notify.is_empty() {
                "-".to_string()
            } else {
                notify.join(",")
            },
        ]);
    }
    table
}
