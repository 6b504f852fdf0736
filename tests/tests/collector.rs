//! The collector against the real broker, case by case, compared with
//! Kafka's own kafka-consumer-groups tool where it reports the same thing.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lagwatch_collector::poller::targets_for;
use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::{GroupMatch, GroupSample, Isolation, Monitor};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn source() -> KafkaOffsetSource {
    let cluster = ClusterConfig {
        bootstrap_servers: common::kafka(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    KafkaOffsetSource::new(&cluster, Default::default(), Duration::from_secs(10)).expect("client")
}

fn target(group: &str, topics: &[&str]) -> GroupTarget {
    GroupTarget {
        group: group.to_string(),
        topics: topics
            .iter()
            .map(|t| t.to_string())
            .collect::<BTreeSet<_>>(),
        topic_patterns: vec![],
        all_topics: topics.is_empty(),
        limited_selections: vec![],
        exact_time_lag: false,
        read_committed: true,
    }
}

async fn sample(targets: Vec<GroupTarget>) -> Vec<GroupSample> {
    tokio::task::spawn_blocking(move || sample_cluster(&source(), "local", &targets, 0))
        .await
        .expect("sampling thread")
}

async fn sample_one(group: &str, topics: &[&str]) -> GroupSample {
    sample(vec![target(group, topics)]).await.remove(0)
}

fn lags(sample: &GroupSample) -> Vec<(i32, i64)> {
    let mut lags: Vec<(i32, i64)> = sample
        .partitions
        .iter()
        .filter_map(|p| Some((p.partition, p.lag?)))
        .collect();
    lags.sort();
    lags
}

fn admin() -> AdminClient<DefaultClientContext> {
    common::client_config().create().expect("admin")
}

/// A consumer that subscribed and committed: the group is Stable while it
/// polls. `protocol` is `classic` or `consumer` (KIP-848).
fn start_member(group: &str, topic: &str, protocol: &str, commit_at: i64) -> BaseConsumer {
    let mut config = common::client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("group.protocol", protocol);
    if protocol == "classic" {
        config.set("session.timeout.ms", "10000");
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    // Poll until partitions are assigned.
    for _ in 0..100 {
        let _ = consumer.poll(Duration::from_millis(100));
        if consumer.assignment().map(|a| a.count()).unwrap_or(0) > 0 {
            break;
        }
    }
    let mut offsets = TopicPartitionList::new();
    for partition in 0..3 {
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(commit_at))
            .expect("offset");
    }
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    consumer
}

async fn fixture(name: &str, per_partition: usize) -> anyhow::Result<(String, String)> {
    common::require_kafka()?;
    let id = common::unique(name);
    let topic = format!("{id}_t");
    common::create_topic(&topic, 3).await?;
    if per_partition > 0 {
        common::produce(&topic, 3, per_partition).await?;
    }
    Ok((id, topic))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_classic_group_matches_the_kafka_tool() -> anyhow::Result<()> {
    let (id, topic) = fixture("stable", 200).await?;
    let group = format!("{id}_g");
    let consumer = start_member(&group, &topic, "classic", 50);
    let sample = sample_one(&group, &[&topic]).await;
    let tool = common::kafka_tool_lag(&group, &topic)?;
    drop(consumer);
    assert_eq!(sample.state, "Stable", "{sample:?}");
    assert_eq!(sample.members, 1);
    assert_eq!(lags(&sample), tool);
    assert_eq!(tool, vec![(0, 150), (1, 150), (2, 150)]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_consumer_protocol_group_is_sampled() -> anyhow::Result<()> {
    let (id, topic) = fixture("kip848", 100).await?;
    let group = format!("{id}_g");
    let consumer = start_member(&group, &topic, "consumer", 30);
    let sample = sample_one(&group, &[&topic]).await;
    let tool = common::kafka_tool_lag(&group, &topic)?;
    drop(consumer);
    assert_eq!(lags(&sample), tool);
    assert_eq!(tool, vec![(0, 70), (1, 70), (2, 70)]);
    assert_eq!(sample.members, 1, "{sample:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_group_and_uncommitted_partitions() -> anyhow::Result<()> {
    let (id, topic) = fixture("empty", 100).await?;
    let group = format!("{id}_g");
    // assign() + manual commit on partition 0 only.
    let consumer: BaseConsumer = common::client_config().set("group.id", &group).create()?;
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(&topic, 0, Offset::Offset(40))?;
    consumer.commit(&offsets, CommitMode::Sync)?;
    let sample = sample_one(&group, &[&topic]).await;
    assert_eq!(sample.state, "Empty");
    assert_eq!(
        sample.partitions.len(),
        3,
        "explicit topic: every partition reported"
    );
    let p0 = &sample.partitions[0];
    assert_eq!((p0.committed, p0.lag), (Some(40), Some(60)));
    for p in &sample.partitions[1..] {
        assert_eq!(
            (p.committed, p.lag),
            (None, None),
            "no made-up lag without a commit"
        );
        assert_eq!(p.end, 100);
    }
    assert_eq!(lags(&sample), common::kafka_tool_lag(&group, &topic)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_group_reports_dead_and_no_offsets() -> anyhow::Result<()> {
    let (id, topic) = fixture("dead", 10).await?;
    let group = format!("{id}_g");
    common::commit_offsets(&group, &topic, 3, 5)?;
    admin()
        .delete_groups(&[&group], &AdminOptions::new())
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(g, e)| anyhow::anyhow!("delete {g}: {e}"))?;
    let sample = sample_one(&group, &[]).await;
    assert_eq!(sample.state, "Dead", "{sample:?}");
    assert!(sample.partitions.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_loss_and_added_partitions_are_visible() -> anyhow::Result<()> {
    let (id, topic) = fixture("retention", 100).await?;
    let group = format!("{id}_g");
    common::commit_offsets(&group, &topic, 3, 10)?;
    // Data before offset 50 is gone from partition 0.
    let mut cut = TopicPartitionList::new();
    cut.add_partition_offset(&topic, 0, Offset::Offset(50))?;
    admin().delete_records(&cut, &AdminOptions::new()).await?;
    let sample = sample_one(&group, &[&topic]).await;
    let p0 = &sample.partitions[0];
    assert_eq!(p0.log_start, Some(50));
    assert!(p0.committed_below_log_start());
    assert!(!sample.partitions[1].committed_below_log_start());

    // Partitions added while monitored show up in the next sample.
    admin()
        .create_partitions(&[NewPartitions::new(&topic, 5)], &AdminOptions::new())
        .await?;
    let sample =
        common::eventually_async("the new partitions", Duration::from_secs(20), || async {
            let s = sample_one(&group, &[&topic]).await;
            (s.partitions.len() == 5).then_some(s)
        })
        .await?;
    assert_eq!(sample.partitions[4].committed, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_lag_ignores_open_transactions() -> anyhow::Result<()> {
    let (id, topic) = fixture("txn", 0).await?;
    let group = format!("{id}_g");
    let producer: BaseProducer = common::client_config()
        .set("transactional.id", format!("{id}_txn"))
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    producer.begin_transaction()?;
    for i in 0..20 {
        producer
            .send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload(&format!("c{i}")),
            )
            .map_err(|(e, _)| e)?;
    }
    producer.commit_transaction(Duration::from_secs(30))?;
    // A second transaction stays open: its 10 records are not readable by
    // read_committed consumers yet.
    producer.begin_transaction()?;
    for i in 0..10 {
        producer
            .send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload(&format!("o{i}")),
            )
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;

    let first = sample_one(&format!("{group}_probe"), &[&topic]).await;
    let lso = first.partitions[0].lso.expect("last stable offset");
    // A read_committed consumer that read everything it may read commits at
    // the last stable offset (past the commit marker).
    common::commit_offsets(&group, &topic, 1, lso)?;
    let sample = sample_one(&group, &[&topic]).await;
    let p0 = &sample.partitions[0];
    assert_eq!(
        p0.end - lso,
        10,
        "the open transaction's records are past the LSO: {p0:?}"
    );
    assert_eq!(p0.lag_for(Isolation::ReadCommitted), Some(0), "{p0:?}");
    assert_eq!(p0.lag_for(Isolation::ReadUncommitted), Some(10));
    producer.abort_transaction(Duration::from_secs(30))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_topic_patterns_select_groups_and_topics() -> anyhow::Result<()> {
    let (id, topic) = fixture("regex", 20).await?;
    let other_topic = format!("{id}_audit");
    common::create_topic(&other_topic, 1).await?;
    common::produce(&other_topic, 1, 5).await?;
    for suffix in ["a", "b"] {
        let group = format!("{id}_rx_{suffix}");
        common::commit_offsets(&group, &topic, 3, 1)?;
        common::commit_offsets(&group, &other_topic, 1, 1)?;
    }
    common::commit_offsets(&format!("{id}_other"), &topic, 3, 1)?;
    let monitor = Monitor {
        id: 1,
        team: "t".into(),
        cluster: "local".into(),
        consumer_group: format!("{id}_rx_.*"),
        group_match: GroupMatch::Regex,
        topics: vec![],
        topic_regex: Some(format!("{id}_t")),
        lag_threshold: 1,
        for_secs: 0,
        emails: vec![],
        isolation: Isolation::ReadUncommitted,
        time_lag: Default::default(),
        alerting: Default::default(),
    };
    let samples = tokio::task::spawn_blocking(move || {
        let source = source();
        let (groups, _) =
            lagwatch_collector::source::OffsetSource::list_groups(&source).expect("list groups");
        let targets = targets_for("local", &[monitor], Some(&groups));
        sample_cluster(&source, "local", &targets, 0)
    })
    .await?;
    let groups: Vec<&str> = samples.iter().map(|s| s.group.as_str()).collect();
    assert_eq!(groups, vec![format!("{id}_rx_a"), format!("{id}_rx_b")]);
    for sample in &samples {
        let topics: BTreeSet<&str> = sample.partitions.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(
            topics,
            BTreeSet::from([topic.as_str()]),
            "topic pattern filters {other_topic}"
        );
        assert_eq!(lags(sample), vec![(0, 19), (1, 19), (2, 19)]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_yields_error_samples_quickly() -> anyhow::Result<()> {
    let cluster = ClusterConfig {
        bootstrap_servers: "127.0.0.1:1".into(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    let started = std::time::Instant::now();
    let samples = tokio::task::spawn_blocking(move || {
        let source = KafkaOffsetSource::new(&cluster, Default::default(), Duration::from_secs(2))
            .expect("client");
        sample_cluster(&source, "down", &[target("g", &[])], 0)
    })
    .await?;
    assert_eq!(samples.len(), 1);
    let error = samples[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("metadata"), "{error}");
    assert_eq!(samples[0].state, "Unknown");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_time_lag_reads_the_record_timestamp_at_the_committed_offset() -> anyhow::Result<()> {
    let (id, topic) = fixture("exact", 0).await?;
    let group = format!("{id}_g");
    let now_ms = lagwatch_model::now_ms();
    // Records 0..10 on partition 0, written "one minute apart" ten minutes ago.
    let producer: BaseProducer = common::client_config().create()?;
    for i in 0..10i64 {
        let written = now_ms - 600_000 + i * 60_000;
        producer
            .send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload("x")
                    .timestamp(written),
            )
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;
    common::commit_offsets(&group, &topic, 1, 4)?;
    let mut exact = target(&group, &[&topic]);
    exact.exact_time_lag = true;
    let ts_ms = now_ms;
    let sample =
        tokio::task::spawn_blocking(move || sample_cluster(&source(), "local", &[exact], ts_ms))
            .await?
            .remove(0);
    let p0 = &sample.partitions[0];
    // The next record to consume (offset 4) was written 360 s before ts.
    assert_eq!(p0.time_lag_ms, Some(360_000), "{p0:?}");
    assert_eq!(p0.lag, Some(6));
    // Partitions without a commit get no time lag.
    assert_eq!(sample.partitions[1].time_lag_ms, None);
    Ok(())
}
