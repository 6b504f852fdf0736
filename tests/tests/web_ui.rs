//! The team web page end to end, in headless Chromium: a real `lagwatch all`
//! (collector, evaluator, API and page on one listener) over the test Kafka
//! and ClickHouse front, a consumer group with known lag, and
//! `tests/web/ui.mjs` clicking through the page like a team member: log in,
//! add a monitor for the group, wait for the collector's lag to show, edit
//! the threshold, see the alert fire, silence it, expire the silence, delete
//! the monitor. The API's audit log, silences and alert history are then
//! checked against what the page did.
//!
//! Needs `tests/infra/up.sh` (Kafka, ClickHouse front, SMTP) and
//! `tests/infra/install.sh` (Debian's Chromium, playwright-core, node). A
//! missing piece fails the test with the fix; it never skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use common::agent_process::{lagwatch_binary, AgentProcess};
use common::http::HttpClient;
use serde_json::Value;

const PARTITIONS: i32 = 3;
const MESSAGES_PER_PARTITION: usize = 1_000;
const COMMITTED: i64 = 100;
const TEAM: &str = "web";
const GRAFANA_URL: &str = "http://grafana.test:3000";
/// The whole browser walk; it normally takes well under a minute.
const UI_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_page_adds_a_monitor_that_the_collector_picks_up() -> anyhow::Result<()> {
    let browser = BrowserTools::locate()?;
    common::require_kafka()?;
    require_clickhouse()?;
    let lagwatch = lagwatch_binary()?;

    // A topic with 1,000 messages per partition and a group committed at 100.
    let id = common::unique("web");
    let topic = format!("{id}_orders");
    let group = format!("{id}_billing");
    common::create_topic(&topic, PARTITIONS).await?;
    common::produce(&topic, PARTITIONS, MESSAGES_PER_PARTITION).await?;
    common::commit_offsets(&group, &topic, PARTITIONS, COMMITTED)?;
    let expected_lag = MESSAGES_PER_PARTITION as i64 - COMMITTED;
    assert_eq!(
        common::kafka_tool_lag(&group, &topic)?,
        (0..PARTITIONS)
            .map(|p| (p, expected_lag))
            .collect::<Vec<_>>(),
        "kafka-consumer-groups agrees on the lag"
    );

    // `lagwatch all` with an empty SQLite store, a 1 s collector and an
    // admin token; a team token from the bootstrap command.
    let dir = tempfile::tempdir()?;
    let port = common::free_port();
    let admin_token = format!("admin-{id}");
    let config = write_config(dir.path(), &id, port)?;
    let team_token = create_team_token(&lagwatch, &config, &admin_token)?;
    let agent = AgentProcess::start_with_env(
        &lagwatch,
        &config,
        "all",
        &dir.path().join("lagwatch.log"),
        &[("LAGWATCH__API__ADMIN_TOKEN", admin_token.as_str())],
    )?;
    let client = HttpClient::local(port);
    let base_url = format!("http://127.0.0.1:{port}");
    common::eventually_async(
        "the web page on the agent's listener",
        Duration::from_secs(60),
        || async {
            let reply = client.get("/", None).await.ok()?;
            (reply.status == 200 && reply.body.contains("/app.js")).then_some(())
        },
    )
    .await
    .with_context(|| agent.log_tail(60))?;
    let (status, whoami) = api_json(&client, "/api/v1/whoami", &team_token).await?;
    assert_eq!(status, 200, "whoami: {whoami}");
    assert_eq!(whoami["team"], TEAM, "whoami: {whoami}");
    assert_eq!(whoami["grafana_url"], GRAFANA_URL, "whoami: {whoami}");

    // The browser walk.
    let artifacts = dir.path().join("browser");
    let started = Instant::now();
    let walk = browser.run_ui(&[
        ("LAGWATCH_WEB_URL", base_url.clone()),
        ("LAGWATCH_WEB_TOKEN", team_token.clone()),
        ("LAGWATCH_WEB_TEAM", TEAM.into()),
        ("LAGWATCH_WEB_GROUP", group.clone()),
        ("LAGWATCH_WEB_TOPIC", topic.clone()),
        ("LAGWATCH_WEB_EXPECTED_LAG", expected_lag.to_string()),
        ("LAGWATCH_WEB_PARTITIONS", PARTITIONS.to_string()),
        ("LAGWATCH_WEB_CLUSTER", "local".into()),
        ("LAGWATCH_WEB_GRAFANA_URL", GRAFANA_URL.into()),
        ("LAGWATCH_WEB_ARTIFACTS", artifacts.display().to_string()),
        ("LAGWATCH_WEB_TIMEOUT_MS", "90000".into()),
    ]);
    let walk = match walk {
        Ok(walk) => walk,
        Err(error) => {
            // Keep the screenshot: the temp dir is removed on drop.
            let kept = dir.keep();
            bail!(
                "{error:#}\nscreenshot and files kept in {}\n--- lagwatch log (tail) ---\n{}",
                kept.display(),
                agent.log_tail(60)
            );
        }
    };
    eprintln!(
        "browser walk took {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        walk["steps"]
    );
    let monitor_id = walk["monitor_id"]
        .as_i64()
        .context("the walk reports the monitor id")?;
    let silence_id = walk["silence_id"]
        .as_i64()
        .context("the walk reports the silence id")?;
    assert_eq!(walk["team"], TEAM);

    // Cross-check through the API: the audit log holds exactly what the form
    // did, in order, attributed to the team.
    let (status, audit) = api_json(&client, "/api/v1/audit?limit=100", &team_token).await?;
    assert_eq!(status, 200, "audit: {audit}");
    let mut entries: Vec<&Value> = audit["entries"]
        .as_array()
        .context("audit entries")?
        .iter()
        .filter(|e| e["monitor_id"] == monitor_id)
        .collect();
    entries.sort_by_key(|e| e["id"].as_i64());
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"], "audit: {audit}");
    assert!(
        entries.iter().all(|e| e["team"] == TEAM),
        "audit entries belong to the team: {audit}"
    );
    let created = &entries[0]["after"];
    assert_eq!(created["consumer_group"], group.as_str(), "{created}");
    assert_eq!(created["cluster"], "local", "{created}");
    assert_eq!(created["topics"], serde_json::json!([topic]), "{created}");
    assert_eq!(created["lag_threshold"], 1_000_000, "{created}");
    assert_eq!(created["for_secs"], 0, "{created}");
    let updated = &entries[1];
    assert_eq!(updated["before"]["lag_threshold"], 1_000_000, "{updated}");
    assert_eq!(
        updated["after"]["lag_threshold"],
        expected_lag / 2,
        "{updated}"
    );
    assert!(entries[2]["after"].is_null(), "{}", entries[2]);

    let (status, gone) = api_json(
        &client,
        &format!("/api/v1/monitors/{monitor_id}"),
        &team_token,
    )
    .await?;
    assert_eq!(status, 404, "the deleted monitor is gone: {gone}");

    // The silence the page created matched the alert and was expired early.
    let (status, silences) = api_json(&client, "/api/v1/silences?all=true", &team_token).await?;
    assert_eq!(status, 200, "silences: {silences}");
    let silence = silences["silences"]
        .as_array()
        .context("silences")?
        .iter()
        .find(|s| s["id"] == silence_id)
        .with_context(|| format!("silence {silence_id} in {silences}"))?;
    assert_eq!(silence["monitor_id"], monitor_id, "{silence}");
    assert_eq!(silence["rule"], "lag_threshold", "{silence}");
    assert_eq!(silence["consumer_group"], group.as_str(), "{silence}");
    let (starts, ends) = (
        silence["starts_at_ms"].as_i64().unwrap_or(0),
        silence["ends_at_ms"].as_i64().unwrap_or(i64::MAX),
    );
    assert!(
        ends - starts < 3_600_000 && ends <= lagwatch_model::now_ms(),
        "expired before its hour was up: {silence}"
    );
    let (status, active) = api_json(&client, "/api/v1/silences", &team_token).await?;
    assert_eq!(status, 200, "{active}");
    assert!(
        active["silences"]
            .as_array()
            .is_some_and(|list| list.iter().all(|s| s["id"] != silence_id)),
        "the expired silence is no longer active: {active}"
    );

    // The alert the page showed is in the history, at the edited threshold.
    let (status, history) =
        api_json(&client, "/api/v1/alerts/history?limit=100", &team_token).await?;
    assert_eq!(status, 200, "{history}");
    let fired = history["events"]
        .as_array()
        .context("history events")?
        .iter()
        .find(|e| {
            e["monitor_id"] == monitor_id && e["rule"] == "lag_threshold" && e["state"] == "firing"
        })
        .with_context(|| {
            format!("a firing lag_threshold event of monitor {monitor_id} in {history}")
        })?;
    assert_eq!(fired["max_lag"], expected_lag, "{fired}");
    assert_eq!(fired["threshold"], expected_lag / 2, "{fired}");
    assert_eq!(fired["consumer_group"], group.as_str(), "{fired}");

    drop(agent);
    Ok(())
}

/// Node, playwright-core and Chromium, as installed by tests/infra/install.sh.
struct BrowserTools {
    node: PathBuf,
    chromium: PathBuf,
    node_modules: PathBuf,
    script: PathBuf,
}

impl BrowserTools {
    /// Finds every piece or fails naming what is missing and the fix.
    fn locate() -> anyhow::Result<Self> {
        const FIX: &str = "run tests/infra/install.sh (CI does)";
        let node = std::env::var_os("LAGWATCH_NODE")
            .map(PathBuf::from)
            .or_else(|| find_in_path("node"))
            .with_context(|| format!("node is not installed: {FIX}"))?;
        let chromium = std::env::var_os("LAGWATCH_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        ensure!(
            chromium.is_file(),
            "Chromium is not installed at {} (Debian package `chromium`): {FIX}",
            chromium.display()
        );
        let node_modules = match std::env::var_os("LAGWATCH_NODE_MODULES") {
            Some(dir) => PathBuf::from(dir),
            None => cache_dir().join("node/node_modules"),
        };
        ensure!(
            node_modules.join("playwright-core/package.json").is_file(),
            "playwright-core is not installed in {}: {FIX}",
            node_modules.display()
        );
        let script = common::repo_root().join("tests/web/ui.mjs");
        ensure!(script.is_file(), "{} is missing", script.display());
        Ok(Self {
            node,
            chromium,
            node_modules,
            script,
        })
    }

    /// Runs tests/web/ui.mjs; returns its result object or its output.
    fn run_ui(&self, vars: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut command = Command::new(&self.node);
        command
            .arg(&self.script)
            .env("LAGWATCH_CHROMIUM", &self.chromium)
            .env("LAGWATCH_NODE_MODULES", &self.node_modules)
            .stdin(Stdio::null());
        for (key, value) in vars {
            command.env(key, value);
        }
        let output = run_with_timeout(command, UI_TIMEOUT).context("running tests/web/ui.mjs")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("--- tests/web/ui.mjs ---\n{stderr}");
        ensure!(
            output.status.success(),
            "the browser walk failed ({}):\n{stderr}\n{stdout}",
            output.status
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("LAGWATCH_WEB_RESULT "))
            .with_context(|| format!("no LAGWATCH_WEB_RESULT line in:\n{stdout}"))?;
        serde_json::from_str(line).context("parsing LAGWATCH_WEB_RESULT")
    }
}

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAGWATCH_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/lagwatch")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Waits for `command` at most `timeout`, killing it past that.
fn run_with_timeout(
    mut command: Command,
    timeout: Duration,
) -> anyhow::Result<std::process::Output> {
    let dir = tempfile::tempdir()?;
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "timed out after {timeout:?}; output so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Ok(std::process::Output {
        status,
        stdout: std::fs::read(&out_path)?,
        stderr: std::fs::read(&err_path)?,
    })
}

fn require_clickhouse() -> anyhow::Result<()> {
    let url = common::clickhouse_url();
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let socket: std::net::SocketAddr = address
        .parse()
        .with_context(|| format!("ClickHouse URL {url} is not http://IP:PORT"))?;
    std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(5)).with_context(|| {
        format!("the ClickHouse front is not reachable at {url}: run tests/infra/up.sh")
    })?;
    Ok(())
}

fn write_config(dir: &Path, id: &str, http_port: u16) -> anyhow::Result<PathBuf> {
    let (smtp_host, smtp_port) = common::smtp();
    let text = format!(
        r#"
[store]
url = "sqlite://{store}"

[clusters.local]
bootstrap_servers = "{kafka}"

[metrics_topic]
cluster = "local"
topic = "{id}_samples"
partitions = 3

[collector]
interval = "1s"
monitor_refresh = "1s"

[evaluator]
consumer_group = "{id}_evaluator"

[clickhouse]
url = "{clickhouse}"
database = "lagwatch_{id}"
flush_interval = "200ms"

[email]
host = "{smtp_host}"
port = {smtp_port}
from = "lagwatch <lagwatch@localhost>"
timeout = "5s"

[http]
listen = "127.0.0.1:{http_port}"

[api]
grafana_url = "{GRAFANA_URL}"
"#,
        store = dir.join("monitors.db").display(),
        kafka = common::kafka(),
        clickhouse = common::clickhouse_url(),
    );
    let path = dir.join("lagwatch.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// `lagwatch tokens add --team web`: prints the new token once.
fn create_team_token(lagwatch: &Path, config: &Path, admin_token: &str) -> anyhow::Result<String> {
    // The store commands open an existing store only: create it first.
    let migrated = Command::new(lagwatch)
        .args(["migrate", "--config"])
        .arg(config)
        .output()
        .context("running lagwatch migrate")?;
    ensure!(
        migrated.status.success(),
        "lagwatch migrate failed: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let output = Command::new(lagwatch)
        .args(["tokens", "add", "--team", TEAM, "--config"])
        .arg(config)
        .env("LAGWATCH__API__ADMIN_TOKEN", admin_token)
        .output()
        .context("running lagwatch tokens add")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "lagwatch tokens add failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|word| word.starts_with("lw_") && word.len() == 46)
        .map(str::to_string)
        .with_context(|| format!("no lw_ token in the output of tokens add: {stdout}"))
}

/// `GET path` with the team `token`: (status, parsed JSON; `Null` when
/// the body is empty).
async fn api_json(client: &HttpClient, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
    let reply = client.get(path, Some(token)).await?;
    let value = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&reply.body).with_context(|| format!("GET {path}: {}", reply.body))?
    };
    Ok((reply.status, value))
}
