//! Versioned ClickHouse DDL.
//!
//! Each migration is idempotent (`IF NOT EXISTS`) and recorded in
//! `schema_migrations`, so `lagwatch migrate` can run any number of times
//! and at every start.

use super::{client, HistoryError};
use crate::config::ClickHouseConfig;

/// The migrations in order; `{db}` and `{retention_days}` are substituted.
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS {db}.lag_samples (
            ts               DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
            cluster          LowCardinality(String),
            consumer_group   LowCardinality(String),
            topic            LowCardinality(String),
            partition        Int32 CODEC(T64, ZSTD(1)),
            committed_offset Nullable(Int64),
            end_offset       Int64 CODEC(Delta, ZSTD(1)),
            lag              Nullable(Int64),
            group_state      LowCardinality(String),
            members          UInt32 CODEC(T64, ZSTD(1))
        ) ENGINE = MergeTree
        PARTITION BY toDate(ts)
        ORDER BY (cluster, consumer_group, topic, partition, ts)
        TTL toDateTime(ts) + INTERVAL {retention_days} DAY
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
            partitions     String
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMM(ts)
        ORDER BY (cluster, consumer_group, ts, fingerprint)
        SETTINGS non_replicated_deduplication_window = 1000",
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
            .replace("{retention_days}", &config.retention_days.to_string());
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
