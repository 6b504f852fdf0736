//! The backlog of each destination, for `/readyz` and the self-alerts:
//! how many notifications wait, since when, and the last error.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One destination's backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DestinationStatus {
    /// Notifications waiting for this destination.
    pub pending: usize,
    /// Wall time (ms) the oldest waiting one was queued.
    pub oldest_queued_ms: Option<i64>,
    /// The latest delivery error, cleared by the next success.
    pub last_error: Option<String>,
    /// Wall time (ms) of the first failure since the last success.
    pub failing_since_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Backlog {
    /// Queue time (ms) → how many waiting notifications were queued then.
    queued: BTreeMap<i64, usize>,
    last_error: Option<String>,
    failing_since_ms: Option<i64>,
}

/// Shared view of every destination's backlog; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OutboxStatus {
    inner: Arc<Mutex<HashMap<String, Backlog>>>,
}

impl OutboxStatus {
    /// Every destination that has or had work, by id.
    pub fn snapshot(&self) -> BTreeMap<String, DestinationStatus> {
        let Ok(inner) = self.inner.lock() else {
            return BTreeMap::new();
        };
        inner
            .iter()
            .map(|(destination, backlog)| {
                let status = DestinationStatus {
                    pending: backlog.queued.values().sum(),
                    oldest_queued_ms: backlog.queued.keys().next().copied(),
                    last_error: backlog.last_error.clone(),
                    failing_since_ms: backlog.failing_since_ms,
                };
                (destination.clone(), status)
            })
            .collect()
    }

    pub(super) fn add(&self, destination: &str, queued_ms: i64) {
        self.with(destination, |backlog| {
            *backlog.queued.entry(queued_ms).or_insert(0) += 1;
        });
    }

    pub(super) fn remove(&self, destination: &str, queued_ms: i64) {
        self.with(destination, |backlog| {
            if let Some(count) = backlog.queued.get_mut(&queued_ms) {
                *count -= 1;
                if *count == 0 {
                    backlog.queued.remove(&queued_ms);
                }
            }
        });
    }

    pub(super) fn failing(&self, destination: &str, error: &str) {
        self.with(destination, |backlog| {
            backlog.last_error = Some(error.to_string());
            backlog
                .failing_since_ms
                .get_or_insert_with(lagwatch_model::now_ms);
        });
    }

    pub(super) fn recovered(&self, destination: &str) {
        self.with(destination, |backlog| {
            backlog.last_error = None;
            backlog.failing_since_ms = None;
        });
    }

    fn with(&self, destination: &str, change: impl FnOnce(&mut Backlog)) {
        if let Ok(mut inner) = self.inner.lock() {
            change(inner.entry(destination.to_string()).or_default());
        }
    }
}
