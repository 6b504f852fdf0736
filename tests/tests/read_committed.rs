//! One lag per monitor, everywhere: a read_committed monitor of a group
//! behind an open transaction shows the same lag — last stable offset minus
//! committed offset, not high watermark minus committed — in the API status,
//! on `/metrics`, in the ClickHouse history and in its alert (the e-mail
//! and the `alert_events` row).
//!
//! On the real broker: 100 plain messages, the group committed at 40, then
//! a transactional producer writes 30 more and leaves the transaction open
//! for the whole test, so the high watermark is 130 and the last stable
//! offset stays 100: read_committed lag 60, high-watermark lag 90.
//!
//! Needs `tests/infra/up.sh` (Kafka, ClickHouse engine front, SMTP capture).

mod common;

use std::time::Duration;

use common::http::HttpClient;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_model::Isolation;
use lagwatch_store::MonitorStore;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio_util::sync::CancellationToken;

const PLAIN_MESSAGES: usize = 100;
const COMMITTED: i64 = 40;
const OPEN_TRANSACTION_MESSAGES: i64 = 30;
/// Offset of the first record of the open transaction: the last stable
/// offset while it stays open.
const LSO: i64 = PLAIN_MESSAGES as i64;
const HWM: i64 = LSO + OPEN_TRANSACTION_MESSAGES;
const READ_COMMITTED_LAG: i64 = LSO - COMMITTED;
const HIGH_WATERMARK_LAG: i64 = HWM - COMMITTED;
const THRESHOLD: i64 = 50;
const ADMIN_TOKEN: &str = "lw_read_committed_test_admin_token";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_committed_monitor_shows_one_lag_everywhere() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    common::require_kafka()?;
    let id = common::unique("rc");
    let topic = format!("{id}_payments");
    let group = format!("{id}_ledger");
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");
    let recipient = format!("oncall-{id}@example.com");

    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, PLAIN_MESSAGES).await?;
    common::commit_offsets(&group, &topic, 1, COMMITTED)?;
    let open = open_transaction(&topic, &id)?;

    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    let mut monitor = common::lag_monitor(&group, &topic, &recipient);
    monitor.isolation = Isolation::ReadCommitted;
    monitor.lag_threshold = THRESHOLD;
    let monitor_id = store.add(&monitor).await?.id;

    let http_port = common::free_port();
    let config_path =
        common::write_config(dir.path(), &store_url, &metrics_topic, &database, http_port)?;
    let mut text = std::fs::read_to_string(&config_path)?;
    text.push_str(&format!("\n[api]\nadmin_token = \"{ADMIN_TOKEN}\"\n"));
    std::fs::write(&config_path, text)?;
    let config = AppConfig::load(&config_path)?;
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    let agent = tokio::spawn(topology::run_with_api(
        config,
        Roles {
            collector: true,
            evaluator: true,
            history: true,
        },
        true,
        shutdown.clone(),
    ));
    let result =
        check_every_view(http_port, monitor_id, &group, &topic, &database, &recipient).await;
    println!("every view checked after {:?}", started.elapsed());
    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), agent).await;
    drop(open);
    result?;
    stopped???;
    Ok(())
}

async fn check_every_view(
    http_port: u16,
    monitor_id: i64,
    group: &str,
    topic: &str,
    database: &str,
    recipient: &str,
) -> anyhow::Result<()> {
    let http = HttpClient::local(http_port);
    // /metrics: the read_committed series next to kafka_exporter's
    // high-watermark lag, for the same partition.
    let labels =
        format!(r#"cluster="local",consumergroup="{group}",partition="0",topic="{topic}""#);
    let read_committed = format!("lagwatch_partition_lag_read_committed_messages{{{labels}}} ");
    let high_watermark = format!("kafka_consumergroup_lag{{{labels}}} ");
    let (rc_lag, hwm_lag) =
        common::eventually_async("both lags on /metrics", Duration::from_secs(60), || async {
            let body = http.get_ok("/metrics", None).await.ok()?;
            Some((
                gauge(&body, &read_committed)?,
                gauge(&body, &high_watermark)?,
            ))
        })
        .await?;
    assert_eq!(
        (rc_lag, hwm_lag),
        (READ_COMMITTED_LAG, HIGH_WATERMARK_LAG),
        "/metrics: read_committed lag, high-watermark lag"
    );

    // The alert: judged on LSO − committed (60 > 50), mailed with it.
    let subject = format!(
        "[FIRING] lag of group {group} on local is {READ_COMMITTED_LAG} (threshold {THRESHOLD})"
    );
    common::eventually("the firing e-mail", Duration::from_secs(60), || {
        common::subjects_for(recipient)
            .iter()
            .any(|s| s.contains(&subject))
            .then_some(())
    })
    .await?;
    let mail = common::mails_containing(recipient)
        .into_iter()
        .find(|m| m.contains(&subject))
        .unwrap_or_default();
    assert!(
        mail.contains(&format!("{topic}[0] lag {READ_COMMITTED_LAG}")),
        "the mail lists the read_committed lag: {mail}"
    );
    assert!(
        mail.contains("consumer status: "),
        "the mail says the status: {mail}"
    );

    // The API status: the same lag, against the last stable offset.
    let path = format!("/api/v1/monitors/{monitor_id}/status");
    let status = common::eventually_async("the API status", Duration::from_secs(60), || async {
        let body = http.get_ok(&path, Some(ADMIN_TOKEN)).await.ok()?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        (json["groups"][0]["partitions"][0]["lso_offset"] == LSO).then_some(json)
    })
    .await?;
    assert_eq!(status["lag_basis"], "last_stable_offset");
    assert_eq!(status["isolation"], "read_committed");
    let group_status = &status["groups"][0];
    let partition = &group_status["partitions"][0];
    assert_eq!(
        (
            &partition["committed_offset"],
            &partition["end_offset"],
            &partition["lag"],
            &group_status["max_lag"],
        ),
        (
            &serde_json::json!(COMMITTED),
            &serde_json::json!(HWM),
            &serde_json::json!(READ_COMMITTED_LAG),
            &serde_json::json!(READ_COMMITTED_LAG),
        ),
        "{status}"
    );
    assert_eq!(
        group_status["threshold_state"], "over_threshold",
        "{status}"
    );
    let words = ["unknown", "ok", "warn", "stall", "stop", "rewind"];
    assert!(
        words.contains(&group_status["status"].as_str().unwrap_or_default()),
        "{status}"
    );

    // ClickHouse: the stored sample keeps the LSO, and the alert event the
    // same lag.
    let clickhouse = lagwatch_history::client(&lagwatch_history::ClickHouseConfig::with_url(
        common::clickhouse_url(),
    ))
    .with_database(database);
    let (stored_rc_lag, stored_hwm_lag) = common::eventually_async(
        "a stored sample with its LSO",
        Duration::from_secs(30),
        || async {
            clickhouse
                .query(
                    "SELECT assumeNotNull(lso_offset - committed_offset), \
                            assumeNotNull(end_offset - committed_offset) \
                     FROM lag_samples WHERE consumer_group = ? AND lso_offset IS NOT NULL \
                     ORDER BY ts DESC LIMIT 1",
                )
                .bind(group)
                .fetch_optional::<(i64, i64)>()
                .await
                .ok()?
        },
    )
    .await?;
    assert_eq!(
        (stored_rc_lag, stored_hwm_lag),
        (READ_COMMITTED_LAG, HIGH_WATERMARK_LAG),
        "ClickHouse lag_samples"
    );
    let (alert_lag, alert_status) = common::eventually_async(
        "the alert event in ClickHouse",
        Duration::from_secs(30),
        || async {
            clickhouse
                .query(
                    "SELECT max_lag, toString(status) FROM alert_events \
                     WHERE consumer_group = ? AND rule = 'lag_threshold' AND state = 'firing' \
                     ORDER BY ts LIMIT 1",
                )
                .bind(group)
                .fetch_optional::<(i64, String)>()
                .await
                .ok()?
        },
    )
    .await?;
    assert_eq!(alert_lag, READ_COMMITTED_LAG, "alert_events max_lag");
    assert!(words.contains(&alert_status.as_str()), "{alert_status:?}");
    Ok(())
}

/// A transactional producer that wrote [`OPEN_TRANSACTION_MESSAGES`]
/// records to partition 0 and keeps the transaction open until dropped.
fn open_transaction(
    topic: &str,
    id: &str,
) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    let producer: ThreadedProducer<DefaultProducerContext> = common::client_config()
        .set("transactional.id", format!("{id}-open"))
        .set("transaction.timeout.ms", "600000")
        .create()?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout)?;
    producer.begin_transaction()?;
    for i in 0..OPEN_TRANSACTION_MESSAGES {
        let payload = format!("uncommitted {i}");
        producer
            .send(
                BaseRecord::<(), String>::to(topic)
                    .partition(0)
                    .payload(&payload),
            )
            .map_err(|(error, _)| error)?;
    }
    producer.flush(timeout)?;
    Ok(producer)
}

/// The value of the series starting with `prefix` (name and labels).
fn gauge(body: &str, prefix: &str) -> Option<i64> {
    body.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as i64)
}
