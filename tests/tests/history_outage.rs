//! The ClickHouse history writer against the real engine, including an
//! outage: rows sent while ClickHouse is down are neither lost nor
//! duplicated, and their metrics-topic offsets become committable only once
//! they are stored.
//!
//! Starts a private ClickHouse-HTTP front (chDB) so that it can be killed
//! without disturbing other tests. Needs `tests/infra/up.sh` to have
//! installed the venv (`LAGWATCH_TEST_PYTHON`).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lagwatch_history::{self as history, Checkpoint, HistoryRecord, HistoryWriter};
use lagwatch_history::{ClickHouseConfig, HistoryMetrics};
use lagwatch_model::{GroupSample, PartitionSample, Secret, WIRE_VERSION};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn start_front(port: u16, data: &Path) -> anyhow::Result<Child> {
    let python = std::env::var("LAGWATCH_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/lagwatch/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let script = common::repo_root().join("tests/infra/clickhouse_http.py");
    let child = Command::new(&python)
        .arg(&script)
        .args(["--port", &port.to_string(), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start {python} {}: {e}; run tests/infra/up.sh",
                script.display()
            )
        })?;
    Ok(child)
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = history::client(&config(url, "default"));
    common::eventually_async(
        "the private ClickHouse front",
        Duration::from_secs(60),
        || async { client.query("SELECT 1").fetch_one::<u8>().await.ok() },
    )
    .await?;
    Ok(())
}

fn config(url: &str, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: url.to_string(),
        database: database.to_string(),
        user: "default".into(),
        password: Secret::default(),
        batch_rows: 100,
        batch_bytes: 1 << 20,
        flush_interval: Duration::from_millis(100),
        retention_days: 30,
        rollup_1m_retention_days: 90,
        rollup_1h_retention_days: 730,
        alert_retention_days: 730,
        ..ClickHouseConfig::with_url(url)
    }
}

fn sample(group: &str, ts_ms: i64, lag: i64) -> GroupSample {
    GroupSample {
        v: WIRE_VERSION,
        cluster: "local".into(),
        group: group.into(),
        state: "Stable".into(),
        members: 1,
        ts_ms,
        error: None,
        partitions: (0..3)
            .map(|p| PartitionSample::new("orders", p, Some(1_000 - lag), 1_000))
            .collect(),
    }
}

async fn send_message(
    records: &mpsc::Sender<HistoryRecord>,
    group: &str,
    offset: i64,
) -> anyhow::Result<()> {
    // Recent times: older rows would fall to the raw table's TTL.
    let ts_ms = lagwatch_model::now_ms() - 3_600_000 + offset * 1_000;
    records
        .send(HistoryRecord::Sample(sample(group, ts_ms, offset)))
        .await?;
    records
        .send(HistoryRecord::Checkpoint(Checkpoint {
            topic: "samples".into(),
            partition: 0,
            offset: offset + 1,
            ts_ms,
        }))
        .await?;
    Ok(())
}

async fn stored_rows(url: &str, database: &str, group: &str) -> anyhow::Result<u64> {
    let client = history::client(&config(url, database)).with_database(database);
    Ok(client
        .query("SELECT count() FROM lag_samples WHERE consumer_group = ?")
        .bind(group)
        .fetch_one()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_loses_nothing_and_acknowledges_only_stored_rows() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut front = start_front(port, data.path())?;
    wait_ready(&url).await?;
    let database = common::unique("lw_outage");
    let group = "outage-group";
    history::migrate(&config(&url, &database)).await?;

    let registry = prometheus::Registry::new();
    let metrics = HistoryMetrics::register(&registry)?;
    let writer = HistoryWriter::new(config(&url, &database), metrics.clone());
    let (records, records_rx) = mpsc::channel(1_000);
    let (acks_tx, mut acks) = mpsc::channel(100);
    let shutdown = CancellationToken::new();
    let writer_task = tokio::spawn(writer.run(records_rx, acks_tx, shutdown.clone()));

    // Healthy: 10 messages are stored and acknowledged.
    for offset in 0..10 {
        send_message(&records, group, offset).await?;
    }
    let mut acknowledged = 0;
    while acknowledged < 10 {
        let batch = tokio::time::timeout(Duration::from_secs(20), acks.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("writer stopped"))?;
        acknowledged = batch.last().map(|c| c.offset).unwrap_or(acknowledged);
    }
    assert_eq!(stored_rows(&url, &database, group).await?, 30);

    // ClickHouse goes down; 20 more messages arrive. None is acknowledged.
    front.kill()?;
    front.wait()?;
    for offset in 10..30 {
        send_message(&records, group, offset).await?;
    }
    let early = tokio::time::timeout(Duration::from_secs(3), acks.recv()).await;
    assert!(
        early.is_err(),
        "nothing may be acknowledged while ClickHouse is down: {early:?}"
    );
    assert!(
        metrics.write_errors.get() > 0,
        "failed attempts are counted"
    );

    // ClickHouse comes back with the same data: everything is caught up,
    // exactly once.
    let mut front = start_front(port, data.path())?;
    wait_ready(&url).await?;
    while acknowledged < 30 {
        let batch = tokio::time::timeout(Duration::from_secs(60), acks.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("writer stopped"))?;
        acknowledged = batch.last().map(|c| c.offset).unwrap_or(acknowledged);
    }
    assert_eq!(
        stored_rows(&url, &database, group).await?,
        90,
        "30 messages x 3 partitions, no loss, no duplicate"
    );
    let rollup: u64 = history::client(&config(&url, &database))
        .with_database(&database)
        .query("SELECT sum(samples) FROM lag_samples_1m WHERE consumer_group = ?")
        .bind(group)
        .fetch_one()
        .await?;
    assert_eq!(
        rollup, 90,
        "the 1-minute rollup counts every stored sample once"
    );

    drop(records);
    tokio::time::timeout(Duration::from_secs(30), writer_task).await??;
    front.kill()?;
    let _ = front.wait();
    Ok(())
}

#[tokio::test]
async fn retried_batch_with_the_same_token_is_stored_once() -> anyhow::Result<()> {
    let url = common::clickhouse_url();
    let database = common::unique("lw_dedup");
    history::migrate(&config(&url, &database))
        .await
        .map_err(|e| anyhow::anyhow!("{e}; run tests/infra/up.sh"))?;
    let client = history::client(&config(&url, &database)).with_database(&database);
    for _attempt in 0..2 {
        client
            .query(
                "INSERT INTO lag_samples (ts, cluster, consumer_group, topic, partition, \
                 committed_offset, end_offset, time_lag_ms, group_state, members) VALUES \
                 (now64(3), 'c', 'g', 't', 0, 1, 5, NULL, 'Stable', 1)",
            )
            .with_setting("insert_deduplication_token", "same-batch")
            .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
            .execute()
            .await?;
    }
    let raw: u64 = client
        .query("SELECT count() FROM lag_samples")
        .fetch_one()
        .await?;
    let rolled: u64 = client
        .query("SELECT sum(samples) FROM lag_samples_1m")
        .fetch_one()
        .await?;
    assert_eq!(
        (raw, rolled),
        (1, 1),
        "a retried batch must not be stored twice, in raw or rollup"
    );
    Ok(())
}
