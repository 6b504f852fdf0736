//! `lagwatch tokens add|list|rm`: team API tokens from the command line
//! (the bootstrap path: the first team token needs no admin token). Issue
//! and revoke are audited with the actor `cli`.

use std::path::Path;

use lagwatch_model::now_ms;
use lagwatch_store::MonitorStore;

use crate::cli::{OutputFormat, TokensCommand};
use crate::config::AppConfig;
use crate::table::{plain, Table};

pub async fn run(
    config: &AppConfig,
    config_path: &Path,
    command: TokensCommand,
) -> anyhow::Result<()> {
    let store = crate::store_open::open_existing(config, config_path).await?;
    let result = execute(&store, command).await;
    store.close().await;
    result
}

async fn execute(store: &MonitorStore, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Add { team, expires } => {
            let expires_at_ms = match expires {
                Some(after) => {
                    let millis = i64::try_from(after.as_millis())
                        .map_err(|_| anyhow::anyhow!("--expires is too far in the future"))?;
                    if millis == 0 {
                        anyhow::bail!("--expires must be longer than 0");
                    }
                    Some(now_ms().saturating_add(millis))
                }
                None => None,
            };
            let token = lagwatch_api::generate_token()?;
            let stored = store
                .add_token(&team, &token.sha256_hex, &token.last4, expires_at_ms, "cli")
                .await?;
            tracing::info!(token_id = stored.id, team = %stored.team, last4 = %stored.last4, expires_at_ms = ?stored.expires_at_ms, "team token issued");
            let until = stored
                .expires_at_ms
                .map(|at| format!(", expires {}", crate::status::format_time_ms(at)))
                .unwrap_or_default();
            eprintln!(
                "token {} for team {}{until} (shown only now; store it safely):",
                stored.id, stored.team
            );
            println!("{}", token.token);
        }
        TokensCommand::List { team, output } => {
            let tokens = store.list_tokens(team.as_deref()).await?;
            if output.format() == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            let now = now_ms();
            let mut table = Table::new(&["id", "team", "created", "expires", "last used", "last4"]);
            for t in tokens {
                let expires = match t.expires_at_ms {
                    None => "never".to_string(),
                    Some(at) if at <= now => {
                        format!("expired {}", crate::status::format_time_ms(at))
                    }
                    Some(at) => crate::status::format_time_ms(at),
                };
                table.row(vec![
                    t.id.to_string(),
                    t.team,
                    crate::status::format_time_ms(t.created_at_ms),
                    expires,
                    t.last_used_at_ms
                        .map_or_else(|| "never".to_string(), crate::status::format_time_ms),
                    t.last4,
                ]);
            }
            print!("{}", table.render(&plain));
        }
        TokensCommand::Rm { id } => {
            if store.remove_token(id, "cli").await?.is_some() {
                println!("revoked token {id}");
            } else {
                anyhow::bail!("no token with id {id}");
            }
        }
    }
    Ok(())
}
