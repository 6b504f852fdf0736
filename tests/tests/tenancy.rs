//! Attacks on team boundaries and limits through `lagwatch`'s own wiring
//! (`topology::run_on`, the `api` role) on port-0 listeners over a real
//! SQLite store: one team registering monitors for another team's groups,
//! clusters and topics; a team filling the store past its quotas; a token
//! used past its expiry; a script hammering the API with one token, from
//! one address, or guessing tokens; `/metrics` kept off the API listener;
//! alert rows of another team's group (recorded before ownership) shown to
//! a team (ClickHouse front on 18123).
//! Every silence and token change is then found in the audit log with its
//! actor. See docs/security.md.
//!
//! Client addresses: Linux routes all of 127.0.0.0/8 to loopback, so the
//! client binds 127.0.0.x to be a different address to the server.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use common::http::{expect, HttpClient, Reply};
use lagwatch::config::AppConfig;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A running `lagwatch api` with the given extra configuration.
struct Api {
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    admin: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Api {
    /// `extra` goes at the top of the file, `api_extra` into `[api]`.
    async fn start(extra: &str, api_extra: &str) -> anyhow::Result<Api> {
        let dir = tempfile::tempdir()?;
        let admin = format!("admin-token-{}", common::unique("a"));
        let text = format!(
            r#"
{extra}

[store]
url = "sqlite://{store}"

[clusters.local]
bootstrap_servers = "127.0.0.1:1"

[clusters.other]
bootstrap_servers = "127.0.0.1:2"

[metrics_topic]
cluster = "local"

[api]
admin_token = "{admin}"
{api_extra}

[http]
metrics_listen = "127.0.0.1:0"
"#,
            store = dir.path().join("lagwatch.db").display(),
        );
        let path = dir.path().join("lagwatch.toml");
        std::fs::write(&path, text)?;
        let config = AppConfig::load(&path)?;
        let shutdown = CancellationToken::new();
        let agent = common::spawn_api_only(config, &shutdown).await?;
        let api = Api {
            addr: agent.addr,
            metrics_addr: agent.metrics_addr.context("metrics listener")?,
            admin,
            shutdown,
            task: agent.task,
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

    async fn stop(self) -> anyhow::Result<()> {
        common::stop_in_process(&self.shutdown, self.task).await
    }

    /// One request from client address 127.0.0.`client`.
    async fn call(
        &self,
        client: u8,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        request(self.addr, client, method, path, token, body).await
    }

    async fn as_team(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        self.call(1, method, path, Some(token), body).await
    }

    async fn token(&self, team: &str, query: &str) -> anyhow::Result<(i64, String)> {
        let reply = self
            .call(
                1,
                "POST",
                &format!("/api/v1/teams/{team}/tokens{query}"),
                Some(&self.admin),
                None,
            )
            .await?;
        ensure!(reply.status == 201, "token for {team}: {reply:?}");
        Ok((
            reply.json["id"].as_i64().context("id")?,
            reply.json["token"].as_str().context("token")?.to_string(),
        ))
    }
}

/// One request to `server` from client address 127.0.0.`client`.
async fn request(
    server: SocketAddr,
    client: u8,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, client));
    let body = body.map(Value::to_string);
    HttpClient::from_address(server, from)?
        .request(method, path, token, body.as_deref())
        .await
}

fn monitor(group: &str, topics: &[&str]) -> Value {
    json!({
        "cluster": "local",
        "consumer_group": group,
        "topics": topics,
        "lag_threshold": 100,
        "emails": ["oncall@example.com"],
    })
}

fn expect_forbidden_field(reply: &Reply, field: &str, what: &str) -> anyhow::Result<()> {
    expect(reply, 403, what)?;
    ensure!(
        reply.error_field() == Some(field),
        "{what}: expected the field {field}, got {:?}",
        reply.json
    );
    Ok(())
}

fn expect_quota(reply: &Reply, quota: &str, what: &str) -> anyhow::Result<()> {
    expect(reply, 403, what)?;
    ensure!(
        reply.error_code() == Some("quota_exceeded") && reply.error_message().contains(quota),
        "{what}: expected quota {quota}, got {:?}",
        reply.json
    );
    Ok(())
}

const TEAMS: &str = r#"
[teams.payments]
clusters = ["local"]
groups = ["pay-*", "billing"]
topics = ["pay.*"]
max_monitors = 3
max_regex_monitors = 1
max_exact_time_lag_monitors = 1
max_silences = 2

[teams.search]
groups = ["search-*"]
"#;

#[tokio::test]
async fn a_team_cannot_register_outside_what_it_owns() -> anyhow::Result<()> {
    let api = Api::start(TEAMS, "").await?;
    let (_, payments) = api.token("payments", "").await?;
    let (_, stranger) = api.token("stranger", "").await?;
    let post = |token: &str, body: Value| {
        let token = token.to_string();
        let api = &api;
        async move {
            api.as_team(&token, "POST", "/api/v1/monitors", Some(&body))
                .await
        }
    };

    // Another team's group, an unowned cluster, an unowned topic.
    let reply = post(&payments, monitor("search-indexer", &["pay.orders"])).await?;
    expect_forbidden_field(&reply, "consumer_group", "another team's group")?;
    let mut other_cluster = monitor("pay-eu", &["pay.orders"]);
    other_cluster["cluster"] = json!("other");
    let reply = post(&payments, other_cluster).await?;
    expect_forbidden_field(
        &reply,
        "cluster",
        "a cluster not in teams.payments.clusters",
    )?;
    let reply = post(&payments, monitor("pay-eu", &["pay.orders", "search.docs"])).await?;
    expect_forbidden_field(&reply, "topics[1]", "another team's topic")?;
    // A team without a [teams] section owns nothing.
    let reply = post(&stranger, monitor("pay-eu", &["pay.orders"])).await?;
    expect(&reply, 403, "a team without a section")?;

    // Inside its scope it works; an update cannot move it out.
    let reply = post(&payments, monitor("pay-eu", &["pay.orders"])).await?;
    expect(&reply, 201, "an owned group")?;
    let id = reply.json["id"].as_i64().context("id")?;
    let reply = api
        .as_team(
            &payments,
            "PUT",
            &format!("/api/v1/monitors/{id}"),
            Some(&monitor("search-indexer", &["pay.orders"])),
        )
        .await?;
    expect_forbidden_field(&reply, "consumer_group", "update to another team's group")?;
    let stored = api
        .as_team(&payments, "GET", &format!("/api/v1/monitors/{id}"), None)
        .await?;
    ensure!(
        stored.json["consumer_group"] == "pay-eu",
        "unchanged: {:?}",
        stored.json
    );

    // The admin is the operator: not limited by ownership.
    let mut for_payments = monitor("search-indexer", &["search.docs"]);
    for_payments["team"] = json!("payments");
    let reply = api
        .call(
            1,
            "POST",
            "/api/v1/monitors",
            Some(&api.admin),
            Some(&for_payments),
        )
        .await?;
    expect(&reply, 201, "the admin")?;
    api.stop().await
}

#[tokio::test]
async fn a_team_cannot_exceed_its_quotas() -> anyhow::Result<()> {
    let api = Api::start(TEAMS, "").await?;
    let (_, payments) = api.token("payments", "").await?;
    let post = |body: Value| {
        let api = &api;
        let token = payments.clone();
        async move {
            api.as_team(&token, "POST", "/api/v1/monitors", Some(&body))
                .await
        }
    };
    let mut regex = monitor("pay-.*", &[]);
    regex["group_match"] = json!("regex");
    expect(&post(regex.clone()).await?, 201, "first pattern monitor")?;
    regex["consumer_group"] = json!("billing|pay-x");
    expect_quota(
        &post(regex).await?,
        "max_regex_monitors",
        "second pattern monitor",
    )?;

    let mut exact = monitor("pay-eu", &[]);
    exact["time_lag"] = json!("exact");
    expect(
        &post(exact.clone()).await?,
        201,
        "first exact time-lag monitor",
    )?;
    exact["consumer_group"] = json!("pay-us");
    expect_quota(
        &post(exact).await?,
        "max_exact_time_lag_monitors",
        "second exact",
    )?;

    expect(&post(monitor("billing", &[])).await?, 201, "third monitor")?;
    expect_quota(
        &post(monitor("pay-us", &[])).await?,
        "max_monitors",
        "fourth monitor",
    )?;
    let listed = api
        .as_team(&payments, "GET", "/api/v1/monitors", None)
        .await?;
    let count = listed.json["monitors"].as_array().map_or(0, Vec::len);
    ensure!(count == 3, "stored monitors: {count}");

    let silence = json!({"duration_secs": 600, "comment": "deploy"});
    for n in 1..=2 {
        let reply = api
            .as_team(&payments, "POST", "/api/v1/silences", Some(&silence))
            .await?;
        expect(&reply, 201, &format!("silence {n}"))?;
    }
    let reply = api
        .as_team(&payments, "POST", "/api/v1/silences", Some(&silence))
        .await?;
    expect_quota(&reply, "max_silences", "third silence")?;
    api.stop().await
}

#[tokio::test]
async fn tokens_expire_record_their_last_use_and_changes_are_audited() -> anyhow::Result<()> {
    let api = Api::start(TEAMS, "").await?;
    let (short_id, short) = api.token("payments", "?expires_in_secs=2").await?;
    let (long_id, long) = api.token("payments", "").await?;
    let reply = api.as_team(&short, "GET", "/api/v1/whoami", None).await?;
    expect(&reply, 200, "a fresh expiring token")?;
    let tokens = api
        .call(
            1,
            "GET",
            "/api/v1/teams/payments/tokens",
            Some(&api.admin),
            None,
        )
        .await?;
    let short_row = tokens.json["tokens"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["id"] == short_id))
        .context("the expiring token is listed")?;
    ensure!(
        short_row["last_used_at_ms"].as_i64().is_some()
            && short_row["expires_at_ms"].as_i64().is_some(),
        "last use and expiry recorded: {short_row}"
    );
    // Wait for the expiry to pass, then the token is refused.
    let started = Instant::now();
    let expired = loop {
        let reply = api.as_team(&short, "GET", "/api/v1/whoami", None).await?;
        if reply.status != 200 || started.elapsed() > Duration::from_secs(10) {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    expect(&expired, 401, "an expired token")?;
    ensure!(
        expired.error_message().contains("expired"),
        "{:?}",
        expired.json
    );

    // Silences and token revocation are audited with their actor.
    let silence = api
        .as_team(
            &long,
            "POST",
            "/api/v1/silences",
            Some(&json!({"duration_secs": 600, "comment": "deploy"})),
        )
        .await?;
    expect(&silence, 201, "silence")?;
    let silence_id = silence.json["id"].as_i64().context("silence id")?;
    expect(
        &api.as_team(
            &long,
            "DELETE",
            &format!("/api/v1/silences/{silence_id}"),
            None,
        )
        .await?,
        200,
        "expire",
    )?;
    expect(
        &api.call(
            1,
            "DELETE",
            &format!("/api/v1/tokens/{short_id}"),
            Some(&api.admin),
            None,
        )
        .await?,
        204,
        "revoke",
    )?;
    let audit = api.as_team(&long, "GET", "/api/v1/audit", None).await?;
    expect(&audit, 200, "audit")?;
    let entries: Vec<(String, String, i64, String)> = audit.json["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap_or_default().to_string(),
                e["action"].as_str().unwrap_or_default().to_string(),
                e["subject_id"].as_i64().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let actor = format!("team:payments:token:{long_id}");
    let wanted = vec![
        (
            "token".to_string(),
            "revoke".to_string(),
            short_id,
            "admin".to_string(),
        ),
        ("silence".into(), "expire".into(), silence_id, actor.clone()),
        ("silence".into(), "create".into(), silence_id, actor),
        ("token".into(), "issue".into(), long_id, "admin".into()),
        ("token".into(), "issue".into(), short_id, "admin".into()),
    ];
    ensure!(entries == wanted, "audit entries {entries:?}");
    ensure!(
        audit.json["entries"]
            .as_array()
            .is_some_and(|all| all.iter().all(|e| e["monitor_id"] == 0)),
        "silence and token entries name no monitor: {}",
        audit.json
    );
    api.stop().await
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_spare_others() -> anyhow::Result<()> {
    let api = Api::start(
        "",
        "rate_limit_per_token = 5\nrate_limit_per_address = 8\nauth_failures_per_minute = 3",
    )
    .await?;
    let (_, first) = api.token("payments", "").await?;
    let (_, second) = api.token("search", "").await?;
    let (_, third) = api.token("search", "").await?;
    let whoami = |client: u8, token: Option<String>| {
        let api = &api;
        async move {
            api.call(client, "GET", "/api/v1/whoami", token.as_deref(), None)
                .await
        }
    };
    let retry_after = |reply: &Reply| -> anyhow::Result<u64> {
        expect(reply, 429, "rate limited")?;
        reply
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|secs| *secs >= 1)
            .with_context(|| format!("Retry-After in {}", reply.headers))
    };

    // Per token: the sixth request within the minute is refused; another
    // team's token is not affected.
    for n in 1..=5 {
        expect(
            &whoami(11, Some(first.clone())).await?,
            200,
            &format!("request {n}"),
        )?;
    }
    let wait = retry_after(&whoami(11, Some(first.clone())).await?)?;
    ensure!(
        wait <= 12,
        "one request per 12 s refills: Retry-After {wait}"
    );
    expect(
        &whoami(12, Some(second.clone())).await?,
        200,
        "another token",
    )?;

    // Per address: the ninth request from one address is refused, another
    // address is not.
    for n in 1..=8 {
        expect(&whoami(13, None).await?, 401, &format!("anonymous {n}"))?;
    }
    retry_after(&whoami(13, None).await?)?;
    expect(&whoami(14, None).await?, 401, "another address")?;

    // Failed authentications: after three wrong tokens the address is
    // refused before any token is checked, even a valid one.
    let wrong = format!("lw_{}", "x".repeat(43));
    for n in 1..=3 {
        expect(
            &whoami(15, Some(wrong.clone())).await?,
            401,
            &format!("guess {n}"),
        )?;
    }
    retry_after(&whoami(15, Some(wrong.clone())).await?)?;
    retry_after(&whoami(15, Some(third.clone())).await?)?;
    expect(
        &whoami(16, Some(third)).await?,
        200,
        "the same token elsewhere",
    )?;
    api.stop().await
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() -> anyhow::Result<()> {
    let api = Api::start("", "").await?;
    let main = api.call(1, "GET", "/metrics", None, None).await?;
    ensure!(
        main.status == 404,
        "/metrics on the API listener: {}",
        main.status
    );
    let own = request(api.metrics_addr, 1, "GET", "/metrics", None, None).await?;
    expect(&own, 200, "/metrics on http.metrics_listen")?;
    ensure!(
        own.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        own.headers
    );
    api.stop().await
}

/// Alert rows recorded for a team's pattern monitor before ownership was
/// configured: one for a group it owns, one for another team's group.
async fn seed_alerts(clickhouse: &str, database: &str, now: i64) -> anyhow::Result<()> {
    let rows = [
        ("f-owned", "pay-eu", now - 20_000),
        ("f-foreign", "search-indexer", now - 10_000),
    ];
    let values: Vec<String> = rows
        .iter()
        .map(|(fingerprint, group, ts)| {
            format!(
                "(fromUnixTimestamp64Milli(toInt64({ts})), '{fingerprint}', 'lag_threshold', \
                 'firing', 1, 'payments', 'local', '{group}', 900, 900, 500, '[]')"
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO {database}.alert_events (ts, fingerprint, rule, state, monitor_id, team, \
         cluster, consumer_group, max_lag, total_lag, threshold, partitions) VALUES {}",
        values.join(", ")
    );
    let reply = common::http::post_text(clickhouse, &sql).await?;
    ensure!(reply.is_empty(), "insert answered {reply}");
    Ok(())
}

#[tokio::test]
async fn alert_lists_show_only_the_groups_a_team_owns() -> anyhow::Result<()> {
    let clickhouse = common::clickhouse_url();
    let database = common::unique("lw_tenancy");
    let config: lagwatch_history::ClickHouseConfig = serde_json::from_value(json!({
        "url": clickhouse,
        "database": database,
    }))?;
    lagwatch_history::migrate(&config)
        .await
        .with_context(|| format!("ClickHouse at {clickhouse} (run tests/infra/up.sh)"))?;
    let now = lagwatch_model::now_ms();
    seed_alerts(&clickhouse, &database, now).await?;
    let api = Api::start(
        &format!("{TEAMS}\n[clickhouse]\nurl = \"{clickhouse}\"\ndatabase = \"{database}\"\n"),
        "",
    )
    .await?;
    let result = async {
        let (_, payments) = api.token("payments", "").await?;
        let groups = |reply: &Reply, key: &str| -> Vec<String> {
            reply.json[key]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r["consumer_group"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let firing = api
            .as_team(&payments, "GET", "/api/v1/alerts", None)
            .await?;
        expect(&firing, 200, "firing alerts")?;
        ensure!(
            groups(&firing, "alerts") == ["pay-eu"],
            "firing: {}",
            firing.json
        );
        let history = api
            .as_team(&payments, "GET", "/api/v1/alerts/history", None)
            .await?;
        expect(&history, 200, "alert history")?;
        ensure!(
            groups(&history, "events") == ["pay-eu"],
            "history: {}",
            history.json
        );
        // A page of one: the newest row is the hidden one, so the page is
        // filled from further back (it came back empty before).
        let one = api
            .as_team(&payments, "GET", "/api/v1/alerts/history?limit=1", None)
            .await?;
        expect(&one, 200, "alert history, limit 1")?;
        ensure!(
            groups(&one, "events") == ["pay-eu"],
            "history limit 1: {}",
            one.json
        );
        // The admin sees both rows: they are stored, only hidden.
        let all = api
            .call(
                1,
                "GET",
                "/api/v1/alerts?team=payments",
                Some(&api.admin),
                None,
            )
            .await?;
        let mut seen = groups(&all, "alerts");
        seen.sort();
        ensure!(seen == ["pay-eu", "search-indexer"], "admin: {}", all.json);
        anyhow::Ok(())
    }
    .await;
    let stopped = api.stop().await;
    common::http::post_text(&clickhouse, &format!("DROP DATABASE IF EXISTS {database}")).await?;
    result?;
    stopped
}
