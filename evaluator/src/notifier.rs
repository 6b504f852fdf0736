//! From alert transitions to notifications: silences, inhibition, repeats,
//! and the delivery record that makes restarts safe.
//!
//! For every transition the engine reports, the notifier
//! 1. decides whether it is muted — by an active silence of the alert's
//!    team, or (lag alerts only) by a firing broker alert of the same
//!    cluster that inhibits lag alerts — and marks the event with the
//!    reason (it is still recorded in history);
//! 2. records it in the alert-state topic as not yet delivered, with the
//!    destinations it is owed to, and waits for the broker's
//!    acknowledgement;
//! 3. hands it to the [`Outbox`] (never waits for a sink) and, as each
//!    destination [reports](Notifier::report) back, records what is still
//!    owed; once nothing is, the record says delivered. A destination that
//!    refused it for good is recorded with its reason; nothing is ever
//!    recorded delivered that a destination did not confirm.
//!
//! Recipients (the monitor's e-mail addresses and webhook URLs) are looked
//! up by monitor id each time a notification is sent, never recorded: the
//! alert-state and alert-event topics are shared, and global destinations
//! must not learn a team's addresses. See [`Notifier::recipients_for`].
//!
//! A still-firing, unmuted alert is sent again every repeat interval (the
//! monitor's `repeat_interval_secs`, else the rules file's). After a
//! restart or rebalance the engine takes over recorded alerts; the notifier
//! then [adopts](Notifier::adopt) them: it resumes their repeats and sends
//! again whatever was recorded but not confirmed delivered.

use std::collections::HashMap;
use std::sync::Arc;

use lagwatch_model::matching::Matcher;
use lagwatch_model::{
    now_ms, AlertEvent, AlertState, Monitor, Notification, Recipients, Rule, Silence,
};
use lagwatch_rules::RuleSet;
use lagwatch_sinks::{Outbox, Outcome, Report};
use lagwatch_store::monitor_watch::MonitorList;
use tokio::sync::watch;

use crate::alert_state::{AlertStateStore, DeliveryFailure, StoredAlert};
use crate::engine::Vanished;
use crate::event_log::EventLog;
use crate::metrics::EvaluatorMetrics;

/// `muted_by` of a firing `lag_status` alert's status change: recorded in
/// history, not sent.
pub const STATUS_CHANGE_NOT_PAGED: &str = "status change while firing (not paged)";

/// What the notifier tracks of a firing alert.
#[derive(Debug, Clone)]
struct Tracked {
    /// The latest notification (muted or not) of the alert.
    event: Notification,
    /// Who it went to, when this process knows (not after an adoption:
    /// recipients are never recorded).
    recipients: Option<Recipients>,
    last_sent_ms: i64,
    /// Whether the firing notification went out (not muted).
    sent: bool,
    /// Sequence of the latest notification of this fingerprint.
    sequence: u64,
}

/// The destinations still owed the latest notification of an alert.
#[derive(Debug, Clone)]
struct Owed {
    sequence: u64,
    destinations: Vec<String>,
    failures: Vec<DeliveryFailure>,
    /// The notification itself (a refusal is published with it).
    event: Notification,
}

/// The notification stage between the engine and the sinks.
pub struct Notifier {
    outbox: Outbox,
    state: Option<AlertStateStore>,
    silences: watch::Receiver<Vec<Silence>>,
    monitors: MonitorList,
    rules: Arc<RuleSet>,
    tracked: HashMap<String, Tracked>,
    /// Adopted notifications not confirmed delivered, re-checked at the
    /// given wall time (the previous owner may still be delivering them).
    redeliveries: HashMap<String, i64>,
    /// How long a previous owner gets to confirm a notification.
    redelivery_grace_ms: i64,
    sequence: u64,
    /// Latest notification per alert and who still owes its delivery.
    owed: HashMap<String, Owed>,
    /// Where every notification record goes for history.
    events: Option<EventLog>,
    /// Whether a monitor still covers a group (compiled patterns cached).
    matcher: Matcher,
    metrics: EvaluatorMetrics,
    /// Which shared sinks may receive each team's alerts.
    routing: crate::routing::SharedSinkRouting,
    /// Mail recipients of broker alerts (`evaluator.broker_alert_emails`).
    broker_emails: Vec<String>,
}

impl Notifier {
    /// A notifier over `outbox`; feed the outbox's reports to
    /// [`Notifier::report`].
    pub fn new(
        outbox: Outbox,
        state: Option<AlertStateStore>,
        silences: watch::Receiver<Vec<Silence>>,
        monitors: MonitorList,
        rules: Arc<RuleSet>,
        metrics: EvaluatorMetrics,
    ) -> Self {
        Notifier {
            outbox,
            state,
            silences,
            monitors,
            rules,
            tracked: HashMap::new(),
            redeliveries: HashMap::new(),
            redelivery_grace_ms: 30_000,
            sequence: 0,
            owed: HashMap::new(),
            events: None,
            matcher: Matcher::new(),
            metrics,
            routing: Default::default(),
            broker_emails: Vec::new(),
        }
    }

    /// Mails broker alerts to `emails`.
    pub fn with_broker_recipients(mut self, emails: Vec<String>) -> Self {
        self.broker_emails = emails;
        self
    }

    /// Sends a team's alerts to the shared sinks only where `routing`
    /// allows (every alert everywhere without).
    pub fn with_routing(mut self, routing: crate::routing::SharedSinkRouting) -> Self {
        self.routing = routing;
        self
    }

    /// Publishes every notification record (sent, muted, reminder,
    /// re-send) to `events` for history.
    pub fn with_event_log(mut self, events: EventLog) -> Self {
        self.events = Some(events);
        self
    }

    /// How long an adopted, unconfirmed notification waits for its previous
    /// owner's confirmation before it is sent again (default 30 s).
    pub fn with_redelivery_grace(mut self, grace: std::time::Duration) -> Self {
        self.redelivery_grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// Number of firing alerts whose repeats this instance owns.
    pub fn tracked(&self) -> usize {
        self.tracked.len()
    }

    /// The resolves of firing alerts that `monitors` no longer back: the
    /// monitor was deleted, moved to another team or cluster, or no longer
    /// covers the group. Each carries the reason; hand them to
    /// [`Notifier::notify`] like any transition. Broker alerts are not
    /// monitors' and are left alone.
    pub fn obsolete(&mut self, monitors: &[Monitor], now: i64) -> Vec<AlertEvent> {
        let mut resolves = Vec::new();
        for tracked in self.tracked.values() {
            let event = &tracked.event.alert;
            if !event.rule.is_monitor_rule() {
                continue;
            }
            let reason = match monitors.iter().find(|m| m.id == event.monitor_id) {
                None => Some(format!("monitor {} was deleted", event.monitor_id)),
                Some(m) if m.team != event.team => {
                    Some(format!("monitor {} now belongs to team {}", m.id, m.team))
                }
                Some(m) if m.cluster != event.cluster => Some(format!(
                    "monitor {} now watches cluster {}",
                    m.id, m.cluster
                )),
                Some(m) if !self.matcher.covers_group(m, &event.consumer_group) => Some(format!(
                    "monitor {} no longer covers group {}",
                    m.id, event.consumer_group
                )),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                let mut resolve = event.clone();
                resolve.state = AlertState::Resolved;
                resolve.ts_ms = now;
                resolve.partitions = Vec::new();
                resolve.reason = Some(reason);
                resolves.push(resolve);
            }
        }
        resolves
    }

    /// The resolves of the firing alerts a [`Vanished`] subject leaves
    /// behind (every lag alert of the monitor on the group, or only the
    /// topic alert of the vanished topic), each carrying the reason; hand
    /// them to [`Notifier::notify`] like any transition, which also
    /// forgets their repeats.
    pub fn vanished(&self, gone: &Vanished) -> Vec<AlertEvent> {
        self.tracked
            .values()
            .map(|tracked| &tracked.event.alert)
            .filter(|event| {
                event.rule.is_monitor_rule()
                    && event.monitor_id == gone.monitor_id
                    && event.cluster == gone.cluster
                    && event.consumer_group == gone.group
                    && match &gone.topic {
                        None => true,
                        Some(topic) => {
                            event.rule == Rule::TopicLagThreshold
                                && event.topic.as_ref() == Some(topic)
                        }
                    }
            })
            .map(|event| {
                let mut resolve = event.clone();
                resolve.state = AlertState::Resolved;
                resolve.ts_ms = gone.ts_ms;
                resolve.partitions = Vec::new();
                resolve.reason = Some(gone.reason.clone());
                resolve
            })
            .collect()
    }

    /// Records that a firing `lag_status` alert changed its error status
    /// (STALL → STOP, ...) without paging anyone — one incident is one
    /// page: the event goes to history (an `alert_events` row with the new
    /// `status`, `muted_by` [`STATUS_CHANGE_NOT_PAGED`]), and the alert's
    /// later reminders and resolve carry the new status and partitions.
    pub fn record_status_change(&mut self, event: AlertEvent) -> Notification {
        if let Some(tracked) = self.tracked.get_mut(&event.fingerprint) {
            tracked.event.alert.status = event.status.clone();
            tracked.event.alert.partitions = event.partitions.clone();
        }
        let notification = Notification {
            muted_by: Some(STATUS_CHANGE_NOT_PAGED.to_string()),
            ..Notification::new(event)
        };
        if let Some(events) = &self.events {
            events.publish(&notification);
        }
        let event = &notification.alert;
        tracing::info!(
            fingerprint = %event.fingerprint,
            cluster = %event.cluster,
            group = %event.consumer_group,
            status = event.status.as_deref().unwrap_or(""),
            "firing lag_status alert changed status (recorded, not paged)"
        );
        notification
    }

    /// Handles one transition; returns the notification as recorded (with
    /// `muted_by` set when it was not sent) and the recipients it went to.
    pub async fn notify(&mut self, event: AlertEvent) -> Notification {
        let now = now_ms();
        let recipients = self.recipients_for(&event);
        let muted_by = match event.state {
            AlertState::Firing => self.mute_reason(&event, now),
            // A resolve is sent exactly when its firing was sent.
            AlertState::Resolved => match self.tracked.get(&event.fingerprint) {
                Some(t) if !t.sent => Some(
                    t.event
                        .muted_by
                        .clone()
                        .unwrap_or_else(|| "muted when firing".into()),
                ),
                _ => None,
            },
        };
        let event = Notification {
            muted_by,
            ..Notification::new(event)
        }
        .to(recipients.clone());
        let fingerprint = event.alert.fingerprint.clone();
        self.redeliveries.remove(&fingerprint);
        let sequence = self.next_sequence();
        match event.alert.state {
            AlertState::Firing => {
                self.tracked.insert(
                    fingerprint,
                    Tracked {
                        event: event.clone(),
                        recipients: Some(recipients),
                        last_sent_ms: now,
                        sent: event.muted_by.is_none(),
                        sequence,
                    },
                );
            }
            AlertState::Resolved => {
                self.tracked.remove(&fingerprint);
            }
        }
        self.record_and_send(event.clone(), now, sequence, None)
            .await;
        event
    }

    /// Takes over an alert recorded by an earlier process (the engine
    /// recalled it): resumes repeats of a firing one and re-sends a
    /// notification that was not confirmed delivered.
    pub async fn adopt(&mut self, fingerprint: &str) {
        let Some(state) = &self.state else { return };
        let Some(record) = state.get(fingerprint) else {
            return;
        };
        let sequence = self.next_sequence();
        if record.is_firing() {
            self.tracked.insert(
                fingerprint.to_string(),
                Tracked {
                    event: record.event.clone(),
                    recipients: None,
                    last_sent_ms: record.last_sent_ms,
                    sent: record.event.muted_by.is_none(),
                    sequence,
                },
            );
        }
        if !record.delivered {
            // The previous owner may be alive (a rebalance, not a crash)
            // and still delivering: give it the grace to confirm.
            let due = record.last_sent_ms.saturating_add(self.redelivery_grace_ms);
            self.redeliveries.insert(fingerprint.to_string(), due);
        }
    }

    /// Sends again the adopted notifications still unconfirmed after their
    /// grace.
    async fn redeliver_due(&mut self, now: i64) {
        let due: Vec<String> = self
            .redeliveries
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(fingerprint, _)| fingerprint.clone())
            .collect();
        for fingerprint in due {
            self.redeliveries.remove(&fingerprint);
            let Some(state) = &self.state else { return };
            let Some(record) = state.get(&fingerprint) else {
                continue;
            };
            if record.delivered {
                continue;
            }
            let sequence = self.next_sequence();
            if let Some(tracked) = self.tracked.get_mut(&fingerprint) {
                tracked.sequence = sequence;
            }
            // Only what is still owed: destinations that confirmed are not
            // sent it twice. Records of older versions list none: all.
            let owed = (!record.pending.is_empty()).then_some(record.pending.clone());
            tracing::warn!(fingerprint = %fingerprint, state = record.event.alert.state.as_str(), destinations = ?owed, "re-sending a notification its previous owner never confirmed delivered");
            let recipients = self.recipients_for(&record.event.alert);
            self.record_and_send(record.event.to(recipients), now, sequence, owed)
                .await;
        }
    }

    /// Sends reminders of firing alerts whose repeat interval has passed,
    /// and adopted notifications whose previous owner never confirmed them.
    pub async fn repeat_due(&mut self, now: i64) {
        self.redeliver_due(now).await;
        let due: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                t.sent && now.saturating_sub(t.last_sent_ms) >= self.repeat_ms(&t.event.alert)
            })
            .map(|(fingerprint, _)| fingerprint.clone())
            .collect();
        for fingerprint in due {
            let sequence = self.next_sequence();
            let Some(tracked) = self.tracked.get_mut(&fingerprint) else {
                continue;
            };
            tracked.last_sent_ms = now;
            tracked.sequence = sequence;
            let mut reminder = tracked.event.clone();
            reminder.repeat = true;
            reminder.muted_by = None;
            if let Some(reason) = self.mute_reason(&reminder.alert, now) {
                // Silenced since it fired: skip this reminder quietly.
                tracing::debug!(fingerprint = %fingerprint, reason, "reminder muted");
                continue;
            }
            // The monitor's receivers as they are now.
            let recipients = self.recipients_for(&reminder.alert);
            if let Some(current) = self.current_recipients(&reminder.alert) {
                if let Some(tracked) = self.tracked.get_mut(&fingerprint) {
                    tracked.recipients = Some(current);
                }
            }
            self.record_and_send(reminder.to(recipients), now, sequence, None)
                .await;
        }
    }

    /// Records one destination's outcome of a notification, unless a newer
    /// notification of the same alert has been recorded since. Once no
    /// destination owes it, the record says delivered.
    pub async fn report(&mut self, report: Report) {
        let Some(owed) = self.owed.get_mut(&report.fingerprint) else {
            return;
        };
        if owed.sequence != report.sequence {
            return;
        }
        owed.destinations.retain(|d| *d != report.destination);
        match report.outcome {
            Outcome::Delivered => {}
            Outcome::Rejected(reason) => {
                self.metrics.notifications_rejected.inc();
                tracing::warn!(fingerprint = %report.fingerprint, destination = %report.destination, reason = %reason, "notification refused for good; recorded on the alert");
                if let Some(events) = &self.events {
                    // History (and so the team's API) shows the refusal:
                    // the notification again, saying who refused it why.
                    let mut refused = owed.event.clone();
                    refused.muted_by = Some(format!("refused by {}: {reason}", report.destination));
                    events.publish(&refused);
                }
                owed.failures.push(DeliveryFailure {
                    destination: report.destination.clone(),
                    reason,
                });
            }
            // A newer notification of this alert is already owed instead.
            Outcome::Superseded => return,
        }
        let owed = owed.clone();
        if owed.destinations.is_empty() {
            self.owed.remove(&report.fingerprint);
        }
        let Some(state) = &self.state else { return };
        let Some(mut record) = state.get(&report.fingerprint) else {
            return;
        };
        if record.delivered {
            return;
        }
        record.pending = owed.destinations.clone();
        record.failures = owed.failures;
        record.delivered = owed.destinations.is_empty();
        if let Err(error) = state.put(record).await {
            self.metrics.alert_state_errors.inc();
            tracing::error!(fingerprint = %report.fingerprint, error = %error, "cannot record a delivery; it may be sent again after a restart");
        }
    }

    /// Notifications handed to the outbox and not yet confirmed by every
    /// destination.
    pub fn undelivered(&self) -> usize {
        self.owed.len()
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// Who of its own receivers a notification of `alert` goes to, looked
    /// up now (never recorded):
    /// - a monitor rule's: the receivers its monitor lists now, while the
    ///   monitor exists and still belongs to the alert's team; otherwise
    ///   (the monitor was deleted or moved to another team, and this is its
    ///   resolve) those its last notification went to, which this process
    ///   holds in memory; otherwise (adopted after a restart, monitor gone
    ///   since) nobody — only the global destinations hear of it, which is
    ///   logged and counted (`lagwatch_notifications_without_recipients_total`);
    /// - a broker rule's: `evaluator.broker_alert_emails`;
    /// - anything else: nobody of its own.
    pub fn recipients_for(&self, alert: &AlertEvent) -> Recipients {
        if let Some(current) = self.current_recipients(alert) {
            return current;
        }
        if let Some(known) = self
            .tracked
            .get(&alert.fingerprint)
            .and_then(|t| t.recipients.clone())
        {
            return known;
        }
        self.metrics.notifications_without_recipients.inc();
        tracing::warn!(
            fingerprint = %alert.fingerprint,
            monitor_id = alert.monitor_id,
            team = %alert.team,
            state = alert.state.as_str(),
            "the alert's monitor is gone and its recipients were never recorded: only global destinations get this notification"
        );
        Recipients::default()
    }

    /// The receivers of `alert` as configured now; `None` when its monitor
    /// is gone or belongs to another team.
    fn current_recipients(&self, alert: &AlertEvent) -> Option<Recipients> {
        match &alert.rule {
            Rule::Broker(_) => Some(Recipients {
                emails: self.broker_emails.clone(),
                webhooks: Vec::new(),
            }),
            rule if !rule.is_monitor_rule() => Some(Recipients::default()),
            _ => self
                .monitors
                .borrow()
                .iter()
                .find(|m| m.id == alert.monitor_id && m.team == alert.team)
                .map(Recipients::of),
        }
    }

    fn mute_reason(&self, event: &AlertEvent, now: i64) -> Option<String> {
        if let Some(silence) = self.silences.borrow().iter().find(|s| s.mutes(event, now)) {
            self.metrics
                .notifications_muted
                .with_label_values(&["silence"])
                .inc();
            return Some(format!("silence {}", silence.id));
        }
        if !event.rule.is_monitor_rule() {
            return None;
        }
        let local = self
            .tracked
            .values()
            .find(|t| t.event.alert.cluster == event.cluster && self.inhibits(&t.event.alert))
            .map(|t| t.event.alert.fingerprint.clone());
        let inhibitor = local.or_else(|| self.state.as_ref()?.inhibitor(&event.cluster))?;
        self.metrics
            .notifications_muted
            .with_label_values(&["inhibited"])
            .inc();
        Some(format!("inhibited by {inhibitor}"))
    }

    fn repeat_ms(&self, event: &AlertEvent) -> i64 {
        let monitor_secs = self
            .monitors
            .borrow()
            .iter()
            .find(|m| m.id == event.monitor_id)
            .and_then(|m| m.alerting.repeat_interval_secs);
        let millis = match monitor_secs {
            Some(secs) => u128::from(secs) * 1000,
            None => self.rules.notifications.repeat_interval.as_millis(),
        };
        i64::try_from(millis).unwrap_or(i64::MAX).max(1_000)
    }

    /// Records the notification (not yet delivered, with the destinations
    /// it is owed to), then queues it for them unless muted. `only` limits
    /// a re-send to the destinations still owed.
    async fn record_and_send(
        &mut self,
        event: Notification,
        now: i64,
        sequence: u64,
        only: Option<Vec<String>>,
    ) {
        let muted = event.muted_by.is_some();
        let mut destinations = if muted {
            Vec::new()
        } else {
            let mut all = self.outbox.destinations(&event);
            all.retain(|destination| self.routing.allows(&event.alert, destination));
            all
        };
        if let Some(only) = &only {
            // Team webhooks are owed by URL digest: a URL the monitor no
            // longer lists has no destination now and is not sent to.
            let gone: Vec<&String> = only.iter().filter(|d| !destinations.contains(d)).collect();
            if !gone.is_empty() && !muted {
                tracing::info!(fingerprint = %event.alert.fingerprint, destinations = ?gone, "owed destinations the monitor no longer has; not re-sent there");
            }
            destinations.retain(|d| only.contains(d));
        }
        if let Some(events) = &self.events {
            events.publish(&event);
        }
        if let Some(state) = &self.state {
            let record = StoredAlert {
                v: crate::alert_state::STATE_VERSION,
                inhibits: event.alert.state == AlertState::Firing && self.inhibits(&event.alert),
                event: event.clone(),
                delivered: destinations.is_empty(),
                last_sent_ms: now,
                writer: String::new(),
                pending: destinations.clone(),
                failures: Vec::new(),
            };
            if let Err(error) = state.put(record).await {
                self.metrics.alert_state_errors.inc();
                tracing::error!(fingerprint = %event.alert.fingerprint, error = %error, "cannot record alert state; notifying anyway (a restart may repeat this page)");
            }
        }
        if muted {
            tracing::info!(fingerprint = %event.alert.fingerprint, muted_by = ?event.muted_by, "notification muted");
            self.owed.remove(&event.alert.fingerprint);
            return;
        }
        if destinations.is_empty() {
            tracing::info!(fingerprint = %event.alert.fingerprint, "no destination for this notification");
            self.owed.remove(&event.alert.fingerprint);
            return;
        }
        self.owed.insert(
            event.alert.fingerprint.clone(),
            Owed {
                sequence,
                destinations: destinations.clone(),
                failures: Vec::new(),
                event: event.clone(),
            },
        );
        self.outbox.submit(&event, sequence, &destinations);
    }

    fn inhibits(&self, event: &AlertEvent) -> bool {
        match &event.rule {
            Rule::Broker(name) => self
                .rules
                .broker_rules
                .iter()
                .any(|r| &r.name == name && r.inhibits_lag_alerts),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use lagwatch_model::fixtures::{AlertEventBuilder, MonitorBuilder};
    use lagwatch_model::{Monitor, NewSilence};
    use tokio::sync::mpsc;

    use super::*;

    fn alert(rule: &str, cluster: &str, state: AlertState) -> AlertEvent {
        AlertEvent {
            fingerprint: format!("{rule}/{cluster}"),
            rule: rule.parse().unwrap_or_else(|never| match never {}),
            state,
            monitor_id: 1,
            team: "payments".into(),
            cluster: cluster.into(),
            consumer_group: "billing".into(),
            max_lag: 900,
            total_lag: 900,
            threshold: 500,
            ts_ms: 1_000,
            ..Default::default()
        }
    }

    fn silence(rule: Option<&str>) -> Silence {
        let s = NewSilence {
            team: "payments".into(),
            monitor_id: None,
            cluster: None,
            consumer_group: None,
            rule: rule.map(str::to_string),
            starts_at_ms: 0,
            ends_at_ms: i64::MAX,
            created_by: "test".into(),
            comment: String::new(),
        };
        Silence {
            id: 9,
            team: s.team,
            monitor_id: s.monitor_id,
            cluster: s.cluster,
            consumer_group: s.consumer_group,
            rule: s.rule,
            starts_at_ms: s.starts_at_ms,
            ends_at_ms: s.ends_at_ms,
            created_by: s.created_by,
            comment: s.comment,
            created_at_ms: 0,
        }
    }

    /// A sink that hands every notification to the test.
    struct Capture(mpsc::UnboundedSender<Notification>);

    impl lagwatch_sinks::Sink for Capture {
        fn name(&self) -> &'static str {
            "capture"
        }
        async fn deliver(&self, alert: &Notification) -> Result<(), lagwatch_sinks::SinkError> {
            let _ = self.0.send(alert.clone());
            Ok(())
        }
    }

    struct Harness {
        notifier: Notifier,
        sink: mpsc::UnboundedReceiver<Notification>,
        _silences: watch::Sender<Vec<Silence>>,
        monitors: watch::Sender<Arc<Vec<Monitor>>>,
    }

    impl Harness {
        /// The next notification the sink got, if one arrives soon.
        async fn sent(&mut self) -> Option<Notification> {
            tokio::time::timeout(std::time::Duration::from_millis(200), self.sink.recv())
                .await
                .ok()
                .flatten()
        }
    }

    fn harness(silences: Vec<Silence>) -> Harness {
        harness_with(silences, Vec::new())
    }

    fn harness_with(silences: Vec<Silence>, monitors: Vec<Monitor>) -> Harness {
        let (sink_tx, sink) = mpsc::unbounded_channel();
        let (silences_tx, silences_rx) = watch::channel(silences);
        let (monitors_tx, monitors_rx) = watch::channel(Arc::new(monitors));
        let registry = prometheus::Registry::new();
        let metrics = EvaluatorMetrics::register(&registry).expect("metrics");
        let sink_metrics = lagwatch_sinks::SinkMetrics::register(&registry).expect("metrics");
        let (mut outbox, _reports) =
            Outbox::builder(sink_metrics, lagwatch_sinks::RetryPolicy::default());
        tokio::spawn(outbox.add(Capture(sink_tx)));
        let notifier = Notifier::new(
            outbox.build(),
            None,
            silences_rx,
            monitors_rx,
            Arc::new(RuleSet::defaults()),
            metrics,
        )
        .with_broker_recipients(vec!["kafka-oncall@example.com".into()]);
        Harness {
            notifier,
            sink,
            _silences: silences_tx,
            monitors: monitors_tx,
        }
    }

    #[tokio::test]
    async fn silenced_alerts_are_recorded_muted_and_their_resolve_too() {
        let mut h = harness(vec![silence(Some("lag_threshold"))]);
        let fired = h
            .notifier
            .notify(alert("lag_threshold", "prod", AlertState::Firing))
            .await;
        assert_eq!(fired.muted_by.as_deref(), Some("silence 9"));
        let resolved = h
            .notifier
            .notify(alert("lag_threshold", "prod", AlertState::Resolved))
            .await;
        assert!(
            resolved.muted_by.is_some(),
            "resolve of a muted page is muted"
        );
        let other = h
            .notifier
            .notify(alert("lag_status", "prod", AlertState::Firing))
            .await;
        assert_eq!(other.muted_by, None, "other rules are not silenced");
        let sent = h.sent().await.expect("one delivery");
        assert_eq!(sent.alert.rule, Rule::LagStatus);
        assert!(h.sent().await.is_none(), "nothing else sent");
    }

    #[tokio::test]
    async fn a_firing_inhibiting_broker_alert_mutes_lag_alerts_of_its_cluster() {
        let mut h = harness(vec![]);
        let broker = h
            .notifier
            .notify(alert(
                "broker:offline_partitions",
                "prod",
                AlertState::Firing,
            ))
            .await;
        assert_eq!(broker.muted_by, None);
        let lag = h
            .notifier
            .notify(alert("lag_threshold", "prod", AlertState::Firing))
            .await;
        assert_eq!(
            lag.muted_by.as_deref(),
            Some("inhibited by broker:offline_partitions/prod")
        );
        let elsewhere = h
            .notifier
            .notify(alert("lag_threshold", "dev", AlertState::Firing))
            .await;
        assert_eq!(elsewhere.muted_by, None, "other clusters are not inhibited");
        // under_replicated_partitions does not inhibit (default rules).
        let mut h = harness(vec![]);
        h.notifier
            .notify(alert(
                "broker:under_replicated_partitions",
                "prod",
                AlertState::Firing,
            ))
            .await;
        let lag = h
            .notifier
            .notify(alert("lag_threshold", "prod", AlertState::Firing))
            .await;
        assert_eq!(lag.muted_by, None);
    }

    #[tokio::test]
    async fn firing_alerts_are_repeated_after_the_interval_until_resolved() {
        let mut h = harness(vec![]);
        h.notifier
            .notify(alert("lag_threshold", "prod", AlertState::Firing))
            .await;
        assert!(!h.sent().await.expect("first page").repeat);
        let now = now_ms();
        h.notifier.repeat_due(now + 60_000).await;
        assert!(h.sent().await.is_none(), "not due after 1 minute");
        let four_hours = 4 * 3_600 * 1_000;
        h.notifier.repeat_due(now + four_hours + 1_000).await;
        let reminder = h.sent().await.expect("reminder");
        assert!(reminder.repeat);
        assert!(
            reminder.summary().starts_with("[REPEAT]"),
            "{}",
            reminder.summary()
        );
        h.notifier
            .notify(alert("lag_threshold", "prod", AlertState::Resolved))
            .await;
        h.sent().await.expect("resolve sent");
        h.notifier.repeat_due(now + 3 * four_hours).await;
        assert!(h.sent().await.is_none(), "resolved alerts are not repeated");
        assert_eq!(h.notifier.tracked(), 0);
    }

    #[tokio::test]
    async fn a_vanished_group_resolves_its_alerts_with_the_reason_and_stops_repeats() {
        let mut h = harness(vec![]);
        let mut topic = alert("topic_lag_threshold", "prod", AlertState::Firing);
        topic.fingerprint = "topic_lag_threshold/1/prod/billing/orders".into();
        topic.topic = Some("orders".into());
        for event in [
            alert("lag_threshold", "prod", AlertState::Firing),
            alert("lag_status", "prod", AlertState::Firing),
            topic,
            alert("lag_threshold", "dev", AlertState::Firing),
        ] {
            h.notifier.notify(event).await;
            h.sent().await.expect("page");
        }
        let only_topic = Vanished {
            monitor_id: 1,
            cluster: "prod".into(),
            group: "billing".into(),
            topic: Some("orders".into()),
            reason: "topic orders is gone".into(),
            ts_ms: 5_000,
        };
        let resolves = h.notifier.vanished(&only_topic);
        assert_eq!(resolves.len(), 1);
        assert_eq!(resolves[0].rule, Rule::TopicLagThreshold);
        let whole = Vanished {
            topic: None,
            reason: "group billing has nothing left to measure".into(),
            ..only_topic
        };
        let mut resolves = h.notifier.vanished(&whole);
        resolves.sort_by_key(|r| r.rule.to_string());
        let rules: Vec<String> = resolves.iter().map(|r| r.rule.to_string()).collect();
        assert_eq!(
            rules,
            ["lag_status", "lag_threshold", "topic_lag_threshold"]
        );
        for resolve in resolves {
            assert_eq!(resolve.state, AlertState::Resolved);
            assert_eq!(resolve.ts_ms, 5_000);
            h.notifier.notify(resolve).await;
            let sent = h.sent().await.expect("resolve sent");
            assert!(
                sent.summary().contains("nothing left to measure"),
                "{}",
                sent.summary()
            );
        }
        assert_eq!(h.notifier.tracked(), 1, "only the other cluster's alert");
        assert!(h.notifier.vanished(&whole).is_empty(), "resolved once");
    }

    #[tokio::test]
    async fn a_deleted_monitor_resolves_its_firing_alert_once_with_the_reason() {
        let mut h = harness(vec![]);
        h.notifier
            .notify(alert("lag_threshold", "prod", AlertState::Firing))
            .await;
        h.notifier
            .notify(alert(
                "broker:offline_partitions",
                "prod",
                AlertState::Firing,
            ))
            .await;
        assert!(h.sent().await.is_some());
        assert!(h.sent().await.is_some());
        let resolves = h.notifier.obsolete(&[], now_ms());
        assert_eq!(resolves.len(), 1, "broker alerts belong to no monitor");
        assert_eq!(resolves[0].reason.as_deref(), Some("monitor 1 was deleted"));
        for resolve in resolves {
            h.notifier.notify(resolve).await;
        }
        let sent = h.sent().await.expect("resolve sent");
        assert_eq!(sent.alert.state, AlertState::Resolved);
        assert!(
            sent.summary().contains("monitor 1 was deleted"),
            "{}",
            sent.summary()
        );
        assert!(
            h.notifier.obsolete(&[], now_ms()).is_empty(),
            "resolved once"
        );
        let four_hours = 4 * 3_600 * 1_000;
        h.notifier.repeat_due(now_ms() + four_hours + 1_000).await;
        let reminder = h.sent().await.expect("the broker alert's reminder");
        assert!(
            matches!(reminder.alert.rule, Rule::Broker(_)),
            "no reminder of the resolved alert"
        );
    }

    fn team_monitor(emails: &[&str], webhooks: &[&str]) -> Monitor {
        let mut monitor = MonitorBuilder::new("billing")
            .id(1)
            .cluster("prod")
            .emails(emails)
            .build();
        monitor.alerting.webhooks = webhooks.iter().map(|w| w.to_string()).collect();
        monitor
    }

    fn firing_of(monitor: &Monitor) -> AlertEvent {
        AlertEventBuilder::firing(monitor)
            .fingerprint("lag_threshold/1/prod/billing")
            .lag(900, 900)
            .build()
    }

    #[tokio::test]
    async fn recipients_are_looked_up_when_sent_so_a_reminder_goes_to_the_new_ones() {
        let before = team_monitor(&["old@example.com"], &["https://hooks.example.com/old"]);
        let mut h = harness_with(vec![], vec![before.clone()]);
        h.notifier.notify(firing_of(&before)).await;
        let page = h.sent().await.expect("page");
        assert_eq!(page.recipients, Recipients::of(&before));
        let after = team_monitor(&["new@example.com"], &[]);
        h.monitors.send_replace(Arc::new(vec![after.clone()]));
        let four_hours = 4 * 3_600 * 1_000;
        h.notifier.repeat_due(now_ms() + four_hours + 1_000).await;
        let reminder = h.sent().await.expect("reminder");
        assert!(reminder.repeat);
        assert_eq!(
            reminder.recipients.emails,
            vec!["new@example.com".to_string()]
        );
        assert!(reminder.recipients.webhooks.is_empty());
        let resolve = h
            .notifier
            .notify(
                AlertEventBuilder::firing(&after)
                    .fingerprint("lag_threshold/1/prod/billing")
                    .resolved()
                    .build(),
            )
            .await;
        assert_eq!(resolve.recipients, Recipients::of(&after));
    }

    #[tokio::test]
    async fn a_deleted_monitors_resolve_reaches_the_recipients_it_had() {
        let monitor = team_monitor(&["team@example.com"], &["https://hooks.example.com/t?k=1"]);
        let mut h = harness_with(vec![], vec![monitor.clone()]);
        h.notifier.notify(firing_of(&monitor)).await;
        h.sent().await.expect("page");
        h.monitors.send_replace(Arc::new(Vec::new()));
        let resolves = h.notifier.obsolete(&[], now_ms());
        assert_eq!(resolves.len(), 1);
        for resolve in resolves {
            h.notifier.notify(resolve).await;
        }
        let sent = h.sent().await.expect("resolve");
        assert_eq!(sent.alert.reason.as_deref(), Some("monitor 1 was deleted"));
        assert_eq!(sent.recipients, Recipients::of(&monitor));
        assert_eq!(h.notifier.metrics.notifications_without_recipients.get(), 0);
    }

    #[tokio::test]
    async fn a_monitor_moved_to_another_team_resolves_to_the_old_teams_recipients() {
        let monitor = team_monitor(&["payments@example.com"], &[]);
        let mut h = harness_with(vec![], vec![monitor.clone()]);
        h.notifier.notify(firing_of(&monitor)).await;
        h.sent().await.expect("page");
        let mut moved = team_monitor(&["search@example.com"], &[]);
        moved.team = "search".into();
        h.monitors.send_replace(Arc::new(vec![moved.clone()]));
        for resolve in h.notifier.obsolete(&[moved], now_ms()) {
            h.notifier.notify(resolve).await;
        }
        let sent = h.sent().await.expect("resolve");
        assert_eq!(
            sent.recipients.emails,
            vec!["payments@example.com".to_string()]
        );
    }

    #[tokio::test]
    async fn unknown_recipients_of_a_gone_monitor_are_counted_and_broker_alerts_go_to_the_operators(
    ) {
        let h = harness(vec![]);
        let gone = firing_of(&team_monitor(&["team@example.com"], &[]));
        assert!(h.notifier.recipients_for(&gone).is_empty());
        assert_eq!(h.notifier.metrics.notifications_without_recipients.get(), 1);
        let broker = alert("broker:offline_partitions", "prod", AlertState::Firing);
        assert_eq!(
            h.notifier.recipients_for(&broker).emails,
            vec!["kafka-oncall@example.com".to_string()]
        );
    }
}
