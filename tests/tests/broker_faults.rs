//! The collector on real brokers that fail: stopped (SIGTERM) and killed
//! (SIGKILL) and restarted, group coordinator and partition leader moved
//! to another broker, the sampled topic deleted, connections reset in the
//! middle of a response or hung (through `common::fault_proxy`).
//!
//! Each test is a loop (`LAGWATCH_FAULT_RUNS`, default 2) over one fault
//! while a sampling thread runs cycles every 300 ms on one shared source,
//! as the poller does. In every run: the sampling never panics (the
//! process never aborts: librdkafka's admin API did, 3 of 3 times, on a
//! broker restart), error samples name the problem, the first complete
//! sample after recovery equals the lag kafka-consumer-groups prints, and
//! the collector's log stays bounded (lines per fault, not per cycle).
//!
//! The brokers are private JVMs on free ports, started here from the
//! cached Kafka jars (as tests/infra/private-kafka.sh does), so they can
//! be stopped, killed and given a second broker or a proxied listener.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use common::fault_proxy::{Fault, FaultProxy};
use lagwatch_collector::sampler::sample_cluster;
use lagwatch_collector::KafkaOffsetSource;
use lagwatch_kafka::ClusterConfig;
use lagwatch_model::GroupSample;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Private brokers are JVMs: on a 2-core machine, one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PARTITIONS: i32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CYCLE_EVERY: Duration = Duration::from_millis(300);
/// Log lines (INFO and above) one fault may cost at most, whatever the
/// number of cycles it lasts (about a hundred at 300 ms).
const MAX_LOG_LINES_PER_FAULT: u64 = 40;

fn runs() -> usize {
    std::env::var("LAGWATCH_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// How long a stopped broker stays down (`LAGWATCH_FAULT_DOWN_SECS`).
fn down_for() -> Duration {
    Duration::from_secs(
        std::env::var("LAGWATCH_FAULT_DOWN_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
    )
}

// ---------------------------------------------------------------------------
// Log line counting: the collector's INFO+ lines go to a counter.

static LOG_LINES: AtomicU64 = AtomicU64::new(0);

struct CountingWriter;

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        LOG_LINES.fetch_add(lines, Ordering::Relaxed);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn count_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(|| CountingWriter)
            .with_ansi(false)
            .try_init();
    });
}

fn log_lines() -> u64 {
    LOG_LINES.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Private brokers.

/// `LAGWATCH_KAFKA_HOME` and the shared broker test properties, from
/// tests/infra/common.sh (the one place they are defined).
fn kafka_env() -> anyhow::Result<(String, String)> {
    let common = common::repo_root().join("tests/infra/common.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && printf '%s\\0%s' \"$LAGWATCH_KAFKA_HOME\" \"$LAGWATCH_KAFKA_TEST_PROPERTIES\"",
            common.display()
        ))
        .output()?;
    let text = String::from_utf8(out.stdout)?;
    let (home, props) = text.split_once('\0').context("common.sh output")?;
    anyhow::ensure!(
        Path::new(home).join("libs").is_dir(),
        "no Kafka jars in {home}: run tests/infra/install.sh"
    );
    Ok((home.to_string(), props.to_string()))
}

/// One broker process of a private cluster.
struct Node {
    id: u32,
    dir: PathBuf,
    /// PLAINTEXT listener, advertised as itself (tools, test data).
    port: u16,
    /// EXTERNAL listener (port, advertised port): what the collector uses
    /// when a proxy sits in front of the broker.
    external: Option<(u16, u16)>,
    child: Option<Child>,
}

/// A KRaft cluster: node 1 is broker and controller, the others brokers.
struct Cluster {
    nodes: Vec<Node>,
    controller: u16,
    home: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `brokers` brokers; `external[i]` gives node i+1 an EXTERNAL
    /// listener advertised on another port (a proxy's).
    fn start(brokers: usize, external: &[Option<u16>], extra: &str) -> anyhow::Result<Cluster> {
        let (home, test_props) = kafka_env()?;
        let dir = tempfile::tempdir()?;
        let controller = common::free_port();
        let cluster_id = "lagwatchFaultsTestQQ1g"; // 22 chars, base64url
        let mut nodes = Vec::new();
        for n in 0..brokers {
            let id = u32::try_from(n + 1)?;
            let node_dir = dir.path().join(format!("node{id}"));
            std::fs::create_dir_all(node_dir.join("data"))?;
            std::fs::create_dir_all(node_dir.join("logs"))?;
            let port = common::free_port();
            let external = external
                .get(n)
                .copied()
                .flatten()
                .map(|advertised| (common::free_port(), advertised));
            let mut listeners = format!("PLAINTEXT://127.0.0.1:{port}");
            let mut advertised = format!("PLAINTEXT://127.0.0.1:{port}");
            if let Some((listen, adv)) = external {
                listeners.push_str(&format!(",EXTERNAL://127.0.0.1:{listen}"));
                advertised.push_str(&format!(",EXTERNAL://127.0.0.1:{adv}"));
            }
            let roles = if id == 1 {
                listeners.push_str(&format!(",CONTROLLER://127.0.0.1:{controller}"));
                "broker,controller"
            } else {
                "broker"
            };
            let properties = format!(
                "process.roles={roles}\nnode.id={id}\ncontroller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners={listeners}\nadvertised.listeners={advertised}\n\
                 inter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT\n\
                 log.dirs={}\n{test_props}\n{extra}\nnum.network.threads=1\nnum.io.threads=2\n",
                node_dir.join("data").display()
            );
            std::fs::write(node_dir.join("server.properties"), properties)?;
            let format = Command::new("java")
                .args(["-Xmx256m", "-XX:TieredStopAtLevel=1"])
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    common::repo_root()
                        .join("tests/infra/kafka-tools-log4j2.xml")
                        .display()
                ))
                .arg("-cp")
                .arg(format!("{home}/libs/*"))
                .args([
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    cluster_id,
                ])
                .arg("--config")
                .arg(node_dir.join("server.properties"))
                .output()?;
            anyhow::ensure!(
                format.status.success(),
                "storage format of node {id}: {}",
                String::from_utf8_lossy(&format.stderr)
            );
            nodes.push(Node {
                id,
                dir: node_dir,
                port,
                external,
                child: None,
            });
        }
        let mut cluster = Cluster {
            nodes,
            controller,
            home,
            _dir: dir,
        };
        for n in 0..brokers {
            cluster.start_node(n)?;
        }
        Ok(cluster)
    }

    fn start_node(&mut self, index: usize) -> anyhow::Result<()> {
        let home = self.home.clone();
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("logs/stdout.log"))?;
        let child = Command::new("java")
            .args(["-Xmx384m", "-XX:+UseG1GC"])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                common::repo_root()
                    .join("tests/infra/kafka-log4j2.xml")
                    .display()
            ))
            .arg(format!(
                "-Dkafka.logs.dir={}",
                node.dir.join("logs").display()
            ))
            .arg("-cp")
            .arg(format!("{home}/libs/*"))
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            if Instant::now() > deadline {
                bail!("broker {} did not listen on {}", node.id, node.port);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }

    /// SIGTERM (orderly shutdown) and wait for the exit.
    fn stop_node(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[index].child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    child.kill()?;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// SIGKILL, like a crash.
    fn kill_node(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Bootstrap for tools and test data (PLAINTEXT listeners).
    fn direct(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn rd_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.direct());
        config
    }

    /// Runs a Kafka tool class against the cluster; its stdout.
    fn tool(&self, class: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(common::repo_root().join("tests/infra/kafka-run-class.sh"))
            .arg(class)
            .args(["--bootstrap-server", &self.direct()])
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{class} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = self.controller;
    }
}

// ---------------------------------------------------------------------------
// Test data and ground truth.

async fn create_topic(cluster: &Cluster, topic: &str, replication: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = cluster.rd_config().create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let result = admin
            .create_topics(
                [&NewTopic::new(
                    topic,
                    PARTITIONS,
                    TopicReplication::Fixed(replication),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await?;
        match result.into_iter().next() {
            Some(Ok(_)) => return Ok(()),
            // A topic being deleted cannot be created again yet.
            Some(Err((_, e))) if Instant::now() < deadline => {
                eprintln!("create {topic}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some(Err((t, e))) => bail!("create topic {t}: {e}"),
            None => bail!("create topic {topic}: no answer"),
        }
    }
}

async fn delete_topic(cluster: &Cluster, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = cluster.rd_config().create()?;
    for result in admin.delete_topics(&[topic], &AdminOptions::new()).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("delete {t}: {e}"))?;
    }
    Ok(())
}

fn produce(cluster: &Cluster, topic: &str, per_partition: usize) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = cluster.rd_config().create()?;
    for partition in 0..PARTITIONS {
        for i in 0..per_partition {
            let payload = format!("record {i}");
            let mut record = BaseRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Commits `offset` on every partition (assign-style: the group stays
/// Empty), retrying while a coordinator loads.
fn commit(cluster: &Cluster, group: &str, topic: &str, offset: i64) -> anyhow::Result<()> {
    let consumer: BaseConsumer = cluster
        .rd_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                eprintln!("commit: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// LAG per partition as kafka-consumer-groups prints it.
fn tool_lag(cluster: &Cluster, group: &str, topic: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    let text = cluster.tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--describe", "--group", group],
    )?;
    let mut header: Option<Vec<&str>> = None;
    let mut lags = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.contains(&"LAG") && fields.contains(&"PARTITION") {
            header = Some(fields);
            continue;
        }
        let Some(columns) = &header else { continue };
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| fields.get(i))
        };
        if column("TOPIC") != Some(&topic) {
            continue;
        }
        let partition: i32 = column("PARTITION").context("PARTITION")?.parse()?;
        let lag: i64 = column("LAG").context("LAG")?.parse()?;
        lags.push((partition, lag));
    }
    lags.sort();
    Ok(lags)
}

fn lags(sample: &GroupSample) -> Option<Vec<(i32, i64)>> {
    let mut out = Vec::new();
    for p in &sample.partitions {
        out.push((p.partition, p.lag?));
    }
    out.sort();
    Some(out)
}

fn complete(sample: &GroupSample) -> bool {
    sample.error.is_none()
        && sample.partitions.len() == PARTITIONS as usize
        && lags(sample).is_some()
}

// ---------------------------------------------------------------------------
// The sampling process: cycles every 300 ms on one shared source.

struct Sampler {
    samples: Arc<Mutex<Vec<(Instant, GroupSample)>>>,
    panics: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(source: Arc<KafkaOffsetSource>, group: &str, topic: &str) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let panics = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let target = common::topic_target(group, topic);
        let thread = {
            let (samples, panics, stop) = (samples.clone(), panics.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let cycle = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        sample_cluster(source.as_ref(), "faults", std::slice::from_ref(&target), 0)
                    }));
                    match cycle {
                        Ok(mut s) if !s.is_empty() => {
                            if let Ok(mut all) = samples.lock() {
                                all.push((started, s.remove(0)));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            panics.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(CYCLE_EVERY.saturating_sub(started.elapsed()));
                }
            })
        };
        Sampler {
            samples,
            panics,
            stop,
            thread: Some(thread),
        }
    }

    /// The first sample of a cycle started after `since` that `accept`s.
    async fn first_after(
        &self,
        since: Instant,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&GroupSample) -> bool,
    ) -> anyhow::Result<GroupSample> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.samples.lock().ok().and_then(|all| {
                all.iter()
                    .find(|(at, s)| *at >= since && accept(s))
                    .map(|(_, s)| s.clone())
            });
            if let Some(found) = found {
                return Ok(found);
            }
            anyhow::ensure!(
                self.thread.as_ref().is_some_and(|t| !t.is_finished()),
                "the sampling thread ended"
            );
            if Instant::now() > deadline {
                let last = self
                    .samples
                    .lock()
                    .ok()
                    .and_then(|all| all.last().map(|(_, s)| s.clone()));
                bail!("timed out after {timeout:?} waiting for {what}; last sample: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn cycles(&self) -> usize {
        self.samples.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn errors_since(&self, since: Instant) -> Vec<String> {
        self.samples
            .lock()
            .map(|all| {
                all.iter()
                    .filter(|(at, _)| *at >= since)
                    .filter_map(|(_, s)| s.error.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("sampling thread panicked"))?;
        }
        let panics = self.panics.load(Ordering::Relaxed);
        anyhow::ensure!(panics == 0, "{panics} sampling cycle(s) panicked");
        Ok(())
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn source_for(bootstrap: &str) -> anyhow::Result<Arc<KafkaOffsetSource>> {
    let cluster = ClusterConfig {
        bootstrap_servers: bootstrap.to_string(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    Ok(Arc::new(KafkaOffsetSource::new(
        &cluster,
        Default::default(),
        REQUEST_TIMEOUT,
    )?))
}

/// One run's figures, printed as a table row at the end of each test.
struct Tally {
    name: &'static str,
    runs: usize,
    passes: usize,
    started: Instant,
}

impl Tally {
    fn new(name: &'static str) -> Tally {
        count_logs();
        Tally {
            name,
            runs: 0,
            passes: 0,
            started: Instant::now(),
        }
    }

    fn record(&mut self, run: anyhow::Result<()>) -> anyhow::Result<()> {
        self.runs += 1;
        match run {
            Ok(()) => {
                self.passes += 1;
                Ok(())
            }
            Err(e) => {
                self.print();
                Err(e)
            }
        }
    }

    fn print(&self) {
        eprintln!(
            "FAULT-TABLE | {} | runs {} | passes {} | {:.0} s",
            self.name,
            self.runs,
            self.passes,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// After a fault is healed: the first complete sample equals the tool's
/// lag, and the fault cost a bounded number of log lines.
async fn check_recovery(
    cluster: &Cluster,
    sampler: &Sampler,
    healed: Instant,
    group: &str,
    topic: &str,
    logs_before: u64,
) -> anyhow::Result<()> {
    let recovered = sampler
        .first_after(
            healed,
            "a complete sample after recovery",
            Duration::from_secs(120),
            complete,
        )
        .await?;
    let expected = tool_lag(cluster, group, topic)?;
    let got = lags(&recovered).unwrap_or_default();
    anyhow::ensure!(
        got == expected,
        "first complete sample after recovery {got:?} != kafka-consumer-groups {expected:?}"
    );
    let lines = log_lines() - logs_before;
    eprintln!(
        "  recovered: lag {got:?} = kafka-consumer-groups; {lines} log line(s) for this fault, {} cycles so far",
        sampler.cycles()
    );
    anyhow::ensure!(
        lines <= MAX_LOG_LINES_PER_FAULT,
        "{lines} log lines for one fault"
    );
    Ok(())
}

/// Whether an error text names a broker outage.
fn names_outage(error: &str) -> bool {
    [
        "no kafka broker reachable",
        "cannot connect to broker",
        "Connection refused",
        "request to broker",
        "timed out",
    ]
    .iter()
    .any(|needle| error.contains(needle))
}

// ---------------------------------------------------------------------------
// Broker stopped or killed and restarted.

async fn restart_loop(name: &'static str, kill: bool) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut tally = Tally::new(name);
    let mut cluster = Cluster::start(1, &[], "")?;
    let (topic, group) = ("faults-orders", "faults-group");
    create_topic(&cluster, topic, 1).await?;
    produce(&cluster, topic, 50)?;
    commit(&cluster, group, topic, 10)?;
    let source = source_for(&cluster.direct())?;
    let sampler = Sampler::start(source, group, topic);
    check_recovery(
        &cluster,
        &sampler,
        Instant::now(),
        group,
        topic,
        log_lines(),
    )
    .await?;
    for run in 0..runs() {
        let result = async {
            // New lag each run: the sample after recovery must be fresh.
            produce(&cluster, topic, 5)?;
            commit(&cluster, group, topic, 10 + i64::try_from(run)?)?;
            let logs_before = log_lines();
            let down = Instant::now();
            if kill {
                cluster.kill_node(0)?;
            } else {
                cluster.stop_node(0)?;
            }
            let failed = sampler
                .first_after(down, "an error sample", Duration::from_secs(30), |s| {
                    s.error.is_some()
                })
                .await?;
            let error = failed.error.clone().unwrap_or_default();
            anyhow::ensure!(
                names_outage(&error),
                "error sample does not say why: {error}"
            );
            anyhow::ensure!(
                failed.partitions.iter().all(|p| p.lag.is_none()),
                "made-up lag while down: {failed:?}"
            );
            tokio::time::sleep(down_for()).await;
            cluster.start_node(0)?;
            let healed = Instant::now();
            eprintln!(
                "{name} run {run}: down {:.1}s; error sample: {error}",
                down.elapsed().as_secs_f64()
            );
            check_recovery(&cluster, &sampler, healed, group, topic, logs_before).await
        }
        .await;
        tally.record(result)?;
    }
    sampler.finish()?;
    tally.print();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_restarted_while_sampling() -> anyhow::Result<()> {
    restart_loop("broker stopped (SIGTERM) and restarted", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_while_sampling() -> anyhow::Result<()> {
    restart_loop("broker killed (SIGKILL) and restarted", true).await
}

// ---------------------------------------------------------------------------
// Coordinator and partition leader moved between two brokers.

/// Moves the leadership of `topic`/`partition` to `leader` (replicas on
/// both brokers, `leader` first, then a preferred-leader election).
fn move_leader(cluster: &Cluster, topic: &str, partition: i32, leader: u32) -> anyhow::Result<()> {
    let other = if leader == 1 { 2 } else { 1 };
    let plan = format!(
        r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":{partition},"replicas":[{leader},{other}]}}]}}"#
    );
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), plan)?;
    let path = file.path().to_string_lossy().to_string();
    cluster.tool(
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        &["--reassignment-json-file", &path, "--execute"],
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let verify = cluster.tool(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            &["--reassignment-json-file", &path, "--verify"],
        )?;
        if verify.contains("is completed") || verify.contains("complete.") {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "reassignment not done: {verify}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let partition_text = partition.to_string();
    cluster.tool(
        "org.apache.kafka.tools.LeaderElectionCommand",
        &[
            "--election-type",
            "preferred",
            "--topic",
            topic,
            "--partition",
            &partition_text,
        ],
    )?;
    Ok(())
}

/// The leader of `topic`/`partition` as kafka-topics describes it.
fn leader_of(cluster: &Cluster, topic: &str, partition: i32) -> anyhow::Result<u32> {
    let text = cluster.tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--describe", "--topic", topic],
    )?;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let value = |key: &str| {
            fields
                .iter()
                .position(|f| *f == key)
                .and_then(|i| fields.get(i + 1))
        };
        if value("Partition:") == Some(&partition.to_string().as_str()) {
            if let Some(leader) = value("Leader:") {
                return Ok(leader.parse()?);
            }
        }
    }
    bail!("no leader for {topic}/{partition} in: {text}")
}

async fn leader_move_loop(name: &'static str, coordinator: bool) -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut tally = Tally::new(name);
    let cluster = Cluster::start(
        2,
        &[],
        "offsets.topic.replication.factor=2\noffsets.topic.num.partitions=6\ndefault.replication.factor=2",
    )?;
    let (topic, group) = ("faults-moved", "faults-moved-group");
    create_topic(&cluster, topic, 2).await?;
    produce(&cluster, topic, 50)?;
    commit(&cluster, group, topic, 10)?;
    let source = source_for(&cluster.direct())?;
    let sampler = Sampler::start(source, group, topic);
    check_recovery(
        &cluster,
        &sampler,
        Instant::now(),
        group,
        topic,
        log_lines(),
    )
    .await?;
    let (moved_topic, moved_partition) = if coordinator {
        (
            "__consumer_offsets".to_string(),
            lagwatch_collector::kafka::offsets_topic::partition_for(group, 6),
        )
    } else {
        (topic.to_string(), 0)
    };
    for run in 0..runs() {
        let result = async {
            produce(&cluster, topic, 5)?;
            commit(&cluster, group, topic, 10 + i64::try_from(run)?)?;
            let logs_before = log_lines();
            let before = leader_of(&cluster, &moved_topic, moved_partition)?;
            let target = if before == 1 { 2 } else { 1 };
            let moving = Instant::now();
            move_leader(&cluster, &moved_topic, moved_partition, target)?;
            let after = leader_of(&cluster, &moved_topic, moved_partition)?;
            anyhow::ensure!(after == target, "leader still {after}, wanted {target}");
            let healed = Instant::now();
            let errors = sampler.errors_since(moving);
            eprintln!(
                "{name} run {run}: {moved_topic}/{moved_partition} leader {before} -> {after} in {:.1}s; {} error sample(s){}",
                moving.elapsed().as_secs_f64(),
                errors.len(),
                errors.first().map(|e| format!(", first: {e}")).unwrap_or_default()
            );
            // A move may be invisible or cost a cycle; an error, if any, says why.
            for error in &errors {
                anyhow::ensure!(
                    error.contains("NOT_COORDINATOR")
                        || error.contains("NOT_LEADER")
                        || error.contains("LEADER")
                        || error.contains("COORDINATOR")
                        || names_outage(error),
                    "error sample does not say why: {error}"
                );
            }
            check_recovery(&cluster, &sampler, healed, group, topic, logs_before).await
        }
        .await;
        tally.record(result)?;
    }
    sampler.finish()?;
    tally.print();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_coordinator_moved_to_another_broker() -> anyhow::Result<()> {
    leader_move_loop("coordinator moved", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leader_moved_to_another_broker() -> anyhow::Result<()> {
    leader_move_loop("partition leader change", false).await
}

// ---------------------------------------------------------------------------
// The sampled topic deleted mid-cycle, then created again.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_deleted_while_sampling() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut tally = Tally::new("topic deleted mid-cycle");
    let cluster = Cluster::start(1, &[], "delete.topic.enable=true")?;
    let (topic, group) = ("faults-deleted", "faults-deleted-group");
    create_topic(&cluster, topic, 1).await?;
    produce(&cluster, topic, 50)?;
    commit(&cluster, group, topic, 10)?;
    let source = source_for(&cluster.direct())?;
    let sampler = Sampler::start(source, group, topic);
    check_recovery(
        &cluster,
        &sampler,
        Instant::now(),
        group,
        topic,
        log_lines(),
    )
    .await?;
    for run in 0..runs() {
        let result = async {
            let logs_before = log_lines();
            let deleted = Instant::now();
            delete_topic(&cluster, topic).await?;
            let failed = sampler
                .first_after(deleted, "an error sample", Duration::from_secs(30), |s| {
                    s.error.is_some()
                })
                .await?;
            let error = failed.error.clone().unwrap_or_default();
            anyhow::ensure!(
                error.contains(topic)
                    || error.contains("UNKNOWN_TOPIC")
                    || error.contains("does not exist"),
                "error sample does not name the topic: {error}"
            );
            eprintln!("topic deleted run {run}: error sample: {error}");
            create_topic(&cluster, topic, 1).await?;
            produce(&cluster, topic, 20 + 5 * run)?;
            commit(&cluster, group, topic, 3)?;
            let healed = Instant::now();
            check_recovery(&cluster, &sampler, healed, group, topic, logs_before).await
        }
        .await;
        tally.record(result)?;
    }
    sampler.finish()?;
    tally.print();
    Ok(())
}

// ---------------------------------------------------------------------------
// Connections reset mid-response and hung, through the fault proxy.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_mid_response_and_hung() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut tally = Tally::new("connection reset mid-response / hung (proxy)");
    let proxy_port = common::free_port();
    let cluster = Cluster::start(1, &[Some(proxy_port)], "")?;
    let (listen, _) = cluster.nodes[0].external.context("external listener")?;
    let proxy = FaultProxy::start_on(
        SocketAddr::from(([127, 0, 0, 1], proxy_port)),
        SocketAddr::from(([127, 0, 0, 1], listen)),
    )
    .await?;
    let (topic, group) = ("faults-proxied", "faults-proxied-group");
    create_topic(&cluster, topic, 1).await?;
    produce(&cluster, topic, 50)?;
    commit(&cluster, group, topic, 10)?;
    let source = source_for(&proxy.addr().to_string())?;
    let sampler = Sampler::start(source, group, topic);
    check_recovery(
        &cluster,
        &sampler,
        Instant::now(),
        group,
        topic,
        log_lines(),
    )
    .await?;
    anyhow::ensure!(
        proxy.accepted() > 0,
        "the collector did not go through the proxy"
    );
    for run in 0..runs() {
        let result = async {
            produce(&cluster, topic, 5)?;
            commit(&cluster, group, topic, 10 + i64::try_from(run)?)?;
            for fault in [Fault::ResetMidResponse { after_bytes: 7 }, Fault::Blackhole] {
                let logs_before = log_lines();
                let resets_before = proxy.resets();
                let start = Instant::now();
                proxy.set(fault);
                let failed = sampler
                    .first_after(start, "an error sample", Duration::from_secs(30), |s| {
                        s.error.is_some()
                    })
                    .await?;
                let error = failed.error.clone().unwrap_or_default();
                anyhow::ensure!(
                    names_outage(&error) || error.contains("failed"),
                    "error sample does not say why: {error}"
                );
                anyhow::ensure!(
                    failed.partitions.iter().all(|p| p.lag.is_none())
                        || failed.partitions.is_empty(),
                    "made-up lag: {failed:?}"
                );
                proxy.set(Fault::Pass);
                let healed = Instant::now();
                eprintln!(
                    "proxy run {run} {fault:?}: {} reset(s); error sample: {error}",
                    proxy.resets() - resets_before
                );
                check_recovery(&cluster, &sampler, healed, group, topic, logs_before).await?;
            }
            anyhow::Ok(())
        }
        .await;
        tally.record(result)?;
    }
    sampler.finish()?;
    tally.print();
    Ok(())
}
