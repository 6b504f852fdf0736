//! Row types written to ClickHouse, one per table. Field order and types
//! must match the columns in [`super::schema`].

use lagwatch_model::{AlertEvent, BrokerSample, GroupSample};
use serde::Serialize;

/// One partition of one group sample (`lag_samples`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, clickhouse::Row, Serialize)]
pub struct SampleRow {
    /// Sample time in ms (`DateTime64(3)`).
    pub ts: i64,
    pub cluster: String,
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    pub time_lag_ms: Option<i64>,
    pub group_state: String,
    pub members: u32,
}

impl SampleRow {
    /// Approximate RowBinary size of the row, for byte-based batching.
    pub fn encoded_len(&self) -> usize {
        // Fixed-width columns plus length-prefixed strings.
        8 + 4
            + 9
            + 8
            + 9
            + 9
            + 4
            + 4 * 2
            + self.cluster.len()
            + self.consumer_group.len()
            + self.topic.len()
            + self.group_state.len()
    }

    /// One row per partition of `sample`.
    pub fn from_sample(sample: &GroupSample) -> Vec<SampleRow> {
        sample
            .partitions
            .iter()
            .map(|p| SampleRow {
                ts: sample.ts_ms,
                cluster: sample.cluster.clone(),
                consumer_group: sample.group.clone(),
                topic: p.topic.clone(),
                partition: p.partition,
                committed_offset: p.committed,
                end_offset: p.end,
                time_lag_ms: p.time_lag_ms,
                group_state: sample.state.clone(),
                members: sample.members,
            })
            .collect()
    }
}

/// One broker metric value (`broker_metrics`).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct BrokerRow {
    pub ts: i64,
    pub cluster: String,
    pub broker: i32,
    pub metric: String,
    /// Topic (or request name); empty for broker totals.
    pub topic: String,
    pub value: f64,
}

impl std::hash::Hash for BrokerRow {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.ts,
            &self.cluster,
            self.broker,
            &self.metric,
            &self.topic,
        )
            .hash(state);
        self.value.to_bits().hash(state);
    }
}

impl BrokerRow {
    /// One row per metric of `sample`.
    pub fn from_sample(sample: &BrokerSample) -> Vec<BrokerRow> {
        sample
            .metrics
            .iter()
            .map(|m| BrokerRow {
                ts: sample.ts_ms,
                cluster: sample.cluster.clone(),
                broker: sample.broker,
                metric: m.name.clone(),
                topic: m.topic.clone().unwrap_or_default(),
                value: m.value,
            })
            .collect()
    }
}

/// One alert transition (`alert_events`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, clickhouse::Row, Serialize)]
pub struct AlertRow {
    pub ts: i64,
    pub fingerprint: String,
    pub rule: String,
    pub state: String,
    pub monitor_id: i64,
    pub team: String,
    pub cluster: String,
    pub consumer_group: String,
    pub max_lag: i64,
    pub total_lag: i64,
    pub threshold: i64,
    /// JSON array of the lagging partitions.
    pub partitions: String,
}

impl From<&AlertEvent> for AlertRow {
    fn from(alert: &AlertEvent) -> Self {
        AlertRow {
            ts: alert.ts_ms,
            fingerprint: alert.fingerprint.clone(),
            rule: alert.rule.clone(),
            state: alert.state.as_str().to_string(),
            monitor_id: alert.monitor_id,
            team: alert.team.clone(),
            cluster: alert.cluster.clone(),
            consumer_group: alert.consumer_group.clone(),
            max_lag: alert.max_lag,
            total_lag: alert.total_lag,
            threshold: alert.threshold,
            partitions: serde_json::to_string(&alert.partitions).unwrap_or_default(),
        }
    }
}
