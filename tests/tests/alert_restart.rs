//! Alert state survives kill -9: neither a lost nor a duplicate page.
//!
//! Three agent processes (the real `lagwatch` binary,
//! [`common::agent_process`]) run one after the other on the same metrics topic,
//! evaluator group and alert-state topic, each killed with SIGKILL:
//! 1. `A` decides the alert fires but cannot mail it (its SMTP port is
//!    dead) and is killed with the notification recorded as undelivered;
//! 2. `B` takes the alert over and sends the one firing mail (the outbox
//!    re-send), then is killed after recording it delivered;
//! 3. `C` replays samples from the committed offsets and must not page
//!    again; when the group catches up it sends exactly one resolve mail.
//!
//! A second test runs two evaluator processes side by side on one metrics
//! topic, kills one with SIGKILL while its alerts fire, and checks that the
//! survivor takes them over: every group pages once and resolves once.
//!
//! Needs `tests/infra/up.sh` (Kafka, ClickHouse engine front, SMTP capture).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::agent_process::{lagwatch_binary, AgentProcess};
use common::http::HttpClient;
use common::progress;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_store::MonitorStore;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;
const FIRING: &str = "[FIRING] lag of group";
const RESOLVED: &str = "[RESOLVED] lag of group";

/// A config like the other end-to-end tests', with short consumer session
/// timeouts (so a killed evaluator's partitions move within seconds) and,
/// with `dead_smtp`, an SMTP port nothing listens on. Returns its path and
/// a client of its HTTP listener (`/metrics`).
fn config(
    dir: &Path,
    name: &str,
    store_url: &str,
    metrics_topic: &str,
    database: &str,
    dead_smtp: Option<u16>,
) -> anyhow::Result<(PathBuf, HttpClient)> {
    let http_port = common::free_port();
    let base = common::write_config(dir, store_url, metrics_topic, database, http_port)?;
    let mut text = std::fs::read_to_string(&base)?;
    text = text.replace(
        "[clusters.local.jmx]",
        "[clusters.local.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n\n[clusters.local.jmx]",
    );
    text = text.replace(
        "state_topic =",
        "redelivery_grace = \"5s\"\nrepeat_check = \"500ms\"\nstate_topic =",
    );
    if let Some(port) = dead_smtp {
        let (_, smtp_port) = common::smtp();
        text = text.replace(&format!("port = {smtp_port}"), &format!("port = {port}"));
    }
    // `lagwatch all` without the team API: collector, evaluator, history.
    text.push_str("\n[api]\nenabled = false\n");
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok((path, HttpClient::local(http_port)))
}

fn threshold_mails(recipient: &str, prefix: &str) -> usize {
    common::subjects_for(recipient)
        .iter()
        .filter(|s| s.contains(prefix))
        .count()
}

/// The alert-state record of `group` (see `common::wait_for_state_record`).
async fn state_record(
    topic: &str,
    group: &str,
    state: &str,
    delivered: bool,
) -> anyhow::Result<()> {
    let patience = Duration::from_secs(90);
    common::wait_for_state_record(topic, group, state, delivered, patience).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_neither_loses_nor_repeats_a_page() -> anyhow::Result<()> {
    common::require_kafka()?;
    let binary = lagwatch_binary()?;
    let id = common::unique("restart");
    let topic = format!("{id}_orders");
    let group = format!("{id}_billing");
    let metrics_topic = format!("{id}_samples");
    let state_topic = format!("{metrics_topic}-alert-state");
    let database = format!("lagwatch_{id}");
    let recipient = format!("oncall-{id}@example.com");

    common::create_topic(&topic, PARTITIONS).await?;
    common::produce(&topic, PARTITIONS, 1_000).await?;
    common::commit_offsets(&group, &topic, PARTITIONS, 100)?;

    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    store
        .add(&common::lag_monitor(&group, &topic, &recipient))
        .await?;
    store.close().await;
    let dead_port = common::free_port();
    let (dead, _) = config(
        dir.path(),
        "dead.toml",
        &store_url,
        &metrics_topic,
        &database,
        Some(dead_port),
    )?;
    let (live, live_http) = config(
        dir.path(),
        "live.toml",
        &store_url,
        &metrics_topic,
        &database,
        None,
    )?;

    // 1. A fires, cannot deliver, is killed.
    let mut a = AgentProcess::start(&binary, &dead, "all", &dir.path().join("a.log"))?;
    state_record(&state_topic, &group, "firing", false).await?;
    a.kill()?;
    assert_eq!(threshold_mails(&recipient, FIRING), 0, "A could not mail");

    // 2. B takes over and sends the page once.
    let started = std::time::Instant::now();
    let mut b = AgentProcess::start(&binary, &live, "all", &dir.path().join("b.log"))?;
    common::eventually("the re-sent firing mail", Duration::from_secs(90), || {
        (threshold_mails(&recipient, FIRING) >= 1).then_some(())
    })
    .await?;
    eprintln!(
        "undelivered page re-sent by the next process {:.1} s after its start",
        started.elapsed().as_secs_f64()
    );
    state_record(&state_topic, &group, "firing", true).await?;
    // B judges on past its delivered page (and commits) before it dies.
    progress::evaluator_judged_more(&live_http, 3, Duration::from_secs(60)).await?;
    b.kill()?;

    // 3. C replays from the committed offsets: no second page.
    let c_started = lagwatch_model::now_ms() / 1_000;
    let mut c = AgentProcess::start(&binary, &live, "all", &dir.path().join("c.log"))?;
    // C has replayed from the committed offsets and judged samples taken
    // past its start plus the redelivery grace (5 s): a page it wrongly
    // believed owed would have been re-sent by then.
    progress::evaluator_judged_until(&live_http, c_started + 8, Duration::from_secs(90))
        .await
        .map_err(|e| e.context(c.log_tail(30)))?;
    assert_eq!(
        threshold_mails(&recipient, FIRING),
        1,
        "exactly one firing page across three processes"
    );
    common::commit_offsets(&group, &topic, PARTITIONS, 1_000)?;
    common::eventually("the resolve mail", Duration::from_secs(90), || {
        (threshold_mails(&recipient, RESOLVED) >= 1).then_some(())
    })
    .await?;
    progress::evaluator_judged_more(&live_http, 4, Duration::from_secs(60)).await?;
    c.kill()?;
    assert_eq!(threshold_mails(&recipient, FIRING), 1, "no page repeated");
    assert_eq!(threshold_mails(&recipient, RESOLVED), 1, "one resolve");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_evaluators_one_killed_no_alert_lost_or_repeated() -> anyhow::Result<()> {
    common::require_kafka()?;
    let binary = lagwatch_binary()?;
    const GROUPS: usize = 6;
    let id = common::unique("scaleout");
    let topic = format!("{id}_orders");
    let metrics_topic = format!("{id}_samples");
    let database = format!("lagwatch_{id}");
    common::create_topic(&topic, PARTITIONS).await?;
    common::produce(&topic, PARTITIONS, 1_000).await?;

    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    let mut recipients = Vec::new();
    for g in 0..GROUPS {
        let group = format!("{id}_g{g}");
        common::commit_offsets(&group, &topic, PARTITIONS, 100)?;
        let recipient = format!("oncall-{id}-g{g}@example.com");
        store
            .add(&common::lag_monitor(&group, &topic, &recipient))
            .await?;
        recipients.push((group, recipient));
    }
    store.close().await;
    let (path, _) = config(
        dir.path(),
        "live.toml",
        &store_url,
        &metrics_topic,
        &database,
        None,
    )?;

    // The collector in this process; two evaluators in their own.
    let shutdown = CancellationToken::new();
    let collector = tokio::spawn(topology::run(
        AppConfig::load(&path)?,
        Roles {
            collector: true,
            evaluator: false,
            history: false,
        },
        shutdown.clone(),
    ));
    // Each process needs its own HTTP port, hence its own config file.
    let (e1, _) = config(
        dir.path(),
        "e1.toml",
        &store_url,
        &metrics_topic,
        &database,
        None,
    )?;
    let (e2, e2_http) = config(
        dir.path(),
        "e2.toml",
        &store_url,
        &metrics_topic,
        &database,
        None,
    )?;
    let mut first = AgentProcess::start(&binary, &e1, "evaluator", &dir.path().join("e1.log"))?;
    let _second = AgentProcess::start(&binary, &e2, "evaluator", &dir.path().join("e2.log"))?;
    let fired = |prefix: &str| -> Vec<usize> {
        recipients
            .iter()
            .map(|(_, r)| threshold_mails(r, prefix))
            .collect()
    };
    let paged = common::eventually("a firing page per group", Duration::from_secs(90), || {
        fired(FIRING).iter().all(|n| *n >= 1).then_some(())
    })
    .await;
    if let Err(error) = paged {
        for log in ["e1.log", "e2.log"] {
            let text = std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();
            let tail: Vec<_> = text
                .lines()
                .filter(|l| l.contains("rror") || l.contains("WARN"))
                .take(10)
                .collect();
            eprintln!("--- {log} (errors and warnings)\n{}", tail.join("\n"));
        }
        eprintln!("pages per group: {:?}", fired(FIRING));
        return Err(error);
    }
    for (group, _) in &recipients {
        state_record(
            &format!("{metrics_topic}-alert-state"),
            group,
            "firing",
            true,
        )
        .await?;
    }
    let e1_log = std::fs::read_to_string(dir.path().join("e1.log")).unwrap_or_default();
    let e1_fired = e1_log.matches("alert firing").count();
    eprintln!("evaluator 1 fired {e1_fired} alert(s) before it was killed");
    first.kill()?;

    // The survivor takes over the killed one's partitions (6 s session
    // timeout) and resolves every group once when they catch up.
    for (group, _) in &recipients {
        common::commit_offsets(group, &topic, PARTITIONS, 1_000)?;
    }
    let killed_at = std::time::Instant::now();
    common::eventually("a resolve per group", Duration::from_secs(120), || {
        fired(RESOLVED).iter().all(|n| *n >= 1).then_some(())
    })
    .await?;
    eprintln!(
        "all groups resolved {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    // The survivor judged on past the resolves, nothing left to deliver.
    progress::evaluator_judged_more(&e2_http, 4 * GROUPS as u32, Duration::from_secs(60)).await?;
    let e2_log = std::fs::read_to_string(dir.path().join("e2.log")).unwrap_or_default();
    for line in e2_log
        .lines()
        .filter(|l| l.contains("re-sending") || l.contains("alert firing"))
    {
        eprintln!("e2: {line}");
    }
    assert!(
        e2_log.contains("warming windows up from the recent past"),
        "the survivor replayed the killed owner's recent samples into its windows"
    );
    assert_eq!(fired(FIRING), vec![1; GROUPS], "one page per group");
    assert_eq!(fired(RESOLVED), vec![1; GROUPS], "one resolve per group");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    Ok(())
}
