//! The HTTP server under attack (issue 15 item 5), through `lagwatch`'s own
//! wiring: the `api` role in this process (`topology::run_on` on port-0
//! listeners) over a throwaway MariaDB store, with short limits in
//! `[http]`:
//!
//! - slowloris: 50 connections trickling header bytes one a second are cut
//!   at `http.header_read_timeout`, while a steady stream of normal
//!   requests keeps its latency;
//! - 1,000 bad tokens from one address get 429s while another team's
//!   client, on another address, keeps getting 200s at the same latency;
//! - saturation: requests stuck on a locked table (`LOCK TABLES monitors
//!   WRITE` from the test) fill `http.max_concurrent_requests`; the excess
//!   is refused 503 at once with `Retry-After` while `/healthz`, `/readyz`
//!   and `/metrics` answer 200; at `http.request_timeout` the stuck
//!   requests are answered 503 and their slots serve again;
//! - shutdown: a request in flight is answered when it finishes within
//!   `http.shutdown_grace`, and dropped at the deadline when it does not,
//!   so the stop never waits longer;
//! - pools: with API requests stuck on a locked `silences` table holding
//!   every connection of the API's pool, the monitor watcher (collector
//!   role, real broker) still reads a new monitor from its own pool and
//!   the collector samples it (with one shared pool it waited 30 s and
//!   more: that run failed).
//!
//! Each test prints its measured numbers (`-- --nocapture`).
//!
//! Client addresses: Linux routes all of 127.0.0.0/8 to loopback, so a
//! client bound to 127.0.0.2 is another address to the server than one on
//! 127.0.0.1.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use lagwatch::config::AppConfig;
use sqlx::{Connection, MySqlConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The `api` role running in this process over its own MariaDB database.
struct Agent {
    addr: SocketAddr,
    admin_token: String,
    store_url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    db_admin: MySqlConnection,
    database: String,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// The `api` role alone; `http` lines go into `[http]`, `api` lines
    /// into `[api]`.
    async fn start(http: &str, api: &str) -> anyhow::Result<Agent> {
        Self::start_roles(http, api, false).await
    }

    /// With `collector`, the collector role runs too, against the test
    /// broker, with its monitor watcher polling the store every 200 ms.
    async fn start_roles(http: &str, api: &str, collector: bool) -> anyhow::Result<Agent> {
        let (store_url, db_admin, database) = common::throwaway_mariadb("lagwatch_http").await?;
        let dir = tempfile::tempdir()?;
        let admin_token = format!("admin-token-{}", common::unique("h"));
        let text = format!(
            r#"
[store]
url = "{store_url}"

[clusters.local]
bootstrap_servers = "{bootstrap}"

[metrics_topic]
cluster = "local"
topic = "{metrics_topic}"

[collector]
interval = "1s"
monitor_refresh = "200ms"

[api]
admin_token = "{admin_token}"
# The steady streams below send more requests a minute than a team
# would; only the failed-authentication limit is under test.
rate_limit_per_token = 100000
rate_limit_per_address = 100000
{api}

[http]
{http}
"#,
            bootstrap = if collector {
                common::kafka()
            } else {
                "127.0.0.1:1".into()
            },
            metrics_topic = common::unique("http-hardening-samples"),
        );
        let path = dir.path().join("lagwatch.toml");
        std::fs::write(&path, text)?;
        let config = AppConfig::load(&path)?;
        let shutdown = CancellationToken::new();
        let spawned = if collector {
            spawn_with_collector(config, &shutdown).await?
        } else {
            common::spawn_api_only(config, &shutdown).await?
        };
        common::wait_until_healthy(spawned.addr, &spawned.task).await?;
        Ok(Agent {
            addr: spawned.addr,
            admin_token,
            store_url,
            shutdown,
            task: spawned.task,
            db_admin,
            database,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A new team token for `team`, issued by the admin.
    async fn team_token(&self, team: &str) -> anyhow::Result<String> {
        let response = client_on(1)?
            .post(self.url(&format!("/api/v1/teams/{team}/tokens")))
            .bearer_auth(&self.admin_token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await?;
        ensure!(
            response.status() == 201 || response.status() == 200,
            "token: {}",
            response.status()
        );
        let body: serde_json::Value = serde_json::from_str(&response.text().await?)?;
        Ok(body["token"]
            .as_str()
            .context("token in answer")?
            .to_string())
    }

    /// A connection to the agent's database holding `LOCK TABLES monitors
    /// WRITE`: every API query of `monitors` waits until it is dropped or
    /// unlocked.
    async fn lock_monitors(&self) -> anyhow::Result<MySqlConnection> {
        let mut lock = MySqlConnection::connect(&self.store_url).await?;
        sqlx::query("LOCK TABLES monitors WRITE")
            .execute(&mut lock)
            .await?;
        Ok(lock)
    }

    /// Waits until `count` of the agent's queries wait for the lock.
    async fn wait_for_blocked_queries(&mut self, count: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let blocked: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE DB = ? AND STATE LIKE 'Waiting for table%'",
            )
            .bind(&self.database)
            .fetch_one(&mut self.db_admin)
            .await?;
            if blocked >= count {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "only {blocked} of {count} queries reached the lock in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the agent (10 s at most) and drops its database.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.drop_database().await?;
        stopped.context("the agent did not stop within 10 s")??
    }

    async fn drop_database(&mut self) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE `{}`",
            self.database
        )))
        .execute(&mut self.db_admin)
        .await?;
        Ok(())
    }
}

/// The collector and API roles of `config` in this process on a port-0
/// listener.
async fn spawn_with_collector(
    config: AppConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<common::InProcessAgent> {
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = main.local_addr()?;
    let roles = lagwatch::topology::Roles {
        collector: true,
        evaluator: false,
        history: false,
    };
    let listeners = lagwatch::topology::Listeners {
        main,
        metrics: None,
    };
    let task = tokio::spawn(lagwatch::topology::run_on(
        config,
        roles,
        true,
        listeners,
        shutdown.clone(),
    ));
    Ok(common::InProcessAgent {
        addr,
        metrics_addr: None,
        task,
    })
}

/// A client whose connections come from 127.0.0.`host`.
fn client_on(host: u8) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// One answer: status, `Retry-After`, error code, how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    code: Option<String>,
    took: Duration,
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<Answer> {
    let started = Instant::now();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let text = response.text().await?;
    let took = started.elapsed();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(String::from));
    Ok(Answer {
        status,
        retry_after,
        code,
        took,
    })
}

/// Sequential `whoami` requests: `at_least` of them, and on until `stop`.
async fn steady_requests(
    client: reqwest::Client,
    url: String,
    token: String,
    at_least: usize,
    stop: CancellationToken,
) -> anyhow::Result<Vec<Answer>> {
    let mut answers = Vec::new();
    while answers.len() < at_least || !stop.is_cancelled() {
        answers.push(get(&client, &url, Some(&token)).await?);
    }
    Ok(answers)
}

/// p50 and p99 of the answers' latencies.
fn percentiles(answers: &[Answer]) -> (Duration, Duration) {
    let mut took: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    took.sort();
    let at = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
    (at(0.50), at(0.99))
}

fn all_ok(answers: &[Answer]) -> bool {
    answers.iter().all(|a| a.status == 200)
}

/// Opens a connection and sends a request head one byte a second, never
/// finishing it; returns how long the server kept the connection open.
async fn trickle_headers(server: SocketAddr) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(server).await?;
    let (mut reader, mut writer) = stream.into_split();
    let head = b"GET /api/v1/whoami HTTP/1.1\r\nHost: lagwatch\r\n";
    let filler = b"X-Slow: 1\r\n";
    let trickle = async move {
        for byte in head.iter().chain(filler.iter().cycle()) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let closed = async move {
        let mut buffer = [0u8; 512];
        while let Ok(read) = reader.read(&mut buffer).await {
            if read == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            () = closed => {}
            () = trickle => {}
        }
    })
    .await
    .context("the server kept a trickling connection open for 30 s")?;
    Ok(started.elapsed())
}

/// A token that is already cancelled: the stream stops at its minimum.
fn stopped() -> CancellationToken {
    let token = CancellationToken::new();
    token.cancel();
    token
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_is_cut_at_the_header_timeout_while_requests_keep_their_latency(
) -> anyhow::Result<()> {
    let header_timeout = Duration::from_secs(2);
    let agent = Agent::start(r#"header_read_timeout = "2s""#, "").await?;
    let token = agent.team_token("payments").await?;
    let client = client_on(1)?;
    let url = agent.url("/api/v1/whoami");

    let quiet = steady_requests(client.clone(), url.clone(), token.clone(), 200, stopped()).await?;

    let attack_over = CancellationToken::new();
    let during = tokio::spawn(steady_requests(
        client.clone(),
        url.clone(),
        token.clone(),
        100,
        attack_over.clone(),
    ));
    let attackers: Vec<_> = (0..50)
        .map(|_| tokio::spawn(trickle_headers(agent.addr)))
        .collect();
    let mut held = Vec::new();
    for attacker in attackers {
        held.push(attacker.await??);
    }
    attack_over.cancel();
    let during = during.await??;
    held.sort();

    let (quiet_p50, quiet_p99) = percentiles(&quiet);
    let (attack_p50, attack_p99) = percentiles(&during);
    println!(
        "slowloris: 50 connections cut after {:.0}..{:.0} ms (median {:.0} ms; header_read_timeout 2000 ms); \
         whoami p50/p99 {:.1}/{:.1} ms quiet ({} requests), {:.1}/{:.1} ms under attack ({} requests)",
        ms(held[0]),
        ms(held[held.len() - 1]),
        ms(held[held.len() / 2]),
        ms(quiet_p50),
        ms(quiet_p99),
        quiet.len(),
        ms(attack_p50),
        ms(attack_p99),
        during.len()
    );
    ensure!(
        held[0] >= header_timeout - Duration::from_millis(100),
        "a connection was cut before the header timeout: {:?}",
        held[0]
    );
    ensure!(
        held[held.len() - 1] <= header_timeout + Duration::from_millis(1_500),
        "a trickling connection stayed open {:?}",
        held[held.len() - 1]
    );
    ensure!(all_ok(&quiet) && all_ok(&during), "a normal request failed");
    ensure!(
        attack_p99 < Duration::from_millis(500),
        "p99 under attack {attack_p99:?}"
    );
    ensure!(
        attack_p50 <= quiet_p50 * 3 + Duration::from_millis(10),
        "median latency grew from {quiet_p50:?} to {attack_p50:?}"
    );
    agent.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_bad_tokens_gets_429s_and_other_teams_keep_their_latency() -> anyhow::Result<()>
{
    // The default failed-authentication limit: 20 a minute per address.
    let agent = Agent::start("", "").await?;
    let token = agent.team_token("payments").await?;
    let team = client_on(1)?;
    let attacker = client_on(2)?;
    let url = agent.url("/api/v1/whoami");

    let quiet = steady_requests(team.clone(), url.clone(), token.clone(), 200, stopped()).await?;
    let attack_over = CancellationToken::new();
    let during = tokio::spawn(steady_requests(
        team.clone(),
        url.clone(),
        token.clone(),
        100,
        attack_over.clone(),
    ));
    let started = Instant::now();
    let workers: Vec<_> = (0..20)
        .map(|worker| {
            let (attacker, url) = (attacker.clone(), url.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for attempt in 0..50 {
                    let guess = format!("lw_guess_{worker}_{attempt}");
                    answers.push(get(&attacker, &url, Some(&guess)).await?);
                }
                anyhow::Ok(answers)
            })
        })
        .collect();
    let mut burst = Vec::new();
    for worker in workers {
        burst.extend(worker.await??);
    }
    let attack_took = started.elapsed();
    attack_over.cancel();
    let during = during.await??;

    let refused = burst.iter().filter(|a| a.status == 429).count();
    let unauthorized = burst.iter().filter(|a| a.status == 401).count();
    let (quiet_p50, quiet_p99) = percentiles(&quiet);
    let (attack_p50, attack_p99) = percentiles(&during);
    println!(
        "bad tokens: {} requests from 127.0.0.2 in {:.0} ms: {refused} × 429, {unauthorized} × 401; \
         team on 127.0.0.1: whoami p50/p99 {:.1}/{:.1} ms quiet ({} requests), {:.1}/{:.1} ms during the burst ({} requests)",
        burst.len(),
        ms(attack_took),
        ms(quiet_p50),
        ms(quiet_p99),
        quiet.len(),
        ms(attack_p50),
        ms(attack_p99),
        during.len()
    );
    ensure!(burst.len() == 1_000);
    ensure!(
        refused + unauthorized == burst.len(),
        "answers other than 401/429: {:?}",
        burst.iter().find(|a| a.status != 401 && a.status != 429)
    );
    // 20 failures a minute, refilled at one per 3 s while the burst runs;
    // requests already past the check when the bucket empties (at most one
    // per worker) are still looked up.
    let allowed_failures = 20 + 20 + (attack_took.as_secs() / 3) as usize + 1;
    ensure!(
        unauthorized <= allowed_failures,
        "{unauthorized} tokens were checked (at most {allowed_failures})"
    );
    ensure!(
        burst
            .iter()
            .filter(|a| a.status == 429)
            .all(|a| a.retry_after.is_some() && a.code.as_deref() == Some("rate_limited")),
        "a 429 without Retry-After"
    );
    ensure!(
        all_ok(&quiet) && all_ok(&during),
        "the other team was refused"
    );
    ensure!(
        attack_p99 < Duration::from_millis(500),
        "p99 during the burst {attack_p99:?}"
    );
    ensure!(
        attack_p50 <= quiet_p50 * 3 + Duration::from_millis(10),
        "median latency grew from {quiet_p50:?} to {attack_p50:?}"
    );
    agent.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_api_refuses_at_once_keeps_its_probes_and_frees_timed_out_slots(
) -> anyhow::Result<()> {
    let request_timeout = Duration::from_secs(3);
    let mut agent = Agent::start(
        "max_concurrent_requests = 4\nrequest_timeout = \"3s\"",
        "store_max_connections = 4\nstore_acquire_timeout = \"20s\"",
    )
    .await?;
    let token = agent.team_token("payments").await?;
    let client = client_on(1)?;
    let monitors = agent.url("/api/v1/monitors");

    let mut lock = agent.lock_monitors().await?;
    let stuck: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) = (client.clone(), monitors.clone(), token.clone());
            tokio::spawn(async move { get(&client, &url, Some(&token)).await })
        })
        .collect();
    agent.wait_for_blocked_queries(4).await?;

    let excess: Vec<_> = (0..20)
        .map(|_| {
            let (client, url, token) = (client.clone(), monitors.clone(), token.clone());
            tokio::spawn(async move { get(&client, &url, Some(&token)).await })
        })
        .collect();
    let mut refused = Vec::new();
    for request in excess {
        refused.push(request.await??);
    }
    let mut probes = Vec::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        probes.push((path, get(&client, &agent.url(path), None).await?));
    }
    let page_while_full = get(&client, &agent.url("/openapi.json"), None).await?;
    let mut timed_out = Vec::new();
    for request in stuck {
        timed_out.push(request.await??);
    }
    let page_after = get(&client, &agent.url("/openapi.json"), None).await?;

    let slowest_refusal = refused.iter().map(|a| a.took).max().unwrap_or_default();
    let slowest_probe = probes.iter().map(|(_, a)| a.took).max().unwrap_or_default();
    let timeouts: Vec<f64> = timed_out.iter().map(|a| ms(a.took)).collect();
    println!(
        "saturation: 20 excess requests refused in at most {:.1} ms; probes answered in at most {:.1} ms; \
         4 stuck requests answered after {timeouts:.0?} ms (request_timeout 3000 ms)",
        ms(slowest_refusal),
        ms(slowest_probe),
    );
    for answer in &refused {
        ensure!(
            answer.status == 503
                && answer.code.as_deref() == Some("overloaded")
                && answer.retry_after.as_deref() == Some("1"),
            "an excess request was not refused as overloaded: {answer:?}"
        );
    }
    ensure!(
        slowest_refusal < Duration::from_millis(500),
        "a refusal took {slowest_refusal:?}"
    );
    for (path, answer) in &probes {
        ensure!(
            answer.status == 200,
            "{path} answered {answer:?} while the API was full"
        );
    }
    ensure!(
        page_while_full.status == 503,
        "/openapi.json was served while the API was full: {page_while_full:?}"
    );
    for answer in &timed_out {
        ensure!(
            answer.status == 503 && answer.code.as_deref() == Some("request_timeout"),
            "a stuck request was answered {answer:?}"
        );
        ensure!(
            answer.took >= request_timeout - Duration::from_millis(100)
                && answer.took < request_timeout + Duration::from_secs(2),
            "a stuck request was answered after {:?}",
            answer.took
        );
    }
    ensure!(
        page_after.status == 200,
        "the timed-out requests' slots were not freed: {page_after:?}"
    );

    sqlx::query("UNLOCK TABLES").execute(&mut lock).await?;
    let recovered =
        common::eventually_async("monitors answered again", Duration::from_secs(20), || {
            let (client, url, token) = (client.clone(), monitors.clone(), token.clone());
            async move {
                get(&client, &url, Some(&token))
                    .await
                    .ok()
                    .filter(|a| a.status == 200)
            }
        })
        .await?;
    println!(
        "saturation: after UNLOCK, /api/v1/monitors 200 in {:.1} ms",
        ms(recovered.took)
    );
    drop(lock);
    agent.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_answers_requests_that_finish_within_the_grace_and_drops_the_rest(
) -> anyhow::Result<()> {
    // Finishes within the grace: its answer is sent, then the server stops.
    let mut agent = Agent::start(
        "request_timeout = \"60s\"\nshutdown_grace = \"5s\"",
        "store_acquire_timeout = \"60s\"",
    )
    .await?;
    let token = agent.team_token("payments").await?;
    let client = client_on(1)?;
    let mut lock = agent.lock_monitors().await?;
    let in_flight = {
        let (client, url, token) = (client.clone(), agent.url("/api/v1/monitors"), token.clone());
        tokio::spawn(async move { get(&client, &url, Some(&token)).await })
    };
    agent.wait_for_blocked_queries(1).await?;
    let stopping = Instant::now();
    agent.shutdown.cancel();
    common::eventually_async("the listener closed", Duration::from_secs(5), || {
        let addr = agent.addr;
        async move { tokio::net::TcpStream::connect(addr).await.err() }
    })
    .await?;
    sqlx::query("UNLOCK TABLES").execute(&mut lock).await?;
    let answered = in_flight.await??;
    tokio::time::timeout(Duration::from_secs(10), &mut agent.task)
        .await
        .context("stop")???;
    let stopped_after = stopping.elapsed();
    println!(
        "shutdown: a request finishing within the 5 s grace was answered {} after {:.0} ms; stopped after {:.0} ms",
        answered.status,
        ms(answered.took),
        ms(stopped_after)
    );
    ensure!(answered.status == 200, "{answered:?}");
    ensure!(
        stopped_after < Duration::from_secs(5),
        "the stop waited {stopped_after:?}"
    );
    drop(lock);
    agent.drop_database().await?;

    // Still running at the deadline: dropped, and the stop goes on.
    let grace = Duration::from_secs(2);
    let mut agent = Agent::start(
        "request_timeout = \"60s\"\nshutdown_grace = \"2s\"",
        "store_acquire_timeout = \"60s\"",
    )
    .await?;
    let token = agent.team_token("payments").await?;
    let mut lock = agent.lock_monitors().await?;
    let in_flight = {
        let (client, url, token) = (client.clone(), agent.url("/api/v1/monitors"), token.clone());
        tokio::spawn(async move { get(&client, &url, Some(&token)).await })
    };
    agent.wait_for_blocked_queries(1).await?;
    let stopping = Instant::now();
    agent.shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(20), &mut agent.task).await;
    let stopped_after = stopping.elapsed();
    let dropped = in_flight.await?;
    println!(
        "shutdown: a request stuck past the 2 s grace was dropped ({}); stopped after {:.0} ms",
        match &dropped {
            Ok(answer) => format!("answered {}", answer.status),
            Err(error) => format!("{error:#}"),
        },
        ms(stopped_after)
    );
    stopped.context("the stop waited for the stuck request")???;
    ensure!(
        stopped_after >= grace - Duration::from_millis(100),
        "the request did not get its grace: stopped after {stopped_after:?}"
    );
    // The grace, then at most 1 s for the API's store connections.
    ensure!(
        stopped_after < grace + Duration::from_millis(2_500),
        "the stop took {stopped_after:?}"
    );
    ensure!(
        dropped.is_err(),
        "the stuck request was answered: {dropped:?}"
    );
    sqlx::query("UNLOCK TABLES").execute(&mut lock).await?;
    drop(lock);
    agent.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_requests_stuck_in_the_store_cannot_take_the_monitor_watchers_connections(
) -> anyhow::Result<()> {
    common::require_kafka()?;
    let topic = common::unique("http-hardening-orders");
    let group = common::unique("http-hardening-billing");
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, 10).await?;
    common::commit_offsets(&group, &topic, 1, 3)?;

    // The API's pool holds 2 connections; the watcher's (the default
    // pool) 4. Before the API had its own pool, these 4 stuck requests
    // held all 4 connections the watcher reads from.
    let mut agent = Agent::start_roles(
        "request_timeout = \"60s\"",
        "store_max_connections = 2\nstore_acquire_timeout = \"60s\"",
        true,
    )
    .await?;
    let token = agent.team_token("payments").await?;
    let client = client_on(1)?;
    let mut lock = MySqlConnection::connect(&agent.store_url).await?;
    sqlx::query("LOCK TABLES silences WRITE")
        .execute(&mut lock)
        .await?;
    let stuck: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) =
                (client.clone(), agent.url("/api/v1/silences"), token.clone());
            tokio::spawn(async move { get(&client, &url, Some(&token)).await })
        })
        .collect();
    agent.wait_for_blocked_queries(2).await?;

    // A monitor added now is read by the watcher and sampled.
    let started = Instant::now();
    let store = lagwatch_store::MonitorStore::connect(&agent.store_url).await?;
    store
        .add(&common::lag_monitor(&group, &topic, "billing@example.com"))
        .await?;
    store.close().await;
    let sampled_line = format!("consumergroup=\"{group}\"");
    let metrics_url = agent.url("/metrics");
    let lag = common::eventually_async(
        "the new monitor's group on /metrics",
        Duration::from_secs(30),
        || {
            let (client, url, needle) = (client.clone(), metrics_url.clone(), sampled_line.clone());
            async move {
                let text = client.get(&url).send().await.ok()?.text().await.ok()?;
                text.lines()
                    .find(|l| l.starts_with("kafka_consumergroup_lag{") && l.contains(&needle))
                    .map(String::from)
            }
        },
    )
    .await?;
    let picked_up = started.elapsed();
    let metrics = client.get(&metrics_url).send().await?.text().await?;
    let blocked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND STATE LIKE 'Waiting for table%'",
    )
    .bind(&agent.database)
    .fetch_one(&mut agent.db_admin)
    .await?;
    let still_stuck = stuck.iter().filter(|r| !r.is_finished()).count();
    println!(
        "pools: with {still_stuck} API requests stuck ({blocked} queries on the lock), \
         a new monitor was sampled after {:.0} ms: {lag}",
        ms(picked_up)
    );
    ensure!(lag.ends_with(" 7"), "lag of the new monitor: {lag}");
    ensure!(still_stuck == 4, "the API requests were not all stuck");
    ensure!(
        blocked == 2,
        "{blocked} agent queries on the lock (the API pool holds 2)"
    );
    ensure!(
        metrics.contains("lagwatch_collector_monitor_store_errors_total 0"),
        "the watcher failed to read the store"
    );

    sqlx::query("UNLOCK TABLES").execute(&mut lock).await?;
    for request in stuck {
        let answer = request.await??;
        ensure!(
            answer.status == 200,
            "a stuck request after UNLOCK: {answer:?}"
        );
    }
    drop(lock);
    agent.stop().await
}
