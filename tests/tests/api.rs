//! The team REST API end to end: `lagwatch`'s own wiring
//! (`topology::run_with_api`, the `api` role) on a free port, over a real
//! SQLite file and a real MariaDB database, with status and alerts read
//! from the ClickHouse engine (the test front over chDB) seeded with known
//! rows.
//!
//! What is proven: CRUD; every validation rule answers 400 naming the
//! field and stores nothing; another team's monitors and silences cannot
//! be read, changed, deleted or expired (404, data unchanged); no token is
//! 401, a team token on admin endpoints 403; cluster credentials appear in
//! no response; every change leaves an audit row with its actor; status and
//! alerts carry the exact seeded values; `/openapi.json` is the checked-in
//! file.
//!
//! Needs `tests/infra/up.sh` (MariaDB on 13306, ClickHouse front on 18123).

#[path = "api/client.rs"]
mod client;
mod common;
#[path = "api/silences.rs"]
mod silences;
#[path = "api/validation.rs"]
mod validation;

use std::time::Duration;

use anyhow::{ensure, Context};
use lagwatch::config::AppConfig;
use lagwatch_history::rows::{AlertRow, SampleRow};
use lagwatch_history::ClickHouseConfig;
use lagwatch_store::MonitorStore;
use serde_json::{json, Value};

use client::{expect, join_all, monitor_body, Api, Reply};
use silences::silences;
use validation::validation;

/// A cluster password in the configuration: must never be answered.
const SASL_PASSWORD: &str = "sasl-pw-never-returned-7f3a";
/// A password read from a secret file: must never be answered either.
const FILE_SECRET: &str = "file-secret-never-returned-91c2";

// ------------------------------------------------------------ scenario ---

/// The whole store-backed scenario; `store_url` is SQLite or MariaDB.
async fn crud_validation_isolation_audit(store_url: &str) -> anyhow::Result<()> {
    let api = Api::start(store_url, None).await?;
    let result = scenario(&api, store_url).await;
    let seen = api.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let stopped = api.stop().await;
    result?;
    stopped?;
    // No answer ever carried a cluster credential.
    ensure!(seen.len() > 50, "only {} answers recorded", seen.len());
    for answer in &seen {
        ensure!(
            !answer.contains(SASL_PASSWORD) && !answer.contains(FILE_SECRET),
            "credential leaked in {answer}"
        );
        ensure!(
            !answer.contains("sasl.username"),
            "settings leaked: {answer}"
        );
    }
    Ok(())
}

async fn scenario(api: &Api, store_url: &str) -> anyhow::Result<()> {
    let store = MonitorStore::connect(store_url).await?;
    let payments = api.team_token("payments").await?;
    let search = api.team_token("search").await?;

    // --- who am I, clusters
    let me = api.get("/api/v1/whoami", Some(&payments)).await?;
    expect(&me, 200, "whoami")?;
    assert_eq!(
        me.json,
        json!({"team": "payments", "admin": false, "grafana_url": "http://grafana.test:3000"})
    );
    let me = api.get("/api/v1/whoami", Some(&api.admin)).await?;
    assert_eq!(me.json["admin"], json!(true));
    assert_eq!(me.json["team"], Value::Null);
    let clusters = api.get("/api/v1/clusters", Some(&payments)).await?;
    assert_eq!(
        clusters.json,
        json!({"clusters": ["local", "secure", "vault"]})
    );

    // --- 401 without or with a wrong token, 403 for admin-only endpoints
    for (method, path) in [
        ("GET", "/api/v1/whoami"),
        ("GET", "/api/v1/monitors"),
        ("POST", "/api/v1/monitors"),
        ("GET", "/api/v1/monitors/1"),
        ("PUT", "/api/v1/monitors/1"),
        ("DELETE", "/api/v1/monitors/1"),
        ("GET", "/api/v1/monitors/1/status"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/silences"),
        ("POST", "/api/v1/silences"),
        ("DELETE", "/api/v1/silences/1"),
        ("GET", "/api/v1/audit"),
        ("POST", "/api/v1/teams/payments/tokens"),
    ] {
        for token in [
            None,
            Some("lw_wrong"),
            Some(&payments[..payments.len() - 1]),
        ] {
            let reply = api.request(method, path, token, Some("{}")).await?;
            expect(&reply, 401, &format!("{method} {path} with {token:?}"))?;
            assert_eq!(reply.error_code(), Some("unauthorized"));
            assert!(
                reply
                    .headers
                    .to_ascii_lowercase()
                    .contains("www-authenticate: bearer"),
                "{}",
                reply.headers
            );
        }
    }
    for (method, path) in [
        ("POST", "/api/v1/teams/payments/tokens"),
        ("GET", "/api/v1/teams/payments/tokens"),
        ("DELETE", "/api/v1/tokens/1"),
    ] {
        let reply = api.request(method, path, Some(&payments), None).await?;
        expect(&reply, 403, &format!("{method} {path} as a team"))?;
        assert_eq!(reply.error_code(), Some("forbidden"));
    }

    // --- create, read, list, update
    let created = api
        .send(
            "POST",
            "/api/v1/monitors",
            &payments,
            &monitor_body("billing"),
        )
        .await?;
    expect(&created, 201, "create")?;
    let id = created.json["id"].as_i64().context("id")?;
    let mut want = monitor_body("billing");
    want["id"] = json!(id);
    want["team"] = json!("payments");
    want["group_match"] = json!("exact");
    want["topic_regex"] = Value::Null;
    assert_eq!(created.json, want);
    let got = api
        .get(&format!("/api/v1/monitors/{id}"), Some(&payments))
        .await?;
    expect(&got, 200, "get")?;
    assert_eq!(got.json, want);
    let listed = api.get("/api/v1/monitors", Some(&payments)).await?;
    assert_eq!(listed.json, json!({ "monitors": [want.clone()] }));

    let mut changed = monitor_body("billing");
    changed["lag_threshold"] = json!(900);
    changed["group_match"] = json!("regex");
    changed["consumer_group"] = json!("billing-(eu|us)");
    changed["topic_regex"] = json!("orders\\..*");
    let updated = api
        .send(
            "PUT",
            &format!("/api/v1/monitors/{id}"),
            &payments,
            &changed,
        )
        .await?;
    expect(&updated, 200, "update")?;
    assert_eq!(updated.json["lag_threshold"], json!(900));
    assert_eq!(updated.json["consumer_group"], json!("billing-(eu|us)"));
    let stored = store.get(id).await?.context("stored")?;
    assert_eq!(stored.lag_threshold, 900);
    assert_eq!(stored.topic_regex.as_deref(), Some("orders\\..*"));

    // --- validation: 400 naming the field, nothing stored
    validation(api, &payments, &store, id).await?;

    // --- a team token cannot act for another team
    let mut other = monitor_body("x");
    other["team"] = json!("search");
    let reply = api
        .send("POST", "/api/v1/monitors", &payments, &other)
        .await?;
    expect(&reply, 403, "create for another team")?;
    let reply = api
        .send("PUT", &format!("/api/v1/monitors/{id}"), &payments, &other)
        .await?;
    expect(&reply, 403, "move to another team")?;

    // --- cross-team isolation: 404 and unchanged data
    let before = store.list().await?;
    let theirs = api
        .send(
            "POST",
            "/api/v1/monitors",
            &search,
            &monitor_body("search-idx"),
        )
        .await?;
    expect(&theirs, 201, "search creates")?;
    let their_id = theirs.json["id"].as_i64().context("id")?;
    for (method, path) in [
        ("GET", format!("/api/v1/monitors/{id}")),
        ("PUT", format!("/api/v1/monitors/{id}")),
        ("DELETE", format!("/api/v1/monitors/{id}")),
        ("GET", format!("/api/v1/monitors/{id}/status")),
    ] {
        let reply = api
            .request(
                method,
                &path,
                Some(&search),
                Some(&monitor_body("hijack").to_string()),
            )
            .await?;
        expect(&reply, 404, &format!("search {method} {path}"))?;
        assert_eq!(reply.error_code(), Some("not_found"));
        assert!(!reply.body.contains("billing"), "{}", reply.body);
    }
    let lists = api.get("/api/v1/monitors", Some(&search)).await?;
    let ids: Vec<i64> = lists.json["monitors"]
        .as_array()
        .context("monitors")?
        .iter()
        .filter_map(|m| m["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![their_id], "search sees only its own");
    let asked = api
        .get("/api/v1/monitors?team=payments", Some(&search))
        .await?;
    assert_eq!(asked.json, lists.json, "?team= is ignored for teams");
    let after: Vec<_> = store
        .list()
        .await?
        .into_iter()
        .filter(|m| m.id != their_id)
        .collect();
    assert_eq!(after, before, "payments' monitor unchanged");
    let all = api.get("/api/v1/monitors", Some(&api.admin)).await?;
    assert_eq!(all.json["monitors"].as_array().map(Vec::len), Some(2));
    let only = api
        .get("/api/v1/monitors?team=search", Some(&api.admin))
        .await?;
    assert_eq!(only.json, lists.json);

    // --- silences: create, list, cross-team expire refused, expire
    silences(api, &payments, &search, id, their_id).await?;

    // --- delete, then gone
    let reply = api
        .request(
            "DELETE",
            &format!("/api/v1/monitors/{id}"),
            Some(&payments),
            None,
        )
        .await?;
    expect(&reply, 204, "delete")?;
    assert_eq!(reply.body, "");
    let reply = api
        .get(&format!("/api/v1/monitors/{id}"), Some(&payments))
        .await?;
    expect(&reply, 404, "get after delete")?;
    assert_eq!(store.get(id).await?, None);

    // --- audit log: create, update, delete with actor and before/after
    let audit = api.get("/api/v1/audit", Some(&payments)).await?;
    expect(&audit, 200, "audit")?;
    // Token issues (and silences) are audited too; here the monitor rows.
    let monitor_rows = |reply: &Reply| -> anyhow::Result<Vec<Value>> {
        Ok(reply.json["entries"]
            .as_array()
            .context("entries")?
            .iter()
            .filter(|e| e["subject"] == "monitor")
            .cloned()
            .collect())
    };
    let entries = monitor_rows(&audit)?;
    let actor = entries
        .first()
        .and_then(|e| e["actor"].as_str())
        .context("actor")?
        .to_string();
    ensure!(actor.starts_with("team:payments:token:"), "actor {actor}");
    let summary: Vec<(String, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["monitor_id"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("delete".to_string(), id),
            ("update".to_string(), id),
            ("create".to_string(), id)
        ]
    );
    assert!(entries.iter().all(|e| e["actor"] == json!(actor.clone())));
    assert!(entries.iter().all(|e| e["team"] == json!("payments")));
    assert_eq!(entries[2]["before"], Value::Null);
    assert_eq!(entries[2]["after"], want);
    assert_eq!(entries[1]["before"], want);
    assert_eq!(entries[1]["after"]["lag_threshold"], json!(900));
    assert_eq!(entries[0]["after"], Value::Null);
    assert_eq!(entries[0]["before"]["lag_threshold"], json!(900));
    let ts = entries[0]["ts_ms"].as_i64().context("ts")?;
    ensure!(
        (lagwatch_model::now_ms() - ts).abs() < 120_000,
        "audit time {ts}"
    );
    let theirs = api.get("/api/v1/audit?limit=10", Some(&search)).await?;
    let their_entries = monitor_rows(&theirs)?;
    assert_eq!(their_entries.len(), 1);
    assert_eq!(their_entries[0]["monitor_id"], json!(their_id));
    let limited = api.get("/api/v1/audit?limit=1", Some(&api.admin)).await?;
    assert_eq!(limited.json["entries"].as_array().map(Vec::len), Some(1));
    let reply = api.get("/api/v1/audit?limit=0", Some(&api.admin)).await?;
    expect(&reply, 400, "limit 0")?;
    assert_eq!(reply.error_field(), Some("limit"));
    // The audit rows are in the database itself.
    let rows = store.list_audit(Some("payments"), 10).await?;
    let monitor_changes = rows
        .iter()
        .filter(|r| r.subject == lagwatch_store::AuditSubject::Monitor)
        .count();
    assert_eq!(monitor_changes, 3);

    // --- the command line audits as `cli`
    let config = AppConfig::load(&api.config_path)?;
    lagwatch::monitors::run(
        &config,
        &api.config_path,
        lagwatch::cli::MonitorsCommand::Add {
            team: "payments".into(),
            cluster: "local".into(),
            group: "from-cli".into(),
            group_regex: false,
            topics: vec!["orders".into()],
            topic_regex: None,
            threshold: 10,
            for_duration: Duration::from_secs(0),
            emails: vec![],
            isolation: Default::default(),
            time_lag: Default::default(),
            topic_threshold: None,
            total_threshold: None,
            time_lag_threshold: None,
            repeat_interval: None,
            webhooks: vec![],
        },
    )
    .await?;
    let cli_id = store
        .list_team("payments")
        .await?
        .iter()
        .find(|m| m.consumer_group == "from-cli")
        .map(|m| m.id)
        .context("monitor added by the CLI")?;
    lagwatch::monitors::run(
        &config,
        &api.config_path,
        lagwatch::cli::MonitorsCommand::Rm { id: cli_id },
    )
    .await?;
    let audit = api
        .get("/api/v1/audit?team=payments&limit=2", Some(&api.admin))
        .await?;
    let cli_entries: Vec<(&str, &str, i64)> = audit.json["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default(),
                e["monitor_id"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        cli_entries,
        vec![("delete", "cli", cli_id), ("create", "cli", cli_id)]
    );

    // --- concurrent changes of one monitor all succeed, each audited
    let mut ops = monitor_body("ops-stream");
    ops["team"] = json!("ops");
    let created = api
        .send("POST", "/api/v1/monitors", &api.admin, &ops)
        .await?;
    expect(&created, 201, "admin creates for ops")?;
    let ops_id = created.json["id"].as_i64().context("id")?;
    let writes = (0..6).map(|i| {
        let mut body = ops.clone();
        body["lag_threshold"] = json!(1_000 + i);
        let path = format!("/api/v1/monitors/{ops_id}");
        async move { api.send("PUT", &path, &api.admin, &body).await }
    });
    for reply in join_all(writes).await {
        expect(&reply?, 200, "concurrent PUT")?;
    }
    let audit = api
        .get("/api/v1/audit?team=ops&limit=100", Some(&api.admin))
        .await?;
    let entries = audit.json["entries"].as_array().context("entries")?;
    assert_eq!(entries.len(), 7, "one create and six updates");
    let stored = store.get(ops_id).await?.context("ops monitor")?;
    assert_eq!(
        entries[0]["after"]["lag_threshold"],
        json!(stored.lag_threshold),
        "the newest audit row is what is stored"
    );

    // --- no history configured: 503 with the contract's code
    let reply = api
        .get(
            &format!("/api/v1/monitors/{their_id}/status"),
            Some(&search),
        )
        .await?;
    expect(&reply, 503, "status without ClickHouse")?;
    assert_eq!(reply.error_code(), Some("history_unavailable"));
    let reply = api.get("/api/v1/alerts", Some(&search)).await?;
    expect(&reply, 503, "alerts without ClickHouse")?;

    // --- tokens: listed without the secret, revoked tokens stop working
    let tokens = api
        .get("/api/v1/teams/search/tokens", Some(&api.admin))
        .await?;
    expect(&tokens, 200, "token list")?;
    let listed = tokens.json["tokens"].as_array().context("tokens")?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["last4"], json!(&search[search.len() - 4..]));
    assert!(!tokens.body.contains(&search), "token listed in clear");
    let token_id = listed[0]["id"].as_i64().context("token id")?;
    let reply = api
        .request(
            "DELETE",
            &format!("/api/v1/tokens/{token_id}"),
            Some(&api.admin),
            None,
        )
        .await?;
    expect(&reply, 204, "revoke")?;
    let reply = api.get("/api/v1/whoami", Some(&search)).await?;
    expect(&reply, 401, "revoked token")?;
    let reply = api
        .request(
            "DELETE",
            &format!("/api/v1/tokens/{token_id}"),
            Some(&api.admin),
            None,
        )
        .await?;
    expect(&reply, 404, "revoke twice")?;
    let reply = api
        .request(
            "POST",
            "/api/v1/teams/bad%20team/tokens",
            Some(&api.admin),
            None,
        )
        .await?;
    expect(&reply, 400, "bad team name")?;
    assert_eq!(reply.error_field(), Some("team"));

    // --- misc: unknown path, bad id, openapi and the page
    let reply = api.get("/api/v1/nope", Some(&payments)).await?;
    expect(&reply, 404, "unknown path")?;
    assert_eq!(reply.error_code(), Some("not_found"));
    let reply = api.get("/api/v1/monitors/abc", Some(&payments)).await?;
    expect(&reply, 400, "bad id")?;
    assert_eq!(reply.error_field(), Some("id"));
    let reply = api
        .get("/api/v1/monitors/99999999999999999999", Some(&payments))
        .await?;
    expect(&reply, 400, "id out of range")?;
    let reply = api
        .request("PATCH", "/api/v1/monitors", Some(&payments), None)
        .await?;
    expect(&reply, 405, "PATCH")?;
    let doc = api.get("/openapi.json", None).await?;
    expect(&doc, 200, "openapi")?;
    let checked_in = std::fs::read_to_string(common::repo_root().join("api/openapi.json"))?;
    ensure!(
        doc.body == checked_in,
        "served /openapi.json differs from api/openapi.json"
    );
    let page = api.get("/", None).await?;
    expect(&page, 200, "page")?;
    let html = std::fs::read_to_string(common::repo_root().join("api/src/web/index.html"))?;
    assert_eq!(page.body, html);
    assert!(page.headers.to_ascii_lowercase().contains("text/html"));
    for (path, file) in [("/app.js", "app.js"), ("/app.css", "app.css")] {
        let reply = api.get(path, None).await?;
        expect(&reply, 200, path)?;
        let want = std::fs::read_to_string(common::repo_root().join("api/src/web").join(file))?;
        assert_eq!(reply.body, want, "{path}");
    }
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    crud_validation_isolation_audit(&url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_mariadb() -> anyhow::Result<()> {
    let (url, mut admin, database) = common::throwaway_mariadb("lw_api").await?;
    let result = crud_validation_isolation_audit(&url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{database}`")))
        .execute(&mut admin)
        .await?;
    result
}

// ------------------------------------------------------- status, alerts ---

async fn clickhouse_database() -> anyhow::Result<ClickHouseConfig> {
    let config: ClickHouseConfig = serde_json::from_value(json!({
        "url": common::clickhouse_url(),
        "database": common::unique("lw_api"),
    }))?;
    lagwatch_history::migrate(&config).await.with_context(|| {
        format!(
            "ClickHouse at {} (run tests/infra/up.sh)",
            common::clickhouse_url()
        )
    })?;
    Ok(config)
}

fn sample(
    ts: i64,
    group: &str,
    topic: &str,
    partition: i32,
    committed: Option<i64>,
    end: i64,
    time_lag_ms: Option<i64>,
) -> SampleRow {
    SampleRow {
        ts,
        cluster: "local".into(),
        consumer_group: group.into(),
        topic: topic.into(),
        partition,
        committed_offset: committed,
        end_offset: end,
        lso_behind_end: None,
        time_lag_ms,
        group_state: "Stable".into(),
        members: 1,
    }
}

fn alert(
    ts: i64,
    fingerprint: &str,
    state: &str,
    team: &str,
    monitor_id: i64,
    max_lag: i64,
) -> AlertRow {
    AlertRow {
        ts,
        fingerprint: fingerprint.into(),
        rule: "lag_threshold".into(),
        state: state.into(),
        monitor_id,
        team: team.into(),
        cluster: "local".into(),
        consumer_group: "billing-eu".into(),
        max_lag,
        total_lag: max_lag * 2,
        threshold: 500,
        partitions: format!(r#"[{{"topic":"orders","partition":0,"lag":{max_lag}}}]"#),
        topic: String::new(),
        value: None,
        broker: None,
        repeat: 0,
        muted_by: String::new(),
        status: String::new(),
    }
}

async fn seed(config: &ClickHouseConfig, now: i64) -> anyhow::Result<()> {
    let client = lagwatch_history::client(config).with_database(&config.database);
    let old = now - 40_000;
    let new = now - 10_000;
    let samples = vec![
        // billing-eu: an older sample, then the latest one per partition.
        sample(old, "billing-eu", "orders", 0, Some(10), 60, Some(1_000)),
        sample(
            new,
            "billing-eu",
            "orders",
            0,
            Some(100),
            1_000,
            Some(12_000),
        ),
        sample(old, "billing-eu", "orders", 1, Some(10), 20, None),
        sample(new, "billing-eu", "orders", 1, Some(500), 800, Some(3_000)),
        sample(new, "billing-eu", "orders", 2, None, 10, None),
        // A topic the monitor does not watch.
        sample(new, "billing-eu", "audit", 0, Some(0), 99_999, None),
        // billing-us: one partition, caught up.
        sample(
            new - 5_000,
            "billing-us",
            "orders",
            0,
            Some(70),
            70,
            Some(0),
        ),
        // Not matched by the anchored pattern.
        sample(new, "billing-eux", "orders", 0, Some(0), 5_000, None),
        // Outside the 5-minute window.
        sample(
            now - 600_000,
            "billing-eu",
            "orders",
            3,
            Some(0),
            7_000,
            None,
        ),
        // Another cluster.
        SampleRow {
            cluster: "secure".into(),
            ..sample(new, "billing-eu", "orders", 0, Some(0), 1_000_000, None)
        },
    ];
    let mut insert = client.insert::<SampleRow>("lag_samples").await?;
    for row in &samples {
        insert.write(row).await?;
    }
    insert.end().await?;
    let alerts = vec![
        alert(now - 50_000, "f-resolved", "firing", "payments", 1, 700),
        alert(now - 30_000, "f-resolved", "resolved", "payments", 1, 100),
        alert(now - 20_000, "f-firing", "firing", "payments", 1, 900),
        alert(now - 15_000, "f-theirs", "firing", "search", 2, 4_000),
    ];
    let mut insert = client.insert::<AlertRow>("alert_events").await?;
    for row in &alerts {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_alerts_come_from_clickhouse_with_exact_values() -> anyhow::Result<()> {
    let config = clickhouse_database().await?;
    let now = lagwatch_model::now_ms();
    seed(&config, now).await?;
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let api = Api::start(&url, Some(&config)).await?;
    let result = status_and_alerts(&api, now).await;
    let stopped = api.stop().await;
    let client = lagwatch_history::client(&config);
    client
        .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
        .execute()
        .await?;
    result?;
    stopped
}

async fn status_and_alerts(api: &Api, now: i64) -> anyhow::Result<()> {
    let payments = api.team_token("payments").await?;
    let search = api.team_token("search").await?;
    let mut exact = monitor_body("billing-eu");
    exact["topics"] = json!(["orders"]);
    let created = api
        .send("POST", "/api/v1/monitors", &payments, &exact)
        .await?;
    expect(&created, 201, "exact monitor")?;
    let exact_id = created.json["id"].as_i64().context("id")?;
    let mut regex = exact.clone();
    regex["group_match"] = json!("regex");
    regex["consumer_group"] = json!("billing-(eu|us)");
    let created = api
        .send("POST", "/api/v1/monitors", &payments, &regex)
        .await?;
    expect(&created, 201, "regex monitor")?;
    let regex_id = created.json["id"].as_i64().context("id")?;

    let new = now - 10_000;
    // Two samples per partition at most: too few for the window rules, so
    // every `status` is unknown; `threshold_state` judges the newest lag.
    // The monitors are read_committed, but the seeded samples carry no last
    // stable offset, so lag falls back to the high watermark (as the
    // evaluator's does).
    let eu = json!({
        "cluster": "local", "consumer_group": "billing-eu", "ts_ms": new,
        "max_lag": 900, "total_lag": 1200, "max_time_lag_ms": 12_000,
        "status": "unknown", "threshold_state": "over_threshold",
        "partitions": [
            {"topic": "orders", "partition": 0, "committed_offset": 100, "end_offset": 1000,
             "lso_offset": null, "lag": 900, "time_lag_ms": 12_000, "status": "unknown",
             "samples": 2, "threshold_state": "over_threshold"},
            {"topic": "orders", "partition": 1, "committed_offset": 500, "end_offset": 800,
             "lso_offset": null, "lag": 300, "time_lag_ms": 3_000, "status": "unknown",
             "samples": 2, "threshold_state": "ok"},
            {"topic": "orders", "partition": 2, "committed_offset": null, "end_offset": 10,
             "lso_offset": null, "lag": null, "time_lag_ms": null, "status": "unknown",
             "samples": 1, "threshold_state": "no_offset"}
        ]
    });
    let us = json!({
        "cluster": "local", "consumer_group": "billing-us", "ts_ms": new - 5_000,
        "max_lag": 0, "total_lag": 0, "max_time_lag_ms": 0,
        "status": "unknown", "threshold_state": "ok",
        "partitions": [
            {"topic": "orders", "partition": 0, "committed_offset": 70, "end_offset": 70,
             "lso_offset": null, "lag": 0, "time_lag_ms": 0, "status": "unknown",
             "samples": 1, "threshold_state": "ok"}
        ]
    });
    let status = api
        .get(
            &format!("/api/v1/monitors/{exact_id}/status"),
            Some(&payments),
        )
        .await?;
    expect(&status, 200, "status")?;
    assert_eq!(
        status.json,
        json!({"monitor_id": exact_id, "lag_threshold": 500, "isolation": "read_committed",
               "lag_basis": "last_stable_offset", "window_secs": 300, "groups": [eu.clone()]})
    );
    let status = api
        .get(
            &format!("/api/v1/monitors/{regex_id}/status"),
            Some(&payments),
        )
        .await?;
    expect(&status, 200, "regex status")?;
    assert_eq!(
        status.json,
        json!({"monitor_id": regex_id, "lag_threshold": 500, "isolation": "read_committed",
               "lag_basis": "last_stable_offset", "window_secs": 300, "groups": [eu, us]})
    );
    let reply = api
        .get(
            &format!("/api/v1/monitors/{exact_id}/status"),
            Some(&search),
        )
        .await?;
    expect(&reply, 404, "another team's status")?;

    // Firing: the latest event per fingerprint is `firing`, own team only.
    let firing = api.get("/api/v1/alerts", Some(&payments)).await?;
    expect(&firing, 200, "alerts")?;
    assert_eq!(
        firing.json,
        json!({"alerts": [{
            "fingerprint": "f-firing", "rule": "lag_threshold", "state": "firing",
            "monitor_id": 1, "team": "payments", "cluster": "local", "consumer_group": "billing-eu",
            "max_lag": 900, "total_lag": 1800, "threshold": 500, "ts_ms": now - 20_000,
            "partitions": [{"topic": "orders", "partition": 0, "lag": 900}]
        }]})
    );
    let theirs = api.get("/api/v1/alerts", Some(&search)).await?;
    let fingerprints: Vec<_> = theirs.json["alerts"]
        .as_array()
        .context("alerts")?
        .iter()
        .map(|a| a["fingerprint"].clone())
        .collect();
    assert_eq!(fingerprints, vec![json!("f-theirs")]);
    let everyone = api.get("/api/v1/alerts", Some(&api.admin)).await?;
    assert_eq!(everyone.json["alerts"].as_array().map(Vec::len), Some(2));

    // History: newest first, own team, limited.
    let history = api.get("/api/v1/alerts/history", Some(&payments)).await?;
    expect(&history, 200, "history")?;
    let events: Vec<(String, String, i64)> = history.json["events"]
        .as_array()
        .context("events")?
        .iter()
        .map(|e| {
            (
                e["fingerprint"].as_str().unwrap_or_default().to_string(),
                e["state"].as_str().unwrap_or_default().to_string(),
                e["ts_ms"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("f-firing".into(), "firing".into(), now - 20_000),
            ("f-resolved".into(), "resolved".into(), now - 30_000),
            ("f-resolved".into(), "firing".into(), now - 50_000),
        ]
    );
    let limited = api
        .get("/api/v1/alerts/history?limit=1", Some(&payments))
        .await?;
    assert_eq!(limited.json["events"].as_array().map(Vec::len), Some(1));
    let reply = api
        .get("/api/v1/alerts/history?limit=1001", Some(&payments))
        .await?;
    expect(&reply, 400, "limit too large")?;
    assert_eq!(reply.error_field(), Some("limit"));
    let theirs = api
        .get("/api/v1/alerts/history?team=payments", Some(&search))
        .await?;
    assert_eq!(theirs.json["events"].as_array().map(Vec::len), Some(1));
    Ok(())
}
