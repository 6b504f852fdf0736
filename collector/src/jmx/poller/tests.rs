//! The poller against small local HTTP servers playing a Jolokia agent or an
//! exporter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{json, Value};

use super::*;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<String>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Serves `answers` in turn (the last one again once they run out), one
/// per connection; records every request.
struct FakeServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    fn start(path: &str, answers: Vec<(u16, String)>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}{path}",
            listener.local_addr().expect("local addr")
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            let mut turn = 0usize;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                log.lock().expect("lock").push(request);
                let (status, body) = answers[turn.min(answers.len() - 1)].clone();
                turn += 1;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        FakeServer { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let length = headers
        .iter()
        .find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        request_line: request_line.trim_end().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn endpoint(kind: EndpointKind, url: &str, broker: i32) -> BrokerEndpoint {
    BrokerEndpoint {
        broker,
        kind,
        url: url.to_string(),
        username: None,
        password: None,
        metrics: None,
    }
}

fn poller(endpoints: Vec<BrokerEndpoint>) -> JmxPoller {
    let mut config = JmxConfig::new(endpoints);
    config.interval = Duration::from_secs(10);
    config.timeout = Duration::from_millis(500);
    JmxPoller::new("local", config).expect("valid config")
}

/// A Jolokia answer for the default reads of a combined Kafka 4.1 node.
fn jolokia_answer(bytes_in_total: u64, bytes_in_orders: Option<u64>, idle: f64) -> String {
    let ok = |value: Value| json!({"status": 200, "value": value});
    let mut per_topic = serde_json::Map::new();
    per_topic.insert(
        "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec".into(),
        json!({"Count": bytes_in_total}),
    );
    if let Some(count) = bytes_in_orders {
        per_topic.insert(
            "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=orders".into(),
            json!({"Count": count}),
        );
    }
    json!([
        ok(json!(0)),
        {"status": 404, "error_type": "javax.management.InstanceNotFoundException",
         "error": "kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount"},
        ok(json!(0)),
        ok(json!(1)),
        ok(json!(idle)),
        ok(json!(0.75)),
        ok(Value::Object(per_topic)),
        ok(json!({"kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec": {"Count": 0}})),
        ok(json!({"kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec": {"Count": 10}})),
        ok(json!(0)),
        ok(json!({"kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce": {"99thPercentile": 3.0}})),
        ok(json!({"kafka.server:type=app-info,id=1": {"Version": "4.1.2"}})),
    ])
    .to_string()
}

#[tokio::test]
async fn jolokia_one_bulk_post_per_broker_and_cycle() {
    let server = FakeServer::start(
        "/jolokia",
        vec![
            (200, jolokia_answer(1_000, None, 1.996)),
            (200, jolokia_answer(6_000, Some(2_000), 1.5)),
        ],
    );
    let broker = endpoint(EndpointKind::Jolokia, &server.url, 1);
    let mut poller = poller(vec![broker.clone()]);

    let first = poller.sample_broker(&broker, 1_000_000).await;
    assert_eq!(server.seen().len(), 1, "one request per cycle");
    let request = &server.seen()[0];
    assert_eq!(request.request_line, "POST /jolokia HTTP/1.1");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let reads: Value = serde_json::from_str(&request.body).expect("json body");
    assert_eq!(
        reads.as_array().map(Vec::len),
        Some(12),
        "11 metrics + version"
    );

    assert_eq!(
        (first.cluster.as_str(), first.broker, first.ts_ms),
        ("local", 1, 1_000_000)
    );
    assert_eq!(
        first.get(metric::UNDER_REPLICATED_PARTITIONS, None),
        Some(0.0)
    );
    assert_eq!(first.get(metric::ACTIVE_CONTROLLER_COUNT, None), Some(1.0));
    // Combined node on 4.1: the doubled idle meter is halved.
    assert_eq!(
        first.get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None),
        Some(0.998)
    );
    assert_eq!(
        first.get(metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT, None),
        Some(0.75)
    );
    assert_eq!(
        first.get(metric::REQUEST_TOTAL_TIME_MS, Some("Produce")),
        Some(3.0)
    );
    assert_eq!(
        first.get(metric::BYTES_IN_PER_SEC, None),
        None,
        "no rate on the first read"
    );
    let error = first.error.as_deref().expect("one read failed");
    assert!(
        error.starts_with("1 metric read(s) failed on jolokia http://")
            && error.contains("UnderMinIsrPartitionCount: InstanceNotFoundException"),
        "{error}"
    );

    let second = poller.sample_broker(&broker, 1_010_000).await;
    assert_eq!(server.seen().len(), 2);
    assert_eq!(second.get(metric::BYTES_IN_PER_SEC, None), Some(500.0));
    // The topic's meter appeared between the reads: counted from zero.
    assert_eq!(
        second.get(metric::BYTES_IN_PER_SEC, Some("orders")),
        Some(200.0)
    );
    assert_eq!(second.get(metric::MESSAGES_IN_PER_SEC, None), Some(0.0));
    assert_eq!(
        second.get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None),
        Some(0.75)
    );
    let names: Vec<&str> = second.metrics.iter().map(|m| m.name.as_str()).collect();
    assert!(
        names
            .windows(2)
            .all(|w| metric::ALL.iter().position(|m| *m == w[0])
                <= metric::ALL.iter().position(|m| *m == w[1])),
        "metrics in the documented order: {names:?}"
    );
}

/// An exporter page whose counters move with `cycle`.
fn exporter_page(cycle: u64) -> String {
    format!(
        r#"# HELP kafka_server_replicamanager_underreplicatedpartitions Attribute exposed for management
# TYPE kafka_server_replicamanager_underreplicatedpartitions gauge
kafka_server_replicamanager_underreplicatedpartitions 2.0
kafka_server_replicamanager_underminisrpartitioncount 0.0
kafka_network_socketserver_networkprocessoravgidlepercent 1.0000001
# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count counter
kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_count {idle_ns}
kafka_server_brokertopicmetrics_bytesin_total {bytes}
kafka_server_brokertopicmetrics_bytesin_total{{topic="orders",}} {bytes}
kafka_server_brokertopicmetrics_bytesout_total 0.0
kafka_server_brokertopicmetrics_messagesin_total {messages} 1700000000000
kafka_server_replicamanager_isrshrinks_total {cycle}
kafka_network_requestmetrics_totaltimems{{request="FetchConsumer",quantile="0.99",}} 501.0
kafka_network_requestmetrics_totaltimems{{request="FetchConsumer",quantile="0.999",}} 900.0
"#,
        idle_ns = 1e12 + cycle as f64 * 8e9,
        bytes = cycle * 10_000,
        messages = cycle * 100,
    )
}

#[tokio::test]
async fn prometheus_exporter_page_to_sample() {
    let server = FakeServer::start(
        "/metrics",
        vec![(200, exporter_page(0)), (200, exporter_page(1))],
    );
    let broker = endpoint(EndpointKind::Prometheus, &server.url, 2);
    let mut poller = poller(vec![broker.clone()]);

    let first = poller.sample_broker(&broker, 0).await;
    assert_eq!(first.error, None);
    let request = &server.seen()[0];
    assert_eq!(request.request_line, "GET /metrics HTTP/1.1");
    assert!(request
        .header("accept")
        .is_some_and(|a| a.starts_with("text/plain;version=0.0.4")));
    assert_eq!(
        first.get(metric::UNDER_REPLICATED_PARTITIONS, None),
        Some(2.0)
    );
    assert_eq!(
        first.get(metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT, None),
        Some(1.0),
        "clamped"
    );
    assert_eq!(
        first.get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None),
        None,
        "a rate"
    );
    assert_eq!(
        first.get(metric::REQUEST_TOTAL_TIME_MS, Some("FetchConsumer")),
        Some(501.0)
    );

    let second = poller.sample_broker(&broker, 10_000).await;
    assert_eq!(second.error, None);
    // 8 s idle per thread in 10 s; broker-only node, so no halving.
    let idle = second
        .get(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, None)
        .expect("idle");
    assert!((idle - 0.8).abs() < 1e-9, "{idle}");
    assert_eq!(second.get(metric::BYTES_IN_PER_SEC, None), Some(1_000.0));
    assert_eq!(
        second.get(metric::BYTES_IN_PER_SEC, Some("orders")),
        Some(1_000.0)
    );
    assert_eq!(second.get(metric::MESSAGES_IN_PER_SEC, None), Some(10.0));
    assert_eq!(second.get(metric::ISR_SHRINKS_PER_SEC, None), Some(0.1));
}

#[tokio::test]
async fn unreachable_endpoint_gives_a_sample_with_the_reason() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/jolokia");
    let broker = endpoint(EndpointKind::Jolokia, &url, 3);
    let mut poller = poller(vec![broker.clone()]);
    let sample = poller.sample_broker(&broker, 42).await;
    assert_eq!((sample.broker, sample.ts_ms), (3, 42));
    assert!(sample.metrics.is_empty());
    let error = sample.error.expect("error");
    assert!(error.starts_with(&format!("jolokia {url}: ")), "{error}");
    assert!(
        error.to_lowercase().contains("connection refused"),
        "{error}"
    );
}

#[tokio::test]
async fn silent_endpoint_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    // Accepts, reads nothing, answers nothing.
    let hold = thread::spawn(move || {
        listener.accept().map(|(stream, _)| {
            thread::sleep(Duration::from_secs(2));
            drop(stream);
        })
    });
    let broker = endpoint(EndpointKind::Prometheus, &url, 4);
    let mut poller = poller(vec![broker.clone()]);
    let started = Instant::now();
    let sample = poller.sample_broker(&broker, 0).await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    let error = sample.error.expect("error");
    assert!(error.ends_with("no answer within 500ms"), "{error}");
    drop(hold);
}

#[tokio::test]
async fn http_errors_are_reported_with_their_body() {
    let server = FakeServer::start("/jolokia", vec![(401, "auth required".into())]);
    let mut secured = endpoint(EndpointKind::Jolokia, &server.url, 5);
    secured.username = Some("monitor".into());
    secured.password = Some(lagwatch_model::Secret::new("pw"));
    let mut poller = poller(vec![secured.clone()]);
    let sample = poller.sample_broker(&secured, 0).await;
    let error = sample.error.expect("error");
    assert!(
        error.ends_with("HTTP 401 Unauthorized: auth required"),
        "{error}"
    );
    // Basic auth of monitor:pw.
    assert_eq!(
        server.seen()[0].header("authorization"),
        Some("Basic bW9uaXRvcjpwdw==")
    );
}

#[tokio::test]
async fn cluster_sampling_reads_all_brokers_and_isolates_failures() {
    let good = FakeServer::start("/jolokia", vec![(200, jolokia_answer(1, None, 0.5))]);
    let dead = format!(
        "http://127.0.0.1:{}/jolokia",
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    );
    let mut poller = poller(vec![
        endpoint(EndpointKind::Jolokia, &dead, 1),
        endpoint(EndpointKind::Jolokia, &good.url, 2),
    ]);
    let samples = poller.sample_cluster(7).await;
    assert_eq!(samples.len(), 2);
    assert_eq!((samples[0].broker, samples[1].broker), (1, 2));
    assert!(samples[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains(&dead)));
    assert!(samples[0].metrics.is_empty());
    assert_eq!(
        samples[1].get(metric::UNDER_REPLICATED_PARTITIONS, None),
        Some(0.0)
    );
    assert!(samples.iter().all(|s| s.ts_ms == 7 && s.cluster == "local"));
}

#[tokio::test]
async fn run_sends_samples_until_cancelled() {
    let server = FakeServer::start("/metrics", vec![(200, exporter_page(1))]);
    let mut config = JmxConfig::new(vec![endpoint(EndpointKind::Prometheus, &server.url, 9)]);
    config.interval = Duration::from_millis(50);
    let poller = JmxPoller::new("local", config).expect("valid");
    let (tx, mut rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller.run(tx, shutdown.clone()));
    let first = rx.recv().await.expect("first sample");
    let second = rx.recv().await.expect("second sample");
    assert_eq!((first.broker, second.broker), (9, 9));
    assert!(second.ts_ms > first.ts_ms);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .expect("no panic");
}

#[test]
fn idle_correction_rules() {
    let mut combined = Scrape::default();
    for m in [
        metric::ACTIVE_CONTROLLER_COUNT,
        metric::UNDER_REPLICATED_PARTITIONS,
    ] {
        combined
            .families
            .push(super::super::scrape::Family::new(m, ValueKind::Gauge, 1.0));
    }
    let mut broker_only = Scrape::default();
    broker_only.families.push(super::super::scrape::Family::new(
        metric::UNDER_REPLICATED_PARTITIONS,
        ValueKind::Gauge,
        1.0,
    ));
    assert!(
        halve_idle(IdleCorrection::Auto, &combined),
        "version unknown"
    );
    assert!(!halve_idle(IdleCorrection::Auto, &broker_only));
    assert!(halve_idle(IdleCorrection::Halve, &broker_only));
    assert!(!halve_idle(IdleCorrection::None, &combined));
    combined.version = Some("4.1.2".into());
    assert!(halve_idle(IdleCorrection::Auto, &combined));
    combined.version = Some("4.2.0".into());
    assert!(!halve_idle(IdleCorrection::Auto, &combined), "fixed in 4.2");
    combined.version = Some("5.0.0-SNAPSHOT".into());
    assert!(!halve_idle(IdleCorrection::Auto, &combined));

    assert_eq!(
        correct(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, 1.9, true),
        0.95
    );
    assert_eq!(
        correct(metric::REQUEST_HANDLER_AVG_IDLE_PERCENT, 1.9, false),
        1.0
    );
    assert_eq!(
        correct(metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT, -0.1, false),
        0.0
    );
    assert_eq!(correct(metric::BYTES_IN_PER_SEC, 5e6, true), 5e6);
}

#[test]
fn long_failure_lists_are_cut() {
    let scrape = Scrape {
        failures: (0..8).map(|i| format!("m{i}: broken")).collect(),
        ..Scrape::default()
    };
    let text = summarise(&scrape, &endpoint(EndpointKind::Jolokia, "http://h/j", 1));
    assert!(
        text.starts_with("8 metric read(s) failed on jolokia http://h/j (0 read): m0: broken; ")
    );
    assert!(text.ends_with("m4: broken; and 3 more"), "{text}");
}
