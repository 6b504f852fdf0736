//! Benchmark harnesses for lagwatch. Each binary in `src/bin/` builds its
//! own synthetic workload, measures, and prints a table of figures; run them
//! with `cargo run --release -p lagwatch-bench --bin <name>` against the
//! services of `tests/infra/up.sh`. See `bench/README.md`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Reads an environment variable with a default.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Reads a numeric setting from the environment.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds since the epoch, for unique names.
pub fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
