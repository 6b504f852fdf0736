//! Prometheus metrics of the collector.
//!
//! Names follow `lagwatch_<subsystem>_<name>_<unit>`; the per-partition lag
//! gauges are served on `/metrics` for scrapers that want lag directly.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Handles to the collector's metrics (cheap to clone).
#[derive(Clone)]
pub struct CollectorMetrics {
    pub samples_published: IntCounter,
    pub publish_errors: IntCounter,
    pub cycle_seconds: Histogram,
    pub cycle_errors: IntCounterVec,
    pub partition_lag: GaugeVec,
    /// Lag against the last stable offset, for partitions sampled with one
    /// (groups a read_committed monitor watches).
    pub partition_lag_read_committed: GaugeVec,
    pub partition_time_lag: GaugeVec,
    pub committed_below_log_start: GaugeVec,
    pub store_errors: IntCounter,
    /// Unix time (s) of each cluster's last cycle that sampled at least one
    /// group completely and published everything; `/readyz` and the
    /// "cluster not sampled" self-alert read it.
    pub last_success: IntGaugeVec,
    // kafka_exporter-compatible families.
    pub group_lag: GaugeVec,
    pub group_lag_sum: GaugeVec,
    pub group_current_offset: GaugeVec,
    pub group_members: GaugeVec,
    pub topic_current_offset: GaugeVec,
    pub topic_oldest_offset: GaugeVec,
}

const PARTITION_LABELS: &[&str] = &["cluster", "consumergroup", "topic", "partition"];

fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, prometheus::Error> {
    GaugeVec::new(Opts::new(name, help), labels)
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
            partition_lag: gauge(
                "lagwatch_partition_lag_messages",
                "Offset lag of a consumer group on a partition (vs high watermark)",
                PARTITION_LABELS,
            )?,
            partition_lag_read_committed: gauge(
                "lagwatch_partition_lag_read_committed_messages",
                "Offset lag of a consumer group on a partition as a read_committed consumer sees it (vs last stable offset); only for groups a read_committed monitor watches",
                PARTITION_LABELS,
            )?,
            partition_time_lag: gauge(
                "lagwatch_partition_time_lag_seconds",
                "Estimated time the committed offset is behind the producer",
                PARTITION_LABELS,
            )?,
            committed_below_log_start: gauge(
                "lagwatch_partition_committed_below_log_start",
                "1 when the committed offset is older than the log start (data lost to retention)",
                PARTITION_LABELS,
            )?,
            group_lag: gauge(
                "kafka_consumergroup_lag",
                "Current approximate lag of a consumer group at topic/partition",
                PARTITION_LABELS,
            )?,
            group_lag_sum: gauge(
                "kafka_consumergroup_lag_sum",
                "Current approximate lag of a consumer group at topic for all partitions",
                &["cluster", "consumergroup", "topic"],
            )?,
            group_current_offset: gauge(
                "kafka_consumergroup_current_offset",
                "Current committed offset of a consumer group at topic/partition",
                PARTITION_LABELS,
            )?,
            group_members: gauge(
                "kafka_consumergroup_members",
                "Number of members of a consumer group",
                &["cluster", "consumergroup"],
            )?,
            topic_current_offset: gauge(
                "kafka_topic_partition_current_offset",
                "Current end offset (high watermark) of a topic/partition",
                &["cluster", "topic", "partition"],
            )?,
            topic_oldest_offset: gauge(
                "kafka_topic_partition_oldest_offset",
                "Oldest offset (log start) of a topic/partition",
                &["cluster", "topic", "partition"],
            )?,
            last_success: IntGaugeVec::new(
                Opts::new(
                    "lagwatch_collector_last_success_timestamp_seconds",
                    "Unix time of the cluster's last cycle with a complete, published sample",
                ),
                &["cluster"],
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
        registry.register(Box::new(metrics.partition_lag_read_committed.clone()))?;
        registry.register(Box::new(metrics.partition_time_lag.clone()))?;
        registry.register(Box::new(metrics.committed_below_log_start.clone()))?;
        registry.register(Box::new(metrics.group_lag.clone()))?;
        registry.register(Box::new(metrics.group_lag_sum.clone()))?;
        registry.register(Box::new(metrics.group_current_offset.clone()))?;
        registry.register(Box::new(metrics.group_members.clone()))?;
        registry.register(Box::new(metrics.topic_current_offset.clone()))?;
        registry.register(Box::new(metrics.topic_oldest_offset.clone()))?;
        registry.register(Box::new(metrics.store_errors.clone()))?;
        registry.register(Box::new(metrics.last_success.clone()))?;
        Ok(metrics)
    }
}
