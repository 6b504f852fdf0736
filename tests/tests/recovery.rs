//! The collector rides out a broker crash: while the broker is down samples
//! carry the error (no silence, no made-up lag), and once it is back the
//! same client recovers without a restart.
//!
//! Starts a private broker (tests/infra/private-kafka.sh) so that it can be
//! killed without disturbing other tests.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lagwatch_collector::sampler::sample_cluster;
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::GroupSample;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Private brokers are JVMs: on a 2-core machine, start one at a time.
static ONE_BROKER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn broker(args: &[&str]) -> anyhow::Result<()> {
    let script = common::repo_root().join("tests/infra/private-kafka.sh");
    let run = || Command::new(&script).args(args).status();
    let mut status = run()?;
    if !status.success() && args.first() == Some(&"start") {
        // A JVM start on a loaded 2-core machine can miss its window once:
        // clean up and try again before failing (the script prints why).
        if let Some(dir) = args.get(1) {
            let _ = Command::new(&script).args(["kill", dir]).status();
        }
        std::thread::sleep(Duration::from_secs(2));
        status = run()?;
    }
    anyhow::ensure!(status.success(), "{} {args:?} failed", script.display());
    Ok(())
}

async fn sample(source: Arc<KafkaOffsetSource>, group: &str, topic: &str) -> GroupSample {
    let target = common::topic_target(group, topic);
    tokio::task::spawn_blocking(move || sample_cluster(source.as_ref(), "private", &[target], 0))
        .await
        .expect("sampling thread")
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_recovers_after_a_broker_crash_without_restart() -> anyhow::Result<()> {
    let _serial = ONE_BROKER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let dir_text = dir.path().to_string_lossy().to_string();
    let [port, controller] = common::free_ports::<2>();
    let bootstrap = format!("127.0.0.1:{port}");
    broker(&[
        "start",
        &dir_text,
        &port.to_string(),
        &controller.to_string(),
    ])?;

    let result = async {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &bootstrap);
        let admin: AdminClient<DefaultClientContext> = config.create()?;
        let topic = "recovery-orders";
        admin
            .create_topics(
                [&NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await?;
        let group = "recovery-group";
        let consumer: BaseConsumer = config.clone().set("group.id", group).create()?;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(topic, 0, Offset::Offset(0))?;
        offsets.add_partition_offset(topic, 1, Offset::Offset(0))?;
        // A fresh broker creates __consumer_offsets on first use: retry.
        common::eventually("the first commit", Duration::from_secs(60), || {
            consumer.commit(&offsets, CommitMode::Sync).ok()
        })
        .await?;

        let cluster = ClusterConfig {
            bootstrap_servers: bootstrap.clone(),
            properties: BTreeMap::new(),
            secret_properties: BTreeMap::new(),
        };
        let source = Arc::new(KafkaOffsetSource::new(
            &cluster,
            Default::default(),
            Duration::from_secs(3),
        )?);
        let healthy = sample(source.clone(), group, topic).await;
        assert_eq!(healthy.error, None, "{healthy:?}");
        assert_eq!(healthy.partitions.len(), 2);

        // Crash: samples say so, quickly, and report no lag.
        broker(&["kill", &dir_text])?;
        let down = common::eventually_async("an error sample", Duration::from_secs(30), || {
            let source = source.clone();
            async move {
                let s = sample(source, group, topic).await;
                s.error.is_some().then_some(s)
            }
        })
        .await?;
        assert!(down.partitions.iter().all(|p| p.lag.is_none()), "{down:?}");

        // Back up: the same source recovers.
        broker(&[
            "start",
            &dir_text,
            &port.to_string(),
            &controller.to_string(),
        ])?;
        let recovered =
            common::eventually_async("a healthy sample again", Duration::from_secs(90), || {
                let source = source.clone();
                async move {
                    let s = sample(source, group, topic).await;
                    (s.error.is_none() && s.partitions.len() == 2).then_some(s)
                }
            })
            .await?;
        assert_eq!(recovered.partitions[0].committed, Some(0));
        anyhow::Ok(())
    }
    .await;
    broker(&["kill", &dir_text])?;
    result
}

/// SASL PLAIN and SCRAM-SHA-256 cluster profiles, with the password read
/// from a file (never written in the config).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram_profiles_authenticate() -> anyhow::Result<()> {
    let _serial = ONE_BROKER_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir()?;
    let dir_text = dir.path().to_string_lossy().to_string();
    let [port, controller, sasl_port] = common::free_ports::<3>();
    broker(&[
        "start",
        &dir_text,
        &port.to_string(),
        &controller.to_string(),
        &sasl_port.to_string(),
    ])?;
    let result = async {
        let secret = dir.path().join("kafka-password");
        std::fs::write(&secret, "alice-secret\n")?;
        for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
            let cluster = ClusterConfig {
                bootstrap_servers: format!("127.0.0.1:{sasl_port}"),
                properties: BTreeMap::from([
                    (
                        "security.protocol".to_string(),
                        "SASL_PLAINTEXT".to_string(),
                    ),
                    ("sasl.mechanism".to_string(), mechanism.to_string()),
                    ("sasl.username".to_string(), "alice".to_string()),
                ]),
                secret_properties: BTreeMap::from([(
                    "sasl.password".to_string(),
                    lagwatch_kafka::SecretRef::File(secret.clone()),
                )]),
            };
            assert!(!format!("{cluster:?}").contains("alice-secret"));
            let source = Arc::new(KafkaOffsetSource::new(
                &cluster,
                Default::default(),
                Duration::from_secs(10),
            )?);
            let ok = common::eventually_async(
                "an authenticated sample",
                Duration::from_secs(60),
                || {
                    let source = source.clone();
                    async move {
                        let s = sample(source, "nobody", "__consumer_offsets").await;
                        s.error.is_none().then_some(s)
                    }
                },
            )
            .await;
            ok.map_err(|e| anyhow::anyhow!("{mechanism}: {e}"))?;
        }
        // A wrong password is an error sample, not a hang or a crash.
        let cluster = common::alice_over_sasl_plain(sasl_port, "wrong");
        let source = Arc::new(KafkaOffsetSource::new(
            &cluster,
            Default::default(),
            Duration::from_secs(3),
        )?);
        let denied = sample(source, "nobody", "__consumer_offsets").await;
        assert!(denied.error.is_some(), "{denied:?}");
        anyhow::Ok(())
    }
    .await;
    broker(&["kill", &dir_text])?;
    result
}
