//! The API under test and its client: `lagwatch`'s own wiring
//! (`topology::run_on`) started in-process on a port-0 listener with a
//! config naming cluster credentials, and the tests' HTTP client
//! ([`common::http`]) recording every answer it receives (headers and
//! body) so the scenario can prove no credential ever left the API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context};
use lagwatch::config::AppConfig;
use lagwatch_history::ClickHouseConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::common;
use crate::common::http::HttpClient;
use crate::{FILE_SECRET, SASL_PASSWORD};

pub(crate) use crate::common::http::{expect, Reply};

/// A running API plus a reqwest client that records every answer it
/// receives (for the credential scan).
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    client: HttpClient,
    pub(crate) admin: String,
    pub(crate) seen: Arc<Mutex<Vec<String>>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub(crate) config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    pub(crate) async fn start(
        store_url: &str,
        clickhouse: Option<&ClickHouseConfig>,
    ) -> anyhow::Result<Api> {
        let dir = tempfile::tempdir()?;
        let admin = format!("admin-token-{}", common::unique("a"));
        std::fs::write(dir.path().join("admin.token"), format!("{admin}\n"))?;
        std::fs::write(dir.path().join("kafka.secret"), format!("{FILE_SECRET}\n"))?;
        let clickhouse = clickhouse
            .map(|c| {
                format!(
                    "[clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n",
                    c.url, c.database
                )
            })
            .unwrap_or_default();
        let text = format!(
            r#"
[store]
url = "{store_url}"

[clusters.local]
bootstrap_servers = "127.0.0.1:1"

[clusters.secure]
bootstrap_servers = "127.0.0.1:2"
properties = {{ "security.protocol" = "SASL_PLAINTEXT", "sasl.mechanism" = "PLAIN", "sasl.username" = "svc", "sasl.password" = "{SASL_PASSWORD}" }}

[clusters.vault]
bootstrap_servers = "127.0.0.1:3"
properties = {{ "security.protocol" = "SASL_PLAINTEXT", "sasl.mechanism" = "PLAIN", "sasl.username" = "svc" }}
secret_properties = {{ "sasl.password" = {{ file = "{secret}" }} }}

[metrics_topic]
cluster = "local"

{clickhouse}
[api]
admin_token_file = "{admin_file}"
grafana_url = "http://grafana.test:3000"
# Dozens of deliberately wrong tokens follow: the failed-authentication
# limit would answer 429 (it is tested in tenancy.rs).
auth_failures_per_minute = 0
"#,
            secret = dir.path().join("kafka.secret").display(),
            admin_file = dir.path().join("admin.token").display(),
        );
        let path = dir.path().join("lagwatch.toml");
        std::fs::write(&path, text)?;
        let config = AppConfig::load(&path)?;
        let shutdown = CancellationToken::new();
        let agent = common::spawn_api_only(config, &shutdown).await?;
        let api = Api {
            addr: agent.addr,
            client: HttpClient::new(agent.addr),
            admin,
            seen: Arc::default(),
            shutdown,
            task: agent.task,
            config_path: path,
            _dir: dir,
        };
        match common::wait_until_healthy(api.addr, &api.task).await {
            Ok(()) => Ok(api),
            Err(error) => {
                api.stop().await?;
                Err(error)
            }
        }
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        common::stop_in_process(&self.shutdown, self.task).await
    }

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let reply = self.client.request(method, path, token, body).await?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("{}\n{}", reply.headers, reply.body));
        }
        Ok(reply)
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        self.request("GET", path, token, None).await
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Reply> {
        self.request(method, path, Some(token), Some(&body.to_string()))
            .await
    }

    /// A new token of `team`, issued through the admin API.
    pub(crate) async fn team_token(&self, team: &str) -> anyhow::Result<String> {
        let reply = self
            .request(
                "POST",
                &format!("/api/v1/teams/{team}/tokens"),
                Some(&self.admin),
                None,
            )
            .await?;
        ensure!(reply.status == 201, "token for {team}: {reply:?}");
        Ok(reply.json["token"]
            .as_str()
            .context("token in reply")?
            .to_string())
    }
}

/// Polls all `futures` together (every request is in flight at once) and
/// returns their outputs in order.
pub(crate) async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

pub(crate) fn monitor_body(group: &str) -> Value {
    json!({
        "cluster": "local",
        "consumer_group": group,
        "topics": ["orders", "refunds"],
        "lag_threshold": 500,
        "for_secs": 60,
        "emails": ["oncall@example.com"],
        "isolation": "read_committed",
        "time_lag": "estimate",
        "alerting": {"total_lag_threshold": 5000, "webhooks": ["https://hooks.example.com/x"]}
    })
}
