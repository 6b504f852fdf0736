//! Keeps the set of unexpired silences fresh for the notifier.
//!
//! Polls the monitor store every `refresh`. A store outage keeps the last
//! known silences in force and is logged: an outage never un-silences an
//! alert, nor does it stop evaluation.

use std::time::Duration;

use crate::MonitorStore;
use lagwatch_model::Silence;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Loads the silences once (empty when the store is down) and spawns the
/// refresh loop.
pub async fn watch_silences(
    store: MonitorStore,
    refresh: Duration,
    shutdown: CancellationToken,
) -> watch::Receiver<Vec<Silence>> {
    let initial = match store.unexpired_silences().await {
        Ok(silences) => silences,
        Err(error) => {
            tracing::error!(error = %error, "cannot read silences; starting without, will retry");
            Vec::new()
        }
    };
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(refresh);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match store.unexpired_silences().await {
                Ok(silences) => {
                    if *tx.borrow() != silences && tx.send(silences).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "cannot refresh silences; keeping the last known ones")
                }
            }
        }
    });
    rx
}
