//! Collector cycle cost at scale, side by side with Kafka's own
//! kafka-consumer-groups tool, on the local broker.
//!
//! Builds (once, reused on later runs) a synthetic cluster: `BENCH_TOPICS`
//! topics of `BENCH_PARTITIONS` partitions, and `BENCH_GROUPS` consumer
//! groups, each committing offsets on every partition of one topic. Then
//! measures one lagwatch sampling cycle of all groups (the same code as the
//! collector: one admin client, batched calls) and one
//! `kafka-consumer-groups --describe --all-groups` run.
//!
//! Profiles: default = 200 groups x 2,000 partitions (CI-sized);
//! `BENCH_GROUPS=2000 BENCH_TOPICS=1000 BENCH_PARTITIONS=20` is the
//! 2,000-group / 20,000-partition profile (slow to set up on one broker).
//! `BENCH_CYCLES` (default 5) cycles are measured; the first is reported
//! separately (it includes connecting).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use lagwatch_bench::{env_number, env_or};
use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::{ClusterConfig, KafkaOffsetSource};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

struct Shape {
    groups: u64,
    topics: u64,
    partitions: u64,
}

impl Shape {
    fn prefix(&self) -> String {
        format!(
            "bench_{}g_{}t_{}p",
            self.groups, self.topics, self.partitions
        )
    }
    fn topic(&self, t: u64) -> String {
        format!("{}_topic_{t}", self.prefix())
    }
    fn group(&self, g: u64) -> String {
        format!("{}_group_{g}", self.prefix())
    }
}

fn main() -> anyhow::Result<()> {
    let bootstrap = env_or("LAGWATCH_TEST_KAFKA", "127.0.0.1:19092");
    let shape = Shape {
        groups: env_number("BENCH_GROUPS", 200),
        topics: env_number("BENCH_TOPICS", 100),
        partitions: env_number("BENCH_PARTITIONS", 20),
    };
    if std::env::args().any(|a| a == "--measure") {
        return measure(&bootstrap, &shape);
    }
    setup(&bootstrap, &shape)?;

    // Kafka's tool first, so RUSAGE_CHILDREN's peak RSS is its own.
    let tools = env_or("LAGWATCH_TEST_KAFKA_TOOLS", "tests/infra");
    let before = children_usage();
    let started = Instant::now();
    let output = Command::new(format!("{tools}/kafka-consumer-groups.sh"))
        .args([
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--all-groups",
        ])
        .output()?;
    let tool_wall = started.elapsed();
    let after = children_usage();
    let tool_rows = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(&shape.prefix()))
        .count();

    // lagwatch in a fresh process, so its peak RSS is its own.
    let exe = std::env::current_exe()?;
    let output = Command::new(exe).arg("--measure").output()?;
    anyhow::ensure!(
        output.status.success(),
        "measure run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = String::from_utf8_lossy(&output.stdout).to_string();

    println!(
        "synthetic cluster: {} groups, {} topics x {} partitions = {} partitions, {} group-partitions",
        shape.groups,
        shape.topics,
        shape.partitions,
        shape.topics * shape.partitions,
        shape.groups * shape.partitions
    );
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>12} {:>10}",
        "tool", "wall_s", "cpu_s", "peak_rss_MB", "rows"
    );
    print!("{ours}");
    println!(
        "{:<44} {:>10.3} {:>10.3} {:>12.1} {:>10}",
        "kafka-consumer-groups --describe --all-groups",
        tool_wall.as_secs_f64(),
        after.0 - before.0,
        after.1 as f64 / 1024.0,
        tool_rows
    );
    Ok(())
}

/// Runs in a child process: samples every group `BENCH_CYCLES` times.
fn measure(bootstrap: &str, shape: &Shape) -> anyhow::Result<()> {
    let cycles = env_number("BENCH_CYCLES", 5).max(2);
    let cluster = ClusterConfig {
        bootstrap_servers: bootstrap.to_string(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    let source = KafkaOffsetSource::new(&cluster, Duration::from_secs(30))?;
    let targets: Vec<GroupTarget> = (0..shape.groups)
        .map(|g| GroupTarget {
            group: shape.group(g),
            topics: BTreeSet::new(),
            topic_patterns: vec![],
            all_topics: true,
        })
        .collect();
    let mut walls = Vec::new();
    let mut rows = 0;
    let mut errors = 0;
    for _ in 0..cycles {
        let started = Instant::now();
        let samples = sample_cluster(&source, "bench", &targets, 0);
        walls.push(started.elapsed());
        rows = samples.iter().map(|s| s.partitions.len()).sum::<usize>();
        errors = samples.iter().filter(|s| s.error.is_some()).count();
    }
    if std::env::var("BENCH_BREAKDOWN").is_ok() {
        use lagwatch_collector::source::{Isolation, OffsetSource, OffsetSpec};
        let groups: Vec<String> = targets.iter().map(|t| t.group.clone()).collect();
        let started = Instant::now();
        let committed = source.committed_offsets(&groups);
        eprintln!(
            "committed offsets of {} groups: {:?}",
            committed.len(),
            started.elapsed()
        );
        let started = Instant::now();
        let _ = source.describe_groups(&groups);
        eprintln!("describe groups: {:?}", started.elapsed());
        let partitions: Vec<(String, i32)> = (0..shape.topics)
            .flat_map(|t| (0..shape.partitions as i32).map(move |p| (shape.topic(t), p)))
            .collect();
        let started = Instant::now();
        let _ = source.list_offsets(&partitions, OffsetSpec::Latest, Isolation::ReadUncommitted);
        eprintln!(
            "list offsets of {} partitions: {:?}",
            partitions.len(),
            started.elapsed()
        );
        let started = Instant::now();
        let _ = source.topic_partitions();
        eprintln!("metadata: {:?}", started.elapsed());
    }
    let (cpu, peak_kb) = self_usage();
    let first = walls[0];
    let mut steady: Vec<Duration> = walls[1..].to_vec();
    steady.sort();
    let median = steady[steady.len() / 2];
    println!(
        "{:<44} {:>10.3} {:>10} {:>12} {:>10}",
        "lagwatch first cycle (incl. connect)",
        first.as_secs_f64(),
        "",
        "",
        rows
    );
    println!(
        "{:<44} {:>10.3} {:>10.3} {:>12.1} {:>10}",
        format!("lagwatch steady cycle (median of {})", steady.len()),
        median.as_secs_f64(),
        cpu / cycles as f64,
        peak_kb as f64 / 1024.0,
        rows
    );
    if errors > 0 {
        println!("  ({errors} samples carried errors)");
    }
    Ok(())
}

/// Creates topics, data and committed offsets unless they already exist.
fn setup(bootstrap: &str, shape: &Shape) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(30))?;
    let existing: BTreeSet<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let missing: Vec<String> = (0..shape.topics)
        .map(|t| shape.topic(t))
        .filter(|t| !existing.contains(t))
        .collect();
    if missing.is_empty() {
        eprintln!("setup: reusing {}", shape.prefix());
        return Ok(());
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    for chunk in missing.chunks(100) {
        let topics: Vec<NewTopic> = chunk
            .iter()
            .map(|t| NewTopic::new(t, shape.partitions as i32, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
        for result in runtime.block_on(admin.create_topics(&topics, &options))? {
            if let Err((topic, code)) = result {
                anyhow::bail!("create {topic}: {code}");
            }
        }
    }
    // Ten records per partition so end offsets are non-zero.
    let producer: BaseProducer = config.clone().set("linger.ms", "50").create()?;
    for t in 0..shape.topics {
        let topic = shape.topic(t);
        for p in 0..shape.partitions as i32 {
            for i in 0..10 {
                let payload = format!("r{i}");
                let mut record = BaseRecord::<(), _>::to(&topic)
                    .partition(p)
                    .payload(&payload);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((_, back)) => {
                            producer.poll(Duration::from_millis(10));
                            record = back;
                        }
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    // Group g commits offset 3 on every partition of topic g % topics.
    for g in 0..shape.groups {
        let group_consumer: BaseConsumer =
            config.clone().set("group.id", shape.group(g)).create()?;
        let topic = shape.topic(g % shape.topics);
        let mut offsets = TopicPartitionList::new();
        for p in 0..shape.partitions as i32 {
            offsets.add_partition_offset(&topic, p, Offset::Offset(3))?;
        }
        group_consumer.commit(&offsets, CommitMode::Sync)?;
    }
    eprintln!(
        "setup: created {} in {:.1}s",
        shape.prefix(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// (CPU seconds, peak RSS KiB) of this process.
fn self_usage() -> (f64, u64) {
    usage(libc::RUSAGE_SELF)
}

/// (CPU seconds, peak RSS KiB of the largest child) of waited-for children.
fn children_usage() -> (f64, u64) {
    usage(libc::RUSAGE_CHILDREN)
}

fn usage(who: libc::c_int) -> (f64, u64) {
    // SAFETY: getrusage only writes the struct we pass.
    let mut raw: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut raw) } != 0 {
        return (0.0, 0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(raw.ru_utime) + seconds(raw.ru_stime),
        u64::try_from(raw.ru_maxrss).unwrap_or(0),
    )
}
