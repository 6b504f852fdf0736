//! A team's recipients (e-mail addresses, webhook URLs with a token in the
//! query) reach only the team's own sinks, never the payloads of global
//! destinations nor the shared alert-state and alert-event topics, and are
//! looked up from the monitor when a notification is sent.
//!
//! One real agent (collector + evaluator) against the local Kafka and SMTP
//! capture, with a global `[[webhooks]]` receiver on loopback and the
//! team's webhook receiver named by this machine's host name (its address
//! allowed by `sinks.allow_private`). The rules file
//! repeats firing alerts every 3 s so the changed-recipients case is quick.
//! Before the `Notification` type the alert carried `emails` and
//! `webhooks` into every payload and record: the global receiver, the
//! topics and the reminder after the change all failed.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_model::{AlertSettings, NewMonitor};
use lagwatch_store::MonitorStore;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A local HTTP receiver keeping every request's path and body.
#[derive(Clone, Default)]
struct Receiver {
    /// The host its URL names, and where it listens.
    host: String,
    addr: Option<SocketAddr>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

async fn record(State(receiver): State<Receiver>, uri: Uri, body: String) -> StatusCode {
    if let Ok(mut requests) = receiver.requests.lock() {
        requests.push((uri.to_string(), body));
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    /// Listens on `ip`, named `host` in its URL.
    async fn start(host: &str, ip: IpAddr) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let receiver = Receiver {
            host: host.to_string(),
            addr: Some(listener.local_addr()?),
            ..Receiver::default()
        };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(receiver)
    }

    fn url(&self, path: &str) -> String {
        match self.addr {
            Some(addr) => format!("http://{}:{}{path}", self.host, addr.port()),
            None => String::new(),
        }
    }

    /// Bodies of the requests about `group`.
    fn bodies_about(&self, group: &str) -> Vec<String> {
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        requests
            .into_iter()
            .map(|(_, body)| body)
            .filter(|body| body.contains(group))
            .collect()
    }
}

/// The payloads on `topic` that mention `group`, read from the beginning
/// until `wanted` of them satisfy `done` (or `patience` runs out, an
/// error); the rest of what is there within half a second is read too.
async fn records_about(
    topic: &str,
    group: &str,
    patience: Duration,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<String>> {
    let consumer: StreamConsumer = common::client_config()
        .set("group.id", common::unique("recipients-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = tokio::time::Instant::now() + patience;
    let mut found = Vec::new();
    loop {
        let wait = if done(&found) {
            Duration::from_millis(500)
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Err(_) if done(&found) => return Ok(found),
            Err(_) => anyhow::bail!("{topic}: only {} records about {group}", found.len()),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(Ok(message)) => {
                let text = message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                if text.contains(group) {
                    found.push(text);
                }
            }
        }
    }
}

/// Fails naming the first of `secrets` found in any of `texts`.
fn assert_none_contains(what: &str, texts: &[String], secrets: &[&str]) {
    for text in texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} carries `{secret}`: {text}");
        }
        let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let event = json.get("event").unwrap_or(&json);
        assert!(
            event.get("emails").is_none() && event.get("webhooks").is_none(),
            "{what} has a recipient field: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recipients_reach_only_the_teams_sinks_and_follow_the_monitor() -> anyhow::Result<()> {
    common::require_kafka()?;
    let started = std::time::Instant::now();
    let id = common::unique("recipients");
    // Team webhooks are refused as literal or `localhost` URLs at
    // registration: the team's receiver is named by this machine's name,
    // whose address `sinks.allow_private` allows.
    let (host, ip) = common::faults::local_webhook_host().await?;
    let team_hook = Receiver::start(&host, ip).await?;
    let global_hook = Receiver::start("127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
    let token = format!("tok{}", id.replace('-', ""));
    let team_url = team_hook.url(&format!("/team-hook?token={token}"));
    let first = format!("first-{id}@example.com");
    let second = format!("second-{id}@example.com");
    let topic = format!("{id}_orders");
    let group = format!("{id}-billing");
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, 1_000).await?;
    common::commit_offsets(&group, &topic, 1, 100)?;

    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    let registered = NewMonitor {
        alerting: AlertSettings {
            webhooks: vec![team_url.clone()],
            ..Default::default()
        },
        ..common::lag_monitor(&group, &topic, &first)
    };
    let monitor = store.add(&registered).await?;

    let metrics_topic = format!("{id}_samples");
    let path = common::write_config(
        dir.path(),
        &store_url,
        &metrics_topic,
        &format!("lagwatch_{id}"),
        common::free_port(),
    )?;
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "notifications:\n  repeat_interval: 3s\n")?;
    let text = std::fs::read_to_string(&path)?.replace(
        "[evaluator]\n",
        &format!(
            "[evaluator]\nrules_files = [\"{}\"]\nrepeat_check = \"500ms\"\n",
            rules.display()
        ),
    );
    let text = format!(
        "{text}\n[sinks]\nallow_private = [\"{ip}/32\"]\n\n[[webhooks]]\nname = \"global\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        global_hook.url("/global")
    );
    std::fs::write(&path, text)?;
    let config = AppConfig::load(&path)?;
    let shutdown = CancellationToken::new();
    let roles = Roles {
        collector: true,
        evaluator: true,
        history: false,
    };
    let agent = tokio::spawn(topology::run(config, roles, shutdown.clone()));
    let _stop = shutdown.clone().drop_guard();

    // The team's own mail and webhook get the page.
    let page = format!(" lag of group {group} on local ");
    common::eventually(
        "the page mailed to the team",
        Duration::from_secs(90),
        || {
            common::subjects_for(&first)
                .into_iter()
                .find(|s| s.starts_with("[FIRING]") && s.contains(&page))
        },
    )
    .await?;
    common::eventually(
        "the page at the team's webhook",
        Duration::from_secs(30),
        || team_hook.bodies_about(&group).into_iter().next(),
    )
    .await?;
    // The global webhook gets it too, without the team's receivers.
    common::eventually(
        "the page at the global webhook",
        Duration::from_secs(30),
        || global_hook.bodies_about(&group).into_iter().next(),
    )
    .await?;
    let secrets = [first.as_str(), token.as_str(), "team-hook"];
    assert_none_contains(
        "the global webhook's payload",
        &global_hook.bodies_about(&group),
        &secrets,
    );
    assert_none_contains(
        "the team webhook's payload",
        &team_hook.bodies_about(&group),
        &secrets,
    );
    // Nor do the shared topics carry them.
    let state_topic = format!("{metrics_topic}-alert-state");
    let events_topic = format!("{metrics_topic}-alert-events");
    let state = records_about(&state_topic, &group, Duration::from_secs(30), |r| {
        !r.is_empty()
    })
    .await?;
    assert_none_contains("an alert-state record", &state, &secrets);
    assert!(
        state.iter().any(|r| r.contains("\"v\":3")),
        "version 3 records: {state:?}"
    );
    let events = records_about(&events_topic, &group, Duration::from_secs(30), |r| {
        !r.is_empty()
    })
    .await?;
    assert_none_contains("an alert-event record", &events, &secrets);

    // The team changes its address: the next reminder goes to the new one.
    let changed = NewMonitor {
        emails: vec![second.clone()],
        ..registered.clone()
    };
    store.update(monitor.id, &changed).await?;
    common::eventually(
        "a reminder mailed to the new address",
        Duration::from_secs(60),
        || {
            common::subjects_for(&second)
                .into_iter()
                .find(|s| s.starts_with("[REPEAT]") && s.contains(&group))
        },
    )
    .await?;

    // The monitor is deleted: its resolve reaches the recipients it had.
    store.remove(monitor.id).await?;
    let deleted = format!("monitor {} was deleted", monitor.id);
    common::eventually(
        "the deleted monitor's resolve mailed to its recipient",
        Duration::from_secs(60),
        || {
            common::subjects_for(&second)
                .into_iter()
                .find(|s| s.starts_with("[RESOLVED]") && s.contains(&group) && s.contains(&deleted))
        },
    )
    .await?;
    common::eventually(
        "the resolve at the team's webhook",
        Duration::from_secs(30),
        || {
            team_hook
                .bodies_about(&group)
                .into_iter()
                .find(|b| b.contains(&deleted))
        },
    )
    .await?;
    let global = common::eventually(
        "the resolve at the global webhook",
        Duration::from_secs(30),
        || {
            let bodies = global_hook.bodies_about(&group);
            bodies
                .iter()
                .any(|b| b.contains(&deleted))
                .then_some(bodies)
        },
    )
    .await?;
    let secrets = [first.as_str(), second.as_str(), token.as_str(), "team-hook"];
    assert_none_contains("the global webhook's payload", &global, &secrets);
    let state = records_about(&state_topic, &group, Duration::from_secs(30), |r| {
        r.iter().any(|r| r.contains(&deleted))
    })
    .await?;
    assert_none_contains("an alert-state record", &state, &secrets);
    let events = records_about(&events_topic, &group, Duration::from_secs(30), |r| {
        r.iter().any(|r| r.contains(&deleted))
    })
    .await?;
    assert_none_contains("an alert-event record", &events, &secrets);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;
    eprintln!(
        "recipients scenario: {} global payloads, {} state and {} event records checked in {:.1} s",
        global.len(),
        state.len(),
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The lagwatch config of `dir` for the scenario's topics, with the SMTP
/// port `smtp_port` and `evaluator` settings added.
fn restart_config(
    dir: &std::path::Path,
    store_url: &str,
    metrics_topic: &str,
    smtp_port: u16,
    evaluator: &str,
) -> anyhow::Result<AppConfig> {
    let path = common::write_config(
        dir,
        store_url,
        metrics_topic,
        &format!("lagwatch_{metrics_topic}"),
        common::free_port(),
    )?;
    let (_, real_port) = common::smtp();
    let text = std::fs::read_to_string(&path)?
        .replace(
            &format!("port = {real_port}\n"),
            &format!("port = {smtp_port}\n"),
        )
        .replace("[evaluator]\n", &format!("[evaluator]\n{evaluator}"));
    std::fs::write(&path, text)?;
    Ok(AppConfig::load(&path)?)
}

/// A page owed when the evaluator stopped (its SMTP relay was down) is
/// re-sent by the next evaluator to the monitor's recipients as they are
/// then, not as they were when it fired: the record names none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owed_page_is_resent_after_a_restart_to_the_monitors_current_recipients(
) -> anyhow::Result<()> {
    common::require_kafka()?;
    let started = std::time::Instant::now();
    let id = common::unique("owed");
    let first = format!("first-{id}@example.com");
    let second = format!("second-{id}@example.com");
    let topic = format!("{id}_orders");
    let group = format!("{id}-billing");
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, 1_000).await?;
    common::commit_offsets(&group, &topic, 1, 100)?;
    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    let registered = common::lag_monitor(&group, &topic, &first);
    let monitor = store.add(&registered).await?;
    let metrics_topic = format!("{id}_samples");
    let roles = Roles {
        collector: true,
        evaluator: true,
        history: false,
    };

    // First run: the page fires but the relay is down; stopped while owed.
    let down = restart_config(
        dir.path(),
        &store_url,
        &metrics_topic,
        common::free_port(),
        "",
    )?;
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(topology::run(down, roles, shutdown.clone()));
    let state_topic = format!("{metrics_topic}-alert-state");
    common::wait_for_state_record(
        &state_topic,
        &group,
        "firing",
        false,
        Duration::from_secs(90),
    )
    .await?;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;

    // The team changes its address while no evaluator runs.
    let changed = NewMonitor {
        emails: vec![second.clone()],
        ..registered
    };
    store.update(monitor.id, &changed).await?;

    // Second run: the owed page goes to the new address.
    let (_, smtp_port) = common::smtp();
    let up = restart_config(
        dir.path(),
        &store_url,
        &metrics_topic,
        smtp_port,
        "redelivery_grace = \"1s\"\n",
    )?;
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(topology::run(up, roles, shutdown.clone()));
    let _stop = shutdown.clone().drop_guard();
    let page = format!(" lag of group {group} on local ");
    common::eventually(
        "the owed page mailed to the current address",
        Duration::from_secs(90),
        || {
            common::subjects_for(&second)
                .into_iter()
                .find(|s| s.starts_with("[FIRING]") && s.contains(&page))
        },
    )
    .await?;
    common::wait_for_state_record(
        &state_topic,
        &group,
        "firing",
        true,
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        common::subjects_for(&first).is_empty(),
        "the old address got {:?}",
        common::subjects_for(&first)
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;
    eprintln!(
        "owed page re-sent to the current address in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
