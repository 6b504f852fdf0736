//! Broker metrics over JMX against the real test broker (broker id 1,
//! Kafka 4.1 in KRaft combined mode), read through both agents that
//! `tests/infra/up.sh` attaches to it:
//!
//! - the Jolokia agent (`LAGWATCH_TEST_JOLOKIA_URL`, default
//!   `http://127.0.0.1:18778/jolokia`);
//! - the Prometheus JMX exporter, `io.prometheus.jmx:jmx_prometheus_javaagent`
//!   1.0.1 (`LAGWATCH_TEST_JMX_EXPORTER_URL`, default
//!   `http://127.0.0.1:18779/metrics`), with rules that name series like the
//!   exporter's example Kafka rules (`kafka-2_0_0.yml`), so the collector's
//!   default exporter series are checked against what the real exporter
//!   serves. The two agents are cross-checked on the same counters.
//!
//! A local HTTP server serving a hand-written exporter page remains for what
//! the real broker cannot be made to show on demand (NaN quantiles, exact
//! rates, series of other topics).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use lagwatch_collector::jmx::{
    BrokerEndpoint, EndpointKind, JmxConfig, JmxPoller, JolokiaOverride, PrometheusOverride,
    ValueKind,
};
use lagwatch_model::broker::metric;
use lagwatch_model::{now_ms, BrokerSample};

const BROKER: i32 = 1;

fn jolokia_url() -> String {
    std::env::var("LAGWATCH_TEST_JOLOKIA_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18778/jolokia".into())
}

/// Fails with the fix when `up.sh` found the running broker without the
/// exporter agent (started before the agent was installed).
fn require_exporter_attached() -> anyhow::Result<()> {
    if common::kafka_missing_agents()
        .iter()
        .any(|agent| agent == "jmx-exporter")
    {
        anyhow::bail!(
            "the running test broker was started without the Prometheus JMX exporter agent \
             (tests/infra/up.sh reported it): restart it with tests/infra/down.sh && \
             tests/infra/up.sh, or LAGWATCH_RESTART_STALE_KAFKA=1 tests/infra/up.sh"
        );
    }
    Ok(())
}

/// Fails with the fix when the exporter gave nothing.
fn require_exporter(sample: &BrokerSample) -> anyhow::Result<()> {
    if sample.metrics.is_empty() {
        anyhow::bail!(
            "the Prometheus JMX exporter at {} gave no metrics ({}): run tests/infra/up.sh \
             (it attaches the agent when its jar could be installed; LAGWATCH_TEST_JMX_EXPORTER_URL \
             is {})",
            common::jmx_exporter_url(),
            sample.error.as_deref().unwrap_or("no error"),
            if std::env::var_os("LAGWATCH_TEST_JMX_EXPORTER_URL").is_some() {
                "set"
            } else {
                "not set: source /tmp/lagwatch-infra/env.sh, and see up.sh's warnings"
            }
        );
    }
    Ok(())
}

fn endpoint(kind: EndpointKind, url: &str) -> BrokerEndpoint {
    BrokerEndpoint {
        broker: BROKER,
        kind,
        url: url.to_string(),
        username: None,
        password: None,
        metrics: None,
    }
}

fn poller(endpoint: &BrokerEndpoint) -> anyhow::Result<JmxPoller> {
    let mut config = JmxConfig::new(vec![endpoint.clone()]);
    config.timeout = Duration::from_secs(5);
    Ok(JmxPoller::new("local", config)?)
}

/// Fails with the fix when the agent does not answer.
fn require_jolokia(sample: &BrokerSample) -> anyhow::Result<()> {
    if sample.metrics.is_empty() {
        anyhow::bail!(
            "the Jolokia agent at {} gave no metrics ({}): run tests/infra/up.sh \
             (the agent is attached to the broker when its jar could be installed)",
            jolokia_url(),
            sample.error.as_deref().unwrap_or("no error")
        );
    }
    Ok(())
}

fn value(sample: &BrokerSample, name: &str, topic: Option<&str>) -> anyhow::Result<f64> {
    sample
        .get(name, topic)
        .with_context(|| format!("{name} {topic:?} missing from {sample:#?}"))
}

/// A TCP proxy in front of the agent that counts the HTTP requests passing
/// through, one per connection (it asks both sides to close after each).
struct CountingProxy {
    url: String,
    requests: Arc<AtomicUsize>,
    methods: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    fn start(upstream_url: &str) -> anyhow::Result<CountingProxy> {
        let without_scheme = upstream_url
            .strip_prefix("http://")
            .context("agent URL must be http://")?;
        let (authority, path) = without_scheme
            .split_once('/')
            .unwrap_or((without_scheme, ""));
        let upstream = authority.to_string();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/{path}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let methods = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&requests), Arc::clone(&methods));
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Some((head, body)) = read_request(&client) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut seen) = seen.lock() {
                    seen.push(head.lines().next().unwrap_or_default().to_string());
                }
                let _ = forward(&upstream, &head, &body, client);
            }
        });
        Ok(CountingProxy {
            url,
            requests,
            methods,
        })
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request: the head (request line and headers, without
/// `Connection`) and the body.
fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim_end().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn forward(upstream: &str, head: &str, body: &[u8], mut client: TcpStream) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.as_bytes())?;
    server.write_all(b"Connection: close\r\n\r\n")?;
    server.write_all(body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    // The agent answers with its own Connection header or none; the client
    // sees the connection close after the answer either way.
    client.write_all(&answer)?;
    client.shutdown(std::net::Shutdown::Both)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bulk_read_gives_every_default_metric_of_the_test_broker() -> anyhow::Result<()> {
    let proxy = CountingProxy::start(&jolokia_url())?;
    let broker = endpoint(EndpointKind::Jolokia, &proxy.url);
    let mut poller = poller(&broker)?;

    let started = Instant::now();
    let sample = poller.sample_broker(&broker, now_ms()).await;
    let elapsed = started.elapsed();
    require_jolokia(&sample)?;
    eprintln!(
        "one bulk Jolokia read (through the counting proxy): {elapsed:?}, {} values",
        sample.metrics.len()
    );
    assert_eq!(proxy.requests(), 1, "one HTTP request per broker and cycle");
    let methods = proxy.methods.lock().map(|m| m.clone()).unwrap_or_default();
    assert!(methods[0].starts_with("POST "), "{methods:?}");

    // Every default MBean exists on Kafka 4.1 in combined mode.
    assert_eq!(sample.error, None, "{sample:#?}");
    assert_eq!(sample.broker, BROKER);
    assert_eq!(
        value(&sample, metric::UNDER_REPLICATED_PARTITIONS, None)?,
        0.0
    );
    assert_eq!(
        value(&sample, metric::UNDER_MIN_ISR_PARTITION_COUNT, None)?,
        0.0
    );
    assert_eq!(value(&sample, metric::OFFLINE_PARTITIONS_COUNT, None)?, 0.0);
    assert_eq!(
        value(&sample, metric::ACTIVE_CONTROLLER_COUNT, None)?,
        1.0,
        "a single KRaft node is the active controller"
    );
    for idle in [
        metric::REQUEST_HANDLER_AVG_IDLE_PERCENT,
        metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT,
    ] {
        // A fraction: not a percentage, and for the request handlers not
        // the doubled combined-mode value of Kafka 4.1 (KAFKA-19606), which
        // reads about 2.0 on this idle broker before the correction.
        let fraction = value(&sample, idle, None)?;
        assert!((0.0..=1.0).contains(&fraction), "{idle} = {fraction}");
        eprintln!("{idle} = {fraction}");
    }
    let produce_p99 = value(&sample, metric::REQUEST_TOTAL_TIME_MS, Some("Produce"))?;
    assert!(produce_p99 >= 0.0);
    let requests: Vec<&str> = sample
        .metrics
        .iter()
        .filter(|m| m.name == metric::REQUEST_TOTAL_TIME_MS)
        .filter_map(|m| m.topic.as_deref())
        .collect();
    assert!(
        requests
            .iter()
            .all(|r| ["Produce", "FetchConsumer", "FetchFollower"].contains(r)),
        "{requests:?}"
    );
    // Counters give rates from the second read on only.
    assert_eq!(sample.get(metric::BYTES_IN_PER_SEC, None), None);

    // What the metrics topic carries (serde_json may round the last bit of
    // a float on the way back).
    let decoded: BrokerSample = serde_json::from_slice(&sample.to_json())?;
    assert_eq!(decoded.metrics.len(), sample.metrics.len());
    for (back, sent) in decoded.metrics.iter().zip(&sample.metrics) {
        assert_eq!((&back.name, &back.topic), (&sent.name, &sent.topic));
        assert!((back.value - sent.value).abs() <= sent.value.abs() * 1e-12);
    }
    Ok(())
}

/// Produces `MESSAGES` records to a fresh topic between two reads of
/// `broker` and checks the per-topic and broker-wide rates of the second
/// read; returns it for checks of the agent at hand. `require` turns an
/// agent that gives no metrics into the error that says how to attach it.
async fn rates_of_a_fresh_topic(
    kind: EndpointKind,
    url: &str,
    require: fn(&BrokerSample) -> anyhow::Result<()>,
) -> anyhow::Result<BrokerSample> {
    const MESSAGES: usize = 500;
    let topic = common::unique("jmx_rates");
    common::create_topic(&topic, 1).await?;

    let broker = endpoint(kind, url);
    let mut poller = poller(&broker)?;
    let first = poller.sample_broker(&broker, now_ms()).await;
    require(&first)?;
    assert_eq!(first.error, None, "{first:#?}");

    common::produce(&topic, 1, MESSAGES).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let second = poller.sample_broker(&broker, now_ms()).await;
    assert_eq!(second.error, None, "{second:#?}");
    let seconds = (second.ts_ms - first.ts_ms) as f64 / 1000.0;

    let messages = value(&second, metric::MESSAGES_IN_PER_SEC, Some(&topic))?;
    let bytes = value(&second, metric::BYTES_IN_PER_SEC, Some(&topic))?;
    assert!(
        messages > 0.0 && bytes > 0.0,
        "{messages} msg/s, {bytes} B/s"
    );
    // Exactly the produced messages over the interval between the reads
    // (through the exporter, the per-topic series appears with the first
    // message, and its rate counts from zero).
    assert!(
        (messages * seconds - MESSAGES as f64).abs() < 1e-6,
        "{messages} msg/s over {seconds} s"
    );
    // Each message carries at least its payload.
    assert!(bytes * seconds >= (MESSAGES * "message 0 for partition 0".len()) as f64);
    // Broker totals cover the topic.
    assert!(value(&second, metric::MESSAGES_IN_PER_SEC, None)? >= messages);
    assert!(value(&second, metric::BYTES_IN_PER_SEC, None)? >= bytes);
    eprintln!(
        "{kind:?}, topic {topic}: {messages} msg/s, {bytes} B/s over {seconds} s \
         (series in the first read: {})",
        first
            .metrics
            .iter()
            .any(|m| m.topic.as_deref() == Some(topic.as_str()))
    );
    Ok(second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_of_a_topic_produced_between_two_reads() -> anyhow::Result<()> {
    common::require_kafka()?;
    let second =
        rates_of_a_fresh_topic(EndpointKind::Jolokia, &jolokia_url(), require_jolokia).await?;
    assert!(value(&second, metric::BYTES_OUT_PER_SEC, None)? >= 0.0);
    assert!(value(&second, metric::ISR_SHRINKS_PER_SEC, None)? >= 0.0);
    Ok(())
}

#[tokio::test]
async fn unreachable_endpoint_gives_a_sample_with_a_clear_error() -> anyhow::Result<()> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}/jolokia");
    let broker = endpoint(EndpointKind::Jolokia, &url);
    let mut poller = poller(&broker)?;
    let sample = poller.sample_broker(&broker, 1_234).await;
    assert_eq!(
        (sample.cluster.as_str(), sample.broker, sample.ts_ms),
        ("local", BROKER, 1_234)
    );
    assert!(sample.metrics.is_empty());
    let error = sample.error.context("an error")?;
    eprintln!("unreachable endpoint: {error}");
    assert!(error.starts_with(&format!("jolokia {url}: ")), "{error}");
    assert!(
        error.to_lowercase().contains("connection refused"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn wrong_agent_path_is_reported() -> anyhow::Result<()> {
    let base = jolokia_url();
    let url = format!("{}/../nope", base.trim_end_matches('/'));
    let broker = endpoint(EndpointKind::Jolokia, &url);
    let mut poller = poller(&broker)?;
    let sample = poller.sample_broker(&broker, 1).await;
    let error = sample.error.context("an error")?;
    eprintln!("wrong path: {error}");
    assert!(error.contains("HTTP 404"), "{error}");
    assert!(sample.metrics.is_empty());
    Ok(())
}

/// A poller of `broker` that publishes the raw `Count` of the byte and
/// message meters (as gauges) instead of their rates, so two agents can be
/// compared count for count.
fn raw_count_poller(broker: &BrokerEndpoint) -> anyhow::Result<JmxPoller> {
    let mut config = JmxConfig::new(vec![broker.clone()]);
    config.timeout = Duration::from_secs(5);
    for name in [metric::MESSAGES_IN_PER_SEC, metric::BYTES_IN_PER_SEC] {
        config.jolokia.insert(
            name.to_string(),
            JolokiaOverride {
                kind: Some(ValueKind::Gauge),
                ..Default::default()
            },
        );
        config.prometheus.insert(
            name.to_string(),
            PrometheusOverride {
                kind: Some(ValueKind::Gauge),
                ..Default::default()
            },
        );
    }
    Ok(JmxPoller::new("local", config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exporter_gives_every_default_metric_of_the_test_broker() -> anyhow::Result<()> {
    require_exporter_attached()?;
    let proxy = CountingProxy::start(&common::jmx_exporter_url())?;
    let broker = endpoint(EndpointKind::Prometheus, &proxy.url);
    let mut poller = poller(&broker)?;

    let started = Instant::now();
    let first = poller.sample_broker(&broker, now_ms()).await;
    let elapsed = started.elapsed();
    require_exporter(&first)?;
    eprintln!(
        "one exporter page (through the counting proxy): {elapsed:?}, {} values",
        first.metrics.len()
    );
    // Every default series exists on the real page and parses: no failed
    // metric, no malformed line.
    assert_eq!(first.error, None, "{first:#?}");
    assert_eq!(first.broker, BROKER);
    assert_eq!(
        value(&first, metric::UNDER_REPLICATED_PARTITIONS, None)?,
        0.0
    );
    assert_eq!(
        value(&first, metric::UNDER_MIN_ISR_PARTITION_COUNT, None)?,
        0.0
    );
    assert_eq!(value(&first, metric::OFFLINE_PARTITIONS_COUNT, None)?, 0.0);
    assert_eq!(
        value(&first, metric::ACTIVE_CONTROLLER_COUNT, None)?,
        1.0,
        "a single KRaft node is the active controller"
    );
    let network_idle = value(&first, metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT, None)?;
    assert!((0.0..=1.0).contains(&network_idle), "{network_idle}");
    // p99 of the configured request types only, out of the ~90 on the page.
    let requests: Vec<&str> = first
        .metrics
        .iter()
        .filter(|m| m.name == metric::REQUEST_TOTAL_TIME_MS)
        .filter_map(|m| m.topic.as_deref())
        .collect();
    assert!(requests.contains(&"Produce"), "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| ["Produce", "FetchConsumer", "FetchFollower"].contains(r)),
        "{requests:?}"
    );
    assert!(value(&first, metric::REQUEST_TOTAL_TIME_MS, Some("Produce"))? >= 0.0);
    // Counters (the idle meter's count among them) give rates from the
    // second read on only.
    for counter in [
        metric::BYTES_IN_PER_SEC,
        metric::REQUEST_HANDLER_AVG_IDLE_PERCENT,
    ] {
        assert_eq!(first.get(counter, None), None, "{counter}");
    }

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let second = poller.sample_broker(&broker, now_ms()).await;
    assert_eq!(second.error, None, "{second:#?}");
    // The idle meter's count is in nanoseconds per handler thread; its rate
    // is the idle fraction, doubled on this combined 4.1 node (KAFKA-19606)
    // and halved back by the collector, which sees controller and broker
    // series on the same page.
    let idle = value(&second, metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None)?;
    assert!((0.0..=1.0).contains(&idle), "request handler idle {idle}");
    for rate in [
        metric::BYTES_IN_PER_SEC,
        metric::BYTES_OUT_PER_SEC,
        metric::MESSAGES_IN_PER_SEC,
    ] {
        assert!(value(&second, rate, None)? >= 0.0, "{rate}");
    }
    assert_eq!(value(&second, metric::ISR_SHRINKS_PER_SEC, None)?, 0.0);
    eprintln!(
        "exporter: request handler idle {idle}, network idle {network_idle}, \
         Produce p99 {} ms",
        value(&second, metric::REQUEST_TOTAL_TIME_MS, Some("Produce"))?
    );

    assert_eq!(proxy.requests(), 2, "one HTTP request per broker and cycle");
    let methods = proxy.methods.lock().map(|m| m.clone()).unwrap_or_default();
    assert!(methods.iter().all(|m| m.starts_with("GET ")), "{methods:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exporter_rates_of_a_topic_produced_between_two_reads() -> anyhow::Result<()> {
    require_exporter_attached()?;
    common::require_kafka()?;
    rates_of_a_fresh_topic(
        EndpointKind::Prometheus,
        &common::jmx_exporter_url(),
        require_exporter,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jolokia_and_the_exporter_read_the_same_counters() -> anyhow::Result<()> {
    require_exporter_attached()?;
    common::require_kafka()?;
    const MESSAGES: usize = 300;
    let topic = common::unique("jmx_agents_agree");
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, MESSAGES).await?;

    let exporter = endpoint(EndpointKind::Prometheus, &common::jmx_exporter_url());
    let jolokia = endpoint(EndpointKind::Jolokia, &jolokia_url());
    let mut exporter_poller = raw_count_poller(&exporter)?;
    let mut jolokia_poller = raw_count_poller(&jolokia)?;

    // Exporter, Jolokia, exporter: the broker totals (other clients may be
    // producing) must come out in that order; the fresh topic's counts and
    // the health gauges must be equal.
    let before = exporter_poller.sample_broker(&exporter, now_ms()).await;
    require_exporter(&before)?;
    let through_jolokia = jolokia_poller.sample_broker(&jolokia, now_ms()).await;
    require_jolokia(&through_jolokia)?;
    let after = exporter_poller.sample_broker(&exporter, now_ms()).await;
    for sample in [&before, &through_jolokia, &after] {
        assert_eq!(sample.error, None, "{sample:#?}");
    }

    for name in [metric::MESSAGES_IN_PER_SEC, metric::BYTES_IN_PER_SEC] {
        let by_jolokia = value(&through_jolokia, name, Some(&topic))?;
        let by_exporter = value(&before, name, Some(&topic))?;
        assert_eq!(by_exporter, by_jolokia, "{name} count of {topic}");
        assert_eq!(value(&after, name, Some(&topic))?, by_jolokia, "{name}");
        let totals = [
            value(&before, name, None)?,
            value(&through_jolokia, name, None)?,
            value(&after, name, None)?,
        ];
        assert!(
            totals[0] <= totals[1] && totals[1] <= totals[2],
            "{name} broker totals exporter, Jolokia, exporter: {totals:?}"
        );
        eprintln!("{name}: topic count {by_jolokia} through both agents, broker totals {totals:?}");
    }
    assert_eq!(
        value(&through_jolokia, metric::MESSAGES_IN_PER_SEC, Some(&topic))?,
        MESSAGES as f64
    );
    for gauge in [
        metric::UNDER_REPLICATED_PARTITIONS,
        metric::UNDER_MIN_ISR_PARTITION_COUNT,
        metric::OFFLINE_PARTITIONS_COUNT,
        metric::ACTIVE_CONTROLLER_COUNT,
    ] {
        assert_eq!(
            value(&before, gauge, None)?,
            value(&through_jolokia, gauge, None)?,
            "{gauge}"
        );
    }
    Ok(())
}

/// A page as the Prometheus JMX exporter 0.x (example Kafka rules,
/// `lowercaseOutputName: true`) serves it for a combined Kafka 4.1 node,
/// with unrelated series around. The counters advance with `cycle`.
///
/// The real exporter (1.0.1) is read in the tests above; this page keeps
/// what they cannot: the 0.x format (trailing commas in label sets, the
/// idle meter's count without 1.x's `_total`), a NaN quantile, a second
/// topic with a zero rate and counters whose rates are known exactly.
fn exporter_page(topic: &str, cycle: u64) -> String {
    let bytes_in = 1_000_000 + cycle * 50_000;
    let topic_bytes = cycle * 20_000;
    let messages = 10_000 + cycle * 400;
    let topic_messages = cycle * 300;
    // Two pools of 8 threads, each 90 % idle: 1.8 s per second in the meter.
    let idle_ns = 4.0e12 + cycle as f64 * 10.0 * 1.8e9;
    format!(
        r#"# HELP jmx_scrape_duration_seconds Time this JMX scrape took, in seconds.
# TYPE jmx_scrape_duration_seconds gauge
jmx_scrape_duration_seconds 0.084312
# HELP jmx_scrape_error Non-zero if this scrape failed.
# TYPE jmx_scrape_error gauge
jmx_scrape_error 0.0
# HELP jvm_memory_bytes_used Used bytes of a given JVM memory area.
# TYPE jvm_memory_bytes_used gauge
jvm_memory_bytes_used{{area="heap",}} 1.98179584E8
jvm_memory_bytes_used{{area="nonheap",}} 9.7634232E7
# HELP kafka_server_replicamanager_underreplicatedpartitions Attribute exposed for management kafka.server:name=UnderReplicatedPartitions,type=ReplicaManager,attribute=Value
# TYPE kafka_server_replicamanager_underreplicatedpartitions gauge
kafka_server_replicamanager_underreplicatedpartitions 0.0
# HELP kafka_server_replicamanager_underminisrpartitioncount Attribute exposed for management kafka.server:name=UnderMinIsrPartitionCount,type=ReplicaManager,attribute=Value
# TYPE kafka_server_replicamanager_underminisrpartitioncount gauge
kafka_server_replicamanager_underminisrpartitioncount 0.0
# HELP kafka_server_replicamanager_partitioncount Attribute exposed for management kafka.server:name=PartitionCount,type=ReplicaManager,attribute=Value
# TYPE kafka_server_replicamanager_partitioncount gauge
kafka_server_replicamanager_partitioncount 57.0
# HELP kafka_controller_kafkacontroller_activecontrollercount Attribute exposed for management kafka.controller:name=ActiveControllerCount,type=KafkaController,attribute=Value
# TYPE kafka_controller_kafkacontroller_activecontrollercount gauge
kafka_controller_kafkacontroller_activecontrollercount 1.0
# HELP kafka_controller_kafkacontroller_offlinepartitionscount Attribute exposed for management kafka.controller:name=OfflinePartitionsCount,type=KafkaController,attribute=Value
# TYPE kafka_controller_kafkacontroller_offlinepartitionscount gauge
kafka_controller_kafkacontroller_offlinepartitionscount 0.0
# HELP kafka_network_socketserver_networkprocessoravgidlepercent Attribute exposed for management kafka.network:name=NetworkProcessorAvgIdlePercent,type=SocketServer,attribute=Value
# TYPE kafka_network_socketserver_networkprocessoravgidlepercent gauge
kafka_network_socketserver_networkprocessoravgidlepercent 0.9987654
# HELP kafka_network_processor_idlepercent Attribute exposed for management kafka.network:name=IdlePercent,type=Processor,attribute=Value
# TYPE kafka_network_processor_idlepercent gauge
kafka_network_processor_idlepercent{{networkProcessor="0",}} 0.998
kafka_network_processor_idlepercent{{networkProcessor="1",}} 0.999
# HELP kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count Attribute exposed for management kafka.server:name=RequestHandlerAvgIdlePercent,type=KafkaRequestHandlerPool,attribute=Count
# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count counter
kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count {idle_ns:e}
# HELP kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent Attribute exposed for management kafka.server:name=RequestHandlerAvgIdlePercent,type=KafkaRequestHandlerPool,attribute=MeanRate
# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent gauge
kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent 1.9982
# HELP kafka_server_brokertopicmetrics_bytesin_total Attribute exposed for management kafka.server:name=BytesInPerSec,type=BrokerTopicMetrics,attribute=Count
# TYPE kafka_server_brokertopicmetrics_bytesin_total counter
kafka_server_brokertopicmetrics_bytesin_total {bytes_in}.0
kafka_server_brokertopicmetrics_bytesin_total{{topic="__consumer_offsets",}} 18083.0
kafka_server_brokertopicmetrics_bytesin_total{{topic="{topic}",}} {topic_bytes}.0
# HELP kafka_server_brokertopicmetrics_bytesout_total Attribute exposed for management kafka.server:name=BytesOutPerSec,type=BrokerTopicMetrics,attribute=Count
# TYPE kafka_server_brokertopicmetrics_bytesout_total counter
kafka_server_brokertopicmetrics_bytesout_total 2.5E7
kafka_server_brokertopicmetrics_bytesout_total{{topic="{topic}",}} 0.0
# HELP kafka_server_brokertopicmetrics_messagesin_total Attribute exposed for management kafka.server:name=MessagesInPerSec,type=BrokerTopicMetrics,attribute=Count
# TYPE kafka_server_brokertopicmetrics_messagesin_total counter
kafka_server_brokertopicmetrics_messagesin_total {messages}.0
kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}",}} {topic_messages}.0
# HELP kafka_server_brokertopicmetrics_totalproducerequests_total Attribute exposed for management kafka.server:name=TotalProduceRequestsPerSec,type=BrokerTopicMetrics,attribute=Count
# TYPE kafka_server_brokertopicmetrics_totalproducerequests_total counter
kafka_server_brokertopicmetrics_totalproducerequests_total 1234.0
# HELP kafka_server_replicamanager_isrshrinks_total Attribute exposed for management kafka.server:name=IsrShrinksPerSec,type=ReplicaManager,attribute=Count
# TYPE kafka_server_replicamanager_isrshrinks_total counter
kafka_server_replicamanager_isrshrinks_total 3.0
# HELP kafka_network_requestmetrics_totaltimems Attribute exposed for management kafka.network:name=TotalTimeMs,type=RequestMetrics,attribute=99thPercentile
# TYPE kafka_network_requestmetrics_totaltimems gauge
kafka_network_requestmetrics_totaltimems{{request="Produce",quantile="0.50",}} 0.0
kafka_network_requestmetrics_totaltimems{{request="Produce",quantile="0.99",}} 2.0
kafka_network_requestmetrics_totaltimems{{request="Produce",quantile="0.999",}} 16.942000000000007
kafka_network_requestmetrics_totaltimems{{request="FetchConsumer",quantile="0.99",}} 501.0
kafka_network_requestmetrics_totaltimems{{request="FetchFollower",quantile="0.99",}} NaN
kafka_network_requestmetrics_totaltimems{{request="Metadata",quantile="0.99",}} 1.0
# HELP kafka_network_requestmetrics_totaltimems_count Attribute exposed for management kafka.network:name=TotalTimeMs,type=RequestMetrics,attribute=Count
# TYPE kafka_network_requestmetrics_totaltimems_count counter
kafka_network_requestmetrics_totaltimems_count{{request="Produce",}} 12054.0
"#
    )
}

/// Serves `/metrics`, one page per request, `cycle` counting requests.
fn serve_exporter(topic: String) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/metrics", listener.local_addr()?);
    thread::spawn(move || {
        let mut cycle = 0u64;
        for mut stream in listener.incoming().flatten() {
            if read_request(&stream).is_none() {
                continue;
            }
            let page = exporter_page(&topic, cycle);
            cycle += 1;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    Ok(url)
}

#[tokio::test]
async fn exporter_page_from_a_local_server_not_a_real_exporter() -> anyhow::Result<()> {
    let topic = "orders";
    let url = serve_exporter(topic.to_string())?;
    let broker = endpoint(EndpointKind::Prometheus, &url);
    let mut poller = poller(&broker)?;

    let first = poller.sample_broker(&broker, 1_000_000).await;
    assert_eq!(first.error, None, "{first:#?}");
    assert_eq!(
        value(&first, metric::UNDER_REPLICATED_PARTITIONS, None)?,
        0.0
    );
    assert_eq!(value(&first, metric::ACTIVE_CONTROLLER_COUNT, None)?, 1.0);
    assert_eq!(value(&first, metric::OFFLINE_PARTITIONS_COUNT, None)?, 0.0);
    assert_eq!(
        value(&first, metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT, None)?,
        0.9987654
    );
    assert_eq!(
        value(&first, metric::REQUEST_TOTAL_TIME_MS, Some("Produce"))?,
        2.0
    );
    assert_eq!(
        value(&first, metric::REQUEST_TOTAL_TIME_MS, Some("FetchConsumer"))?,
        501.0
    );
    // NaN quantiles are dropped; unconfigured request types are not read.
    assert_eq!(
        first.get(metric::REQUEST_TOTAL_TIME_MS, Some("FetchFollower")),
        None
    );
    assert_eq!(
        first.get(metric::REQUEST_TOTAL_TIME_MS, Some("Metadata")),
        None
    );
    assert_eq!(
        first.get(metric::BYTES_IN_PER_SEC, None),
        None,
        "no rate yet"
    );

    let second = poller.sample_broker(&broker, 1_010_000).await;
    assert_eq!(second.error, None, "{second:#?}");
    assert_eq!(value(&second, metric::BYTES_IN_PER_SEC, None)?, 5_000.0);
    assert_eq!(
        value(&second, metric::BYTES_IN_PER_SEC, Some(topic))?,
        2_000.0
    );
    assert_eq!(
        value(
            &second,
            metric::BYTES_IN_PER_SEC,
            Some("__consumer_offsets")
        )?,
        0.0
    );
    assert_eq!(value(&second, metric::MESSAGES_IN_PER_SEC, None)?, 40.0);
    assert_eq!(
        value(&second, metric::MESSAGES_IN_PER_SEC, Some(topic))?,
        30.0
    );
    assert_eq!(value(&second, metric::BYTES_OUT_PER_SEC, None)?, 0.0);
    assert_eq!(value(&second, metric::ISR_SHRINKS_PER_SEC, None)?, 0.0);
    // Combined node (controller and broker series), version unknown: the
    // doubled idle meter is halved to the pools' mean.
    let idle = value(&second, metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None)?;
    assert!((idle - 0.9).abs() < 1e-9, "{idle}");
    Ok(())
}
