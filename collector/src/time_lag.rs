//! How far behind, in time, a committed offset is — with a stated bound.
//!
//! The collector remembers, per partition, a bounded history of
//! (sample time, end offset) points. Two neighbouring points bracket every
//! offset produced between them: a record at offset `c` with
//! `end[i-1] <= c < end[i]` did not exist at `t[i-1]` and did at `t[i]`, so
//! it was written inside `(t[i-1], t[i]]`. Within the history the time lag
//! is interpolated inside that bracket and is never further from the truth
//! than the bracket's width (one sample interval when sampling is regular);
//! `now - t[i]` is a proven lower bound, and alerts compare that bound with
//! their threshold, so an estimate never pages on its own error.
//!
//! A committed offset older than the whole history is never extrapolated
//! (a rate measured over a quiet hour says nothing about when an old record
//! was written: that is how a 12-minute lag was once estimated at 7 days).
//! Instead the caller reads the timestamp of the record at that offset —
//! one small fetch per partition, only for those outside the history,
//! within a per-cycle budget — and the answer is remembered for as long as
//! the group stays at that offset. Without an answer the result is a
//! marked lower bound: the record was written before the oldest point.
//!
//! Runs of points with the same end offset (an idle topic) keep only their
//! first and last point: those two carry all the bracketing information, so
//! an idle topic's history reaches back as far as its last write.
//! History is reset when a partition's end offset goes backwards (topic
//! deleted and recreated).

use std::collections::{HashMap, VecDeque};

use lagwatch_model::{TimeLag, TimeLagKind};

use crate::source::{NextRecord, RecordPosition};

mod annotate;
pub use annotate::annotate_time_lag;

/// Most remembered record timestamps per partition (one per distinct
/// committed offset of the groups reading it from outside the history).
const PROBES_PER_PARTITION: usize = 8;

/// What a probe at a committed offset found.
#[derive(Debug, Clone, Copy)]
struct Probed {
    next: NextRecord,
    /// Whether the record at the offset itself was gone (below the log
    /// start), so a later record answered: its time is a lower bound only.
    below_log_start: bool,
    /// Sample time the probe was made (probes rotate by age).
    probed_at_ms: i64,
}

/// What the collector knows of one partition.
#[derive(Debug, Default)]
struct PartitionHistory {
    /// (sample time, end offset), oldest first, end offsets non-decreasing.
    points: VecDeque<(i64, i64)>,
    /// Committed offset → what a consumer there reads first.
    probed: HashMap<i64, Probed>,
}

impl PartitionHistory {
    fn newest_end(&self) -> Option<i64> {
        self.points.back().map(|&(_, end)| end)
    }

    /// Whether a probe at `committed` would improve the answer.
    fn wants_probe(&self, committed: i64) -> bool {
        let (Some(&(_, oldest_end)), Some(newest_end)) = (self.points.front(), self.newest_end())
        else {
            return false;
        };
        if committed >= newest_end {
            return false;
        }
        match self.probed.get(&committed).map(|p| p.next) {
            Some(NextRecord::WrittenAt(_)) => false,
            Some(NextRecord::NothingUpTo(end)) => end < newest_end,
            // Outside the history, or maybe parked on a transaction marker.
            None => committed < oldest_end || newest_end - committed == 1,
        }
    }
}

/// Bounded per-partition history of end offsets and probed timestamps.
#[derive(Debug)]
pub struct TimeLagEstimator {
    capacity: usize,
    partitions: HashMap<(String, i32), PartitionHistory>,
}

impl TimeLagEstimator {
    /// Keeps at most `capacity` points per partition (at a 10 s interval,
    /// 360 points of a busy topic cover an hour; an idle one far longer).
    pub fn new(capacity: usize) -> Self {
        TimeLagEstimator {
            capacity: capacity.max(3),
            partitions: HashMap::new(),
        }
    }

    /// Records the end offset of a partition at `ts_ms`. An end offset
    /// below the last one (topic recreated) resets the partition.
    pub fn record(&mut self, topic: &str, partition: i32, ts_ms: i64, end_offset: i64) {
        let history = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_default();
        let points = &mut history.points;
        if let Some(&(last_ts, last_end)) = points.back() {
            if end_offset < last_end {
                tracing::info!(
                    topic,
                    partition,
                    before = last_end,
                    now = end_offset,
                    "end offset went back (topic recreated?); time-lag history reset"
                );
                points.clear();
                history.probed.clear();
            } else if ts_ms <= last_ts {
                return;
            } else if end_offset == last_end
                && points.len() >= 2
                && points[points.len() - 2].1 == last_end
            {
                // Middle of an idle run: only its first and last point
                // bracket anything.
                if let Some(last) = points.back_mut() {
                    last.0 = ts_ms;
                }
                return;
            }
        }
        points.push_back((ts_ms, end_offset));
        while points.len() > self.capacity {
            points.pop_front();
        }
    }

    /// Remembers what a consumer at `position` reads first;
    /// `below_log_start` when the record at the offset itself was gone.
    pub fn remember_probe(
        &mut self,
        position: &RecordPosition,
        next: NextRecord,
        below_log_start: bool,
        now_ms: i64,
    ) {
        if let Some(history) = self
            .partitions
            .get_mut(&(position.topic.clone(), position.partition))
        {
            history.probed.insert(
                position.offset,
                Probed {
                    next,
                    below_log_start,
                    probed_at_ms: now_ms,
                },
            );
        }
    }

    /// The positions, among `positions` (topic, partition, committed
    /// offset), whose next record would turn a bound into an exact value —
    /// outside the history, or one offset short of the end (perhaps only a
    /// transaction marker is left) — at most `budget` of them, partitions
    /// probed longest ago (or never) first, so a budget smaller than the
    /// need still reaches every partition in turn.
    pub fn plan_probes<'a>(
        &self,
        positions: impl IntoIterator<Item = (&'a str, i32, i64)>,
        budget: usize,
    ) -> Vec<RecordPosition> {
        let mut wanted: Vec<(Option<i64>, RecordPosition)> = Vec::new();
        for (topic, partition, committed) in positions {
            let Some(history) = self.partitions.get(&(topic.to_string(), partition)) else {
                continue;
            };
            let Some(end) = history.newest_end() else {
                continue;
            };
            if !history.wants_probe(committed) {
                continue;
            }
            let last_probe = history.probed.values().map(|p| p.probed_at_ms).max();
            wanted.push((
                last_probe,
                RecordPosition {
                    topic: topic.to_string(),
                    partition,
                    offset: committed,
                    end,
                },
            ));
        }
        wanted.sort();
        wanted.dedup_by(|a, b| a.1 == b.1);
        wanted.into_iter().take(budget).map(|(_, r)| r).collect()
    }

    /// Time lag of `committed` on a partition at `now_ms`; `None` before the
    /// partition's first end offset is recorded.
    pub fn estimate(
        &self,
        topic: &str,
        partition: i32,
        committed: i64,
        now_ms: i64,
    ) -> Option<TimeLag> {
        let history = self.partitions.get(&(topic.to_string(), partition))?;
        let newest_end = history.newest_end()?;
        if committed >= newest_end {
            return Some(TimeLag::exact(0));
        }
        match history.probed.get(&committed) {
            Some(Probed {
                next: NextRecord::WrittenAt(written),
                below_log_start: false,
                ..
            }) => Some(TimeLag::exact(now_ms - written)),
            // Written before the record that answered in its place.
            Some(Probed {
                next: NextRecord::WrittenAt(written),
                below_log_start: true,
                ..
            }) => Some(TimeLag::at_least(now_ms - written)),
            Some(Probed {
                next: NextRecord::NothingUpTo(end),
                ..
            }) if *end >= newest_end => Some(TimeLag::exact(0)),
            // Nothing up to `end` then; the next record is at or after it.
            Some(Probed {
                next: NextRecord::NothingUpTo(end),
                ..
            }) => from_history(&history.points, *end, now_ms),
            // Perhaps only a transaction marker is left: nothing is proven
            // until the probe answers.
            None if newest_end - committed == 1 => Some(TimeLag::at_least(0)),
            None => from_history(&history.points, committed, now_ms),
        }
    }

    /// Forgets partitions not seen in `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str, i32) -> bool) {
        self.partitions
            .retain(|(topic, partition), _| keep(topic, *partition));
    }

    /// Drops remembered probes of offsets no group sat at this cycle; keeps
    /// at most a few per partition.
    pub fn retain_probes(&mut self, in_use: impl Fn(&str, i32, i64) -> bool) {
        for ((topic, partition), history) in self.partitions.iter_mut() {
            history
                .probed
                .retain(|offset, _| in_use(topic, *partition, *offset));
            while history.probed.len() > PROBES_PER_PARTITION {
                let oldest = history
                    .probed
                    .iter()
                    .min_by_key(|(_, p)| p.probed_at_ms)
                    .map(|(offset, _)| *offset);
                match oldest {
                    Some(offset) => history.probed.remove(&offset),
                    None => break,
                };
            }
        }
    }

    /// Number of partitions with history (for memory accounting).
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }
}

/// Time lag of the next record at or after `offset` (below the newest end)
/// from the remembered points alone.
fn from_history(points: &VecDeque<(i64, i64)>, offset: i64, now_ms: i64) -> Option<TimeLag> {
    let &(oldest_ts, oldest_end) = points.front()?;
    if offset < oldest_end {
        if oldest_end - offset == 1 {
            // The record at `offset` may be a marker; the next one's time is
            // bracketed, and both were written no later than that.
            let next = interpolate(points, offset + 1, now_ms).map(|lag| lag.min_ms);
            return Some(TimeLag::at_least(next.unwrap_or(0)));
        }
        // Written before the oldest point.
        return Some(TimeLag::at_least(now_ms - oldest_ts));
    }
    interpolate(points, offset, now_ms)
}

/// Interpolates `offset`'s write time between the two points whose end
/// offsets bracket it.
fn interpolate(points: &VecDeque<(i64, i64)>, offset: i64, now_ms: i64) -> Option<TimeLag> {
    let upper = points.iter().position(|&(_, end)| end > offset)?;
    let (before_ts, before_end) = points.get(upper.checked_sub(1)?).copied()?;
    let (after_ts, after_end) = points[upper];
    let fraction = (offset - before_end) as f64 / (after_end - before_end) as f64;
    let written_at = before_ts as f64 + fraction * (after_ts - before_ts) as f64;
    let min_ms = (now_ms - after_ts).max(0);
    Some(TimeLag {
        ms: clamp_ms(now_ms as f64 - written_at).max(min_ms),
        min_ms,
        kind: TimeLagKind::Interpolated,
    })
}

fn clamp_ms(value: f64) -> i64 {
    if value.is_finite() && value > 0.0 {
        value.round().min(i64::MAX as f64) as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
