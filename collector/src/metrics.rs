//! Prometheus metrics of the collector.
//!
//! Names follow `lagwatch_<subsystem>_<name>_<unit>`; the per-partition lag
//! gauges are served on `/metrics` for scrapers that want lag directly.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Handles to the collector's metrics (cheap to clone).
#[derive(Clone)]
pub struct CollectorMetrics {
    pub samples_published: IntCounter,
    pub publish_errors: IntCounter,
    pub cycle_seconds: Histogram,
    pub cycle_errors: IntCounterVec,
    pub partition_lag: IntGaugeVec,
    pub store_errors: IntCounter,
}

impl CollectorMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = CollectorMetrics {
            samples_published: IntCounter::new(
                "lagwatch_collector_samples_published_total",
                "Group samples acknowledged by the metrics topic",
            )?,
            publish_errors: IntCounter::new(
                "lagwatch_collector_publish_errors_total",
                "Group samples the metrics topic did not acknowledge",
            )?,
            cycle_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "lagwatch_collector_cycle_duration_seconds",
                    "Wall time of one sampling cycle of one cluster",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )?,
            cycle_errors: IntCounterVec::new(
                Opts::new(
                    "lagwatch_collector_sample_errors_total",
                    "Group samples that carried an error, by cluster",
                ),
                &["cluster"],
            )?,
            partition_lag: IntGaugeVec::new(
                Opts::new(
                    "lagwatch_partition_lag_messages",
                    "Offset lag of a consumer group on a partition",
                ),
                &["cluster", "consumergroup", "topic", "partition"],
            )?,
            store_errors: IntCounter::new(
                "lagwatch_collector_monitor_store_errors_total",
                "Failed reads of the monitor store",
            )?,
        };
        registry.register(Box::new(metrics.samples_published.clone()))?;
        registry.register(Box::new(metrics.publish_errors.clone()))?;
        registry.register(Box::new(metrics.cycle_seconds.clone()))?;
        registry.register(Box::new(metrics.cycle_errors.clone()))?;
        registry.register(Box::new(metrics.partition_lag.clone()))?;
        registry.register(Box::new(metrics.store_errors.clone()))?;
        Ok(metrics)
    }
}
