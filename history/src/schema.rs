//! Versioned ClickHouse DDL.
//!
//! Each migration is idempotent (`IF NOT EXISTS`) and recorded in
//! `schema_migrations`, so `lagwatch migrate` can run any number of times
//! and at every start.

use super::{client, HistoryError};
use crate::config::ClickHouseConfig;

/// DDL of a rollup table: per partition and time bucket, the max and sum of
/// lag, the sample count (avg = sum / samples), the max time lag, and the
/// last (max, since offsets only grow) end and committed offsets.
macro_rules! rollup_table {
    ($name:literal, $ttl:literal) => {
        concat!(
            "CREATE TABLE IF NOT EXISTS {db}.",
            $name,
            " (
            ts                    DateTime('UTC') CODEC(DoubleDelta, ZSTD(3)),
            cluster               LowCardinality(String),
            consumer_group        LowCardinality(String),
            topic                 LowCardinality(String),
            partition             Int32,
            max_lag               SimpleAggregateFunction(max, Int64),
            sum_lag               SimpleAggregateFunction(sum, Int64),
            samples               SimpleAggregateFunction(sum, UInt64),
            max_time_lag_ms       SimpleAggregateFunction(max, Int64),
            last_end_offset       SimpleAggregateFunction(max, Int64),
            last_committed_offset SimpleAggregateFunction(max, Int64)
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (cluster, consumer_group, topic, partition, ts)
        TTL ts + INTERVAL ",
            $ttl,
            " DAY
        SETTINGS non_replicated_deduplication_window = 1000"
        )
    };
}

/// DDL of the materialized view feeding a rollup table from raw samples.
macro_rules! rollup_view {
    ($name:literal, $bucket:literal) => {
        concat!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.",
            $name,
            "_mv TO {db}.",
            $name,
            " AS SELECT
            ",
            $bucket,
            "(ts) AS ts,
            cluster, consumer_group, topic, partition,
            max(ifNull(lag, 0)) AS max_lag,
            sum(ifNull(lag, 0)) AS sum_lag,
            toUInt64(count()) AS samples,
            max(ifNull(time_lag_ms, 0)) AS max_time_lag_ms,
            max(end_offset) AS last_end_offset,
            max(ifNull(committed_offset, 0)) AS last_committed_offset
        FROM {db}.lag_samples
        GROUP BY ts, cluster, consumer_group, topic, partition"
        )
    };
}

/// The migrations in order. Placeholders: `{db}`, `{raw_days}`,
/// `{rollup_1m_days}`, `{rollup_1h_days}`, `{alert_days}`.
///
/// Every MergeTree table sets `non_replicated_deduplication_window`, so the
/// writer's `insert_deduplication_token` makes retried batches exactly-once,
/// also in the rollups (the writer sets
/// `deduplicate_blocks_in_dependent_materialized_views`).
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        // Raw samples. Offsets are monotonic per partition, so Delta + ZSTD
        // stores them in a few bits; sample times are the collector's
        // scheduled ticks, so DoubleDelta makes them almost free; keys are
        // LowCardinality and sorted, so they cost next to nothing per row;
        // lag is an ALIAS of the offsets, so it is not stored at all.
        "CREATE TABLE IF NOT EXISTS {db}.lag_samples (
            ts               DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(3)),
            cluster          LowCardinality(String),
            consumer_group   LowCardinality(String),
            topic            LowCardinality(String),
            partition        Int32 CODEC(T64, ZSTD(3)),
            committed_offset Nullable(Int64) CODEC(Delta, ZSTD(3)),
            end_offset       Int64 CODEC(Delta, ZSTD(3)),
            -- Derived, not stored: costs nothing on disk.
            lag              Nullable(Int64) ALIAS if(isNull(committed_offset), NULL, greatest(end_offset - committed_offset, 0)),
            time_lag_ms      Nullable(Int64) CODEC(T64, ZSTD(3)),
            group_state      LowCardinality(String),
            members          UInt32 CODEC(T64, ZSTD(3))
        ) ENGINE = MergeTree
        PARTITION BY toDate(ts)
        ORDER BY (cluster, consumer_group, topic, partition, ts)
        TTL toDateTime(ts) + INTERVAL {raw_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS {db}.alert_events (
            ts             DateTime64(3, 'UTC'),
            fingerprint    String,
            rule           LowCardinality(String),
            state          LowCardinality(String),
            monitor_id     Int64,
            team           LowCardinality(String),
            cluster        LowCardinality(String),
            consumer_group LowCardinality(String),
            max_lag        Int64,
            total_lag      Int64,
            threshold      Int64,
            partitions     String CODEC(ZSTD(3))
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (cluster, consumer_group, ts, fingerprint)
        TTL toDateTime(ts) + INTERVAL {alert_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000",
    ),
    (3, rollup_table!("lag_samples_1m", "{rollup_1m_days}")),
    (4, rollup_view!("lag_samples_1m", "toStartOfMinute")),
    (5, rollup_table!("lag_samples_1h", "{rollup_1h_days}")),
    (6, rollup_view!("lag_samples_1h", "toStartOfHour")),
    (
        7,
        // Which team watches which group: lets dashboards filter by team.
        "CREATE TABLE IF NOT EXISTS {db}.monitor_groups (
            team           LowCardinality(String),
            cluster        LowCardinality(String),
            consumer_group LowCardinality(String),
            monitor_id     Int64,
            updated_at     DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree(updated_at)
        ORDER BY (team, cluster, consumer_group, monitor_id)
        SETTINGS non_replicated_deduplication_window = 1000",
    ),
    (
        8,
        "CREATE TABLE IF NOT EXISTS {db}.broker_metrics (
            ts      DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(3)),
            cluster LowCardinality(String),
            broker  Int32 CODEC(T64, ZSTD(3)),
            metric  LowCardinality(String),
            topic   LowCardinality(String),
            value   Float64 CODEC(Gorilla, ZSTD(3))
        ) ENGINE = MergeTree
        PARTITION BY toDate(ts)
        ORDER BY (cluster, metric, broker, topic, ts)
        TTL toDateTime(ts) + INTERVAL {raw_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000",
    ),
    (
        9,
        // What the notifier did with each transition: per-topic rule's
        // topic, the compared value of sum/time/broker rules, the broker of
        // per-broker rules, reminders, and why a notification was not sent.
        "ALTER TABLE {db}.alert_events
            ADD COLUMN IF NOT EXISTS topic    LowCardinality(String) DEFAULT '',
            ADD COLUMN IF NOT EXISTS value    Nullable(Float64),
            ADD COLUMN IF NOT EXISTS broker   Nullable(Int32),
            ADD COLUMN IF NOT EXISTS repeat   UInt8 DEFAULT 0,
            ADD COLUMN IF NOT EXISTS muted_by String DEFAULT ''",
    ),
    (
        10,
        // The last stable offset, sampled for groups a read_committed
        // monitor watches (NULL otherwise): the lag such a monitor is judged
        // on is `lso_offset - committed_offset`. Stored as its distance
        // below the end offset — 0 or a few in-flight transactional records
        // nearly always, which T64 + ZSTD keep in well under a byte — and
        // read back through the `lso_offset` ALIAS. (The offset itself with
        // Delta + ZSTD cost 1.2 bytes per sample, as much as `end_offset`,
        // and took a sample past the 5-byte budget.) A column of NULLs costs
        // next to nothing.
        "ALTER TABLE {db}.lag_samples
            ADD COLUMN IF NOT EXISTS lso_behind_end Nullable(Int64) CODEC(T64, ZSTD(3))
                AFTER end_offset,
            ADD COLUMN IF NOT EXISTS lso_offset Nullable(Int64)
                ALIAS end_offset - lso_behind_end",
    ),
    (
        11,
        // The group's Burrow-style status: on `lag_status` rows the rule's
        // (`stall`, `stop`, `rewind` when firing, `ok` or `warn` when
        // resolved), on other monitor rules' rows the group's status at the
        // sample; empty for broker and self alerts.
        "ALTER TABLE {db}.alert_events
            ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT ''",
    ),
];

/// Creates the database and applies pending migrations.
pub async fn migrate(config: &ClickHouseConfig) -> Result<Vec<u32>, HistoryError> {
    let client = client(config);
    let db = &config.database;
    let fail = |source| HistoryError::ClickHouse {
        url: config.url.clone(),
        source,
    };
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .execute()
        .await
        .map_err(fail)?;
    client
        .query(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
             (version UInt32, applied_at DateTime DEFAULT now()) \
             ENGINE = MergeTree ORDER BY version"
        ))
        .execute()
        .await
        .map_err(fail)?;
    let applied: Vec<u32> = client
        .query(&format!(
            "SELECT version FROM {db}.schema_migrations ORDER BY version"
        ))
        .fetch_all::<u32>()
        .await
        .map_err(fail)?;
    let mut newly_applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let sql = sql
            .replace("{db}", db)
            .replace("{raw_days}", &config.retention_days.to_string())
            .replace(
                "{rollup_1m_days}",
                &config.rollup_1m_retention_days.to_string(),
            )
            .replace(
                "{rollup_1h_days}",
                &config.rollup_1h_retention_days.to_string(),
            )
            .replace("{alert_days}", &config.alert_retention_days.to_string());
        client.query(&sql).execute().await.map_err(fail)?;
        client
            .query(&format!(
                "INSERT INTO {db}.schema_migrations (version) VALUES (?)"
            ))
            .bind(*version)
            .execute()
            .await
            .map_err(fail)?;
        tracing::info!(version, database = %db, "applied ClickHouse migration");
        newly_applied.push(*version);
    }
    Ok(newly_applied)
}
