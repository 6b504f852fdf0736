//! A group too large for one Kafka message: its sample travels in parts
//! and is still judged as one group and stored completely.
//!
//! The sample (10,000 partitions, about 1.2 MB of JSON, over the broker's
//! default 1 MB message limit) is published by the collector's own
//! publisher to a real metrics topic; the real evaluator and history stages
//! run in this process. The monitor's total-lag threshold is only crossed
//! by the sum over all parts, so the page proves the parts were judged
//! together; ClickHouse must hold every partition's row once.
//!
//! Needs `tests/infra/up.sh` (Kafka, ClickHouse engine, SMTP capture).

mod common;

use std::path::Path;
use std::time::Duration;

use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_collector::{CollectorMetrics, Publisher};
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::{
    now_ms, AlertSettings, GroupSample, MetricsMessage, PartitionSample, WIRE_VERSION,
};
use lagwatch_store::MonitorStore;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 10_000;

fn huge_sample(group: &str, ts_ms: i64) -> GroupSample {
    GroupSample {
        v: WIRE_VERSION,
        cluster: "local".into(),
        group: group.into(),
        state: "Stable".into(),
        members: 1,
        ts_ms,
        error: None,
        // Each partition one record behind: 10,000 in total.
        partitions: (0..PARTITIONS)
            .map(|p| {
                PartitionSample::new(
                    format!("{group}-topic-with-a-long-descriptive-name-{}", p / 100),
                    p % 100,
                    Some(1_000),
                    1_001,
                )
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_over_one_megabyte_is_judged_whole_and_stored_once() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    common::require_kafka()?;
    let id = common::unique("huge");
    let group = format!("{id}_g");
    let recipient = format!("{id}@example.com");
    let dir = tempfile::tempdir()?;
    let store_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");
    let config = common::write_config(
        dir.path(),
        &store_url,
        &metrics_topic,
        &database,
        common::free_port(),
    )?;
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    let mut monitor = common::lag_monitor(&group, "unused", &recipient);
    monitor.topics = vec![];
    // No partition is over 500; only the group's sum crosses 9,999.
    monitor.alerting = AlertSettings {
        total_lag_threshold: Some(i64::from(PARTITIONS) - 1),
        ..Default::default()
    };
    store.add(&monitor).await?;
    store.close().await;

    // The collector role, not running here, would create it.
    common::create_topic(&metrics_topic, 3).await?;
    let shutdown = CancellationToken::new();
    let stages = tokio::spawn(topology::run(
        AppConfig::load(Path::new(&config))?,
        Roles {
            collector: false,
            evaluator: true,
            history: true,
        },
        shutdown.clone(),
    ));
    let result = async {
        let cluster = ClusterConfig {
            bootstrap_servers: common::kafka(),
            ..Default::default()
        };
        let publisher = Publisher::new(
            &cluster,
            &metrics_topic,
            CollectorMetrics::register(&prometheus::Registry::new())?,
        )?;
        let sample = huge_sample(&group, now_ms());
        let bytes = MetricsMessage::Group(sample.clone()).to_json().len();
        assert!(bytes > 1_048_576, "the sample must not fit one message: {bytes}");
        // The evaluator reads its topic from the beginning: publishing
        // before it joined loses nothing.
        let undelivered = publisher
            .publish(&[MetricsMessage::Group(sample.clone())])
            .await;
        assert_eq!(undelivered, 0, "every part delivered");
        let subject = common::eventually("the total-lag page", Duration::from_secs(90), || {
            common::subjects_for(&recipient)
                .into_iter()
                .find(|s| s.contains("[FIRING]"))
        })
        .await?;
        println!("{bytes} bytes of sample; page: {subject}");
        let rows = common::eventually_async("every partition stored", Duration::from_secs(90), || {
            let (database, group) = (&database, &group);
            async move {
                let count = common::faults::clickhouse_query(
                    &common::clickhouse_url(),
                    database,
                    &format!(
                        "SELECT count() FROM lag_samples WHERE consumer_group = '{group}' FORMAT TabSeparated"
                    ),
                )
                .await
                .ok()?;
                let count: i64 = count.trim().parse().ok()?;
                (count >= i64::from(PARTITIONS)).then_some(count)
            }
        })
        .await?;
        assert_eq!(rows, i64::from(PARTITIONS), "each partition stored once");
        anyhow::Ok(())
    }
    .await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), stages).await;
    result
}
