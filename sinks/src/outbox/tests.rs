//! The outbox's promises, on in-memory sinks with paused time: nothing is
//! dropped after any number of failures, one failing destination does not
//! delay another, a permanent refusal ends at once, a newer notification
//! replaces a waiting one.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};
use lagwatch_model::AlertState;
use prometheus::Registry;

use super::*;
use crate::SinkError;

/// Fails while `down` is set; records what it delivered, per key.
#[derive(Clone, Default)]
struct Switchable {
    down: Arc<AtomicBool>,
    refuse: Arc<AtomicBool>,
    attempts: Arc<AtomicU32>,
    delivered: Arc<Mutex<Vec<(String, String)>>>,
}

impl Sink for Switchable {
    fn name(&self) -> &'static str {
        "switchable"
    }

    fn destinations(&self, alert: &Notification) -> Vec<String> {
        alert.recipients.webhooks.clone()
    }

    async fn deliver(&self, _alert: &Notification) -> Result<(), SinkError> {
        Err(SinkError::Delivery("use deliver_to".into()))
    }

    async fn deliver_to(&self, alert: &Notification, key: &str) -> Result<(), SinkError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return Err(SinkError::Rejected("HTTP 400".into()));
        }
        if key == "blackhole" {
            // Never answers: the attempt timeout must cut it off.
            std::future::pending::<()>().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Delivery("connection refused".into()));
        }
        if let Ok(mut delivered) = self.delivered.lock() {
            delivered.push((key.to_string(), alert.alert.fingerprint.clone()));
        }
        Ok(())
    }
}

fn alert(fingerprint: &str, keys: &[&str]) -> Notification {
    let mut monitor = MonitorBuilder::new("g").emails(&[]).build();
    monitor.alerting.webhooks = keys.iter().map(|k| k.to_string()).collect();
    AlertEventBuilder::firing(&monitor)
        .fingerprint(fingerprint)
        .notification()
}

fn outbox(sink: Switchable) -> (Outbox, mpsc::UnboundedReceiver<Report>, SinkMetrics) {
    let metrics = SinkMetrics::register(&Registry::new()).expect("metrics");
    let policy = RetryPolicy {
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(300),
        attempt_timeout: Duration::from_secs(10),
    };
    let (mut builder, reports) = Outbox::builder(metrics.clone(), policy);
    tokio::spawn(builder.add(sink));
    (builder.build(), reports, metrics)
}

fn submit(outbox: &Outbox, alert: &Notification, sequence: u64) -> Vec<String> {
    let destinations = outbox.destinations(alert);
    outbox.submit(alert, sequence, &destinations);
    destinations
}

#[tokio::test(start_paused = true)]
async fn a_long_outage_delays_but_never_drops() {
    let sink = Switchable::default();
    sink.down.store(true, Ordering::SeqCst);
    let (outbox, mut reports, metrics) = outbox(sink.clone());
    let destinations = submit(&outbox, &alert("f1", &["mail"]), 1);
    assert_eq!(destinations, vec!["switchable:mail".to_string()]);
    // An hour of failures: far beyond any fixed retry budget.
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    assert!(reports.try_recv().is_err(), "nothing reported while down");
    assert!(sink.attempts.load(Ordering::SeqCst) > 10);
    assert_eq!(
        metrics.undelivered.with_label_values(&["switchable"]).get(),
        1
    );
    let snapshot = outbox.status().snapshot();
    assert_eq!(snapshot["switchable:mail"].pending, 1);
    assert!(snapshot["switchable:mail"].last_error.is_some());
    sink.down.store(false, Ordering::SeqCst);
    let report = reports.recv().await.expect("report");
    assert_eq!(report.outcome, Outcome::Delivered);
    assert_eq!(report.sequence, 1);
    assert_eq!(sink.delivered.lock().expect("lock").len(), 1);
    assert_eq!(
        metrics.undelivered.with_label_values(&["switchable"]).get(),
        0
    );
    assert_eq!(
        outbox.status().snapshot()["switchable:mail"].last_error,
        None
    );
}

#[tokio::test(start_paused = true)]
async fn a_blackholed_destination_does_not_delay_another() {
    let sink = Switchable::default();
    let (outbox, mut reports, _) = outbox(sink.clone());
    for i in 0..200 {
        submit(&outbox, &alert(&format!("hole{i}"), &["blackhole"]), i);
    }
    let started = tokio::time::Instant::now();
    submit(&outbox, &alert("other", &["mail"]), 1_000);
    let report = reports.recv().await.expect("report");
    assert_eq!(report.destination, "switchable:mail");
    assert_eq!(report.outcome, Outcome::Delivered);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    // The blackholed lane still holds all of its own.
    let mut waiting = 0;
    for _ in 0..1_000 {
        waiting = outbox.status().snapshot()["switchable:blackhole"].pending;
        if waiting == 200 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(waiting, 200);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_refusal_ends_at_once() {
    let sink = Switchable::default();
    sink.refuse.store(true, Ordering::SeqCst);
    let (outbox, mut reports, metrics) = outbox(sink.clone());
    submit(&outbox, &alert("f", &["mail"]), 7);
    let report = reports.recv().await.expect("report");
    assert!(matches!(report.outcome, Outcome::Rejected(ref why) if why.contains("400")));
    assert_eq!(sink.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.rejected.with_label_values(&["switchable"]).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_newer_notification_replaces_a_waiting_one() {
    let sink = Switchable::default();
    sink.down.store(true, Ordering::SeqCst);
    let (outbox, mut reports, _) = outbox(sink.clone());
    submit(&outbox, &alert("f", &["mail"]), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut resolve = alert("f", &["mail"]);
    resolve.alert.state = AlertState::Resolved;
    submit(&outbox, &resolve, 2);
    let first = reports.recv().await.expect("report");
    assert_eq!((first.sequence, first.outcome), (1, Outcome::Superseded));
    sink.down.store(false, Ordering::SeqCst);
    let second = reports.recv().await.expect("report");
    assert_eq!((second.sequence, second.outcome), (2, Outcome::Delivered));
    assert_eq!(sink.delivered.lock().expect("lock").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_the_named_destinations_get_a_resend() {
    let sink = Switchable::default();
    let (outbox, mut reports, _) = outbox(sink.clone());
    let two = alert("f", &["a", "b"]);
    outbox.submit(&two, 3, &["switchable:b".to_string()]);
    let report = reports.recv().await.expect("report");
    assert_eq!(report.destination, "switchable:b");
    tokio::task::yield_now().await;
    assert_eq!(
        *sink.delivered.lock().expect("lock"),
        vec![("b".to_string(), "f".to_string())]
    );
}
