//! TLS cluster profiles against a real broker: the collector samples a
//! group's lag over SSL with mutual TLS (encrypted client key, password from
//! a file) and over SASL_SSL, and TLS mistakes (wrong CA, missing client
//! certificate, wrong key password) give clear errors quickly instead of a
//! hang or a crash.
//!
//! Starts a private broker with TLS listeners and certificates made at test
//! time (`tests/infra/private-kafka.sh start-tls`, `tests/infra/tls-certs.sh`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_kafka::SecretRef;
use lagwatch_model::{now_ms, GroupSample};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Private brokers are JVMs: on a 2-core machine, start one at a time.
static ONE_BROKER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TOPIC: &str = "tls-orders";
const GROUP: &str = "tls-billing";
/// Records produced to partitions 0, 1, 2.
const PRODUCED: [i64; 3] = [10, 20, 30];
/// Offsets the group commits on partitions 0, 1, 2.
const COMMITTED: [i64; 3] = [4, 5, 6];

/// A private broker with PLAINTEXT, SSL (client certificate required) and
/// SASL_SSL listeners; killed on drop.
struct TlsBroker {
    dir: tempfile::TempDir,
    plaintext: u16,
    ssl: u16,
    sasl_ssl: u16,
}

impl TlsBroker {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let [plaintext, controller, ssl, sasl_ssl] = common::free_ports::<4>();
        let broker = TlsBroker {
            dir,
            plaintext,
            ssl,
            sasl_ssl,
        };
        let ports = [plaintext, controller, ssl, sasl_ssl].map(|p| p.to_string());
        let dir_text = broker.dir.path().to_string_lossy().to_string();
        let mut args = vec!["start-tls", dir_text.as_str()];
        args.extend(ports.iter().map(String::as_str));
        let script = common::repo_root().join("tests/infra/private-kafka.sh");
        let run = || Command::new(&script).args(&args).status();
        let mut status = run()?;
        if !status.success() {
            // A JVM start on a loaded 2-core machine can miss its window
            // once: clean up and try again (the script prints why).
            let _ = Command::new(&script).args(["kill", &dir_text]).status();
            std::thread::sleep(Duration::from_secs(2));
            status = run()?;
        }
        anyhow::ensure!(status.success(), "{} {args:?} failed", script.display());
        Ok(broker)
    }

    fn tls_file(&self, name: &str) -> String {
        self.dir
            .path()
            .join("tls")
            .join(name)
            .to_string_lossy()
            .to_string()
    }

    fn tls_path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("tls").join(name)
    }

    fn plaintext_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", format!("127.0.0.1:{}", self.plaintext));
        config
    }

    /// SSL with mutual TLS: CA, client certificate, encrypted client key
    /// whose password is read from a file.
    fn mtls_profile(&self, ca: &str) -> ClusterConfig {
        ClusterConfig {
            bootstrap_servers: format!("127.0.0.1:{}", self.ssl),
            properties: BTreeMap::from([
                ("security.protocol".to_string(), "SSL".to_string()),
                ("ssl.ca.location".to_string(), self.tls_file(ca)),
                (
                    "ssl.certificate.location".to_string(),
                    self.tls_file("client.pem"),
                ),
                ("ssl.key.location".to_string(), self.tls_file("client.key")),
            ]),
            secret_properties: BTreeMap::from([(
                "ssl.key.password".to_string(),
                SecretRef::File(self.tls_path("client.key.password")),
            )]),
        }
    }

    /// SASL_SSL: server authentication only (CA), PLAIN login with the
    /// password from a file.
    fn sasl_ssl_profile(&self, ca: &str, password_file: &Path) -> ClusterConfig {
        ClusterConfig {
            bootstrap_servers: format!("127.0.0.1:{}", self.sasl_ssl),
            properties: BTreeMap::from([
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("ssl.ca.location".to_string(), self.tls_file(ca)),
                ("sasl.mechanism".to_string(), "PLAIN".to_string()),
                ("sasl.username".to_string(), "alice".to_string()),
            ]),
            secret_properties: BTreeMap::from([(
                "sasl.password".to_string(),
                SecretRef::File(password_file.to_path_buf()),
            )]),
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let script = common::repo_root().join("tests/infra/private-kafka.sh");
        let _ = Command::new(script)
            .args(["kill", &self.dir.path().to_string_lossy()])
            .status();
    }
}

async fn sample(source: Arc<KafkaOffsetSource>, exact_time_lag: bool) -> GroupSample {
    let target = GroupTarget {
        exact_time_lag,
        ..common::topic_target(GROUP, TOPIC)
    };
    tokio::task::spawn_blocking(move || sample_cluster(source.as_ref(), "tls", &[target], now_ms()))
        .await
        .expect("sampling thread")
        .remove(0)
}

/// Creates the topic, produces [`PRODUCED`] records and commits
/// [`COMMITTED`] for the group, over the plaintext listener.
async fn seed(broker: &TlsBroker) -> anyhow::Result<()> {
    let config = broker.plaintext_config();
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let created = admin
        .create_topics(
            [&NewTopic::new(TOPIC, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for result in created {
        result.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
    }
    let producer: FutureProducer = config.clone().set("linger.ms", "5").create()?;
    for (partition, count) in (0..).zip(PRODUCED) {
        for i in 0..count {
            producer
                .send(
                    FutureRecord::<(), _>::to(TOPIC)
                        .partition(partition)
                        .payload(&format!("order {i}")),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        }
    }
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in (0..).zip(COMMITTED) {
        offsets.add_partition_offset(TOPIC, partition, Offset::Offset(offset))?;
    }
    // A fresh broker creates __consumer_offsets on first use: retry.
    common::eventually("the group's commit", Duration::from_secs(60), || {
        consumer.commit(&offsets, CommitMode::Sync).ok()
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_samples_lag_over_mtls_and_sasl_ssl() -> anyhow::Result<()> {
    let _serial = ONE_BROKER_AT_A_TIME.lock().await;
    let broker = TlsBroker::start()?;
    seed(&broker).await?;
    let password = broker.dir.path().join("sasl-password");
    std::fs::write(&password, "alice-secret\n")?;
    let key_password = std::fs::read_to_string(broker.tls_path("client.key.password"))?;
    let key_password = key_password.trim();

    let profiles = [
        ("SSL (mTLS)", broker.mtls_profile("ca.pem")),
        ("SASL_SSL", broker.sasl_ssl_profile("ca.pem", &password)),
    ];
    for (name, cluster) in profiles {
        assert_eq!(cluster.check_secrets(), Ok(()), "{name}");
        let shown = format!("{cluster:?}");
        assert!(
            !shown.contains(key_password) && !shown.contains("alice-secret"),
            "{name}: secret in Debug: {shown}"
        );
        let source = Arc::new(KafkaOffsetSource::new(
            &cluster,
            Default::default(),
            Duration::from_secs(10),
        )?);
        let started = Instant::now();
        let sampled = common::eventually_async(
            &format!("a complete sample over {name}"),
            Duration::from_secs(60),
            || {
                let source = source.clone();
                async move {
                    let s = sample(source, true).await;
                    (s.error.is_none() && s.partitions.len() == 3).then_some(s)
                }
            },
        )
        .await?;
        eprintln!(
            "{name}: first complete sample after {:.2}s",
            started.elapsed().as_secs_f64()
        );
        let mut partitions = sampled.partitions.clone();
        partitions.sort_by_key(|p| p.partition);
        let seen: Vec<(i32, Option<i64>, i64, Option<i64>)> = partitions
            .iter()
            .map(|p| (p.partition, p.committed, p.end, p.lag))
            .collect();
        let expected: Vec<(i32, Option<i64>, i64, Option<i64>)> = (0..)
            .zip(COMMITTED.iter().zip(PRODUCED))
            .map(|(partition, (&committed, end))| {
                (partition, Some(committed), end, Some(end - committed))
            })
            .collect();
        assert_eq!(seen, expected, "{name}: (partition, committed, end, lag)");
        assert_eq!(sampled.state, "Empty", "{name}: {sampled:?}");
        assert!(
            partitions.iter().all(|p| p.log_start == Some(0)),
            "{name}: {partitions:?}"
        );
        // Exact time lag reads records at the committed offsets: the
        // time-lag probe consumer goes over the same TLS profile.
        assert!(
            partitions
                .iter()
                .all(|p| p.time_lag_ms.is_some_and(|ms| ms >= 0)),
            "{name}: exact time lag over TLS: {partitions:?}"
        );
        eprintln!(
            "{name}: lag per partition {:?}",
            partitions.iter().map(|p| p.lag).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mistakes_give_clear_errors_quickly() -> anyhow::Result<()> {
    let _serial = ONE_BROKER_AT_A_TIME.lock().await;
    let broker = TlsBroker::start()?;
    seed(&broker).await?;
    let password = broker.dir.path().join("sasl-password");
    std::fs::write(&password, "alice-secret\n")?;
    let timeout = Duration::from_secs(3);

    // A CA that did not sign the broker's certificate, on both listeners;
    // a client without a certificate on the mTLS listener.
    let mut no_client_cert = broker.mtls_profile("ca.pem");
    for key in ["ssl.certificate.location", "ssl.key.location"] {
        no_client_cert.properties.remove(key);
    }
    no_client_cert.secret_properties.clear();
    // Each error must carry the client's reason, not only "timed out".
    let cases = [
        (
            "SSL, wrong CA",
            broker.mtls_profile("other-ca.pem"),
            ["tls handshake failed", "invalid peer certificate"],
        ),
        (
            "SASL_SSL, wrong CA",
            broker.sasl_ssl_profile("other-ca.pem", &password),
            ["tls handshake failed", "invalid peer certificate"],
        ),
        (
            "SSL, no client certificate",
            no_client_cert,
            ["no kafka broker reachable", "BadCertificate"],
        ),
    ];
    for (name, cluster, causes) in cases {
        assert_eq!(cluster.check_secrets(), Ok(()), "{name}");
        let source = Arc::new(KafkaOffsetSource::new(
            &cluster,
            Default::default(),
            timeout,
        )?);
        let started = Instant::now();
        let failed = sample(source.clone(), false).await;
        let elapsed = started.elapsed();
        let error = failed.error.clone().unwrap_or_default();
        eprintln!(
            "{name}: error sample after {:.2}s: {error}",
            elapsed.as_secs_f64()
        );
        assert!(
            !error.is_empty(),
            "{name}: expected an error sample: {failed:?}"
        );
        assert!(
            failed.partitions.iter().all(|p| p.lag.is_none()),
            "{name}: no made-up lag: {failed:?}"
        );
        assert!(
            elapsed < timeout * 3,
            "{name}: took {elapsed:?} with a {timeout:?} request timeout"
        );
        assert!(
            causes.iter().all(|cause| error.contains(cause)),
            "{name}: the error should say why ({causes:?}): {error}"
        );
        // A second cycle on the same client fails the same way (no hang).
        let again = sample(source, false).await;
        assert!(again.error.is_some(), "{name}: {again:?}");
    }

    // A wrong key password: the client cannot be created; the error names
    // the key, not the password.
    let wrong = broker.dir.path().join("wrong-key-password");
    std::fs::write(&wrong, "not-the-password\n")?;
    let mut cluster = broker.mtls_profile("ca.pem");
    cluster
        .secret_properties
        .insert("ssl.key.password".into(), SecretRef::File(wrong));
    let error = match KafkaOffsetSource::new(&cluster, Default::default(), timeout) {
        Ok(_) => anyhow::bail!("a wrong key password must be rejected"),
        Err(error) => error.to_string(),
    };
    eprintln!("wrong key password: {error}");
    assert!(error.contains("ssl.key"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");

    // A missing CA file is a startup error naming the key and the path.
    let mut cluster = broker.mtls_profile("ca.pem");
    cluster
        .properties
        .insert("ssl.ca.location".into(), broker.tls_file("missing-ca.pem"));
    let error = cluster.check_secrets().expect_err("missing CA");
    assert!(
        error.contains("ssl.ca.location") && error.contains("missing-ca.pem"),
        "{error}"
    );
    Ok(())
}
