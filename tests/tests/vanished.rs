//! Alerts whose subject vanished, against the real services: a firing
//! group whose only topic is deleted, and a firing group of a pattern
//! monitor that is deleted from the cluster. Both must resolve (every
//! rule that fired, `lag_status` included) with a reason saying why,
//! after `evaluator.vanished_after`, and the deleted group's
//! `lagwatch_group_status` series must leave `/metrics`.
//!
//! Before the fix neither resolved: the threshold rules saw "no value" and
//! kept firing, and `lag_status` stayed at its last status, then UNKNOWN,
//! firing forever.
//!
//! lagwatch runs in this process (`topology::run`, all roles) with a
//! 1 s collector interval and `vanished_after = "3s"`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::faults::{http_get, metric_in};
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_model::{GroupMatch, NewMonitor};
use lagwatch_store::MonitorStore;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use tokio_util::sync::CancellationToken;

const ALL: Roles = Roles {
    collector: true,
    evaluator: true,
    history: true,
};

/// Mail subjects to `recipient` that start with `prefix` and contain
/// every one of `needles`.
fn subjects(recipient: &str, prefix: &str, needles: &[&str]) -> Vec<String> {
    common::subjects_for(recipient)
        .into_iter()
        .filter(|s| s.starts_with(prefix) && needles.iter().all(|n| s.contains(n)))
        .collect()
}

async fn wait_mail(
    what: &str,
    recipient: &str,
    prefix: &str,
    needles: &[&str],
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    common::eventually(what, timeout, || {
        let found = subjects(recipient, prefix, needles);
        (!found.is_empty()).then_some(found)
    })
    .await
    .inspect_err(|_| eprintln!("mails so far: {:#?}", common::subjects_for(recipient)))
}

async fn admin() -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(common::client_config().create()?)
}

async fn delete_topic(topic: &str) -> anyhow::Result<()> {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin().await?.delete_topics(&[topic], &options).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("delete topic {t}: {e}"))?;
    }
    Ok(())
}

async fn delete_group(group: &str) -> anyhow::Result<()> {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin().await?.delete_groups(&[group], &options).await? {
        result.map_err(|(g, e)| anyhow::anyhow!("delete group {g}: {e}"))?;
    }
    Ok(())
}

/// Writes the config: the common test config with `vanished_after = 3s`.
fn config(dir: &Path, store_url: &str, id: &str, http_port: u16) -> anyhow::Result<AppConfig> {
    let path = common::write_config(
        dir,
        store_url,
        &format!("{id}_samples"),
        &format!("lagwatch_{id}"),
        http_port,
    )?;
    let text = std::fs::read_to_string(&path)?.replacen(
        "[evaluator]\n",
        "[evaluator]\nvanished_after = \"3s\"\n",
        1,
    );
    std::fs::write(&path, text)?;
    Ok(AppConfig::load(&path)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_topics_and_groups_resolve_their_alerts_with_the_reason() -> anyhow::Result<()> {
    common::require_kafka()?;
    let id = common::unique("vanish");
    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let recipient = format!("oncall-{id}@example.com");

    // An exact monitor on a topic that will be deleted, and a pattern
    // monitor whose matching group will be deleted.
    let topic = format!("{id}_orders");
    let kept = format!("{id}_kept");
    let exact_group = format!("{id}-billing");
    let pattern_group = format!("{id}-re-a");
    for t in [&topic, &kept] {
        common::create_topic(t, 1).await?;
        common::produce(t, 1, 1_000).await?;
    }
    common::commit_offsets(&exact_group, &topic, 1, 100)?;
    common::commit_offsets(&pattern_group, &kept, 1, 100)?;
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    store
        .add(&common::lag_monitor(&exact_group, &topic, &recipient))
        .await?;
    store
        .add(&NewMonitor {
            consumer_group: format!("{id}-re-.*"),
            group_match: GroupMatch::Regex,
            topics: vec![kept.clone()],
            ..common::lag_monitor("", &kept, &recipient)
        })
        .await?;
    store.close().await;

    let http_port = common::free_port();
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(topology::run(
        config(dir.path(), &store_url, &id, http_port)?,
        ALL,
        shutdown.clone(),
    ));
    let _stop = shutdown.clone().drop_guard();

    // Both groups page: the threshold at once, lag_status once its window
    // shows the stuck consumer.
    let patience = Duration::from_secs(90);
    for group in [&exact_group, &pattern_group] {
        let threshold = format!(" lag of group {group} on local is ");
        wait_mail(
            "threshold page",
            &recipient,
            "[FIRING]",
            &[&threshold],
            patience,
        )
        .await?;
        let status = format!("group {group} on local is ");
        wait_mail(
            "lag_status page",
            &recipient,
            "[FIRING]",
            &[&status, "partitions)"],
            patience,
        )
        .await?;
    }
    let status_series = format!("consumergroup=\"{pattern_group}\"");
    let (_, body) = http_get(http_port, "/metrics").await?;
    anyhow::ensure!(
        body.lines()
            .any(|l| l.starts_with("lagwatch_group_status") && l.contains(&status_series)),
        "no lagwatch_group_status series for {pattern_group} before it is deleted"
    );

    // The topic goes: both alerts of the exact group resolve with the reason.
    let deleted_at = Instant::now();
    delete_topic(&topic).await?;
    for rule in ["lag_threshold", "lag_status"] {
        let resolved = wait_mail(
            "resolve of the deleted topic's group",
            &recipient,
            "[RESOLVED]",
            &[rule, &exact_group, "nothing left to measure"],
            Duration::from_secs(60),
        )
        .await?;
        eprintln!("FIGURE: {rule} of {exact_group} resolved {:.1} s after its topic was deleted: {resolved:?}", deleted_at.elapsed().as_secs_f64());
    }

    // The pattern group goes: its alerts resolve, its status series goes.
    let deleted_at = Instant::now();
    delete_group(&pattern_group).await?;
    for rule in ["lag_threshold", "lag_status"] {
        let resolved = wait_mail(
            "resolve of the deleted group",
            &recipient,
            "[RESOLVED]",
            &[rule, &pattern_group, "is no longer on cluster local"],
            Duration::from_secs(60),
        )
        .await?;
        eprintln!("FIGURE: {rule} of {pattern_group} resolved {:.1} s after the group was deleted: {resolved:?}", deleted_at.elapsed().as_secs_f64());
    }
    common::eventually_async(
        "the deleted group's lagwatch_group_status series to go",
        Duration::from_secs(30),
        || async {
            let (_, body) = http_get(http_port, "/metrics").await.ok()?;
            (!body
                .lines()
                .any(|l| l.starts_with("lagwatch_group_status") && l.contains(&status_series)))
            .then_some(())
        },
    )
    .await?;

    // Each resolve exactly once, and nothing fires again for the gone ones:
    // checked after four more collector cycles, everything they published
    // judged and no delivery outstanding.
    let client = common::http::HttpClient::local(http_port);
    common::progress::collector_cycles_judged(&client, 4, Duration::from_secs(60)).await?;
    for group in [&exact_group, &pattern_group] {
        let named = format!("group {group} on local");
        let resolves = subjects(&recipient, "[RESOLVED]", &[&named]);
        let pages = subjects(&recipient, "[FIRING]", &[&named]);
        anyhow::ensure!(
            pages.len() >= 2 && resolves.len() == pages.len(),
            "{group}: each page resolved once; pages {pages:#?}, resolves {resolves:#?}"
        );
    }
    let (_, body) = http_get(http_port, "/metrics").await?;
    let firing = metric_in(&body, "lagwatch_evaluator_alerts_firing", "");
    anyhow::ensure!(firing == 0.0, "alerts still firing: {firing}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;
    Ok(())
}
