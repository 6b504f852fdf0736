//! The HTTP sinks (webhook, Slack, PagerDuty) against a real HTTP/1.1
//! receiver (axum) started in each test on a free 127.0.0.1 port: what
//! arrives on the wire, retries through [`SinkRunner`] while the receiver
//! is down, no retry of a refused request, and the request timeout.
//!
//! Needs no external service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};
use lagwatch_model::{AlertState, Notification, Secret};
use lagwatch_sinks::{
    PagerDutyConfig, PagerDutySeverity, PagerDutySink, Sink, SinkMetrics, SinkRunner, SlackConfig,
    SlackSink, WebhookConfig, WebhookSink,
};
use prometheus::Registry;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A local receiver recording every request and answering `status`.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

async fn record(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    receiver.requests.lock().expect("lock").push(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    StatusCode::from_u16(receiver.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// Serves on `addr` (port 0 for a free one) until the test ends.
    async fn start(addr: SocketAddr, status: u16) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind receiver");
        let receiver = Receiver {
            addr: listener.local_addr().expect("local addr"),
            requests: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
        };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `count` requests arrived, then a little more so
    /// that a duplicate would show.
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while self.requests().len() < count {
            assert!(
                Instant::now() < deadline,
                "expected {count} request(s) within {within:?}, got {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.requests()
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

/// Port 0: the receiver takes any free port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn alert(state: AlertState) -> Notification {
    let monitor = MonitorBuilder::new("billing \"v2\"")
        .id(42)
        .cluster("prod-eu")
        .emails(&[])
        .build();
    let firing = AlertEventBuilder::firing(&monitor)
        .fingerprint("lag_threshold/42")
        .lag(1200, 3000)
        .ts_ms(1_700_000_000_000);
    match state {
        AlertState::Firing => firing
            .partition("orders", 0, 1200)
            .partition("orders", 3, 900)
            .notification(),
        AlertState::Resolved => firing.resolved().notification(),
    }
}

fn runner_for<S: Sink>(sink: S) -> SinkRunner<S> {
    let registry = Registry::new();
    let mut runner = SinkRunner::new(sink, SinkMetrics::register(&registry).expect("metrics"));
    runner.initial_backoff = Duration::from_millis(100);
    runner.max_backoff = Duration::from_millis(400);
    runner
}

fn webhook_config(url: String) -> WebhookConfig {
    WebhookConfig {
        name: Some("test".into()),
        url: Secret::new(url),
        headers: BTreeMap::from([
            ("Authorization".into(), Secret::new("Bearer s3cret")),
            ("X-Lagwatch-Test".into(), Secret::new("yes")),
        ]),
        template: Some(
            r#"{"title": "{{summary}}", "group": "{{consumer_group}}", "state": "{{state}}",
                "max_lag": {{max_lag}}, "threshold": {{threshold}}, "key": "{{fingerprint}}",
                "partitions": {{partitions_json}}}"#
                .into(),
        ),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn webhook_delivers_templated_body_with_headers_once() {
    let receiver = Receiver::start(any_port(), 200).await;
    let sink = WebhookSink::build(&webhook_config(receiver.url("/hooks/lag"))).expect("build");
    let runner = runner_for(sink);
    let metrics = runner.metrics.clone();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(runner.run(rx));
    tx.send(alert(AlertState::Firing)).await.expect("send");

    let requests = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.path, "/hooks/lag");
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
    assert_eq!(request.header("x-lagwatch-test").as_deref(), Some("yes"));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = request.json();
    assert_eq!(body["group"], "billing \"v2\"");
    assert_eq!(body["state"], "firing");
    assert_eq!(body["max_lag"], 1200);
    assert_eq!(body["threshold"], 500);
    assert_eq!(body["key"], "lag_threshold/42");
    assert_eq!(body["partitions"][1]["partition"], 3);
    assert_eq!(
        body["title"],
        "[FIRING] lag of group billing \"v2\" on prod-eu is 1200 (threshold 500)"
    );

    drop(tx);
    task.await.expect("runner");
    assert_eq!(metrics.sent.with_label_values(&["webhook"]).get(), 1);
    assert_eq!(metrics.errors.with_label_values(&["webhook"]).get(), 0);
}

#[tokio::test]
async fn webhook_without_template_posts_the_alert() {
    let receiver = Receiver::start(any_port(), 204).await;
    let mut config = webhook_config(receiver.url("/"));
    config.template = None;
    let sink = WebhookSink::build(&config).expect("build");
    sink.deliver(&alert(AlertState::Resolved))
        .await
        .expect("delivered");
    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;
    let back: Notification = serde_json::from_str(&requests[0].body).expect("alert JSON");
    assert_eq!(back, alert(AlertState::Resolved));
}

#[tokio::test]
async fn pagerduty_trigger_then_resolve_share_the_dedup_key() {
    let receiver = Receiver::start(any_port(), 202).await;
    let sink = PagerDutySink::build(&PagerDutyConfig {
        url: receiver.url("/v2/enqueue"),
        routing_key: Secret::new("R0UTING"),
        severity: PagerDutySeverity::Critical,
        timeout: Duration::from_secs(5),
        dashboard_url: Some("http://grafana/d/lag".into()),
    })
    .expect("build");
    let runner = runner_for(sink);
    let metrics = runner.metrics.clone();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(runner.run(rx));
    tx.send(alert(AlertState::Firing)).await.expect("send");
    tx.send(alert(AlertState::Resolved)).await.expect("send");

    let requests = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    let trigger = requests[0].json();
    let resolve = requests[1].json();
    assert_eq!(requests[0].path, "/v2/enqueue");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], "lag_threshold/42");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(trigger["routing_key"], "R0UTING");
    assert_eq!(resolve["routing_key"], "R0UTING");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "prod-eu");
    assert_eq!(
        trigger["payload"]["custom_details"]["consumer_group"],
        "billing \"v2\""
    );
    assert!(resolve.get("payload").is_none(), "{resolve}");

    drop(tx);
    task.await.expect("runner");
    assert_eq!(metrics.sent.with_label_values(&["pagerduty"]).get(), 2);
}

#[tokio::test]
async fn slack_text_names_the_group() {
    let receiver = Receiver::start(any_port(), 200).await;
    let sink = SlackSink::build(&SlackConfig {
        webhook_url: Secret::new(receiver.url("/services/T0/B0/token")),
        timeout: Duration::from_secs(5),
        dashboard_url: Some("http://grafana/d/lag".into()),
    })
    .expect("build");
    assert!(
        runner_for(sink)
            .deliver_with_retry(&alert(AlertState::Firing))
            .await
    );
    let requests = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(requests.len(), 1);
    let text = requests[0].json()["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(text.contains("billing \"v2\""), "{text}");
    assert!(text.contains("orders[3] lag 900"), "{text}");
    assert!(text.contains("|Open the dashboard>"), "{text}");
}

#[tokio::test]
async fn receiver_down_then_back_delivers_exactly_once() {
    let addr = free_port();
    let sink = WebhookSink::build(&webhook_config(format!("http://{addr}/late"))).expect("build");
    let runner = runner_for(sink);
    let metrics = runner.metrics.clone();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(runner.run(rx));
    tx.send(alert(AlertState::Firing)).await.expect("send");

    // Two failed attempts: the runner tried, and retried, while the
    // receiver was down, and counted nothing as sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.errors.with_label_values(&["webhook"]).get() < 2 {
        assert!(
            Instant::now() < deadline,
            "fewer than two failed attempts while the receiver was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.sent.with_label_values(&["webhook"]).get(), 0);
    let receiver = Receiver::start(addr, 200).await;

    let requests = receiver.wait_for(1, Duration::from_secs(10)).await;
    drop(tx);
    task.await.expect("runner");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(requests[0].json()["key"], "lag_threshold/42");
    assert!(metrics.errors.with_label_values(&["webhook"]).get() > 0);
    assert_eq!(metrics.sent.with_label_values(&["webhook"]).get(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_and_refusals_are_not() {
    let receiver = Receiver::start(any_port(), 503).await;
    let sink = WebhookSink::build(&webhook_config(receiver.url("/"))).expect("build");
    let runner = runner_for(sink);
    let metrics = runner.metrics.clone();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(runner.run(rx));
    tx.send(alert(AlertState::Firing)).await.expect("send");
    receiver.wait_for(2, Duration::from_secs(10)).await;
    receiver.status.store(200, Ordering::SeqCst);
    drop(tx);
    task.await.expect("runner");
    assert_eq!(metrics.sent.with_label_values(&["webhook"]).get(), 1);
    let attempts = receiver.requests().len();
    assert!(attempts >= 3, "{attempts} attempts");

    let refusing = Receiver::start(any_port(), 400).await;
    let sink = WebhookSink::build(&webhook_config(refusing.url("/"))).expect("build");
    let runner = runner_for(sink);
    assert!(!runner.deliver_with_retry(&alert(AlertState::Firing)).await);
    assert_eq!(refusing.requests().len(), 1, "a 400 must not be retried");
    assert_eq!(
        runner.metrics.errors.with_label_values(&["webhook"]).get(),
        1
    );
}

#[tokio::test]
async fn silent_receiver_times_out() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = webhook_config(format!("http://{addr}/"));
    config.timeout = Duration::from_millis(500);
    let sink = WebhookSink::build(&config).expect("build");

    let started = Instant::now();
    let error = sink
        .deliver(&alert(AlertState::Firing))
        .await
        .expect_err("must time out");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert!(!error.is_permanent(), "{error}");
    let text = error.to_string();
    assert!(text.contains("timed out"), "{text}");
    assert!(!text.contains(&addr.to_string()), "URL leaked: {text}");
}

#[tokio::test]
async fn monitor_webhooks_receive_the_alert_at_every_listed_url() {
    let first = Receiver::start(any_port(), 200).await;
    let second = Receiver::start(any_port(), 204).await;
    let mut firing = alert(AlertState::Firing);
    firing.recipients.webhooks = vec![first.url("/team-a"), second.url("/team-b")];
    // The receivers are on loopback, which team webhooks may only reach
    // when the operator allows it.
    let policy = lagwatch_sinks::DestinationPolicy::new(&lagwatch_sinks::SinksConfig {
        allow_private: vec!["127.0.0.1/32".into()],
    })
    .expect("policy");
    let sink =
        lagwatch_sinks::MonitorWebhookSink::build(Duration::from_secs(5), policy).expect("build");
    let task = {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let task = tokio::spawn(runner_for(sink).run(rx));
        tx.send(firing.clone()).await.expect("queue");
        let mut no_hooks = alert(AlertState::Resolved);
        no_hooks.recipients.webhooks.clear();
        tx.send(no_hooks).await.expect("queue");
        task
    };
    let a = first.wait_for(1, Duration::from_secs(5)).await;
    let b = second.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        (a.len(), b.len()),
        (1, 1),
        "once each; no URL for the resolve"
    );
    assert_eq!(a[0].path, "/team-a");
    let back: Notification = serde_json::from_str(&b[0].body).expect("alert JSON");
    assert_eq!(back.alert, firing.alert);
    assert!(
        !b[0].body.contains("/team-a") && !b[0].body.contains("/team-b"),
        "no receiver's URL in the payload: {}",
        b[0].body
    );
    task.await.expect("runner ends when the queue closes");
}
