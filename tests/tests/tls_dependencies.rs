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

use lagwatch_history::{ClickHouseCompression, ClickHouseConfig};

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
    let config = ClickHouseConfig {
        compression: ClickHouseCompression::Lz4,
        ..front.config(&certs.path("ca.pem"))
    };

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
