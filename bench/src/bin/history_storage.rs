//! ClickHouse history: bytes per partition-sample on disk for a synthetic
//! day, and insert throughput of the lagwatch history writer.
//!
//! Settings (environment): `LAGWATCH_TEST_CLICKHOUSE_URL` (default
//! `http://127.0.0.1:18123`), `BENCH_PARTITIONS` (default 1000),
//! `BENCH_INTERVAL_S` (default 10), `BENCH_WRITER_ROWS` (default 200000),
//! `BENCH_LSO` (`none`, the default: no last stable offset, as for groups
//! no read_committed monitor watches; `all`: every sample carries one, a
//! few offsets below the end offset as on a transactional topic).

use std::time::{Duration, Instant};

use lagwatch_bench::{env_number, env_or, epoch_secs};
use lagwatch_history::{self as history, Checkpoint, HistoryRecord, HistoryWriter};
use lagwatch_history::{ClickHouseConfig, HistoryMetrics};
use lagwatch_model::{GroupSample, PartitionSample, Secret, WIRE_VERSION};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct PartsSummary {
    rows: u64,
    parts: u64,
    bytes_on_disk: u64,
    compressed: u64,
    uncompressed: u64,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct ColumnSize {
    column: String,
    compressed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = env_or("LAGWATCH_TEST_CLICKHOUSE_URL", "http://127.0.0.1:18123");
    let partitions = env_number("BENCH_PARTITIONS", 1_000);
    let interval_s = env_number("BENCH_INTERVAL_S", 10);
    let writer_rows = env_number("BENCH_WRITER_ROWS", 200_000);
    let lso = match env_or("BENCH_LSO", "none").as_str() {
        "all" => "toInt64(cityHash64(s, p, 2) % 4)",
        _ => "CAST(NULL AS Nullable(Int64))",
    };
    let database = format!("lw_bench_{}", epoch_secs());
    let config = ClickHouseConfig {
        url: url.clone(),
        database: database.clone(),
        user: "default".into(),
        password: Secret::default(),
        batch_rows: 10_000,
        batch_bytes: 8 << 20,
        flush_interval: Duration::from_millis(200),
        retention_days: 3650,
        rollup_1m_retention_days: 3650,
        rollup_1h_retention_days: 3650,
        alert_retention_days: 3650,
        ..ClickHouseConfig::with_url(url.clone())
    };
    history::migrate(&config).await?;
    let client = history::client(&config).with_database(&database);

    // 1. A synthetic day: every partition sampled every interval.
    let samples_per_partition = 86_400 / interval_s;
    let total = partitions * samples_per_partition;
    println!(
        "synthetic day: {partitions} partitions x {samples_per_partition} samples = {total} rows"
    );
    let day_start = 1_764_460_800u64; // 2025-11-30 00:00:00 UTC
    let started = Instant::now();
    let chunk = 1_000_000u64;
    let mut offset = 0;
    while offset < total {
        let count = chunk.min(total - offset);
        // Each partition has its own produce rate (5..=204 msg/s) with
        // per-sample noise; lag follows a slow wave plus noise, as a
        // consumer that keeps up with bursts does. Sample times are the
        // collector's scheduled ticks. `lag` is derived by the table.
        let sql = format!(
            "INSERT INTO lag_samples (ts, cluster, consumer_group, topic, partition,
                                      committed_offset, end_offset, lso_behind_end, time_lag_ms, group_state, members)
             SELECT ts, cluster, consumer_group, topic, partition, committed_offset, end_offset,
                    lso_behind_end, time_lag_ms, group_state, members
             FROM (SELECT
               toDateTime64({day_start} + s * {interval_s}, 3, 'UTC') AS ts,
               'prod-eu' AS cluster,
               concat('service-', toString(intDiv(p, 20))) AS consumer_group,
               concat('events.', toString(intDiv(p, 20) % 25)) AS topic,
               toInt32(p % 20) AS partition,
               end_offset - lag AS committed_offset,
               end_offset,
               {lso} AS lso_behind_end,
               lag,
               toInt64(lag * 1000 / rate) AS time_lag_ms,
               'Stable' AS group_state,
               toUInt32(4) AS members
             FROM (
               SELECT number % {partitions} AS p, intDiv(number, {partitions}) AS s,
                      toInt64(5 + p % 200) AS rate,
                      toInt64(p * 1000000000 + s * {interval_s} * rate + cityHash64(p, s) % rate) AS end_offset,
                      toInt64(abs(sin((s + p * 37) / 180.0)) * rate * 20 + cityHash64(s, p, 1) % rate) AS lag
               FROM numbers({offset}, {count})
             ))"
        );
        client.query(&sql).execute().await?;
        offset += count;
    }
    let generated = started.elapsed();
    for table in ["lag_samples", "lag_samples_1m", "lag_samples_1h"] {
        client
            .query(&format!("OPTIMIZE TABLE {table} FINAL"))
            .execute()
            .await?;
    }
    println!(
        "generated in {:.1}s (server-side INSERT SELECT), merged with OPTIMIZE FINAL",
        generated.as_secs_f64()
    );
    println!();
    println!(
        "{:<16} {:>12} {:>6} {:>14} {:>14} {:>16} {:>14}",
        "table", "rows", "parts", "bytes_on_disk", "compressed", "uncompressed", "disk_B/sample"
    );
    for table in ["lag_samples", "lag_samples_1m", "lag_samples_1h"] {
        let summary: PartsSummary = client
            .query(
                "SELECT sum(rows) AS rows, count() AS parts, sum(bytes_on_disk) AS bytes_on_disk,
                        sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed
                 FROM system.parts WHERE database = ? AND table = ? AND active",
            )
            .bind(&database)
            .bind(table)
            .fetch_one()
            .await?;
        println!(
            "{:<16} {:>12} {:>6} {:>14} {:>14} {:>16} {:>14.3}",
            table,
            summary.rows,
            summary.parts,
            summary.bytes_on_disk,
            summary.compressed,
            summary.uncompressed,
            summary.bytes_on_disk as f64 / total as f64
        );
    }
    let columns: Vec<ColumnSize> = client
        .query(
            "SELECT name AS column, data_compressed_bytes AS compressed FROM system.columns
             WHERE database = ? AND table = 'lag_samples' ORDER BY compressed DESC",
        )
        .bind(&database)
        .fetch_all()
        .await?;
    println!();
    println!("lag_samples per column (compressed bytes per sample):");
    for column in columns {
        println!(
            "  {:<18} {:>8.3}",
            column.column,
            column.compressed as f64 / total as f64
        );
    }

    // 2. Insert throughput of the history writer (RowBinary over HTTP).
    let registry = prometheus::Registry::new();
    let metrics = HistoryMetrics::register(&registry)?;
    let writer = HistoryWriter::new(config.clone(), metrics);
    let (records, records_rx) = mpsc::channel(10_000);
    let (acks_tx, mut acks) = mpsc::channel(1_000);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(writer.run(records_rx, acks_tx, shutdown));
    let per_message = 100u64;
    let messages = writer_rows / per_message;
    let started = Instant::now();
    let producer = tokio::spawn(async move {
        for m in 0..messages {
            let sample = GroupSample {
                v: WIRE_VERSION,
                cluster: "bench".into(),
                group: format!("group-{}", m % 50),
                state: "Stable".into(),
                members: 3,
                ts_ms: 1_764_460_800_000 + (m as i64) * 10,
                error: None,
                partitions: (0..per_message as i32)
                    .map(|p| {
                        PartitionSample::new(
                            "bench.events",
                            p,
                            Some(1_000 + m as i64),
                            2_000 + m as i64,
                        )
                    })
                    .collect(),
            };
            if records.send(HistoryRecord::Sample(sample)).await.is_err() {
                break;
            }
            let checkpoint = Checkpoint {
                topic: "samples".into(),
                partition: 0,
                offset: m as i64 + 1,
                ts_ms: 0,
            };
            if records
                .send(HistoryRecord::Checkpoint(checkpoint))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut acknowledged = 0i64;
    while acknowledged < messages as i64 {
        match acks.recv().await {
            Some(batch) => acknowledged = batch.last().map(|c| c.offset).unwrap_or(acknowledged),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    producer.await?;
    task.abort();
    println!();
    println!(
        "history writer: {} rows in {:.2}s = {:.0} rows/s acknowledged (batches of 10k rows, RowBinary over HTTP to {url})",
        messages * per_message,
        elapsed.as_secs_f64(),
        (messages * per_message) as f64 / elapsed.as_secs_f64()
    );
    client
        .query(&format!("DROP DATABASE {database}"))
        .execute()
        .await?;
    Ok(())
}
