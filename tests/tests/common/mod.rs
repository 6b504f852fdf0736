//! Shared helpers for tests against the real services started by
//! `tests/infra/up.sh` (Kafka, MariaDB, the ClickHouse engine, SMTP).
//!
//! Every helper fails loudly with the fix ("run tests/infra/up.sh") when a
//! service is missing: these tests never skip silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub fn kafka() -> String {
    std::env::var("LAGWATCH_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19092".into())
}
pub fn mysql_url() -> String {
    std::env::var("LAGWATCH_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://lagwatch:lagwatch@127.0.0.1:13306/lagwatch".into())
}
pub fn clickhouse_url() -> String {
    std::env::var("LAGWATCH_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".into())
}
pub fn jolokia_url() -> String {
    std::env::var("LAGWATCH_TEST_JOLOKIA_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18778/jolokia".into())
}
pub fn smtp() -> (String, u16) {
    let addr = std::env::var("LAGWATCH_TEST_SMTP").unwrap_or_else(|_| "127.0.0.1:12525".into());
    let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "12525"));
    (host.to_string(), port.parse().unwrap_or(12525))
}
pub fn mail_dir() -> PathBuf {
    std::env::var("LAGWATCH_TEST_MAIL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/tmp/lagwatch-infra/mail"))
}
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A name unique to this test run, usable in topic, group and database names.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka());
    config
}

/// Fails with the fix when the broker is not reachable.
pub fn require_kafka() -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config().create()?;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| {
            format!(
                "Kafka is not reachable at {}: run tests/infra/up.sh",
                kafka()
            )
        })?;
    Ok(())
}

pub async fn create_topic(topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config().create()?;
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for result in results {
        result.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Produces `per_partition` messages to each of `partitions` partitions.
pub async fn produce(topic: &str, partitions: i32, per_partition: usize) -> anyhow::Result<()> {
    let producer: FutureProducer = client_config().set("linger.ms", "5").create()?;
    let mut pending = Vec::new();
    for partition in 0..partitions {
        for i in 0..per_partition {
            let payload = format!("message {i} for partition {partition}");
            let producer = producer.clone();
            let topic = topic.to_string();
            pending.push(async move {
                producer
                    .send(
                        FutureRecord::<(), _>::to(&topic)
                            .partition(partition)
                            .payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))
            });
        }
    }
    for result in futures_join(pending).await {
        result?;
    }
    Ok(())
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    // Sends are already in flight inside librdkafka once polled; awaiting in
    // order is enough and keeps this helper dependency-free.
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    for handle in handles {
        out.push(handle.await);
    }
    out
}

/// The monitor the alerting tests register: team `payments` on cluster
/// `local`, `group` on `topic`, lag threshold 500 with no `for`, mail to
/// `recipient`, every other setting at its default.
pub fn lag_monitor(group: &str, topic: &str, recipient: &str) -> lagwatch_model::NewMonitor {
    lagwatch_model::fixtures::MonitorBuilder::new(group)
        .topics(&[topic])
        .emails(&[recipient])
        .build_new()
}

/// The connection profile of user alice over SASL/PLAIN on a private
/// broker's SASL listener (`tests/infra/private-kafka.sh start ... SASL_PORT`).
pub fn alice_over_sasl_plain(sasl_port: u16, password: &str) -> lagwatch_kafka::ClusterConfig {
    lagwatch_kafka::ClusterConfig {
        bootstrap_servers: format!("127.0.0.1:{sasl_port}"),
        properties: std::collections::BTreeMap::from([
            (
                "security.protocol".to_string(),
                "SASL_PLAINTEXT".to_string(),
            ),
            ("sasl.mechanism".to_string(), "PLAIN".to_string()),
            ("sasl.username".to_string(), "alice".to_string()),
            ("sasl.password".to_string(), password.to_string()),
        ]),
        ..lagwatch_kafka::ClusterConfig::default()
    }
}

/// What to sample for `group`: exactly `topic` (reported even where nothing
/// is committed), lag against the high watermark, time lag estimated.
pub fn topic_target(group: &str, topic: &str) -> lagwatch_collector::sampler::GroupTarget {
    lagwatch_collector::sampler::GroupTarget {
        group: group.to_string(),
        topics: std::collections::BTreeSet::from([topic.to_string()]),
        topic_patterns: vec![],
        all_topics: false,
        limited_selections: vec![],
        exact_time_lag: false,
        read_committed: false,
    }
}

/// Commits `offset` for `group` on every partition, the way a consumer
/// using assign() with manual commits does (the group stays Empty).
pub fn commit_offsets(
    group: &str,
    topic: &str,
    partitions: i32,
    offset: i64,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    // A fresh broker creates __consumer_offsets on first use: until its
    // coordinator is loaded, commits answer NOT_COORDINATOR or
    // COORDINATOR_LOAD_IN_PROGRESS. Retry those for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match consumer.commit(&list, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => return Ok(()),
            Err(rdkafka::error::KafkaError::ConsumerCommit(code))
                if std::time::Instant::now() < deadline
                    && matches!(
                        code,
                        rdkafka::types::RDKafkaErrorCode::NotCoordinator
                            | rdkafka::types::RDKafkaErrorCode::CoordinatorLoadInProgress
                            | rdkafka::types::RDKafkaErrorCode::CoordinatorNotAvailable
                    ) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// LAG per partition as printed by Kafka's own kafka-consumer-groups tool.
pub fn kafka_tool_lag(group: &str, topic: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    let script = repo_root().join("tests/infra/kafka-consumer-groups.sh");
    let output = Command::new(&script)
        .args([
            "--bootstrap-server",
            &kafka(),
            "--describe",
            "--group",
            group,
        ])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "kafka-consumer-groups failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut header: Option<Vec<&str>> = None;
    let mut lags = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.contains(&"LAG") && fields.contains(&"PARTITION") {
            header = Some(fields);
            continue;
        }
        let Some(columns) = &header else { continue };
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| fields.get(i))
        };
        if column("TOPIC") != Some(&topic) {
            continue;
        }
        let partition: i32 = column("PARTITION").context("PARTITION column")?.parse()?;
        let lag: i64 = column("LAG").context("LAG column")?.parse()?;
        lags.push((partition, lag));
    }
    lags.sort();
    Ok(lags)
}

/// Mails captured by the SMTP server whose text contains `needle`.
pub fn mails_containing(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(mail_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("eml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| {
            text.replace("\r\n ", " ")
                .replace("\r\n\t", " ")
                .replace("\n ", " ")
        })
        .filter(|text| text.contains(needle))
        .collect()
}

/// Subject lines of the mails sent to `recipient`.
pub fn subjects_for(recipient: &str) -> Vec<String> {
    mails_containing(recipient)
        .iter()
        .filter_map(|mail| {
            mail.lines()
                .find(|line| line.starts_with("Subject:"))
                .map(|line| line.trim_start_matches("Subject:").trim().to_string())
        })
        .collect()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes a lagwatch config for the local test services.
pub fn write_config(
    dir: &Path,
    store_url: &str,
    metrics_topic: &str,
    database: &str,
    http_port: u16,
) -> anyhow::Result<PathBuf> {
    let (smtp_host, smtp_port) = smtp();
    let text = format!(
        r#"
[store]
url = "{store_url}"

[clusters.local]
bootstrap_servers = "{kafka}"

[clusters.local.jmx]
interval = "1s"
brokers = [{{ broker = 1, kind = "jolokia", url = "{jolokia}" }}]

[metrics_topic]
cluster = "local"
topic = "{metrics_topic}"
partitions = 3

[collector]
interval = "1s"
monitor_refresh = "1s"

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

[email]
host = "{smtp_host}"
port = {smtp_port}
from = "lagwatch <lagwatch@localhost>"
timeout = "5s"
dashboard_url = "http://grafana.local/d/lagwatch-group"

[http]
listen = "127.0.0.1:{http_port}"
"#,
        kafka = kafka(),
        clickhouse = clickhouse_url(),
        jolokia = jolokia_url(),
    );
    let path = dir.join("lagwatch.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// `N` distinct free loopback TCP ports (all held while choosing, so they
/// cannot repeat).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    let mut ports = [0u16; N];
    for (slot, listener) in ports.iter_mut().zip(&listeners) {
        *slot = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    }
    ports
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(19464)
}

/// Like [`eventually`] for async checks.
pub async fn eventually_async<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The test broker's Prometheus JMX exporter page
/// (`LAGWATCH_TEST_JMX_EXPORTER_URL`, set by `tests/infra/up.sh` when the
/// agent answers).
pub fn jmx_exporter_url() -> String {
    std::env::var("LAGWATCH_TEST_JMX_EXPORTER_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18779/metrics".into())
}

/// The JMX agents (`jolokia`, `jmx-exporter`) that are installed but that
/// the running test broker was started without, as `tests/infra/up.sh`
/// found them (`LAGWATCH_TEST_KAFKA_MISSING_AGENTS`).
pub fn kafka_missing_agents() -> Vec<String> {
    std::env::var("LAGWATCH_TEST_KAFKA_MISSING_AGENTS")
        .map(|agents| agents.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Waits up to `patience` for a `lag_threshold` record of `group` in the
/// alert-state `topic` with `state` (`firing`/`resolved`) and `delivered`.
pub async fn wait_for_state_record(
    topic: &str,
    group: &str,
    state: &str,
    delivered: bool,
    patience: Duration,
) -> anyhow::Result<()> {
    use rdkafka::consumer::StreamConsumer;
    use rdkafka::Message;
    let consumer: StreamConsumer = client_config()
        .set("group.id", unique("state-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let received = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!("no {state} record (delivered={delivered}) for {group}")
            })?;
        // The agent creates the topic: until then the reader sees errors.
        let Ok(message) = received else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(payload) = message.payload() else {
            continue;
        };
        let record: serde_json::Value = serde_json::from_slice(payload)?;
        let event = &record["event"];
        if event["rule"] == "lag_threshold"
            && event["consumer_group"] == group
            && event["state"] == state
            && record["delivered"] == delivered
        {
            return Ok(());
        }
    }
}

/// A throwaway MariaDB database `<prefix>_<unique>`: its store URL, an
/// admin connection and its name (for `DROP DATABASE` when done).
pub async fn throwaway_mariadb(
    prefix: &str,
) -> anyhow::Result<(String, sqlx::MySqlConnection, String)> {
    use sqlx::Connection;
    let base = mysql_url();
    let database = unique(prefix);
    let mut admin = sqlx::MySqlConnection::connect(&base).await.map_err(|e| {
        anyhow::anyhow!("MariaDB not reachable at {base}: {e}; run tests/infra/up.sh")
    })?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{database}`")))
        .execute(&mut admin)
        .await?;
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => bail!("unexpected MySQL url {base}"),
    };
    Ok((url, admin, database))
}

/// An agent running in this process on listeners bound to port 0.
pub struct InProcessAgent {
    /// Where `http.listen` is served (probes, API, web page).
    pub addr: std::net::SocketAddr,
    /// Where `/metrics` is served when the config sets `http.metrics_listen`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Runs only the team API role of `config` (no collector, evaluator or
/// history) in this process until `shutdown`. It serves on
/// `127.0.0.1:0` listeners bound here, in place of `http.listen` (and of
/// `http.metrics_listen` when that is set): the ports are read from the
/// bound sockets, so no other process can take them first.
pub async fn spawn_api_only(
    config: lagwatch::config::AppConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<InProcessAgent> {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let main = tokio::net::TcpListener::bind(loopback).await?;
    let metrics = match config.http.metrics_listen {
        Some(_) => Some(tokio::net::TcpListener::bind(loopback).await?),
        None => None,
    };
    let addr = main.local_addr()?;
    let metrics_addr = metrics.as_ref().map(|l| l.local_addr()).transpose()?;
    let task = tokio::spawn(lagwatch::topology::run_on(
        config,
        lagwatch::topology::Roles {
            collector: false,
            evaluator: false,
            history: false,
        },
        true,
        lagwatch::topology::Listeners { main, metrics },
        shutdown.clone(),
    ));
    Ok(InProcessAgent {
        addr,
        metrics_addr,
        task,
    })
}

/// Waits until the API on `addr` answers `/healthz` with 200 (20 s at
/// most), failing at once if its in-process `task` ended.
pub async fn wait_until_healthy(
    addr: std::net::SocketAddr,
    task: &tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let answer = client
            .get(format!("http://{addr}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            return Ok(());
        }
        if task.is_finished() {
            bail!("the API on {addr} stopped before it answered /healthz");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the API did not come up on {addr}")
}

/// Stops an agent running in this process: cancels `shutdown` and waits
/// for `task` (10 s at most), returning its result.
pub async fn stop_in_process(
    shutdown: &tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(joined) => joined?,
        Err(_) => bail!("the API did not stop within 10 s"),
    }
}

pub mod agent_process;
pub mod fault_proxy;
pub mod faults;
pub mod grafana_sql;
pub mod http;
pub mod progress;
