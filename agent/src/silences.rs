//! `lagwatch silences add|list|expire`: mute alerts from the command line.

use lagwatch_model::{now_ms, NewSilence};
use lagwatch_store::MonitorStore;

use crate::cli::SilencesCommand;
use crate::config::AppConfig;

pub async fn run(config: &AppConfig, command: SilencesCommand) -> anyhow::Result<()> {
    let store = MonitorStore::connect(&config.store.url).await?;
    store.migrate().await?;
    let result = execute(&store, command).await;
    store.close().await;
    result
}

async fn execute(store: &MonitorStore, command: SilencesCommand) -> anyhow::Result<()> {
    match command {
        SilencesCommand::Add {
            team,
            duration,
            monitor,
            cluster,
            group,
            rule,
            comment,
        } => {
            let now = now_ms();
            let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
            let silence = store
                .add_silence(&NewSilence {
                    team,
                    monitor_id: monitor,
                    cluster,
                    consumer_group: group,
                    rule,
                    starts_at_ms: now,
                    ends_at_ms: now.saturating_add(millis),
                    created_by: "cli".into(),
                    comment,
                })
                .await?;
            println!("added silence {}", silence.id);
        }
        SilencesCommand::List { all, json } => {
            let silences = store.list_silences(None, all).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&silences)?);
                return Ok(());
            }
            println!(
                "{:<5} {:<12} {:<8} {:<10} {:<20} {:<14} {:>10}  comment",
                "id", "team", "monitor", "cluster", "group", "rule", "ends in"
            );
            let now = now_ms();
            for s in silences {
                let any = |v: Option<String>| v.unwrap_or_else(|| "*".into());
                let ends_in = if s.ends_at_ms <= now {
                    "expired".to_string()
                } else {
                    format!("{}s", (s.ends_at_ms - now) / 1_000)
                };
                println!(
                    "{:<5} {:<12} {:<8} {:<10} {:<20} {:<14} {:>10}  {}",
                    s.id,
                    s.team,
                    any(s.monitor_id.map(|id| id.to_string())),
                    any(s.cluster),
                    any(s.consumer_group),
                    any(s.rule),
                    ends_in,
                    s.comment
                );
            }
        }
        SilencesCommand::Expire { id } => match store.expire_silence(id).await? {
            Some(_) => println!("expired silence {id}"),
            None => anyhow::bail!("no silence with id {id}"),
        },
    }
    Ok(())
}
