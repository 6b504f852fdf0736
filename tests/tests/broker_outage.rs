//! The whole Kafka cluster unreachable for 60 s, at process level: the
//! real `lagwatch all` binary talks to a private broker only through the
//! fault proxy (`common::fault_proxy`), which then swallows every byte
//! (`Fault::Blackhole`: connections stay open, nothing answers — worse for
//! a client than a refused connection) for [`OUTAGE`], then passes again.
//!
//! What must hold, and the figures printed on `FIGURE:` lines:
//! - `/readyz` turns 503 naming `collector/local` (time from the start of
//!   the outage; the limit is 3 × interval, at least 30 s);
//! - a `self:collector/local` alert is mailed to the operators (time from
//!   the start of the outage; `self_alerts.after` is 5 s here);
//! - after the proxy passes again, without a restart: `/readyz` is 200
//!   again (recovery time), the self-alert resolves, and a new lag
//!   incident still pages (page latency after recovery).
//!
//! The broker is a private JVM (the shared one must not be cut off from
//! the other tests): PLAINTEXT for the test's own tools, and an EXTERNAL
//! listener advertised on the proxy's port, which is all lagwatch knows.
//! Mail goes to the shared SMTP capture, to recipients unique to the run.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::agent_process::{lagwatch_binary, AgentProcess};
use common::fault_proxy::{Fault, FaultProxy};
use common::faults::readyz;
use lagwatch_store::MonitorStore;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long Kafka is blackholed (`LAGWATCH_OUTAGE_SECS`, default 60).
fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("LAGWATCH_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

/// A private single-node KRaft broker; killed on drop.
struct PrivateBroker {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PrivateBroker {
    /// Starts a broker whose EXTERNAL listener (on `external`) is
    /// advertised as `advertised` (the proxy's port).
    fn start(external: u16, advertised: u16) -> anyhow::Result<Self> {
        let home = std::env::var("LAGWATCH_TEST_KAFKA_HOME")
            .or_else(|_| std::env::var("LAGWATCH_KAFKA_HOME"))
            .context("LAGWATCH_TEST_KAFKA_HOME: source /tmp/lagwatch-infra/env.sh")?;
        let dir = tempfile::tempdir()?;
        let [port, controller] = common::free_ports::<2>();
        let data = dir.path().join("data");
        let properties = format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},EXTERNAL://127.0.0.1:{external},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port},EXTERNAL://127.0.0.1:{advertised}\n\
             inter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT\n\
             log.dirs={}\noffsets.topic.replication.factor=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\nauto.create.topics.enable=false\n\
             num.network.threads=1\nnum.io.threads=2\n",
            data.display()
        );
        let config = dir.path().join("server.properties");
        std::fs::write(&config, properties)?;
        let log4j = |name: &str| {
            format!(
                "-Dlog4j2.configurationFile={}",
                common::repo_root().join("tests/infra").join(name).display()
            )
        };
        let format = Command::new("java")
            .args(["-Xmx256m", "-XX:TieredStopAtLevel=1"])
            .arg(log4j("kafka-tools-log4j2.xml"))
            .arg("-cp")
            .arg(format!("{home}/libs/*"))
            .args(["kafka.tools.StorageTool", "format", "--cluster-id"])
            .arg("lagwatchOutageTestQQ1g")
            .arg("--config")
            .arg(&config)
            .output()?;
        anyhow::ensure!(
            format.status.success(),
            "storage format: {}",
            String::from_utf8_lossy(&format.stderr)
        );
        let log = std::fs::File::create(dir.path().join("broker.log"))?;
        let child = Command::new("java")
            .args(["-Xmx384m", "-XX:+UseG1GC"])
            .arg(log4j("kafka-log4j2.xml"))
            .arg(format!("-Dkafka.logs.dir={}", dir.path().display()))
            .arg("-cp")
            .arg(format!("{home}/libs/*"))
            .arg("kafka.Kafka")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let broker = PrivateBroker {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("private broker did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(broker)
    }

    /// The test's own clients (PLAINTEXT, not through the proxy).
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", format!("127.0.0.1:{}", self.port));
        config
    }

    async fn create_topic(&self, topic: &str) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client().create()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin
            .create_topics(
                &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
                &options,
            )
            .await?
        {
            result.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
        }
        Ok(())
    }

    async fn produce(&self, topic: &str, count: usize) -> anyhow::Result<()> {
        let producer: FutureProducer = self.client().set("linger.ms", "5").create()?;
        for i in 0..count {
            producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(0)
                        .payload(&format!("message {i}")),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
        }
        Ok(())
    }

    /// Commits `offset` for `group` on partition 0 (retrying while the
    /// fresh broker's coordinator loads).
    fn commit(&self, group: &str, topic: &str, offset: i64) -> anyhow::Result<()> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Offset(offset))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match consumer.commit(&list, CommitMode::Sync) {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() < deadline => {
                    eprintln!("commit retried: {error}");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent config: everything Kafka through `bootstrap` (the proxy).
fn write_config(
    dir: &Path,
    id: &str,
    bootstrap: &str,
    http_port: u16,
    operators: &str,
) -> anyhow::Result<PathBuf> {
    let (smtp_host, smtp_port) = common::smtp();
    let text = format!(
        r#"
[store]
url = "sqlite://{store}"

[clusters.local]
bootstrap_servers = "{bootstrap}"

[metrics_topic]
cluster = "local"
topic = "{id}_samples"
partitions = 3

[collector]
interval = "1s"
monitor_refresh = "1s"

[evaluator]
consumer_group = "{id}-evaluator"
state_topic = "{id}-alert-state"
events_topic = "{id}-alert-events"
broker_alert_emails = ["{operators}"]
notification_retry_max = "2s"

[clickhouse]
url = "{clickhouse}"
database = "lagwatch_{id}"
consumer_group = "{id}-history"
dead_letter_topic = "{id}-dead-letters"
flush_interval = "200ms"

[email]
host = "{smtp_host}"
port = {smtp_port}
from = "lagwatch <lagwatch@localhost>"
timeout = "5s"

[self_alerts]
after = "5s"
check_every = "1s"

[http]
listen = "127.0.0.1:{http_port}"
"#,
        store = dir.join("monitors.db").display(),
        clickhouse = common::clickhouse_url(),
    );
    let path = dir.join("lagwatch.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// First mail subject to `recipient` starting with `prefix` and
/// containing `needle`, waited for up to `timeout`.
async fn mail(
    recipient: &str,
    prefix: &str,
    needle: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    common::eventually(&format!("mail {prefix} {needle}"), timeout, || {
        common::subjects_for(recipient)
            .into_iter()
            .find(|s| s.starts_with(prefix) && s.contains(needle))
    })
    .await
    .inspect_err(|_| {
        eprintln!(
            "mails to {recipient}: {:#?}",
            common::subjects_for(recipient)
        )
    })
}

/// Waits until `/readyz` is 200 with every stage registered (the
/// collector has sampled, the alert-state tail runs): an agent still
/// starting answers 200 with no checks at all.
async fn ready(port: u16, timeout: Duration) -> anyhow::Result<()> {
    common::eventually_async("/readyz 200 with every stage", timeout, || async {
        let (status, report) = readyz(port).await.ok()?;
        let checks = &report["checks"];
        (status == 200
            && checks["collector/local"]["ok"] == true
            && checks["evaluator/alert-state"]["ok"] == true
            && checks["evaluator"]["ok"] == true)
            .then_some(())
    })
    .await
    .inspect_err(|_| eprintln!("/readyz never 200 with every stage"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_blackholed_60s_fails_readyz_pages_operators_and_recovers_without_restart(
) -> anyhow::Result<()> {
    let binary = lagwatch_binary()?;
    let [proxy_port, external] = common::free_ports::<2>();
    let broker = PrivateBroker::start(external, proxy_port)?;
    let proxy = FaultProxy::start_on(
        SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        SocketAddr::from(([127, 0, 0, 1], external)),
    )
    .await?;
    let id = common::unique("outage");
    let dir = tempfile::tempdir()?;
    let recipient = format!("oncall-{id}@example.com");
    let operators = format!("operators-{id}@example.com");
    let topic = format!("{id}_orders");
    let group = format!("{id}-billing");
    broker.create_topic(&topic).await?;
    broker.produce(&topic, 1_000).await?;
    broker.commit(&group, &topic, 1_000)?;
    let http_port = common::free_port();
    let config = write_config(
        dir.path(),
        &id,
        &format!("127.0.0.1:{proxy_port}"),
        http_port,
        &operators,
    )?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    store
        .add(&common::lag_monitor(&group, &topic, &recipient))
        .await?;
    store.close().await;

    let log = dir.path().join("lagwatch.log");
    let mut agent = AgentProcess::start(&binary, &config, "all", &log)?;
    let started = Instant::now();
    let outcome = async {
        ready(http_port, Duration::from_secs(120)).await?;
        eprintln!("FIGURE: ready {:.1} s after start", started.elapsed().as_secs_f64());
        anyhow::ensure!(proxy.accepted() > 0, "lagwatch did not go through the proxy");

        let outage = outage();
        let cut = Instant::now();
        proxy.set(Fault::Blackhole);
        let check = common::eventually_async("/readyz naming collector/local", outage, || async {
            let (status, report) = readyz(http_port).await.ok()?;
            let check = report["checks"].get("collector/local")?.clone();
            (status == 503 && check["ok"] == false).then_some(check)
        })
        .await?;
        let readyz_failed = cut.elapsed();
        eprintln!(
            "FIGURE: /readyz 503 naming collector/local {:.1} s into the outage: {}",
            readyz_failed.as_secs_f64(),
            check["problem"]
        );
        let page = mail(&operators, "[FIRING] lagwatch collector/local", "", outage).await?;
        let self_alert = cut.elapsed();
        eprintln!(
            "FIGURE: self-alert mailed {:.1} s into the outage: {page}",
            self_alert.as_secs_f64()
        );
        agent.still_running()?;
        if let Some(rest) = outage.checked_sub(cut.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        proxy.set(Fault::Pass);
        let healed = Instant::now();
        eprintln!("outage lasted {:.1} s", cut.elapsed().as_secs_f64());

        ready(http_port, Duration::from_secs(120)).await?;
        let recovered = healed.elapsed();
        eprintln!("FIGURE: /readyz 200 again {:.1} s after the proxy passed", recovered.as_secs_f64());
        let resolve = mail(&operators, "[RESOLVED] lagwatch collector/local", "", Duration::from_secs(60)).await?;
        eprintln!("FIGURE: self-alert resolved {:.1} s after the proxy passed: {resolve}", healed.elapsed().as_secs_f64());

        let incident = Instant::now();
        broker.commit(&group, &topic, 100)?;
        let page = mail(
            &recipient,
            "[FIRING]",
            &format!(" lag of group {group} on local "),
            Duration::from_secs(60),
        )
        .await?;
        eprintln!(
            "FIGURE: a new lag incident paged {:.1} s after the commit ({:.1} s after recovery): {page}",
            incident.elapsed().as_secs_f64(),
            healed.elapsed().as_secs_f64()
        );
        agent.still_running()?;
        anyhow::ensure!(
            readyz_failed <= outage && self_alert <= outage,
            "the outage was not reported within it"
        );
        Ok(())
    }
    .await;
    if outcome.is_err() {
        eprintln!("lagwatch log (last lines):\n{}", agent.log_tail(60));
    }
    drop(agent);
    outcome
}
