//! Rules 2–7 — Burrow-style status of a partition window, and of a group.
//!
//! Each rule is a small pure function of a [`Window`] and the
//! [`WindowRules`]; [`evaluate`] applies them in order of precedence:
//!
//! | order | rule | status |
//! |---|---|---|
//! | 1 | Rule 2 — NO DATA: too few points with a known lag | [`Status::Unknown`] |
//! | 2 | Rule 3 — REWIND: the committed offset moved backwards | [`Status::Rewind`] |
//! | 3 | Rule 4 — STOP: no commit while behind for longer than the window | [`Status::Stop`] |
//! | 4 | Rule 7 — OK: lag within `allowed_lag` at some point of the window | [`Status::Ok`] |
//! | 5 | Rule 5 — STALL: committed offset not moving, behind at every point | [`Status::Stall`] |
//! | 6 | Rule 6 — WARN: lag never shrinks and grew over the window | [`Status::Warn`] |
//! | 7 | Rule 7 — OK: anything else | [`Status::Ok`] |
//!
//! Only points with a known committed offset (and so a known lag) take part;
//! points without one are skipped, as missing data neither raises nor clears
//! a status. The time of the newest point is "now": a window that stops
//! receiving points keeps its status, and deciding that data is stale is the
//! caller's business.
//!
//! Differences from Burrow, on purpose:
//! - "caught up" is lag `<= allowed_lag`, not lag `== 0`, so transaction
//!   markers (a read_committed consumer at the end of a transactional topic
//!   shows lag 1 against the high watermark) and commit/sample races on
//!   groups that commit every message do not count as lag;
//! - WARN needs the lag to have grown (last > first), not merely not to
//!   have shrunk: a steady non-zero lag of a healthy consumer is not a warning;
//! - the collector samples committed offsets, it does not see commits, so a
//!   consumer re-committing the same offset and one that stopped committing
//!   look the same. STALL is "stuck over the window", STOP is "stuck for
//!   longer than the window" (or than `stop_after_ms`), counted only from
//!   when the consumer fell behind, so a quiet topic whose consumer is caught
//!   up never stops;
//! - REWIND is not masked by a lag within `allowed_lag`: an offset reset to
//!   the past reprocesses messages even if the consumer catches up quickly.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::window::{Observed, Window};

/// Status of a partition or group, ordered by severity: `Unknown < Ok <
/// Warn < Stall < Stop < Rewind`. `Stall`, `Stop` and `Rewind` are errors
/// ([`Status::is_error`]); `Warn` is a warning; `Unknown` and `Ok` alert
/// nothing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Too little data to judge (Rule 2); never alerted.
    #[default]
    Unknown,
    /// Consumer keeping up (Rule 7).
    Ok,
    /// Lag growing over the whole window (Rule 6).
    Warn,
    /// Error: committed offset not moving while behind (Rule 5).
    Stall,
    /// Error: no commit while behind for longer than the window (Rule 4).
    Stop,
    /// Error: committed offset moved backwards (Rule 3).
    Rewind,
}

impl Status {
    /// Every status, least severe first.
    pub const ALL: [Status; 6] = [
        Status::Unknown,
        Status::Ok,
        Status::Warn,
        Status::Stall,
        Status::Stop,
        Status::Rewind,
    ];

    /// Whether the status is an error (`Stall`, `Stop`, `Rewind`).
    pub fn is_error(self) -> bool {
        self >= Status::Stall
    }

    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Stall => "stall",
            Status::Stop => "stop",
            Status::Rewind => "rewind",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default [`WindowRules::allowed_lag`]: one transaction marker.
pub const DEFAULT_ALLOWED_LAG: i64 = 1;
/// Default [`WindowRules::min_points`].
pub const DEFAULT_MIN_POINTS: usize = 5;

/// Parameters of the window rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowRules {
    /// Lag tolerated as "caught up" (transaction markers, commit races).
    pub allowed_lag: i64,
    /// Points with a known lag needed before any status but `Unknown`;
    /// clamped to 2..=window capacity.
    pub min_points: usize,
    /// STOP after this long without a commit while behind; `None` = the
    /// window's span.
    pub stop_after_ms: Option<i64>,
}

impl Default for WindowRules {
    fn default() -> Self {
        WindowRules {
            allowed_lag: DEFAULT_ALLOWED_LAG,
            min_points: DEFAULT_MIN_POINTS,
            stop_after_ms: None,
        }
    }
}

impl WindowRules {
    /// `min_points` as applied to a window of `capacity` points.
    pub fn effective_min_points(&self, capacity: usize) -> usize {
        self.min_points.clamp(2, capacity.max(2))
    }

    fn behind(&self, point: &Observed) -> bool {
        point.lag > self.allowed_lag
    }
}

/// Rule 2 — NO DATA: fewer than `min_points` points with a known lag.
/// Never alert on too little data: the status is `Unknown`.
pub fn too_few_points(window: &Window, rules: &WindowRules) -> bool {
    window.observed().count() < rules.effective_min_points(window.capacity())
}

/// Rule 3 — REWIND: the committed offset moved backwards between two
/// consecutive points of the window (a group reset to an earlier offset).
pub fn rewound(window: &Window) -> bool {
    let mut points = window.observed();
    let Some(mut previous) = points.next() else {
        return false;
    };
    for point in points {
        if point.committed < previous.committed {
            return true;
        }
        previous = point;
    }
    false
}

/// Rule 4 — STOP: the committed offset is the same at every point, the
/// newest point is behind (lag > `allowed_lag`), and the consumer has owed
/// progress for longer than `stop_after_ms` (default: the window's span).
///
/// It owes progress since it fell behind: from the first point of the
/// trailing run of points that are behind, or, when every point of the
/// window is behind, from when the committed offset last changed, which may
/// be before the oldest point. So with the default horizon a consumer stuck
/// within the window is STALL, one stuck for longer is STOP, and a caught-up
/// consumer of a quiet topic, whose committed offset has not changed for
/// hours, is not stopped by the first new message.
pub fn stopped(window: &Window, rules: &WindowRules) -> bool {
    let Some(newest) = window.observed().next_back() else {
        return false;
    };
    if !rules.behind(&newest) || !committed_unchanged(window) {
        return false;
    }
    let Some(committed_since) = window.committed_since_ms() else {
        return false;
    };
    // Start of the trailing run of points that are behind; the whole
    // window behind means "since the committed offset last changed".
    let mut run_start = newest.ts_ms;
    let mut whole_window = true;
    for point in window.observed().rev() {
        if !rules.behind(&point) {
            whole_window = false;
            break;
        }
        run_start = point.ts_ms;
    }
    let owing_since = if whole_window {
        committed_since
    } else {
        run_start
    };
    let horizon = rules
        .stop_after_ms
        .unwrap_or_else(|| window.span_ms())
        .max(0);
    newest.ts_ms.saturating_sub(owing_since) > horizon
}

/// Rule 5 — STALL: the committed offset is the same at every point while
/// the lag is above `allowed_lag` at every point: the consumer is sampled,
/// has work, and does not move.
pub fn stalled(window: &Window, rules: &WindowRules) -> bool {
    committed_unchanged(window) && window.observed().all(|p| rules.behind(&p))
}

/// Rule 6 — WARN: the lag never shrinks from one point to the next, grew
/// from the first point to the last, and is above `allowed_lag` at every
/// point: the consumer is falling behind.
pub fn lag_growing(window: &Window, rules: &WindowRules) -> bool {
    let mut points = window.observed();
    let Some(first) = points.next() else {
        return false;
    };
    if !rules.behind(&first) {
        return false;
    }
    let mut previous = first.lag;
    for point in points {
        if point.lag < previous {
            return false;
        }
        previous = point.lag;
    }
    previous > first.lag
}

/// Rule 7 — OK: the lag is within `allowed_lag` at some point of the
/// window (Burrow's "lag zero at some point"): the consumer caught up
/// recently, whatever else the window shows (REWIND and STOP excepted).
/// Everything no other rule matches is OK as well.
pub fn caught_up(window: &Window, rules: &WindowRules) -> bool {
    window.observed().any(|p| !rules.behind(&p))
}

/// Whether at least one point has a committed offset and all such points
/// have the same one.
fn committed_unchanged(window: &Window) -> bool {
    let mut committed = window.observed().map(|p| p.committed);
    match committed.next() {
        Some(first) => committed.all(|c| c == first),
        None => false,
    }
}

/// Status of one partition window: the rules in order of precedence
/// (see the module docs).
pub fn evaluate(window: &Window, rules: &WindowRules) -> Status {
    if too_few_points(window, rules) {
        Status::Unknown
    } else if rewound(window) {
        Status::Rewind
    } else if stopped(window, rules) {
        Status::Stop
    } else if caught_up(window, rules) {
        Status::Ok
    } else if stalled(window, rules) {
        Status::Stall
    } else if lag_growing(window, rules) {
        Status::Warn
    } else {
        Status::Ok
    }
}

/// Status of a group: the worst status of its partitions, and the
/// partitions at that status (in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus<K> {
    pub status: Status,
    pub partitions: Vec<K>,
}

/// Folds partition statuses into a [`GroupStatus`]; a group without
/// partitions is `Unknown`.
pub fn group_status<K>(partitions: impl IntoIterator<Item = (K, Status)>) -> GroupStatus<K> {
    let mut group = GroupStatus {
        status: Status::Unknown,
        partitions: Vec::new(),
    };
    for (key, status) in partitions {
        if status > group.status {
            group.status = status;
            group.partitions.clear();
        }
        if status == group.status {
            group.partitions.push(key);
        }
    }
    group
}
