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
}

impl Limits {
    /// Limits for a collector sampling every `interval`.
    pub fn for_interval(interval: Duration) -> Self {
        Limits {
            not_sampled: (interval * 3).max(Duration::from_secs(30)),
            evaluator_backlog: 10_000,
            history_behind: Duration::from_secs(300),
            undelivered: Duration::from_secs(300),
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
/// `history`, `sink/<destination>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: BTreeMap<String, Check>,
}

#[derive(Default)]
struct Probes {
    collector: Option<(CollectorMetrics, Vec<String>)>,
    evaluator: Option<EvaluatorMetrics>,
    history: Option<HistoryMetrics>,
    outbox: Option<OutboxStatus>,
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
            probes.history = Some(metrics);
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
        if let Some(metrics) = &probes.history {
            let backlog = metrics.backlog_messages.get();
            let stored_s = metrics.stored_until.get();
            let age_ms = (stored_s > 0).then(|| now - stored_s * 1_000);
            let behind = i64::try_from(self.limits.history_behind.as_millis()).unwrap_or(i64::MAX);
            let ok = backlog == 0 || age_ms.is_none_or(|age| age <= behind);
            checks.insert(
                "history".into(),
                Check {
                    ok,
                    problem: (!ok).then(|| {
                        format!(
                            "{backlog} messages not stored in ClickHouse; newest stored is {} s old",
                            age_ms.unwrap_or(0) / 1_000
                        )
                    }),
                    detail: serde_json::json!({
                        "backlog_messages": backlog,
                        "stored_until_ms": (stored_s > 0).then_some(stored_s * 1_000),
                    }),
                },
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
}
