//! Committed offsets read from `__consumer_offsets` agree with the admin
//! API (OffsetFetch) on the real broker: plain commits, a partial commit, a
//! deleted group, a committed transactional offset commit and an open one,
//! and a commit made just before a read (the reader waits for it).
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lagwatch_collector::kafka::admin_ffi::CommittedOffset;
use lagwatch_collector::kafka::offsets_topic::OffsetsTopicReader;
use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::source::OffsetSource;
use lagwatch_collector::{ClusterConfig, CommittedOffsetsFrom, KafkaOffsetSource};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn cluster(from: CommittedOffsetsFrom) -> ClusterConfig {
    ClusterConfig {
        bootstrap_servers: common::kafka(),
        committed_offsets: from,
        ..ClusterConfig::default()
    }
}

/// (topic, partition) -> offset, sorted, for comparing two answers.
fn sorted(offsets: &[CommittedOffset]) -> BTreeMap<(String, i32), Option<i64>> {
    offsets
        .iter()
        .map(|o| ((o.topic.clone(), o.partition), o.offset))
        .collect()
}

/// Commits offsets for `group` inside a transaction, committed or left open.
fn transactional_commit(
    id: &str,
    group: &str,
    topic: &str,
    offset: i64,
    commit: bool,
) -> anyhow::Result<BaseProducer> {
    let producer: BaseProducer = common::client_config()
        .set("transactional.id", format!("{id}_{group}_txn"))
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    producer.begin_transaction()?;
    let consumer: BaseConsumer = common::client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| anyhow::anyhow!("no group metadata"))?;
    let mut offsets = TopicPartitionList::new();
    for partition in 0..3 {
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    producer.send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(30))?;
    if commit {
        producer.commit_transaction(Duration::from_secs(30))?;
    }
    Ok(producer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_topic_reader_agrees_with_the_admin_api() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("offtopic");
    let topic = format!("{id}_t");
    common::create_topic(&topic, 3).await?;
    common::produce(&topic, 3, 100).await?;
    let group = |name: &str| format!("{id}_{name}");

    common::commit_offsets(&group("plain"), &topic, 3, 40)?;
    // Only partition 0 of the second group.
    common::commit_offsets(&group("partial"), &topic, 1, 70)?;
    common::commit_offsets(&group("deleted"), &topic, 3, 5)?;
    let admin: AdminClient<DefaultClientContext> = common::client_config().create()?;
    admin
        .delete_groups(&[&group("deleted")], &AdminOptions::new())
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(g, e)| anyhow::anyhow!("delete {g}: {e}"))?;
    let _done = transactional_commit(&id, &group("txn"), &topic, 60, true)?;
    // The open transaction's offsets are not committed yet for anyone.
    let open = transactional_commit(&id, &group("open"), &topic, 90, false)?;

    let groups: Vec<String> = ["plain", "partial", "deleted", "txn", "open", "never"]
        .iter()
        .map(|name| group(name))
        .collect();
    let by_admin = KafkaOffsetSource::new(
        &cluster(CommittedOffsetsFrom::AdminApi),
        Duration::from_secs(10),
    )?;
    let reference = by_admin.committed_offsets(&groups);

    let config = cluster(CommittedOffsetsFrom::OffsetsTopic).client_config();
    let reader = OffsetsTopicReader::start(&config, Duration::from_secs(10))?;
    // The first read may wait for the whole topic (every test's commits).
    let started = Instant::now();
    let from_topic = common::eventually("the reader to catch up", Duration::from_secs(60), || {
        reader
            .committed_offsets(admin.inner(), &groups, Duration::from_secs(2))
            .ok()
    })
    .await?;
    eprintln!(
        "caught up with __consumer_offsets in {:?}",
        started.elapsed()
    );

    for name in &groups {
        let expected = match reference.get(name) {
            Some(Ok(offsets)) => sorted(offsets),
            other => anyhow::bail!("admin API answer for {name}: {other:?}"),
        };
        let got = sorted(from_topic.get(name).map(Vec::as_slice).unwrap_or_default());
        assert_eq!(got, expected, "group {name}");
    }
    // The expectations themselves, so agreement is not agreement on nothing.
    let plain = sorted(&from_topic[&group("plain")]);
    assert_eq!(plain.values().copied().collect::<Vec<_>>(), [Some(40); 3]);
    assert_eq!(
        sorted(&from_topic[&group("partial")]),
        BTreeMap::from([((topic.clone(), 0), Some(70))])
    );
    assert!(from_topic[&group("deleted")].is_empty());
    assert_eq!(
        sorted(&from_topic[&group("txn")])
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(60); 3]
    );
    assert!(from_topic[&group("open")].is_empty(), "open transaction");
    assert!(from_topic[&group("never")].is_empty());

    // Committing the open transaction makes its offsets visible.
    open.commit_transaction(Duration::from_secs(30))?;
    // A commit acknowledged before a read is in that read: the reader waits
    // for the last stable offsets of __consumer_offsets.
    common::commit_offsets(&group("plain"), &topic, 3, 77)?;
    let fresh = reader.committed_offsets(admin.inner(), &groups, Duration::from_secs(5))?;
    assert_eq!(
        sorted(&fresh[&group("plain")])
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(77); 3],
        "a commit just before the read"
    );
    assert_eq!(
        sorted(&fresh[&group("open")])
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(90); 3],
        "the transaction committed just before the read"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_through_the_offsets_topic_match_the_kafka_tool() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("offtopic_sample");
    let topic = format!("{id}_t");
    let group = format!("{id}_g");
    common::create_topic(&topic, 3).await?;
    common::produce(&topic, 3, 50).await?;
    common::commit_offsets(&group, &topic, 3, 20)?;
    let source = KafkaOffsetSource::new(
        &cluster(CommittedOffsetsFrom::OffsetsTopic),
        Duration::from_secs(10),
    )?;
    let target = GroupTarget {
        group: group.clone(),
        topics: BTreeSet::from([topic.clone()]),
        topic_patterns: vec![],
        all_topics: false,
        exact_time_lag: false,
        read_committed: false,
    };
    // The first cycles may be answered by the admin API while the reader
    // catches up; every cycle must be right either way.
    for _ in 0..3 {
        let sample = sample_cluster(&source, "local", std::slice::from_ref(&target), 0).remove(0);
        assert_eq!(sample.error, None, "{sample:?}");
        let mut lags: Vec<(i32, i64)> = sample
            .partitions
            .iter()
            .filter_map(|p| p.lag.map(|lag| (p.partition, lag)))
            .collect();
        lags.sort();
        assert_eq!(lags, common::kafka_tool_lag(&group, &topic)?);
        assert_eq!(lags, [(0, 30), (1, 30), (2, 30)]);
    }
    Ok(())
}
