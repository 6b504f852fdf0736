//! Sink metrics, and [`SinkRunner`]: one notification through one sink with
//! a bounded number of attempts — how the sink tests exercise each sink's
//! wire behaviour. The agent delivers through the [`crate::outbox`], which
//! never gives up.

use std::time::Duration;

use backoff::Backoff;
use lagwatch_model::Notification;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::mpsc;

use crate::Sink;

/// Delivery counters, labelled by sink.
#[derive(Clone)]
pub struct SinkMetrics {
    pub sent: IntCounterVec,
    pub errors: IntCounterVec,
    /// Notifications refused for good (never retried).
    pub rejected: IntCounterVec,
    /// Notifications waiting in the outbox, delivered not yet.
    pub undelivered: IntGaugeVec,
}

impl SinkMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = SinkMetrics {
            sent: IntCounterVec::new(
                Opts::new("lagwatch_sink_alerts_sent_total", "Notifications delivered"),
                &["sink"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "lagwatch_sink_errors_total",
                    "Failed delivery attempts (each is retried)",
                ),
                &["sink"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "lagwatch_sink_rejected_total",
                    "Notifications a destination refused for good (not retried)",
                ),
                &["sink"],
            )?,
            undelivered: IntGaugeVec::new(
                Opts::new(
                    "lagwatch_notifications_undelivered",
                    "Notifications waiting for their destination (retried until delivered)",
                ),
                &["sink"],
            )?,
        };
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.undelivered.clone()))?;
        registry.register(Box::new(metrics.sent.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        Ok(metrics)
    }
}

/// Drives one sink: takes alerts from a channel and delivers each, retrying
/// with exponential backoff until it succeeds or `max_attempts` is reached.
/// A [permanent](crate::SinkError::is_permanent) error ends the attempts at
/// once.
pub struct SinkRunner<S> {
    pub sink: S,
    pub metrics: SinkMetrics,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl<S: Sink> SinkRunner<S> {
    pub fn new(sink: S, metrics: SinkMetrics) -> Self {
        SinkRunner {
            sink,
            metrics,
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// Runs until the sending side of `alerts` is dropped and the queue is
    /// drained, so in-flight alerts are delivered on shutdown.
    pub async fn run(self, mut alerts: mpsc::Receiver<Notification>) {
        while let Some(alert) = alerts.recv().await {
            self.deliver_with_retry(&alert).await;
        }
        tracing::info!(sink = self.sink.name(), "sink stopped");
    }

    /// Delivers one alert with retries; returns whether it got through.
    pub async fn deliver_with_retry(&self, notification: &Notification) -> bool {
        let alert = &notification.alert;
        if !self.sink.accepts(notification) {
            return true;
        }
        let name = self.sink.name();
        let mut backoff = Backoff::new(self.initial_backoff, self.max_backoff);
        for attempt in 1..=self.max_attempts {
            match self.sink.deliver(notification).await {
                Ok(()) => {
                    self.metrics.sent.with_label_values(&[name]).inc();
                    tracing::info!(sink = name, fingerprint = %alert.fingerprint, state = alert.state.as_str(), "notification delivered");
                    return true;
                }
                Err(error) if error.is_permanent() => {
                    self.metrics.errors.with_label_values(&[name]).inc();
                    tracing::error!(sink = name, fingerprint = %alert.fingerprint, attempt, error = %error, "notification rejected, not retried");
                    return false;
                }
                Err(error) => {
                    self.metrics.errors.with_label_values(&[name]).inc();
                    tracing::warn!(sink = name, fingerprint = %alert.fingerprint, attempt, error = %error, "notification failed, will retry");
                    if attempt < self.max_attempts {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        }
        tracing::error!(sink = name, fingerprint = %alert.fingerprint, attempts = self.max_attempts, "notification given up after all retries");
        false
    }
}

/// Exponential backoff without external crates.
mod backoff {
    use std::time::Duration;

    pub struct Backoff {
        next: Duration,
        max: Duration,
    }

    impl Backoff {
        pub fn new(initial: Duration, max: Duration) -> Self {
            Backoff { next: initial, max }
        }

        pub fn next_delay(&mut self) -> Duration {
            let delay = self.next;
            self.next = (self.next * 2).min(self.max);
            delay
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};

    use super::*;
    use crate::SinkError;

    struct Flaky {
        failures_left: Arc<AtomicU32>,
        delivered: Arc<AtomicU32>,
    }

    impl Sink for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        async fn deliver(&self, _alert: &Notification) -> Result<(), SinkError> {
            if self.failures_left.load(Ordering::SeqCst) > 0 {
                self.failures_left.fetch_sub(1, Ordering::SeqCst);
                return Err(SinkError::Delivery("down".into()));
            }
            self.delivered.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    struct Refusing {
        calls: Arc<AtomicU32>,
    }

    impl Sink for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }
        async fn deliver(&self, _alert: &Notification) -> Result<(), SinkError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(SinkError::Rejected("HTTP 400".into()))
        }
    }

    fn alert() -> Notification {
        let monitor = MonitorBuilder::new("g").lag_threshold(5).build();
        AlertEventBuilder::firing(&monitor)
            .fingerprint("f")
            .lag(10, 10)
            .notification()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_delivered_exactly_once() {
        let delivered = Arc::new(AtomicU32::new(0));
        let sink = Flaky {
            failures_left: Arc::new(AtomicU32::new(3)),
            delivered: delivered.clone(),
        };
        let registry = Registry::new();
        let runner = SinkRunner::new(sink, SinkMetrics::register(&registry).expect("metrics"));
        assert!(runner.deliver_with_retry(&alert()).await);
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
        assert_eq!(runner.metrics.errors.with_label_values(&["flaky"]).get(), 3);
        assert_eq!(runner.metrics.sent.with_label_values(&["flaky"]).get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_error_is_not_retried() {
        let calls = Arc::new(AtomicU32::new(0));
        let registry = Registry::new();
        let runner = SinkRunner::new(
            Refusing {
                calls: calls.clone(),
            },
            SinkMetrics::register(&registry).expect("metrics"),
        );
        assert!(!runner.deliver_with_retry(&alert()).await);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            runner.metrics.errors.with_label_values(&["refusing"]).get(),
            1
        );
        assert_eq!(
            runner.metrics.sent.with_label_values(&["refusing"]).get(),
            0
        );
    }
}
