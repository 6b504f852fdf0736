//! Keeps the current monitor list fresh without restarts.
//!
//! Polls the store's cheap version fingerprint every `refresh` and re-reads
//! the monitors only when it changed. A store outage keeps the last known
//! list in service and is logged, so sampling never stops because the
//! database is down.

use std::sync::Arc;
use std::time::Duration;

use lagwatch_model::Monitor;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::MonitorStore;

/// Shared, always-current monitor list.
pub type MonitorList = watch::Receiver<Arc<Vec<Monitor>>>;

/// Loads the monitors once, then spawns the refresh loop.
pub async fn watch_monitors(
    store: MonitorStore,
    refresh: Duration,
    store_errors: Option<prometheus::IntCounter>,
    shutdown: CancellationToken,
) -> Result<MonitorList, crate::StoreError> {
    let initial = store.list().await?;
    let mut version = store.version().await?;
    tracing::info!(monitors = initial.len(), "loaded monitors");
    let (tx, rx) = watch::channel(Arc::new(initial));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(refresh);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let refreshed = async {
                let current = store.version().await?;
                if current == version {
                    return Ok(None);
                }
                let monitors = store.list().await?;
                Ok::<_, crate::StoreError>(Some((current, monitors)))
            }
            .await;
            match refreshed {
                Ok(Some((current, monitors))) => {
                    version = current;
                    tracing::info!(monitors = monitors.len(), "monitors changed, reloaded");
                    if tx.send(Arc::new(monitors)).is_err() {
                        break;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    if let Some(store_errors) = &store_errors {
                        store_errors.inc();
                    }
                    tracing::warn!(error = %error, "monitor store unavailable, keeping the last known monitors");
                }
            }
        }
    });
    Ok(rx)
}
