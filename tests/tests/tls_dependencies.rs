//! TLS to every dependency other than Kafka (whose TLS tests are in
//! `tls.rs`): ClickHouse over https with LZ4, JMX endpoints over https with
//! basic auth, the monitor database (MariaDB) with TLS, and SMTP AUTH
//! refused over plaintext. Every server here is private to the test and
//! uses certificates made at test time by `tests/infra/tls-certs.sh`; a
//! client trusting an unrelated CA must be refused each time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lagwatch_collector::jmx::{BrokerEndpoint, EndpointKind, IdleCorrection, JmxConfig, JmxPoller};
use lagwatch_history::{ClickHouseCompression, ClickHouseConfig};
use lagwatch_model::{BrokerSample, Secret};
use lagwatch_store::MonitorStore;

/// Throw-away CA and certificates for 127.0.0.1 / localhost.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let status = Command::new("bash")
            .arg(common::repo_root().join("tests/infra/tls-certs.sh"))
            .arg(dir.path())
            .status()?;
        anyhow::ensure!(status.success(), "tls-certs.sh failed");
        Ok(Certs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn python() -> String {
    std::env::var("LAGWATCH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private ClickHouse test front serving https only.
struct HttpsClickHouse {
    _process: Killed,
    port: u16,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl HttpsClickHouse {
    fn start(certs: &Certs) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let port = common::free_port();
        let log = data.path().join("front.log");
        let process = Command::new(python())
            .arg(common::repo_root().join("tests/infra/clickhouse_http.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data")
            .arg(data.path().join("db"))
            .arg("--tls-cert")
            .arg(certs.path("server.pem"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(HttpsClickHouse {
            _process: Killed(process),
            port,
            log,
            _data: data,
        })
    }

    fn config(&self, ca_file: &Path) -> ClickHouseConfig {
        ClickHouseConfig {
            ca_file: Some(ca_file.to_path_buf()),
            database: common::unique("lw_tls"),
            ..ClickHouseConfig::with_url(format!("https://127.0.0.1:{}", self.port))
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[derive(Debug, PartialEq, clickhouse::Row, serde::Serialize, serde::Deserialize)]
struct LagRow {
    consumer_group: String,
    partition: i32,
    lag: i64,
}

#[tokio::test]
async fn clickhouse_over_https_with_lz4_and_a_private_ca() -> anyhow::Result<()> {
    let started = Instant::now();
    let certs = Certs::make()?;
    let front = HttpsClickHouse::start(&certs)?;
    let config = front.config(&certs.path("ca.pem"));
    assert_eq!(
        config.compression,
        ClickHouseCompression::Lz4,
        "LZ4 is the default"
    );

    // Ready once the front answers over https (the engine loads first).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match lagwatch_history::client(&config)
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
        {
            Ok(1) => break,
            Ok(other) => anyhow::bail!("SELECT 1 gave {other}"),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                anyhow::bail!("https front never answered: {error}\n{}", front.log_text())
            }
        }
    }

    // lagwatch's own schema goes over https, then rows travel LZ4-compressed
    // both ways.
    lagwatch_history::migrate(&config).await?;
    let client = lagwatch_history::client(&config).with_database(&config.database);
    client
        .query("CREATE TABLE tls_rows (consumer_group String, partition Int32, lag Int64) ENGINE = MergeTree ORDER BY (consumer_group, partition)")
        .execute()
        .await?;
    let rows: Vec<LagRow> = (0..2_000)
        .map(|i| LagRow {
            consumer_group: format!("group-{}", i % 7),
            partition: i,
            lag: i64::from(i) * 1_000,
        })
        .collect();
    let mut insert = client.insert::<LagRow>("tls_rows").await?;
    for row in &rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    let read: Vec<LagRow> = client
        .query("SELECT ?fields FROM tls_rows ORDER BY partition")
        .fetch_all()
        .await?;
    assert_eq!(
        read, rows,
        "rows read back over https equal the rows written"
    );
    let log = front.log_text();
    assert!(
        log.contains("[lz4-in]") && log.contains("INSERT INTO"),
        "the insert travelled as LZ4 blocks (checksums verified by the front):\n{log}"
    );
    assert!(
        log.contains("[lz4-frame-out]"),
        "answers travelled as LZ4 frames:\n{log}"
    );

    // Plain bodies still work when asked for.
    let plain = ClickHouseConfig {
        compression: ClickHouseCompression::None,
        ..config.clone()
    };
    let count: u64 = lagwatch_history::client(&plain)
        .with_database(&plain.database)
        .query("SELECT count() FROM tls_rows")
        .fetch_one()
        .await?;
    assert_eq!(count, 2_000);

    // Trusting an unrelated CA: refused, and the password written into the
    // URL does not show in the error.
    let wrong_ca = ClickHouseConfig {
        url: format!("https://lagwatch:p@ss@w0rd@127.0.0.1:{}", front.port),
        ca_file: Some(certs.path("other-ca.pem")),
        ..config.clone()
    };
    let refused = lagwatch_history::migrate(&wrong_ca)
        .await
        .expect_err("a server signed by another CA is refused");
    let text = format!("{refused} {:?}", lagwatch_model::error_chain(&refused));
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains("w0rd") && !text.contains("ss@"), "{text}");
    assert!(text.contains("lagwatch:***@127.0.0.1"), "{text}");

    // A CA file that cannot be read is reported as such.
    let missing = ClickHouseConfig {
        ca_file: Some(certs.path("no-such-ca.pem")),
        ..config.clone()
    };
    let error = lagwatch_history::transport::check_tls(&missing)
        .expect_err("missing CA file")
        .to_string();
    assert!(
        error.contains("clickhouse.ca_file") && error.contains("no-such-ca.pem"),
        "{error}"
    );

    eprintln!("clickhouse_over_https_with_lz4: {:?}", started.elapsed());
    Ok(())
}

/// The canned https JMX endpoint (`tests/infra/tls_http_stub.py`) that
/// requires basic auth `monitor` / [`JMX_PASSWORD`].
struct JmxStub {
    _process: Killed,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

const JMX_USER: &str = "monitor";
const JMX_PASSWORD: &str = "jmx-p@ss:word";

impl JmxStub {
    fn start(certs: &Certs) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = common::free_port();
        let log = dir.path().join("stub.log");
        let process = Command::new(python())
            .arg(common::repo_root().join("tests/infra/tls_http_stub.py"))
            .args(["--port", &port.to_string(), "--user", JMX_USER])
            .arg("--cert")
            .arg(certs.path("server.pem"))
            .env("LAGWATCH_STUB_PASSWORD", JMX_PASSWORD)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(JmxStub {
            _process: Killed(process),
            port,
            log,
            _dir: dir,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn endpoints(&self, password: &str) -> Vec<BrokerEndpoint> {
        let endpoint = |broker, kind, path: &str| BrokerEndpoint {
            broker,
            kind,
            url: format!("https://127.0.0.1:{}{path}", self.port),
            username: Some(JMX_USER.to_string()),
            password: Some(Secret::new(password)),
            metrics: Some(vec!["UnderReplicatedPartitions".to_string()]),
        };
        vec![
            endpoint(1, EndpointKind::Jolokia, "/jolokia"),
            endpoint(2, EndpointKind::Prometheus, "/metrics"),
        ]
    }
}

fn jmx_config(endpoints: Vec<BrokerEndpoint>, ca_file: &Path) -> JmxConfig {
    let mut config = JmxConfig::new(endpoints);
    config.ca_file = Some(ca_file.to_path_buf());
    config.idle_correction = IdleCorrection::None;
    config.timeout = Duration::from_secs(5);
    config
}

fn under_replicated(sample: &BrokerSample) -> Option<f64> {
    sample
        .metrics
        .iter()
        .find(|m| m.name == "UnderReplicatedPartitions")
        .map(|m| m.value)
}

#[tokio::test]
async fn jmx_endpoints_over_https_with_basic_auth() -> anyhow::Result<()> {
    let started = Instant::now();
    let certs = Certs::make()?;
    let stub = JmxStub::start(&certs)?;
    let ca = certs.path("ca.pem");

    // Both endpoint kinds read over https with the right credentials (the
    // stub may still be starting: wait for a complete sample).
    let mut poller = JmxPoller::new("tls", jmx_config(stub.endpoints(JMX_PASSWORD), &ca))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let samples = poller.sample_cluster(lagwatch_model::now_ms()).await;
        if samples.iter().all(|s| s.error.is_none()) || Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_broker = |id: i32| samples.iter().find(|s| s.broker == id);
    let jolokia = by_broker(1).ok_or_else(|| anyhow::anyhow!("no sample of broker 1"))?;
    let exporter = by_broker(2).ok_or_else(|| anyhow::anyhow!("no sample of broker 2"))?;
    assert_eq!(jolokia.error, None, "{}", stub.log_text());
    assert_eq!(exporter.error, None, "{}", stub.log_text());
    assert_eq!(under_replicated(jolokia), Some(7.0));
    assert_eq!(under_replicated(exporter), Some(5.0));
    assert!(stub.log_text().contains("POST /jolokia auth ok"));
    assert!(stub.log_text().contains("GET /metrics auth ok"));

    // A wrong password: the sample says 401, and no password shows.
    let mut refused = JmxPoller::new("tls", jmx_config(stub.endpoints("wrong-secret"), &ca))?;
    for sample in refused.sample_cluster(lagwatch_model::now_ms()).await {
        let error = sample.error.unwrap_or_default();
        assert!(error.contains("401"), "{error}");
        assert!(
            !error.contains("wrong-secret") && !error.contains("p@ss"),
            "{error}"
        );
    }

    // Credentials written into the URL, and a server signed by an unrelated
    // CA: refused on the certificate, URL password hidden in the sample.
    let mut in_url = stub.endpoints(JMX_PASSWORD);
    for endpoint in &mut in_url {
        endpoint.url = endpoint
            .url
            .replace("https://", &format!("https://{JMX_USER}:url-p@ssw0rd@"));
    }
    let mut wrong_ca = JmxPoller::new("tls", jmx_config(in_url, &certs.path("other-ca.pem")))?;
    for sample in wrong_ca.sample_cluster(lagwatch_model::now_ms()).await {
        let error = sample.error.unwrap_or_default();
        assert!(error.to_lowercase().contains("certificate"), "{error}");
        assert!(
            !error.contains("ssw0rd") && !error.contains(JMX_PASSWORD),
            "{error}"
        );
        assert!(
            error.contains(&format!("{JMX_USER}:***@127.0.0.1")),
            "{error}"
        );
    }

    // A CA file that does not exist is refused when the poller is built.
    let missing = JmxPoller::new(
        "tls",
        jmx_config(stub.endpoints(JMX_PASSWORD), &certs.path("missing.pem")),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        missing.contains("ca_file") && missing.contains("missing.pem"),
        "{missing}"
    );

    eprintln!(
        "jmx_endpoints_over_https_with_basic_auth: {:?}",
        started.elapsed()
    );
    Ok(())
}

/// A private MariaDB with TLS on (`tests/infra/private-mariadb-tls.sh`);
/// its user `lagwatch_tls` must connect over TLS (REQUIRE SSL).
struct TlsMariaDb {
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsMariaDb {
    fn start(certs: &Certs) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = common::free_port();
        let status = Command::new("bash")
            .arg(common::repo_root().join("tests/infra/private-mariadb-tls.sh"))
            .arg("start")
            .arg(dir.path())
            .arg(port.to_string())
            .arg(certs.dir.path())
            .status()?;
        anyhow::ensure!(status.success(), "private-mariadb-tls.sh start failed");
        Ok(TlsMariaDb { dir, port })
    }

    fn url(&self, query: &str) -> String {
        format!(
            "mysql://lagwatch_tls:lagwatch_tls@127.0.0.1:{}/lagwatch?{query}",
            self.port
        )
    }
}

impl Drop for TlsMariaDb {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(common::repo_root().join("tests/infra/private-mariadb-tls.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn monitor_store_over_mysql_tls_with_a_private_ca() -> anyhow::Result<()> {
    let started = Instant::now();
    let certs = Certs::make()?;
    let mariadb = TlsMariaDb::start(&certs)?;
    let ca = certs.path("ca.pem");

    // VERIFY_CA with the test CA: migrations and a monitor round trip.
    let url = mariadb.url(&format!("ssl-mode=VERIFY_CA&ssl-ca={}", ca.display()));
    let store = MonitorStore::connect(&url).await?;
    store.migrate().await?;
    let added = store
        .add(&common::lag_monitor(
            "tls-group",
            "tls-topic",
            "ops@example.com",
        ))
        .await?;
    let listed = store.list().await?;
    assert!(listed.iter().any(|m| m.id == added.id), "{listed:?}");
    store.close().await;

    // The user must use TLS: the same account without TLS is refused, so
    // the round trip above did go over TLS.
    let plaintext = MonitorStore::connect(&mariadb.url("ssl-mode=DISABLED"))
        .await
        .expect_err("REQUIRE SSL refuses a plaintext connection")
        .to_string();
    assert!(plaintext.contains("Access denied"), "{plaintext}");

    // An unrelated CA: refused, and the password is not in the error.
    let other = certs.path("other-ca.pem");
    let refused = MonitorStore::connect(
        &mariadb.url(&format!("ssl-mode=VERIFY_CA&ssl-ca={}", other.display())),
    )
    .await
    .expect_err("a server signed by another CA is refused");
    let text = lagwatch_model::error_chain(&refused);
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(text.contains("lagwatch_tls:***@127.0.0.1"), "{text}");
    assert!(!text.contains("lagwatch_tls@"), "{text}");

    eprintln!("monitor_store_over_mysql_tls: {:?}", started.elapsed());
    Ok(())
}
