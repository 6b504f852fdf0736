//! Row types of the ClickHouse tables, one per table, shared by the writer
//! and the readers so a column is described once. Field order and types
//! must match the columns in [`super::schema`]; readers select a row with
//! `?fields` and project it into their answer types (for example
//! [`crate::reader::AlertView`], [`crate::status_reader::PartitionPoint`]).

use lagwatch_model::{BrokerSample, GroupSample, Notification};
use serde::{Deserialize, Serialize};

/// One partition of one group sample (`lag_samples`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, clickhouse::Row, Serialize, Deserialize)]
pub struct SampleRow {
    /// Sample time in ms (`DateTime64(3)`).
    pub ts: i64,
    pub cluster: String,
    pub consumer_group: String,
    pub topic: String,
    pub partition: i32,
    pub committed_offset: Option<i64>,
    pub end_offset: i64,
    /// How far the last stable offset is below `end_offset` (the table's
    /// `lso_offset` ALIAS adds it back); sampled only for groups a
    /// read_committed monitor watches.
    pub lso_behind_end: Option<i64>,
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
                lso_behind_end: p.lso.map(|lso| p.end.saturating_sub(lso)),
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
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
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
    pub topic: String,
    pub value: Option<f64>,
    pub broker: Option<i32>,
    pub repeat: u8,
    /// Why the notification was not sent; empty when it was.
    pub muted_by: String,
    /// The group's window status: the `lag_status` rule's own status on its
    /// rows, the group's status at the sample on other monitor rules' rows;
    /// empty for broker and self alerts.
    pub status: String,
}

// Hashed for the batch's deduplication token; `value` by its bits.
impl std::hash::Hash for AlertRow {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.ts,
            &self.fingerprint,
            &self.rule,
            &self.state,
            self.monitor_id,
        )
            .hash(state);
        (&self.team, &self.cluster, &self.consumer_group).hash(state);
        (
            self.max_lag,
            self.total_lag,
            self.threshold,
            &self.partitions,
        )
            .hash(state);
        (&self.topic, self.value.map(f64::to_bits), self.broker).hash(state);
        (self.repeat, &self.muted_by, &self.status).hash(state);
    }
}

impl From<&Notification> for AlertRow {
    fn from(notification: &Notification) -> Self {
        let alert = &notification.alert;
        AlertRow {
            ts: alert.ts_ms,
            fingerprint: alert.fingerprint.clone(),
            rule: alert.rule.to_string(),
            state: alert.state.as_str().to_string(),
            monitor_id: alert.monitor_id,
            team: alert.team.clone(),
            cluster: alert.cluster.clone(),
            consumer_group: alert.consumer_group.clone(),
            max_lag: alert.max_lag,
            total_lag: alert.total_lag,
            threshold: alert.threshold,
            partitions: serde_json::to_string(&alert.partitions).unwrap_or_default(),
            topic: alert.topic.clone().unwrap_or_default(),
            value: alert.value,
            broker: alert.broker,
            repeat: u8::from(notification.repeat),
            muted_by: notification.muted_by.clone().unwrap_or_default(),
            status: alert
                .status
                .clone()
                .or_else(|| alert.group_status.clone())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::{AlertEvent, AlertState};

    use super::*;

    #[test]
    fn sample_rows_keep_the_last_stable_offset_as_its_distance_below_the_end() {
        let mut with_lso = lagwatch_model::PartitionSample::new("orders", 0, Some(40), 130);
        with_lso.lso = Some(100);
        let sample = GroupSample {
            v: lagwatch_model::WIRE_VERSION,
            cluster: "local".into(),
            group: "ledger".into(),
            state: "Empty".into(),
            members: 0,
            ts_ms: 5,
            error: None,
            partitions: vec![
                with_lso,
                lagwatch_model::PartitionSample::new("orders", 1, Some(7), 9),
            ],
        };
        let rows = SampleRow::from_sample(&sample);
        assert_eq!(
            (rows[0].lso_behind_end, rows[1].lso_behind_end),
            (Some(30), None)
        );
    }

    #[test]
    fn alert_rows_keep_what_the_notifier_did() {
        let mut alert = Notification::new(AlertEvent {
            fingerprint: "topic_lag_threshold/1/prod/billing/orders".into(),
            rule: lagwatch_model::Rule::TopicLagThreshold,
            state: AlertState::Firing,
            monitor_id: 1,
            team: "payments".into(),
            cluster: "prod".into(),
            consumer_group: "billing".into(),
            max_lag: 10,
            total_lag: 30,
            threshold: 20,
            ts_ms: 5,
            partitions: vec![],
            status: None,
            topic: Some("orders".into()),
            value: Some(30.0),
            broker: None,
            reason: None,
            group_status: None,
        });
        alert.repeat = true;
        alert.muted_by = Some("silence 4".into());
        let row = AlertRow::from(&alert);
        assert_eq!(
            (
                row.topic.as_str(),
                row.value,
                row.repeat,
                row.muted_by.as_str()
            ),
            ("orders", Some(30.0), 1, "silence 4")
        );
        alert.muted_by = None;
        alert.repeat = false;
        alert.alert.group_status = Some("warn".into());
        assert_eq!(AlertRow::from(&alert).status, "warn", "the group's status");
        alert.alert.status = Some("stop".into());
        let row = AlertRow::from(&alert);
        assert_eq!(
            (row.repeat, row.muted_by.as_str(), row.status.as_str()),
            (0, "", "stop")
        );
    }
}
