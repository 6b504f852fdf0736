//! `lagwatch tokens add|list|rm`: team API tokens from the command line
//! (the bootstrap path: the first team token needs no admin token).

use lagwatch_store::MonitorStore;

use crate::cli::TokensCommand;
use crate::config::AppConfig;

pub async fn run(config: &AppConfig, command: TokensCommand) -> anyhow::Result<()> {
    let store = MonitorStore::connect(&config.store.url).await?;
    store.migrate().await?;
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
        TokensCommand::List { team, json } => {
            let tokens = store.list_tokens(team.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            println!("{:<5} {:<20} {:<15} last4", "id", "team", "created_at_ms");
            for t in tokens {
                println!(
                    "{:<5} {:<20} {:<15} {}",
                    t.id, t.team, t.created_at_ms, t.last4
                );
            }
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
