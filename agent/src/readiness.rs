//! What `/readyz` answers and what the self-alerts watch: each stage's own
//! view of whether it is doing its job, with the figures that say why.
//!
//! Why per stage and with figures: "ok" from a process whose pager is
//! silent is the worst answer an alerting agent can give. Each stage that
//! runs here registers its probe; the answer is `200` only when every
//! probe is fine, and the JSON body names the stage, the cluster or the
//! destination that is not.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lagwatch_collector::CollectorMetrics;
use lagwatch_evaluator::tail_progress::{TailProgress, TailSnapshot};
use lagwatch_evaluator::EvaluatorMetrics;
use lagwatch_history::HistoryMetrics;
use lagwatch_model::now_ms;
use lagwatch_sinks::OutboxStatus;
use serde::Serialize;

/// When a stage counts as failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A cluster not sampled for this long.
    pub not_sampled: Duration,
    /// Evaluator: more metrics-topic messages than this not yet read.
    pub evaluator_backlog: i64,
    /// History: messages not stored while the newest stored one is older
    /// than this.
    pub history_behind: Duration,
    /// A destination with a notification waiting longer than this.
    pub undelivered: Duration,
    /// The alert-state tail behind the topic for longer than this.
    pub alert_state_behind: Duration,
}

impl Limits {
    /// Limits for a collector sampling every `interval`.
    pub fn for_interval(interval: Duration) -> Self {
        Limits {
            not_sampled: (interval * 3).max(Duration::from_secs(30)),
            evaluator_backlog: 10_000,
            history_behind: Duration::from_secs(300),
            undelivered: Duration::from_secs(300),
            alert_state_behind: Duration::from_secs(30),
        }
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub ok: bool,
    /// What is wrong, in words; absent when fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The figures behind the verdict.
    pub detail: serde_json::Value,
}

/// The whole answer: checks by name (`collector/<cluster>`, `evaluator`,
/// `evaluator/alert-state`, `history`, `sink/<destination>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: BTreeMap<String, Check>,
}

#[derive(Default)]
struct Probes {
    collector: Option<(CollectorMetrics, Vec<String>)>,
    evaluator: Option<EvaluatorMetrics>,
    /// The history stage's metrics and when it started being watched.
    history: Option<(HistoryMetrics, i64)>,
    outbox: Option<OutboxStatus>,
    alert_state: Option<TailProgress>,
}

/// The stages' probes; cheap to clone, filled in as stages start.
#[derive(Clone)]
pub struct Readiness {
    probes: Arc<RwLock<Probes>>,
    limits: Limits,
}

impl Readiness {
    pub fn new(limits: Limits) -> Self {
        Readiness {
            probes: Arc::default(),
            limits,
        }
    }

    pub fn watch_collector(&self, metrics: CollectorMetrics, clusters: Vec<String>) {
        if let Ok(mut probes) = self.probes.write() {
            probes.collector = Some((metrics, clusters));
        }
    }

    pub fn watch_evaluator(&self, metrics: EvaluatorMetrics) {
        if let Ok(mut probes) = self.probes.write() {
            probes.evaluator = Some(metrics);
        }
    }

    pub fn watch_history(&self, metrics: HistoryMetrics) {
        if let Ok(mut probes) = self.probes.write() {
            probes.history = Some((metrics, now_ms()));
        }
    }

    /// The evaluator's alert-state tail (see [`TailProgress`]).
    pub fn watch_alert_state(&self, progress: TailProgress) {
        if let Ok(mut probes) = self.probes.write() {
            probes.alert_state = Some(progress);
        }
    }

    pub fn watch_outbox(&self, status: OutboxStatus) {
        if let Ok(mut probes) = self.probes.write() {
            probes.outbox = Some(status);
        }
    }

    /// Every registered stage's verdict now.
    pub fn report(&self) -> Report {
        let now = now_ms();
        let mut checks = BTreeMap::new();
        let Ok(probes) = self.probes.read() else {
            return Report {
                ready: false,
                checks,
            };
        };
        if let Some((metrics, clusters)) = &probes.collector {
            for cluster in clusters {
                let last_s = metrics.last_success.with_label_values(&[cluster]).get();
                checks.insert(
                    format!("collector/{cluster}"),
                    collector_check(last_s, now, self.limits.not_sampled),
                );
            }
        }
        if let Some(metrics) = &probes.evaluator {
            let backlog = metrics.backlog_messages.get();
            let judged_s = metrics.judged_until.get();
            let ok = backlog <= self.limits.evaluator_backlog;
            checks.insert(
                "evaluator".into(),
                Check {
                    ok,
                    problem: (!ok)
                        .then(|| format!("{backlog} metrics-topic messages not yet judged")),
                    detail: serde_json::json!({
                        "backlog_messages": backlog,
                        "judged_until_ms": (judged_s > 0).then_some(judged_s * 1_000),
                    }),
                },
            );
        }
        if let Some((metrics, since_ms)) = &probes.history {
            checks.insert(
                "history".into(),
                history_check(
                    &HistoryFigures {
                        backlog: metrics.backlog_messages.get(),
                        buffered: metrics.rows_buffered.get(),
                        write_errors: metrics.write_errors.get(),
                        stored_s: metrics.stored_until.get(),
                        watched_since_ms: *since_ms,
                    },
                    now,
                    self.limits.history_behind,
                ),
            );
        }
        if let Some(progress) = &probes.alert_state {
            checks.insert(
                "evaluator/alert-state".into(),
                alert_state_check(progress.snapshot(), now, self.limits.alert_state_behind),
            );
        }
        if let Some(outbox) = &probes.outbox {
            let limit = i64::try_from(self.limits.undelivered.as_millis()).unwrap_or(i64::MAX);
            for (destination, status) in outbox.snapshot() {
                let oldest_age_ms = status.oldest_queued_ms.map(|at| now - at);
                let ok = oldest_age_ms.is_none_or(|age| age <= limit);
                checks.insert(
                    format!("sink/{destination}"),
                    Check {
                        ok,
                        problem: (!ok).then(|| {
                            format!(
                                "{} notifications undelivered, oldest {} s: {}",
                                status.pending,
                                oldest_age_ms.unwrap_or(0) / 1_000,
                                status.last_error.as_deref().unwrap_or("still trying")
                            )
                        }),
                        detail: serde_json::json!({
                            "pending": status.pending,
                            "oldest_undelivered_ms": status.oldest_queued_ms,
                            "failing_since_ms": status.failing_since_ms,
                            "last_error": status.last_error,
                        }),
                    },
                );
            }
        }
        Report {
            ready: checks.values().all(|c| c.ok),
            checks,
        }
    }
}

/// The history stage's figures behind its verdict.
struct HistoryFigures {
    backlog: i64,
    buffered: i64,
    write_errors: u64,
    /// Newest stored sample (Unix s); 0 = nothing stored by this process.
    stored_s: i64,
    watched_since_ms: i64,
}

/// History is failing when messages wait while the newest stored one is
/// older than `limit`, or — nothing stored since the stage started — when
/// something waits (backlog, buffered rows, failed writes) for longer than
/// `limit` since then: "never wrote" is not "healthy".
fn history_check(figures: &HistoryFigures, now_ms: i64, limit: Duration) -> Check {
    let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
    let stored = figures.stored_s > 0;
    let waiting = figures.backlog > 0 || figures.buffered > 0 || figures.write_errors > 0;
    let (ok, problem) = if stored {
        let age_ms = now_ms - figures.stored_s * 1_000;
        let ok = figures.backlog == 0 || age_ms <= limit_ms;
        (
            ok,
            format!(
                "{} messages not stored in ClickHouse; newest stored is {} s old",
                figures.backlog,
                age_ms / 1_000
            ),
        )
    } else {
        let running_ms = now_ms - figures.watched_since_ms;
        let ok = !waiting || running_ms <= limit_ms;
        (
            ok,
            format!(
                "nothing stored in ClickHouse in the {} s since start ({} messages waiting, {} rows buffered, {} failed writes)",
                running_ms / 1_000,
                figures.backlog,
                figures.buffered,
                figures.write_errors
            ),
        )
    };
    Check {
        ok,
        problem: (!ok).then_some(problem),
        detail: serde_json::json!({
            "backlog_messages": figures.backlog,
            "rows_buffered": figures.buffered,
            "write_errors": figures.write_errors,
            "stored_until_ms": stored.then_some(figures.stored_s * 1_000),
        }),
    }
}

/// The alert-state tail is failing when its thread has not looped for
/// [`TAIL_SILENT_MS`] (it died or hangs), or when it has been behind the
/// topic for longer than `limit` (other instances' records not applied).
fn alert_state_check(tail: TailSnapshot, now_ms: i64, limit: Duration) -> Check {
    let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
    let silent_ms = now_ms - tail.heartbeat_ms;
    let behind_ms = (tail.behind_since_ms > 0).then(|| now_ms - tail.behind_since_ms);
    let problem = if tail.heartbeat_ms == 0 || silent_ms > TAIL_SILENT_MS {
        Some(format!(
            "alert-state tail not running (last seen {} s ago)",
            silent_ms / 1_000
        ))
    } else {
        behind_ms.filter(|ms| *ms > limit_ms).map(|ms| {
            format!(
                "alert-state tail {} records behind for {} s",
                tail.behind,
                ms / 1_000
            )
        })
    };
    Check {
        ok: problem.is_none(),
        problem,
        detail: serde_json::json!({
            "records_behind": tail.behind,
            "behind_since_ms": behind_ms.map(|_| tail.behind_since_ms),
            "last_heartbeat_ms": (tail.heartbeat_ms > 0).then_some(tail.heartbeat_ms),
        }),
    }
}

/// How long the alert-state tail thread may go without a loop (it polls
/// every 200 ms) before it counts as not running.
const TAIL_SILENT_MS: i64 = 10_000;

fn collector_check(last_success_s: i64, now_ms: i64, limit: Duration) -> Check {
    let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
    let age_ms = (last_success_s > 0).then(|| now_ms - last_success_s * 1_000);
    let ok = age_ms.is_some_and(|age| age <= limit_ms);
    Check {
        ok,
        problem: (!ok).then(|| match age_ms {
            Some(age) => format!("not sampled for {} s", age / 1_000),
            None => "not sampled yet".to_string(),
        }),
        detail: serde_json::json!({
            "last_success_ms": (last_success_s > 0).then_some(last_success_s * 1_000),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_is_ready_only_while_sampled_recently() {
        let limit = Duration::from_secs(30);
        let now = 1_000_000_000;
        assert!(!collector_check(0, now, limit).ok, "never sampled");
        assert!(collector_check(now / 1_000 - 10, now, limit).ok);
        let stale = collector_check(now / 1_000 - 31, now, limit);
        assert!(!stale.ok);
        assert_eq!(stale.problem.as_deref(), Some("not sampled for 31 s"));
    }

    #[test]
    fn history_that_never_stored_anything_fails_once_something_waits_too_long() {
        let limit = Duration::from_secs(300);
        let start = 1_000_000_000;
        let idle = HistoryFigures {
            backlog: 0,
            buffered: 0,
            write_errors: 0,
            stored_s: 0,
            watched_since_ms: start,
        };
        assert!(
            history_check(&idle, start + 3_600_000, limit).ok,
            "nothing to store"
        );
        let stuck = HistoryFigures {
            backlog: 40,
            write_errors: 7,
            ..idle
        };
        assert!(
            history_check(&stuck, start + 60_000, limit).ok,
            "within the limit"
        );
        let check = history_check(&stuck, start + 301_000, limit);
        assert!(!check.ok, "never wrote is not healthy");
        assert!(
            check.problem.as_deref().unwrap_or_default().starts_with(
                "nothing stored in ClickHouse in the 301 s since start (40 messages waiting"
            ),
            "{:?}",
            check.problem
        );
        let stored = HistoryFigures {
            stored_s: (start + 290_000) / 1_000,
            ..stuck
        };
        assert!(history_check(&stored, start + 301_000, limit).ok);
    }

    #[test]
    fn the_alert_state_tail_must_run_and_keep_up() {
        let limit = Duration::from_secs(30);
        let now = 1_000_000_000;
        let progress = TailProgress::default();
        assert!(
            !alert_state_check(progress.snapshot(), now, limit).ok,
            "never ran"
        );
        progress.beat(now - 1_000);
        progress.observe(10, 15, now - 20_000);
        assert!(
            alert_state_check(progress.snapshot(), now, limit).ok,
            "briefly behind"
        );
        let late = alert_state_check(progress.snapshot(), now + 11_000, limit);
        assert_eq!(
            late.problem.as_deref(),
            Some("alert-state tail not running (last seen 12 s ago)")
        );
        progress.beat(now + 15_000);
        let behind = alert_state_check(progress.snapshot(), now + 15_000, limit);
        assert_eq!(
            behind.problem.as_deref(),
            Some("alert-state tail 5 records behind for 35 s")
        );
        progress.observe(15, 15, now + 16_000);
        assert!(alert_state_check(progress.snapshot(), now + 16_000, limit).ok);
    }
}
