//! Collector cycle cost at scale, side by side with Kafka's own
//! kafka-consumer-groups tool, on the local broker.
//!
//! Builds (once, reused on later runs) a synthetic cluster: `BENCH_TOPICS`
//! topics of `BENCH_PARTITIONS` partitions, and `BENCH_GROUPS` consumer
//! groups, each committing offsets on every partition of one topic. Then
//! measures one lagwatch sampling cycle of all groups (the same code as the
//! collector: one wire client, batched calls) and one
//! `kafka-consumer-groups --describe --all-groups` run.
//!
//! Profiles: default = 200 groups x 2,000 partitions (CI-sized);
//! `BENCH_GROUPS=2000 BENCH_TOPICS=1000 BENCH_PARTITIONS=20` is the
//! 2,000-group / 20,000-partition profile (slow to set up on one broker).
//! `BENCH_COMMITTED_FROM=offsets_topic` reads committed offsets from
//! `__consumer_offsets` instead of one OffsetFetch per group (the first
//! cycle then includes reading that topic).
//! `BENCH_CYCLES` (default 5) cycles are measured; the first is reported
//! separately (it includes connecting). `BENCH_BREAKDOWN=1` also prints
//! every cycle's wall time and the wall time and CPU of each admin call
//! alone (the describe call there asks about the groups of one rotation
//! slot, about a sixth). `BENCH_BROKER_PIDS` (comma-separated) adds the
//! brokers' CPU per cycle and per call: with the brokers on the same cores,
//! their share decides the wall time. `bench/cluster.sh` starts a
//! two-broker cluster for the 20,000-partition profile (one test broker
//! cannot hold that many partitions under a 20,000 open-files limit).
//!
//! Where their binaries are present, the same run also measures two
//! Prometheus exporters that compute lag when scraped: kafka_exporter
//! (danielqsj) and KMinion (scrape mode `adminApi`). Each is started on a
//! free loopback port against the same broker, restricted to the bench
//! groups and topics, scraped `BENCH_CYCLES` times (the first scrape is
//! reported with the start-up), and killed; CPU seconds and peak RSS come
//! from its `/proc/<pid>/stat` and `VmHWM`, and its rows are the per-partition
//! lag series of the bench groups in the scrape. Binaries are looked up at
//! `BENCH_KAFKA_EXPORTER` / `BENCH_KMINION`, else
//! `$LAGWATCH_CACHE_DIR/gobin/{kafka_exporter,kminion}` (default cache dir
//! `$HOME/.cache/lagwatch`); a missing one is reported and skipped.
//! `BENCH_KAFKA_EXPORTER_KAFKA_VERSION` (default 3.6.0) is the protocol
//! version given to kafka_exporter's sarama client.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use lagwatch_bench::{env_number, env_or};
use lagwatch_collector::sampler::{sample_cluster, GroupTarget};
use lagwatch_collector::{CommittedOffsetsFrom, KafkaOffsetSource};
use lagwatch_kafka::ClusterConfig;
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
    let cycles = env_number("BENCH_CYCLES", 5).max(2);
    for spec in EXPORTERS {
        let Some(binary) = exporter_binary(spec) else {
            println!(
                "  ({}: not measured, no binary at {} or ${}; see bench/README.md)",
                spec.label,
                default_exporter_path(spec).display(),
                spec.env
            );
            continue;
        };
        match measure_exporter(spec, &binary, &bootstrap, &shape, cycles) {
            Ok(rows) => print!("{rows}"),
            Err(error) => println!("  ({}: not measured: {error:#})", spec.label),
        }
    }
    Ok(())
}

/// A Prometheus exporter that computes consumer lag when it is scraped.
struct ExporterSpec {
    label: &'static str,
    /// Environment variable naming the binary.
    env: &'static str,
    /// File name under `$LAGWATCH_CACHE_DIR/gobin` (what `go install` writes).
    binary_name: &'static str,
    /// Per-partition lag series, and the label carrying the group.
    lag_metric: &'static str,
    group_label: &'static str,
}

const EXPORTERS: &[ExporterSpec] = &[
    ExporterSpec {
        label: "kafka_exporter",
        env: "BENCH_KAFKA_EXPORTER",
        binary_name: "kafka_exporter",
        lag_metric: "kafka_consumergroup_lag",
        group_label: "consumergroup",
    },
    ExporterSpec {
        label: "KMinion",
        env: "BENCH_KMINION",
        binary_name: "kminion",
        lag_metric: "kminion_kafka_consumer_group_topic_partition_lag",
        group_label: "group_id",
    },
];

fn default_exporter_path(spec: &ExporterSpec) -> PathBuf {
    let cache = std::env::var("LAGWATCH_CACHE_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/lagwatch", env_or("HOME", "/root")));
    Path::new(&cache).join("gobin").join(spec.binary_name)
}

fn exporter_binary(spec: &ExporterSpec) -> Option<PathBuf> {
    let path = std::env::var(spec.env)
        .map(PathBuf::from)
        .unwrap_or_else(|_| default_exporter_path(spec));
    path.is_file().then_some(path)
}

/// Kills the exporter when measuring ends, also on an error.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts one exporter, scrapes it `cycles` times and returns its table rows.
fn measure_exporter(
    spec: &ExporterSpec,
    binary: &Path,
    bootstrap: &str,
    shape: &Shape,
    cycles: u64,
) -> anyhow::Result<String> {
    let work = std::env::temp_dir().join(format!(
        "lagwatch-bench-{}-{}",
        spec.binary_name,
        std::process::id()
    ));
    std::fs::create_dir_all(&work)?;
    let result = run_exporter(spec, binary, bootstrap, shape, cycles, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_exporter(
    spec: &ExporterSpec,
    binary: &Path,
    bootstrap: &str,
    shape: &Shape,
    cycles: u64,
    work: &Path,
) -> anyhow::Result<String> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log_path = work.join("output.log");
    let log = std::fs::File::create(&log_path)?;
    let prefix = shape.prefix();
    let mut command = Command::new(binary);
    match spec.binary_name {
        "kafka_exporter" => {
            let version = env_or("BENCH_KAFKA_EXPORTER_KAFKA_VERSION", "3.6.0");
            command.args([
                format!("--kafka.server={bootstrap}"),
                format!("--kafka.version={version}"),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--group.filter=^{prefix}_group_"),
                format!("--topic.filter=^{prefix}_topic_"),
            ]);
        }
        _ => {
            // KMinion reads a YAML file and every environment variable as a
            // config key, so it gets a clean environment.
            let config = work.join("kminion.yaml");
            std::fs::write(
                &config,
                format!(
                    "logger:\n  level: warn\n\
                     kafka:\n  brokers: [\"{bootstrap}\"]\n\
                     minion:\n  consumerGroups:\n    enabled: true\n    scrapeMode: adminApi\n\
                     \x20   granularity: partition\n    allowedGroups: [\"/^{prefix}_group_.*/\"]\n\
                     \x20 topics:\n    allowedTopics: [\"/^{prefix}_topic_.*/\"]\n\
                     exporter:\n  host: \"127.0.0.1\"\n  port: {port}\n"
                ),
            )?;
            command
                .env_clear()
                .env("PATH", env_or("PATH", "/usr/bin:/bin"))
                .env("CONFIG_FILEPATH", &config);
        }
    }
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let mut running = Running(child);
    let pid = running.0.id();
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return "(no output)".to_string();
        }
        lines[lines.len().saturating_sub(15)..].join("\n")
    };

    // Listening means the exporter is up; the first scrape then answers.
    let deadline = Duration::from_secs(env_number("BENCH_EXPORTER_START_TIMEOUT", 120));
    loop {
        if let Some(status) = running.0.try_wait()? {
            anyhow::bail!("exited at start ({status}):\n{}", log_tail());
        }
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_ok()
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "no listener on 127.0.0.1:{port} after {deadline:?}:\n{}",
            log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = scrape(port).with_context(|| format!("first scrape; log:\n{}", log_tail()))?;
    let first = started.elapsed();
    let first_rows = count_lag_series(spec, &body, &prefix);

    let cpu_before = proc_cpu_seconds(pid)?;
    let mut walls = Vec::new();
    let mut rows = first_rows;
    for _ in 1..cycles {
        let scrape_started = Instant::now();
        let body = scrape(port).with_context(|| format!("scrape; log:\n{}", log_tail()))?;
        walls.push(scrape_started.elapsed());
        rows = count_lag_series(spec, &body, &prefix);
    }
    let cpu = proc_cpu_seconds(pid)? - cpu_before;
    let peak_kib = proc_peak_rss_kib(pid)?;
    drop(running);

    walls.sort();
    let median = walls[walls.len() / 2];
    let mut out = format!(
        "{:<44} {:>10.3} {:>10} {:>12} {:>10}\n",
        format!("{} start + first scrape", spec.label),
        first.as_secs_f64(),
        "",
        "",
        first_rows.series
    );
    out += &format!(
        "{:<44} {:>10.3} {:>10.3} {:>12.1} {:>10}\n",
        format!("{} steady scrape (median of {})", spec.label, walls.len()),
        median.as_secs_f64(),
        cpu / walls.len() as f64,
        peak_kib as f64 / 1024.0,
        rows.series
    );
    let expected = shape.groups * shape.partitions;
    if rows.series as u64 != expected || rows.off_value > 0 {
        out += &format!(
            "  ({}: {} lag series for bench groups, {} expected; {} with a lag other than {EXPECTED_LAG})\n",
            spec.label, rows.series, expected, rows.off_value
        );
    }
    Ok(out)
}

/// Lag every bench partition carries: ten records, offset 3 committed.
const EXPECTED_LAG: f64 = 7.0;

#[derive(Clone, Copy)]
struct LagSeries {
    series: usize,
    /// Series whose value is not `EXPECTED_LAG`.
    off_value: usize,
}

/// Counts the per-partition lag series of the bench groups in a scrape.
fn count_lag_series(spec: &ExporterSpec, body: &str, prefix: &str) -> LagSeries {
    let start = format!("{}{{", spec.lag_metric);
    let group = format!("{}=\"{prefix}_group_", spec.group_label);
    let mut counted = LagSeries {
        series: 0,
        off_value: 0,
    };
    for line in body.lines() {
        if !line.starts_with(&start) || !line.contains(&group) {
            continue;
        }
        counted.series += 1;
        let value = line
            .rsplit_once('}')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        if value != Some(EXPECTED_LAG) {
            counted.off_value += 1;
        }
    }
    counted
}

/// One `GET /metrics` over HTTP/1.0 (the server closes the connection).
fn scrape(port: u16) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no end of HTTP header")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(
        status == "200",
        "/metrics answered {}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_string())
}

/// User + system CPU seconds of a process, all its threads.
fn proc_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses: the first is
    // field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc stat without command name")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// Peak resident set (VmHWM) of a process, KiB.
fn proc_peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("empty VmHWM")?
        .parse()?)
}

/// Runs in a child process: samples every group `BENCH_CYCLES` times.
fn measure(bootstrap: &str, shape: &Shape) -> anyhow::Result<()> {
    // As the agent does at start.
    lagwatch::allocator::limit_malloc_arenas();
    let cycles = env_number("BENCH_CYCLES", 5).max(2);
    let cluster = ClusterConfig {
        bootstrap_servers: bootstrap.to_string(),
        properties: BTreeMap::new(),
        secret_properties: BTreeMap::new(),
    };
    let committed_from = if env_or("BENCH_COMMITTED_FROM", "admin_api") == "offsets_topic" {
        CommittedOffsetsFrom::OffsetsTopic
    } else {
        CommittedOffsetsFrom::AdminApi
    };
    let source = KafkaOffsetSource::new(&cluster, committed_from, Duration::from_secs(30))?;
    let targets: Vec<GroupTarget> = (0..shape.groups)
        .map(|g| GroupTarget {
            group: shape.group(g),
            topics: BTreeSet::new(),
            topic_patterns: vec![],
            all_topics: true,
            limited_selections: vec![],
            exact_time_lag: false,
            read_committed: false,
        })
        .collect();
    let mut walls = Vec::new();
    let mut rows = 0;
    let mut errors = 0;
    let brokers = broker_pids();
    let mut brokers_cpu_steady = 0.0;
    for cycle in 0..cycles {
        let brokers_before = brokers_cpu(&brokers);
        let started = Instant::now();
        let samples = sample_cluster(&source, "bench", &targets, 0);
        walls.push(started.elapsed());
        rows = samples.iter().map(|s| s.partitions.len()).sum::<usize>();
        errors = samples.iter().filter(|s| s.error.is_some()).count();
        if cycle > 0 {
            brokers_cpu_steady += brokers_cpu(&brokers) - brokers_before;
        }
    }
    // Measured before the breakdown's extra calls.
    let (cpu, peak_kb) = self_usage();
    if committed_from == CommittedOffsetsFrom::OffsetsTopic {
        reader_catch_up(&cluster, &targets)?;
    }
    if std::env::var("BENCH_BREAKDOWN").is_ok() {
        use lagwatch_collector::source::{Isolation, OffsetSource, OffsetSpec};
        // Every cycle, not only the median: a slow outlier shows here.
        let each: Vec<String> = walls
            .iter()
            .map(|w| format!("{:.3}", w.as_secs_f64()))
            .collect();
        eprintln!("cycle wall times (s): {}", each.join(" "));
        let groups: Vec<String> = targets.iter().map(|t| t.group.clone()).collect();
        let partitions: Vec<(String, i32)> = (0..shape.topics)
            .flat_map(|t| (0..shape.partitions as i32).map(move |p| (shape.topic(t), p)))
            .collect();
        let brokers = broker_pids();
        // Each call alone, three times: median wall time, and the CPU it
        // costs this process and (with BENCH_BROKER_PIDS) the brokers.
        let timed = |name: String, call: &mut dyn FnMut()| {
            let mut walls = Vec::new();
            let (cpu_before, _) = self_usage();
            let brokers_before = brokers_cpu(&brokers);
            for _ in 0..3 {
                let started = Instant::now();
                call();
                walls.push(started.elapsed().as_secs_f64());
            }
            let own = (self_usage().0 - cpu_before) / 3.0;
            let broker = (brokers_cpu(&brokers) - brokers_before) / 3.0;
            walls.sort_by(f64::total_cmp);
            eprintln!(
                "{name:<44} wall {:.3} s, CPU {own:.3} s{}",
                walls[1],
                if brokers.is_empty() {
                    String::new()
                } else {
                    format!(", broker CPU {broker:.3} s")
                }
            );
        };
        timed(
            format!("committed offsets of {} groups", groups.len()),
            &mut || {
                let _ = source.committed_offsets(&groups);
            },
        );
        timed("describe groups (one rotation slot)".into(), &mut || {
            let _ = source.describe_groups(&groups);
        });
        for (what, spec) in [
            ("high watermarks", OffsetSpec::Latest),
            ("log start offsets", OffsetSpec::Earliest),
        ] {
            timed(
                format!("{what} of {} partitions", partitions.len()),
                &mut || {
                    let _ = source.list_offsets(&partitions, spec, Isolation::ReadUncommitted);
                },
            );
        }
        timed("metadata".into(), &mut || {
            let _ = source.topic_partitions();
        });
    }
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
    if !brokers.is_empty() {
        println!(
            "{:<44} {:>10} {:>10.3}",
            "  brokers' CPU per steady cycle",
            "",
            brokers_cpu_steady / (cycles - 1) as f64
        );
    }
    if errors > 0 {
        println!("  ({errors} samples carried errors)");
    }
    Ok(())
}

/// How fast a fresh `__consumer_offsets` reader gets through the topic:
/// records read until it answers for the bench groups, wall and CPU time.
fn reader_catch_up(cluster: &ClusterConfig, targets: &[GroupTarget]) -> anyhow::Result<()> {
    use lagwatch_collector::kafka::offsets_topic::OffsetsTopicReader;
    let groups: Vec<String> = targets.iter().map(|t| t.group.clone()).collect();
    let lookup = KafkaOffsetSource::new(
        cluster,
        CommittedOffsetsFrom::AdminApi,
        Duration::from_secs(30),
    )?;
    let (cpu_before, _) = self_usage();
    let started = Instant::now();
    let reader =
        OffsetsTopicReader::start(&cluster.client_config(), &lookup, Duration::from_secs(30))?;
    let answer = loop {
        match reader.committed_offsets(&lookup, &groups, Duration::from_secs(5)) {
            Ok(answer) => break answer,
            Err(error) if started.elapsed() < Duration::from_secs(300) => {
                eprintln!("reader not caught up yet: {error}");
            }
            Err(error) => anyhow::bail!("reader did not catch up: {error}"),
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = self_usage().0 - cpu_before;
    let offsets: usize = answer.offsets.values().map(Vec::len).sum();
    let records = reader.records_read();
    eprintln!(
        "offsets-topic reader from scratch: {records} records in {wall:.3} s wall, {cpu:.3} s CPU ({:.0} records/s); {offsets} offsets of the bench groups",
        records as f64 / wall
    );
    Ok(())
}

/// Broker processes named in `BENCH_BROKER_PIDS` (comma-separated), whose
/// CPU is reported next to ours: on a shared machine it is the larger part.
fn broker_pids() -> Vec<u32> {
    std::env::var("BENCH_BROKER_PIDS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pid| pid.trim().parse().ok())
        .collect()
}

/// CPU seconds used so far by the processes in `pids` (0 for a gone one).
fn brokers_cpu(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|pid| proc_cpu_seconds(*pid).unwrap_or(0.0))
        .sum()
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
