//! Numbered, table-driven tests of the partition window and the window
//! rules (Rules 2–7), plus `proptest` property tests (a failing case is
//! shrunk to a small one and its seed kept under `proptest-regressions/`).
//!
//! Window points are written in a small notation, one string per case:
//! `ts:committed/end` with `-` for "no committed offset"; an optional
//! `=lag` gives the lag explicitly (e.g. against the last stable offset),
//! otherwise it is `end - committed` clamped at zero; an optional `*n`
//! repeats the point `n` times, 10 ms apart. Points are pushed in the order
//! written, so out-of-order and duplicate points can be expressed.

use crate::status::{
    caught_up, evaluate, group_status, lag_growing, rewound, stalled, stopped, too_few_points,
    Status, WindowRules, DEFAULT_ALLOWED_LAG, DEFAULT_MIN_POINTS,
};
use crate::window::{Point, Push, Window, DEFAULT_CAPACITY, MAX_CAPACITY, MIN_CAPACITY};
use lagwatch_model::PartitionSample;
use proptest::prelude::*;
use Status::{Ok, Rewind, Stall, Stop, Unknown, Warn};

/// Window capacity and rule parameters of a case.
#[derive(Debug, Clone, Copy)]
struct Cfg {
    cap: usize,
    allowed: i64,
    min: usize,
    stop: Option<i64>,
}

/// The defaults: capacity 10, allowed_lag 1, min_points 5, STOP after the
/// window span.
const D: Cfg = Cfg {
    cap: DEFAULT_CAPACITY,
    allowed: DEFAULT_ALLOWED_LAG,
    min: DEFAULT_MIN_POINTS,
    stop: None,
};
const A0: Cfg = Cfg { allowed: 0, ..D };
const A2: Cfg = Cfg { allowed: 2, ..D };
const A100: Cfg = Cfg { allowed: 100, ..D };
const S30: Cfg = Cfg {
    stop: Some(30),
    ..D
};
const S100: Cfg = Cfg {
    stop: Some(100),
    ..D
};
const C3: Cfg = Cfg {
    cap: 3,
    min: 10,
    ..D
};

impl Cfg {
    fn rules(&self) -> WindowRules {
        WindowRules {
            allowed_lag: self.allowed,
            min_points: self.min,
            stop_after_ms: self.stop,
        }
    }
}

/// Parses the point notation of the module docs.
fn points(spec: &str) -> Vec<Point> {
    let mut out = Vec::new();
    for token in spec.split_whitespace() {
        let (token, repeat) = match token.split_once('*') {
            Some((t, n)) => (t, n.parse::<i64>().expect("repeat count")),
            None => (token, 1),
        };
        let (token, lag) = match token.split_once('=') {
            Some((t, l)) => (t, Some(l.parse::<i64>().expect("lag"))),
            None => (token, None),
        };
        let (ts, offsets) = token.split_once(':').expect("ts:committed/end");
        let (committed, end) = offsets.split_once('/').expect("committed/end");
        let ts: i64 = ts.parse().expect("ts");
        let committed = match committed {
            "-" => None,
            c => Some(c.parse::<i64>().expect("committed")),
        };
        let end: i64 = end.parse().expect("end");
        for i in 0..repeat {
            let mut point = Point::new(ts + 10 * i, committed, end);
            if lag.is_some() {
                point.lag = lag;
            }
            out.push(point);
        }
    }
    out
}

fn window_of(cfg: &Cfg, spec: &str) -> Window {
    let mut window = Window::new(cfg.cap);
    for point in points(spec) {
        window.push(point);
    }
    window
}

/// Numbered cases: (number, description, config, points, expected status).
#[rustfmt::skip]
const CASES: &[(u32, &str, Cfg, &str, Status)] = &[
    // Rule 2 — NO DATA
    (1, "empty window", D, "", Unknown),
    (2, "4 points < min_points 5, even with fast-growing lag", D, "0:0/100 10:0/200 20:0/300 30:0/400", Unknown),
    (3, "points without a committed offset do not count", D, "0:-/10 10:-/20 20:-/30 30:-/40 40:-/50 50:0/60", Unknown),
    // quiet topics, tiny lags: never STOP / WARN
    (4, "quiet topic, caught up, no commit for longer than the window: no STOP", D, "0:500/500*12", Ok),
    (5, "quiet transactional topic: lag 1 (marker) with allowed_lag 1, nothing moves", D, "0:499/500*12", Ok),
    (6, "transaction markers: lag 1 at every point while committing", D, "0:99/100 10:109/110 20:119/120 30:129/130 40:139/140 50:149/150", Ok),
    (7, "commits every message: lag 0/1/2 alternating, allowed_lag 2", A2, "0:100/100 10:109/110 20:118/120 30:130/130 40:139/140 50:148/150", Ok),
    (8, "commits every message: lag 2/1 alternating, never 0, allowed_lag 1", D, "0:98/100 10:109/110 20:118/120 30:129/130 40:138/140 50:148/150", Ok),
    (9, "steady lag 2 while committing (never grows): no WARN", D, "0:98/100 10:108/110 20:118/120 30:128/130 40:138/140 50:148/150", Ok),
    // Rule 6 — WARN
    (10, "steadily growing lag while committing", D, "0:0/10 10:10/25 20:20/40 30:30/55 40:40/70 50:50/85", Warn),
    (11, "growing lag with plateaus (never shrinks, last > first)", D, "0:0/10 10:10/20 20:20/35 30:30/45 40:40/60 50:50/70", Warn),
    (12, "growing lag that shrinks once", D, "0:0/10 10:10/25 20:20/40 30:32/50 40:40/65 50:50/80", Ok),
    (13, "shrinking lag: consumer catching up", D, "0:0/50 10:20/60 20:40/70 30:60/80 40:80/90 50:95/100", Ok),
    (14, "lag dips to 0 mid-window, grows elsewhere", D, "0:0/10 10:10/30 20:40/40 30:40/50 40:40/60 50:50/80", Ok),
    (15, "lag dips to allowed_lag (1) mid-window", D, "0:0/10 10:10/30 20:39/40 30:40/50 40:45/65 50:50/80", Ok),
    (16, "growing lag that stays within allowed_lag 100", A100, "0:0/10 10:10/25 20:20/40 30:30/55 40:40/70 50:50/85", Ok),
    (17, "one commit early in the window, then stuck: not STALL yet, lag grew: WARN", D, "0:90/110 10:100/120 20:100/130 30:100/140 40:100/150 50:100/160", Warn),
    (18, "steady high lag while committing (keeping pace, behind)", D, "0:0/100 10:10/110 20:20/120 30:30/130 40:40/140", Ok),
    // Rule 5 — STALL
    (19, "stuck consumer, growing lag, stuck within the window", D, "0:100/110 10:100/120 20:100/130 30:100/140 40:100/150 50:100/160", Stall),
    (20, "stuck consumer, constant lag (producer idle too)", D, "0:100/150*6", Stall),
    (21, "allowed_lag 0: a stuck transactional consumer's marker lag 1 is STALL", A0, "0:499/500*6", Stall),
    (22, "newest point without a committed offset does not clear a STALL", D, "0:100/110 10:100/120 20:100/130 30:100/140 40:100/150 50:-/160", Stall),
    // Rule 4 — STOP
    (23, "stuck with growing lag for longer than the window span (12 points, capacity 10)", D, "0:100/110 10:100/120 20:100/130 30:100/140 40:100/150 50:100/160 60:100/170 70:100/180 80:100/190 90:100/200 100:100/210 110:100/220", Stop),
    (24, "stuck with a backlog for longer than the window, producer idle", D, "0:100/150*12", Stop),
    (25, "stuck within the window, stuck time 50 > stop_after_ms 30", S30, "0:100/110 10:100/120 20:100/130 30:100/140 40:100/150 50:100/160", Stop),
    (26, "stuck within the window, stuck time 50 < stop_after_ms 100", S100, "0:100/110 10:100/120 20:100/130 30:100/140 40:100/150 50:100/160", Stall),
    (27, "quiet caught-up topic, new messages in the last 2 points, no commit yet: no STOP", D, "0:500/500*10 100:500/510 110:500/520", Ok),
    (28, "quiet caught-up topic, then behind for 40 > stop_after_ms 30: STOP despite lag 0 earlier", S30, "0:500/500*8 80:500/510 90:500/520 100:500/530 110:500/540 120:500/550", Stop),
    (29, "quiet caught-up topic, then behind for 20 < stop_after_ms 30", S30, "0:500/500*8 80:500/510 90:500/520 100:500/530", Ok),
    (30, "read_committed: stuck at the LSO (explicit lag 0), high watermark 3 ahead", D, "0:97/100=0*12", Ok),
    (31, "same stuck offset judged against the high watermark (lag 3)", D, "0:97/100*12", Stop),
    // Rule 3 — REWIND
    (32, "committed offset moves backwards", D, "0:100/200 10:110/210 20:120/220 30:90/230 40:100/240 50:110/250", Rewind),
    (33, "rewind wins over the stall that follows it", D, "0:100/200 10:50/210 20:50/220 30:50/230 40:50/240 50:50/250", Rewind),
    (34, "rewind while caught up (reset to the past, re-consumed quickly)", D, "0:100/100 10:100/100 20:50/100 30:100/100 40:100/100", Rewind),
    // window behaviour seen through the status
    (35, "end offset rewind (topic recreated) resets the window: 3 points left < min 5", D, "0:0/100 10:0/200 20:0/300 30:0/400 40:0/500 50:0/20 60:0/30 70:0/40", Unknown),
    (36, "end offset rewind: committed going back with the log is not REWIND", D, "0:900/1000 10:1000/1000 20:1100/1100 30:1200/1200 40:1300/1300 50:0/5 60:5/10 70:10/15 80:15/15 90:20/20", Ok),
    (37, "out-of-order point (lag 0, committed ahead) ignored: still WARN", D, "0:0/10 10:10/25 20:20/40 15:40/40 30:30/55 40:40/70 50:50/85", Warn),
    (38, "duplicate timestamp (lag 0) ignored, the first point kept: still WARN", D, "0:0/10 10:10/25 20:20/40 20:40/40 30:30/55 40:40/70 50:50/85", Warn),
    (39, "capacity 10: a lag-0 point evicted from the window no longer masks growth", D, "0:0/0 10:0/10 20:10/25 30:20/40 40:30/55 50:40/70 60:50/85 70:60/100 80:70/115 90:80/130 100:90/145 110:100/160", Warn),
    (40, "a point without committed offset mid-window is skipped", D, "0:0/10 10:10/25 20:-/40 30:30/55 40:40/70 50:50/85", Warn),
    (41, "min_points 10 above capacity 3 is clamped to 3", C3, "0:0/10 10:10/25 20:20/40", Warn),
    (42, "committed ahead of a stale end offset: lag clamped to 0", D, "0:105/100 10:115/110 20:125/120 30:135/130 40:145/140", Ok),
];

#[test]
fn numbered_cases() {
    assert!(CASES.len() >= 20);
    for (index, (no, what, cfg, spec, expected)) in CASES.iter().enumerate() {
        assert_eq!(*no as usize, index + 1, "cases are numbered in order");
        let window = window_of(cfg, spec);
        assert_eq!(
            evaluate(&window, &cfg.rules()),
            *expected,
            "case {no}: {what}"
        );
    }
}

/// Each rule function on its own, on the windows of a few cases.
#[test]
fn rule_functions_standalone() {
    let rules = D.rules();
    let case = |no: u32| {
        let (_, _, cfg, spec, _) = CASES[no as usize - 1];
        window_of(&cfg, spec)
    };
    assert!(too_few_points(&case(2), &rules));
    assert!(!too_few_points(&case(10), &rules));
    assert!(rewound(&case(32)) && !rewound(&case(36)));
    assert!(stopped(&case(23), &rules) && !stopped(&case(19), &rules));
    assert!(!stopped(&case(4), &rules) && !stopped(&case(27), &rules));
    // STOP also holds the STALL conditions; precedence picks STOP.
    assert!(stalled(&case(23), &rules) && stalled(&case(19), &rules));
    assert!(!stalled(&case(10), &rules) && !stalled(&case(4), &rules));
    assert!(lag_growing(&case(10), &rules) && !lag_growing(&case(9), &rules));
    assert!(lag_growing(&case(19), &rules), "a stall's lag grows too");
    assert!(caught_up(&case(14), &rules) && !caught_up(&case(10), &rules));
}

// ---- window ---------------------------------------------------------------

#[test]
fn push_outcomes() {
    let mut w = Window::new(3);
    assert_eq!(w.push(Point::new(10, Some(1), 5)), Push::Appended);
    assert_eq!(w.push(Point::new(10, Some(2), 6)), Push::Ignored);
    assert_eq!(w.push(Point::new(5, Some(2), 6)), Push::Ignored);
    assert_eq!(w.push(Point::new(20, Some(2), 6)), Push::Appended);
    assert_eq!(w.len(), 2);
    assert_eq!(w.push(Point::new(30, Some(0), 2)), Push::Reset);
    assert_eq!(w.len(), 1);
    assert_eq!(w.first(), w.last());
    assert_eq!(w.committed_since_ms(), Some(30));
    // The end offset staying put is not a rewind.
    assert_eq!(w.push(Point::new(40, Some(1), 2)), Push::Appended);
}

#[test]
fn capacity_is_clamped_and_bounds_the_window() {
    assert_eq!(Window::new(0).capacity(), MIN_CAPACITY);
    assert_eq!(Window::new(10_000).capacity(), MAX_CAPACITY);
    assert_eq!(Window::default().capacity(), DEFAULT_CAPACITY);
    let mut w = Window::new(4);
    for i in 0..100 {
        w.push(Point::new(i * 10, Some(i), i + 5));
        assert!(w.len() <= 4);
    }
    let ts: Vec<i64> = w.points().map(|p| p.ts_ms).collect();
    assert_eq!(ts, vec![960, 970, 980, 990]);
    assert_eq!(w.span_ms(), 30);
}

#[test]
fn committed_since_survives_eviction_and_ignores_missing_commits() {
    let mut w = Window::new(2);
    assert_eq!(w.committed_since_ms(), None);
    w.push(Point::new(0, Some(7), 10));
    w.push(Point::new(10, None, 11));
    w.push(Point::new(20, Some(7), 12));
    w.push(Point::new(30, Some(7), 13));
    assert_eq!(w.first().map(|p| p.ts_ms), Some(20));
    assert_eq!(w.committed_since_ms(), Some(0));
    w.push(Point::new(40, Some(8), 13));
    assert_eq!(w.committed_since_ms(), Some(40));
    w.clear();
    assert!(w.is_empty());
    assert_eq!(w.committed_since_ms(), None);
}

#[test]
fn point_from_sample_keeps_the_sample_lag() {
    let sample = PartitionSample::new("t", 3, Some(90), 100);
    let p = Point::from_sample(1_000, &sample);
    assert_eq!(
        (p.ts_ms, p.committed, p.end, p.lag),
        (1_000, Some(90), 100, Some(10))
    );
    let none = Point::from_sample(1_000, &PartitionSample::new("t", 3, None, 100));
    assert_eq!(none.lag, None);
    assert_eq!(none.observed(), None);
}

// ---- status and group -------------------------------------------------------

#[test]
fn statuses_are_ordered_by_severity() {
    assert!(Unknown < Ok && Ok < Warn && Warn < Stall && Stall < Stop && Stop < Rewind);
    let errors: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_error()).collect();
    assert_eq!(errors, vec![Stall, Stop, Rewind]);
    assert_eq!(Stop.to_string(), "stop");
}

#[test]
fn group_status_is_the_worst_partition() {
    let group = group_status([(0, Ok), (1, Stall), (2, Warn), (3, Stall), (4, Unknown)]);
    assert_eq!(group.status, Stall);
    assert_eq!(group.partitions, vec![1, 3]);
    let quiet = group_status([("a", Ok), ("b", Ok)]);
    assert_eq!((quiet.status, quiet.partitions), (Ok, vec!["a", "b"]));
    let empty = group_status(Vec::<(i32, Status)>::new());
    assert_eq!((empty.status, empty.partitions.len()), (Unknown, 0));
}

#[test]
fn rules_defaults_and_min_points_clamp() {
    let rules = WindowRules::default();
    assert_eq!(rules.allowed_lag, DEFAULT_ALLOWED_LAG);
    assert_eq!(rules.min_points, DEFAULT_MIN_POINTS);
    assert_eq!(rules.stop_after_ms, None);
    assert_eq!(rules.effective_min_points(3), 3);
    assert_eq!(
        WindowRules {
            min_points: 0,
            ..rules
        }
        .effective_min_points(10),
        2
    );
}

// ---- property tests ----------------------------------------------------------

/// As many cases per property as the hand-seeded loop it replaced ran.
const PROPERTY_CASES: u32 = 2_000;

/// How a random walk's consumer moves at one step.
#[derive(Debug, Clone, Copy)]
enum Consumer {
    /// Resets this many offsets into the past.
    Rewinds(i64),
    /// Commits nothing new.
    Pauses,
    /// Keeps up to within this many offsets of the end.
    KeepsUp(i64),
}

/// One step of a random walk: time, end offset, consumer, and whether the
/// sample carries a committed offset at all.
#[derive(Debug, Clone, Copy)]
struct Step {
    time: i64,
    end: i64,
    consumer: Consumer,
    has_committed: bool,
}

fn step(max_lag: i64) -> impl Strategy<Value = Step> {
    let end = prop_oneof![1 => (1i64..=500).prop_map(|back| -back), 40 => 0i64..=20];
    let consumer = prop_oneof![
        1 => (1i64..=50).prop_map(Consumer::Rewinds),
        12 => Just(Consumer::Pauses),
        27 => (0..=max_lag).prop_map(Consumer::KeepsUp),
    ];
    (
        -15i64..=30,
        end,
        consumer,
        prop::bool::weighted(15.0 / 16.0),
    )
        .prop_map(|(time, end, consumer, has_committed)| Step {
            time,
            end,
            consumer,
            has_committed,
        })
}

/// A random walk of up to `n` points: time mostly forward (sometimes stale
/// or repeated), end mostly growing (sometimes rewound), a consumer that
/// mostly keeps up, sometimes pauses and rarely resets to the past, and
/// sometimes has no committed offset. Every lag stays within `max_lag`.
fn walk(n: usize, max_lag: i64) -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec(step(max_lag), 0..=n).prop_map(move |steps| {
        let (mut ts, mut end, mut committed) = (1_000, 1_000, 1_000);
        steps
            .into_iter()
            .map(|step| {
                ts += step.time;
                end += step.end;
                committed = match step.consumer {
                    Consumer::Rewinds(back) => committed - back,
                    Consumer::Pauses => committed,
                    Consumer::KeepsUp(behind) => committed.max(end - behind),
                };
                committed = committed.max(end - max_lag);
                Point::new(ts, step.has_committed.then_some(committed), end)
            })
            .collect()
    })
}

/// A window capacity and rule parameters.
fn rules() -> impl Strategy<Value = (usize, WindowRules)> {
    (
        2usize..=30,
        0i64..=5,
        0usize..=12,
        prop::option::of(0i64..=300),
    )
        .prop_map(|(cap, allowed_lag, min_points, stop_after_ms)| {
            (
                cap,
                WindowRules {
                    allowed_lag,
                    min_points,
                    stop_after_ms,
                },
            )
        })
}

/// A consumer that commits at every sample: (time step, commit step, end step).
fn progressing() -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    prop::collection::vec((1i64..=30, 1i64..=50, 0i64..=80), 0..=60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(PROPERTY_CASES))]

    #[test]
    fn property_window_is_bounded_and_ordered((cap, _) in rules(), points in walk(200, 1_000)) {
        let mut w = Window::new(cap);
        for point in points {
            w.push(point);
            prop_assert!(w.len() <= cap);
            let pts: Vec<&Point> = w.points().collect();
            for pair in pts.windows(2) {
                prop_assert!(pair[0].ts_ms < pair[1].ts_ms);
                prop_assert!(pair[0].end <= pair[1].end);
            }
            let mut committed = w.observed().map(|p| (p.ts_ms, p.committed));
            if let Some((first_ts, first)) = committed.next() {
                if committed.all(|(_, c)| c == first) {
                    let since = w.committed_since_ms();
                    prop_assert!(since.is_some_and(|since| since <= first_ts), "{since:?}");
                }
            }
        }
    }

    #[test]
    fn property_no_lag_alert_when_every_lag_is_allowed(
        (cap, rules, points) in rules()
            .prop_flat_map(|(cap, rules)| (Just(cap), Just(rules), walk(60, rules.allowed_lag)))
    ) {
        let mut w = Window::new(cap);
        for point in points {
            w.push(point);
            let status = evaluate(&w, &rules);
            prop_assert!(
                matches!(status, Unknown | Ok | Rewind),
                "{status} with every lag <= {}",
                rules.allowed_lag
            );
        }
    }

    #[test]
    fn property_a_progressing_consumer_is_never_an_error((cap, rules) in rules(), steps in progressing()) {
        let mut w = Window::new(cap);
        let (mut ts, mut committed, mut end) = (0, 0, 0);
        for (time, commit, produce) in steps {
            ts += time;
            committed += commit;
            end = (end + produce).max(committed);
            w.push(Point::new(ts, Some(committed), end));
            let status = evaluate(&w, &rules);
            prop_assert!(!status.is_error(), "{status} while committing");
        }
    }

    #[test]
    fn property_stale_and_duplicate_points_change_nothing((cap, rules) in rules(), points in walk(40, 1_000)) {
        let mut clean = Window::new(cap);
        let mut noisy = Window::new(cap);
        for point in &points {
            clean.push(*point);
            noisy.push(*point);
            // Replays: the same time again, and an older time.
            let replay = Point::new(point.ts_ms, Some(0), point.end + 1_000);
            prop_assert_eq!(noisy.push(replay), Push::Ignored);
            let stale = Point::new(point.ts_ms - 1, Some(0), 0);
            prop_assert_eq!(noisy.push(stale), Push::Ignored);
            prop_assert_eq!(evaluate(&clean, &rules), evaluate(&noisy, &rules));
        }
    }

    #[test]
    fn property_unknown_exactly_below_min_points((cap, rules) in rules(), points in walk(40, 1_000)) {
        let mut w = Window::new(cap);
        for point in points {
            w.push(point);
            let known = w.observed().count();
            let unknown = evaluate(&w, &rules) == Unknown;
            prop_assert_eq!(unknown, known < rules.effective_min_points(cap));
        }
    }

    #[test]
    fn property_group_is_the_maximum(
        statuses in prop::collection::vec(prop::sample::select(Status::ALL.to_vec()), 0..=20)
    ) {
        let statuses: Vec<(usize, Status)> = statuses.into_iter().enumerate().collect();
        let group = group_status(statuses.iter().copied());
        let worst = statuses.iter().map(|(_, s)| *s).max().unwrap_or(Unknown);
        prop_assert_eq!(group.status, worst);
        let at_worst: Vec<usize> = statuses
            .iter()
            .filter(|(_, s)| *s == worst)
            .map(|(i, _)| *i)
            .collect();
        prop_assert_eq!(group.partitions, at_worst);
    }
}
