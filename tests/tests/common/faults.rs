//! Fault-injection helpers: private services a test can kill (an SMTP
//! capture, a ClickHouse-HTTP front), a TCP blackhole, a webhook receiver,
//! and readers for what the agent shows (`/readyz`, `/metrics`, the mail
//! directory, the metrics topic, `lag_samples`).
//!
//! Everything here fails loudly with the fix when a service is missing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use lagwatch_model::{decode_message, MetricsMessage};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// The venv python `tests/infra/up.sh` installed.
pub fn python() -> String {
    std::env::var("LAGWATCH_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/lagwatch/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// Whether something accepts TCP connections on loopback `port`.
async fn accepts(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            TcpStream::connect(("127.0.0.1", port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// A python helper process of `tests/infra` on a loopback port, killed on
/// drop.
struct Helper {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    script: &'static str,
    log: PathBuf,
}

impl Helper {
    async fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("{} already running", self.script);
        }
        let script = super::repo_root().join("tests/infra").join(self.script);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(python())
            .arg(&script)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} {}; run tests/infra/up.sh",
                    python(),
                    script.display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !accepts(self.port).await {
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {} within 60 s (log {})",
                    self.script,
                    self.port,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// SIGKILL: the port refuses connections afterwards.
    fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A private SMTP capture (`tests/infra/smtp_capture.py`) writing one
/// `.eml` per mail into its own directory.
pub struct SmtpCapture {
    helper: Helper,
    pub dir: PathBuf,
}

impl SmtpCapture {
    /// Starts it on a free port with mails in `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = super::free_port();
        let mut helper = Helper {
            child: None,
            port,
            args: vec![
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--dir".into(),
                dir.display().to_string(),
            ],
            script: "smtp_capture.py",
            log: dir.with_extension("smtp.log"),
        };
        helper.start().await?;
        Ok(SmtpCapture {
            helper,
            dir: dir.to_path_buf(),
        })
    }

    pub fn port(&self) -> u16 {
        self.helper.port
    }

    /// Kills it (connections are refused until [`SmtpCapture::up`]).
    pub fn down(&mut self) -> anyhow::Result<()> {
        self.helper.kill()
    }

    /// Starts it again on the same port and directory.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        self.helper.start().await
    }
}

/// A private ClickHouse-HTTP front (`tests/infra/clickhouse_http.py`, chDB)
/// over its own data directory.
pub struct ClickHouseFront {
    helper: Helper,
}

impl ClickHouseFront {
    pub async fn start(data: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data)?;
        let port = super::free_port();
        let mut helper = Helper {
            child: None,
            port,
            args: vec![
                "--port".into(),
                port.to_string(),
                "--data".into(),
                data.display().to_string(),
            ],
            script: "clickhouse_http.py",
            log: data.with_extension("clickhouse.log"),
        };
        helper.start().await?;
        let front = ClickHouseFront { helper };
        front.wait_ready().await?;
        Ok(front)
    }

    pub fn port(&self) -> u16 {
        self.helper.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Kills the front: ClickHouse is down, its port refuses connections.
    pub fn down(&mut self) -> anyhow::Result<()> {
        self.helper.kill()
    }

    /// Starts it again over the same data.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        self.helper.start().await?;
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let url = self.url();
        super::eventually_async(
            "the private ClickHouse front",
            Duration::from_secs(60),
            || async { clickhouse_query(&url, "default", "SELECT 1").await.ok() },
        )
        .await?;
        Ok(())
    }
}

/// A TCP listener that accepts every connection and never answers (nor
/// closes); dropping it closes the listener and every held connection.
pub struct Blackhole {
    task: JoinHandle<()>,
    accepted: Arc<AtomicUsize>,
    pub addr: SocketAddr,
}

impl Blackhole {
    /// Binds `addr` (port 0 for any free port).
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Ok(Blackhole {
            task,
            accepted,
            addr,
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener with SO_REUSEADDR (a port a killed process just held).
fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr}"))?;
    Ok(socket.listen(1024)?)
}

/// An HTTP receiver that answers every request `200` and keeps the bodies.
pub struct WebhookRecorder {
    task: JoinHandle<()>,
    bodies: Arc<Mutex<Vec<String>>>,
    pub addr: SocketAddr,
}

impl WebhookRecorder {
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_requests(stream, Arc::clone(&kept)));
            }
        });
        Ok(WebhookRecorder { task, bodies, addr })
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Drop for WebhookRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves keep-alive HTTP/1.1 requests with a `Content-Length` body.
async fn serve_requests(mut stream: TcpStream, bodies: Arc<Mutex<Vec<String>>>) {
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let Some(head_end) = find(&buffer, b"\r\n\r\n") else {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let total = head_end + 4 + length;
        while buffer.len() < total {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_end + 4..total]).to_string();
        if let Ok(mut kept) = bodies.lock() {
            kept.push(body);
        }
        buffer.drain(..total);
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A host name (not `localhost`, not a literal) that resolves to an address
/// of this machine, and that address: team webhooks are refused as literal
/// or `localhost` URLs at registration, a name is checked at delivery
/// against `sinks.allow_private`.
pub async fn local_webhook_host() -> anyhow::Result<(String, IpAddr)> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .context("reading the host name")?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .with_context(|| format!("resolving this machine's name {name}"))?
        .collect();
    let ip = addresses
        .iter()
        .map(|a| a.ip())
        .find(IpAddr::is_ipv4)
        .with_context(|| format!("{name} has no IPv4 address: {addresses:?}"))?;
    Ok((name, ip))
}

/// `GET path` on the loopback `port`: status and body (10 s at most).
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {path} on port {port}"))?;
    let status = answer.status().as_u16();
    let body = answer
        .text()
        .await
        .with_context(|| format!("GET {path}: body"))?;
    Ok((status, body))
}

/// `/readyz`: the status and the JSON report.
pub async fn readyz(port: u16) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = http_get(port, "/readyz").await?;
    let report = serde_json::from_str(&body).with_context(|| format!("/readyz body {body}"))?;
    Ok((status, report))
}

/// The sum of the samples of metric `name` on `/metrics` whose labels
/// contain `labels` (e.g. `sink="email"`; empty for all).
pub async fn metric(port: u16, name: &str, labels: &str) -> anyhow::Result<f64> {
    let (status, body) = http_get(port, "/metrics").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(metric_in(&body, name, labels))
}

pub fn metric_in(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One captured mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    /// The envelope recipients.
    pub to: String,
    /// When the capture wrote it.
    pub at: SystemTime,
}

/// Every mail in a capture directory, oldest first.
pub fn mails(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<Mail> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("eml"))
        .filter_map(|e| {
            let at = e.metadata().ok()?.modified().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let text = text
                .replace("\r\n ", " ")
                .replace("\r\n\t", " ")
                .replace("\n ", " ");
            let header = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            Some(Mail {
                subject: header("Subject:"),
                to: header("X-Envelope-To:"),
                at,
            })
        })
        .collect();
    mails.sort_by_key(|m| m.at);
    mails
}

/// Mails per subject sent to `recipient`.
pub fn subject_counts(dir: &Path, recipient: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for mail in mails(dir).into_iter().filter(|m| m.to.contains(recipient)) {
        *counts.entry(mail.subject).or_insert(0) += 1;
    }
    counts
}

/// Mails to `recipient` whose subject starts with `prefix` and contains
/// `needle`.
pub fn count_mails(dir: &Path, recipient: &str, prefix: &str, needle: &str) -> usize {
    mails(dir)
        .iter()
        .filter(|m| m.to.contains(recipient) && m.subject.starts_with(prefix))
        .filter(|m| m.subject.contains(needle))
        .count()
}

/// Subject fragment of the lag-threshold alert of `group` (`[FIRING] lag
/// of group G on local is ...`, `[RESOLVED] lag of group G on local ...`).
pub fn threshold_subject(group: &str) -> String {
    format!(" lag of group {group} on local ")
}

/// Waits for the first mail to `recipient` with a subject starting with
/// `prefix` and containing `needle`; returns how long after `since` the
/// capture wrote it.
pub async fn mail_latency(
    dir: &Path,
    recipient: &str,
    prefix: &str,
    needle: &str,
    since: SystemTime,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = mails(dir).into_iter().find(|m| {
            m.to.contains(recipient) && m.subject.starts_with(prefix) && m.subject.contains(needle)
        });
        if let Some(mail) = found {
            return Ok(mail.at.duration_since(since).unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("no mail {prefix}..{needle} to {recipient} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Key of one `lag_samples` row: group, topic, partition, sample time (ms).
pub type SampleKey = (String, String, i32, i64);

/// Every row the collector published on `metrics_topic` (read to its end
/// now) for groups whose name starts with `prefix`, with how many times
/// each was published.
pub fn published_rows(
    metrics_topic: &str,
    prefix: &str,
) -> anyhow::Result<BTreeMap<SampleKey, u64>> {
    let consumer: BaseConsumer = super::client_config()
        .set("group.id", super::unique("published-reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(metrics_topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(!partitions.is_empty(), "{metrics_topic} has no partitions");
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        let (low, high) =
            consumer.fetch_watermarks(metrics_topic, *partition, Duration::from_secs(10))?;
        if high > low {
            ends.insert(*partition, high);
            assignment.add_partition_offset(metrics_topic, *partition, Offset::Offset(low))?;
        }
    }
    consumer.assign(&assignment)?;
    let mut rows = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        if Instant::now() > deadline {
            bail!("could not read {metrics_topic} to its end within 60 s: {ends:?} left");
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        let partition = message.partition();
        if ends
            .get(&partition)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&partition);
        }
        let Ok(MetricsMessage::Group(sample)) =
            decode_message(message.payload().unwrap_or_default())
        else {
            continue;
        };
        if !sample.group.starts_with(prefix) {
            continue;
        }
        for p in &sample.partitions {
            *rows
                .entry((
                    sample.group.clone(),
                    p.topic.clone(),
                    p.partition,
                    sample.ts_ms,
                ))
                .or_insert(0) += 1;
        }
    }
    Ok(rows)
}

/// Every `lag_samples` row stored for groups whose name starts with
/// `prefix` (only `[a-z0-9_]`), with how many times each is stored.
pub async fn stored_rows(
    url: &str,
    database: &str,
    prefix: &str,
) -> anyhow::Result<BTreeMap<SampleKey, u64>> {
    anyhow::ensure!(
        prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "prefix {prefix:?}"
    );
    let text = clickhouse_query(
        url,
        database,
        &format!(
            "SELECT consumer_group, topic, partition, toUnixTimestamp64Milli(ts), count() \
             FROM lag_samples WHERE startsWith(consumer_group, '{prefix}') \
             GROUP BY consumer_group, topic, partition, ts FORMAT TabSeparated"
        ),
    )
    .await?;
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [group, topic, partition, ts, count] = fields[..] else {
            bail!("unexpected row {line:?}");
        };
        rows.insert(
            (
                group.to_string(),
                topic.to_string(),
                partition.parse()?,
                ts.parse()?,
            ),
            count.parse()?,
        );
    }
    Ok(rows)
}

/// Runs `sql` on the ClickHouse HTTP interface at `url`
/// (`http://host:port`) in `database`; the body of the answer (30 s at
/// most).
pub async fn clickhouse_query(url: &str, database: &str, sql: &str) -> anyhow::Result<String> {
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/?database={database}",
            url.trim_end_matches('/')
        ))
        .body(sql.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("ClickHouse at {url}"))?;
    let status = answer.status();
    let body = answer
        .text()
        .await
        .with_context(|| format!("ClickHouse at {url}: body"))?;
    anyhow::ensure!(status.is_success(), "ClickHouse answered {status}: {body}");
    Ok(body)
}

/// Published rows not stored exactly once: (key, published, stored).
pub fn row_differences(
    published: &BTreeMap<SampleKey, u64>,
    stored: &BTreeMap<SampleKey, u64>,
) -> Vec<(SampleKey, u64, u64)> {
    let mut keys: Vec<&SampleKey> = published.keys().chain(stored.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let p = published.get(key).copied().unwrap_or(0);
            let s = stored.get(key).copied().unwrap_or(0);
            (p != 1 || s != 1).then(|| (key.clone(), p, s))
        })
        .collect()
}
