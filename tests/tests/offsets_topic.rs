//! Committed offsets read from `__consumer_offsets` agree with the admin
//! API (OffsetFetch) on the real broker: plain commits, a partial commit, a
//! deleted group, a committed transactional offset commit and an open one,
//! and a commit made just before a read (the reader waits for it); and on
//! a broker with ACLs, the admin API answering while the collector may not
//! read `__consumer_offsets`.
//!
//! Needs `tests/infra/up.sh` (Kafka on 127.0.0.1:19092).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lagwatch_collector::kafka::offsets_topic::{
    partition_for, OffsetsTopicError, OffsetsTopicReader,
};
use lagwatch_collector::sampler::sample_cluster;
use lagwatch_collector::source::CommittedOffset;
use lagwatch_collector::source::OffsetSource;
use lagwatch_collector::{CommittedOffsetsFrom, KafkaOffsetSource};
use lagwatch_kafka::ClusterConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn cluster() -> ClusterConfig {
    ClusterConfig {
        bootstrap_servers: common::kafka(),
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

    // A plain commit stored in the same __consumer_offsets partition as the
    // open transaction: acknowledged, but behind the partition's last
    // stable offset, so the reader cannot see it yet.
    let partitions = offsets_topic_partitions()?;
    let held = partition_for(&group("open"), partitions);
    let neighbour = (0..)
        .map(|i| group(&format!("neighbour{i}")))
        .find(|g| partition_for(g, partitions) == held)
        .unwrap_or_default();
    common::commit_offsets(&neighbour, &topic, 3, 33)?;

    let mut groups: Vec<String> = ["plain", "partial", "deleted", "txn", "open", "never"]
        .iter()
        .map(|name| group(name))
        .collect();
    groups.push(neighbour.clone());
    let by_admin = KafkaOffsetSource::new(
        &cluster(),
        CommittedOffsetsFrom::AdminApi,
        Duration::from_secs(10),
    )?;
    let reference = by_admin.committed_offsets(&groups);
    let expected = |name: &str| -> anyhow::Result<BTreeMap<(String, i32), Option<i64>>> {
        match reference.get(name) {
            Some(Ok(offsets)) => Ok(sorted(offsets)),
            other => anyhow::bail!("admin API answer for {name}: {other:?}"),
        }
    };

    let config = cluster().client_config();
    let reader = OffsetsTopicReader::start(&config, &by_admin, Duration::from_secs(10))?;
    // The first read may wait for the whole topic (every test's commits).
    let started = Instant::now();
    let answer = common::eventually("the reader to catch up", Duration::from_secs(60), || {
        reader
            .committed_offsets(&by_admin, &groups, Duration::from_secs(2))
            .ok()
    })
    .await?;
    eprintln!(
        "caught up with __consumer_offsets in {:?}; unsure: {:?}",
        started.elapsed(),
        answer.unsure
    );
    // Groups in the partition held by the open transaction are left to the
    // admin API; every other group agrees with it.
    assert!(
        answer.unsure.contains(&group("open")),
        "{:?}",
        answer.unsure
    );
    assert!(answer.unsure.contains(&neighbour), "{:?}", answer.unsure);
    for name in groups.iter().filter(|g| !answer.unsure.contains(g)) {
        let got = sorted(
            answer
                .offsets
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        );
        assert_eq!(got, expected(name)?, "group {name}");
    }
    // The expectations themselves, so agreement is not agreement on nothing.
    let plain = expected(&group("plain"))?;
    assert_eq!(plain.values().copied().collect::<Vec<_>>(), [Some(40); 3]);
    assert_eq!(
        expected(&group("partial"))?,
        BTreeMap::from([((topic.clone(), 0), Some(70))])
    );
    assert!(expected(&group("deleted"))?.is_empty());
    assert_eq!(
        expected(&group("txn"))?
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(60); 3]
    );
    assert!(expected(&group("open"))?.is_empty(), "open transaction");
    assert!(expected(&group("never"))?.is_empty());
    // Through the source, the held groups come from the admin API: the
    // neighbour's commit is there although the reader cannot see it yet.
    let source = KafkaOffsetSource::new(
        &cluster(),
        CommittedOffsetsFrom::OffsetsTopic,
        Duration::from_secs(10),
    )?;
    let through_source = common::eventually("the source's reader", Duration::from_secs(60), || {
        let answer = source.committed_offsets(&groups);
        let got = |name: &str| match answer.get(name) {
            Some(Ok(offsets)) => Some(sorted(offsets)),
            _ => None,
        };
        groups
            .iter()
            .map(|g| got(g).map(|offsets| (g.clone(), offsets)))
            .collect::<Option<BTreeMap<_, _>>>()
    })
    .await?;
    for name in &groups {
        assert_eq!(
            through_source[name],
            expected(name)?,
            "source, group {name}"
        );
    }
    assert_eq!(
        through_source[&neighbour]
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(33); 3]
    );

    // Committing the open transaction makes its offsets visible, and the
    // partition is no longer held.
    open.commit_transaction(Duration::from_secs(30))?;
    // A commit acknowledged before a read is in that read: the reader waits
    // for the last stable offsets of __consumer_offsets.
    common::commit_offsets(&group("plain"), &topic, 3, 77)?;
    let fresh = reader.committed_offsets(&by_admin, &groups, Duration::from_secs(5))?;
    assert!(fresh.unsure.is_empty(), "{:?}", fresh.unsure);
    let values = |name: &str| -> Vec<Option<i64>> {
        sorted(
            fresh
                .offsets
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .values()
        .copied()
        .collect()
    };
    assert_eq!(
        values(&group("plain")),
        [Some(77); 3],
        "a commit just before the read"
    );
    assert_eq!(
        values(&group("open")),
        [Some(90); 3],
        "the transaction committed just before the read"
    );
    assert_eq!(values(&neighbour), [Some(33); 3], "behind the transaction");
    Ok(())
}

/// Partition count of `__consumer_offsets` on the test broker.
fn offsets_topic_partitions() -> anyhow::Result<i32> {
    let client: BaseConsumer = common::client_config().create()?;
    let metadata = client.fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(10))?;
    let count = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    anyhow::ensure!(count > 0, "__consumer_offsets has no partitions yet");
    Ok(i32::try_from(count)?)
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
        &cluster(),
        CommittedOffsetsFrom::OffsetsTopic,
        Duration::from_secs(10),
    )?;
    let target = common::topic_target(&group, &topic);
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

/// Runs Kafka's ACL tool against `bootstrap` (as a super user).
fn acl(bootstrap: &str, args: &[&str]) -> anyhow::Result<()> {
    let script = common::repo_root().join("tests/infra/kafka-run-class.sh");
    let output = std::process::Command::new(script)
        .args([
            "org.apache.kafka.tools.AclCommand",
            "--bootstrap-server",
            bootstrap,
            "--add",
        ])
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "AclCommand {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// On a cluster with ACLs where the collector may describe its groups and
/// topics but not read `__consumer_offsets`, the reader cannot start, says
/// which permission is missing, and the admin API answers: samples stay
/// exact. Once READ on the topic is granted, the reader starts and agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_on_the_offsets_topic_the_admin_api_answers() -> anyhow::Result<()> {
    common::require_kafka()?;
    let dir = tempfile::tempdir()?;
    let dir_text = dir.path().to_string_lossy().to_string();
    let [port, controller, sasl] = common::free_ports::<3>();
    let script = common::repo_root().join("tests/infra/private-kafka.sh");
    let started = std::process::Command::new(&script)
        .env("PRIVATE_KAFKA_AUTHORIZER", "1")
        .args([
            "start",
            &dir_text,
            &port.to_string(),
            &controller.to_string(),
            &sasl.to_string(),
        ])
        .status()?;
    anyhow::ensure!(started.success(), "private broker with ACLs did not start");
    let result = async {
        let super_user = format!("127.0.0.1:{port}");
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &super_user);
        let admin: AdminClient<DefaultClientContext> = config.create()?;
        // Looks up the ends of __consumer_offsets for the readers, as the
        // super user.
        let lookup = KafkaOffsetSource::new(
            &ClusterConfig {
                bootstrap_servers: super_user.clone(),
                ..ClusterConfig::default()
            },
            CommittedOffsetsFrom::AdminApi,
            Duration::from_secs(10),
        )?;
        let (topic, group) = ("acl-orders", "acl-group");
        admin
            .create_topics(
                [&rdkafka::admin::NewTopic::new(
                    topic,
                    2,
                    rdkafka::admin::TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await?;
        let producer: BaseProducer = config.create()?;
        for partition in 0..2 {
            for i in 0..30 {
                let payload = format!("r{i}");
                producer
                    .send(
                        rdkafka::producer::BaseRecord::<(), _>::to(topic)
                            .partition(partition)
                            .payload(&payload),
                    )
                    .map_err(|(e, _)| e)?;
            }
        }
        producer.flush(Duration::from_secs(30))?;
        let committer: BaseConsumer = config.clone().set("group.id", group).create()?;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(topic, 0, Offset::Offset(10))?;
        offsets.add_partition_offset(topic, 1, Offset::Offset(25))?;
        common::eventually("the first commit", Duration::from_secs(60), || {
            committer
                .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
                .ok()
        })
        .await?;
        acl(
            &super_user,
            &[
                "--allow-principal",
                "User:alice",
                "--operation",
                "Describe",
                "--topic",
                topic,
                "--group",
                group,
            ],
        )?;

        let alice = common::alice_over_sasl_plain(sasl, "alice-secret");
        let refused = match OffsetsTopicReader::start(
            &alice.client_config(),
            &lookup,
            Duration::from_secs(10),
        ) {
            Ok(_) => anyhow::bail!("the reader started without READ on __consumer_offsets"),
            Err(error) => error.to_string(),
        };
        eprintln!("reader start without permission: {refused}");
        assert!(
            refused.contains("__consumer_offsets") && refused.contains("permission"),
            "{refused}"
        );

        let source = KafkaOffsetSource::new(
            &alice,
            CommittedOffsetsFrom::OffsetsTopic,
            Duration::from_secs(10),
        )?;
        let target = common::topic_target(group, topic);
        let lags = |source: &KafkaOffsetSource| {
            let sample = sample_cluster(source, "acl", std::slice::from_ref(&target), 0).remove(0);
            let mut lags: Vec<(i32, Option<i64>)> = sample
                .partitions
                .iter()
                .map(|p| (p.partition, p.lag))
                .collect();
            lags.sort();
            (sample.error, lags)
        };
        assert_eq!(lags(&source), (None, vec![(0, Some(20)), (1, Some(5))]));

        // DESCRIBE alone: the reader starts, its fetches are refused, and
        // reads report the stopped reader (the source then uses the admin API).
        let grant = |operation: &str| {
            acl(
                &super_user,
                &[
                    "--allow-principal",
                    "User:alice",
                    "--operation",
                    operation,
                    "--topic",
                    "__consumer_offsets",
                ],
            )
        };
        grant("Describe")?;
        let blind =
            common::eventually_async("a start with DESCRIBE", Duration::from_secs(30), || async {
                OffsetsTopicReader::start(&alice.client_config(), &lookup, Duration::from_secs(10))
                    .ok()
            })
            .await?;
        let stopped =
            common::eventually("the refused fetch", Duration::from_secs(30), || match blind
                .committed_offsets(&lookup, &[group.to_string()], Duration::from_secs(2))
            {
                Err(error @ OffsetsTopicError::Reader(_)) => Some(error.to_string()),
                _ => None,
            })
            .await?;
        eprintln!("reader with DESCRIBE only: {stopped}");
        assert!(stopped.contains("uthorization"), "{stopped}");
        assert_eq!(lags(&source), (None, vec![(0, Some(20)), (1, Some(5))]));

        // With READ on the topic the reader starts and agrees.
        grant("Read")?;
        let reader =
            common::eventually_async("the reader to start", Duration::from_secs(30), || async {
                OffsetsTopicReader::start(&alice.client_config(), &lookup, Duration::from_secs(10))
                    .ok()
            })
            .await?;
        let by_reader =
            common::eventually("the reader to catch up", Duration::from_secs(30), || {
                reader
                    .committed_offsets(&lookup, &[group.to_string()], Duration::from_secs(2))
                    .ok()
            })
            .await?;
        assert_eq!(
            sorted(&by_reader.offsets[group]),
            BTreeMap::from([
                ((topic.to_string(), 0), Some(10)),
                ((topic.to_string(), 1), Some(25))
            ])
        );
        anyhow::Ok(())
    }
    .await;
    let _ = std::process::Command::new(&script)
        .args(["kill", &dir_text])
        .status();
    result
}
