//! Attacks on the trust boundaries that need real parts: team webhook URLs
//! aimed at internal addresses (SSRF) against a real local HTTP receiver,
//! and patterns that try to escape their anchors through the real store.
//! See docs/security.md.

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};
use lagwatch_model::{AlertSettings, Notification};
use lagwatch_sinks::{DestinationPolicy, MonitorWebhookSink, Sink, SinkError, SinksConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A real HTTP receiver: answers 200 to anything and counts requests.
struct Receiver {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(bind: &str) -> Receiver {
        let listener = TcpListener::bind(bind).await.expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    let mut seen = Vec::new();
                    // Read the head and the announced body, then answer.
                    loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if seen.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Receiver { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn alert_to(urls: &[String]) -> Notification {
    let monitor = MonitorBuilder::new("billing")
        .id(7)
        .lag_threshold(5)
        .emails(&[])
        .alerting(AlertSettings {
            webhooks: urls.to_vec(),
            ..AlertSettings::default()
        })
        .build();
    AlertEventBuilder::firing(&monitor)
        .fingerprint("lag_threshold/7")
        .lag(10, 10)
        .ts_ms(1_700_000_000_000)
        .notification()
}

fn policy(allow: &[&str]) -> DestinationPolicy {
    DestinationPolicy::new(&SinksConfig {
        allow_private: allow.iter().map(|a| a.to_string()).collect(),
    })
    .expect("policy")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// Every internal form of the receiver's address is refused for good and
/// the receiver sees no request; allowed, the same receiver gets the alert.
#[tokio::test]
async fn team_webhooks_cannot_reach_internal_addresses() {
    let v4 = Receiver::start("127.0.0.1:0").await;
    let port = v4.port;
    let default_policy = policy(&[])
        // A public-looking name that resolves to the receiver: what a
        // hostile DNS zone would answer.
        .with_static_host("hooks.attacker.example", &[ip("127.0.0.1")])
        .with_static_host(
            "mixed.attacker.example",
            &[ip("93.184.216.34"), ip("127.0.0.1")],
        )
        .with_static_host("metadata.attacker.example", &[ip("169.254.169.254")]);
    let sink = MonitorWebhookSink::build(Duration::from_secs(3), default_policy).expect("build");
    for (url, kind) in [
        (format!("http://127.0.0.1:{port}/hook"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hook"), "loopback"),
        (format!("http://[::ffff:7f00:1]:{port}/"), "loopback"),
        (format!("http://2130706433:{port}/"), "loopback"),
        (format!("http://localhost:{port}/hook"), "loopback"),
        (format!("http://LOCALHOST.:{port}/hook"), "loopback"),
        (
            format!("http://hooks.attacker.example:{port}/hook"),
            "loopback",
        ),
        (
            format!("http://mixed.attacker.example:{port}/hook"),
            "loopback",
        ),
        (
            "http://metadata.attacker.example/latest/meta-data/".to_string(),
            "link-local",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("http://10.0.0.1/".to_string(), "private"),
        ("http://100.64.0.1/".to_string(), "shared (CGNAT)"),
        ("http://[fd00::1]/".to_string(), "unique-local"),
        ("http://[fe80::1]/".to_string(), "link-local"),
        ("http://0.0.0.0/".to_string(), "unspecified"),
    ] {
        let started = Instant::now();
        let error = sink
            .deliver(&alert_to(std::slice::from_ref(&url)))
            .await
            .expect_err(&url);
        assert!(
            matches!(error, SinkError::Rejected(_)),
            "{url}: must be a permanent failure: {error}"
        );
        let text = error.to_string();
        assert!(text.contains(kind), "{url}: {text}");
        assert!(text.contains("sinks.allow_private"), "{url}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{url}: no connection attempt"
        );
    }
    assert_eq!(v4.hits(), 0, "the receiver must not have been reached");

    // The operator allows the internal receiver: delivered and received.
    let allowed = MonitorWebhookSink::build(
        Duration::from_secs(3),
        policy(&["127.0.0.1/32"]).with_static_host("hooks.internal.test", &[ip("127.0.0.1")]),
    )
    .expect("build");
    allowed
        .deliver(&alert_to(&[
            format!("http://127.0.0.1:{port}/a"),
            format!("http://hooks.internal.test:{port}/b"),
        ]))
        .await
        .expect("allowlisted receiver");
    assert_eq!(v4.hits(), 2);
    // Allowed by name only: the name reaches it, the bare address does not.
    let by_name = MonitorWebhookSink::build(
        Duration::from_secs(3),
        policy(&["hooks.internal.test"])
            .with_static_host("hooks.internal.test", &[ip("127.0.0.1")]),
    )
    .expect("build");
    by_name
        .deliver(&alert_to(&[format!("http://hooks.internal.test:{port}/c")]))
        .await
        .expect("allowlisted name");
    assert_eq!(v4.hits(), 3);
    let error = by_name
        .deliver(&alert_to(&[format!("http://127.0.0.1:{port}/d")]))
        .await
        .expect_err("address not allowed");
    assert!(matches!(error, SinkError::Rejected(_)), "{error}");
    assert_eq!(v4.hits(), 3);
}

/// The registration check: the store refuses literal internal addresses and
/// `localhost` naming the field, and patterns that would escape `^(?:..)$`.
#[tokio::test]
async fn the_store_refuses_internal_webhooks_and_escaping_patterns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = lagwatch_store::MonitorStore::connect(&url)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    for webhook in [
        "http://127.0.0.1:9000/x",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/x",
        "http://169.254.169.254/",
        "https://10.1.2.3/",
    ] {
        let mut monitor = common::lag_monitor("billing", "orders", "a@example.com");
        monitor.alerting.webhooks = vec![webhook.to_string()];
        let error = store.add(&monitor).await.expect_err(webhook).to_string();
        assert!(error.contains("alerting.webhooks"), "{webhook}: {error}");
    }
    for pattern in ["a)|(?:.*", "x)|(.*", ")|("] {
        let mut monitor = common::lag_monitor(pattern, "orders", "a@example.com");
        monitor.group_match = lagwatch_model::GroupMatch::Regex;
        let error = store.add(&monitor).await.expect_err(pattern).to_string();
        assert!(error.contains("consumer_group"), "{pattern}: {error}");
    }
    let mut fine = common::lag_monitor("billing", "orders", "a@example.com");
    fine.alerting.webhooks = vec!["https://hooks.example.com/x".into()];
    store.add(&fine).await.expect("a public webhook is fine");
}
