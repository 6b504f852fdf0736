//! Liveness: a panic anywhere fails the process instead of freezing one of
//! its parts.
//!
//! Why a panic hook: tokio swallows a panic in a spawned task and a thread
//! that panics just ends, so a watcher or a state reader could stop while
//! everything else — and `/healthz` — carries on. The hook logs the panic,
//! marks the process dead for `/healthz`, and cancels the topology's
//! shutdown token, so the process exits non-zero and its supervisor
//! (systemd, Kubernetes) restarts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// Whether the process is alive and well; cheap to clone.
#[derive(Clone, Debug)]
pub struct Liveness {
    panicked: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Liveness {
    /// Installs the panic hook (once per process; a later call replaces the
    /// token it cancels).
    pub fn install(shutdown: CancellationToken) -> Self {
        let liveness = Liveness {
            panicked: Arc::new(AtomicBool::new(false)),
            shutdown,
        };
        let hooked = liveness.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hooked.panicked.store(true, Ordering::SeqCst);
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string();
            tracing::error!(thread = %thread, panic = %info, "a task panicked; shutting down so that lagwatch is restarted instead of running with a dead part");
            hooked.shutdown.cancel();
            previous(info);
        }));
        liveness
    }

    /// Alive: nothing panicked and no shutdown has begun.
    pub fn alive(&self) -> bool {
        !self.panicked.load(Ordering::SeqCst) && !self.shutdown.is_cancelled()
    }

    /// Whether a panic ended the process.
    pub fn panicked(&self) -> bool {
        self.panicked.load(Ordering::SeqCst)
    }
}
