//! The security suite's walk, as an attacker would try it, through the
//! whole running agent (collector, evaluator, history and API in one
//! process, real Kafka, ClickHouse and SMTP capture): consumer groups with
//! hostile names — quotes, a backslash, SQL, unicode, and a CRLF followed
//! by a forged `Bcc:` header — are created on the broker and picked up by
//! a team's group pattern; their names must arrive byte-exact in the
//! samples, ClickHouse, the API's status and alert history, and in the
//! e-mail without forging a header. A second team then tries every
//! endpoint on the first team's monitor and groups. The other boundaries
//! have their own tests (docs/security.md lists them): dashboards on
//! these byte strings in `dashboards.rs`, SSRF in `security.rs`, slowloris
//! and token guessing in `http_hardening.rs` and `tenancy.rs`.

mod common;

use std::time::Duration;

use anyhow::{ensure, Context};
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const ADMIN_TOKEN: &str = "walk-admin-token-0123456789";

/// A team API client.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// Issues a token for `team` with the admin token.
async fn team_client(http: &reqwest::Client, base: &str, team: &str) -> anyhow::Result<Client> {
    let admin = Client {
        http: http.clone(),
        base: base.to_string(),
        token: ADMIN_TOKEN.to_string(),
    };
    let (status, issued) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/teams/{team}/tokens"),
            None,
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED,
        "token for {team}: {status} {issued}"
    );
    Ok(Client {
        http: http.clone(),
        base: base.to_string(),
        token: issued["token"].as_str().context("token")?.to_string(),
    })
}

fn group_names(value: &Value, list: &str) -> Vec<String> {
    let mut names: Vec<String> = value[list]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["consumer_group"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_stay_data_and_teams_stay_apart_through_the_running_agent(
) -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("walk");
    let topic = format!("{id}_orders");
    let quoted = format!("{id}-o'brien \\ \" x' OR 1=1 -- ünï 💥");
    let forged_header = format!("{id}-evil\r\nBcc: attacker@evil.example");
    let mut hostile = vec![quoted.clone(), forged_header.clone()];
    hostile.sort();
    let recipient = format!("pay-{id}@example.com");
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");

    // Both groups sit 900 behind on a one-partition topic.
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, 1_000).await?;
    for group in &hostile {
        common::commit_offsets(group, &topic, 1, 100)?;
    }

    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    // The HTTP listener is bound here on port 0 (`topology::run_on`).
    let path = common::write_config(dir.path(), &store_url, &metrics_topic, &database, 0)?;
    // Ownership: payments owns every group starting with the test id,
    // search owns `search-*` only.
    let mut text = std::fs::read_to_string(&path)?;
    text.push_str(&format!(
        r#"
[api]
admin_token = "{ADMIN_TOKEN}"

[teams.payments]
groups = ["{id}-*"]

[teams.search]
groups = ["search-*"]
"#
    ));
    std::fs::write(&path, text)?;
    let config = AppConfig::load(&path)?;
    let shutdown = CancellationToken::new();
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", main.local_addr()?);
    let agent = tokio::spawn(topology::run_on(
        config,
        Roles {
            collector: true,
            evaluator: true,
            history: true,
        },
        true,
        topology::Listeners {
            main,
            metrics: None,
        },
        shutdown.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    common::eventually_async("the API answers", Duration::from_secs(30), || async {
        let response = http.get(format!("{base}/healthz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await?;

    let result = async {
        let payments = team_client(&http, &base, "payments").await?;
        let search = team_client(&http, &base, "search").await?;

        // A control character in a typed name is refused, naming the field.
        let (status, refused) = payments
            .call(
                reqwest::Method::POST,
                "/api/v1/monitors",
                Some(json!({
                    "cluster": "local", "consumer_group": forged_header,
                    "topics": [topic], "lag_threshold": 500, "emails": [recipient],
                })),
            )
            .await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && refused["error"]["field"] == "consumer_group",
            "control characters in a typed group: {status} {refused}"
        );
        // Groups on the broker can be named anything: a pattern picks them up.
        let (status, monitor) = payments
            .call(
                reqwest::Method::POST,
                "/api/v1/monitors",
                Some(json!({
                    "cluster": "local", "consumer_group": format!("{id}-[\\s\\S]*"),
                    "group_match": "regex", "topics": [topic],
                    "lag_threshold": 500, "emails": [recipient],
                })),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "{status} {monitor}");
        let monitor_id = monitor["id"].as_i64().context("monitor id")?;

        // Status: both names, byte-exact, with their lag.
        let status_path = format!("/api/v1/monitors/{monitor_id}/status");
        let last = std::sync::Mutex::new(Value::Null);
        let seen = common::eventually_async("status of both groups", Duration::from_secs(90), || async {
            let (code, body) = payments.get(&status_path).await.ok()?;
            if let Ok(mut last) = last.lock() {
                *last = body.clone();
            }
            (code == StatusCode::OK && group_names(&body, "groups") == hostile).then_some(body)
        })
        .await
        .with_context(|| format!("last status: {:?}", last.lock().map(|l| l.to_string())))?;
        for group in seen["groups"].as_array().context("groups")? {
            let lag: i64 = group["partitions"]
                .as_array()
                .context("partitions")?
                .iter()
                .filter_map(|p| p["lag"].as_i64())
                .sum();
            ensure!(lag == 900, "lag of {}: {lag}", group["consumer_group"]);
        }

        // E-mail: one firing mail per group; the CRLF did not forge a header.
        let mails = common::eventually("a firing mail per group", Duration::from_secs(90), || {
            let mails: Vec<String> = common::mails_containing(&recipient)
                .into_iter()
                .filter(|m| m.contains(&id) && m.contains("[FIRING] lag of group"))
                .collect();
            (mails.len() >= 2).then_some(mails)
        })
        .await?;
        for mail in &mails {
            let headers = mail.split("\r\n\r\n").next().unwrap_or_default();
            ensure!(
                !headers
                    .lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
                "a group name forged a header:\n{headers}"
            );
            // Nor did it draw a line of its own in the text or HTML body:
            // control characters of names are shown escaped.
            ensure!(
                !mail.lines().any(|l| l.starts_with("Bcc:")),
                "a group name drew a line of its own:\n{mail}"
            );
            let envelope = headers
                .lines()
                .find(|l| l.starts_with("X-Envelope-To:"))
                .unwrap_or_default();
            ensure!(
                envelope.contains(&recipient) && !envelope.contains("evil.example"),
                "envelope recipients: {envelope}"
            );
        }

        // ClickHouse: the names as bytes, not as SQL.
        let clickhouse = clickhouse::Client::default()
            .with_url(common::clickhouse_url())
            .with_database(&database)
            .with_compression(clickhouse::Compression::None)
            .with_validation(false);
        let stored = common::eventually_async("both groups in ClickHouse", Duration::from_secs(60), || async {
            let mut names: Vec<String> = clickhouse
                .query("SELECT DISTINCT consumer_group FROM lag_samples WHERE startsWith(consumer_group, ?)")
                .bind(&id)
                .fetch_all()
                .await
                .ok()?;
            names.sort();
            (names == hostile).then_some(names)
        })
        .await?;
        ensure!(stored == hostile);
        let history = common::eventually_async("alert history of both groups", Duration::from_secs(60), || async {
            let (code, body) = payments.get("/api/v1/alerts/history").await.ok()?;
            (code == StatusCode::OK && group_names(&body, "events") == hostile).then_some(())
        })
        .await;
        history?;

        // The other team, on every endpoint of that monitor and its groups.
        let monitor_path = format!("/api/v1/monitors/{monitor_id}");
        for (method, path, body) in [
            (reqwest::Method::GET, monitor_path.clone(), None),
            (reqwest::Method::GET, status_path.clone(), None),
            (
                reqwest::Method::PUT,
                monitor_path.clone(),
                Some(json!({"cluster": "local", "consumer_group": "search-x", "lag_threshold": 1})),
            ),
            (reqwest::Method::DELETE, monitor_path.clone(), None),
        ] {
            let (code, answer) = search.call(method.clone(), &path, body).await?;
            ensure!(code == StatusCode::NOT_FOUND, "{method} {path}: {code} {answer}");
        }
        let (code, listed) = search.get("/api/v1/monitors").await?;
        ensure!(
            code == StatusCode::OK && listed["monitors"].as_array().is_some_and(Vec::is_empty),
            "monitor list: {code} {listed}"
        );
        for path in ["/api/v1/alerts", "/api/v1/alerts/history", "/api/v1/alerts/history?team=payments"] {
            let (code, answer) = search.get(path).await?;
            let list = if path == "/api/v1/alerts" { "alerts" } else { "events" };
            ensure!(
                code == StatusCode::OK && group_names(&answer, list).is_empty(),
                "{path}: {code} {answer}"
            );
        }
        let (code, answer) = search
            .call(
                reqwest::Method::POST,
                "/api/v1/silences",
                Some(json!({"monitor_id": monitor_id, "duration_secs": 600, "comment": "x"})),
            )
            .await?;
        ensure!(
            code == StatusCode::BAD_REQUEST && answer["error"]["field"] == "monitor_id",
            "silence on another team's monitor: {code} {answer}"
        );
        // Watching the groups itself: exactly (403 naming the field), or by
        // a pattern that would match them (stored, but never expanded to
        // groups search does not own).
        let (code, answer) = search
            .call(
                reqwest::Method::POST,
                "/api/v1/monitors",
                Some(json!({"cluster": "local", "consumer_group": quoted, "topics": [topic], "lag_threshold": 1})),
            )
            .await?;
        ensure!(
            code == StatusCode::FORBIDDEN && answer["error"]["field"] == "consumer_group",
            "exact foreign group: {code} {answer}"
        );
        let (code, pattern) = search
            .call(
                reqwest::Method::POST,
                "/api/v1/monitors",
                Some(json!({"cluster": "local", "consumer_group": ".*", "group_match": "regex", "topics": [topic], "lag_threshold": 1})),
            )
            .await?;
        ensure!(code == StatusCode::CREATED, "{code} {pattern}");
        let pattern_status = format!(
            "/api/v1/monitors/{}/status",
            pattern["id"].as_i64().context("id")?
        );
        // Wait until payments' groups were sampled twice more after the
        // pattern was stored (1 s cycles, 1 s monitor refresh).
        let created_ms = lagwatch_model::now_ms();
        common::eventually_async("two more collector cycles", Duration::from_secs(30), || async {
            let (_, now) = payments.get(&status_path).await.ok()?;
            let newest = now["groups"]
                .as_array()?
                .iter()
                .filter_map(|g| g["ts_ms"].as_i64())
                .min()?;
            (newest > created_ms + 2_000).then_some(())
        })
        .await?;
        let (code, answer) = search.get(&pattern_status).await?;
        ensure!(
            code == StatusCode::OK && group_names(&answer, "groups").is_empty(),
            "search's `.*` shows another team's groups: {answer}"
        );
        anyhow::Ok(())
    }
    .await;

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), agent).await;
    result?;
    stopped.context("agent did not stop")???;
    Ok(())
}
