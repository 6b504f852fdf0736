//! One sink's routing task and its destinations' lanes.
//!
//! The routing task only moves envelopes to the lane of their destination
//! (no I/O, so it never falls behind); a lane delivers its notifications
//! one at a time, oldest first, and backs off as a whole after a transient
//! failure — the next notification would meet the same outage. A lane
//! with nothing to do for a while ends; the next envelope starts a new one.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::status::OutboxStatus;
use super::{destination_key, Envelope, Outcome, Report, RetryPolicy};
use crate::{Sink, SinkMetrics};

/// How long an empty lane waits for work before it ends.
const IDLE_LANE: Duration = Duration::from_secs(600);

/// What every lane of an outbox shares.
#[derive(Clone)]
pub(super) struct LaneContext {
    pub reports: mpsc::UnboundedSender<Report>,
    pub metrics: SinkMetrics,
    pub policy: RetryPolicy,
    pub status: OutboxStatus,
}

/// Routes `envelopes` to one lane per destination until the outbox is
/// dropped, then waits for the lanes to stop.
pub(super) async fn route<S: Sink>(
    sink: Arc<S>,
    prefix: String,
    mut envelopes: mpsc::UnboundedReceiver<Envelope>,
    context: LaneContext,
) {
    let mut lanes: HashMap<String, mpsc::UnboundedSender<Envelope>> = HashMap::new();
    let mut running = JoinSet::new();
    while let Some(envelope) = envelopes.recv().await {
        // Reap lanes that ended while idle.
        while running.try_join_next().is_some() {}
        let envelope = match lanes.get(&envelope.destination) {
            Some(lane) => match lane.send(envelope) {
                Ok(()) => continue,
                // The lane ended while idle: start a new one.
                Err(refused) => refused.0,
            },
            None => envelope,
        };
        let (lane, queue) = mpsc::unbounded_channel();
        let destination = envelope.destination.clone();
        let key = destination_key(&prefix, &destination).to_string();
        if lane.send(envelope).is_ok() {
            running.spawn(run_lane(
                Arc::clone(&sink),
                destination.clone(),
                key,
                queue,
                context.clone(),
            ));
            lanes.insert(destination, lane);
        }
    }
    // The outbox is gone (shutdown): lanes stop once their queues close;
    // what they still hold stays undelivered in the alert state.
    drop(lanes);
    while running.join_next().await.is_some() {}
    tracing::info!(sink = sink.name(), "sink stopped");
}

/// A lane's retry state.
struct Backoff {
    policy: RetryPolicy,
    next_wait: Duration,
    /// When the next attempt may start; `None` while healthy.
    retry_at: Option<Instant>,
    /// Consecutive failures, for logging state changes only.
    failures: u32,
}

impl Backoff {
    fn new(policy: RetryPolicy) -> Self {
        Backoff {
            policy,
            next_wait: policy.initial_interval,
            retry_at: None,
            failures: 0,
        }
    }

    fn failed(&mut self) -> Duration {
        let wait = self.next_wait;
        self.retry_at = Some(Instant::now() + wait);
        self.next_wait = (self.next_wait * 2).min(self.policy.max_interval);
        self.failures += 1;
        wait
    }

    fn recovered(&mut self) -> u32 {
        let failures = self.failures;
        *self = Backoff::new(self.policy);
        failures
    }
}

/// Delivers one destination's notifications until its queue closes or it
/// has been idle for [`IDLE_LANE`].
async fn run_lane<S: Sink>(
    sink: Arc<S>,
    destination: String,
    key: String,
    mut queue: mpsc::UnboundedReceiver<Envelope>,
    context: LaneContext,
) {
    let name = sink.name();
    let mut pending: VecDeque<Envelope> = VecDeque::new();
    let mut backoff = Backoff::new(context.policy);
    loop {
        let wake = match (pending.is_empty(), backoff.retry_at) {
            (true, _) => Instant::now() + IDLE_LANE,
            (false, Some(at)) => at,
            (false, None) => Instant::now(),
        };
        tokio::select! {
            biased;
            envelope = queue.recv() => match envelope {
                Some(envelope) => {
                    enqueue(&mut pending, envelope, name, &context);
                    continue;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
        let Some(envelope) = pending.front().cloned() else {
            // Idle: close the queue, then serve whatever raced in.
            queue.close();
            while let Ok(envelope) = queue.try_recv() {
                enqueue(&mut pending, envelope, name, &context);
            }
            if pending.is_empty() {
                break;
            }
            continue;
        };
        let attempt = tokio::time::timeout(
            context.policy.attempt_timeout,
            sink.deliver_to(&envelope.alert, &key),
        )
        .await;
        let failure = match attempt {
            Ok(Ok(())) => None,
            Ok(Err(error)) if error.is_permanent() => {
                context.metrics.errors.with_label_values(&[name]).inc();
                context.metrics.rejected.with_label_values(&[name]).inc();
                tracing::error!(destination = %destination, fingerprint = %envelope.alert.alert.fingerprint, error = %error, "notification refused for good, not retried");
                finish(
                    &mut pending,
                    &envelope,
                    Outcome::Rejected(error.to_string()),
                    name,
                    &context,
                );
                continue;
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!(
                "no answer within {:?}",
                context.policy.attempt_timeout
            )),
        };
        match failure {
            None => {
                let failures = backoff.recovered();
                context.status.recovered(&destination);
                if failures > 0 {
                    tracing::info!(destination = %destination, failures, "destination delivers again");
                }
                context.metrics.sent.with_label_values(&[name]).inc();
                tracing::info!(destination = %destination, fingerprint = %envelope.alert.alert.fingerprint, state = envelope.alert.alert.state.as_str(), repeat = envelope.alert.repeat, "notification delivered");
                finish(&mut pending, &envelope, Outcome::Delivered, name, &context);
            }
            Some(error) => {
                context.metrics.errors.with_label_values(&[name]).inc();
                let wait = backoff.failed();
                if backoff.failures == 1 {
                    tracing::warn!(destination = %destination, fingerprint = %envelope.alert.alert.fingerprint, error = %error, "destination failing; notifications wait and are retried until delivered");
                } else {
                    tracing::debug!(destination = %destination, failures = backoff.failures, retry_in = ?wait, error = %error, "destination still failing");
                }
                context.status.failing(&destination, &error);
            }
        }
    }
    for envelope in pending.drain(..) {
        forget(&envelope, name, &context);
    }
}

/// Queues `envelope`, replacing an older notification of the same alert.
fn enqueue(
    pending: &mut VecDeque<Envelope>,
    envelope: Envelope,
    sink: &str,
    context: &LaneContext,
) {
    let older = pending
        .iter()
        .position(|e| e.alert.alert.fingerprint == envelope.alert.alert.fingerprint)
        .and_then(|index| pending.remove(index));
    if let Some(old) = older {
        forget(&old, sink, context);
        report(&old, Outcome::Superseded, context);
    }
    pending.push_back(envelope);
}

/// Removes the front notification and reports its outcome.
fn finish(
    pending: &mut VecDeque<Envelope>,
    envelope: &Envelope,
    outcome: Outcome,
    sink: &str,
    context: &LaneContext,
) {
    pending.pop_front();
    forget(envelope, sink, context);
    report(envelope, outcome, context);
}

/// Takes a notification off the backlog figures.
fn forget(envelope: &Envelope, sink: &str, context: &LaneContext) {
    context
        .status
        .remove(&envelope.destination, envelope.queued_ms);
    context.metrics.undelivered.with_label_values(&[sink]).dec();
}

fn report(envelope: &Envelope, outcome: Outcome, context: &LaneContext) {
    let report = Report {
        fingerprint: envelope.alert.alert.fingerprint.clone(),
        sequence: envelope.sequence,
        destination: envelope.destination.clone(),
        outcome,
    };
    if context.reports.send(report).is_err() {
        tracing::debug!(destination = %envelope.destination, "no one listens for delivery reports (shutting down)");
    }
}
