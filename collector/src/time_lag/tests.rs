//! The time-lag scenarios with known truth.
//!
//! A simulated partition knows when every offset was written; a simulated
//! group knows where it committed at every instant. The collector samples
//! every 10 s, the estimator answers, and each answer is checked against
//! the truth — `now − written(next record the group reads)`, 0 when caught
//! up — with the bound its kind promises:
//!
//! - `exact`: equal to the truth;
//! - `interpolated`: `min_ms <= truth <= min_ms + bracket` (the bracket is
//!   one sample interval) and the value within one interval of the truth;
//! - `at_least`: `value <= truth`.
//!
//! Record timestamps are answered from the simulation, like the broker's
//! fetch would (the first record at or after the asked offset).

use super::*;
use lagwatch_model::TimeLagKind;

/// What the broker's fetch answers at `offset` as of time `t`.
fn answer(log: &Log, offset: i64, t: i64) -> NextRecord {
    match log.first_record_at_or_after(offset, t) {
        Some(written) => NextRecord::WrittenAt(written),
        None => NextRecord::NothingUpTo(log.end_at(t)),
    }
}

const INTERVAL: i64 = 10_000;

/// One partition's log: write time of each offset, `None` for offsets with
/// no record a consumer reads (compacted away, transaction markers).
#[derive(Default)]
struct Log {
    written: Vec<Option<i64>>,
    /// Offsets below this are deleted (retention).
    log_start: i64,
}

impl Log {
    /// Appends `count` records written evenly across `[from, to)`.
    fn produce(&mut self, count: i64, from: i64, to: i64) {
        for i in 0..count {
            self.written
                .push(Some(from + (to - from) * i / count.max(1)));
        }
    }

    fn end_at(&self, t: i64) -> i64 {
        self.written
            .iter()
            .take_while(|w| w.is_none_or(|w| w <= t))
            .count() as i64
    }

    /// Timestamp of the first readable record at or after `offset`, as of
    /// time `t`.
    fn first_record_at_or_after(&self, offset: i64, t: i64) -> Option<i64> {
        let from = offset.max(self.log_start).max(0) as usize;
        self.written
            .iter()
            .skip(from)
            .flatten()
            .copied()
            .find(|&w| w <= t)
    }
}

struct Scenario {
    name: &'static str,
    log: Log,
    /// Committed offset at each sample time.
    committed: Box<dyn Fn(i64) -> i64>,
    start: i64,
    end: i64,
    /// Probes allowed per cycle.
    budget: usize,
    /// Sample times at which the log is replaced (topic recreated).
    recreate: Option<(i64, Log)>,
}

#[derive(Default, Debug)]
struct Tally {
    exact: usize,
    interpolated: usize,
    at_least: usize,
    worst_error_ms: i64,
}

fn run(mut scenario: Scenario) -> Tally {
    let mut estimator = TimeLagEstimator::new(360);
    let mut tally = Tally::default();
    let mut t = scenario.start;
    while t <= scenario.end {
        if let Some((at, _)) = &scenario.recreate {
            if t >= *at {
                if let Some((_, log)) = scenario.recreate.take() {
                    scenario.log = log;
                }
            }
        }
        let log = &scenario.log;
        let end = log.end_at(t);
        let committed = (scenario.committed)(t).min(end);
        estimator.record("t", 0, t, end);
        let plan = estimator.plan_probes([("t", 0, committed)], scenario.budget);
        for request in &plan {
            let next = answer(log, request.offset, t);
            estimator.remember_probe(request, next, request.offset < log.log_start, t);
        }
        let lag = estimator
            .estimate("t", 0, committed, t)
            .unwrap_or_else(|| panic!("{}: no answer at t={t}", scenario.name));
        // Caught up, or nothing but markers left: nothing to read.
        let truth = log
            .first_record_at_or_after(committed, t)
            .filter(|_| committed < end)
            .map_or(0, |written| t - written);
        let at = format!(
            "{} at t={}s: {lag:?}, truth {truth}",
            scenario.name,
            t / 1000
        );
        assert!(lag.min_ms <= lag.ms, "{at}");
        assert!(lag.min_ms <= truth, "lower bound above the truth: {at}");
        match lag.kind {
            TimeLagKind::Exact => {
                tally.exact += 1;
                assert_eq!(lag.ms, truth, "{at}");
            }
            TimeLagKind::Interpolated => {
                tally.interpolated += 1;
                assert!(truth <= lag.min_ms + INTERVAL, "{at}");
                assert!((lag.ms - truth).abs() <= INTERVAL, "{at}");
                tally.worst_error_ms = tally.worst_error_ms.max((lag.ms - truth).abs());
            }
            TimeLagKind::AtLeast => {
                tally.at_least += 1;
                assert!(lag.ms <= truth, "{at}");
            }
        }
        t += INTERVAL;
    }
    println!("{}: {tally:?}", scenario.name);
    tally
}

fn steady(per_sec: i64, from: i64, to: i64) -> Log {
    let mut log = Log::default();
    log.produce(per_sec * (to - from) / 1000, from, to);
    log
}

const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;

/// 1. Steady feed, a consumer 30 s behind.
#[test]
fn scenario_1_steady_feed() {
    let tally = run(Scenario {
        name: "steady feed",
        log: steady(10, 0, 2 * HOUR),
        committed: Box::new(|t| ((t - 30_000).max(0)) * 10 / 1000),
        start: 0,
        end: 2 * HOUR - INTERVAL,
        budget: 100,
        recreate: None,
    });
    assert!(tally.interpolated > 600, "{tally:?}");
}

/// 2. Idle then a burst: a static backlog on a topic idle for hours, then
///    one new record (once estimated at 36,127 s and growing 600 s/s while
///    the truth was ~12 min).
#[test]
fn scenario_2_idle_then_burst() {
    let mut log = steady(1, 0, 10 * MIN);
    // Hours of silence, then one record.
    log.written.push(Some(3 * HOUR));
    let tally = run(Scenario {
        name: "idle then burst",
        log,
        committed: Box::new(|_| 300),
        // The collector starts long after the backlog formed.
        start: 2 * HOUR,
        end: 3 * HOUR + 20 * MIN,
        budget: 100,
        recreate: None,
    });
    assert_eq!((tally.interpolated, tally.at_least), (0, 0), "{tally:?}");
}

/// 3. Static backlog: the consumer stopped, the producer goes on.
#[test]
fn scenario_3_static_backlog() {
    let tally = run(Scenario {
        name: "static backlog",
        log: steady(5, 0, 3 * HOUR),
        committed: Box::new(|_| 100),
        start: 0,
        end: 3 * HOUR - INTERVAL,
        budget: 100,
        recreate: None,
    });
    assert!(tally.exact > 0, "{tally:?}");
}

/// 4. The feed stops while the consumer is behind; looked at for ten
///    minutes after (once overshot the truth by 44%).
#[test]
fn scenario_4_feed_stops() {
    let tally = run(Scenario {
        name: "feed stops",
        log: steady(10, 0, 30 * MIN),
        committed: Box::new(|t| (t / 2) * 10 / 1000),
        start: 0,
        end: 40 * MIN,
        budget: 100,
        recreate: None,
    });
    assert!(tally.interpolated > 100, "{tally:?}");
}

/// 5. The produce rate changes ×10 and back while the consumer trails.
#[test]
fn scenario_5_rate_changes_tenfold() {
    let mut log = steady(2, 0, 20 * MIN);
    log.produce(20 * 20 * 60, 20 * MIN, 40 * MIN);
    log.produce(2 * 20 * 60, 40 * MIN, 60 * MIN);
    let written: Vec<i64> = log.written.iter().flatten().copied().collect();
    let tally = run(Scenario {
        name: "rate x10",
        log,
        // Always two minutes behind in time.
        committed: Box::new(move |t| written.partition_point(|&w| w <= t - 2 * MIN) as i64),
        start: 0,
        end: 60 * MIN - INTERVAL,
        budget: 100,
        recreate: None,
    });
    assert!(tally.interpolated > 300, "{tally:?}");
}

/// 6. The topic is deleted and recreated between two samples; the group
///    starts over at 0 (once estimated growing 164 s per second, paging
///    within 15 s).
#[test]
fn scenario_6_topic_recreated() {
    let old = steady(50, 0, HOUR);
    let new = steady(2, HOUR + 5_000, 2 * HOUR);
    let tally = run(Scenario {
        name: "topic recreated",
        log: old,
        committed: Box::new(|t| {
            if t < HOUR {
                (t - 1_000).max(0) * 50 / 1000
            } else {
                ((t - HOUR - 5_000 - 20_000).max(0)) * 2 / 1000
            }
        }),
        start: 0,
        end: 2 * HOUR - INTERVAL,
        budget: 100,
        recreate: Some((HOUR, new)),
    });
    assert!(tally.interpolated > 300, "{tally:?}");
}

/// 7. Compaction: old records are gone (every other offset), the group
///    is two hours behind; the record it reads next is a later one.
#[test]
fn scenario_7_compaction() {
    let mut log = steady(1, 0, 4 * HOUR);
    for (offset, w) in log.written.iter_mut().enumerate() {
        if offset % 2 == 1 && offset < 3600 * 2 {
            *w = None;
        }
    }
    let tally = run(Scenario {
        name: "compaction",
        log,
        committed: Box::new(|t| (((t - 2 * HOUR).max(0)) / 1000) | 1),
        start: INTERVAL,
        end: 4 * HOUR - INTERVAL,
        budget: 100,
        recreate: None,
    });
    assert!(tally.exact > 0, "{tally:?}");
}

/// 8. Transactions: every 10th offset is a commit marker with no record;
///    the group commits just past a marker.
#[test]
fn scenario_8_transactions() {
    let mut log = steady(10, 0, 2 * HOUR);
    for (offset, w) in log.written.iter_mut().enumerate() {
        if offset % 10 == 9 {
            *w = None;
        }
    }
    let tally = run(Scenario {
        name: "transactions",
        log,
        committed: Box::new(|t| ((t - 5 * MIN).max(0) * 10 / 1000) / 10 * 10),
        start: 0,
        end: 2 * HOUR - INTERVAL,
        budget: 100,
        recreate: None,
    });
    assert!(tally.interpolated > 300, "{tally:?}");
}

/// 8b. A group parked on the last commit marker of an idle transactional
///     topic: offset lag 1, nothing to read (time lag 0) for an hour; then
///     a new transaction arrives.
#[test]
fn scenario_8b_parked_on_a_commit_marker() {
    let mut log = steady(10, 0, 10 * MIN);
    log.written.push(None);
    log.produce(10, 70 * MIN, 71 * MIN);
    log.written.push(None);
    let tally = run(Scenario {
        name: "parked on a marker",
        log,
        committed: Box::new(|t| if t < 75 * MIN { 6_000 } else { 6_012 }),
        start: 0,
        end: 80 * MIN,
        budget: 100,
        recreate: None,
    });
    assert!(tally.exact > 300, "{tally:?}");
}

/// 9. A consumer far behind with no probe budget: only lower bounds, never
///    above the truth, and never a made-up number.
#[test]
fn scenario_9_no_budget_gives_lower_bounds() {
    let tally = run(Scenario {
        name: "no budget",
        log: steady(5, 0, 3 * HOUR),
        committed: Box::new(|t| ((t - 2 * HOUR).max(0)) * 5 / 1000),
        start: 0,
        end: 3 * HOUR - INTERVAL,
        budget: 0,
        recreate: None,
    });
    assert!(tally.at_least > 0, "{tally:?}");
}

/// 10. Retention deleted what the group would read: the probe answers with
///     the log-start record, which only bounds the truth from below.
#[test]
fn below_log_start_is_a_lower_bound() {
    let mut estimator = TimeLagEstimator::new(10);
    estimator.record("t", 0, 100_000, 500);
    let plan = estimator.plan_probes([("t", 0, 10)], 5);
    assert_eq!(plan.len(), 1);
    estimator.remember_probe(&plan[0], NextRecord::WrittenAt(40_000), true, 100_000);
    let lag = estimator.estimate("t", 0, 10, 100_000).expect("answer");
    assert_eq!((lag.kind, lag.ms), (TimeLagKind::AtLeast, 60_000));
}

#[test]
fn idle_runs_keep_their_first_and_last_point() {
    let mut estimator = TimeLagEstimator::new(4);
    estimator.record("t", 0, 0, 10);
    for i in 1..1_000 {
        estimator.record("t", 0, i * INTERVAL, 20);
    }
    estimator.record("t", 0, 1_000 * INTERVAL, 30);
    // Offset 15 was written in (0, 10 s]: known after 1,000 idle samples.
    let lag = estimator
        .estimate("t", 0, 15, 1_000 * INTERVAL)
        .expect("answer");
    assert_eq!(lag.kind, TimeLagKind::Interpolated);
    assert_eq!(lag.min_ms, 999 * INTERVAL);
    // Offset 25 was written in (9,990 s, 10,000 s].
    let lag = estimator
        .estimate("t", 0, 25, 1_000 * INTERVAL)
        .expect("answer");
    assert!(lag.ms <= INTERVAL, "{lag:?}");
}

#[test]
fn budget_rotates_over_partitions() {
    let mut estimator = TimeLagEstimator::new(10);
    for p in 0..4 {
        estimator.record("t", p, 0, 100);
    }
    let positions = |offset: i64| (0..4).map(move |p| ("t", p, offset));
    let first = estimator.plan_probes(positions(10), 2);
    assert_eq!(first.len(), 2);
    for request in &first {
        estimator.remember_probe(request, NextRecord::WrittenAt(0), false, 1_000);
    }
    // The group moved on: the never-probed partitions go first.
    let second = estimator.plan_probes(positions(11), 2);
    let probed: Vec<i32> = first.iter().map(|r| r.partition).collect();
    assert!(
        second.iter().all(|r| !probed.contains(&r.partition)),
        "{first:?} then {second:?}"
    );
}

#[test]
fn too_little_history_and_unknown_partitions() {
    let estimator = TimeLagEstimator::new(10);
    assert_eq!(estimator.estimate("t", 0, 5, 1_000), None);
    let mut estimator = TimeLagEstimator::new(10);
    estimator.record("t", 0, 5_000, 100);
    // One point: caught up is exact, behind is a bound until probed.
    assert_eq!(
        estimator.estimate("t", 0, 100, 5_000),
        Some(TimeLag::exact(0))
    );
    assert_eq!(
        estimator.estimate("t", 0, 50, 15_000),
        Some(TimeLag::at_least(10_000))
    );
}
