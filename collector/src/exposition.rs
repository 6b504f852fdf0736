//! Prometheus exposition of sampled lag.
//!
//! Besides lagwatch's own names, the families of kafka_exporter are served
//! with the same names and labels (`kafka_consumergroup_lag{consumergroup,
//! topic,partition}` and friends), plus a `cluster` label, so existing
//! dashboards and alert rules keep working. Series of partitions or groups
//! that disappear are removed, so a scrape never shows stale lag.
//!
//! kafka_exporter's families keep its meaning (lag against the high
//! watermark). Partitions sampled with a last stable offset (groups a
//! read_committed monitor watches) also get
//! `lagwatch_partition_lag_read_committed_messages`: the lag such a monitor
//! is judged on, computed by the evaluator's own function
//! ([`lagwatch_model::PartitionSample::lag_for`]). Its own series rather
//! than an `isolation` label, so that no existing query over
//! `lagwatch_partition_lag_messages` starts summing two lags of one
//! partition.

use std::collections::{HashMap, HashSet};

use lagwatch_model::{GroupSample, Isolation};
use prometheus::GaugeVec;

use crate::metrics::CollectorMetrics;

/// Remembers which series a poller exported, to drop the stale ones.
#[derive(Debug, Default)]
pub struct Exposition {
    previous: HashMap<&'static str, HashSet<Vec<String>>>,
}

impl Exposition {
    /// Sets every family from one cycle's samples of one cluster.
    pub fn export(&mut self, metrics: &CollectorMetrics, samples: &[GroupSample]) {
        let mut current: HashMap<&'static str, HashSet<Vec<String>>> = HashMap::new();
        let mut set = |name: &'static str, family: &GaugeVec, labels: Vec<String>, value: f64| {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            family.with_label_values(&refs).set(value);
            current.entry(name).or_default().insert(labels);
        };
        for sample in samples {
            let cluster = &sample.cluster;
            let group = &sample.group;
            if sample.error.is_none() || !sample.partitions.is_empty() {
                set(
                    "members",
                    &metrics.group_members,
                    vec![cluster.clone(), group.clone()],
                    f64::from(sample.members),
                );
            }
            let mut lag_sum: HashMap<&str, i64> = HashMap::new();
            for p in &sample.partitions {
                let partition = p.partition.to_string();
                let labels = || {
                    vec![
                        cluster.clone(),
                        group.clone(),
                        p.topic.clone(),
                        partition.clone(),
                    ]
                };
                let topic_labels = || vec![cluster.clone(), p.topic.clone(), partition.clone()];
                set(
                    "end",
                    &metrics.topic_current_offset,
                    topic_labels(),
                    p.end as f64,
                );
                if let Some(start) = p.log_start {
                    set(
                        "start",
                        &metrics.topic_oldest_offset,
                        topic_labels(),
                        start as f64,
                    );
                }
                if let Some(committed) = p.committed {
                    set(
                        "committed",
                        &metrics.group_current_offset,
                        labels(),
                        committed as f64,
                    );
                }
                if let Some(lag) = p.lag {
                    set("lag", &metrics.group_lag, labels(), lag as f64);
                    set("own_lag", &metrics.partition_lag, labels(), lag as f64);
                    *lag_sum.entry(p.topic.as_str()).or_default() += lag;
                }
                if let (Some(_), Some(lag)) = (p.lso, p.lag_for(Isolation::ReadCommitted)) {
                    set(
                        "lag_read_committed",
                        &metrics.partition_lag_read_committed,
                        labels(),
                        lag as f64,
                    );
                }
                if let Some(ms) = p.time_lag_ms {
                    set(
                        "time_lag",
                        &metrics.partition_time_lag,
                        labels(),
                        ms as f64 / 1000.0,
                    );
                }
                let expired = if p.committed_below_log_start() {
                    1.0
                } else {
                    0.0
                };
                set(
                    "expired",
                    &metrics.committed_below_log_start,
                    labels(),
                    expired,
                );
            }
            for (topic, sum) in lag_sum {
                set(
                    "lag_sum",
                    &metrics.group_lag_sum,
                    vec![cluster.clone(), group.clone(), topic.to_string()],
                    sum as f64,
                );
            }
        }
        let families: [(&'static str, &GaugeVec); 10] = [
            ("members", &metrics.group_members),
            ("end", &metrics.topic_current_offset),
            ("start", &metrics.topic_oldest_offset),
            ("committed", &metrics.group_current_offset),
            ("lag", &metrics.group_lag),
            ("own_lag", &metrics.partition_lag),
            ("lag_read_committed", &metrics.partition_lag_read_committed),
            ("time_lag", &metrics.partition_time_lag),
            ("expired", &metrics.committed_below_log_start),
            ("lag_sum", &metrics.group_lag_sum),
        ];
        for (name, family) in families {
            let Some(previous) = self.previous.get(name) else {
                continue;
            };
            let now = current.get(name);
            for stale in previous
                .iter()
                .filter(|l| now.is_none_or(|n| !n.contains(*l)))
            {
                let refs: Vec<&str> = stale.iter().map(String::as_str).collect();
                let _ = family.remove_label_values(&refs);
            }
        }
        self.previous = current;
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{PartitionSample, WIRE_VERSION};
    use prometheus::{Encoder, Registry, TextEncoder};

    use super::*;

    fn sample(partitions: Vec<PartitionSample>) -> GroupSample {
        GroupSample {
            v: WIRE_VERSION,
            cluster: "c".into(),
            group: "g".into(),
            state: "Stable".into(),
            members: 2,
            ts_ms: 0,
            error: None,
            partitions,
        }
    }

    fn scrape(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn serves_kafka_exporter_names_and_drops_stale_series() {
        let registry = Registry::new();
        let metrics = CollectorMetrics::register(&registry).expect("register");
        let mut exposition = Exposition::default();
        let mut p0 = PartitionSample::new("orders", 0, Some(100), 1000);
        p0.log_start = Some(150);
        let mut p1 = PartitionSample::new("orders", 1, Some(990), 1000);
        p1.lso = Some(995);
        exposition.export(&metrics, &[sample(vec![p0, p1.clone()])]);
        let text = scrape(&registry);
        assert!(text.contains(r#"kafka_consumergroup_lag{cluster="c",consumergroup="g",partition="0",topic="orders"} 900"#), "{text}");
        assert!(text.contains(
            r#"kafka_consumergroup_lag_sum{cluster="c",consumergroup="g",topic="orders"} 910"#
        ));
        assert!(text.contains(r#"kafka_consumergroup_members{cluster="c",consumergroup="g"} 2"#));
        assert!(text.contains(
            r#"kafka_topic_partition_current_offset{cluster="c",partition="1",topic="orders"} 1000"#
        ));
        assert!(text.contains(r#"kafka_consumergroup_current_offset{cluster="c",consumergroup="g",partition="0",topic="orders"} 100"#));
        assert!(text.contains(r#"lagwatch_partition_committed_below_log_start{cluster="c",consumergroup="g",partition="0",topic="orders"} 1"#));
        // Sampled with a last stable offset: the read_committed lag too,
        // next to (not instead of) the high-watermark lag.
        assert!(text.contains(r#"lagwatch_partition_lag_read_committed_messages{cluster="c",consumergroup="g",partition="1",topic="orders"} 5"#), "{text}");
        assert!(text.contains(r#"lagwatch_partition_lag_messages{cluster="c",consumergroup="g",partition="1",topic="orders"} 10"#), "{text}");
        assert!(!text.contains(r#"lagwatch_partition_lag_read_committed_messages{cluster="c",consumergroup="g",partition="0""#), "no LSO, no series: {text}");

        // Partition 0 disappears (e.g. monitor changed): its series go away.
        exposition.export(&metrics, &[sample(vec![p1])]);
        let text = scrape(&registry);
        assert!(!text.contains(r#"partition="0""#), "{text}");
        assert!(text.contains(r#"kafka_consumergroup_lag{cluster="c",consumergroup="g",partition="1",topic="orders"} 10"#));
    }
}
