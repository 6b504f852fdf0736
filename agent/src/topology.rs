//! Wires the stages together and runs them until shutdown.
//!
//! Start order is receivers first (sinks and history, then the evaluator,
//! then the collector); on shutdown the collector and evaluator stop, and
//! dropping their senders lets sinks and the history writer drain.
//!
//! The HTTP listeners are bound before anything starts ([`Listeners`]):
//! a taken port fails the start at once, and tests bind port 0 and read
//! the port instead of guessing a free one. The API gets a monitor-store
//! pool of its own (`api.store_max_connections`), so API load cannot take
//! the connections the monitor watcher needs.

use std::sync::Arc;

use anyhow::Context;
use lagwatch_collector::{ClusterPoller, CollectorMetrics, KafkaOffsetSource, Publisher};
use lagwatch_evaluator::alert_state::AlertStateStore;
use lagwatch_evaluator::broker_rules::BrokerAlertRouting;
use lagwatch_evaluator::consumer::Alerting;
use lagwatch_evaluator::event_log::EventLog;
use lagwatch_evaluator::{run_consumer, EvaluatorMetrics, Outputs};
use lagwatch_history::stage::{run_stage, StageSettings};
use lagwatch_history::{self as history, HistoryMetrics};
use lagwatch_kafka::{ensure_topic, TopicSpec};
use lagwatch_sinks::{
    EmailSink, MonitorWebhookSink, Outbox, PagerDutySink, SinkMetrics, SlackSink, WebhookSink,
};
use lagwatch_store::monitor_watch::{watch_monitors, MonitorList};
use lagwatch_store::MonitorStore;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{AppConfig, HttpConfig};
use crate::http::Probes;
use crate::readiness::{Limits, Readiness};
use crate::self_alerts::{self, Operators};
use crate::supervision::Liveness;
use lagwatch_sinks::heartbeat::Heartbeat;

/// Which stages to run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub collector: bool,
    pub evaluator: bool,
    /// The history stage (needs `[clickhouse]`): its own consumer group on
    /// the metrics and alert-event topics.
    pub history: bool,
}

/// Runs the selected stages until `shutdown` is cancelled.
pub async fn run(
    config: AppConfig,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_api(config, roles, false, shutdown).await
}

/// How long the stop waits for the API's store connections to close,
/// after the HTTP server's own `http.shutdown_grace`.
const API_STORE_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The listeners the HTTP endpoints serve on.
#[derive(Debug)]
pub struct Listeners {
    /// `http.listen`: the probes, the API and web page, and `/metrics`
    /// unless it has its own listener.
    pub main: TcpListener,
    /// `http.metrics_listen`: `/metrics` alone.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds `http.listen` and, when set, `http.metrics_listen`.
    pub async fn bind(http: &HttpConfig) -> anyhow::Result<Self> {
        let main = crate::http::bind(http.listen, "http.listen").await?;
        let metrics = match http.metrics_listen {
            Some(listen) => Some(crate::http::bind(listen, "http.metrics_listen").await?),
            None => None,
        };
        Ok(Listeners { main, metrics })
    }
}

/// Runs the selected stages, and the team API when `api` is set, until
/// `shutdown` is cancelled.
pub async fn run_with_api(
    config: AppConfig,
    roles: Roles,
    api: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config.http).await?;
    run_on(config, roles, api, listeners, shutdown).await
}

/// Like [`run_with_api`], serving HTTP on `listeners` the caller bound
/// (`config.http.listen` and `metrics_listen` are not bound again).
pub async fn run_on(
    config: AppConfig,
    roles: Roles,
    api: bool,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = Registry::new();
    let store = MonitorStore::connect(&config.store.url).await?;
    store
        .migrate()
        .await
        .context("migrating the monitor store")?;

    let mut tasks = JoinSet::new();
    let (api_router, api_store) = if api {
        let api_store = MonitorStore::connect_with(&config.store.url, config.api.store_pool())
            .await
            .context("opening the API's monitor-store pool")?;
        (
            Some(api_router(&config, api_store.clone())?),
            Some(api_store),
        )
    } else {
        (None, None)
    };
    let liveness = Liveness::install(shutdown.clone());
    let readiness = Readiness::new(Limits {
        undelivered: config.http.ready_undelivered,
        history_behind: config.http.ready_history_behind,
        ..Limits::for_interval(config.collector.interval)
    });
    let http_shutdown = shutdown.clone();
    let hardening = config.http.hardening();
    let probes = Probes {
        registry: registry.clone(),
        liveness: liveness.clone(),
        readiness: readiness.clone(),
        metrics_on_main: listeners.metrics.is_none(),
    };
    if let Some(listener) = listeners.metrics {
        let (probes, metrics_shutdown) = (probes.clone(), shutdown.clone());
        tasks.spawn(async move {
            crate::http::serve_metrics(listener, probes, hardening, metrics_shutdown).await
        });
    }
    let listener = listeners.main;
    tasks.spawn(async move {
        crate::http::serve(listener, probes, api_router, hardening, http_shutdown).await
    });

    if roles.collector || roles.evaluator || roles.history {
        let collector_metrics = CollectorMetrics::register(&registry)?;
        let monitors = watch_monitors(
            store.clone(),
            config.collector.monitor_refresh,
            Some(collector_metrics.store_errors.clone()),
            shutdown.clone(),
        )
        .await
        .context("reading monitors")?;
        if roles.evaluator {
            start_evaluator(
                &config,
                &registry,
                &readiness,
                monitors.clone(),
                &shutdown,
                &mut tasks,
            )
            .await?;
        }
        if roles.history {
            let metrics = HistoryMetrics::register(&registry)?;
            readiness.watch_history(metrics.clone());
            start_history(&config, metrics, monitors.clone(), &shutdown, &mut tasks).await?;
        }
        if roles.collector {
            readiness.watch_collector(
                collector_metrics.clone(),
                config.clusters.keys().cloned().collect(),
            );
            start_collector(&config, collector_metrics, monitors, &shutdown, &mut tasks).await?;
        }
    }

    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        let outcome = result.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(error) = outcome {
            tracing::error!(error = %format!("{error:#}"), "stage failed, shutting down");
            shutdown.cancel();
            first_error.get_or_insert(error);
        }
    }
    store.close().await;
    if let Some(api_store) = api_store {
        // A request dropped after the grace may leave its connection in a
        // query the database has not answered (a lock): sqlx then waits
        // for that answer before the connection can close. Do not wait
        // long for it: the process is stopping.
        if tokio::time::timeout(API_STORE_CLOSE_WAIT, api_store.close())
            .await
            .is_err()
        {
            tracing::warn!(wait = ?API_STORE_CLOSE_WAIT, "the API's monitor-store connections did not close in time; leaving them");
        }
    }
    if liveness.panicked() {
        first_error.get_or_insert_with(|| anyhow::anyhow!("a task panicked (see the log)"));
    }
    first_error.map_or(Ok(()), Err)
}

/// The team API over `store`, configured from `[api]`, `[clusters]` and
/// `[clickhouse]`.
fn api_router(config: &AppConfig, store: MonitorStore) -> anyhow::Result<axum::Router> {
    let admin_token = config
        .api
        .resolve_admin_token()
        .map_err(|e| anyhow::anyhow!(e))?;
    if admin_token.is_none() {
        tracing::info!("no admin token configured: team tokens only (lagwatch tokens add)");
    }
    let settings = lagwatch_api::ApiSettings {
        clusters: config.clusters.keys().cloned().collect(),
        admin_token,
        grafana_url: config.api.grafana_url.clone(),
        clickhouse: config.clickhouse.clone(),
        tenancy: std::sync::Arc::new(config.tenancy()),
        rate_limits: config.api.rate_limits(),
        rules: Some(std::sync::Arc::new(
            config
                .evaluator
                .load_rules()
                .context("loading the rules files")?,
        )),
    };
    tracing::info!("team API on /api/v1, web page on /");
    Ok(lagwatch_api::router(store, settings))
}

async fn start_collector(
    config: &AppConfig,
    metrics: CollectorMetrics,
    monitors: MonitorList,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let topic = &config.metrics_topic;
    let metrics_cluster = &config.clusters[&topic.cluster].connection;
    let spec = TopicSpec {
        name: &topic.topic,
        partitions: topic.partitions,
        replication: topic.replication,
        settings: lagwatch_kafka::KEEP_A_WEEK,
    };
    ensure_topic(metrics_cluster, &spec).await?;
    let publisher = Publisher::new(metrics_cluster, &topic.topic, metrics.clone())?;
    let ownership = match &config.collector.sharding {
        Some(sharding) => {
            let ownership =
                lagwatch_collector::sharding::join(metrics_cluster, sharding, shutdown.clone())
                    .await
                    .context("joining the collector group")?;
            tracing::info!(group = %sharding.group_id, shards = sharding.shards, "collector sharding on");
            Some(ownership)
        }
        None => None,
    };
    let tenancy = Arc::new(config.tenancy());
    for (name, cluster) in &config.clusters {
        let source = KafkaOffsetSource::new(
            &cluster.connection,
            cluster.committed_offsets,
            config.collector.request_timeout,
        )
        .with_context(|| format!("cluster {name}"))?;
        let mut poller = ClusterPoller::new(
            name.clone(),
            Arc::new(source),
            config.collector.interval,
            monitors.clone(),
            publisher.clone(),
            metrics.clone(),
        );
        poller.ownership = ownership.clone();
        poller.tenancy = Arc::clone(&tenancy);
        poller.time_lag_probes = config.collector.time_lag_probes;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            poller.run(shutdown).await;
            Ok(())
        });
    }
    for (name, cluster) in &config.clusters {
        let Some(jmx) = &cluster.jmx else { continue };
        let poller = lagwatch_collector::jmx::JmxPoller::new(name.clone(), jmx.clone())
            .with_context(|| format!("clusters.{name}.jmx"))?;
        let (tx, mut rx) = mpsc::channel(64);
        let jmx_shutdown = shutdown.clone();
        tasks.spawn(async move {
            poller.run(tx, jmx_shutdown).await;
            Ok(())
        });
        let publisher = publisher.clone();
        tasks.spawn(async move {
            while let Some(sample) = rx.recv().await {
                publisher
                    .publish(&[lagwatch_model::MetricsMessage::Broker(sample)])
                    .await;
            }
            Ok(())
        });
        tracing::info!(cluster = %name, brokers = jmx.brokers.len(), "broker JMX polling started");
    }
    tracing::info!(clusters = config.clusters.len(), interval = ?config.collector.interval, "collector started");
    Ok(())
}

/// The history stage and the team↔group mirror the dashboards join on.
async fn start_history(
    config: &AppConfig,
    metrics: HistoryMetrics,
    monitors: MonitorList,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let Some(clickhouse) = &config.clickhouse else {
        tracing::warn!("no [clickhouse] section: sample and alert history is not recorded");
        return Ok(());
    };
    history::migrate(clickhouse)
        .await
        .context("migrating ClickHouse")?;
    let settings = StageSettings {
        cluster: config.clusters[&config.metrics_topic.cluster]
            .connection
            .clone(),
        metrics_topic: config.metrics_topic.topic.clone(),
        events_topic: config.evaluator.events_topic.clone(),
        dead_letter_topic: clickhouse.dead_letter_topic.clone(),
        consumer_group: clickhouse.consumer_group.clone(),
        clickhouse: clickhouse.clone(),
    };
    let stage_shutdown = shutdown.clone();
    tasks.spawn(async move {
        run_stage(settings, metrics, stage_shutdown).await?;
        Ok(())
    });
    let mirror = history::monitor_groups::mirror_monitors(
        clickhouse.clone(),
        monitors,
        std::time::Duration::from_secs(300),
        shutdown.clone(),
    );
    tasks.spawn(async move {
        mirror.await;
        Ok(())
    });
    tracing::info!(group = %clickhouse.consumer_group, "history stage started");
    Ok(())
}

async fn start_evaluator(
    config: &AppConfig,
    registry: &Registry,
    readiness: &Readiness,
    monitors: MonitorList,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let metrics = EvaluatorMetrics::register(registry)?;
    readiness.watch_evaluator(metrics.clone());
    let sink_metrics = SinkMetrics::register(registry)?;
    let (mut outbox, reports) = Outbox::builder(sink_metrics, config.evaluator.retry_policy());
    match &config.email {
        Some(email) => supervise(tasks, outbox.add(EmailSink::build(email)?)),
        None => tracing::warn!("no [email] section: alerts are logged but not mailed"),
    }
    for (index, webhook) in config.webhooks.iter().enumerate() {
        let sink = WebhookSink::build(webhook).with_context(|| format!("webhooks[{index}]"))?;
        supervise(tasks, outbox.add(sink));
    }
    if let Some(slack) = &config.slack {
        supervise(tasks, outbox.add(SlackSink::build(slack)?));
    }
    if let Some(pagerduty) = &config.pagerduty {
        supervise(tasks, outbox.add(PagerDutySink::build(pagerduty)?));
    }
    let team_destinations = lagwatch_sinks::ssrf::DestinationPolicy::new(&config.sinks)
        .context("sinks.allow_private")?;
    supervise(
        tasks,
        outbox.add(MonitorWebhookSink::build(
            std::time::Duration::from_secs(10),
            team_destinations,
        )?),
    );
    let outbox = outbox.build();
    readiness.watch_outbox(outbox.status().clone());
    start_self_alerts(config, readiness, &outbox, shutdown, tasks)?;
    tracing::info!("alert sinks started");

    let cluster = config.clusters[&config.metrics_topic.cluster]
        .connection
        .clone();
    let alerting = alerting(
        config,
        &cluster,
        monitors,
        metrics.event_log_errors.clone(),
        shutdown,
    )
    .await?;
    let routing = lagwatch_evaluator::routing::SharedSinkRouting::new(
        Arc::new(config.tenancy()),
        config.webhooks.iter().map(|w| w.name.clone()).collect(),
    );
    if let Some(state) = &alerting.state {
        readiness.watch_alert_state(state.progress());
    }
    let topic = config.metrics_topic.topic.clone();
    let evaluator = config.evaluator.clone();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let outputs = Outputs {
            outbox,
            reports,
            routing,
        };
        run_consumer(
            &cluster, &topic, &evaluator, alerting, outputs, metrics, shutdown,
        )
        .await?;
        Ok(())
    });
    Ok(())
}

/// Rules, durable alert state and silences for the evaluator.
async fn alerting(
    config: &AppConfig,
    cluster: &lagwatch_kafka::ClusterConfig,
    monitors: MonitorList,
    event_errors: prometheus::IntCounter,
    shutdown: &CancellationToken,
) -> anyhow::Result<Alerting> {
    let rules = config
        .evaluator
        .load_rules()
        .context("loading the rules files")?;
    tracing::info!(
        files = config.evaluator.rules_files.len(),
        broker_rules = rules.broker_rules.len(),
        "rules loaded"
    );
    let state = if config.evaluator.state_topic.is_empty() {
        tracing::warn!("`evaluator.state_topic` is empty: alert state is kept in memory only; a restart may repeat or miss a page");
        None
    } else {
        Some(
            AlertStateStore::open(cluster, &config.evaluator.state_topic, shutdown.clone())
                .await
                .context("opening the alert-state topic")?,
        )
    };
    let events = if config.evaluator.events_topic.is_empty() {
        tracing::warn!("`evaluator.events_topic` is empty: alert events are not kept in history");
        None
    } else {
        Some(
            EventLog::open(cluster, &config.evaluator.events_topic, event_errors)
                .await
                .map_err(|e| anyhow::anyhow!(e))
                .context("opening the alert-event topic")?,
        )
    };
    let store = MonitorStore::connect(&config.store.url).await?;
    let silences = lagwatch_store::silence_watch::watch_silences(
        store,
        config.evaluator.silence_refresh,
        shutdown.clone(),
    )
    .await;
    Ok(Alerting {
        monitors,
        rules: std::sync::Arc::new(rules),
        state,
        silences,
        broker_routing: BrokerAlertRouting {
            team: config.evaluator.broker_alert_team.clone(),
            emails: config.evaluator.broker_alert_emails.clone(),
        },
        events,
    })
}

/// Self-alerts through `outbox`, and the watchdog heartbeat.
fn start_self_alerts(
    config: &AppConfig,
    readiness: &Readiness,
    outbox: &Outbox,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let settings = &config.self_alerts;
    if settings.enabled {
        let operators = Operators {
            team: config.evaluator.broker_alert_team.clone(),
            emails: config.evaluator.broker_alert_emails.clone(),
        };
        supervise(
            tasks,
            self_alerts::run(
                settings.clone(),
                operators,
                readiness.clone(),
                outbox.clone(),
                shutdown.clone(),
            ),
        );
    }
    if let Some(url) = &settings.heartbeat_url {
        let heartbeat = Heartbeat::build(url, std::time::Duration::from_secs(10))
            .context("self_alerts.heartbeat_url")?;
        supervise(
            tasks,
            self_alerts::heartbeats(
                heartbeat,
                settings.heartbeat_interval,
                readiness.clone(),
                shutdown.clone(),
            ),
        );
    }
    Ok(())
}

/// Runs a background task (a sink's routing, self-alerts) under the
/// topology's supervision: its end is seen by the task set, and a panic
/// in it fails the process (see [`crate::supervision`]).
fn supervise(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tasks.spawn(async move {
        task.await;
        Ok(())
    });
}
