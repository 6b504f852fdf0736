//! The outbox: every notification waits in a queue of its destination until
//! that destination confirms it, refuses it for good, or a newer
//! notification of the same alert takes its place.
//!
//! Why a queue per destination, not per sink: one team's webhook that
//! never answers must not delay another team's webhook, and an SMTP outage
//! must not delay a PagerDuty page. So each destination (the e-mail relay,
//! each configured webhook, Slack, PagerDuty, each team webhook URL) gets a
//! *lane*: its own task, its own pending list and its own retry state.
//!
//! Why never give up: an alert that was paged must reach its people even
//! after an outage longer than any retry budget. A transient failure (no
//! connection, timeout, 5xx, 429) backs the whole lane off, doubling up to
//! [`RetryPolicy::max_interval`], and the lane keeps trying; nothing is
//! ever dropped or reported delivered that was not. A permanent refusal (a
//! 4xx, an address lettre cannot parse) ends that one notification at once
//! and is reported as [`Outcome::Rejected`].
//!
//! Why evaluation never waits: [`Outbox::submit`] only puts envelopes on
//! unbounded channels read by routing tasks that do no I/O; memory stays
//! bounded because a lane keeps at most one notification per alert (a
//! newer one [supersedes](Outcome::Superseded) the older).
//!
//! Outcomes come back as [`Report`]s on the channel [`Outbox::new`]
//! returns; the evaluator records them in its durable alert state.
//!
//! # Layout
//! - `lane`: one destination's queue and retry loop.
//! - `status`: the per-destination backlog shown on `/readyz` and
//!   `/metrics`.

mod lane;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lagwatch_model::Notification;
use tokio::sync::mpsc;

pub use status::{DestinationStatus, OutboxStatus};

use crate::{Sink, SinkMetrics};

/// How a lane retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub initial_interval: Duration,
    /// Longest wait between two attempts (the cap of the doubling).
    pub max_interval: Duration,
    /// Longest one delivery attempt may take before it counts as failed.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

/// How a destination finished with one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination confirmed it.
    Delivered,
    /// The destination refused it for good; the reason says why.
    Rejected(String),
    /// A newer notification of the same alert replaced it before it could
    /// be delivered.
    Superseded,
}

/// One destination's outcome for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub fingerprint: String,
    /// The notification's sequence as given to [`Outbox::submit`].
    pub sequence: u64,
    pub destination: String,
    pub outcome: Outcome,
}

/// A notification on its way to one destination.
#[derive(Debug, Clone)]
struct Envelope {
    alert: Arc<Notification>,
    sequence: u64,
    destination: String,
    /// Wall time it was queued (ms), for the backlog's age.
    queued_ms: i64,
}

/// A sink's destinations for an alert, as outbox ids.
type DestinationsOf = Box<dyn Fn(&Notification) -> Vec<String> + Send + Sync>;

/// The routes of one sink: which destinations an alert has there, and the
/// queue of the sink's routing task.
struct Route {
    sink: &'static str,
    destinations: DestinationsOf,
    queue: mpsc::UnboundedSender<Envelope>,
}

/// Hands notifications to the destinations' lanes; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    routes: Arc<Vec<Route>>,
    status: OutboxStatus,
    metrics: SinkMetrics,
}

/// Collects the sinks of an [`Outbox`]; each [`OutboxBuilder::add`] returns
/// the sink's task for the caller to run and supervise.
pub struct OutboxBuilder {
    routes: Vec<Route>,
    names: HashMap<&'static str, usize>,
    reports: mpsc::UnboundedSender<Report>,
    metrics: SinkMetrics,
    policy: RetryPolicy,
    status: OutboxStatus,
}

impl Outbox {
    /// A builder and the channel on which destinations report outcomes.
    pub fn builder(
        metrics: SinkMetrics,
        policy: RetryPolicy,
    ) -> (OutboxBuilder, mpsc::UnboundedReceiver<Report>) {
        let (reports, reports_rx) = mpsc::unbounded_channel();
        let builder = OutboxBuilder {
            routes: Vec::new(),
            names: HashMap::new(),
            reports,
            metrics,
            policy,
            status: OutboxStatus::default(),
        };
        (builder, reports_rx)
    }

    /// The destinations `alert` has (one per sink that takes it, one per
    /// URL for team webhooks).
    pub fn destinations(&self, alert: &Notification) -> Vec<String> {
        self.routes
            .iter()
            .flat_map(|route| (route.destinations)(alert))
            .collect()
    }

    /// Queues `alert` for each of `destinations` (as returned by
    /// [`Outbox::destinations`], possibly fewer after a restart). Never
    /// waits. A destination whose sink has stopped is reported rejected.
    pub fn submit(&self, alert: &Notification, sequence: u64, destinations: &[String]) {
        let alert = Arc::new(alert.clone());
        let queued_ms = lagwatch_model::now_ms();
        for route in self.routes.iter() {
            for destination in (route.destinations)(&alert) {
                if !destinations.contains(&destination) {
                    continue;
                }
                let envelope = Envelope {
                    alert: Arc::clone(&alert),
                    sequence,
                    destination,
                    queued_ms,
                };
                // Counted as waiting from now: a lane busy with a slow
                // attempt has not read it yet, but it is owed.
                self.status.add(&envelope.destination, queued_ms);
                self.metrics
                    .undelivered
                    .with_label_values(&[route.sink])
                    .inc();
                if let Err(refused) = route.queue.send(envelope) {
                    let envelope = refused.0;
                    self.status.remove(&envelope.destination, queued_ms);
                    self.metrics
                        .undelivered
                        .with_label_values(&[route.sink])
                        .dec();
                    tracing::error!(destination = %envelope.destination, fingerprint = %envelope.alert.alert.fingerprint, "sink stopped; notification not queued");
                }
            }
        }
    }

    /// The backlog of every destination.
    pub fn status(&self) -> &OutboxStatus {
        &self.status
    }
}

impl OutboxBuilder {
    /// Adds `sink`; returns its routing task, which runs until the last
    /// [`Outbox`] clone is dropped and its lanes have stopped.
    pub fn add<S: Sink>(&mut self, sink: S) -> impl std::future::Future<Output = ()> + Send {
        // Two sinks of one kind (two `[[webhooks]]`) get distinct names.
        let count = self.names.entry(sink.name()).or_insert(0);
        *count += 1;
        let prefix = match *count {
            1 => sink.name().to_string(),
            n => format!("{}#{n}", sink.name()),
        };
        let sink = Arc::new(sink);
        let (queue, envelopes) = mpsc::unbounded_channel();
        let routing_sink = Arc::clone(&sink);
        let route_prefix = prefix.clone();
        self.routes.push(Route {
            sink: "",
            destinations: Box::new(move |alert| {
                routing_sink
                    .destinations(alert)
                    .into_iter()
                    .map(|key| destination_id(&route_prefix, &key))
                    .collect()
            }),
            queue,
        });
        let sink_name = sink.name();
        if let Some(route) = self.routes.last_mut() {
            route.sink = sink_name;
        }
        lane::route(
            sink,
            prefix,
            envelopes,
            lane::LaneContext {
                reports: self.reports.clone(),
                metrics: self.metrics.clone(),
                policy: self.policy,
                status: self.status.clone(),
            },
        )
    }

    /// The outbox over the sinks added so far.
    pub fn build(self) -> Outbox {
        Outbox {
            routes: Arc::new(self.routes),
            status: self.status,
            metrics: self.metrics,
        }
    }
}

/// A destination's id: the sink's name, plus the sink's own key where it
/// has several destinations (`monitor_webhook:1f2e...`).
fn destination_id(prefix: &str, key: &str) -> String {
    if key.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}:{key}")
    }
}

/// The sink's own key of a destination id made by [`destination_id`].
fn destination_key<'a>(prefix: &str, destination: &'a str) -> &'a str {
    destination
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or("")
}

#[cfg(test)]
mod tests;
