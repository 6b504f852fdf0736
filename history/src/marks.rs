//! What is already stored, so that records read again after a crash or a
//! rebalance are not stored twice.
//!
//! Why: the history stage commits its offsets a moment after ClickHouse
//! acknowledged, and an instance killed in between — or one that lost its
//! partitions in a rebalance — leaves stored rows whose offsets were never
//! committed. The next owner reads them again, in batches of another shape,
//! so ClickHouse's content-based deduplication token does not recognise
//! them. Samples of a group (and of a broker) travel on one topic partition
//! in time order, so the newest stored time per group is a complete
//! answer: anything at or before it is already stored.
//!
//! Alert events are not marked: a reminder carries the time of the
//! transition it repeats, so a time mark cannot tell it from the
//! transition; a re-read event may be stored twice (a duplicate row in
//! `alert_events`, never a lost one).

use std::collections::HashMap;

use serde::Deserialize;

use crate::{client, ClickHouseConfig, HistoryError};

/// How far back the marks look; records older than this are re-read only
/// after an outage longer than it, and are then stored again.
const LOOK_BACK_HOURS: u32 = 24;

/// The newest stored time (ms) per group and per broker.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredMarks {
    samples: HashMap<(String, String), i64>,
    brokers: HashMap<(String, i32), i64>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct GroupMark {
    cluster: String,
    consumer_group: String,
    ts_ms: i64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BrokerMark {
    cluster: String,
    broker: i32,
    ts_ms: i64,
}

impl StoredMarks {
    /// Reads the marks of the last day from ClickHouse.
    pub async fn load(config: &ClickHouseConfig) -> Result<Self, HistoryError> {
        let db = client(config).with_database(&config.database);
        let failed = |source| HistoryError::ClickHouse {
            url: config.url.clone(),
            source,
        };
        let window = format!("ts > now64(3) - toIntervalHour({LOOK_BACK_HOURS})");
        let groups = db
            .query(&format!(
                "SELECT cluster, consumer_group, toInt64(toUnixTimestamp64Milli(max(ts))) AS ts_ms \
                 FROM lag_samples WHERE {window} GROUP BY cluster, consumer_group"
            ))
            .fetch_all::<GroupMark>();
        let groups = tokio::time::timeout(config.query_timeout, groups).await;
        let brokers = db
            .query(&format!(
                "SELECT cluster, broker, toInt64(toUnixTimestamp64Milli(max(ts))) AS ts_ms \
                 FROM broker_metrics WHERE {window} GROUP BY cluster, broker"
            ))
            .fetch_all::<BrokerMark>();
        let brokers = tokio::time::timeout(config.query_timeout, brokers).await;
        let timeout = || HistoryError::Timeout {
            url: config.url.clone(),
            after: config.query_timeout,
        };
        let groups = groups.map_err(|_| timeout())?.map_err(failed)?;
        let brokers = brokers.map_err(|_| timeout())?.map_err(failed)?;
        Ok(StoredMarks {
            samples: groups
                .into_iter()
                .map(|m| ((m.cluster, m.consumer_group), m.ts_ms))
                .collect(),
            brokers: brokers
                .into_iter()
                .map(|m| ((m.cluster, m.broker), m.ts_ms))
                .collect(),
        })
    }

    /// Whether the group sample at `ts_ms` is already stored.
    pub fn has_sample(&self, cluster: &str, group: &str, ts_ms: i64) -> bool {
        self.samples
            .get(&(cluster.to_string(), group.to_string()))
            .is_some_and(|stored| ts_ms <= *stored)
    }

    /// Whether the sample of `broker` of `cluster` at `ts_ms` is already
    /// stored.
    pub fn has_broker(&self, cluster: &str, broker: i32, ts_ms: i64) -> bool {
        self.brokers
            .get(&(cluster.to_string(), broker))
            .is_some_and(|stored| ts_ms <= *stored)
    }

    /// Number of groups and brokers with a mark.
    pub fn len(&self) -> usize {
        self.samples.len() + self.brokers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_at_or_before_the_mark_counts_as_stored() {
        let marks = StoredMarks {
            samples: HashMap::from([(("c".to_string(), "g".to_string()), 1_000)]),
            brokers: HashMap::from([(("c".to_string(), 1), 500)]),
        };
        assert!(marks.has_sample("c", "g", 1_000));
        assert!(!marks.has_sample("c", "g", 1_001));
        assert!(!marks.has_sample("c", "other", 1));
        assert!(marks.has_broker("c", 1, 499) && !marks.has_broker("c", 1, 501));
        assert!(!marks.has_broker("c", 2, 1));
        assert_eq!(marks.len(), 2);
    }
}
