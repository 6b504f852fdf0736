//! The whole path against real services: Kafka → collector → metrics topic →
//! evaluator → SMTP e-mail + ClickHouse history.
//!
//! Needs `tests/infra/up.sh` (Kafka, ClickHouse engine front, SMTP capture).

mod common;

use std::time::Duration;

use common::http::HttpClient;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_model::{decode_message, GroupSample, MetricsMessage};
use lagwatch_store::MonitorStore;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;
const MESSAGES_PER_PARTITION: usize = 1_000;
const COMMITTED: i64 = 100;
/// Subject prefixes of the threshold rule's e-mails.
const THRESHOLD_FIRING: &str = "[FIRING] lag of group";
const THRESHOLD_RESOLVED: &str = "[RESOLVED] lag of group";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_alert_fires_once_resolves_once_and_is_recorded() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,lagwatch=debug")
        .with_test_writer()
        .try_init();
    common::require_kafka()?;
    let id = common::unique("e2e");
    let topic = format!("{id}_orders");
    let group = format!("{id}_billing");
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");
    let recipient = format!("oncall-{id}@example.com");

    // A topic with 1,000 messages per partition and a group committed at 100.
    common::create_topic(&topic, PARTITIONS).await?;
    common::produce(&topic, PARTITIONS, MESSAGES_PER_PARTITION).await?;
    common::commit_offsets(&group, &topic, PARTITIONS, COMMITTED)?;
    let expected_lag = MESSAGES_PER_PARTITION as i64 - COMMITTED;
    let tool_lag = common::kafka_tool_lag(&group, &topic)?;
    assert_eq!(
        tool_lag,
        (0..PARTITIONS)
            .map(|p| (p, expected_lag))
            .collect::<Vec<_>>(),
        "kafka-consumer-groups output"
    );

    // The embedded SQLite store with one monitor, threshold 500.
    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    store
        .add(&common::lag_monitor(&group, &topic, &recipient))
        .await?;

    let http_port = common::free_port();
    let config_path =
        common::write_config(dir.path(), &store_url, &metrics_topic, &database, http_port)?;
    let config = AppConfig::load(&config_path)?;
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(topology::run(
        config,
        Roles {
            collector: true,
            evaluator: true,
            history: true,
        },
        shutdown.clone(),
    ));

    // (a) published samples show the same lag as Kafka's own tool.
    let sample = first_complete_sample(&metrics_topic, &group).await?;
    let mut published: Vec<(i32, i64)> = sample
        .partitions
        .iter()
        .map(|p| (p.partition, p.lag.unwrap_or(-1)))
        .collect();
    published.sort();
    assert_eq!(
        published, tool_lag,
        "published lag equals kafka-consumer-groups"
    );
    assert!(sample
        .partitions
        .iter()
        .all(|p| p.committed == Some(COMMITTED) && p.end == 1_000));
    assert_eq!(sample.error, None);

    // /metrics serves the per-partition gauges.
    let http = HttpClient::local(http_port);
    let metrics =
        common::eventually_async("lag gauge on /metrics", Duration::from_secs(20), || async {
            let body = http.get_ok("/metrics", None).await.ok()?;
            body.contains(&format!("consumergroup=\"{group}\""))
                .then_some(body)
        })
        .await?;
    assert!(metrics.contains("lagwatch_collector_samples_published_total"));
    assert_eq!(http.get_ok("/healthz", None).await?.trim(), "ok");

    // (b) exactly one threshold alert e-mail, even after several more cycles.
    common::eventually("the firing e-mail", Duration::from_secs(60), || {
        let subjects = common::subjects_for(&recipient);
        subjects
            .iter()
            .any(|s| s.contains(THRESHOLD_FIRING))
            .then_some(())
    })
    .await?;
    // The group sits at lag 900 without committing: after five samples the
    // window-status rule (lag_status) sees it STALL and pages once too.
    // Wait for it so the rest of the test is deterministic.
    let stall_firing = format!("[FIRING] group {group} on local is STALL (");
    common::eventually("the lag_status e-mail", Duration::from_secs(60), || {
        let subjects = common::subjects_for(&recipient);
        subjects
            .iter()
            .any(|s| s.contains(&stall_firing))
            .then_some(())
    })
    .await?;
    // Four more samples judged with nothing owed: had either rule paged
    // again, that mail would be in the capture now.
    common::progress::evaluator_judged_more(&http, 4, Duration::from_secs(60)).await?;
    let subjects = common::subjects_for(&recipient);
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains(THRESHOLD_FIRING))
            .count(),
        1,
        "{subjects:?}"
    );
    // Still stuck past the window (STALL turns STOP): no second page.
    assert_eq!(
        subjects.iter().filter(|s| s.contains("[FIRING]")).count(),
        2,
        "one threshold and one lag_status page: {subjects:?}"
    );
    let firing_mail = common::mails_containing(&recipient)
        .into_iter()
        .find(|m| m.contains(THRESHOLD_FIRING))
        .unwrap_or_default();
    assert!(
        firing_mail.contains(&format!("{topic}[2] lag 900")),
        "mail lists lagging partitions"
    );

    // (c) the consumer catches up: exactly one resolve e-mail per rule.
    common::commit_offsets(&group, &topic, PARTITIONS, MESSAGES_PER_PARTITION as i64)?;
    common::eventually("the resolve e-mail", Duration::from_secs(60), || {
        let subjects = common::subjects_for(&recipient);
        subjects
            .iter()
            .any(|s| s.contains(THRESHOLD_RESOLVED))
            .then_some(())
    })
    .await?;
    common::progress::evaluator_judged_more(&http, 4, Duration::from_secs(60)).await?;
    let subjects = common::subjects_for(&recipient);
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains(THRESHOLD_RESOLVED))
            .count(),
        1,
        "{subjects:?}"
    );
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains(THRESHOLD_FIRING))
            .count(),
        1,
        "{subjects:?}"
    );
    // lag_status fired once and resolved once, back to OK.
    let stall_resolved = format!("[RESOLVED] group {group} on local is back to OK");
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains(&stall_resolved))
            .count(),
        1,
        "{subjects:?}"
    );
    assert_eq!(
        subjects.iter().filter(|s| s.contains("[FIRING]")).count(),
        2,
        "{subjects:?}"
    );
    assert_eq!(
        subjects.iter().filter(|s| s.contains("[RESOLVED]")).count(),
        2,
        "{subjects:?}"
    );

    // (d) ClickHouse holds the samples and both alert events.
    let clickhouse = clickhouse::Client::default()
        .with_url(common::clickhouse_url())
        .with_database(&database)
        .with_compression(clickhouse::Compression::None)
        .with_validation(false);
    for rule in ["lag_threshold", "lag_status"] {
        let states = common::eventually_async(
            "both alert events in ClickHouse",
            Duration::from_secs(30),
            || async {
                let states: Vec<String> = clickhouse
                    .query(
                        // Notifications sent: a status change of the firing
                        // lag_status alert (STALL → STOP) is recorded too,
                        // marked not paged.
                        "SELECT state FROM alert_events \
                         WHERE consumer_group = ? AND rule = ? AND muted_by = '' ORDER BY ts",
                    )
                    .bind(&group)
                    .bind(rule)
                    .fetch_all()
                    .await
                    .ok()?;
                (states.len() >= 2).then_some(states)
            },
        )
        .await?;
        assert_eq!(
            states,
            vec!["firing".to_string(), "resolved".to_string()],
            "rule {rule}"
        );
    }
    let lagging_rows: u64 = clickhouse
        .query("SELECT count() FROM lag_samples WHERE consumer_group = ? AND lag = 900")
        .bind(&group)
        .fetch_one()
        .await?;
    let caught_up_rows: u64 = clickhouse
        .query("SELECT count() FROM lag_samples WHERE consumer_group = ? AND lag = 0")
        .bind(&group)
        .fetch_one()
        .await?;
    assert!(
        lagging_rows >= 3 && lagging_rows.is_multiple_of(3),
        "lagging rows: {lagging_rows}"
    );
    assert!(caught_up_rows >= 3, "caught-up rows: {caught_up_rows}");

    // Broker JMX (Jolokia on the test broker) flows through the metrics
    // topic into ClickHouse too: one active controller on the single node.
    let controllers = common::eventually_async("broker metrics in ClickHouse", Duration::from_secs(30), || async {
        let values: Vec<f64> = clickhouse
            .query("SELECT value FROM broker_metrics WHERE metric = 'ActiveControllerCount' AND broker = 1")
            .fetch_all()
            .await
            .ok()?;
        (!values.is_empty()).then_some(values)
    })
    .await?;
    assert!(controllers.iter().all(|v| *v == 1.0), "{controllers:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;
    Ok(())
}

/// Reads the metrics topic until a sample of `group` with lag on all
/// partitions shows up.
async fn first_complete_sample(topic: &str, group: &str) -> anyhow::Result<GroupSample> {
    let consumer: StreamConsumer = common::client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // The collector creates the topic; subscribe also works before that.
    consumer.subscribe(&[topic])?;
    loop {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no complete sample of {group} on {topic} within 60s"))?;
        let Ok(message) = message else { continue };
        let MetricsMessage::Group(sample) = decode_message(message.payload().unwrap_or_default())?
        else {
            continue;
        };
        if message.key() != Some(format!("local/{group}").as_bytes()) {
            continue;
        }
        if sample.partitions.len() == PARTITIONS as usize
            && sample.partitions.iter().all(|p| p.lag.is_some())
        {
            return Ok(sample);
        }
    }
}
