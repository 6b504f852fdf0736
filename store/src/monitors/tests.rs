//! The monitor store against a real SQLite file: add, read, update,
//! remove, the validation every write goes through, and the audit rows the
//! audited variants write.

use lagwatch_model::fixtures::MonitorBuilder;
use lagwatch_model::{AlertSettings, NewMonitor};

use super::*;

fn new_monitor() -> NewMonitor {
    MonitorBuilder::new("billing")
        .for_secs(30)
        .isolation(lagwatch_model::Isolation::ReadCommitted)
        .time_lag(lagwatch_model::TimeLagMode::Exact)
        .group_regex()
        .topic_regex("orders\\..*")
        .alerting(AlertSettings {
            topic_lag_threshold: Some(2_000),
            total_lag_threshold: None,
            time_lag_threshold_secs: Some(300),
            repeat_interval_secs: Some(3_600),
            webhooks: vec!["https://hooks.example.com/lag".into()],
        })
        .build_new()
}

async fn sqlite_store(dir: &tempfile::TempDir) -> MonitorStore {
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let store = MonitorStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test]
async fn sqlite_store_adds_gets_updates_lists_and_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    store.migrate().await.expect("migrations are idempotent");
    let added = store.add(&new_monitor()).await.expect("add");
    assert_eq!(store.list().await.expect("list"), vec![added.clone()]);
    assert_eq!(store.get(added.id).await.expect("get"), Some(added.clone()));
    assert_eq!(store.version().await.expect("version").0, 1);

    let mut changed = new_monitor();
    changed.lag_threshold = 900;
    changed.alerting = AlertSettings::default();
    let updated = store
        .update(added.id, &changed)
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(updated.lag_threshold, 900);
    assert_eq!(store.get(added.id).await.expect("get"), Some(updated));
    assert_eq!(store.update(999, &changed).await.expect("update"), None);

    assert!(store.remove(added.id).await.expect("rm"));
    assert!(!store.remove(added.id).await.expect("rm twice"));
    assert!(store.list().await.expect("list").is_empty());
    assert_eq!(store.get(added.id).await.expect("get"), None);
}

#[tokio::test]
async fn rejects_invalid_monitors_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    type Spoil = fn(&mut NewMonitor);
    let cases: Vec<(Spoil, &str, &str)> = vec![
        (
            |m| m.topics = vec!["no spaces allowed".into()],
            "topics",
            "not a valid Kafka topic name",
        ),
        (|m| m.lag_threshold = 0, "lag_threshold", "greater than 0"),
        (
            |m| m.emails = vec!["nobody".into()],
            "emails",
            "not an e-mail",
        ),
        (
            |m| m.consumer_group = "(".into(),
            "consumer_group",
            "pattern",
        ),
        (
            |m| m.consumer_group = "a".repeat(256),
            "consumer_group",
            "255",
        ),
        (
            |m| m.topic_regex = Some("a".repeat(1_001)),
            "topic_regex",
            "longer than 1000",
        ),
        (
            |m| m.topic_regex = Some("(a{1000}){1000}".into()),
            "topic_regex",
            "pattern",
        ),
        (|m| m.team = "".into(), "team", "1 to 64"),
        (|m| m.cluster = " ".into(), "cluster", "1 to 255"),
        (|m| m.for_secs = MAX_FOR_SECS + 1, "for_secs", "7 days"),
        (
            |m| m.topics = (0..51).map(|i| format!("t{i}")).collect(),
            "topics",
            "at most 50",
        ),
        (
            |m| m.emails = vec!["a@example.com".into(), "a@example.com".into()],
            "emails",
            "twice",
        ),
        (
            |m| m.alerting.webhooks = vec!["ftp://x".into()],
            "alerting.webhooks",
            "not a webhook URL",
        ),
        (
            |m| m.alerting.webhooks = vec!["http://169.254.169.254/latest".into()],
            "alerting.webhooks",
            "link-local",
        ),
        (
            |m| m.alerting.webhooks = vec!["http://[::ffff:127.0.0.1]:8080/".into()],
            "alerting.webhooks",
            "loopback",
        ),
        (
            |m| m.alerting.webhooks = vec!["http://LOCALHOST.:8080/x".into()],
            "alerting.webhooks",
            "this machine",
        ),
        (
            |m| m.alerting.webhooks = vec!["https://u@10.0.0.1/x".into()],
            "alerting.webhooks",
            "private",
        ),
        (
            |m| m.alerting.total_lag_threshold = Some(-1),
            "alerting.total_lag_threshold",
            "greater than 0",
        ),
        (
            |m| m.alerting.repeat_interval_secs = Some(5),
            "alerting.repeat_interval_secs",
            "60",
        ),
        (
            |m| m.alerting.time_lag_threshold_secs = Some(0),
            "alerting.time_lag_threshold_secs",
            "1 to",
        ),
    ];
    for (spoil, field, expected) in cases {
        let mut bad = new_monitor();
        spoil(&mut bad);
        match store.add(&bad).await {
            Err(StoreError::InvalidField {
                field: got,
                message,
            }) => {
                assert_eq!(got, field, "{message}");
                assert!(message.contains(expected), "{field}: {message}");
            }
            other => panic!("{field}: expected InvalidField, got {other:?}"),
        }
    }
    assert!(
        store.list().await.expect("list").is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn audited_changes_write_the_audit_log_in_the_same_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = sqlite_store(&dir).await;
    let added = store.add_audited(&new_monitor(), "cli").await.expect("add");
    let mut changed = new_monitor();
    changed.lag_threshold = 900;
    assert_eq!(
        store
            .update_audited(added.id, Some("search"), &changed, "search")
            .await
            .expect("update"),
        None,
        "another team's monitor is not changed"
    );
    let updated = store
        .update_audited(added.id, Some("payments"), &changed, "payments")
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(updated.lag_threshold, 900);
    assert_eq!(
        store
            .remove_audited(added.id, Some("search"), "search")
            .await
            .expect("rm"),
        None
    );
    let removed = store
        .remove_audited(added.id, None, "admin")
        .await
        .expect("rm")
        .expect("existed");
    assert_eq!(removed, updated);

    let entries = store.list_audit(None, 10).await.expect("audit");
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.action, e.actor.as_str(), e.monitor_id, e.team.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (AuditAction::Delete, "admin", added.id, "payments"),
            (AuditAction::Update, "payments", added.id, "payments"),
            (AuditAction::Create, "cli", added.id, "payments"),
        ]
    );
    assert_eq!(entries[1].before.as_ref(), Some(&added));
    assert_eq!(entries[1].after.as_ref(), Some(&updated));
    assert_eq!(entries[0].after, None);
    assert!(store
        .list_audit(Some("search"), 10)
        .await
        .expect("audit")
        .is_empty());

    // Concurrent audited changes all land, each with its own row (SQLite
    // would answer "database is locked" to a plain deferred transaction).
    let base = store.add_audited(&new_monitor(), "cli").await.expect("add");
    let updates = (0..8).map(|i| {
        let store = store.clone();
        let mut changed = new_monitor();
        changed.lag_threshold = 1_000 + i;
        async move {
            store
                .update_audited(base.id, None, &changed, &format!("writer-{i}"))
                .await
        }
    });
    for result in futures::future::join_all(updates).await {
        assert!(result.expect("concurrent update").is_some());
    }
    let rows = store.list_audit(None, 100).await.expect("audit");
    assert_eq!(rows.len(), 3 + 1 + 8);
    let last = store.get(base.id).await.expect("get").expect("exists");
    assert_eq!(
        rows[0].after.as_ref().map(|m| m.lag_threshold),
        Some(last.lag_threshold),
        "the newest audit row describes the stored monitor"
    );
    store.remove(base.id).await.expect("rm");

    // A rejected change writes no audit row either.
    let mut bad = new_monitor();
    bad.lag_threshold = 0;
    assert!(store.add_audited(&bad, "cli").await.is_err());
    assert_eq!(store.list_audit(None, 100).await.expect("audit").len(), 12);
}
