//! End to end through the evaluator on the real services: metrics topic →
//! evaluator (rules, notifier, alert state) → ClickHouse, and the alert
//! latency from the sample that crosses a threshold to the mail in the
//! SMTP capture.
//!
//! Phase 1 pre-produces `BENCH_GROUPS` × `BENCH_CYCLES` group samples of
//! `BENCH_PARTITIONS` partitions each (one exact monitor per group, none
//! alerting), starts an in-process `lagwatch evaluator`, and times from the
//! first to the last sample row stored in ClickHouse (rows = partition-
//! samples). Phase 2 sends `BENCH_ALERTS` crossing samples one at a time to
//! groups with a `for = 0` monitor and a recipient of their own, and times
//! each until its mail file exists. Run with
//! `cargo run --release -p lagwatch-bench --bin evaluator_pipeline` after
//! `tests/infra/up.sh`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_bench::{env_number, env_or, epoch_secs};
use lagwatch_model::{now_ms, GroupSample, MetricsMessage, NewMonitor, PartitionSample};
use lagwatch_store::MonitorStore;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let groups = env_number("BENCH_GROUPS", 1_000);
    let partitions = env_number("BENCH_PARTITIONS", 50) as i32;
    let cycles = env_number("BENCH_CYCLES", 20);
    let alerts = env_number("BENCH_ALERTS", 50);
    let kafka = env_or("LAGWATCH_TEST_KAFKA", "127.0.0.1:19092");
    let clickhouse = env_or("LAGWATCH_TEST_CLICKHOUSE_URL", "http://127.0.0.1:18123");
    let smtp = env_or("LAGWATCH_TEST_SMTP", "127.0.0.1:12525");
    let mail_dir = PathBuf::from(env_or("LAGWATCH_TEST_MAIL_DIR", "/tmp/lagwatch-infra/mail"));
    let id = format!("evbench_{}", epoch_secs());
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");
    let dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&dir)?;

    // Monitors: one per throughput group (threshold never reached) and one
    // per latency group (threshold 100, for 0, own recipient).
    let store_url = format!("sqlite://{}", dir.join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    for g in 0..groups {
        store
            .add(&monitor(
                &format!("{id}_g{g}"),
                1_000_000_000,
                "bulk@example.com",
            ))
            .await?;
    }
    for a in 0..alerts {
        store
            .add(&monitor(
                &format!("{id}_lat{a}"),
                100,
                &format!("{id}-lat{a}@example.com"),
            ))
            .await?;
    }
    store.close().await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()?;
    let config_path = write_config(
        &dir,
        &store_url,
        &kafka,
        &clickhouse,
        &smtp,
        &metrics_topic,
        &database,
    )?;
    let config = AppConfig::load(&config_path)?;
    let spec = lagwatch_kafka::TopicSpec {
        name: &metrics_topic,
        partitions: 6,
        replication: 1,
        settings: lagwatch_kafka::KEEP_A_WEEK,
    };
    lagwatch_kafka::ensure_topic(&config.clusters["local"].connection, &spec).await?;

    // Phase 1: pre-produce, then time the evaluator draining into ClickHouse.
    let base = now_ms() - (cycles as i64 + 1) * 10_000;
    let produce_started = Instant::now();
    let mut pending = Vec::new();
    for cycle in 0..cycles {
        for g in 0..groups {
            let sample = sample(
                &format!("{id}_g{g}"),
                partitions,
                base + cycle as i64 * 10_000,
                cycle as i64,
            );
            let message = MetricsMessage::Group(sample);
            let (key, payload) = (message.key(), message.to_json());
            pending.push(
                producer
                    .send_result(FutureRecord::to(&metrics_topic).key(&key).payload(&payload))
                    .map_err(|(e, _)| anyhow::anyhow!("enqueue: {e}"))?,
            );
            if pending.len() >= 5_000 {
                for delivery in pending.drain(..) {
                    delivery
                        .await?
                        .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
                }
            }
        }
    }
    for delivery in pending.drain(..) {
        delivery
            .await?
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
    }
    let expected_rows = groups * cycles * partitions as u64;
    println!(
        "produced {} samples ({} partition-samples) in {:.1} s",
        groups * cycles,
        expected_rows,
        produce_started.elapsed().as_secs_f64()
    );

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let agent = tokio::spawn(topology::run(
        config,
        Roles {
            collector: false,
            evaluator: true,
            history: true,
        },
        shutdown.clone(),
    ));
    let client = clickhouse::Client::default()
        .with_url(&clickhouse)
        .with_database(&database);
    let mut first_row: Option<Instant> = None;
    let last_row = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!("not all rows stored within 15 minutes");
        }
        let count: u64 = match client
            .query("SELECT count() FROM lag_samples")
            .fetch_one()
            .await
        {
            Ok(count) => count,
            Err(_) => continue, // tables not migrated yet
        };
        if count > 0 && first_row.is_none() {
            first_row = Some(Instant::now());
        }
        if count >= expected_rows {
            break Instant::now();
        }
    };
    let first_row = first_row.unwrap_or(started);
    let steady = last_row.duration_since(first_row).as_secs_f64().max(0.001);
    let total = last_row.duration_since(started).as_secs_f64();
    println!("| metric | value |\n|---|---|");
    println!("| partition-samples stored | {expected_rows} |");
    println!(
        "| start → all stored | {total:.2} s ({:.0} partition-samples/s) |",
        expected_rows as f64 / total
    );
    println!(
        "| first → last row stored | {steady:.2} s ({:.0} partition-samples/s) |",
        expected_rows as f64 / steady
    );

    // Phase 2: alert latency, one crossing sample at a time.
    let mut seen: HashSet<PathBuf> = mail_files(&mail_dir);
    let mut latencies = Vec::new();
    for a in 0..alerts {
        let group = format!("{id}_lat{a}");
        let recipient = format!("{id}-lat{a}@example.com");
        let message = MetricsMessage::Group(sample(&group, 3, now_ms(), 0));
        let (key, payload) = (message.key(), message.to_json());
        let sent = Instant::now();
        producer
            .send(
                FutureRecord::to(&metrics_topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        let latency = loop {
            if sent.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("no mail for {group} within 30 s");
            }
            if mail_arrived(&mail_dir, &mut seen, &recipient) {
                break sent.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        latencies.push(latency.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    if !latencies.is_empty() {
        println!(
            "| alert latency (crossing sample produced → mail file), {} alerts | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |",
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), agent).await;
    Ok(())
}

fn monitor(group: &str, threshold: i64, email: &str) -> NewMonitor {
    NewMonitor {
        team: "bench".into(),
        cluster: "local".into(),
        consumer_group: group.into(),
        group_match: Default::default(),
        topics: vec![],
        topic_regex: None,
        lag_threshold: threshold,
        for_secs: 0,
        emails: vec![email.into()],
        isolation: Default::default(),
        time_lag: Default::default(),
        alerting: Default::default(),
    }
}

/// A sample of `partitions` partitions moving forward every cycle, lag 1,000.
fn sample(group: &str, partitions: i32, ts_ms: i64, cycle: i64) -> GroupSample {
    GroupSample {
        v: lagwatch_model::WIRE_VERSION,
        cluster: "local".into(),
        group: group.into(),
        state: "Stable".into(),
        members: 1,
        ts_ms,
        error: None,
        partitions: (0..partitions)
            .map(|p| {
                let end = 1_000_000 + cycle * 5_000 + i64::from(p);
                PartitionSample::new("orders", p, Some(end - 1_000), end)
            })
            .collect(),
    }
}

fn mail_files(dir: &Path) -> HashSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Whether a mail file not seen before is addressed to `recipient`.
fn mail_arrived(dir: &Path, seen: &mut HashSet<PathBuf>, recipient: &str) -> bool {
    let mut found = false;
    for path in mail_files(dir) {
        if seen.contains(&path) || path.extension().and_then(|x| x.to_str()) != Some("eml") {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) if text.contains("Subject:") => {
                found |= text.contains(recipient);
                seen.insert(path);
            }
            _ => {} // still being written; look again
        }
    }
    found
}

fn write_config(
    dir: &Path,
    store_url: &str,
    kafka: &str,
    clickhouse: &str,
    smtp: &str,
    metrics_topic: &str,
    database: &str,
) -> anyhow::Result<PathBuf> {
    let (smtp_host, smtp_port) = smtp
        .rsplit_once(':')
        .context("LAGWATCH_TEST_SMTP host:port")?;
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let text = format!(
        r#"
[store]
url = "{store_url}"

[clusters.local]
bootstrap_servers = "{kafka}"

[metrics_topic]
cluster = "local"
topic = "{metrics_topic}"
partitions = 6

[evaluator]
consumer_group = "{metrics_topic}-evaluator"
state_topic = "{metrics_topic}-alert-state"
events_topic = "{metrics_topic}-alert-events"

[clickhouse]
url = "{clickhouse}"
database = "{database}"
consumer_group = "{metrics_topic}-history"
dead_letter_topic = "{metrics_topic}-dead-letters"
flush_interval = "200ms"
batch_rows = 50000

[email]
host = "{smtp_host}"
port = {smtp_port}
from = "lagwatch <lagwatch@localhost>"
timeout = "5s"

[http]
listen = "127.0.0.1:{http_port}"
"#
    );
    let path = dir.join("lagwatch.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}
