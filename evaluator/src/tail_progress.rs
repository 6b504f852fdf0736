//! How far the alert-state tail is, for `/readyz` and the self-alerts.
//!
//! Why it matters: every instance judges alerts against the records the
//! tail has applied (who fired what, what is still owed, which broker
//! alert inhibits). A tail thread that died, or one stuck behind the
//! topic, makes the next owner of a group page again or miss a resolve —
//! silently, unless someone asks. The tail thread itself writes these
//! figures (no network call at ask time): a heartbeat every loop, and the
//! records it has not applied yet, measured against the high watermarks
//! its own fetches last saw.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Shared figures of one alert-state tail; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TailProgress(Arc<Figures>);

#[derive(Debug, Default)]
struct Figures {
    heartbeat_ms: AtomicI64,
    behind: AtomicI64,
    behind_since_ms: AtomicI64,
    /// The high watermark (summed) when the current behind period began.
    behind_target: AtomicI64,
}

/// The tail's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailSnapshot {
    /// Wall time of the tail thread's latest loop; 0 before the first.
    pub heartbeat_ms: i64,
    /// Records on the topic the tail has not applied yet.
    pub behind: i64,
    /// Since when it has been behind (0 when it is not).
    pub behind_since_ms: i64,
}

impl TailProgress {
    /// The tail thread is alive at `now_ms`.
    pub fn beat(&self, now_ms: i64) {
        self.0.heartbeat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The tail is at `at` of `high` (offsets summed over partitions) at
    /// `now_ms`. Behind counts from when the oldest record not yet applied
    /// was first seen: it restarts once the tail has passed every record
    /// that was there then, so a steady stream of new records the tail
    /// keeps up with never adds up to "behind for long".
    pub fn observe(&self, at: i64, high: i64, now_ms: i64) {
        let figures = &self.0;
        figures.behind.store((high - at).max(0), Ordering::Relaxed);
        let since = figures.behind_since_ms.load(Ordering::Relaxed);
        let target = figures.behind_target.load(Ordering::Relaxed);
        if high <= at {
            figures.behind_since_ms.store(0, Ordering::Relaxed);
        } else if since == 0 || at >= target {
            figures.behind_since_ms.store(now_ms, Ordering::Relaxed);
            figures.behind_target.store(high, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> TailSnapshot {
        TailSnapshot {
            heartbeat_ms: self.0.heartbeat_ms.load(Ordering::Relaxed),
            behind: self.0.behind.load(Ordering::Relaxed),
            behind_since_ms: self.0.behind_since_ms.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_counts_from_the_oldest_record_not_yet_applied() {
        let progress = TailProgress::default();
        progress.beat(5);
        progress.observe(10, 13, 100);
        progress.observe(11, 14, 200);
        let snapshot = progress.snapshot();
        assert_eq!(
            (
                snapshot.heartbeat_ms,
                snapshot.behind,
                snapshot.behind_since_ms
            ),
            (5, 3, 100)
        );
        // Past everything there at 100, new records since: a new period.
        progress.observe(13, 15, 300);
        assert_eq!(progress.snapshot().behind_since_ms, 300);
        progress.observe(15, 15, 400);
        assert_eq!(progress.snapshot().behind_since_ms, 0);
    }
}
