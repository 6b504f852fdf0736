//! `lagwatch silences add|list|expire`: mute alerts from the command line.

use std::path::Path;
use std::time::Duration;

use lagwatch_model::{now_ms, NewSilence};
use lagwatch_store::MonitorStore;

use crate::cli::{OutputFormat, SilencesCommand};
use crate::config::AppConfig;
use crate::table::{plain, Table};

pub async fn run(
    config: &AppConfig,
    config_path: &Path,
    command: SilencesCommand,
) -> anyhow::Result<()> {
    let store = crate::store_open::open_existing(config, config_path).await?;
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
        SilencesCommand::List { team, all, output } => {
            let silences = store.list_silences(team.as_deref(), all).await?;
            if output.format() == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&silences)?);
                return Ok(());
            }
            let mut table = Table::new(&[
                "id", "team", "monitor", "cluster", "group", "rule", ">ends in", "comment",
            ]);
            let now = now_ms();
            for s in silences {
                let any = |v: Option<String>| v.unwrap_or_else(|| "*".into());
                let ends_in = if s.ends_at_ms <= now {
                    "expired".to_string()
                } else {
                    let secs = u64::try_from((s.ends_at_ms - now) / 1_000).unwrap_or(0);
                    humantime::format_duration(Duration::from_secs(secs)).to_string()
                };
                table.row(vec![
                    s.id.to_string(),
                    s.team,
                    any(s.monitor_id.map(|id| id.to_string())),
                    any(s.cluster),
                    any(s.consumer_group),
                    any(s.rule),
                    ends_in,
                    s.comment,
                ]);
            }
            print!("{}", table.render(&plain));
        }
        SilencesCommand::Expire { id } => match store.expire_silence(id, "cli").await? {
            Some(_) => println!("expired silence {id}"),
            None => anyhow::bail!("no silence with id {id}"),
        },
    }
    Ok(())
}
