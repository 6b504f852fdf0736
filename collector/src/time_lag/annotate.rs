//! Fills in the time lag of every sampled partition that exact mode did
//! not: records the cycle's end offsets, reads the record timestamps the
//! estimator asks for (within the cycle's probe budget), then estimates.
//!
//! Runs on a blocking thread: reading record timestamps waits on the
//! broker.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use lagwatch_model::GroupSample;

use super::TimeLagEstimator;
use crate::sampler::next_records_at;
use crate::source::OffsetSource;

/// Annotates `samples` in place; `budget` caps the record timestamps read
/// this cycle (0 = never read, report lower bounds outside the history).
pub fn annotate_time_lag(
    estimator: &Mutex<TimeLagEstimator>,
    source: &dyn OffsetSource,
    samples: &mut [GroupSample],
    budget: usize,
) {
    let wanted = {
        let Ok(mut estimator) = estimator.lock() else {
            return;
        };
        for sample in samples.iter() {
            for p in &sample.partitions {
                estimator.record(&p.topic, p.partition, sample.ts_ms, p.end);
            }
        }
        let positions = samples.iter().flat_map(|s| {
            s.partitions
                .iter()
                .filter(|p| p.time_lag_ms.is_none())
                .filter_map(|p| p.committed.map(|c| (p.topic.as_str(), p.partition, c)))
        });
        estimator.plan_probes(positions, budget)
    };
    let answers = if wanted.is_empty() {
        HashMap::new()
    } else {
        next_records_at(source, wanted.clone())
    };
    if !wanted.is_empty() {
        tracing::debug!(
            asked = wanted.len(),
            answered = answers.len(),
            budget,
            "record timestamps read for time lag"
        );
    }
    let Ok(mut estimator) = estimator.lock() else {
        return;
    };
    let log_starts: HashMap<(&str, i32), i64> = samples
        .iter()
        .flat_map(|s| s.partitions.iter())
        .filter_map(|p| {
            p.log_start
                .map(|start| ((p.topic.as_str(), p.partition), start))
        })
        .collect();
    let now_ms = samples.iter().map(|s| s.ts_ms).max().unwrap_or_default();
    for request in &wanted {
        if let Some(&next) =
            answers.get(&(request.topic.clone(), request.partition, request.offset))
        {
            let below_log_start = log_starts
                .get(&(request.topic.as_str(), request.partition))
                .is_some_and(|&start| request.offset < start);
            estimator.remember_probe(request, next, below_log_start, now_ms);
        }
    }
    let mut in_use: HashSet<(String, i32, i64)> = HashSet::new();
    for sample in samples.iter_mut() {
        let ts_ms = sample.ts_ms;
        for p in sample
            .partitions
            .iter_mut()
            .filter(|p| p.time_lag_ms.is_none())
        {
            let Some(committed) = p.committed else {
                continue;
            };
            in_use.insert((p.topic.clone(), p.partition, committed));
            if let Some(lag) = estimator.estimate(&p.topic, p.partition, committed, ts_ms) {
                p.set_time_lag(lag);
            }
        }
    }
    estimator.retain_probes(|topic, partition, offset| {
        in_use.contains(&(topic.to_string(), partition, offset))
    });
    // Forget partitions only after a complete cycle, so an outage does not
    // wipe the history.
    if !samples.is_empty() && samples.iter().all(|s| s.error.is_none()) {
        let seen: HashSet<(&str, i32)> = samples
            .iter()
            .flat_map(|s| s.partitions.iter().map(|p| (p.topic.as_str(), p.partition)))
            .collect();
        estimator.retain(|topic, partition| seen.contains(&(topic, partition)));
    }
}
