//! A small tokio runtime owned by one offset source, so the synchronous
//! [`crate::source::OffsetSource`] calls can drive the async wire client.
//!
//! The trait is called from the poller's blocking threads and, in tests,
//! straight from async tests. `Handle::block_on` would panic inside a
//! runtime, so each call is spawned on this runtime and the calling thread
//! waits for the answer on a channel: that works from any thread, inside a
//! runtime or not. The wire client's connections live on this runtime too,
//! so they survive between cycles whatever thread asks.

use std::future::Future;
use std::time::Duration;

use crate::source::{RequestError, SourceError};

/// Worker threads of a source's runtime: the requests are IO-bound.
const WORKER_THREADS: usize = 2;

/// Margin over the request timeout after which a waiting caller gives up
/// even if the request task never answers (it always should: every wire
/// call is bounded by the request timeout).
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// A private multi-threaded runtime; shut down in the background on drop,
/// which is allowed from inside another runtime.
pub(crate) struct SourceRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    /// How long a caller waits for an answer at most.
    wait: Duration,
}

impl SourceRuntime {
    pub(crate) fn new(request_timeout: Duration) -> Result<Self, SourceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("lagwatch-kafka-wire")
            .enable_all()
            .build()
            .map_err(|e| SourceError::Client(format!("cannot start the request runtime: {e}")))?;
        Ok(SourceRuntime {
            runtime: Some(runtime),
            wait: request_timeout.saturating_mul(2) + WAIT_MARGIN,
        })
    }

    /// Runs `future` on the runtime and blocks the calling thread until it
    /// completes. `operation` names the request in the error when there is
    /// no answer (runtime gone, task aborted, wait exceeded).
    pub(crate) fn run<T, F>(&self, operation: &'static str, future: F) -> Result<T, RequestError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(RequestError::new(
                operation,
                "the request runtime is shut down",
            ));
        };
        let (answer, wait) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(future.await);
        });
        wait.recv_timeout(self.wait).map_err(|error| {
            RequestError::new(
                operation,
                format!("no answer from the request task: {error}"),
            )
        })
    }
}

impl Drop for SourceRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
