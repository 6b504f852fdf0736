//! `lagwatch tokens add|list|rm`: team API tokens from the command line
//! (the bootstrap path: the first team token needs no admin token).

use std::path::Path;

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
        TokensCommand::Add { team } => {
            let token = lagwatch_api::generate_token()?;
            let stored = store
                .add_token(&team, &token.sha256_hex, &token.last4)
                .await?;
            tracing::info!(token_id = stored.id, team = %stored.team, last4 = %stored.last4, "team token issued");
            eprintln!(
                "token {} for team {} (shown only now; store it safely):",
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
            let mut table = Table::new(&["id", "team", "created", "last4"]);
            for t in tokens {
                table.row(vec![
                    t.id.to_string(),
                    t.team,
                    crate::status::format_time_ms(t.created_at_ms),
                    t.last4,
                ]);
            }
            print!("{}", table.render(&plain));
        }
        TokensCommand::Rm { id } => {
            if store.remove_token(id).await? {
                println!("revoked token {id}");
            } else {
                anyhow::bail!("no token with id {id}");
            }
        }
    }
    Ok(())
}
