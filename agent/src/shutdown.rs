//! Graceful shutdown with a deadline.
//!
//! The first SIGTERM (or Ctrl-C) cancels the topology: intake stops, the
//! history stage flushes what it holds and commits what ClickHouse stored,
//! the evaluator records delivery state and commits, sinks stop; the HTTP
//! server stops accepting and gives requests in flight
//! `http.shutdown_grace` (shorter than `shutdown_timeout`, checked at
//! start) before dropping their connections. If that takes longer than
//! `shutdown_timeout`, or a second signal arrives, the process exits at
//! once — what was not committed is read again at the next start, and what
//! was not delivered is still owed in the alert state.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::AppConfig;
use crate::topology::{self, Roles};

/// Exit code of a shutdown cut short (deadline or second signal).
pub const CUT_SHORT: i32 = 130;

/// Runs the topology until a signal, then shuts it down within the
/// configured deadline.
pub async fn serve_until_signalled(
    config: AppConfig,
    roles: Roles,
    api: bool,
) -> anyhow::Result<()> {
    let deadline = config.shutdown_timeout;
    let shutdown = CancellationToken::new();
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(deadline = ?deadline, "shutdown requested; a second signal stops at once");
        signalled.cancel();
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::warn!("second signal: stopping now");
            }
            _ = tokio::time::sleep(deadline) => {
                tracing::warn!(deadline = ?deadline, "shutdown did not finish within the deadline; stopping now");
            }
        }
        std::process::exit(CUT_SHORT);
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

/// The default deadline of a graceful shutdown.
pub const fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
