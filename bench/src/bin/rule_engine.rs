//! Throughput of the window rules on one core: push one observation into a
//! partition's window and evaluate its status, for every partition-sample
//! of a synthetic workload. Pure CPU, no services needed.
//!
//! `BENCH_PARTITIONS` partitions (default 20,000) are sampled for
//! `BENCH_CYCLES` cycles (default 100) of 10 s of sample time, after as many
//! warm-up cycles as the window holds (so every window is full when the
//! clock starts). Windows hold `BENCH_WINDOW` points (default 10); the rules
//! are the defaults (`WindowRules::default()`).
//!
//! Partitions cycle through six behaviours so every rule is exercised:
//! commits every message (lag 0–2), steady lag, falling behind (WARN), a
//! batch consumer stuck for 12 cycles between jumps (STALL once the window
//! holds only the stuck run, STOP after), quiet topic caught up, and a
//! consumer reset to the past every 25 cycles (REWIND). Points are synthesised inside
//! the timed loop by a few integer operations; that cost is measured on its
//! own and printed next to the figure.
//!
//! Prints partition-samples per second and nanoseconds per push+evaluate
//! (target: at least 1,000,000 partition-samples/s on one core), the memory
//! of the windows, and how many evaluations ended in each status.

use std::hint::black_box;
use std::time::Instant;

use lagwatch_bench::env_number;
use lagwatch_rules::{evaluate, Point, Status, Window, WindowRules};

/// Sample interval of the synthetic workload.
const INTERVAL_MS: i64 = 10_000;
/// Sample time of cycle 0.
const START_MS: i64 = 1_700_000_000_000;

/// A cheap deterministic hash, for jitter.
fn mix(partition: i64, cycle: i64) -> i64 {
    let mut x = (partition as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(cycle as u64);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x & 0xFFFF) as i64
}

/// Observation of `partition` at `cycle`.
fn synth(partition: i64, cycle: i64) -> Point {
    let ts = START_MS + cycle * INTERVAL_MS + partition % 1_000;
    let base = 1_000 + partition * 7;
    let jitter = mix(partition, cycle);
    let (committed, end) = match partition % 6 {
        // Commits every message: lag 0..=2.
        0 => {
            let end = base + cycle * 100;
            (end - jitter % 3, end)
        }
        // Steady lag around 100, keeping pace.
        1 => {
            let end = base + cycle * 100;
            (end - 100 - jitter % 10, end)
        }
        // Falling behind: produces 50, consumes 40 per cycle.
        2 => (base + cycle * 40, base + cycle * 50),
        // Batch consumer: stuck for 12 cycles, then jumps to near the end.
        3 => {
            let end = base + cycle * 30;
            let last_jump = cycle - cycle % 12;
            (base + last_jump * 30 - 5, end)
        }
        // Quiet topic, caught up.
        4 => (base, base),
        // Keeps up, but is reset 500 back every 25 cycles.
        _ => {
            let end = base + 1_000 + cycle * 20;
            let back = if cycle % 25 == 0 { 500 } else { 0 };
            (end - jitter % 5 - back, end)
        }
    };
    Point::new(ts, Some(committed), end)
}

fn main() {
    let partitions = env_number("BENCH_PARTITIONS", 20_000) as i64;
    let cycles = env_number("BENCH_CYCLES", 100) as i64;
    let capacity = env_number("BENCH_WINDOW", 10) as usize;
    let rules = WindowRules::default();

    let mut windows: Vec<Window> = (0..partitions).map(|_| Window::new(capacity)).collect();
    let capacity = windows.first().map_or(capacity, Window::capacity);
    let warm_up = capacity as i64;
    for cycle in 0..warm_up {
        for (partition, window) in (0..).zip(windows.iter_mut()) {
            window.push(synth(partition, cycle));
        }
    }

    // Timed: push + evaluate for every partition-sample.
    let mut counts = [0u64; Status::ALL.len()];
    let started = Instant::now();
    for cycle in warm_up..warm_up + cycles {
        for (partition, window) in (0..).zip(windows.iter_mut()) {
            window.push(synth(partition, cycle));
            counts[evaluate(window, &rules) as usize] += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    // The synthesis alone, same loop shape, for reference.
    let synth_started = Instant::now();
    let mut checksum = 0i64;
    for cycle in warm_up..warm_up + cycles {
        for partition in 0..partitions {
            let point = black_box(synth(partition, cycle));
            checksum = checksum.wrapping_add(point.end ^ point.ts_ms);
        }
    }
    let synth_elapsed = synth_started.elapsed().as_secs_f64();
    black_box(checksum);

    let evaluations = (partitions * cycles).max(1) as f64;
    let window_bytes = std::mem::size_of::<Window>() + capacity * std::mem::size_of::<Point>();
    println!(
        "rule_engine: {partitions} partitions x {cycles} cycles (+{warm_up} warm-up), \
         window {capacity} points, allowed_lag {}, min_points {}, stop after the window span",
        rules.allowed_lag, rules.min_points
    );
    println!();
    println!(
        "{:<34} {:>14}",
        "partition-samples evaluated",
        partitions * cycles
    );
    println!("{:<34} {:>14.3}", "elapsed (s)", elapsed);
    println!(
        "{:<34} {:>14.0}",
        "partition-samples/s (one core)",
        evaluations / elapsed
    );
    println!(
        "{:<34} {:>14.1}",
        "ns per push+evaluate",
        elapsed * 1e9 / evaluations
    );
    println!(
        "{:<34} {:>14.1}",
        "  of which point synthesis (ns)",
        synth_elapsed * 1e9 / evaluations
    );
    println!("{:<34} {:>14}", "window bytes per partition", window_bytes);
    println!(
        "{:<34} {:>14.1}",
        "windows, all partitions (MiB)",
        (window_bytes as f64 * partitions as f64) / (1024.0 * 1024.0)
    );
    println!();
    println!("evaluations by status:");
    for status in Status::ALL {
        println!("  {:<8} {:>12}", status.as_str(), counts[status as usize]);
    }
}
