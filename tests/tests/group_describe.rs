//! Group descriptions are reused between refreshes, while offsets and lag
//! are read fresh every cycle: a commit shows in the next sample. The Kafka
//! source lists the cluster's groups with their states every cycle and
//! describes a settled group again as soon as its listed state changes (or
//! when its rotation slot comes up), so a group whose member left no longer
//! shows `Stable` in the very next sample, and shows `Empty` within three.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lagwatch_collector::sampler::sample_cluster;
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::GroupSample;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

async fn sample(source: Arc<KafkaOffsetSource>, group: &str, topic: &str) -> GroupSample {
    let target = common::topic_target(group, topic);
    tokio::task::spawn_blocking(move || sample_cluster(source.as_ref(), "local", &[target], 0))
        .await
        .expect("sampling thread")
        .remove(0)
}

fn commit(consumer: &BaseConsumer, topic: &str, offset: i64) -> anyhow::Result<()> {
    let mut offsets = TopicPartitionList::new();
    for partition in 0..3 {
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.commit(&offsets, CommitMode::Sync)?;
    Ok(())
}

fn lags(sample: &GroupSample) -> Vec<Option<i64>> {
    let mut partitions = sample.partitions.clone();
    partitions.sort_by_key(|p| p.partition);
    partitions.iter().map(|p| p.lag).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_fresh_every_cycle_and_state_within_three() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("describe");
    let topic = format!("{id}_t");
    let group = format!("{id}_g");
    common::create_topic(&topic, 3).await?;
    common::produce(&topic, 3, 100).await?;

    let member: BaseConsumer = common::client_config()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    member.subscribe(&[&topic])?;
    common::eventually("an assignment", Duration::from_secs(60), || {
        let _ = member.poll(Duration::from_millis(100));
        (member.assignment().map(|a| a.count()).unwrap_or(0) > 0).then_some(())
    })
    .await?;
    commit(&member, &topic, 10)?;

    let cluster = ClusterConfig {
        bootstrap_servers: common::kafka(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    let source = Arc::new(KafkaOffsetSource::new(
        &cluster,
        Default::default(),
        Duration::from_secs(10),
    )?);

    // Cycle 1 describes the group.
    let first = sample(source.clone(), &group, &topic).await;
    assert_eq!(first.error, None, "{first:?}");
    assert_eq!((first.state.as_str(), first.members), ("Stable", 1));
    assert_eq!(lags(&first), vec![Some(90); 3]);

    // Cycle 2 reuses the description, but the new commit shows at once.
    commit(&member, &topic, 30)?;
    let second = sample(source.clone(), &group, &topic).await;
    assert_eq!(lags(&second), vec![Some(70); 3]);
    assert_eq!((second.state.as_str(), second.members), ("Stable", 1));

    // The member leaves: the next sample already shows the change (the
    // listing's state differs from the cached description), Empty within
    // three cycles (the leave may still be in progress at the first).
    drop(member);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let s = sample(source.clone(), &group, &topic).await;
        assert_eq!(lags(&s), vec![Some(70); 3], "{s:?}");
        seen.push((s.state.clone(), s.members));
        if s.state == "Empty" {
            break;
        }
    }
    eprintln!("states after the member left, one per cycle: {seen:?}");
    assert_ne!(
        seen.first(),
        Some(&("Stable".to_string(), 1)),
        "the first sample after the member left still shows the old description: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&("Empty".to_string(), 0)),
        "Empty within three cycles: {seen:?}"
    );
    Ok(())
}
