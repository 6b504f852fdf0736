//! One log line per change of a cluster's health, never one per cycle or
//! request: "cluster unavailable" with the first error when the metadata
//! request of a cycle starts failing, "cluster available again" when it
//! answers again. The wire client logs per-broker reachability the same
//! way; error samples carry each cycle's reason.

use std::sync::Mutex;

#[derive(Debug, Default)]
pub(crate) struct OutageLog {
    /// The error that started the current outage, if any.
    failing: Mutex<Option<String>>,
}

impl OutageLog {
    pub(crate) fn failed(&self, bootstrap: &str, error: &str) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        if failing.is_none() {
            tracing::warn!(
                bootstrap,
                error,
                "kafka cluster unavailable; samples carry the error"
            );
            *failing = Some(error.to_string());
        }
    }

    pub(crate) fn answered(&self, bootstrap: &str) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        if let Some(error) = failing.take() {
            tracing::info!(bootstrap, after = %error, "kafka cluster available again");
        }
    }
}
