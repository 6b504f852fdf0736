//! Estimates how far behind, in time, a committed offset is.
//!
//! The collector remembers, per partition, a bounded history of
//! (sample time, end offset) points. The time at which the producer wrote
//! offset `c` is found by linear interpolation between the two points whose
//! end offsets bracket `c`; time lag = now − that time. When `c` is older
//! than the whole history, the time is extrapolated with the average produce
//! rate over the history, and the result is never less than the history's
//! span (a hard lower bound: `c` was written before the oldest point).
//!
//! Results are whole milliseconds, never negative and never NaN: a caught-up
//! consumer has time lag 0, and a partition with too little history reports
//! no estimate rather than a made-up one.

use std::collections::{HashMap, VecDeque};

/// How a time lag was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLagKind {
    /// Committed offset is at the end of the log.
    CaughtUp,
    /// Interpolated between two remembered points.
    Interpolated,
    /// Older than the history; extrapolated, bounded below by the span.
    Extrapolated,
}

/// Bounded per-partition history of end offsets.
#[derive(Debug)]
pub struct TimeLagEstimator {
    capacity: usize,
    history: HashMap<(String, i32), VecDeque<(i64, i64)>>,
}

impl TimeLagEstimator {
    /// Keeps at most `capacity` points per partition (at a 10 s interval,
    /// 360 points cover an hour).
    pub fn new(capacity: usize) -> Self {
        TimeLagEstimator {
            capacity: capacity.max(2),
            history: HashMap::new(),
        }
    }

    /// Records the end offset of a partition at `ts_ms`. Points whose end
    /// offset went backwards (topic recreated) reset the history.
    pub fn record(&mut self, topic: &str, partition: i32, ts_ms: i64, end_offset: i64) {
        let points = self
            .history
            .entry((topic.to_string(), partition))
            .or_default();
        if let Some(&(last_ts, last_end)) = points.back() {
            if end_offset < last_end {
                points.clear();
            } else if ts_ms <= last_ts {
                return;
            }
        }
        points.push_back((ts_ms, end_offset));
        while points.len() > self.capacity {
            points.pop_front();
        }
    }

    /// Time lag of `committed` on a partition at `now_ms`, if estimable.
    pub fn estimate(
        &self,
        topic: &str,
        partition: i32,
        committed: i64,
        now_ms: i64,
    ) -> Option<(i64, TimeLagKind)> {
        let points = self.history.get(&(topic.to_string(), partition))?;
        let &(_, newest_end) = points.back()?;
        if committed >= newest_end {
            return Some((0, TimeLagKind::CaughtUp));
        }
        let &(oldest_ts, oldest_end) = points.front()?;
        if committed < oldest_end {
            // Extrapolate with the average rate over the history.
            let &(newest_ts, _) = points.back()?;
            let span_ms = newest_ts - oldest_ts;
            let produced = newest_end - oldest_end;
            if span_ms <= 0 || produced <= 0 {
                return None;
            }
            let missing = (oldest_end - committed) as f64;
            let written_at = oldest_ts as f64 - missing * span_ms as f64 / produced as f64;
            let estimate = clamp_ms(now_ms as f64 - written_at);
            let lower_bound = (now_ms - oldest_ts).max(0);
            return Some((estimate.max(lower_bound), TimeLagKind::Extrapolated));
        }
        // The first point whose end offset passes `committed` brackets it.
        let mut previous = points.front()?;
        for point in points.iter().skip(1) {
            let &(ts, end) = point;
            if end > committed {
                let (prev_ts, prev_end) = *previous;
                let fraction = if end == prev_end {
                    0.0
                } else {
                    (committed - prev_end) as f64 / (end - prev_end) as f64
                };
                let written_at = prev_ts as f64 + fraction * (ts - prev_ts) as f64;
                return Some((
                    clamp_ms(now_ms as f64 - written_at),
                    TimeLagKind::Interpolated,
                ));
            }
            previous = point;
        }
        None
    }

    /// Forgets partitions not seen in `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str, i32) -> bool) {
        self.history
            .retain(|(topic, partition), _| keep(topic, *partition));
    }

    /// Number of partitions with history (for memory accounting).
    pub fn partitions(&self) -> usize {
        self.history.len()
    }
}

fn clamp_ms(value: f64) -> i64 {
    if value.is_finite() && value > 0.0 {
        value.round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimator(points: &[(i64, i64)]) -> TimeLagEstimator {
        let mut estimator = TimeLagEstimator::new(10);
        for &(ts, end) in points {
            estimator.record("t", 0, ts, end);
        }
        estimator
    }

    #[test]
    fn caught_up_is_zero() {
        let e = estimator(&[(0, 100), (10_000, 200)]);
        assert_eq!(
            e.estimate("t", 0, 200, 20_000),
            Some((0, TimeLagKind::CaughtUp))
        );
    }

    #[test]
    fn interpolates_between_points() {
        // Offset 150 was written halfway between t=0 and t=10s.
        let e = estimator(&[(0, 100), (10_000, 200)]);
        assert_eq!(
            e.estimate("t", 0, 150, 10_000),
            Some((5_000, TimeLagKind::Interpolated))
        );
    }

    #[test]
    fn extrapolates_with_lower_bound() {
        // 10 msgs/s; offset 50 is 5 s before the oldest point.
        let e = estimator(&[(0, 100), (10_000, 200)]);
        assert_eq!(
            e.estimate("t", 0, 50, 10_000),
            Some((15_000, TimeLagKind::Extrapolated))
        );
    }

    #[test]
    fn quiet_topic_interpolation_never_negative() {
        // Nothing produced for a while, then a burst.
        let e = estimator(&[(0, 100), (10_000, 100), (20_000, 100), (30_000, 400)]);
        let (lag, kind) = e.estimate("t", 0, 100, 30_000).expect("estimate");
        assert_eq!(kind, TimeLagKind::Interpolated);
        assert!((0..=10_000).contains(&lag), "{lag}");
    }

    #[test]
    fn too_little_history_gives_no_estimate() {
        let e = estimator(&[(0, 100)]);
        assert_eq!(e.estimate("t", 0, 50, 5_000), None);
        assert_eq!(e.estimate("other", 0, 50, 5_000), None);
    }

    #[test]
    fn recreated_topic_resets_history_and_capacity_bounds_memory() {
        let mut e = estimator(&[(0, 100), (10_000, 200)]);
        e.record("t", 0, 20_000, 5);
        assert_eq!(
            e.estimate("t", 0, 0, 20_000),
            None,
            "only one point after reset"
        );
        for i in 0..100 {
            e.record("t", 0, 30_000 + i * 1000, 10 + i);
        }
        assert_eq!(e.history[&("t".to_string(), 0)].len(), 10);
    }
}
