//! A bounded per-partition window of offset observations.
//!
//! Burrow-style evaluation looks at the last few observations of one
//! partition as seen by one consumer group: the committed offset, the end
//! offset and the lag at each sample time. [`Window`] keeps those points in a
//! ring buffer of fixed capacity (default [`DEFAULT_CAPACITY`], at most
//! [`MAX_CAPACITY`]), so memory per partition is bounded whatever the sample
//! rate or the uptime.
//!
//! Pushing is defensive, since samples can arrive late or twice:
//! - a point whose time is not after the newest point (out of order or a
//!   duplicate timestamp) is ignored, the first one seen wins;
//! - a point whose end offset is below the newest point's end offset means
//!   the log was rewound (topic deleted and recreated): the old points
//!   describe another log, so the window is emptied and starts again with
//!   the new point. Nothing is alerted for that; the history is simply gone.
//!
//! Besides the points, the window remembers when the current committed
//! offset was first observed ([`Window::committed_since_ms`]), even after
//! that point has left the ring: it is what tells a consumer stuck for
//! longer than the window (STOP) from one stuck within it (STALL).
//!
//! No clock: every point carries its sample time.

use std::collections::vec_deque::{self, VecDeque};

use lagwatch_model::PartitionSample;

/// Points kept per partition unless configured otherwise (Burrow's default
/// window is 10 offsets as well).
pub const DEFAULT_CAPACITY: usize = 10;
/// Smallest capacity: two points are needed to see any movement.
pub const MIN_CAPACITY: usize = 2;
/// Largest capacity; larger requests are clamped to it.
pub const MAX_CAPACITY: usize = 64;

/// One observation of a partition for one consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Sample time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Committed offset of the group; `None` when the group has none.
    pub committed: Option<i64>,
    /// End offset (high watermark) of the partition.
    pub end: i64,
    /// Lag the rules judge (against the end offset, or the last stable
    /// offset for read_committed consumers); `None` without a committed
    /// offset. Never negative when built by [`Point::new`] or
    /// [`Point::from_sample`].
    pub lag: Option<i64>,
}

/// The parts of a point the rules need, present only when the lag is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub ts_ms: i64,
    pub committed: i64,
    pub lag: i64,
}

impl Point {
    /// A point whose lag is `end - committed`, clamped at zero.
    pub fn new(ts_ms: i64, committed: Option<i64>, end: i64) -> Self {
        Point {
            ts_ms,
            committed,
            end,
            lag: committed.map(|c| end.saturating_sub(c).max(0)),
        }
    }

    /// A point from a collector sample taken at `ts_ms`, with the sample's
    /// lag (against the high watermark). For a read_committed consumer set
    /// `lag` from [`PartitionSample::lag_for`] instead.
    pub fn from_sample(ts_ms: i64, sample: &PartitionSample) -> Self {
        Point {
            ts_ms,
            committed: sample.committed,
            end: sample.end,
            lag: sample.lag,
        }
    }

    /// The committed offset and lag, when both are known.
    pub fn observed(&self) -> Option<Observed> {
        Some(Observed {
            ts_ms: self.ts_ms,
            committed: self.committed?,
            lag: self.lag?,
        })
    }
}

/// What [`Window::push`] did with a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The point was added (the oldest point dropped if the window was full).
    Appended,
    /// The point was not after the newest point and was dropped.
    Ignored,
    /// The end offset went backwards: the window was emptied and restarted
    /// with this point.
    Reset,
}

/// The last `capacity` observations of one partition, oldest first.
#[derive(Debug, Clone)]
pub struct Window {
    points: VecDeque<Point>,
    capacity: usize,
    /// Last known committed offset (points without one do not change it).
    committed: Option<i64>,
    /// Sample time at which `committed` was first observed.
    committed_since_ms: i64,
}

impl Default for Window {
    fn default() -> Self {
        Window::new(DEFAULT_CAPACITY)
    }
}

impl Window {
    /// An empty window of `capacity` points, clamped to
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]. The ring is allocated once here.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        Window {
            points: VecDeque::with_capacity(capacity),
            capacity,
            committed: None,
            committed_since_ms: 0,
        }
    }

    /// Adds an observation; see the module docs for what is ignored and
    /// what resets the window.
    pub fn push(&mut self, point: Point) -> Push {
        let mut outcome = Push::Appended;
        if let Some(newest) = self.points.back() {
            if point.ts_ms <= newest.ts_ms {
                return Push::Ignored;
            }
            if point.end < newest.end {
                self.clear();
                outcome = Push::Reset;
            }
        }
        if self.points.len() >= self.capacity {
            self.points.pop_front();
        }
        if let Some(committed) = point.committed {
            if self.committed != Some(committed) {
                self.committed = Some(committed);
                self.committed_since_ms = point.ts_ms;
            }
        }
        self.points.push_back(point);
        outcome
    }

    /// Forgets every point and the commit history.
    pub fn clear(&mut self) {
        self.points.clear();
        self.committed = None;
        self.committed_since_ms = 0;
    }

    /// Maximum number of points kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of points held (at most [`Window::capacity`]).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, oldest first.
    pub fn points(&self) -> vec_deque::Iter<'_, Point> {
        self.points.iter()
    }

    /// The points whose committed offset and lag are known, oldest first.
    pub fn observed(&self) -> impl DoubleEndedIterator<Item = Observed> + Clone + '_ {
        self.points.iter().filter_map(Point::observed)
    }

    /// Oldest point held.
    pub fn first(&self) -> Option<&Point> {
        self.points.front()
    }

    /// Newest point held.
    pub fn last(&self) -> Option<&Point> {
        self.points.back()
    }

    /// Time between the oldest and the newest point; 0 below two points.
    pub fn span_ms(&self) -> i64 {
        match (self.points.front(), self.points.back()) {
            (Some(first), Some(last)) => last.ts_ms.saturating_sub(first.ts_ms),
            _ => 0,
        }
    }

    /// Sample time at which the most recent known committed offset was
    /// first observed (since the window was created or last reset). It may
    /// be older than every point held: it survives eviction. `None` until a
    /// committed offset has been seen.
    pub fn committed_since_ms(&self) -> Option<i64> {
        self.committed.map(|_| self.committed_since_ms)
    }
}
