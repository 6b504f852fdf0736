//! Prometheus metrics of the history writer.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Handles to the history writer's metrics (cheap to clone).
#[derive(Clone)]
pub struct HistoryMetrics {
    pub rows_written: IntCounterVec,
    pub write_errors: IntCounter,
    pub rows_buffered: IntGauge,
    /// Rows of batches ClickHouse kept refusing, sent to the dead-letter
    /// topic.
    pub dead_letter_rows: IntCounterVec,
    /// Messages of the topics history reads that are not stored yet.
    pub backlog_messages: IntGauge,
    /// Unix time (s) of the newest sample or event stored; falls behind
    /// the clock while history does.
    pub stored_until: IntGauge,
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
            dead_letter_rows: IntCounterVec::new(
                Opts::new(
                    "lagwatch_history_dead_letter_rows_total",
                    "Rows ClickHouse kept refusing, sent to the dead-letter topic",
                ),
                &["table"],
            )?,
            backlog_messages: IntGauge::new(
                "lagwatch_history_backlog_messages",
                "Messages of the metrics and alert-event topics not yet stored in ClickHouse",
            )?,
            stored_until: IntGauge::new(
                "lagwatch_history_stored_until_timestamp_seconds",
                "Unix time of the newest sample or alert event stored in ClickHouse",
            )?,
        };
        registry.register(Box::new(metrics.dead_letter_rows.clone()))?;
        registry.register(Box::new(metrics.backlog_messages.clone()))?;
        registry.register(Box::new(metrics.stored_until.clone()))?;
        registry.register(Box::new(metrics.rows_written.clone()))?;
        registry.register(Box::new(metrics.write_errors.clone()))?;
        registry.register(Box::new(metrics.rows_buffered.clone()))?;
        Ok(metrics)
    }
}
