//! Prometheus metrics of the history writer.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Handles to the history writer's metrics (cheap to clone).
#[derive(Clone)]
pub struct HistoryMetrics {
    pub rows_written: IntCounterVec,
    pub write_errors: IntCounter,
    pub rows_buffered: IntGauge,
}

impl HistoryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = HistoryMetrics {
            rows_written: IntCounterVec::new(
                Opts::new(
                    "lagwatch_history_rows_written_total",
                    "Rows written to ClickHouse",
                ),
                &["table"],
            )?,
            write_errors: IntCounter::new(
                "lagwatch_history_write_errors_total",
                "Failed ClickHouse inserts (each is retried)",
            )?,
            rows_buffered: IntGauge::new(
                "lagwatch_history_rows_buffered",
                "Rows waiting to be written to ClickHouse",
            )?,
        };
        registry.register(Box::new(metrics.rows_written.clone()))?;
        registry.register(Box::new(metrics.write_errors.clone()))?;
        registry.register(Box::new(metrics.rows_buffered.clone()))?;
        Ok(metrics)
    }
}
