//! A notification a destination refuses for good is visible to its team:
//! the alert's entry in `GET /alerts` (the `history::reader` answer the
//! API serialises as is) says who refused it and why, while the other
//! destinations still deliver.
//!
//! The refusal is real: the monitor's team webhook names this machine's
//! host, which resolves to a private address that `sinks.allow_private`
//! does not allow, so the SSRF guard refuses every delivery (permanent,
//! like a 4xx). The e-mail of the same alert is delivered. Before the fix
//! the refusal was only in the alert-state topic and a counter; the API
//! showed the alert like any delivered one.

mod common;

use std::time::Duration;

use common::faults::local_webhook_host;
use lagwatch::config::AppConfig;
use lagwatch::topology::{self, Roles};
use lagwatch_history::reader::firing_alerts;
use lagwatch_model::{AlertSettings, NewMonitor};
use lagwatch_store::MonitorStore;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_team_webhook_is_shown_on_the_alert_to_its_team() -> anyhow::Result<()> {
    common::require_kafka()?;
    let (host, _) = local_webhook_host().await?;
    let id = common::unique("refused");
    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("monitors.db").display());
    let recipient = format!("oncall-{id}@example.com");
    let topic = format!("{id}_orders");
    let group = format!("{id}-billing");
    common::create_topic(&topic, 1).await?;
    common::produce(&topic, 1, 1_000).await?;
    common::commit_offsets(&group, &topic, 1, 100)?;
    let store = MonitorStore::connect(&store_url).await?;
    store.migrate().await?;
    store
        .add(&NewMonitor {
            alerting: AlertSettings {
                webhooks: vec![format!("http://{host}:9/hook")],
                ..Default::default()
            },
            ..common::lag_monitor(&group, &topic, &recipient)
        })
        .await?;
    store.close().await;
    let path = common::write_config(
        dir.path(),
        &store_url,
        &format!("{id}_samples"),
        &format!("lagwatch_{id}"),
        common::free_port(),
    )?;
    let config = AppConfig::load(&path)?;
    let clickhouse = config
        .clickhouse
        .clone()
        .expect("[clickhouse] in the test config");
    let shutdown = CancellationToken::new();
    let roles = Roles {
        collector: true,
        evaluator: true,
        history: true,
    };
    let agent = tokio::spawn(topology::run(config, roles, shutdown.clone()));
    let _stop = shutdown.clone().drop_guard();

    let threshold = format!(" lag of group {group} on local ");
    common::eventually("the e-mail page", Duration::from_secs(90), || {
        common::subjects_for(&recipient)
            .into_iter()
            .find(|s| s.starts_with("[FIRING]") && s.contains(&threshold))
    })
    .await?;
    let shown = common::eventually_async(
        "the refusal on the team's firing alert",
        Duration::from_secs(60),
        || async {
            let alerts = firing_alerts(&clickhouse, Some("payments")).await.ok()?;
            let alert = alerts
                .into_iter()
                .find(|a| a.consumer_group == group && a.rule == "lag_threshold")?;
            let json = serde_json::to_value(&alert).ok()?;
            json["muted_by"]
                .as_str()
                .is_some_and(|m| m.starts_with("refused by monitor_webhook:"))
                .then_some(json)
        },
    )
    .await?;
    eprintln!("firing alert as the API shows it: {shown}");
    assert_eq!(shown["state"], "firing");
    assert!(
        shown.get("emails").is_none(),
        "no always-empty recipient list: {shown}"
    );
    let others = firing_alerts(&clickhouse, Some("search")).await?;
    assert!(
        others.iter().all(|a| a.consumer_group != group),
        "another team sees it"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), agent).await???;
    Ok(())
}
