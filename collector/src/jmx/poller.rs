//! Reads the brokers of one cluster and turns the reads into samples.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lagwatch_model::broker::metric;
use lagwatch_model::{error_chain, now_ms, redact_url, BrokerMetric, BrokerSample};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::config::{BrokerEndpoint, EndpointKind, IdleCorrection, JmxConfig};
use super::rates::RateTracker;
use super::scrape::Scrape;
use super::spec::{MetricPlan, ValueKind};
use super::{jolokia, prom_text, JmxError};

/// Failures listed one by one in a sample's error; the rest are counted.
const LISTED_FAILURES: usize = 5;
/// Rates are not computed across more than this many missed intervals.
const MAX_GAP_INTERVALS: u32 = 5;
/// First Kafka version whose combined-mode idle meter is right (KAFKA-19606).
const IDLE_FIXED_IN: (u32, u32) = (4, 2);

/// Samples the brokers of one cluster over JMX. Keeps, per broker, the
/// previous counters the rates are computed from, so one poller must see
/// every cycle of its cluster.
pub struct JmxPoller {
    cluster: String,
    config: JmxConfig,
    client: reqwest::Client,
    brokers: HashMap<i32, BrokerState>,
}

struct BrokerState {
    rates: RateTracker,
    /// Error of the previous sample, to log changes rather than every cycle.
    last_error: Option<String>,
}

impl JmxPoller {
    /// A poller for `cluster`; fails when `config` is invalid.
    pub fn new(cluster: impl Into<String>, config: JmxConfig) -> Result<Self, JmxError> {
        config.validate()?;
        let tls = super::tls::client_settings(config.ca_file.as_deref()).map_err(|reason| {
            JmxError::InvalidConfig {
                key: "ca_file".into(),
                reason,
            }
        })?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // JMX endpoints sit next to the brokers; an HTTP proxy set for
            // the process's internet access must not be used for them.
            .no_proxy()
            .user_agent(concat!("lagwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JmxError::Client(error_chain(&e)))?;
        Ok(JmxPoller {
            cluster: cluster.into(),
            config,
            client,
            brokers: HashMap::new(),
        })
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn config(&self) -> &JmxConfig {
        &self.config
    }

    /// Time between two cycles.
    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    /// Reads one broker once (one HTTP request) and returns its sample
    /// stamped `now_ms`. Never fails: whatever went wrong is in
    /// [`BrokerSample::error`], next to the metrics that could be read.
    pub async fn sample_broker(&mut self, endpoint: &BrokerEndpoint, now_ms: i64) -> BrokerSample {
        let scraped = scrape(&self.client, &self.config, endpoint).await;
        self.finish(endpoint, now_ms, scraped)
    }

    /// Reads every configured broker concurrently and returns one sample
    /// per broker, in configuration order.
    pub async fn sample_cluster(&mut self, now_ms: i64) -> Vec<BrokerSample> {
        let started = Instant::now();
        let endpoints = self.config.brokers.clone();
        let scrapes = futures::future::join_all(
            endpoints
                .iter()
                .map(|endpoint| scrape(&self.client, &self.config, endpoint)),
        )
        .await;
        let samples: Vec<BrokerSample> = endpoints
            .iter()
            .zip(scrapes)
            .map(|(endpoint, scraped)| self.finish(endpoint, now_ms, scraped))
            .collect();
        tracing::debug!(
            cluster = %self.cluster,
            brokers = samples.len(),
            failed = samples.iter().filter(|s| s.error.is_some()).count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "jmx cycle done"
        );
        samples
    }

    /// Samples the cluster every `interval` and sends each broker sample to
    /// `tx`, until `shutdown` is cancelled or the receiver is gone. Samples
    /// are stamped with the scheduled tick time, so they line up across
    /// brokers and cycles.
    pub async fn run(mut self, tx: mpsc::Sender<BrokerSample>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let wall_base_ms = now_ms();
        let instant_base = tokio::time::Instant::now();
        'cycles: loop {
            let tick = tokio::select! {
                _ = shutdown.cancelled() => break,
                tick = ticker.tick() => tick,
            };
            let offset_ms = i64::try_from(tick.saturating_duration_since(instant_base).as_millis())
                .unwrap_or(i64::MAX);
            let samples = tokio::select! {
                _ = shutdown.cancelled() => break,
                samples = self.sample_cluster(wall_base_ms.saturating_add(offset_ms)) => samples,
            };
            for sample in samples {
                if tx.send(sample).await.is_err() {
                    break 'cycles;
                }
            }
        }
        tracing::info!(cluster = %self.cluster, "jmx collector stopped");
    }

    /// Turns one read into a sample: rates, corrections, error summary.
    fn finish(
        &mut self,
        endpoint: &BrokerEndpoint,
        now_ms: i64,
        scraped: Result<Scrape, String>,
    ) -> BrokerSample {
        let max_gap = self.config.interval * MAX_GAP_INTERVALS;
        let state = self
            .brokers
            .entry(endpoint.broker)
            .or_insert_with(|| BrokerState {
                rates: RateTracker::new(max_gap),
                last_error: None,
            });
        let mut sample = BrokerSample::new(self.cluster.clone(), endpoint.broker, now_ms);
        match scraped {
            Err(error) => {
                sample.error = Some(format!(
                    "{} {}: {error}",
                    endpoint.kind.as_str(),
                    redact_url(&endpoint.url)
                ));
            }
            Ok(scrape) => {
                let halve_idle = halve_idle(self.config.idle_correction, &scrape);
                for family in &scrape.families {
                    let mut series = match family.kind {
                        ValueKind::Gauge => family.series.clone(),
                        ValueKind::Counter => {
                            state.rates.update(family.metric, now_ms, &family.series)
                        }
                    };
                    series.sort_by(|a, b| a.0.cmp(&b.0));
                    for (topic, value) in series {
                        let value = correct(family.metric, value * family.scale, halve_idle);
                        if value.is_finite() {
                            sample.metrics.push(BrokerMetric {
                                name: family.metric.to_string(),
                                topic,
                                value,
                            });
                        }
                    }
                }
                if !scrape.failures.is_empty() {
                    sample.error = Some(summarise(&scrape, endpoint));
                }
            }
        }
        log_change(&self.cluster, endpoint, state, &sample);
        sample
    }
}

/// Reads `endpoint` once: one HTTP request, parsed.
async fn scrape(
    client: &reqwest::Client,
    config: &JmxConfig,
    endpoint: &BrokerEndpoint,
) -> Result<Scrape, String> {
    let plan = MetricPlan::for_endpoint(config, endpoint);
    let probe_version = config.idle_correction == IdleCorrection::Auto;
    let request = match endpoint.kind {
        EndpointKind::Jolokia => client
            .post(&endpoint.url)
            .header(CONTENT_TYPE, "application/json")
            .body(jolokia::request_body(&plan.jolokia, probe_version)),
        EndpointKind::Prometheus => client
            .get(&endpoint.url)
            .header(ACCEPT, "text/plain;version=0.0.4;q=1.0, */*;q=0.1"),
    };
    let request = match &endpoint.username {
        Some(user) => request.basic_auth(user, endpoint.password.as_ref().map(|p| p.expose())),
        None => request,
    };
    // reqwest puts the URL (with any password in it) into its errors: the
    // sample names the endpoint by its redacted URL instead.
    let describe = |error: reqwest::Error| {
        if error.is_timeout() {
            format!("no answer within {:?}", config.timeout)
        } else {
            error_chain(&error.without_url())
        }
    };
    let response = request.send().await.map_err(describe)?;
    let status = response.status();
    let body = response.bytes().await.map_err(describe)?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.trim().chars().take(200).collect();
        return Err(format!("HTTP {status}: {text}"));
    }
    match endpoint.kind {
        EndpointKind::Jolokia => jolokia::parse_response(&plan.jolokia, probe_version, &body),
        EndpointKind::Prometheus => {
            let text = std::str::from_utf8(&body)
                .map_err(|e| format!("exporter page is not UTF-8: {e}"))?;
            Ok(prom_text::to_scrape(&plan.prometheus, text))
        }
    }
}

/// Whether `RequestHandlerAvgIdlePercent` must be halved (see
/// [`IdleCorrection`]): the node is combined when it reports both a
/// controller and a broker metric.
fn halve_idle(correction: IdleCorrection, scrape: &Scrape) -> bool {
    match correction {
        IdleCorrection::Halve => true,
        IdleCorrection::None => false,
        IdleCorrection::Auto => {
            let combined = scrape.family(metric::ACTIVE_CONTROLLER_COUNT).is_some()
                && scrape.family(metric::UNDER_REPLICATED_PARTITIONS).is_some();
            combined
                && scrape
                    .version
                    .as_deref()
                    .and_then(major_minor)
                    .is_none_or(|version| version < IDLE_FIXED_IN)
        }
    }
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The idle metrics are fractions: halved where needed, then kept in 0..=1.
fn correct(metric_name: &str, value: f64, halve_idle: bool) -> f64 {
    match metric_name {
        metric::REQUEST_HANDLER_AVG_IDLE_PERCENT => {
            let value = if halve_idle { value / 2.0 } else { value };
            value.clamp(0.0, 1.0)
        }
        metric::NETWORK_PROCESSOR_AVG_IDLE_PERCENT => value.clamp(0.0, 1.0),
        _ => value,
    }
}

fn summarise(scrape: &Scrape, endpoint: &BrokerEndpoint) -> String {
    let failed = scrape.failures.len();
    let read = scrape.families.len();
    let mut text = format!(
        "{failed} metric read(s) failed on {} {} ({read} read): ",
        endpoint.kind.as_str(),
        redact_url(&endpoint.url)
    );
    text.push_str(
        &scrape
            .failures
            .iter()
            .take(LISTED_FAILURES)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    );
    if failed > LISTED_FAILURES {
        text.push_str(&format!("; and {} more", failed - LISTED_FAILURES));
    }
    text
}

fn log_change(
    cluster: &str,
    endpoint: &BrokerEndpoint,
    state: &mut BrokerState,
    sample: &BrokerSample,
) {
    if sample.error == state.last_error {
        return;
    }
    match &sample.error {
        Some(error) => tracing::warn!(
            cluster = %cluster,
            broker = endpoint.broker,
            url = %redact_url(&endpoint.url),
            error = %error,
            "broker metrics incomplete"
        ),
        None => tracing::info!(
            cluster = %cluster,
            broker = endpoint.broker,
            url = %redact_url(&endpoint.url),
            "broker metrics complete again"
        ),
    }
    state.last_error = sample.error.clone();
}

#[cfg(test)]
mod tests;
